"""Storage engines the logs and traces outgrow one node on: pure values and names.

- **SeaweedFS** (`logging.s3.inCluster`): an S3-compatible store in the `logging` namespace for
  kind and tests, one all-in-one pod (master, volume, filer and S3 gateway) on a claim. Loki's
  own `minio` dependency is deprecated and the MinIO community repository unmaintained, so the
  maintained SeaweedFS chart stands in. Its S3 gateway authenticates with one identity whose
  keys the stack generates (pulumi-random) and hands to both sides as Secrets: the gateway's
  identity file (`seaweedfs_s3_config`) and Loki's environment. The chart's own bucket hook
  and generated Secret are Helm hooks, which Pulumi's v4 Chart never runs (and a generated key
  would change on every render), so the stack writes the Secret and a Job that makes the
  bucket itself.

Who reaches the store is a NetworkPolicy, as for Loki (components/logging.py): the S3 port
admits Loki's pods, the master and filer ports (which `weed shell` uses) the bucket Job only.

- **OpenSearch** (`tracing.store.inCluster`): one OpenSearch node in its own unmeshed
  namespace `tracing-store` for kind and tests. Single-node mode skips the bootstrap checks
  that would need `vm.max_map_count` raised on the node (which takes a privileged init
  container or an unsafe sysctl); its security plugin is off, so a NetworkPolicy is the lock:
  only Jaeger's pods and the index cleaner's reach its HTTP port, nothing reaches transport.
  Jaeger's default of one replica per index shard could never be placed on one node, so the
  indices ask for none.
"""

from __future__ import annotations

import json
from typing import Any

from components import common, sizing, versions

# --- SeaweedFS names and ports ---------------------------------------------------------------

SEAWEEDFS_RELEASE = "seaweedfs"
# The all-in-one Service (`seaweedfs.componentName` "all-in-one").
SEAWEEDFS_SERVICE = "seaweedfs-all-in-one"
SEAWEEDFS_S3_PORT = 8333
SEAWEEDFS_MASTER_PORT = 9333
SEAWEEDFS_FILER_PORT = 8888
# gRPC listens at the HTTP port + 10000 (the chart's master.grpcPort and filer.grpcPort).
SEAWEEDFS_MASTER_GRPC_PORT = 19333
SEAWEEDFS_FILER_GRPC_PORT = 18888
SEAWEEDFS_VOLUME_PORTS = (8080, 18080)
SEAWEEDFS_PODS = {
    "app.kubernetes.io/name": "seaweedfs",
    "app.kubernetes.io/instance": SEAWEEDFS_RELEASE,
    "app.kubernetes.io/component": "seaweedfs-all-in-one",
}
# The Secret the gateway reads its identities from (`allInOne.s3.existingConfigSecret`), and
# the key the chart mounts it under (-s3.config=/etc/sw/s3/seaweedfs_s3_config).
SEAWEEDFS_CONFIG_SECRET = "seaweedfs-s3-config"
SEAWEEDFS_CONFIG_KEY = "seaweedfs_s3_config"
SEAWEEDFS_IDENTITY = "loki"
SEAWEEDFS_NETWORK_POLICY = "seaweedfs-ingress"
BUCKET_JOB = "seaweedfs-bucket"
BUCKET_JOB_PODS = {"app.kubernetes.io/name": BUCKET_JOB}
# The image's own non-root user is not documented; a fixed one, with fsGroup so the claim is
# writable by it.
SEAWEEDFS_UID = 1000


def seaweedfs_endpoint(namespace: str, cluster_domain: str) -> str:
    """The in-cluster store's S3 API as a URL (what an external bucket's `endpoint` is)."""
    host = common.svc_host(SEAWEEDFS_SERVICE, namespace, cluster_domain)
    return f"http://{host}:{SEAWEEDFS_S3_PORT}"


def seaweedfs_identities(access_key_id: str, secret_access_key: str) -> str:
    """The gateway's identity file: one identity, allowed to read, write and list (what Loki
    does), not to administer. Pure; the keys arrive as secrets and the text stays one."""
    return json.dumps(
        {
            "identities": [
                {
                    "name": SEAWEEDFS_IDENTITY,
                    "credentials": [{"accessKey": access_key_id, "secretKey": secret_access_key}],
                    "actions": ["Read", "Write", "List", "Tagging"],
                }
            ]
        },
        sort_keys=True,
    )


