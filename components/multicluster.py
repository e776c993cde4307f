"""Linkerd multicluster as code: the extension, one declarative Link per peer cluster, and the
credentials each Link reads, all from the peers' stack outputs.

Each cluster is a stack of this program. A stack with `enableMulticluster` installs the
`linkerd-multicluster` chart (gateway, remote-mirror ServiceAccount and its long-lived token,
one service-mirror controller per link from the chart's `controllers` list) and exports what a
peer needs to link to it: `multicluster` (cluster name, API server address, CIDRs, gateway
address, port and identity) and `multiclusterCredentials` (secret: the remote-mirror token and
the API server's CA). A linking stack reads both through a `StackReference` and writes the two
`cluster-credentials-<peer>` Secrets and the `Link`, as `linkerd multicluster link-gen` would
(linkerd2 multicluster/cmd/link-gen.go), without a CLI step.

The pure functions here (values, Link spec, kubeconfig, labels, CIDR overlap) are tested
without mocks; `Multicluster` only turns them into resources.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from components import common, config, sizing, versions, viz
from components.config import MulticlusterSettings
from components.onboarding import authorization, empty_policy, policy_resources

NAMESPACE = "linkerd-multicluster"
LINKERD_NAMESPACE = "linkerd"
GATEWAY = "linkerd-gateway"
GATEWAY_PORT = 4143
PROBE_PORT = 4191
PROBE_PATH = "/ready"
PROBE_SECONDS = 3
# The ServiceAccount peers read this cluster as; the chart makes a `<name>-token` Secret of type
# kubernetes.io/service-account-token for it (templates/remote-access-service-mirror-rbac.yaml).
REMOTE_MIRROR_ACCOUNT = "linkerd-service-mirror-remote-access-default"
REMOTE_MIRROR_TOKEN_SECRET = f"{REMOTE_MIRROR_ACCOUNT}-token"
# link-gen's Secret type and key (linkerd2 pkg/k8s/labels.go); the destination controller only
# reads Secrets of this type in `linkerd` that carry the cluster-name label and both annotations
# (controller/api/destination/watcher/cluster_store.go).
CREDENTIALS_TYPE = "mirror.linkerd.io/remote-kubeconfig"
CREDENTIALS_KEY = "kubeconfig"
CLUSTER_NAME_LABEL = "multicluster.linkerd.io/cluster-name"
TRUST_DOMAIN_ANNOTATION = "multicluster.linkerd.io/trust-domain"
CLUSTER_DOMAIN_ANNOTATION = "multicluster.linkerd.io/cluster-domain"
LINK_API_VERSION = "multicluster.linkerd.io/v1alpha3"

# The Service labels each mode's Link selects on (link-gen's defaults, link-gen.go 320-357).
EXPORTED = "mirror.linkerd.io/exported"
FEDERATED = "mirror.linkerd.io/federated"
EXPORT_LABELS: dict[str, dict[str, str]] = {
    "gateway": {EXPORTED: "true"},
    "pod-to-pod": {EXPORTED: "remote-discovery"},
    "federated": {FEDERATED: "member"},
}

# Stack outputs: the contract a peer reads (README "Outputs").
MULTICLUSTER_OUTPUT = config.MULTICLUSTER_OUTPUT
CREDENTIALS_OUTPUT = "multiclusterCredentials"


# --- Pure planning ---------------------------------------------------------------------------


def gateway_pause_resources(obj: dict[str, Any]) -> dict[str, Any]:
    """The gateway Deployment with requests and limits on its `pause` container, which the
    chart gives no value for (templates/gateway.yaml); any other object unchanged. Run by the
    chart's transform on what it renders."""
    meta = obj.get("metadata") or {}
    if obj.get("kind") != "Deployment" or meta.get("name") != GATEWAY:
        return obj
    pod = ((obj.get("spec") or {}).get("template") or {}).get("spec") or {}
    for container in pod.get("containers") or []:
        if container.get("name") == "pause" and not container.get("resources"):
            container["resources"] = sizing.k8s_resources("dev", "pause")
    return obj


def _pause_resources(args: pulumi.ResourceTransformArgs) -> pulumi.ResourceTransformResult:
    return pulumi.ResourceTransformResult(gateway_pause_resources(dict(args.props)), args.opts)


