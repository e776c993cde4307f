"""meshstack: a service-mesh observability platform on Kubernetes, in one `pulumi up`.

Deploys, in dependency order:
- Linkerd: Gateway API CRDs, linkerd-crds, the control plane with an mTLS identity made by
  pulumi-tls, and the viz dashboard (success rate, requests per second, latency);
- tracing: an OpenTelemetry collector (OTLP, and OpenCensus for the demo app) feeding Jaeger v2;
- logs and dashboards: Loki with Alloy on every node, Grafana wired to Prometheus, Loki and
  Jaeger, with Linkerd dashboards, golden-metric and certificate-expiry alerts;
- the emojivoto demo app, meshed, traced and locked down by Linkerd authorization policy;
- onboarded team namespaces, and the dashboards' exposure and URLs (optionally through Envoy
  Gateway, installed with its Envoy pods meshed).

The stack outputs at the bottom are a contract other projects read with StackReference
(README "Outputs").
"""

from __future__ import annotations

import pulumi
import pulumi_kubernetes as k8s

from components import config as cfg
from components import exposure as exp
from components import grafana as grafana_module
from components import lifecycle
from components import tracing as tracing_module
from components import viz as viz_module
from components.auth import Auth, AuthArgs, ProtectedUi
from components.auth import release as auth_release
from components.emojivoto import NAMESPACE as EMOJIVOTO_NAMESPACE
from components.emojivoto import Emojivoto, EmojivotoArgs
from components.external_issuer import ExternalIssuerArgs
from components.gateway import EnvoyGateway, EnvoyGatewayArgs, edge_tracing
from components.grafana import Grafana, GrafanaArgs
from components.identity import Identity, IdentityArgs
from components.logging import Logging, LoggingArgs
from components.mesh import Mesh, MeshArgs, TracingHookup
from components.mesh import webhooks as mesh_webhooks
from components.multicluster import (
    CREDENTIALS_OUTPUT,
    MULTICLUSTER_OUTPUT,
    Multicluster,
    MulticlusterArgs,
    PeerLink,
    app_placement,
    remote_callers,
    remote_prometheus,
)
from components.onboarding import Onboarding, OnboardingArgs
from components.tracing import Tracing, TracingArgs
from components.tracing import addresses as tracing_addresses
from components.viz import Viz, VizArgs
from components.viz import webhooks as viz_webhooks

# --- Configuration ---------------------------------------------------------------------------
# The only place that reads Pulumi config; everything below gets typed, validated settings.
# The whole config map, not `pulumi.Config().get(key)` per key: a key nobody asks for (a typo)
# must be reported, and only the full map shows it. `CONFIG` is where the language host puts
# the stack's config; the environment form is what `PULUMI_CONFIG` gives the Automation API.
_all = {**pulumi.runtime.get_config_env(), **pulumi.runtime.config.CONFIG.get()}
_prefix = f"{cfg.PROJECT}:"
# What the last `pulumi up` of this stack exported (nothing before the first): some changes are
# only safe relative to what is deployed, and must be refused before any resource. The engine's
# builtin `readStackOutputs` is what a StackReference reads; as an invoke it answers at once.
_previous = pulumi.runtime.invoke(
    cfg.READ_STACK_OUTPUTS,
    {"name": f"{pulumi.get_organization()}/{pulumi.get_project()}/{pulumi.get_stack()}"},
).value
_raw = {k[len(_prefix) :]: v for k, v in _all.items() if k.startswith(_prefix)}


def _outputs_of(stack: str) -> dict[str, object]:
    """A peer stack's outputs (multicluster: the trust stack, linked clusters), read the same
    way. A stack that does not exist yet reads as one without outputs: the config check then
    says which `up` comes first, instead of the engine's bare "unknown stack"."""
    try:
        return cfg.previous_outputs(
            pulumi.runtime.invoke(cfg.READ_STACK_OUTPUTS, {"name": stack}).value
        )
    except Exception:  # any failure to read means "not there yet"
        return {}


_peers = {stack: _outputs_of(stack) for stack in cfg.peer_stacks(_raw)}
try:
    settings = cfg.parse_settings(
        _raw,
        stack=pulumi.get_stack(),
        previous=cfg.previous_outputs(_previous),
        peers=_peers,
        secret_keys=frozenset(
            k[len(_prefix) :]
            for k in _all
            if k.startswith(_prefix) and pulumi.runtime.is_config_secret(k)
        ),
    )
