"""Logs: Loki and Grafana Alloy on every node shipping pod logs to it.

By default Loki runs as one StatefulSet pod with its index (tsdb, schema v13) and chunks on
local disk: the smallest Loki that keeps logs for a set retention. With `storage: s3` the index
and chunks go to an S3-compatible bucket, and Loki scales out on it: several monolithic pods,
or the chart's Distributed mode (`DISTRIBUTED`). Alloy runs as a DaemonSet, tails the log
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

import urllib.parse
from dataclasses import dataclass
from typing import Any, cast

import pulumi
import pulumi_kubernetes as k8s
import pulumi_random as random

from components import common, sizing, storage, versions
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


# In the chart's Distributed mode each component has its own Service `loki-<component>`:
# pushes go to the distributors, queries to the query frontends (the chart's optional nginx
# gateway would only add a hop in front of both).
LOKI_DISTRIBUTOR_SERVICE = "loki-distributor"
LOKI_QUERY_FRONTEND_SERVICE = "loki-query-frontend"

# Loki's S3 credentials reach it as environment variables from this Secret (the chart's
# `defaults.extraEnvFrom`), and the config names them (`-config.expand-env`): the config itself
# is a ConfigMap, which must never hold a key.
S3_SECRET = "loki-s3"
S3_ACCESS_KEY_ENV = "LOKI_S3_ACCESS_KEY_ID"
S3_SECRET_KEY_ENV = "LOKI_S3_SECRET_ACCESS_KEY"

# Distributed components: values key → (replicas per profile, sizing row). Ingesters hold the
# last hours of logs in memory and their WAL: three in prod, so with replication factor 3 a
# pod can go without losing a write. The compactor applies retention and must be one.
DISTRIBUTED: dict[str, tuple[dict[str, int], str]] = {
    "distributor": ({"dev": 1, "prod": 2}, "loki-component"),
    "ingester": ({"dev": 1, "prod": 3}, "loki-ingester"),
    "querier": ({"dev": 1, "prod": 2}, "loki-querier"),
    "queryFrontend": ({"dev": 1, "prod": 2}, "loki-component"),
    "queryScheduler": ({"dev": 1, "prod": 2}, "loki-component"),
    "indexGateway": ({"dev": 1, "prod": 2}, "loki-component"),
    "compactor": ({"dev": 1, "prod": 1}, "loki-component"),
}


def query_url(cluster_domain: str, mode: str = "monolithic") -> str:
    """Loki's HTTP API in the cluster: Grafana's Loki datasource URL."""
    service = LOKI_QUERY_FRONTEND_SERVICE if mode == "distributed" else LOKI_SERVICE
    return f"http://{common.svc_host(service, NAMESPACE, cluster_domain)}:{LOKI_HTTP_PORT}"


def push_url(cluster_domain: str, mode: str = "monolithic") -> str:
    """Where Alloy (and any other shipper) pushes log streams."""
    service = LOKI_DISTRIBUTOR_SERVICE if mode == "distributed" else LOKI_SERVICE
    host = common.svc_host(service, NAMESPACE, cluster_domain)
    return f"http://{host}:{LOKI_HTTP_PORT}{PUSH_PATH}"


def bucket_endpoint(settings: LoggingSettings, cluster_domain: str) -> str:
    """The S3 API Loki writes to: the configured one, or the in-cluster store's."""
    if settings.s3.in_cluster:
        return storage.seaweedfs_endpoint(NAMESPACE, cluster_domain)
    return settings.s3.endpoint


def uses_keys(settings: LoggingSettings) -> bool:
    """Loki authenticates to its bucket with access keys (not workload identity)."""
    return settings.storage == "s3" and not settings.s3.service_account_annotations


def replication_factor(settings: LoggingSettings, profile: str) -> int:
    """How many ingesters each stream is written to. Three where three ingesters run (a write
    then survives one of them going), else one: a factor above the ingester count refuses
    every write."""
    if settings.storage != "s3":
        return 1
    ingesters = (
        DISTRIBUTED["ingester"][0][profile] if settings.mode == "distributed" else settings.replicas
    )
    return 3 if ingesters >= 3 else 1


def _object_storage(settings: LoggingSettings, cluster_domain: str) -> dict[str, Any]:
    """The chart's `loki.storage` for an S3-compatible bucket."""
    url = urllib.parse.urlsplit(bucket_endpoint(settings, cluster_domain))
    s3: dict[str, Any] = {
        # host[:port]: the scheme is told by `insecure`, as the chart does for its own MinIO.
        "endpoint": url.netloc,
        "insecure": url.scheme == "http",
        "region": settings.s3.region,
        "s3ForcePathStyle": settings.s3.in_cluster or settings.s3.force_path_style,
    }
    if uses_keys(settings):
        s3 |= {
            "accessKeyId": f"${{{S3_ACCESS_KEY_ENV}}}",
            "secretAccessKey": f"${{{S3_SECRET_KEY_ENV}}}",
        }
    return {"type": "s3", "bucketNames": {"chunks": settings.s3.bucket}, "s3": s3}


# --- Values (pure) ---------------------------------------------------------------------------

