"""CPU and memory for every container the program configures, per profile, in one table.

`dev` fits a laptop kind cluster (the whole dev stack requests well under 2 CPU / 3 GiB);
`prod` follows the upstream HA values (Linkerd's and viz's `values-ha.yaml`) and the charts'
own suggestions. Limits are set on memory everywhere (an OOM kill is better than a node under
pressure) and on CPU too, so the dev stack cannot starve a laptop.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Resources:
    cpu_request: str
    memory_request: str
    cpu_limit: str
    memory_limit: str

    def k8s(self) -> dict[str, dict[str, str]]:
        """The Kubernetes `resources` block."""
        return {
            "requests": {"cpu": self.cpu_request, "memory": self.memory_request},
            "limits": {"cpu": self.cpu_limit, "memory": self.memory_limit},
        }

    def linkerd(self) -> dict[str, dict[str, str]]:
        """The block Linkerd's charts take (`cpu.request`, `memory.limit`, ...)."""
        return {
            "cpu": {"request": self.cpu_request, "limit": self.cpu_limit},
            "memory": {"request": self.memory_request, "limit": self.memory_limit},
        }


def _r(cpu_request: str, memory_request: str, cpu_limit: str, memory_limit: str) -> Resources:
    return Resources(cpu_request, memory_request, cpu_limit, memory_limit)