def seaweedfs_values(profile: str, size: str, storage_class: str) -> dict[str, Any]:
    """Values for the seaweedfs chart: the all-in-one pod with S3 and auth on. Pure."""
    repository, tag = versions.SEAWEEDFS_IMAGE.rsplit(":", 1)
    data: dict[str, Any] = {"type": "persistentVolumeClaim", "size": size}
    if storage_class:
        data["storageClass"] = storage_class
    return {
        "image": {"repository": repository, "tag": tag},
        # The separate master/volume/filer StatefulSets are for real clusters of SeaweedFS.
        "master": {"enabled": False},
        "volume": {"enabled": False},
        "filer": {"enabled": False},
        "global": {
            "seaweedfs": {
                # The ClusterRole is for the filer's Kubernetes-backed leader election, which
                # the all-in-one pod does not use; no API token either.
                "createClusterRole": False,
                "automountServiceAccountToken": False,
            }
        },
        "allInOne": {
            "enabled": True,
            "s3": {
                "enabled": True,
                "enableAuth": True,
                "existingConfigSecret": SEAWEEDFS_CONFIG_SECRET,
            },
            "data": data,
            "resources": sizing.k8s_resources(profile, "seaweedfs"),
            "podSecurityContext": {
                "enabled": True,
                "runAsNonRoot": True,
                "runAsUser": SEAWEEDFS_UID,
                "runAsGroup": SEAWEEDFS_UID,
                "fsGroup": SEAWEEDFS_UID,
                "seccompProfile": {"type": "RuntimeDefault"},
            },
            "containerSecurityContext": {
                "enabled": True,
                "allowPrivilegeEscalation": False,
                "capabilities": {"drop": ["ALL"]},
            },
        },
    }


def bucket_script(bucket: str, namespace: str, cluster_domain: str) -> str:
    """The bucket Job's shell: wait for the store, then make the bucket unless it exists."""
    host = common.svc_host(SEAWEEDFS_SERVICE, namespace, cluster_domain)
    shell = (
        f"weed shell -master={host}:{SEAWEEDFS_MASTER_PORT} -filer={host}:{SEAWEEDFS_FILER_PORT}"
    )
    return (
        "set -eu\n"
        f"until echo 's3.bucket.list' | {shell} > /tmp/buckets; do sleep 5; done\n"
        f"grep -qw '{bucket}' /tmp/buckets || echo 's3.bucket.create -name {bucket}' | {shell}\n"
    )


def bucket_job_spec(
    profile: str, bucket: str, namespace: str, cluster_domain: str
) -> dict[str, Any]:
    """The spec of the Job that makes Loki's bucket in the in-cluster store. Pure."""
    return {
        "backoffLimit": 10,
        "template": {
            "metadata": {"labels": dict(BUCKET_JOB_PODS)},
            "spec": {
                "restartPolicy": "OnFailure",
                "automountServiceAccountToken": False,
                "securityContext": {
                    "runAsNonRoot": True,
                    "runAsUser": SEAWEEDFS_UID,
                    "runAsGroup": SEAWEEDFS_UID,
                    "seccompProfile": {"type": "RuntimeDefault"},
                },
                "containers": [
                    {
                        "name": "bucket",
                        "image": versions.SEAWEEDFS_IMAGE,
                        "command": [
                            "/bin/sh",
                            "-c",
                            bucket_script(bucket, namespace, cluster_domain),
                        ],
                        "resources": sizing.k8s_resources(profile, "seaweedfs-bucket"),
                        "securityContext": {
                            **common.restricted_container_security(),
                            # `weed shell` keeps its history and the list under /tmp.
                            "readOnlyRootFilesystem": False,
                        },
                    }
                ],
            },
        },
    }