def credentials_secret(peer: str) -> str:
    """The Secret a controller may read: its Role names only `cluster-credentials-<link>`
    (chart templates/controller/rbac.yaml), and the Link is named after the peer."""
    return f"cluster-credentials-{peer}"


def gateway_identity(trust_domain: str) -> str:
    """The gateway's mTLS identity, as the chart annotates its Service (templates/gateway.yaml)."""
    return f"{GATEWAY}.{NAMESPACE}.serviceaccount.identity.{LINKERD_NAMESPACE}.{trust_domain}"


def remote_host(service: str, namespace: str, cluster: str, mode: str, cluster_domain: str) -> str:
    """Where a caller here reaches `service` running in the peer `cluster`: the mirror
    `<svc>-<cluster>` (gateway, pod-to-pod) or the federated `<svc>-federated`, which the
    service mirror creates in the same namespace (cluster_watcher.go 247-253)."""
    name = f"{service}-federated" if mode == "federated" else f"{service}-{cluster}"
    return common.svc_host(name, namespace, cluster_domain)


def chart_values(
    trust_domain: str,
    gateway: bool,
    service_type: str,
    node_port: int,
    probe_node_port: int,
    peers: Sequence[str],
    gateway_peers: Sequence[str],
    high_availability: bool,
    profile: str = "dev",
) -> dict[str, Any]:
    """linkerd-multicluster values: one controller per linked peer (the chart's `controllers`
    list, not the CLI's per-link Deployment), its probe Service only for gateway links."""
    values: dict[str, Any] = {
        # The CLI fills both from linkerd-config; Helm users must (mesh-ops §1.1): they build
        # the gateway identity peers' Links name.
        "linkerdNamespace": LINKERD_NAMESPACE,
        "identityTrustDomain": trust_domain,
        "gateway": {"enabled": gateway},
        "remoteMirrorServiceAccount": True,
        "remoteMirrorServiceAccountName": REMOTE_MIRROR_ACCOUNT,
        # Its post-install hook only labels the namespace, which the stack creates labelled;
        # hooks never run under Pulumi's v4 Chart anyway.
        "createNamespaceMetadataJob": False,
        "controllerDefaults": {"resources": sizing.k8s_resources(profile, "linkerd-multicluster")},
        "localServiceMirror": {"resources": sizing.k8s_resources(profile, "linkerd-multicluster")},
        "controllers": [
            {"link": {"ref": {"name": peer}}, "gateway": {"enabled": peer in gateway_peers}}
            for peer in peers
        ],
    }
    if gateway:
        values["gateway"] |= {"serviceType": service_type, "port": GATEWAY_PORT}
        if service_type == "NodePort":
            # Fixed, so peers' Links (made from this stack's outputs) know where to dial.
            values["gateway"] |= {"nodePort": node_port, "probe": {"nodePort": probe_node_port}}
    if high_availability:
        values |= {"enablePodAntiAffinity": True}
        values["gateway"]["replicas"] = 2
    return values


def link_spec(
    peer: Mapping[str, Any], mode: str, cluster_domain: str = "cluster.local"
) -> dict[str, Any]:
    """The `Link` to a peer, from the peer's `multicluster` output, as link-gen writes it.

    Every selector is explicit: a nil or empty one matches nothing (cluster_watcher.go
    1814-1866), and only the chosen mode's selects anything, so a gateway link never mirrors
    a Service exported for pod-to-pod and the reverse.
    """
    name = str(peer["clusterName"])
    none: dict[str, Any] = {"matchLabels": {EXPORTED: "never-for-this-link"}}
    spec: dict[str, Any] = {
        "targetClusterName": name,
        "targetClusterDomain": str(peer.get("clusterDomain") or cluster_domain),
        "targetClusterLinkerdNamespace": LINKERD_NAMESPACE,
        "clusterCredentialsSecret": credentials_secret(name),
        "selector": none,
        "remoteDiscoverySelector": none,
        "federatedServiceSelector": none,
    }
    if mode == "gateway":
        gw = peer["gateway"]
        spec |= {
            "gatewayAddress": str(gw["address"]),
            # Strings in the CRD (link-crd.yaml); a number read from stack outputs arrives as
            # a float (the wire format has only doubles), hence int first.
            "gatewayPort": str(int(gw["port"])),
            "gatewayIdentity": str(gw["identity"]),
            "probeSpec": {
                "path": PROBE_PATH,
                "port": str(int(gw["probePort"])),
                "period": f"{PROBE_SECONDS}s",
            },
            "selector": {"matchLabels": EXPORT_LABELS["gateway"]},
        }
    elif mode == "pod-to-pod":
        spec["remoteDiscoverySelector"] = {"matchLabels": EXPORT_LABELS["pod-to-pod"]}
    else:
        spec["federatedServiceSelector"] = {"matchLabels": EXPORT_LABELS["federated"]}
        # Per-cluster Services (each cluster's Prometheus for Grafana) are still told apart.
        spec["remoteDiscoverySelector"] = {"matchLabels": EXPORT_LABELS["pod-to-pod"]}
    return spec


