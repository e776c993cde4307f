"""Linkerd: Gateway API CRDs, linkerd-crds and the control plane with mTLS identity."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

import pulumi
import pulumi_kubernetes as k8s
from pulumi.output import UNKNOWN, contains_unknowns

from components import common, sizing, versions
from components.external_issuer import ExternalIssuer, ExternalIssuerArgs
from components.identity import Webhook, WebhookCert

NAMESPACE = "linkerd"

# Webhooks the control-plane chart fronts with TLS; the chart would generate a new self-signed
# certificate for each on every render unless given one. Role → values key and Service.
CONTROL_PLANE_WEBHOOKS = {
    "proxy-injector": ("proxyInjector", "linkerd-proxy-injector"),
    "sp-validator": ("profileValidator", "linkerd-sp-validator"),
    "policy-validator": ("policyValidator", "linkerd-policy-validator"),
}

# A fixed daily slot for the heartbeat CronJob: left unset, the chart computes it from the
# render time (`now`), so every preview would show a change.
HEARTBEAT_SCHEDULE = "17 3 * * *"


# Release of the Gateway API CRD chart; it renders cluster-scoped objects only.
GATEWAY_API_RELEASE = "gateway-api-crds"


def gateway_api_values(envoy_gateway: bool = False) -> dict[str, Any]:
    """Values for gateway-crds-helm: the Gateway API standard channel, and Envoy Gateway's own
    CRDs when the stack installs Envoy Gateway.

    The chart's defaults install nothing (values.yaml: `crds.gatewayAPI.enabled: false`,
    channel `experimental`). Standard only: Linkerd reads the standard kinds, and upstream
    refuses mixed channels (the chart's own `safe-upgrades` admission policy). Envoy Gateway's
    CRDs come from here, not from its controller chart (`crds.enabled: false` there): one
    owner for each CRD, kept when the controller goes (components/gateway.py).
    """
    return {
        "crds": {
            "gatewayAPI": {"enabled": True, "channel": "standard"},
            "envoyGateway": {"enabled": envoy_gateway},
        }
    }


# --- The CNI plugin ---------------------------------------------------------------------------
# The namespace and release `linkerd install-cni` uses; `linkerd check` looks for the plugin
# there (`--cni-namespace`, default linkerd-cni).
CNI_NAMESPACE = "linkerd-cni"
CNI_RELEASE = "linkerd-cni"
# The proxy's ports and user, which the plugin's iptables rules must name exactly as injected
# proxies use them (Linkerd docs, features/cni.md): both charts get them from here.
PROXY_PORTS = {"admin": 4191, "control": 4190, "inbound": 4143, "outbound": 4140}
PROXY_UID = 2102


def cni_namespace_labels() -> dict[str, str]:
    """The labels `linkerd install-cni` gives its namespace (linkerd2-cni
    templates/cni-plugin.yaml, CLI only). `privileged`: the DaemonSet mounts hostPath volumes
    (the CNI config and binary folders), which `baseline` already forbids."""
    return {
        "linkerd.io/cni-resource": "true",
        "config.linkerd.io/admission-webhooks": "disabled",
        **common.PSA_PRIVILEGED,
    }


def cni_values(profile: str) -> dict[str, Any]:
    """Values for linkerd2-cni: the proxy's ports and user as the control plane injects them.
    Everything else is upstream's (nft iptables, IPv6 off, the repair controller off)."""
    return {
        "inboundProxyPort": PROXY_PORTS["inbound"],
        "outboundProxyPort": PROXY_PORTS["outbound"],
        "proxyAdminPort": PROXY_PORTS["admin"],
        "proxyControlPort": PROXY_PORTS["control"],
        "proxyUID": PROXY_UID,
        "resources": sizing.size(profile, "linkerd-cni").linkerd(),
    }


def proxy_security_context() -> dict[str, Any]:
    """The securityContext of every proxy, the injected ones included: the chart's own
    (`_proxy.tpl`: non-root as `PROXY_UID`, read-only root, no privilege escalation, seccomp
    RuntimeDefault) plus `drop: [ALL]`. Left to the chart, the injector copies the
    capabilities of the pod's first container into the proxy (linkerd2 pkg/inject/inject.go),
    so a proxy beside an app that drops nothing would keep the runtime's defaults and fail
    PSA `restricted`; a set `proxy.securityContext` is used as it is."""
    return {**common.restricted_container_security(), "runAsUser": PROXY_UID}


def webhooks() -> list[Webhook]:
    return [Webhook(role, svc, NAMESPACE) for role, (_, svc) in CONTROL_PLANE_WEBHOOKS.items()]


@dataclass(frozen=True)
class TracingHookup:
    """Where Linkerd proxies send spans: the collector's OTLP gRPC address and mesh identity."""

    endpoint: str
    service_account: str
    namespace: str


def namespace_metadata(cni: bool = False) -> tuple[dict[str, str], dict[str, str]]:
    """Labels and annotations the Linkerd CLI gives the control-plane namespace: PSA
    `restricted` with the CNI plugin, `privileged` without (linkerd-init needs NET_ADMIN and
    NET_RAW), as upstream's templates/namespace.yaml does."""
    labels = {
        "linkerd.io/is-control-plane": "true",
        "config.linkerd.io/admission-webhooks": "disabled",
        "linkerd.io/control-plane-ns": NAMESPACE,
        **(common.PSA_RESTRICTED if cni else common.PSA_PRIVILEGED),
    }
    return labels, {"linkerd.io/inject": "disabled"}


def webhook_values(certs: dict[str, WebhookCert]) -> dict[str, Any]:
    return {
        key: {
            "externalSecret": False,
            "crtPEM": certs[role].cert_pem,
            "keyPEM": certs[role].key_pem,
            # The chart falls back to a freshly generated CA when caBundle is empty, which
            # would not match the certificate above.
            "caBundle": certs[role].ca_bundle,
        }
        for role, (key, _) in CONTROL_PLANE_WEBHOOKS.items()
    }


def control_plane_values(
    profile: str,
    cluster_domain: str,
    trust_anchor_pem: pulumi.Input[str],
    issuer_mode: str,
    issuer_cert_pem: pulumi.Input[str] | None,
    issuer_key_pem: pulumi.Input[str] | None,
    certs: dict[str, WebhookCert],
    tracing: TracingHookup | None,
    cni: bool = False,
) -> dict[str, Any]:
    """Values for linkerd-control-plane. Pure: the same inputs give the same dict."""
    size = lambda role: sizing.size(profile, role).linkerd()  # noqa: E731 - local shorthand
    issuer: dict[str, Any] = {"scheme": "linkerd.io/tls"}
    if issuer_mode == "pulumi":
        issuer["tls"] = {"crtPEM": issuer_cert_pem, "keyPEM": issuer_key_pem}
    else:
        # cert-manager writes the `linkerd-identity-issuer` Secret, trust-manager the roots.
        issuer["scheme"] = "kubernetes.io/tls"
    values: dict[str, Any] = {
        "clusterDomain": cluster_domain,
        "identityTrustDomain": cluster_domain,
        "identityTrustAnchorsPEM": trust_anchor_pem,
        "identity": {"externalCA": issuer_mode == "external", "issuer": issuer},
        **webhook_values(certs),
        "heartbeatSchedule": HEARTBEAT_SCHEDULE,
        "proxy": {"resources": size("linkerd-proxy"), "securityContext": proxy_security_context()},
        "destinationResources": size("linkerd-destination"),
        "spValidatorResources": size("linkerd-destination"),
        "policyController": {"resources": size("linkerd-destination")},
        "identityResources": size("linkerd-identity"),
        "proxyInjectorResources": size("linkerd-proxy-injector"),
        "heartbeatResources": size("linkerd-heartbeat"),
    }
    if profile == "prod":
        # Upstream values-ha.yaml, with the resources above in place of its own.
        values |= {
            "highAvailability": True,
            "controllerReplicas": 3,
            "enablePodAntiAffinity": True,
            "enablePodDisruptionBudget": True,
            "controller": {"podDisruptionBudget": {"maxUnavailable": 1}},
            "deploymentStrategy": {"rollingUpdate": {"maxUnavailable": 1, "maxSurge": "25%"}},
            "webhookFailurePolicy": "Fail",
        }
    if cni:
        # The plugin redirects traffic, so pods get the unprivileged network validator instead
        # of linkerd-init; the ports and user are the ones the plugin's rules name.
        values["cniEnabled"] = True
        values["proxy"] |= {"ports": dict(PROXY_PORTS), "uid": PROXY_UID}
    if tracing is not None:
        values["proxy"]["tracing"] = {
            "enabled": True,
            "collector": {
                "endpoint": tracing.endpoint,
                "meshIdentity": {
                    "serviceAccountName": tracing.service_account,
                    "namespace": tracing.namespace,
                },
            },
        }
    return values


# --- What every injected proxy is made of -----------------------------------------------------
# The proxy injector builds each proxy from the control plane's values, as the chart writes them
# into the `linkerd-config` ConfigMap, and from the trust roots, both read at every admission
# (linkerd2 controller/proxy-injector/webhook.go:43-52), and stamps the Linkerd version
# (pkg/inject/inject.go:1289-1293). Running proxies never pick up a change: only new pods do.

# Of the values this stack passes, those that reach the proxy. The rest configure the control
# plane's own pods (replicas, controller resources, webhooks) or, like the issuer certificate,
# change nothing a proxy holds: proxies fetch their certificates from identity at run time, and
# only the trust anchors are baked in.
PROXY_VALUE_KEYS = (
    "clusterDomain",
    "identityTrustDomain",
    "identityTrustAnchorsPEM",
    "proxy",
    "proxyInit",
    # linkerd-init or the network validator: only pods injected again drop the privileged one.
    "cniEnabled",
)
# The pod-template annotation carrying `proxy_config_digest`: a new value is a new pod template,
# so the workload rolls, and its new pods get the new proxy.
PROXY_CONFIG_ANNOTATION = "meshstack.io/proxy-config"
# The same digest as an env var, for a chart with no pod annotations value (Jaeger's).
PROXY_CONFIG_ENV = "MESHSTACK_PROXY_CONFIG_SHA256"
# What the digest reads in a preview where part of it is not known yet (a trust anchor created
# or replaced by this very `up`). Any such change rolls every proxy anyway; a known placeholder
# keeps the charts that carry it renderable in that preview, where an unknown value would
# leave them with no objects to show.
PROXY_CONFIG_PENDING = "pending"


def proxy_config(values: Mapping[str, Any], linkerd_version: str) -> dict[str, Any]:
    """What the proxies are injected with: the Linkerd version and `PROXY_VALUE_KEYS` of the
    control-plane values (trust anchors, tracing, resources, ...). Pure."""
    return {
        "linkerdVersion": linkerd_version,
        **{key: values[key] for key in PROXY_VALUE_KEYS if key in values},
    }


def config_digest(config: Any) -> str:
    """A SHA-256 of a resolved config, stable across runs (keys sorted), or
    `PROXY_CONFIG_PENDING` while part of it is unknown (previews only)."""
    if config is UNKNOWN or contains_unknowns(config):
        return PROXY_CONFIG_PENDING
    canonical = json.dumps(_whole_numbers(config), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def _whole_numbers(value: Any) -> Any:
    """`4143.0` as `4143`: values reach the chart (and the state) as doubles, which Helm reads
    alike, so a port digests the same whichever form it is in."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {k: _whole_numbers(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_whole_numbers(v) for v in value]
    return value


def proxy_config_digest(config: Mapping[str, Any]) -> pulumi.Output[str]:
    """`config_digest` of `config`, whose values may be Outputs (the trust anchors)."""
    # run_with_unknowns: the digest is computed in a preview too, with a placeholder for what
    # is not known yet, instead of being unknown itself (see PROXY_CONFIG_PENDING).
    return pulumi.Output.from_input(config).apply(config_digest, run_with_unknowns=True)


@dataclass
class MeshArgs:
    profile: str
    """`dev` or `prod` (HA values and production resources)."""
    cluster_domain: str
    """The cluster's DNS domain, also the identity trust domain."""
    trust_anchor_pem: pulumi.Input[str]
    """The trust anchors every proxy trusts (public): one, or the new and the old one while a
    rotation runs (`identityTrustAnchorsPEM`)."""
    webhook_certs: dict[str, WebhookCert]
    """Certificates for the three webhooks, so renders never generate new ones."""
    issuer_mode: str = "pulumi"
    """Default: pulumi, the issuer comes from the Identity component."""
    issuer_cert_pem: pulumi.Input[str] | None = None
    """The issuer certificate. Default: none (required with issuer_mode `pulumi`)."""
    issuer_key_pem: pulumi.Input[str] | None = None
    """The issuer key, a secret. Default: none (required with issuer_mode `pulumi`)."""
    install_gateway_api_crds: bool = True
    """Default: true, Gateway API `versions.GATEWAY_API_VERSION` (standard channel) from the
    pinned gateway-crds-helm chart, kept on destroy. Set false when the cluster ships Gateway
    API CRDs (e.g. GKE), which would otherwise clash."""
    install_envoy_gateway_crds: bool = False
    """Default: false. True (the stack installs Envoy Gateway) adds Envoy Gateway's CRDs to the
    same chart; needs `install_gateway_api_crds`."""
    tracing: TracingHookup | None = None
    """Default: none, proxies do not export spans."""
    cni: bool = False
    """Install the linkerd2-cni plugin (namespace `linkerd-cni`) before the control plane and
    enable it there. Default: false, each meshed pod runs the NET_ADMIN `linkerd-init`."""
    external_issuer: ExternalIssuerArgs | None = None
    """With issuer_mode `external`, required: what makes the issuer Secret and trust roots the
    control plane mounts (its namespace is this component's). Default: none."""


class Mesh(pulumi.ComponentResource):
    """Linkerd's CRDs and control plane.

    Children: the Gateway API CRDs (optional; the `gateway-crds-helm` chart, every object it
    renders kept on destroy), the `linkerd` namespace, the external issuer (with issuer mode
    `external`: components/external_issuer.py), with `cni` the `linkerd-cni` namespace and the
    `linkerd2-cni` chart the control plane waits for, the `linkerd-crds` and
    `linkerd-control-plane` charts. Anything meshed must depend on `control_plane`: the proxy
    injector's failure policy is `Ignore` in dev, so pods created before it is ready would
    silently run without a proxy.

    Outputs: `namespace`, `trust_domain`, and `proxy_config`: a digest of what every proxy
    is injected with (`proxy_config()`), which the stack's meshed workloads carry in their pod
    templates so that a change rolls them in the same `up`.
    """

    namespace: pulumi.Output[str]
    trust_domain: pulumi.Output[str]
    proxy_config: pulumi.Output[str]
    crds: k8s.helm.v4.Chart
    control_plane: k8s.helm.v4.Chart

    def __init__(
        self, name: str, args: MeshArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("meshstack:mesh:Mesh", name, None, opts)

        crd_deps: list[pulumi.Resource] = []
        gateway_api: pulumi.Resource | None = None
        if args.install_gateway_api_crds:
            gateway_api = common.chart(
                f"{name}-gateway-api-crds",
                versions.GATEWAY_API_CRDS,
                GATEWAY_API_RELEASE,
                None,
                gateway_api_values(args.install_envoy_gateway_crds),
                self,
                # Cluster-scoped objects other tenants' routes live in: `pulumi destroy` (or
                # turning installGatewayApiCrds off) leaves them, since deleting a CRD deletes
                # every object of its kind in the cluster.
                retain_on_delete=True,
                # Stacks from before the chart applied the same CRDs from a ConfigFile of this
                # name; children keep their names (prefix = resource name in both), so the
                # CRDs are updated in place instead of deleted and created again.
                aliases=[pulumi.Alias(type_="kubernetes:yaml/v2:ConfigFile")],
            )
            crd_deps.append(gateway_api)

        labels, annotations = namespace_metadata(args.cni)
        ns = common.namespace(NAMESPACE, f"{name}-namespace", self, labels, annotations)

        cni_deps: list[pulumi.Resource] = []
        if args.cni:
            cni_ns = common.namespace(
                CNI_NAMESPACE, f"{name}-cni-namespace", self, cni_namespace_labels()
            )
            cni_deps.append(
                common.chart(
                    f"{name}-cni",
                    versions.LINKERD2_CNI,
                    CNI_RELEASE,
                    cni_ns.metadata.name,
                    cni_values(args.profile),
                    self,
                )
            )

        self.crds = common.chart(
            f"{name}-crds",
            versions.LINKERD_CRDS,
            "linkerd-crds",
            ns.metadata.name,
            # One owner of the Gateway API CRDs: the chart above (or the cluster), never
            # linkerd-crds' bundled v1.1.1 experimental copy.
            {"installGatewayAPI": False},
            self,
        )
        issuer_deps: list[pulumi.Resource] = []
        if args.issuer_mode == "external":
            assert args.external_issuer is not None, "issuer `external` needs its settings"
            issuer_deps.append(
                ExternalIssuer(
                    f"{name}-external-issuer",
                    replace(
                        args.external_issuer,
                        namespace=ns,
                        gateway_api_crds=gateway_api,
                    ),
                    opts=pulumi.ResourceOptions(parent=self),
                )
            )
        values = control_plane_values(
            args.profile,
            args.cluster_domain,
            args.trust_anchor_pem,
            args.issuer_mode,
            args.issuer_cert_pem,
            args.issuer_key_pem,
            args.webhook_certs,
            args.tracing,
            args.cni,
        )
        self.control_plane = common.chart(
            f"{name}-control-plane",
            versions.LINKERD_CONTROL_PLANE,
            "linkerd-control-plane",
            ns.metadata.name,
            values,
            self,
            # The control plane creates policy resources whose CRDs the CRD chart installs, and
            # its policy controller only watches Gateway API kinds that exist when it starts.
            # Both CRD sets install in parallel: one readiness stage. An external issuer's
            # Secret and trust roots must exist first, or identity and the injector never start.
            # With CNI the plugin's DaemonSet must be ready first: `cniEnabled` "requires the
            # linkerd-cni plugin to already be installed" (chart values.yaml), and a pod the
            # injector gives a network validator fails it until the plugin runs on its node.
            depends_on=[self.crds, *crd_deps, *issuer_deps, *cni_deps],
        )

        self.namespace = ns.metadata.name
        self.trust_domain = pulumi.Output.from_input(args.cluster_domain)
        self.proxy_config = proxy_config_digest(
            proxy_config(values, versions.LINKERD_CONTROL_PLANE.version)
        )
        self.register_outputs(
            {
                "namespace": self.namespace,
                "trust_domain": self.trust_domain,
                "proxy_config": self.proxy_config,
            }
        )