def seaweedfs_network_policy(clients: dict[str, str]) -> dict[str, Any]:
    """The spec of the NetworkPolicy in front of the store. Pure.

    `clients`: pod labels of the S3 clients (Loki's pods).
    """
    tcp = lambda port: {"protocol": "TCP", "port": port}  # noqa: E731
    return {
        "podSelector": {"matchLabels": dict(SEAWEEDFS_PODS)},
        "policyTypes": ["Ingress"],
        "ingress": [
            {
                "from": [{"podSelector": {"matchLabels": dict(clients)}}],
                "ports": [tcp(SEAWEEDFS_S3_PORT)],
            },
            {
                "from": [{"podSelector": {"matchLabels": dict(BUCKET_JOB_PODS)}}],
                "ports": [
                    tcp(port)
                    for port in (
                        SEAWEEDFS_MASTER_PORT,
                        SEAWEEDFS_MASTER_GRPC_PORT,
                        SEAWEEDFS_FILER_PORT,
                        SEAWEEDFS_FILER_GRPC_PORT,
                    )
                ],
            },
            # The S3 gateway reads and writes the volume server inside the same pod; the
            # filer hands clients volume addresses, so the Job's shell may follow them too.
            {
                "from": [{"podSelector": {"matchLabels": dict(BUCKET_JOB_PODS)}}],
                "ports": [tcp(port) for port in SEAWEEDFS_VOLUME_PORTS],
            },
        ],
    }


# --- OpenSearch names and ports --------------------------------------------------------------

OPENSEARCH_NAMESPACE = "tracing-store"
OPENSEARCH_RELEASE = "opensearch"
# The chart's `masterService` (clusterName-nodeGroup), its Service and StatefulSet name.
OPENSEARCH_SERVICE = "opensearch-cluster-master"
OPENSEARCH_HTTP_PORT = 9200
OPENSEARCH_PODS = {
    "app.kubernetes.io/name": "opensearch",
    "app.kubernetes.io/instance": "opensearch",
}
OPENSEARCH_NETWORK_POLICY = "opensearch-ingress"
# The image's own user (the chart's podSecurityContext).
OPENSEARCH_UID = 1000


def opensearch_url(cluster_domain: str) -> str:
    """The in-cluster OpenSearch's HTTP API, as Jaeger's `server_urls` takes it."""
    host = common.svc_host(OPENSEARCH_SERVICE, OPENSEARCH_NAMESPACE, cluster_domain)
    return f"http://{host}:{OPENSEARCH_HTTP_PORT}"


def opensearch_values(profile: str, size: str, storage_class: str) -> dict[str, Any]:
    """Values for the opensearch chart: one node, plain HTTP, on a claim. Pure."""
    repository, tag = versions.OPENSEARCH_IMAGE.rsplit(":", 1)
    heap = {"dev": "256m", "prod": "1g"}[profile]
    persistence: dict[str, Any] = {
        "enabled": True,
        "size": size,
        # The chart's chown init container runs as root; fsGroup already makes it writable.
        "enableInitChown": False,
    }
    if storage_class:
        persistence["storageClass"] = storage_class
    security = {**common.restricted_container_security(), "runAsUser": OPENSEARCH_UID}
    # OpenSearch writes its keystore and temporary files beside its config.
    security["readOnlyRootFilesystem"] = False
    return {
        "image": {"repository": repository, "tag": tag},
        "singleNode": True,
        "protocol": "http",
        "extraEnvs": [
            {"name": "DISABLE_SECURITY_PLUGIN", "value": "true"},
            {"name": "DISABLE_INSTALL_DEMO_CONFIG", "value": "true"},
        ],
        # Half the memory limit for the heap, the rest for Lucene's page cache.
        "opensearchJavaOpts": f"-Xms{heap} -Xmx{heap}",
        "resources": sizing.k8s_resources(profile, "opensearch"),
        "initResources": sizing.k8s_resources(profile, "opensearch-init"),
        "persistence": persistence,
        "podSecurityContext": {
            "fsGroup": OPENSEARCH_UID,
            "runAsUser": OPENSEARCH_UID,
            "runAsNonRoot": True,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "securityContext": security,
    }


def opensearch_network_policy(
    clients: tuple[tuple[str, dict[str, str]], ...],
) -> dict[str, Any]:
    """The spec of the NetworkPolicy in front of OpenSearch. Pure.

    `clients`: (namespace, pod labels) of the pods that read and write spans (Jaeger, the
    index cleaner).
    """
    return {
        "podSelector": {"matchLabels": dict(OPENSEARCH_PODS)},
        "policyTypes": ["Ingress"],
        "ingress": [
            {
                "from": [
                    {
                        "namespaceSelector": {
                            "matchLabels": {"kubernetes.io/metadata.name": namespace}
                        },
                        "podSelector": {"matchLabels": dict(labels)},
                    }
                    for namespace, labels in clients
                ],
                "ports": [{"protocol": "TCP", "port": OPENSEARCH_HTTP_PORT}],
            }
        ],
    }