def kubeconfig(cluster: str, server: str, ca_crt_b64: str, token_b64: str) -> str:
    """The kubeconfig a controller reads the peer with: the peer's API server and CA, and the
    remote-mirror ServiceAccount's token as the user (link-gen.go 142-199). Both come base64
    encoded, as the token Secret holds them."""
    token = base64.b64decode(token_b64).decode()
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": cluster,
                "cluster": {"server": server, "certificate-authority-data": ca_crt_b64},
            }
        ],
        "users": [{"name": f"{cluster}-remote-mirror", "user": {"token": token}}],
        "contexts": [
            {"name": cluster, "context": {"cluster": cluster, "user": f"{cluster}-remote-mirror"}}
        ],
        "current-context": cluster,
    }
    # JSON is YAML: client-go reads it as any kubeconfig, and no YAML library is needed.
    return json.dumps(config, indent=2)


def exported_labels(modes: Sequence[str]) -> dict[str, str]:
    """The labels a Service placed here carries so every link that consumes it selects it."""
    out: dict[str, str] = {}
    for mode in modes:
        out |= EXPORT_LABELS[mode]
    return out


@dataclass(frozen=True)
class AppPlacement:
    """How the demo app spreads over the linked clusters, seen from this one."""

    absent: tuple[str, ...] = ()
    """Workloads placed in another cluster: not run here."""
    remote_hosts: dict[str, str] = field(default_factory=dict)
    """Workload → the host callers here reach it at (a mirror or federated Service)."""
    exported: tuple[str, ...] = ()
    """Workloads placed here by name: their Services are exported to the links' peers."""
    export_labels: dict[str, str] = field(default_factory=dict)
    remote_callers: tuple[str, ...] = ()
    """Identities that call the exported workloads from peers: this cluster's gateway for
    gateway links (the caller's own identity ends at the gateway), the peers' web for
    pod-to-pod and federated links (mTLS runs from the caller's proxy to the pod)."""


def app_placement(
    m: MulticlusterSettings, namespace: str, cluster_domain: str, caller: str = "web"
) -> AppPlacement:
    """Where each emojivoto workload runs and how the others reach it (`multicluster.placement`
    with the links' modes); everything here when multicluster is off."""
    if not m.enabled:
        return AppPlacement()
    absent, hosts = [], {}
    for workload, cluster in m.placement:
        link = m.link_to(cluster)
        if cluster == m.cluster_name or link is None:
            continue
        absent.append(workload)
        hosts[workload] = remote_host(
            f"{workload}-svc", namespace, cluster, link.mode, cluster_domain
        )
    exported = tuple(w for w, c in m.placement if c == m.cluster_name)
    if not exported:
        return AppPlacement(tuple(absent), hosts)
    modes = sorted({link.mode for link in m.links})
    return AppPlacement(
        tuple(absent),
        hosts,
        exported,
        exported_labels(modes),
        remote_callers(m, caller, namespace, cluster_domain),
    )