# Component names are the containers' roles; every module looks its own up here.
SIZES: dict[str, dict[str, Resources]] = {
    "dev": {
        # Also sizes the `linkerd-init` init container: the chart gives it `proxy.resources`.
        "linkerd-proxy": _r("10m", "20Mi", "200m", "128Mi"),
        "linkerd-destination": _r("20m", "50Mi", "250m", "250Mi"),
        "linkerd-identity": _r("10m", "20Mi", "100m", "128Mi"),
        "linkerd-proxy-injector": _r("10m", "30Mi", "200m", "250Mi"),
        "linkerd-heartbeat": _r("10m", "20Mi", "100m", "64Mi"),
        # With `linkerd.cni`: the plugin's installer, one per node, idle between file changes.
        "linkerd-cni": _r("5m", "16Mi", "100m", "64Mi"),
        "viz-component": _r("10m", "30Mi", "100m", "128Mi"),
        "viz-prometheus": _r("50m", "150Mi", "500m", "512Mi"),
        "otel-collector": _r("20m", "64Mi", "200m", "256Mi"),
        # The memory store holds ~100 MiB of traces in dev (MEMORY_MAX_TRACES in tracing.py);
        # the limit leaves room for Badger's memtables and cache when it is chosen instead.
        "jaeger": _r("20m", "128Mi", "250m", "512Mi"),
        "loki": _r("50m", "128Mi", "500m", "512Mi"),
        "loki-sidecar": _r("10m", "32Mi", "100m", "64Mi"),
        # Distributed Loki (logging.mode): ingesters hold recent logs in memory, queriers
        # read chunks; the other components route and schedule.
        "loki-ingester": _r("50m", "128Mi", "500m", "512Mi"),
        "loki-querier": _r("50m", "128Mi", "500m", "512Mi"),
        "loki-component": _r("10m", "32Mi", "200m", "128Mi"),
        # The in-cluster S3 store (logging.s3.inCluster) and its one-shot bucket Job.
        "seaweedfs": _r("50m", "128Mi", "500m", "512Mi"),
        "seaweedfs-bucket": _r("10m", "32Mi", "100m", "128Mi"),
        # The in-cluster OpenSearch (tracing.store.inCluster): a 256m heap inside the limit,
        # its config-copying init container, and the index cleaner's nightly run.
        "opensearch": _r("100m", "768Mi", "1", "1Gi"),
        "opensearch-init": _r("10m", "16Mi", "100m", "64Mi"),
        "es-index-cleaner": _r("10m", "32Mi", "100m", "128Mi"),
        "alloy": _r("20m", "64Mi", "200m", "256Mi"),
        "alloy-config-reloader": _r("5m", "16Mi", "50m", "32Mi"),
        # Grafana 13 documents 512 MB as its minimum.
        "grafana": _r("50m", "192Mi", "500m", "512Mi"),
        "grafana-sidecar": _r("10m", "32Mi", "100m", "96Mi"),
        "grafana-init": _r("10m", "16Mi", "100m", "64Mi"),
        "emojivoto": _r("10m", "16Mi", "100m", "64Mi"),
        "vote-bot": _r("5m", "8Mi", "50m", "32Mi"),
        "oauth2-proxy": _r("5m", "16Mi", "100m", "64Mi"),
        # With an external identity issuer only (components/external_issuer.py).
        "cert-manager": _r("10m", "48Mi", "200m", "256Mi"),
        "cert-manager-webhook": _r("10m", "24Mi", "100m", "128Mi"),
        "cert-manager-cainjector": _r("10m", "48Mi", "200m", "256Mi"),
        "trust-manager": _r("10m", "32Mi", "100m", "128Mi"),
        # With exposure.installEnvoyGateway (components/gateway.py): the controller, and the
        # one-shot Job that writes its certificates.
        "envoy-gateway": _r("20m", "64Mi", "500m", "256Mi"),
        "envoy-gateway-certgen": _r("10m", "16Mi", "100m", "64Mi"),
        # With enableMulticluster (components/multicluster.py): each link's service mirror and
        # the local (federation) mirror; the gateway's pause container, which only holds the
        # pod for its proxy.
        "linkerd-multicluster": _r("10m", "32Mi", "100m", "128Mi"),
        "pause": _r("1m", "4Mi", "10m", "16Mi"),
    },
    "prod": {
        "linkerd-proxy": _r("100m", "20Mi", "1", "250Mi"),
        "linkerd-destination": _r("100m", "50Mi", "1", "250Mi"),
        "linkerd-identity": _r("100m", "10Mi", "1", "250Mi"),
        "linkerd-proxy-injector": _r("100m", "50Mi", "1", "250Mi"),
        "linkerd-heartbeat": _r("100m", "50Mi", "1", "250Mi"),
        "linkerd-cni": _r("10m", "32Mi", "200m", "128Mi"),
        "viz-component": _r("100m", "50Mi", "1", "250Mi"),
        "viz-prometheus": _r("300m", "300Mi", "2", "8192Mi"),
        "otel-collector": _r("200m", "256Mi", "1", "1Gi"),
        "jaeger": _r("250m", "512Mi", "2", "4Gi"),
        "loki": _r("500m", "1Gi", "2", "4Gi"),
        "loki-sidecar": _r("10m", "64Mi", "100m", "128Mi"),
        # Upstream's distributed sample values scaled to this stack's monolithic row: the
        # ingesters carry the write path, the queriers the read path.
        "loki-ingester": _r("500m", "1Gi", "2", "4Gi"),
        "loki-querier": _r("250m", "512Mi", "2", "2Gi"),
        "loki-component": _r("100m", "128Mi", "1", "512Mi"),
        "seaweedfs": _r("500m", "1Gi", "2", "2Gi"),
        "seaweedfs-bucket": _r("10m", "32Mi", "200m", "128Mi"),
        # A 1g heap: half the limit, the rest for the page cache. A real cluster is external.
        "opensearch": _r("500m", "2Gi", "2", "2Gi"),
        "opensearch-init": _r("10m", "16Mi", "100m", "64Mi"),
        "es-index-cleaner": _r("50m", "64Mi", "500m", "256Mi"),
        "alloy": _r("100m", "128Mi", "1", "512Mi"),
        "alloy-config-reloader": _r("10m", "32Mi", "100m", "64Mi"),
        "grafana": _r("250m", "512Mi", "1", "1Gi"),
        "grafana-sidecar": _r("50m", "64Mi", "200m", "256Mi"),
        "grafana-init": _r("10m", "32Mi", "100m", "64Mi"),
        "emojivoto": _r("100m", "64Mi", "500m", "128Mi"),
        "vote-bot": _r("10m", "16Mi", "100m", "64Mi"),
        "oauth2-proxy": _r("20m", "32Mi", "200m", "128Mi"),
        # cainjector watches every Secret and webhook configuration in the cluster.
        "cert-manager": _r("50m", "128Mi", "1", "512Mi"),
        "cert-manager-webhook": _r("50m", "64Mi", "500m", "256Mi"),
        "cert-manager-cainjector": _r("50m", "128Mi", "1", "1Gi"),
        "trust-manager": _r("50m", "64Mi", "500m", "256Mi"),
        # The chart's own requests and memory limit (values.yaml deployment.envoyGateway).
        "envoy-gateway": _r("100m", "256Mi", "1", "1024Mi"),
        "envoy-gateway-certgen": _r("10m", "32Mi", "200m", "128Mi"),
        "linkerd-multicluster": _r("50m", "64Mi", "500m", "256Mi"),
        "pause": _r("1m", "4Mi", "10m", "16Mi"),
    },
}


def size(profile: str, component: str) -> Resources:
    return SIZES[profile][component]


def k8s_resources(profile: str, component: str) -> dict[str, Any]:
    return size(profile, component).k8s()
