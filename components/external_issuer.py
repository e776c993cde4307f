"""Linkerd's identity issuer from cert-manager, its trust roots from trust-manager.

With `identity.externalCA: true` and issuer scheme `kubernetes.io/tls` the control-plane chart
renders neither the `linkerd-identity-issuer` Secret nor the `linkerd-identity-trust-roots`
ConfigMap (charts/linkerd-control-plane/templates/identity.yaml: the Secret only for scheme
`linkerd.io/tls`, the ConfigMap only without externalCA), and its identity and proxy-injector
pods mount both: without them the control plane waits forever. Here a cert-manager
Certificate writes the Secret (`tls.crt`, `tls.key`, `ca.crt`: what scheme `kubernetes.io/tls`
reads, linkerd2 pkg/issuercerts/issuercerts.go) and a trust-manager Bundle the ConfigMap, as
linkerd.io's "Automatically Rotating Control Plane TLS Credentials" lays them out.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from components import common, sizing, versions
from components.config import ExternalIssuerSettings

# What the control-plane chart mounts (templates/identity.yaml, proxy-injector.yaml).
ISSUER_SECRET = "linkerd-identity-issuer"
TRUST_ROOTS = "linkerd-identity-trust-roots"
TRUST_ROOTS_KEY = "ca-bundle.crt"
# trust-manager writes the roots into every namespace with this label: the one the Linkerd CLI
# (and components/mesh.py) gives the control-plane namespace.
CONTROL_PLANE_SELECTOR = {"linkerd.io/is-control-plane": "true"}
CERT_MANAGER_RELEASE = "cert-manager"
# cert-manager's and trust-manager's pods run non-root, unprivileged, read-only (their charts'
# defaults), so their namespace enforces the `restricted` Pod Security level.
PSA = common.PSA_RESTRICTED
TRUST_MANAGER_RELEASE = "trust-manager"

# Pulumi waits for these before anything that depends on the object counts it as ready
# (pulumi-kubernetes provider/pkg/metadata/overrides.go `ReadyCondition`): the issuer Secret
# exists once the Certificate is Ready, the roots ConfigMap once the Bundle is Synced.
WAIT_FOR = "pulumi.com/waitFor"
# cert-manager's webhook serves once its pod is ready, but the API server trusts it only after
# cainjector has copied the webhook's CA into the webhook configurations; the chart's
# startupapicheck Job waits for both, but it is a post-install hook, which the v4 Chart never
# runs. Waiting for the injected caBundle closes that gap, so the Certificate below is not
# refused with "x509: certificate signed by unknown authority" on a fresh cluster.
WEBHOOK_CA_INJECTED = {WAIT_FOR: "jsonpath={.webhooks[0].clientConfig.caBundle}"}


def cert_manager_values(profile: str, namespace: str, gateway_api: bool = False) -> dict[str, Any]:
    """Values for the cert-manager chart. Pure.

    `gateway_api`: issue certificates for Gateways' listeners (a Gateway annotated
    `cert-manager.io/cluster-issuer`). cert-manager v1.21 watches Gateways only when its
    controller configuration says so (`gatewayAPI.enabled`, chart `config`), and needs the
    Gateway API CRDs installed before it starts."""
    size = lambda role: sizing.k8s_resources(profile, role)  # noqa: E731 - local shorthand
    ha = profile == "prod"
    values: dict[str, Any] = {
        # The CRDs are ordinary templates behind this switch (chart default off), so the v4
        # Chart installs them; `keep` (the default) makes Pulumi retain them on destroy, since
        # deleting a CRD deletes every Certificate and Issuer in the cluster.
        "crds": {"enabled": True, "keep": True},
        # A post-install hook Job (and its RBAC): never run by the v4 Chart, so not rendered;
        # WEBHOOK_CA_INJECTED does its job.
        "startupapicheck": {"enabled": False},
        # Leases next to the pods instead of in kube-system, which some platforms lock.
        "global": {"leaderElection": {"namespace": namespace}},
        "resources": size("cert-manager"),
        "webhook": {
            "resources": size("cert-manager-webhook"),
            "validatingWebhookConfigurationAnnotations": WEBHOOK_CA_INJECTED,
            "mutatingWebhookConfigurationAnnotations": WEBHOOK_CA_INJECTED,
        },
        "cainjector": {"resources": size("cert-manager-cainjector")},
    }
    if gateway_api:
        values["config"] = {
            "apiVersion": "controller.config.cert-manager.io/v1alpha1",
            "kind": "ControllerConfiguration",
            "gatewayAPI": {"enabled": True},
        }
    if ha:
        # cert-manager's own advice for production: more than one of each, with budgets.
        values["replicaCount"] = 2
        values["podDisruptionBudget"] = {"enabled": True}
        values["webhook"] |= {"replicaCount": 3, "podDisruptionBudget": {"enabled": True}}
        values["cainjector"] |= {"replicaCount": 2, "podDisruptionBudget": {"enabled": True}}
    return values


def trust_manager_values(profile: str, namespace: str) -> dict[str, Any]:
    """Values for the trust-manager chart. Pure."""
    values: dict[str, Any] = {
        "crds": {"enabled": True, "keep": True},
        # The only namespace trust-manager reads source Secrets from (the Bundle here has
        # inline sources only); its own namespace, as linkerd.io's guide installs it.
        "app": {"trust": {"namespace": namespace}},
        # The public CA package (an init container copying Debian's roots): the Bundle never
        # asks for `useDefaultCAs`, and mesh roots must not include the internet's CAs.
        "defaultPackage": {"enabled": False},
        "resources": sizing.k8s_resources(profile, "trust-manager"),
    }
    if profile == "prod":
        values |= {"replicaCount": 2, "podDisruptionBudget": {"enabled": True}}
    return values


def issuer_ref(settings: ExternalIssuerSettings) -> dict[str, str]:
    return {
        "group": "cert-manager.io",
        "kind": settings.issuer_ref_kind,
        "name": settings.issuer_ref_name,
    }


def certificate_spec(
    settings: ExternalIssuerSettings,
    trust_domain: str,
    validity_hours: int,
    early_renewal_hours: int,
) -> dict[str, Any]:
    """The identity issuer certificate: a CA (it signs every proxy's certificate), ECDSA P-256
    (the only issuer key Linkerd accepts), named for the trust domain, with the stack's issuer
    lifetime and renewal window. Pure."""
    name = f"identity.linkerd.{trust_domain}"
    return {
        "secretName": ISSUER_SECRET,
        "issuerRef": issuer_ref(settings),
        "isCA": True,
        "commonName": name,
        "dnsNames": [name],
        "duration": f"{validity_hours}h0m0s",
        "renewBefore": f"{early_renewal_hours}h0m0s",
        # A new key at each renewal (cert-manager's default since 1.18, set for older ones).
        "privateKey": {"algorithm": "ECDSA", "size": 256, "rotationPolicy": "Always"},
    }


def bundle_spec(trust_anchors_pem: pulumi.Input[str]) -> dict[str, Any]:
    """The trust roots: the configured anchor (the new and the old one during a rotation),
    written as `ca-bundle.crt` into the control-plane namespace. Pure.

    Inline rather than from a Secret: the anchor is a config value, checked before any resource
    and exported as `trustAnchorPem`, so the roots every proxy gets, linkerd-config and the
    stack output cannot disagree, and the Bundle needs no Secret that might not exist (a named
    Secret source that is missing stops trust-manager from syncing at all).
    """
    return {
        "sources": [{"inLine": trust_anchors_pem}],
        "target": {
            "configMap": {"key": TRUST_ROOTS_KEY},
            "namespaceSelector": {"matchLabels": dict(CONTROL_PLANE_SELECTOR)},
        },
    }


@dataclass
class ExternalIssuerArgs:
    settings: ExternalIssuerSettings
    """Issuer reference, and whether to install cert-manager and trust-manager."""
    profile: str
    """`dev` or `prod` (replicas, budgets and resources of cert-manager and trust-manager)."""
    trust_domain: str
    """Linkerd's identity trust domain: the issuer is `identity.linkerd.<trust_domain>`."""
    trust_anchor_pem: pulumi.Input[str]
    """The anchor (public certificate) that signs the issuer."""
    issuer_validity_hours: int
    issuer_early_renewal_hours: int
    namespace: k8s.core.v1.Namespace | None = None
    """The control-plane namespace, required (components/mesh.py sets it, since it makes it):
    the issuer Secret goes there, and trust-manager writes the roots there once it exists with
    its `linkerd.io/is-control-plane` label."""
    trust_anchor_key_pem: pulumi.Input[str] | None = None
    """The anchor's private key, a secret. Given: the stack makes the referenced issuer, a CA
    issuer holding anchor and key, so a fresh cluster starts in one `up`. Default: none, the
    issuer exists already."""
    trust_anchors_pem: pulumi.Input[str] | None = None
    """The roots proxies trust, newest first: during a trust-anchor rotation the new and the
    old anchor. Default: `trust_anchor_pem` alone."""
    gateway_api: bool = False
    """The cert-manager the stack installs also issues the Gateway's listener certificates
    (`exposure.mode: gateway` with `clusterIssuer`). Default: false, it leaves Gateways alone."""
    gateway_api_crds: pulumi.Resource | None = None
    """With `gateway_api`, the release that installs the Gateway API CRDs, which cert-manager
    starts after. Default: none (the cluster has them)."""


class ExternalIssuer(pulumi.ComponentResource):
    """cert-manager and trust-manager (optional), and the two objects Linkerd's control plane
    mounts with an external issuer.

    Children: the cert-manager namespace and the cert-manager and trust-manager charts (with
    `install_cert_manager`); the CA issuer and its Secret (with the anchor's key); the
    Certificate writing `linkerd-identity-issuer` and the Bundle writing
    `linkerd-identity-trust-roots`. The control plane must depend on this component: Pulumi
    waits for the Certificate to be Ready and the Bundle Synced.

    Outputs: `issuer_secret` (`<namespace>/<name>` of the issuer Secret) and `trust_roots`
    (the roots ConfigMap's name), both known once the objects writing them exist.
    """

    issuer_secret: pulumi.Output[str]
    trust_roots: pulumi.Output[str]

    def __init__(
        self, name: str, args: ExternalIssuerArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("meshstack:mesh:ExternalIssuer", name, None, opts)
        settings = args.settings
        ns_name = settings.cert_manager_namespace

        assert args.namespace is not None, "the control-plane namespace comes first"
        linkerd_ns = args.namespace.metadata.name

        # --- cert-manager and trust-manager ----------------------------------------------
        managers: list[pulumi.Resource] = []
        cm_namespace: pulumi.Input[str] = ns_name
        if settings.install_cert_manager:
            # Not meshed: the injector skips it anyway, and cert-manager's webhook must answer
            # the API server before any proxy exists. Its pods meet `restricted`.
            ns = common.namespace(ns_name, f"{name}-cert-manager-namespace", self, PSA)
            cert_manager = common.chart(
                f"{name}-cert-manager",
                versions.CERT_MANAGER,
                CERT_MANAGER_RELEASE,
                ns.metadata.name,
                cert_manager_values(args.profile, ns_name, args.gateway_api),
                self,
                depends_on=(
                    [args.gateway_api_crds]
                    if args.gateway_api and args.gateway_api_crds is not None
                    else []
                ),
            )
            trust_manager = common.chart(
                f"{name}-trust-manager",
                versions.TRUST_MANAGER,
                TRUST_MANAGER_RELEASE,
                ns.metadata.name,
                trust_manager_values(args.profile, ns_name),
                self,
                # Its webhook certificate is a cert-manager Certificate (the chart's default),
                # so cert-manager's CRDs and webhook come first.
                depends_on=[cert_manager],
            )
            managers = [cert_manager, trust_manager]
            cm_namespace = ns.metadata.name

        # --- The issuer that signs (made here from the anchor's key) ----------------------
        issuer_deps: list[pulumi.Resource] = list(managers)
        if args.trust_anchor_key_pem is not None:
            cluster_wide = settings.issuer_ref_kind == "ClusterIssuer"
            # A ClusterIssuer reads its CA from cert-manager's cluster resource namespace (the
            # chart's default: its own); an Issuer from its own namespace.
            ca_namespace = cm_namespace if cluster_wide else linkerd_ns
            ca_secret = k8s.core.v1.Secret(
                f"{name}-ca",
                metadata=k8s.meta.v1.ObjectMetaArgs(
                    name=f"{settings.issuer_ref_name}-ca",
                    namespace=ca_namespace,
                    labels=common.MANAGED_BY,
                ),
                type="kubernetes.io/tls",
                string_data={
                    "tls.crt": args.trust_anchor_pem,
                    "tls.key": pulumi.Output.secret(args.trust_anchor_key_pem),
                },
                opts=pulumi.ResourceOptions(parent=self),
            )
            ca_issuer = k8s.apiextensions.CustomResource(
                f"{name}-ca-issuer",
                api_version="cert-manager.io/v1",
                kind=settings.issuer_ref_kind,
                metadata=k8s.meta.v1.ObjectMetaArgs(
                    name=settings.issuer_ref_name,
                    namespace=None if cluster_wide else linkerd_ns,
                    labels=common.MANAGED_BY,
                    annotations={WAIT_FOR: "condition=Ready"},
                ),
                spec={"ca": {"secretName": ca_secret.metadata.name}},
                # cert-manager's CRDs and admission webhook must be serving.
                opts=pulumi.ResourceOptions(parent=self, depends_on=managers),
            )
            issuer_deps.append(ca_issuer)

        # --- What the control plane mounts -----------------------------------------------
        certificate = k8s.apiextensions.CustomResource(
            f"{name}-certificate",
            api_version="cert-manager.io/v1",
            kind="Certificate",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=ISSUER_SECRET,
                namespace=linkerd_ns,
                labels=common.MANAGED_BY,
                annotations={WAIT_FOR: "condition=Ready"},
            ),
            spec=certificate_spec(
                settings,
                args.trust_domain,
                args.issuer_validity_hours,
                args.issuer_early_renewal_hours,
            ),
            # Ready means the Secret is written: after the issuer (and cert-manager) exist.
            opts=pulumi.ResourceOptions(parent=self, depends_on=issuer_deps),
        )
        bundle = k8s.apiextensions.CustomResource(
            f"{name}-trust-roots",
            api_version="trust.cert-manager.io/v1alpha1",
            kind="Bundle",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=TRUST_ROOTS,
                labels=common.MANAGED_BY,
                annotations={WAIT_FOR: "condition=Synced"},
            ),
            spec=bundle_spec(
                args.trust_anchor_pem if args.trust_anchors_pem is None else args.trust_anchors_pem
            ),
            # trust-manager's CRD and webhook must be serving, and the target namespace must
            # exist (with its label) for Synced to mean the ConfigMap is there.
            opts=pulumi.ResourceOptions(parent=self, depends_on=[*managers, args.namespace]),
        )

        self.issuer_secret = pulumi.Output.all(linkerd_ns, certificate.id).apply(
            lambda got: f"{got[0]}/{ISSUER_SECRET}"
        )
        self.trust_roots = bundle.id.apply(lambda _: TRUST_ROOTS)
        self.register_outputs(
            {"issuer_secret": self.issuer_secret, "trust_roots": self.trust_roots}
        )