def remote_callers(
    m: MulticlusterSettings, account: str, namespace: str, cluster_domain: str
) -> tuple[str, ...]:
    """The identities a Service exported here sees when the peers' `account` in `namespace`
    calls it: this cluster's gateway for gateway links (the caller's own identity ends at the
    gateway), the caller itself for pod-to-pod and federated links."""
    callers = (
        {gateway_identity(cluster_domain)}
        if any(link.mode == "gateway" for link in m.links)
        else set()
    )
    callers |= {
        f"{account}.{namespace}.serviceaccount.identity.{LINKERD_NAMESPACE}."
        f"{link.cluster_domain or cluster_domain}"
        for link in m.links
        if link.mode != "gateway"
    }
    return tuple(sorted(callers))


# --- One view: each cluster's Prometheus, queried by the peers' Grafana ----------------------
# A Service of its own beside viz's `prometheus` (whose labels the chart owns), exported to the
# peers, where it is mirrored as `prometheus-federate-<cluster>`.
FEDERATE_SERVICE = "prometheus-federate"


def federate_labels(modes: Sequence[str]) -> dict[str, str]:
    """Exported per cluster in every mode: through the gateway when a link uses one, else
    by remote discovery (federated links select that too, `link_spec`)."""
    return EXPORT_LABELS["gateway"] if "gateway" in modes else EXPORT_LABELS["pod-to-pod"]


def remote_prometheus(
    m: MulticlusterSettings, namespace: str, port: int, domain: str
) -> dict[str, str]:
    """Linked cluster → its Prometheus as Grafana here reaches it, through the mirror."""
    if not m.enabled:
        return {}
    hosts = {
        link.cluster: common.svc_host(f"{FEDERATE_SERVICE}-{link.cluster}", namespace, domain)
        for link in m.links
    }
    return {cluster: f"http://{host}:{port}" for cluster, host in hosts.items()}


def footprint(links: int, gateway: bool) -> dict[str, int]:
    """Pods the extension adds to one cluster: a gateway (if any link uses one), the local
    service mirror (federation), and one controller per link."""
    return {"gateway": int(gateway), "localServiceMirror": 1, "controllers": links}


# --- Component -------------------------------------------------------------------------------


@dataclass(frozen=True)
class PeerLink:
    """One Link to a peer cluster, with what the peer's stack exports."""

    cluster: str
    """The peer's cluster name (its `multicluster.clusterName` output)."""
    mode: str
    """`gateway`, `pod-to-pod` or `federated`."""
    peer: pulumi.Input[Mapping[str, Any]]
    """The peer's `multicluster` output, read through a StackReference."""
    credentials: pulumi.Input[Mapping[str, Any]]
    """The peer's `multiclusterCredentials` output (secret): `token`, `caCrt`, base64."""


@dataclass
class MulticlusterArgs:
    cluster_name: str
    """This cluster's name, which peers' mirrors are suffixed with."""
    trust_domain: str
    """Linkerd's trust domain (the cluster domain): the gateway identity ends in it."""
    control_plane: pulumi.Resource
    """The control-plane chart: the gateway and controllers are meshed."""
    api_server_address: str
    """Where peers reach this cluster's API server (exported)."""
    pod_cidr: str
    service_cidr: str
    links: list[PeerLink] = field(default_factory=list)
    """Default: none; the first cluster of a pair comes up without links."""
    gateway: bool = True
    """Run the gateway (peers link to it in gateway mode). Default: true."""
    gateway_service_type: str = "LoadBalancer"
    """`LoadBalancer`, or `NodePort` on kind. Default: LoadBalancer."""
    gateway_address: str = ""
    """Where peers reach the gateway: a node address with NodePort. Default: empty, the
    LoadBalancer's address as the cluster reports it."""
    gateway_node_port: int = 30143
    gateway_probe_node_port: int = 30191
    high_availability: bool = False
    profile: str = "dev"
    """`dev` or `prod`: the rows of `sizing.SIZES` the controllers use. Default: dev."""
    cni: bool = False
    """The Linkerd CNI plugin is on: the namespace enforces PSA `restricted`."""
    viz_chart: pulumi.Resource | None = None
    """The linkerd-viz chart, whose Prometheus the peers' Grafana queries (`prometheus_callers`):
    the policy admitting them targets its Server. Default: none, Prometheus not shared."""
    prometheus_callers: tuple[str, ...] = ()
    """Identities the peers' Grafana reaches viz's Prometheus with (`remote_callers`).
    Default: none."""