# Loki 3 turns on an in-process cache wherever no external one (memcached, redis) is set: the
# chunk cache and the query-range results cache, and five more (index stats, volume, series,
# labels, instant metric) that copy the results cache's settings (grafana/loki v3
# pkg/loki/config_wrapper.go `applyEmbeddedCacheConfig`), each 100 MB by default: 700 MB, over
# the dev memory limit. These are the sizes given instead, per profile, in MB: (chunks,
# results and its five copies). They count against the `loki` memory limit in sizing.
EMBEDDED_CACHE_MB = {"dev": (32, 16), "prod": (256, 64)}
# Distributed mode: every component reads the same config, so the caps must fit the smallest
# component's limit (`loki-component`, 512Mi), not the single binary's.
DISTRIBUTED_EMBEDDED_CACHE_MB = {"dev": (32, 16), "prod": (128, 16)}
# How many caches copy the results cache's size.
RESULTS_CACHE_COPIES = 6


def embedded_cache_config(profile: str, mode: str = "monolithic") -> dict[str, Any]:
    """Loki config (merged by the chart's `loki.structuredConfig`) capping its in-process
    caches. Pure."""
    sizes = DISTRIBUTED_EMBEDDED_CACHE_MB if mode == "distributed" else EMBEDDED_CACHE_MB
    chunks_mb, results_mb = sizes[profile]
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
    values: dict[str, Any] = {
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
            "structuredConfig": embedded_cache_config(profile, settings.mode),
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
    if settings.storage == "s3":
        values = _on_object_storage(values, profile, settings, cluster_domain)
    return values


def _on_object_storage(
    values: dict[str, Any], profile: str, settings: LoggingSettings, cluster_domain: str
) -> dict[str, Any]:
    """`values` with the index and chunks in the bucket, and Loki scaled out on it."""
    loki = dict(values["loki"])
    loki["storage"] = _object_storage(settings, cluster_domain)
    loki["schemaConfig"] = {
        "configs": [
            # The same first day: a stack moving from filesystem starts a fresh store in the
            # bucket, and its old index is never looked for there (README "Moving data").
            {**values["loki"]["schemaConfig"]["configs"][0], "object_store": "s3"}
        ]
    }
    # Delete requests and retention marks are kept in the bucket too, so any compactor pod
    # (or the next one) finds them.
    loki["compactor"] = {**values["loki"]["compactor"], "delete_request_store": "s3"}
    loki["commonConfig"] = {"replication_factor": replication_factor(settings, profile)}
    # Alerting lives in Grafana: the ruler keeps no rules, so it needs no bucket of its own.
    loki["rulerConfig"] = {"storage": {"type": "local"}}
    out = {**values, "loki": loki, "ruler": {"enabled": False}}
    if uses_keys(settings):
        out["defaults"] = {
            **values["defaults"],
            "extraEnvFrom": [{"secretRef": {"name": S3_SECRET}}],
        }
    if settings.s3.service_account_annotations:
        out["serviceAccount"] = {
            **values["serviceAccount"],
            "annotations": dict(settings.s3.service_account_annotations),
        }
        # The annotation is all: EKS's identity webhook mounts its own projected token and
        # GKE answers from the metadata server, so the API token stays unmounted.
    if settings.mode == "monolithic":
        out["singleBinary"] = {**values["singleBinary"], "replicas": settings.replicas}
        return out
    out["deploymentMode"] = "Distributed"
    out["singleBinary"] = {**values["singleBinary"], "replicas": 0}
    for key, (replicas, role) in DISTRIBUTED.items():
        out[key] = {"replicas": replicas[profile], "resources": sizing.k8s_resources(profile, role)}
    # One StatefulSet per zone needs the rollout operator and three zones of nodes; spreading
    # the ingesters is left to the scheduler.
    out["ingester"]["zoneAwareReplication"] = {"enabled": False}
    return out


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


def network_policy(
    query_clients: tuple[tuple[str, dict[str, str]], ...] = (), mode: str = "monolithic"
) -> dict[str, Any]:
    """The spec of the NetworkPolicy in front of Loki's pods (module docstring). Pure.

    `query_clients`: (namespace, pod labels) of the pods that query Loki (Grafana). In
    `distributed` mode Loki's own pods call each other's HTTP port too (the query frontend
    proxies live tails to the queriers).
    """
    clients: list[dict[str, Any]] = [{"podSelector": {"matchLabels": dict(ALLOY_PODS)}}]
    if mode == "distributed":
        clients.append({"podSelector": {"matchLabels": dict(LOKI_PODS)}})
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


def _meta(
    name: str, ns: k8s.core.v1.Namespace, annotations: dict[str, str] | None = None
) -> k8s.meta.v1.ObjectMetaArgs:
    """Metadata of an object the component writes in its namespace."""
    return k8s.meta.v1.ObjectMetaArgs(
        name=name, namespace=ns.metadata.name, labels=common.MANAGED_BY, annotations=annotations
    )


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
    `/var/log/pods` on every node). With `storage: s3`: the `loki-s3` Secret (the bucket's keys,
    unless workload identity), and with an in-cluster bucket the SeaweedFS store: its generated
    keys (`<name>-s3-access-key`, `<name>-s3-secret-key`), its identity Secret, its
    NetworkPolicy, the `seaweedfs` chart and the Job that makes the bucket
    (components/storage.py).

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
                k8s.networking.v1.NetworkPolicySpecArgsDict,
                network_policy(args.query_clients, args.settings.mode),
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )
        loki_deps: list[pulumi.Resource] = [netpol]
        if args.settings.storage == "s3":
            loki_deps += self._bucket(name, args, ns)
        push = push_url(args.cluster_domain, args.settings.mode)
        self.loki = common.chart(
            f"{name}-loki",
            versions.LOKI,
            LOKI_RELEASE,
            ns.metadata.name,
            loki_values(args.profile, args.settings, args.cluster_domain),
            self,
            depends_on=loki_deps,
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
        self.query_url = pulumi.Output.from_input(
            query_url(args.cluster_domain, args.settings.mode)
        )
        self.register_outputs(
            {"namespace": self.namespace, "push_url": self.push_url, "query_url": self.query_url}
        )

    def _bucket(
        self, name: str, args: LoggingArgs, ns: k8s.core.v1.Namespace
    ) -> list[pulumi.Resource]:
        """The bucket's keys as a Secret Loki reads, and the in-cluster store when asked for:
        what the Loki chart must wait for."""
        b = args.settings.s3
        if b.service_account_annotations:
            return []
        # The key id is no credential alone, but is kept a secret beside its key anyway.
        key_id: pulumi.Output[str] = pulumi.Output.secret(b.access_key_id)
        key: pulumi.Output[str] = pulumi.Output.secret(b.secret_access_key.value)
        store: list[pulumi.Resource] = []
        if b.in_cluster:
            # Letters and digits only: the identity file is JSON and the keys go into env vars.
            generated_id = random.RandomPassword(
                f"{name}-s3-access-key",
                length=20,
                special=False,
                opts=pulumi.ResourceOptions(parent=self, additional_secret_outputs=["result"]),
            ).result
            key = pulumi.Output.secret(
                random.RandomPassword(
                    f"{name}-s3-secret-key",
                    length=40,
                    special=False,
                    opts=pulumi.ResourceOptions(parent=self, additional_secret_outputs=["result"]),
                ).result
            )
            key_id = pulumi.Output.secret(generated_id)
            store = self._seaweedfs(name, args, ns, key_id, key)
        secret = k8s.core.v1.Secret(
            f"{name}-loki-s3",
            metadata=_meta(S3_SECRET, ns),
            type="Opaque",
            string_data={
                S3_ACCESS_KEY_ENV: key_id,
                S3_SECRET_KEY_ENV: key,
            },
            opts=pulumi.ResourceOptions(parent=self),
        )
        return [secret, *store]

    def _seaweedfs(
        self,
        name: str,
        args: LoggingArgs,
        ns: k8s.core.v1.Namespace,
        key_id: pulumi.Output[str],
        key: pulumi.Output[str],
    ) -> list[pulumi.Resource]:
        """SeaweedFS in the logging namespace, with the identity Loki signs in as."""
        # Output.all keeps the keys' secretness; `secret` says so where it is read.
        joined: pulumi.Output[str] = pulumi.Output.all(key_id, key).apply(
            lambda k: storage.seaweedfs_identities(str(k[0]), str(k[1]))
        )
        identity_file: pulumi.Output[str] = pulumi.Output.secret(joined)
        identities = k8s.core.v1.Secret(
            f"{name}-seaweedfs-s3-config",
            metadata=_meta(storage.SEAWEEDFS_CONFIG_SECRET, ns),
            type="Opaque",
            string_data={storage.SEAWEEDFS_CONFIG_KEY: identity_file},
            opts=pulumi.ResourceOptions(parent=self),
        )
        netpol = k8s.networking.v1.NetworkPolicy(
            f"{name}-seaweedfs-ingress",
            metadata=_meta(storage.SEAWEEDFS_NETWORK_POLICY, ns),
            spec=cast(
                k8s.networking.v1.NetworkPolicySpecArgsDict,
                storage.seaweedfs_network_policy(LOKI_PODS),
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.seaweedfs = common.chart(
            f"{name}-seaweedfs",
            versions.SEAWEEDFS,
            storage.SEAWEEDFS_RELEASE,
            ns.metadata.name,
            storage.seaweedfs_values(
                args.profile, args.settings.storage_size, args.settings.storage_class
            ),
            self,
            depends_on=[identities, netpol],
        )
        k8s.batch.v1.Job(
            f"{name}-seaweedfs-bucket",
            # Not waited for: the Job retries until the store answers, and Loki retries its
            # writes until the bucket exists, so neither adds a readiness stage.
            metadata=_meta(storage.BUCKET_JOB, ns, {"pulumi.com/skipAwait": "true"}),
            spec=cast(
                k8s.batch.v1.JobSpecArgsDict,
                storage.bucket_job_spec(
                    args.profile, args.settings.s3.bucket, NAMESPACE, args.cluster_domain
                ),
            ),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[netpol]),
        )
        return [identities]