except cfg.ConfigError as error:
    # RunError prints the message alone: a typo deserves a sentence, not a traceback.
    raise pulumi.RunError(f"invalid configuration:\n{error}") from None

plan = exp.plan(settings)
tracing_at = tracing_addresses(settings.cluster_domain) if settings.tracing.enabled else None

# --- Kubernetes provider ---------------------------------------------------------------------
provider = k8s.Provider(
    "k8s",
    # May hold a whole kubeconfig with credentials, so it is stored as a secret.
    kubeconfig=pulumi.Output.secret(settings.kubeconfig) if settings.kubeconfig else None,
    context=settings.kube_context or None,
)
on_cluster = pulumi.ResourceOptions(provider=provider)

# --- Identity and mesh -----------------------------------------------------------------------
ident = settings.linkerd.identity
mc = settings.multicluster
# With a trust stack the anchor's key arrives through a StackReference, a secret output there
# and so a secret here; the certificate (public) was read with the config, which checked it.
trust = pulumi.StackReference("trust-stack", stack_name=mc.trust_stack) if mc.trust_stack else None
identity = Identity(
    "identity",
    IdentityArgs(
        trust_domain=settings.cluster_domain,
        webhooks=mesh_webhooks() + viz_webhooks(),
        issuer_mode=ident.issuer,
        trust_anchor_pem=ident.trust_anchor_pem,
        trust_anchor_key_pem=(
            trust.require_output("trustAnchorKeyPem")
            if trust
            else pulumi.Output.secret(ident.trust_anchor_key_pem.value)
            if ident.trust_anchor_key_pem
            else None
        ),
        rotation=ident.rotation_plan,
        next_trust_anchor_pem=ident.next_trust_anchor_pem,
        next_trust_anchor_key_pem=(
            trust.require_output(
                # After the trust stack promotes its new anchor, `finish` keeps its current one.
                "nextTrustAnchorKeyPem"
                if _peers[mc.trust_stack].get("nextTrustAnchorPem")
                else "trustAnchorKeyPem"
            )
            if trust and ident.next_trust_anchor_pem
            else pulumi.Output.secret(ident.next_trust_anchor_key_pem.value)
            if ident.next_trust_anchor_key_pem
            else None
        ),
        trust_anchor_validity_hours=ident.trust_anchor_validity_hours,
        issuer_validity_hours=ident.issuer_validity_hours,
        issuer_early_renewal_hours=ident.issuer_early_renewal_hours,
    ),
)
signer_key = (
    ident.next_trust_anchor_key_pem
    if ident.rotation_plan.signer.config_key == lifecycle.NEXT_KEY
    else ident.trust_anchor_key_pem
)
mesh = Mesh(
    "linkerd",
    MeshArgs(
        profile=settings.profile,
        cluster_domain=settings.cluster_domain,
        trust_anchor_pem=identity.trust_anchors_pem,
        webhook_certs=identity.webhook_certs,
        issuer_mode=ident.issuer,
        issuer_cert_pem=identity.issuer_cert_pem,
        issuer_key_pem=identity.issuer_key_pem,
        cni=settings.linkerd.cni,
        install_gateway_api_crds=settings.linkerd.install_gateway_api_crds,
        install_envoy_gateway_crds=settings.exposure.install_envoy_gateway,
        tracing=(
            TracingHookup(
                endpoint=tracing_at.otlp_grpc,
                service_account=tracing_at.collector_service_account,
                namespace=tracing_at.namespace,
            )
            if tracing_at
            else None
        ),
        external_issuer=(
            ExternalIssuerArgs(
                settings=ident.external,
                profile=settings.profile,
                trust_domain=settings.cluster_domain,
                # The anchor that signs (the new one from a rotation's `issuer` phase on) and
                # every anchor proxies trust.
                trust_anchor_pem=identity.trust_anchor_pem,
                trust_anchors_pem=identity.trust_anchors_pem,
                issuer_validity_hours=ident.issuer_validity_hours,
                issuer_early_renewal_hours=ident.issuer_early_renewal_hours,
                trust_anchor_key_pem=(
                    pulumi.Output.secret(signer_key.value) if signer_key else None
                ),
                # The Gateway's certificates come from a ClusterIssuer: cert-manager watches
                # Gateways only when told to.
                gateway_api=settings.exposure.mode == "gateway"
                and bool(settings.exposure.cluster_issuer),
            )
            if ident.issuer == "external"
            else None
        ),
    ),
    opts=on_cluster,
)
viz = Viz(
    "viz",
    VizArgs(
        profile=settings.profile,
        cluster_domain=settings.cluster_domain,
        webhook_certs=identity.webhook_certs,
        control_plane=mesh.control_plane,
        external_host=plan.host("dashboard"),
        allow_ip_hosts=settings.exposure.mode in ("loadBalancer", "nodePort"),
        # A load balancer's address may be a name assigned at creation (AWS): the exported URL
        # carries it, so the check admits names, behind sign-in only.
        allow_any_host=settings.exposure.mode == "loadBalancer" and settings.auth.enabled,
        prometheus_url=settings.linkerd.prometheus_url,
        grafana_external_url=plan.url("grafana") if settings.grafana.enabled else "",
        jaeger_url=tracing_at.jaeger_query_host if tracing_at else "",
        proxy_config=mesh.proxy_config,
        cni=settings.linkerd.cni,
        prometheus_retention_hours=settings.slo.prometheus_retention_hours,
        prometheus_storage_size=settings.slo.prometheus_storage_size,
        # RED metrics from the spans Jaeger stores (components/tracing.py).
        scrape_configs=(tracing_module.spanmetrics_scrape_config(),) if tracing_at else (),
    ),
    opts=on_cluster,
)

