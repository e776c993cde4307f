"""Linkerd: Gateway API CRDs, linkerd-crds and the control plane with mTLS identity."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from components import common, sizing, versions
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


def gateway_api_values() -> dict[str, Any]:
    """Values for gateway-crds-helm: the Gateway API standard channel and nothing else.

    The chart's defaults install nothing (values.yaml: `crds.gatewayAPI.enabled: false`,
    channel `experimental`). Standard only: Linkerd reads the standard kinds, and upstream
    refuses mixed channels (the chart's own `safe-upgrades` admission policy). Envoy Gateway's
    own CRDs stay off: this stack runs no Envoy Gateway.
    """
    return {
        "crds": {
            "gatewayAPI": {"enabled": True, "channel": "standard"},
            "envoyGateway": {"enabled": False},
        }
    }


def webhooks() -> list[Webhook]:
    return [Webhook(role, svc, NAMESPACE) for role, (_, svc) in CONTROL_PLANE_WEBHOOKS.items()]


@dataclass(frozen=True)
class TracingHookup:
    """Where Linkerd proxies send spans: the collector's OTLP gRPC address and mesh identity."""

    endpoint: str
    service_account: str
    namespace: str


def namespace_metadata() -> tuple[dict[str, str], dict[str, str]]:
    """Labels and annotations the Linkerd CLI gives the control-plane namespace (no CNI)."""
    labels = {
        "linkerd.io/is-control-plane": "true",
        "config.linkerd.io/admission-webhooks": "disabled",
        "linkerd.io/control-plane-ns": NAMESPACE,
        **common.PSA_PRIVILEGED,
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
        "proxy": {"resources": size("linkerd-proxy")},
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


@dataclass
class MeshArgs:
    profile: str
    """`dev` or `prod` (HA values and production resources)."""
    cluster_domain: str
    """The cluster's DNS domain, also the identity trust domain."""
    trust_anchor_pem: pulumi.Input[str]
    """The trust anchor certificate every proxy trusts (public)."""
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
    tracing: TracingHookup | None = None
    """Default: none, proxies do not export spans."""


class Mesh(pulumi.ComponentResource):
    """Linkerd's CRDs and control plane.

    Children: the Gateway API CRDs (optional; the `gateway-crds-helm` chart, every object it
    renders kept on destroy), the `linkerd` namespace, the `linkerd-crds` and
    `linkerd-control-plane` charts. Anything meshed must depend on `control_plane`: the proxy
    injector's failure policy is `Ignore` in dev, so pods created before it is ready would
    silently run without a proxy.

    Outputs: `namespace`, `trust_domain`.
    """

    namespace: pulumi.Output[str]
    trust_domain: pulumi.Output[str]
    crds: k8s.helm.v4.Chart
    control_plane: k8s.helm.v4.Chart

    def __init__(
        self, name: str, args: MeshArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("meshstack:mesh:Mesh", name, None, opts)

        crd_deps: list[pulumi.Resource] = []
        if args.install_gateway_api_crds:
            gateway_api = common.chart(
                f"{name}-gateway-api-crds",
                versions.GATEWAY_API_CRDS,
                GATEWAY_API_RELEASE,
                None,
                gateway_api_values(),
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

        labels, annotations = namespace_metadata()
        ns = common.namespace(NAMESPACE, f"{name}-namespace", self, labels, annotations)

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
        self.control_plane = common.chart(
            f"{name}-control-plane",
            versions.LINKERD_CONTROL_PLANE,
            "linkerd-control-plane",
            ns.metadata.name,
            control_plane_values(
                args.profile,
                args.cluster_domain,
                args.trust_anchor_pem,
                args.issuer_mode,
                args.issuer_cert_pem,
                args.issuer_key_pem,
                args.webhook_certs,
                args.tracing,
            ),
            self,
            # The control plane creates policy resources whose CRDs the CRD chart installs, and
            # its policy controller only watches Gateway API kinds that exist when it starts.
            # Both CRD sets install in parallel: one readiness stage.
            depends_on=[self.crds, *crd_deps],
        )

        self.namespace = ns.metadata.name
        self.trust_domain = pulumi.Output.from_input(args.cluster_domain)
        self.register_outputs({"namespace": self.namespace, "trust_domain": self.trust_domain})