class Multicluster(pulumi.ComponentResource):
    """The linkerd-multicluster extension and this cluster's Links to its peers.

    Children: the `linkerd-multicluster` namespace, the chart (gateway, remote-mirror access,
    a controller per link, the Link CRD), a read of the remote-mirror token Secret the chart
    makes, and per peer two `cluster-credentials-<peer>` Secrets and the `Link`.

    Outputs: `exported` (the `multicluster` stack output, public) and `credentials` (the
    `multiclusterCredentials` output, secret).
    """

    exported: pulumi.Output[dict[str, Any]]
    credentials: pulumi.Output[dict[str, Any]]
    chart: k8s.helm.v4.Chart

    def __init__(
        self, name: str, args: MulticlusterArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("meshstack:mesh:Multicluster", name, None, opts)
        labels, annotations = common.meshed_namespace_metadata(False, args.cni)
        ns = common.namespace(
            NAMESPACE,
            f"{name}-namespace",
            self,
            {**labels, "linkerd.io/extension": "multicluster"},
            annotations,
            # Created with the control plane ready, so the gateway and controllers are meshed.
            depends_on=[args.control_plane],
        )
        gateway_peers = [link.cluster for link in args.links if link.mode == "gateway"]
        self.chart = common.chart(
            f"{name}-chart",
            versions.LINKERD_MULTICLUSTER,
            "linkerd-multicluster",
            ns.metadata.name,
            chart_values(
                args.trust_domain,
                args.gateway,
                args.gateway_service_type,
                args.gateway_node_port,
                args.gateway_probe_node_port,
                [link.cluster for link in args.links],
                gateway_peers,
                args.high_availability,
                args.profile,
            ),
            self,
            depends_on=[args.control_plane],
            transforms=[_pause_resources],
        )

        # --- What peers read: the remote-mirror token and the gateway address ---------------
        # Read back once the chart is applied: the token controller fills the Secret the chart
        # declares. The id is unknown until the chart exists, so a first preview skips the read
        # instead of failing on a Secret not yet there.
        after_chart = self.chart.resources.apply(lambda _: None)
        token = k8s.core.v1.Secret.get(
            f"{name}-remote-mirror-token",
            pulumi.Output.concat(
                NAMESPACE, "/", REMOTE_MIRROR_TOKEN_SECRET, after_chart.apply(lambda _: "")
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.credentials = pulumi.Output.secret(
            token.data.apply(
                lambda d: {
                    "token": (d or {}).get("token", ""),
                    "caCrt": (d or {}).get("ca.crt", ""),
                }
            )
        )
        address: pulumi.Input[str] = args.gateway_address
        if args.gateway and not args.gateway_address:
            service = k8s.core.v1.Service.get(
                f"{name}-gateway-service",
                pulumi.Output.concat(NAMESPACE, "/", GATEWAY, after_chart.apply(lambda _: "")),
                opts=pulumi.ResourceOptions(parent=self),
            )
            address = service.status.apply(_load_balancer_address)
        node_port = args.gateway_service_type == "NodePort"
        self.exported = pulumi.Output.from_input(address).apply(
            lambda addr: {
                "clusterName": args.cluster_name,
                "clusterDomain": args.trust_domain,
                "apiServerAddress": args.api_server_address,
                "podCidr": args.pod_cidr,
                "serviceCidr": args.service_cidr,
                "gateway": (
                    {
                        "address": addr,
                        "port": args.gateway_node_port if node_port else GATEWAY_PORT,
                        "probePort": args.gateway_probe_node_port if node_port else PROBE_PORT,
                        "identity": gateway_identity(args.trust_domain),
                    }
                    if args.gateway
                    else {}
                ),
                "links": {link.cluster: link.mode for link in args.links},
            }
        )

        # --- One view: viz's Prometheus for the peers' Grafana ------------------------------
        if args.viz_chart is not None and args.prometheus_callers and args.links:
            self._share_prometheus(name, args, args.viz_chart)

        # --- Links to peers -----------------------------------------------------------------
        for link in args.links:
            self._link(name, link, ns, args.trust_domain)

        self.register_outputs({"exported": self.exported, "credentials": self.credentials})

    def _share_prometheus(
        self, name: str, args: MulticlusterArgs, viz_chart: pulumi.Resource
    ) -> None:
        # The policy targets viz's Server; the Service selects viz's pods.
        after_viz = pulumi.ResourceOptions(parent=self, depends_on=[viz_chart])
        k8s.core.v1.Service(
            f"{name}-prometheus-federate",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=FEDERATE_SERVICE,
                namespace=viz.NAMESPACE,
                labels={
                    **common.MANAGED_BY,
                    **federate_labels([link.mode for link in args.links]),
                },
            ),
            spec=k8s.core.v1.ServiceSpecArgs(
                type="ClusterIP",
                # The pods viz's own `prometheus` Service selects.
                selector={"linkerd.io/extension": "viz", "component": "prometheus"},
                ports=[
                    k8s.core.v1.ServicePortArgs(
                        name="admin",
                        port=viz.PROMETHEUS_PORT,
                        target_port=viz.PROMETHEUS_PORT,
                        protocol="TCP",
                    )
                ],
            ),
            opts=after_viz,
        )
        # viz's own Server on Prometheus' port denies anyone it does not name.
        p = empty_policy()
        p["MeshTLSAuthentication"]["remote-grafana"] = {"identities": list(args.prometheus_callers)}
        p["AuthorizationPolicy"]["remote-grafana"] = authorization(
            viz.PROMETHEUS_SERVER, "MeshTLSAuthentication", "remote-grafana"
        )
        policy_resources(
            f"{name}-viz", viz.NAMESPACE, p, self, labels=common.MANAGED_BY, depends_on=[viz_chart]
        )

    def _link(
        self, name: str, link: PeerLink, ns: k8s.core.v1.Namespace, trust_domain: str
    ) -> None:
        peer = pulumi.Output.from_input(link.peer)
        creds = pulumi.Output.from_input(link.credentials)
        kube: pulumi.Output[str] = pulumi.Output.secret(
            pulumi.Output.all(peer, creds).apply(
                lambda pc: base64.b64encode(
                    kubeconfig(
                        link.cluster, pc[0]["apiServerAddress"], pc[1]["caCrt"], pc[1]["token"]
                    ).encode()
                ).decode()
            )
        )
        domain = peer.apply(lambda p: str(p.get("clusterDomain") or trust_domain))
        secrets = []
        for where, namespace in (("mirror", ns.metadata.name), ("destination", LINKERD_NAMESPACE)):
            # In `linkerd` the destination controller reads it for pod-to-pod and federated
            # discovery: only with the label and both annotations (cluster_store.go 121-132).
            destination = where == "destination"
            secrets.append(
                k8s.core.v1.Secret(
                    f"{name}-{link.cluster}-credentials-{where}",
                    metadata=k8s.meta.v1.ObjectMetaArgs(
                        name=credentials_secret(link.cluster),
                        namespace=namespace,
                        labels={CLUSTER_NAME_LABEL: link.cluster} if destination else None,
                        annotations=(
                            {TRUST_DOMAIN_ANNOTATION: domain, CLUSTER_DOMAIN_ANNOTATION: domain}
                            if destination
                            else None
                        ),
                    ),
                    type=CREDENTIALS_TYPE,
                    data={CREDENTIALS_KEY: kube},
                    opts=pulumi.ResourceOptions(parent=self, depends_on=[self.chart]),
                )
            )
        k8s.apiextensions.CustomResource(
            f"{name}-{link.cluster}-link",
            api_version=LINK_API_VERSION,
            kind="Link",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=link.cluster, namespace=ns.metadata.name),
            spec=peer.apply(lambda p: link_spec(p, link.mode, trust_domain)),
            # The Link CRD is one of the chart's templates; the controller reads the credentials
            # as soon as the Link exists.
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.chart, *secrets]),
        )


def _load_balancer_address(status: Any) -> str:
    """The first IP or hostname the cluster reports for a LoadBalancer Service ("" before one
    is assigned: config then stops a peer from linking to it)."""
    balancer = getattr(status, "load_balancer", None) if status is not None else None
    for entry in getattr(balancer, "ingress", None) or []:
        found = getattr(entry, "ip", None) or getattr(entry, "hostname", None)
        if found:
            return str(found)
    return ""
