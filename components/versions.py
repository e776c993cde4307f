"""Every pinned chart, chart repository and container image, in one place.

Upgrading is a one-line change here plus a read of the upstream chart's values and
templates for renamed keys and Services (the chart contract test renders the charts with
the stack's values to catch exactly that).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ChartRef:
    """A Helm chart pinned to one version from one repository."""

    chart: str
    version: str
    repo: str


# --- Linkerd ---------------------------------------------------------------------------------
# https://github.com/linkerd/linkerd2/tree/main/charts — open-source Linkerd ships edge releases
# only; edge-YY.M.N is published as chart version 20YY.M.N. The Linkerd charts share one version.
LINKERD_VERSION = "2026.8.3"
LINKERD_REPO = "https://helm.linkerd.io/edge"
LINKERD_CRDS = ChartRef("linkerd-crds", LINKERD_VERSION, LINKERD_REPO)
LINKERD_CONTROL_PLANE = ChartRef("linkerd-control-plane", LINKERD_VERSION, LINKERD_REPO)
LINKERD_VIZ = ChartRef("linkerd-viz", LINKERD_VERSION, LINKERD_REPO)
# With `linkerd.cni`: https://github.com/linkerd/linkerd2/tree/main/charts/linkerd2-cni
LINKERD2_CNI = ChartRef("linkerd2-cni", LINKERD_VERSION, LINKERD_REPO)
# With `enableMulticluster`: https://github.com/linkerd/linkerd2/tree/main/multicluster/charts
LINKERD_MULTICLUSTER = ChartRef("linkerd-multicluster", LINKERD_VERSION, LINKERD_REPO)

# Gateway API CRDs (standard channel), which Linkerd requires since 2.19, from Envoy Gateway's
# CRD-only chart: a pinned, packaged release instead of a manifest downloaded at every render.
# https://github.com/envoyproxy/gateway/tree/main/charts/gateway-crds-helm (values: crds.*)
# Envoy Gateway's two charts come from one release and share its version: the CRD chart must
# never lag the controller that reads them.
ENVOY_GATEWAY_VERSION = "v1.8.3"
ENVOY_GATEWAY_REPO = "oci://docker.io/envoyproxy"
GATEWAY_API_CRDS = ChartRef("gateway-crds-helm", ENVOY_GATEWAY_VERSION, ENVOY_GATEWAY_REPO)
# The Gateway API release that chart carries (its `gateway.networking.k8s.io/bundle-version`),
# the newest Linkerd's policy controller supports since edge-26.8.2 (linkerd2 #15567).
GATEWAY_API_VERSION = "v1.5.1"

# --- Envoy Gateway ---------------------------------------------------------------------------
# Installed only with `exposure.mode: gateway` and `exposure.installEnvoyGateway`.
# https://github.com/envoyproxy/gateway/tree/main/charts/gateway-helm (values: values.tmpl.yaml)
ENVOY_GATEWAY = ChartRef("gateway-helm", ENVOY_GATEWAY_VERSION, ENVOY_GATEWAY_REPO)
# The chart's own controller image (`global.images.envoyGateway.image`), which the stack also
# runs as the certificate Job the chart ships as a hook (components/gateway.py).
ENVOY_GATEWAY_IMAGE = "docker.io/envoyproxy/gateway:v1.8.3"

# --- External identity issuer ------------------------------------------------------------------
# Installed only with `linkerd.identity.issuer: external` and `installCertManager`.
# https://github.com/cert-manager/cert-manager/tree/master/deploy/charts/cert-manager
CERT_MANAGER = ChartRef("cert-manager", "v1.21.1", "https://charts.jetstack.io")
# https://github.com/cert-manager/trust-manager/tree/main/deploy/charts/trust-manager
TRUST_MANAGER = ChartRef("trust-manager", "v0.24.0", "https://charts.jetstack.io")

# --- Tracing ---------------------------------------------------------------------------------
# https://github.com/jaegertracing/helm-charts/tree/main/charts/jaeger (4.x = Jaeger v2). At
# least 4.11.1: `jaeger.extraVolumes`/`extraVolumeMounts` (the Badger claim) came back there.
# The chart is marked experimental (minor versions may break): re-render before bumping.
JAEGER = ChartRef("jaeger", "4.11.1", "https://jaegertracing.github.io/helm-charts")
# The chart's appVersion, pinned here so a chart bump cannot change Jaeger silently.
JAEGER_IMAGE = "jaegertracing/jaeger:2.19.0"

# With an OpenSearch or Elasticsearch store: the index cleaner the stack runs as a CronJob
# (the chart's own passes the password as a plain env value). Released with Jaeger itself.
JAEGER_ES_INDEX_CLEANER_IMAGE = "jaegertracing/jaeger-es-index-cleaner:2.19.0"
# With `tracing.storage: opensearch` and `tracing.store.inCluster`: a single-node OpenSearch
# for kind and tests (the jaeger chart provisions no backend since 4.x).
# https://github.com/opensearch-project/helm-charts/tree/main/charts/opensearch
OPENSEARCH = ChartRef("opensearch", "3.6.0", "https://opensearch-project.github.io/helm-charts")
OPENSEARCH_IMAGE = "opensearchproject/opensearch:3.6.0"

# https://github.com/open-telemetry/opentelemetry-helm-charts/tree/main/charts/opentelemetry-collector
OTEL_COLLECTOR = ChartRef(
    "opentelemetry-collector",
    "0.170.0",
    "https://open-telemetry.github.io/opentelemetry-helm-charts",
)
# Collector images are (repository, tag, command name in the image).
# The Kubernetes distribution: OTLP in, OTLP out, k8sattributes. No OpenCensus receiver.
OTEL_COLLECTOR_IMAGE = ("otel/opentelemetry-collector-k8s", "0.158.0", "otelcol-k8s")
# The last contrib release that still ships the OpenCensus receiver (removed from the
# distributions in v0.132.0); only used while `tracing.openCensus` is on, because the
# emojivoto v11 images export spans over OpenCensus only.
OTEL_COLLECTOR_OPENCENSUS_IMAGE = (
    "otel/opentelemetry-collector-contrib",
    "0.131.1",
    "otelcol-contrib",
)

# --- Logs and dashboards ---------------------------------------------------------------------
# https://github.com/grafana-community/helm-charts/tree/main/charts/loki
LOKI = ChartRef("loki", "18.11.0", "https://grafana-community.github.io/helm-charts")
# With `logging.storage: s3` and `logging.s3.inCluster`: an S3-compatible store for kind and
# tests. Loki's own `minio` dependency is deprecated (the loki chart refuses to render it
# without an override) and minio/minio is no longer maintained; SeaweedFS is maintained and
# serves S3 from one all-in-one pod.
# https://github.com/seaweedfs/seaweedfs/tree/master/k8s/charts/seaweedfs (tag 4.44)
SEAWEEDFS = ChartRef("seaweedfs", "4.44.0", "https://seaweedfs.github.io/seaweedfs/helm")
# The chart's appVersion image, pinned here; the stack's bucket Job runs the same `weed`.
SEAWEEDFS_IMAGE = "chrislusf/seaweedfs:4.44"
# https://github.com/grafana/alloy/tree/main/operations/helm/charts/alloy
ALLOY = ChartRef("alloy", "1.11.1", "https://grafana.github.io/helm-charts")
# https://github.com/grafana-community/helm-charts/tree/main/charts/grafana
GRAFANA = ChartRef("grafana", "12.11.1", "https://grafana-community.github.io/helm-charts")
# The optional grafana.com dashboards' downloader (components/grafana.py): the curl image that
# chart pins for its own (values.yaml `downloadDashboardsImage`).
CURL_IMAGE = "docker.io/curlimages/curl:8.21.0"

# --- Sign-in in front of the dashboard and Jaeger ---------------------------------------------
# https://github.com/oauth2-proxy/manifests/tree/main/helm/oauth2-proxy (app 7.15.3)
OAUTH2_PROXY = ChartRef("oauth2-proxy", "10.7.0", "https://oauth2-proxy.github.io/manifests")

# --- Demo application ------------------------------------------------------------------------
# https://github.com/BuoyantIO/emojivoto — the images moved to ghcr.io in 2025; tag v11.
EMOJIVOTO_REGISTRY = "ghcr.io/buoyantio"
EMOJIVOTO_TAG = "v11"