# --- Multicluster ---------------------------------------------------------------------------
# Each linked peer is read through a StackReference: its address and gateway (public), the
# token its remote-mirror ServiceAccount reads it with (secret end to end).
multicluster = (
    Multicluster(
        "multicluster",
        MulticlusterArgs(
            cluster_name=mc.cluster_name,
            trust_domain=settings.cluster_domain,
            control_plane=mesh.control_plane,
            api_server_address=mc.api_server_address,
            pod_cidr=mc.pod_cidr,
            service_cidr=mc.service_cidr,
            links=[
                PeerLink(
                    cluster=link.cluster,
                    mode=link.mode,
                    peer=ref.require_output(MULTICLUSTER_OUTPUT),
                    credentials=ref.require_output(CREDENTIALS_OUTPUT),
                )
                for link in mc.links
                for ref in [pulumi.StackReference(f"peer-{link.cluster}", stack_name=link.stack)]
            ],
            gateway=mc.gateway,
            gateway_service_type=mc.gateway_service_type,
            gateway_address=mc.gateway_address,
            gateway_node_port=mc.gateway_node_port,
            gateway_probe_node_port=mc.gateway_probe_node_port,
            high_availability=settings.high_availability,
            profile=settings.profile,
            cni=settings.linkerd.cni,
            # One view: the peers' Grafana queries viz's own Prometheus here (README).
            viz_chart=viz.chart if not settings.linkerd.prometheus_url else None,
            prometheus_callers=remote_callers(
                mc,
                grafana_module.SERVICE_ACCOUNT,
                grafana_module.NAMESPACE,
                settings.cluster_domain,
            ),
        ),
        opts=on_cluster,
    )
    if mc.enabled
    else None
)

# NodePort and LoadBalancer Services bring users in without a mesh identity: the UIs they
# publish admit any network behind default-deny.
_published_by_service = settings.exposure.mode in ("loadBalancer", "nodePort")

