"""Team namespaces joining the mesh: injected, default-deny, told where to send traces.

Each namespace is meshed with Linkerd's `deny` default inbound policy (`common`), so nothing
reaches a pod until a policy says so. This module also keeps what *any* meshed application
namespace needs (emojivoto uses the same pieces):

- `proxy_admin_policy`: the one hole default-deny must not close, viz's Prometheus scraping
  every proxy's admin port (the golden metrics of the dashboard and of Grafana);
- `policy_resources`: turns a plain policy description (kind → name → spec) into Linkerd
  policy custom resources.

Operational notes:
- Adopting a namespace only changes its metadata: pods already running there keep running
  without a proxy until they are restarted (`kubectl -n <ns> rollout restart deploy`), and from
  then on everything they serve is denied until the team adds Servers and AuthorizationPolicies.
- An adopted namespace gets back exactly what it had when the stack lets it go (`pulumi
  destroy`, or the team removed from the config): the patch never forces a key another field
  manager set, so it owns only the keys it added and those it set to the value they already had.
  Deleting the patch releases its field manager, and server-side apply then removes only the
  keys nobody else owns (pulumi-kubernetes `ssa.Relinquish`). A key the team set to another
  value stops the `up` at that patch with a field-manager conflict naming it, instead of being
  overwritten and then deleted on destroy.
- Pod Security on an adopted namespace (`adopted_labels`) is never loosened: the patch sets
  only `restricted`, the strictest level, so a team's own level either is it already or stops
  the `up` with that conflict. Without the CNI plugin it leaves `enforce` to the team: meshed
  pods then need `privileged` (linkerd-init), which the stack does not impose on a namespace
  it does not own.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import pulumi
import pulumi_kubernetes as k8s

from components import common, viz
from components.config import DNS_LABEL, SERVICE_ACCOUNT_NAME, TeamNamespace

# --- Meshed namespaces -----------------------------------------------------------------------


# The ConfigMap every onboarded namespace gets; apps load it with `envFrom`.
TRACING_CONFIGMAP = "meshstack-tracing"

# The proxy's admin port (metrics, /live, /ready) as named in every injected pod spec.
PROXY_ADMIN_PORT_NAME = "linkerd-admin"

# viz's bundled Prometheus runs as this ServiceAccount (viz `prometheus-rbac.yaml`); its
# `linkerd-proxy` scrape job reads every proxy's `linkerd-admin` port.
VIZ_PROMETHEUS_SERVICE_ACCOUNT = "prometheus"


# --- Linkerd policy as plain data ------------------------------------------------------------

# API version of each policy kind the stack writes: Server's storage version and the only
# served version of the others (the pinned linkerd-crds chart, templates/policy/).
POLICY_API_VERSIONS = {
    "Server": "policy.linkerd.io/v1beta3",
    "MeshTLSAuthentication": "policy.linkerd.io/v1alpha1",
    "NetworkAuthentication": "policy.linkerd.io/v1alpha1",
    "AuthorizationPolicy": "policy.linkerd.io/v1alpha1",
}
# Resource-name role of each kind, so child names stay short and stable.
_KIND_ROLES = {
    "Server": "server",
    "MeshTLSAuthentication": "meshtls",
    "NetworkAuthentication": "netauthn",
    "AuthorizationPolicy": "authz",
}

# kind → object name → spec. Plain dicts so the policy is tested without mocks.
PolicySet = dict[str, dict[str, dict[str, Any]]]


def empty_policy() -> PolicySet:
    return {kind: {} for kind in POLICY_API_VERSIONS}


def merge_policies(*sets: PolicySet) -> PolicySet:
    """One policy set from several; a name used twice for one kind is a bug, so it raises."""
    out = empty_policy()
    for policy in sets:
        for kind, objects in policy.items():
            for obj_name, spec in objects.items():
                if obj_name in out[kind]:
                    raise ValueError(f"two {kind} objects named {obj_name}; rename one")
                out[kind][obj_name] = spec
    return out


def server(selector: Mapping[str, Any], port: str | int, protocol: str) -> dict[str, Any]:
    """A Server spec: which pods and port a policy guards, and how the proxy reads it."""
    return {"podSelector": dict(selector), "port": port, "proxyProtocol": protocol}


def service_account_refs(*refs: tuple[str, str | None]) -> dict[str, Any]:
    """A MeshTLSAuthentication spec for ServiceAccounts, as (name, namespace or None=local)."""
    identity_refs = []
    for name, namespace in refs:
        ref = {"kind": "ServiceAccount", "name": name}
        if namespace:
            ref["namespace"] = namespace
        identity_refs.append(ref)
    return {"identityRefs": identity_refs}


def authorization(server_name: str, kind: str, authn_name: str) -> dict[str, Any]:
    """An AuthorizationPolicy spec letting clients that pass one authentication into a Server.

    One authentication per policy on purpose: the refs of one policy must *all* match, and
    Linkerd admits at most one of each kind; a second kind of client gets a second policy.
    """
    return {
        "targetRef": {"group": "policy.linkerd.io", "kind": "Server", "name": server_name},
        "requiredAuthenticationRefs": [
            {"group": "policy.linkerd.io", "kind": kind, "name": authn_name}
        ],
    }


def proxy_admin_policy(
    selector: Mapping[str, Any],
    prometheus_service_account: str = VIZ_PROMETHEUS_SERVICE_ACCOUNT,
    prometheus_namespace: str = viz.NAMESPACE,
) -> PolicySet:
    """Let viz's Prometheus scrape the proxies of the selected pods under default-deny.

    With `deny` the proxy's admin port refuses Prometheus too, and the dashboards go blank.
    A Server on it with no routes keeps Linkerd's automatic authorization of the kubelet's
    probe paths (/live, /ready) on that port (policy controller: a Server without
    HTTPRoutes gets the default probe routes), so only the scraper needs naming here.
    """
    policy = empty_policy()
    policy["Server"]["linkerd-admin"] = server(selector, PROXY_ADMIN_PORT_NAME, "HTTP/1")
    policy["MeshTLSAuthentication"]["metrics-scraper"] = service_account_refs(
        (prometheus_service_account, prometheus_namespace)
    )
    policy["AuthorizationPolicy"]["linkerd-admin-metrics-scraper"] = authorization(
        "linkerd-admin", "MeshTLSAuthentication", "metrics-scraper"
    )
    return policy


# Every meshed client, whatever its namespace: Linkerd's wildcard identity.
ANY_MESH_IDENTITY = {"identities": ["*"]}
# Every address, IPv4 and IPv6: clients that arrive without a mesh identity.
ALL_NETWORKS = {"networks": [{"cidr": "0.0.0.0/0"}, {"cidr": "::/0"}]}


def mesh_identity(namespace: str, cluster_domain: str) -> str:
    """Every ServiceAccount identity of a namespace (Linkerd's trust domain = cluster domain)."""
    return f"*.{namespace}.serviceaccount.identity.linkerd.{cluster_domain}"


def published_policy(
    server_name: str,
    ingress_controller_namespace: str,
    public: bool,
    cluster_domain: str,
) -> PolicySet:
    """Open a UI's Server to the way it is published, under default-deny.

    An Ingress arrives from the (meshed) ingress controller's identities; a NodePort or
    LoadBalancer Service from outside the mesh, with no identity to check, hence any network.
    Port-forward needs nothing: it arrives on the pod's loopback, which the proxy leaves alone.
    """
    policy = empty_policy()
    if ingress_controller_namespace:
        policy["MeshTLSAuthentication"]["ingress-controller"] = {
            "identities": [mesh_identity(ingress_controller_namespace, cluster_domain)]
        }
        policy["AuthorizationPolicy"][f"{server_name}-ingress-controller"] = authorization(
            server_name, "MeshTLSAuthentication", "ingress-controller"
        )
    if public:
        policy["NetworkAuthentication"]["all-networks"] = dict(ALL_NETWORKS)
        policy["AuthorizationPolicy"][f"{server_name}-public"] = authorization(
            server_name, "NetworkAuthentication", "all-networks"
        )
    return policy


def prometheus_readers_policy(team: str, readers: tuple[str, ...]) -> PolicySet:
    """Let ServiceAccounts of a team namespace query viz's Prometheus (`prometheusReaders`).

    The objects live in `linkerd-viz`, beside the `prometheus-admin` Server the viz chart makes
    for its Prometheus (which answers only the clients it authorizes), and are named after the
    team so each team's grant is its own. Empty: nothing.
    """
    policy = empty_policy()
    if not readers:
        return policy
    object_name = f"{team}-prometheus-readers"
    policy["MeshTLSAuthentication"][object_name] = service_account_refs(
        *((account, team) for account in readers)
    )
    policy["AuthorizationPolicy"][object_name] = authorization(
        viz.PROMETHEUS_SERVER, "MeshTLSAuthentication", object_name
    )
    return policy


def policy_resources(
    resource_prefix: str,
    namespace_name: pulumi.Input[str],
    policy: PolicySet,
    parent: pulumi.Resource,
    labels: Mapping[str, str] | None = None,
    depends_on: list[pulumi.Resource] | None = None,
) -> list[k8s.apiextensions.CustomResource]:
    """The Linkerd custom resources for `policy`, named f"{resource_prefix}-<kind>-<name>"."""
    out = []
    for kind, objects in policy.items():
        for obj_name, spec in sorted(objects.items()):
            out.append(
                k8s.apiextensions.CustomResource(
                    f"{resource_prefix}-{_KIND_ROLES[kind]}-{obj_name}",
                    api_version=POLICY_API_VERSIONS[kind],
                    kind=kind,
                    metadata=k8s.meta.v1.ObjectMetaArgs(
                        name=obj_name, namespace=namespace_name, labels=dict(labels or {}) or None
                    ),
                    spec=spec,
                    opts=pulumi.ResourceOptions(parent=parent, depends_on=depends_on or []),
                )
            )
    return out


def adopted_labels(labels: Mapping[str, str]) -> dict[str, str]:
    """The labels an adopted namespace is patched with: a meshed namespace's, less an
    `enforce: privileged`, which would loosen whatever level the team enforces."""
    return {
        key: value
        for key, value in labels.items()
        if not (key == common.PSA_ENFORCE and value == "privileged")
    }


# --- Tracing endpoints -----------------------------------------------------------------------


class TracingEndpoints(Protocol):
    """What onboarding reads of `components.tracing.TracingAddresses`."""

    @property
    def otlp_grpc(self) -> str: ...  # "host:4317"

    @property
    def opencensus(self) -> str: ...  # "host:55678"


def tracing_env(tracing: TracingEndpoints | None, open_census: bool) -> dict[str, str] | None:
    """The `meshstack-tracing` ConfigMap's data, or None when the stack runs no collector.

    OTLP over gRPC with an `http://` URL: the OpenTelemetry SDKs read the scheme as "no TLS"
    (the Linkerd proxies encrypt the hop with mTLS instead), and gRPC is the transport the
    proxies already use to the same collector. Apps that only speak OTLP/HTTP override both
    variables. No ConfigMap at all without tracing (rather than an empty one): apps reference
    it with `optional: true` and their SDKs fall back to their defaults.
    """
    if tracing is None:
        return None
    data = {
        "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://{tracing.otlp_grpc}",
        "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc",
    }
    if open_census:
        # OpenCensus agents (e.g. emojivoto v11) dial a bare host:port, no scheme.
        data["OC_AGENT_HOST"] = tracing.opencensus
    return data


# --- Component -------------------------------------------------------------------------------


@dataclass
class OnboardingArgs:
    teams: list[TeamNamespace]
    """The namespaces to onboard, already validated by `config.parse_settings`. May be empty."""
    control_plane: pulumi.Resource
    """The Linkerd control-plane chart: namespaces are labelled for injection only once the
    injector can answer, or pods created meanwhile would silently run without a proxy."""
    tracing: TracingEndpoints | None = None
    """The collector's addresses. Default: none, no `meshstack-tracing` ConfigMap."""
    open_census: bool = False
    """Also hand out the OpenCensus agent address (`OC_AGENT_HOST`). Default: false, since
    only legacy OpenCensus apps need it and the receiver is off unless configured."""
    prometheus_service_account: str = VIZ_PROMETHEUS_SERVICE_ACCOUNT
    """The identity that scrapes proxy metrics. Default: viz's bundled Prometheus."""
    prometheus_namespace: str = viz.NAMESPACE
    """Namespace of `prometheus_service_account`. Default: linkerd-viz."""
    viz_chart: pulumi.Resource | None = None
    """The linkerd-viz chart, whose `prometheus-admin` Server a team's `prometheus_readers` are
    authorized on: their policy waits for it. Default: none, no wait."""
    cni: bool = False
    """The Linkerd CNI plugin is on (`MeshArgs.cni`): no pod here needs `linkerd-init`, so created
    namespaces enforce PSA `restricted`. Default: false, `privileged` enforced and `restricted`
    warned and audited."""


class Onboarding(pulumi.ComponentResource):
    """Team namespaces brought into the mesh.

    Children, per team: the namespace (created), or a server-side-apply `NamespacePatch` of its
    labels and annotations (adopted); a `linkerd-admin` Server with an AuthorizationPolicy for
    the metrics scraper; the `meshstack-tracing` ConfigMap when tracing is on; and, for a team
    with `prometheus_readers`, a MeshTLSAuthentication and an AuthorizationPolicy
    `<team>-prometheus-readers` in `linkerd-viz` letting them query viz's Prometheus.

    Outputs: `namespaces`, the team namespace names in configuration order.
    """

    namespaces: pulumi.Output[list[str]]

    def __init__(
        self, name: str, args: OnboardingArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("meshstack:apps:Onboarding", name, None, opts)
        _validate(args)

        labels, annotations = common.meshed_namespace_metadata(default_deny=True, cni=args.cni)
        data = tracing_env(args.tracing, args.open_census)
        names: list[pulumi.Output[str]] = []
        for team in args.teams:
            prefix = f"{name}-{team.name}"
            ns_name: pulumi.Output[str]
            if team.adopt:
                patch = k8s.core.v1.NamespacePatch(
                    f"{prefix}-namespace",
                    metadata=k8s.meta.v1.ObjectMetaPatchArgs(
                        name=team.name,
                        labels=adopted_labels(labels),
                        # No `pulumi.com/patchForce`: forcing would take a key over from the
                        # manager that set it (e.g. a PSA `baseline` label), and deleting the
                        # patch would then remove the key rather than give the old value back.
                        # Without it a different value is a conflict the team resolves.
                        annotations=annotations,
                    ),
                    # Injection is only honoured once the injector answers; pods restarted
                    # before that would come back without a proxy.
                    opts=pulumi.ResourceOptions(parent=self, depends_on=[args.control_plane]),
                )
                ns_name = patch.metadata.name
            else:
                ns = common.meshed_namespace(
                    team.name,
                    f"{prefix}-namespace",
                    self,
                    args.control_plane,
                    default_deny=True,
                    cni=args.cni,
                )
                ns_name = ns.metadata.name
            names.append(ns_name)

            policy_resources(
                prefix,
                ns_name,
                # Every pod of the team: all of them are meshed and all should be scraped.
                proxy_admin_policy(
                    {"matchLabels": {}}, args.prometheus_service_account, args.prometheus_namespace
                ),
                self,
                labels=common.MANAGED_BY,
            )
            # Query access to viz's Prometheus, for the ServiceAccounts the team named.
            policy_resources(
                f"{prefix}-viz",
                viz.NAMESPACE,
                prometheus_readers_policy(team.name, team.prometheus_readers),
                self,
                labels=common.MANAGED_BY,
                # The policy targets the Server the viz chart creates.
                depends_on=[args.viz_chart] if args.viz_chart is not None else None,
            )
            if data is not None:
                k8s.core.v1.ConfigMap(
                    f"{prefix}-tracing",
                    metadata=k8s.meta.v1.ObjectMetaArgs(
                        name=TRACING_CONFIGMAP, namespace=ns_name, labels=dict(common.MANAGED_BY)
                    ),
                    data=data,
                    opts=pulumi.ResourceOptions(parent=self),
                )

        self.namespaces = pulumi.Output.all(*names) if names else pulumi.Output.from_input([])
        self.register_outputs({"namespaces": self.namespaces})


def _validate(args: OnboardingArgs) -> None:
    seen: set[str] = set()
    for i, team in enumerate(args.teams):
        if not DNS_LABEL.match(team.name):
            raise ValueError(
                f"OnboardingArgs.teams[{i}].name: {team.name!r} is not a namespace name "
                "(lower-case letters, digits and '-', at most 63 characters)"
            )
        if team.name in seen:
            raise ValueError(f"OnboardingArgs.teams[{i}].name: {team.name!r} is listed twice")
        seen.add(team.name)
        for account in team.prometheus_readers:
            if not SERVICE_ACCOUNT_NAME.match(account):
                raise ValueError(
                    f"OnboardingArgs.teams[{i}].prometheus_readers: {account!r} is not a "
                    "ServiceAccount name"
                )
