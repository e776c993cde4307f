"""Logs: Loki (monolithic, filesystem) and Grafana Alloy on every node shipping pod logs to it.

Loki runs as one StatefulSet pod with its index (tsdb, schema v13) and chunks on local disk:
the smallest Loki that keeps logs for a set retention. Alloy runs as a DaemonSet, tails the log
files of the pods on its node and pushes them to Loki's Service. Grafana queries that Service.

The namespace is not meshed: `LoggingArgs` carries no control plane to wait for (pods created
before the proxy injector is ready would silently run without a proxy), Alloy reads host files
as root and would gain nothing from a proxy per node, and Loki's clients stay in-cluster. A
meshed Grafana can still query an unmeshed Loki (its proxy forwards plain HTTP).

Who reaches Loki is therefore a Kubernetes NetworkPolicy, not Linkerd policy (`network_policy`):
its HTTP port admits Alloy's pods (pushes) and the query clients' pods (Grafana), its gRPC and
memberlist ports only Loki's own pods. Meshing the namespace instead would put Linkerd's
default-deny in front of Loki, but only if Alloy were meshed too: a root, hostPath DaemonSet
whose pods would then need a proxy (and proxy-init's NET_ADMIN) on every node just to push logs,
and whose logs would start flowing only once the injector is up. Unmeshed, Alloy has no mesh
identity to authorize, while a NetworkPolicy names it by its pod labels. An unmeshed server sees
a meshed client (Grafana) as plain TCP from that client's pod IP, so pod and namespace
selectors match it as they match Alloy. What this needs: a CNI that enforces NetworkPolicy
(Calico, Cilium, kindnet from kind v0.24); without one the policy is accepted and ignored.
The kubelet's probes come from the node, which those CNIs admit whatever the policy says.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, cast

import pulumi
import pulumi_kubernetes as k8s

from components import common, sizing, versions
from components.config import LoggingSettings

# --- Addresses -------------------------------------------------------------------------------
# One source for the names other components and the Alloy config use. The values below pin
# them in the charts (`fullnameOverride`, `loki.server.http_listen_port`), so a chart upgrade
# that changed its naming cannot silently move the Service away from these URLs.

NAMESPACE = "logging"
LOKI_RELEASE = "loki"
# Loki's monolithic Service is `loki.fullname` (charts/loki templates/monolithic/service.yaml).
LOKI_SERVICE = "loki"
LOKI_HTTP_PORT = 3100
# Loki's other listeners (the chart's default gRPC and memberlist ports): only
# Loki itself talks to them, one Loki to another.
LOKI_GRPC_PORT = 9095
LOKI_MEMBERLIST_PORT = 7946
# Pod labels of every Loki pod and of Alloy's (the charts' `selectorLabels`).
LOKI_PODS = {"app.kubernetes.io/name": "loki", "app.kubernetes.io/instance": LOKI_RELEASE}
PUSH_PATH = "/loki/api/v1/push"
ALLOY_RELEASE = "alloy"
ALLOY_PODS = {"app.kubernetes.io/name": "alloy", "app.kubernetes.io/instance": ALLOY_RELEASE}
NETWORK_POLICY = "loki-ingress"

# Stream labels every log line carries; Grafana's trace-to-logs mapping refers to them.
LABEL_NAMESPACE = "namespace"
LABEL_POD = "pod"
LABEL_CONTAINER = "container"
LABEL_APP = "app"

# The first day of the tsdb/v13 schema. Never change it on a running stack: Loki would look for
# older index periods under a different schema. A new schema is a new entry with a later date.
SCHEMA_FROM = "2024-04-01"

# Where Alloy keeps its positions file (how far it read each log file), in the container, so the
# root filesystem can stay read-only...
ALLOY_STORAGE_PATH = "/var/lib/alloy"
# ...and on the node, where it outlives the pod: a restarted or upgraded Alloy resumes where the
# last one stopped instead of shipping the node's logs again (from an emptyDir, a new pod reads
# every file from its start). The kubelet creates the directory (root-owned, 0755), and Alloy,
# running as root with no capability, writes it as its owner. One stack per cluster, so one
# DaemonSet pod per node uses it.
ALLOY_NODE_PATH = "/var/lib/meshstack-alloy"


def query_url(cluster_domain: str) -> str:
    """Loki's HTTP API in the cluster: Grafana's Loki datasource URL."""
    return f"http://{common.svc_host(LOKI_SERVICE, NAMESPACE, cluster_domain)}:{LOKI_HTTP_PORT}"


def push_url(cluster_domain: str) -> str:
    """Where Alloy (and any other shipper) pushes log streams."""
    return f"{query_url(cluster_domain)}{PUSH_PATH}"


# --- Values (pure) ---------------------------------------------------------------------------

# Loki 3 turns on an in-process cache wherever no external one (memcached, redis) is set: the
# chunk cache and the query-range results cache, and five more (index stats, volume, series,
# labels, instant metric) that copy the results cache's settings (grafana/loki v3
# pkg/loki/config_wrapper.go `applyEmbeddedCacheConfig`), each 100 MB by default: 700 MB, over
# the dev memory limit. These are the sizes given instead, per profile, in MB: (chunks,
# results and its five copies). They count against the `loki` memory limit in sizing.
EMBEDDED_CACHE_MB = {"dev": (32, 16), "prod": (256, 64)}
# How many caches copy the results cache's size.
RESULTS_CACHE_COPIES = 6


def embedded_cache_config(profile: str) -> dict[str, Any]:
    """Loki config (merged by the chart's `loki.structuredConfig`) capping its in-process
    caches. Pure."""
    chunks_mb, results_mb = EMBEDDED_CACHE_MB[profile]
    return {
        "chunk_store_config": {
            "chunk_cache_config": {"embedded_cache": {"enabled": True, "max_size_mb": chunks_mb}}
        },
        "query_range": {
            "results_cache": {
                "cache": {"embedded_cache": {"enabled": True, "max_size_mb": results_mb}}
            }
        },
    }


def loki_values(profile: str, settings: LoggingSettings, cluster_domain: str) -> dict[str, Any]:
    """Values for the grafana-community `loki` chart. Pure: the same inputs give the same dict."""
    persistence: dict[str, Any] = {"enabled": settings.persistence}
    if settings.persistence:
        persistence |= {
            "size": settings.storage_size,
            # The chart only renders a retention policy when this is true; Retain/Retain keeps
            # the claim `storage-loki-0` when the StatefulSet is deleted or scaled down, so the
            # next StatefulSet mounts the same logs (what Kubernetes also does by default, but
            # written here so nobody flips it to the chart's Delete/Delete by accident).
            "enableStatefulSetAutoDeletePVC": True,
            "whenDeleted": "Retain",
            "whenScaled": "Retain",
        }
        if settings.storage_class:
            persistence["storageClass"] = settings.storage_class
    return {
        "deploymentMode": "Monolithic",
        "fullnameOverride": LOKI_SERVICE,
        "global": {"clusterDomain": cluster_domain},
        # Loki never calls the Kubernetes API (memberlist finds peers through DNS): no token.
        "defaults": {"automountServiceAccountToken": False},
        "serviceAccount": {"automountServiceAccountToken": False},
        "loki": {
            # One tenant: no X-Scope-OrgID on pushes and queries.
            "auth_enabled": False,
            "commonConfig": {"replication_factor": 1},
            "server": {"http_listen_port": LOKI_HTTP_PORT},
            "storage": {"type": "filesystem"},
            "schemaConfig": {
                "configs": [
                    {
                        "from": SCHEMA_FROM,
                        "store": "tsdb",
                        "object_store": "filesystem",
                        "schema": "v13",
                        # Retention works in whole index periods, which must be 24h.
                        "index": {"prefix": "index_", "period": "24h"},
                    }
                ]
            },
            # Retention is done by the compactor inside the single binary. These keys must sit
            # under `loki:`; a top-level `compactor:` configures the distributed component and
            # is silently ignored here (grafana/loki#12588).
            "compactor": {
                "retention_enabled": True,
                # Loki 3 refuses to start with retention on and no delete-request store.
                "delete_request_store": "filesystem",
                "retention_delete_delay": "2h",
                "compaction_interval": "10m",
            },
            "limits_config": {"retention_period": f"{settings.retention_hours}h"},
            # No usage reports to stats.grafana.org.
            "analytics": {"reporting_enabled": False},
            # Merged over the chart's rendered config: the chart has no values for the
            # embedded caches when its memcached caches are off.
            "structuredConfig": embedded_cache_config(profile),
        },
        "singleBinary": {
            # More than one replica needs object storage (the chart's validate.yaml refuses it).
            "replicas": 1,
            "resources": sizing.k8s_resources(profile, "loki"),
            "persistence": persistence,
        },
        # The simple-scalable targets default to 3 replicas each; with filesystem storage the
        # chart fails unless they are zero.
        "read": {"replicas": 0},
        "write": {"replicas": 0},
        "backend": {"replicas": 0},
        # Off so it fits a laptop: the chunks cache alone requests ~9.8Gi by default. Loki then
        # caches in process, capped by `embedded_cache_config`.
        "chunksCache": {"enabled": False},
        "resultsCache": {"enabled": False},
        "lokiCanary": {"enabled": False},
        "test": {"enabled": False},
        "gateway": {"enabled": False},
        "minio": {"enabled": False},
        # The rules sidecar watches ConfigMaps and Secrets cluster-wide for Loki ruler rules;
        # alerting lives in Grafana, so it is off. Sized anyway, should someone turn it on.
        "sidecar": {
            "rules": {"enabled": False},
            "resources": sizing.k8s_resources(profile, "loki-sidecar"),
        },
    }


def alloy_config(push_url: str) -> str:
    """Alloy's configuration (River syntax): tail this node's pod log files and push to Loki.

    The chart passes the text through Helm's `tpl`, so it must never contain a double opening
    curly brace.
    """
    labels = {
        LABEL_NAMESPACE: "__meta_kubernetes_namespace",
        LABEL_POD: "__meta_kubernetes_pod_name",
        LABEL_CONTAINER: "__meta_kubernetes_pod_container_name",
    }
    label_rules = "".join(
        f"""
  rule {{
    source_labels = ["{source}"]
    target_label  = "{target}"
  }}"""
        for target, source in labels.items()
    )
    return f"""// Generated by meshstack (components/logging.py). Pod logs on this node -> Loki.

// Pods scheduled on this node only: each DaemonSet pod tails its own node (the chart sets
// HOSTNAME to spec.nodeName).
discovery.kubernetes "pods" {{
  role = "pod"
  selectors {{
    role  = "pod"
    field = "spec.nodeName=" + coalesce(sys.env("HOSTNAME"), constants.hostname)
  }}
}}

discovery.relabel "pod_logs" {{
  targets = discovery.kubernetes.pods.targets
{label_rules}
  // {LABEL_APP} = the first set of app.kubernetes.io/name, app, k8s-app.
  rule {{
    source_labels = [
      "__meta_kubernetes_pod_label_app_kubernetes_io_name",
      "__meta_kubernetes_pod_label_app",
      "__meta_kubernetes_pod_label_k8s_app",
    ]
    separator    = ";"
    regex        = "^;*([^;]+).*$"
    target_label = "{LABEL_APP}"
  }}
  // The kubelet writes /var/log/pods/<namespace>_<pod>_<uid>/<container>/<restart>.log.
  rule {{
    source_labels = ["__meta_kubernetes_pod_uid", "__meta_kubernetes_pod_container_name"]
    separator     = "/"
    target_label  = "__path__"
    replacement   = "/var/log/pods/*$1/*.log"
  }}
}}

loki.source.file "pod_logs" {{
  targets    = discovery.relabel.pod_logs.output
  forward_to = [loki.process.pod_logs.receiver]
  file_match {{
    enabled     = true
    sync_period = "10s"
  }}
}}

// containerd and CRI-O write "<time> <stream> <P|F> <line>"; keep the line and its time. The
// per-file label would start a new stream on every container restart.
loki.process "pod_logs" {{
  stage.cri {{}}
  stage.label_drop {{
    values = ["filename"]
  }}
  forward_to = [loki.write.default.receiver]
}}

// Single tenant (auth_enabled false): no tenant_id.
loki.write "default" {{
  endpoint {{
    url = "{push_url}"
  }}
}}
"""


def alloy_values(profile: str, config: str) -> dict[str, Any]:
    """Values for the grafana `alloy` chart. Pure: the same inputs give the same dict."""
    return {
        # The PodLogs CRD is for the operator-style `loki.source.podlogs`; not used, and a CRD
        # would outlive `pulumi destroy`.
        "crds": {"create": False},
        "controller": {
            "type": "daemonset",
            "volumes": {
                "extra": [
                    {
                        "name": "alloy-data",
                        "hostPath": {"path": ALLOY_NODE_PATH, "type": "DirectoryOrCreate"},
                    }
                ]
            },
            # Tail control-plane nodes too: "every pod's logs" includes what runs there.
            "tolerations": [
                {
                    "key": "node-role.kubernetes.io/control-plane",
                    "operator": "Exists",
                    "effect": "NoSchedule",
                }
            ],
        },
        "alloy": {
            "configMap": {"create": True, "content": config},
            # No usage reports to stats.grafana.org.
            "enableReporting": False,
            "storagePath": ALLOY_STORAGE_PATH,
            "mounts": {
                # hostPath /var/log, read-only: where the kubelet keeps pod logs.
                "varlog": True,
                "extra": [{"name": "alloy-data", "mountPath": ALLOY_STORAGE_PATH}],
            },
            "resources": sizing.k8s_resources(profile, "alloy"),
            # Pod log files are root-owned (0640), so Alloy reads them as uid 0; as their owner
            # it needs no capability, so all are dropped and nothing else is granted.
            "securityContext": {
                "runAsUser": 0,
                "runAsGroup": 0,
                "runAsNonRoot": False,
                "privileged": False,
                "allowPrivilegeEscalation": False,
                "readOnlyRootFilesystem": True,
                "capabilities": {"drop": ["ALL"]},
                "seccompProfile": {"type": "RuntimeDefault"},
            },
        },
        # The chart's reloader securityContext is already non-root and read-only.
        "configReloader": {"resources": sizing.k8s_resources(profile, "alloy-config-reloader")},
        # Least privilege: reading pods, for discovery. The chart's default rules also read
        # every Secret and ConfigMap in the cluster (for components this config does not use).
        # The chart pastes both lists into one ClusterRole as YAML and an empty list breaks
        # the document, so the single rule is split between them.
        "rbac": {
            "create": True,
            "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["list", "watch"]}],
            "clusterRules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]}],
        },
    }


# --- Network policy --------------------------------------------------------------------------


def network_policy(query_clients: tuple[tuple[str, dict[str, str]], ...] = ()) -> dict[str, Any]:
    """The spec of the NetworkPolicy in front of Loki's pods (module docstring). Pure.

    `query_clients`: (namespace, pod labels) of the pods that query Loki (Grafana).
    """
    clients: list[dict[str, Any]] = [{"podSelector": {"matchLabels": dict(ALLOY_PODS)}}]
    clients += [
        {
            # The label the API server puts on every namespace: a name nobody can relabel.
            "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": namespace}},
            "podSelector": {"matchLabels": dict(labels)},
        }
        for namespace, labels in query_clients
    ]
    return {
        "podSelector": {"matchLabels": dict(LOKI_PODS)},
        # Ingress only: Loki's egress (DNS, its own Service) stays as it was.
        "policyTypes": ["Ingress"],
        "ingress": [
            {"from": clients, "ports": [{"protocol": "TCP", "port": LOKI_HTTP_PORT}]},
            {
                "from": [{"podSelector": {"matchLabels": dict(LOKI_PODS)}}],
                "ports": [
                    {"protocol": "TCP", "port": LOKI_GRPC_PORT},
                    # memberlist gossips over both.
                    {"protocol": "TCP", "port": LOKI_MEMBERLIST_PORT},
                    {"protocol": "UDP", "port": LOKI_MEMBERLIST_PORT},
                ],
            },
        ],
    }


# --- Component -------------------------------------------------------------------------------


@dataclass
class LoggingArgs:
    profile: str
    """`dev` or `prod`: container requests and limits from `sizing`."""
    settings: LoggingSettings
    """Retention, and whether Loki's data sits on a retained PersistentVolumeClaim."""
    cluster_domain: str = "cluster.local"
    """Default: cluster.local. The cluster's DNS domain, used in the Loki URLs."""
    query_clients: tuple[tuple[str, dict[str, str]], ...] = ()
    """(namespace, pod labels) of the pods allowed to query Loki, e.g. Grafana's. Default: none,
    only Alloy (pushes) and Loki itself reach Loki."""


class Logging(pulumi.ComponentResource):
    """Loki and Alloy in the `logging` namespace.

    Children: the `logging` namespace (kept by `pulumi destroy` when persistence is on, see
    below), the `loki-ingress` NetworkPolicy (`network_policy`), the `loki` chart (monolithic
    StatefulSet, Service `loki:3100`) and the `alloy` chart (DaemonSet tailing
    `/var/log/pods` on every node).

    Outputs: `namespace`, `push_url` (for log shippers) and `query_url` (Grafana's datasource).

    Persistence and `pulumi destroy`: Loki's data is the StatefulSet's claim `storage-loki-0`,
    created by Kubernetes (not Pulumi) with retention policy Retain, so deleting the
    StatefulSet leaves it. Deleting the namespace would delete it too, so with persistence the
    namespace is `retain_on_delete`: destroy removes every Pulumi object and leaves the
    namespace with the claim (and its volume). The next `pulumi up` must adopt the existing
    namespace: run it once with `PULUMI_K8S_UPSERT_EXISTING_OBJECTS=true`. To drop the logs for
    good: `kubectl delete namespace logging`.
    """

    namespace: pulumi.Output[str]
    push_url: pulumi.Output[str]
    query_url: pulumi.Output[str]

    def __init__(
        self, name: str, args: LoggingArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("meshstack:observability:Logging", name, None, opts)

        ns = common.namespace(
            NAMESPACE,
            f"{name}-namespace",
            self,
            # Alloy mounts the host's /var/log, which Pod Security `baseline` forbids.
            labels=common.PSA_PRIVILEGED,
            # Keeps Loki's retained claim through `pulumi destroy` (class docstring).
            retain_on_delete=args.settings.persistence,
        )

        # Before the chart, so Loki never runs open.
        netpol = k8s.networking.v1.NetworkPolicy(
            f"{name}-loki-ingress",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=NETWORK_POLICY, namespace=ns.metadata.name, labels=common.MANAGED_BY
            ),
            spec=cast(
                k8s.networking.v1.NetworkPolicySpecArgsDict, network_policy(args.query_clients)
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )
        push = push_url(args.cluster_domain)
        self.loki = common.chart(
            f"{name}-loki",
            versions.LOKI,
            LOKI_RELEASE,
            ns.metadata.name,
            loki_values(args.profile, args.settings, args.cluster_domain),
            self,
            depends_on=[netpol],
        )
        # No depends_on Loki: Alloy retries pushes with backoff, so both can start in parallel.
        self.alloy = common.chart(
            f"{name}-alloy",
            versions.ALLOY,
            ALLOY_RELEASE,
            ns.metadata.name,
            alloy_values(args.profile, alloy_config(push)),
            self,
            skip_crds=True,
        )

        self.namespace = ns.metadata.name
        self.push_url = pulumi.Output.from_input(push)
        self.query_url = pulumi.Output.from_input(query_url(args.cluster_domain))
        self.register_outputs(
            {"namespace": self.namespace, "push_url": self.push_url, "query_url": self.query_url}
        )