# --- Tracing, logs, dashboards -----------------------------------------------------------------
# Meshed workloads start once viz is ready (its tap-injector must see their pods) and carry the
# digest of what their proxies are injected with, so a change in it rolls them in this `up`.
# Logs wait for nothing.
tracing = (
    Tracing(
        "tracing",
        TracingArgs(
            profile=settings.profile,
            settings=settings.tracing,
            cni=settings.linkerd.cni,
            cluster_domain=settings.cluster_domain,
            control_plane=mesh.control_plane,
            viz_chart=viz.chart,
            proxy_config=mesh.proxy_config,
            # Grafana's Jaeger datasource queries as Grafana's identity.
            query_clients=(
                ((grafana_module.SERVICE_ACCOUNT, grafana_module.NAMESPACE),)
                if settings.grafana.enabled
                else ()
            )
            # With sign-in, users reach Jaeger through its oauth2-proxy (components/auth.py),
            # which is then the query port's only way in from outside.
            + (
                ((auth_release("jaeger"), exp.TARGETS["jaeger"].namespace),)
                if settings.auth.enabled
                else ()
            ),
            ingress_controller_namespace=(
                "" if settings.auth.enabled else plan.ingress_controller_namespace
            ),
            public_query=_published_by_service and not settings.auth.enabled,
            prometheus_namespace=settings.linkerd.prometheus_scraper[0],
            prometheus_service_account=settings.linkerd.prometheus_scraper[1],
        ),
        opts=on_cluster,
    )
    if settings.tracing.enabled
    else None
)
logging = (
    Logging(
        "logging",
        LoggingArgs(
            profile=settings.profile,
            settings=settings.logging,
            cluster_domain=settings.cluster_domain,
            query_clients=(
                ((grafana_module.NAMESPACE, grafana_module.PODS),)
                if settings.grafana.enabled
                else ()
            ),
        ),
        opts=on_cluster,
    )
    if settings.logging.enabled
    else None
)
grafana = (
    Grafana(
        "grafana",
        GrafanaArgs(
            profile=settings.profile,
            settings=settings.grafana,
            cni=settings.linkerd.cni,
            cluster_domain=settings.cluster_domain,
            control_plane=mesh.control_plane,
            viz_chart=viz.chart,
            proxy_config=mesh.proxy_config,
            prometheus_url=viz.prometheus_url,
            bundled_prometheus=not settings.linkerd.prometheus_url,
            loki_url=logging.query_url if logging else None,
            jaeger_url=tracing.query_url if tracing else None,
            root_url=plan.url("grafana"),
            # The provider oauth2-proxy signs users in with signs them in to Grafana too.
            oidc=settings.auth.oidc if settings.auth.mode == "oidc" else None,
            alert_webhook_url=(
                pulumi.Output.secret(settings.grafana.alert_webhook_url.value)
                if settings.grafana.alert_webhook_url
                else None
            ),
            # Every anchor proxies trust: during a rotation the first of the two to expire.
            trust_anchor_pem=identity.trust_anchors_pem,
            remote_prometheus=remote_prometheus(
                mc, viz_module.NAMESPACE, viz_module.PROMETHEUS_PORT, settings.cluster_domain
            ),
            ingress_controller_namespace=plan.ingress_controller_namespace,
            public=_published_by_service,
            prometheus_namespace=settings.linkerd.prometheus_scraper[0],
            prometheus_service_account=settings.linkerd.prometheus_scraper[1],
            slo_objectives=settings.slo.objectives,
        ),
        opts=on_cluster,
    )
    if settings.grafana.enabled
    else None
)

# --- Workloads -------------------------------------------------------------------------------
app = (
    Emojivoto(
        "emojivoto",
        EmojivotoArgs(
            profile=settings.profile,
            settings=settings.emojivoto,
            cni=settings.linkerd.cni,
            control_plane=mesh.control_plane,
            oc_agent_host=(
                tracing_at.opencensus if tracing_at and settings.tracing.open_census else ""
            ),
            ingress_controller_namespace=plan.ingress_controller_namespace,
            allow_unauthenticated_web=settings.exposure.mode in ("loadBalancer", "nodePort"),
            cluster_domain=settings.cluster_domain,
            prometheus_namespace=settings.linkerd.prometheus_scraper[0],
            prometheus_service_account=settings.linkerd.prometheus_scraper[1],
            viz_chart=viz.chart,
            proxy_config=mesh.proxy_config,
            placement=app_placement(mc, EMOJIVOTO_NAMESPACE, settings.cluster_domain),
        ),
        opts=on_cluster,
    )
    if settings.emojivoto.enabled
    else None
)
onboarding = Onboarding(
    "onboarding",
    OnboardingArgs(
        teams=list(settings.teams),
        cni=settings.linkerd.cni,
        control_plane=mesh.control_plane,
        tracing=tracing_at,
        open_census=settings.tracing.open_census,
        prometheus_namespace=settings.linkerd.prometheus_scraper[0],
        prometheus_service_account=settings.linkerd.prometheus_scraper[1],
        viz_chart=viz.chart,
    ),
    opts=on_cluster,
)

# --- Sign-in in front of the dashboard and Jaeger ------------------------------------------
# Every exposure mode reaches them through oauth2-proxy (plan.targets), which proxies to the
# UIs' own Services.
auth = (
    Auth(
        "auth",
        AuthArgs(
            profile=settings.profile,
            settings=settings.auth,
            uis={
                key: ProtectedUi(
                    namespace=component.namespace,
                    upstream=exp.upstream(exp.TARGETS[key], settings.cluster_domain),
                    external_url=plan.url(key),
                    default_deny=default_deny,
                    ingress_controller_namespace=plan.ingress_controller_namespace,
                    public=_published_by_service,
                )
                for key, (component, default_deny) in {
                    "dashboard": (viz, False),
                    # Tracing's namespace denies by default (components/tracing.py).
                    "jaeger": (tracing, True),
                }.items()
                if component is not None
            },
            control_plane=mesh.control_plane,
            proxy_config=mesh.proxy_config,
            cluster_domain=settings.cluster_domain,
        ),
        opts=on_cluster,
    )
    if settings.auth.enabled
    else None
)

# --- Exposure --------------------------------------------------------------------------------
envoy_gateway = (
    EnvoyGateway(
        "envoy-gateway",
        EnvoyGatewayArgs(
            gateway_class=settings.exposure.gateway_class,
            control_plane=mesh.control_plane,
            namespace=settings.exposure.gateway_namespace,
            profile=settings.profile,
            cluster_domain=settings.cluster_domain,
            cni=settings.linkerd.cni,
            tls=plan.scheme == "https",
            tracing=(
                edge_tracing(
                    tracing_module.COLLECTOR_SERVICE,
                    tracing_module.NAMESPACE,
                    tracing_module.OTLP_GRPC_PORT,
                    settings.edge_trace_sample_percent,
                )
                if tracing_at
                else None
            ),
            tracing_namespace=tracing.namespace if tracing else None,
        ),
        opts=on_cluster,
    )
    if settings.exposure.install_envoy_gateway
    else None
)
exposure = exp.Exposure(
    "exposure",
    exp.ExposureArgs(
        plan=plan,
        namespaces={
            key: component.namespace
            for key, component in {
                "dashboard": viz,
                "grafana": grafana,
                "jaeger": tracing,
                "app": app,
            }.items()
            if component is not None
        },
        gateway_namespace=envoy_gateway.namespace if envoy_gateway else "",
        # The Gateway API CRDs are installed before the control plane.
        gateway_after=[envoy_gateway] if envoy_gateway else [mesh.control_plane],
    ),
    opts=on_cluster,
)

# --- Stack outputs (the contract; README "Outputs") ------------------------------------------
pulumi.export("profile", settings.profile)
pulumi.export("urls", exposure.urls)
pulumi.export("portForwardCommands", exposure.port_forward_commands)
pulumi.export("linkerdNamespace", mesh.namespace)
pulumi.export("vizNamespace", viz.namespace)
pulumi.export("trustDomain", mesh.trust_domain)
pulumi.export("trustAnchorPem", identity.trust_anchor_pem)
# The rotation phase and every anchor proxies trust: what the next `up` checks its phase against.
pulumi.export("identityRotation", identity.rotation)
pulumi.export("prometheusUrl", viz.prometheus_url)
# A feature that is off exports an empty value, not None: Pulumi drops None outputs, and
# consumers reading the contract with require_output must always find every key.
pulumi.export("tracing", tracing.endpoints if tracing else {})
pulumi.export("lokiPushUrl", logging.push_url if logging else "")
pulumi.export("grafanaAdminUser", grafana.admin_user if grafana else "")
pulumi.export(
    "grafanaAdminPassword", grafana.admin_password if grafana else pulumi.Output.secret("")
)
# The htpasswd user in front of the dashboard and Jaeger (exposure.auth basic; "" otherwise).
pulumi.export("authUser", auth.basic_user if auth else "")
pulumi.export("authPassword", auth.basic_password if auth else pulumi.Output.secret(""))
pulumi.export(
    "namespaces",
    {
        key: component.namespace
        for key, component in {
            "linkerd": mesh,
            "viz": viz,
            "tracing": tracing,
            "logging": logging,
            "grafana": grafana,
            "emojivoto": app,
        }.items()
        if component is not None
    },
)
pulumi.export("teamNamespaces", onboarding.namespaces)
# The size of each volume asked for ("" without one): the next `up` compares the config with it
# and refuses what the cluster could not carry out (a changed Loki size, a smaller Badger one).
_volumes = cfg.volume_sizes(settings)
pulumi.export(cfg.LOKI_STORAGE_OUTPUT, _volumes[cfg.LOKI_STORAGE_OUTPUT])
pulumi.export(cfg.JAEGER_STORAGE_OUTPUT, _volumes[cfg.JAEGER_STORAGE_OUTPUT])
# Multicluster (README "Multicluster"): what a peer links with; empty with multicluster off.
pulumi.export(MULTICLUSTER_OUTPUT, multicluster.exported if multicluster else {})
pulumi.export(
    CREDENTIALS_OUTPUT,
    multicluster.credentials if multicluster else pulumi.Output.secret({}),
)
