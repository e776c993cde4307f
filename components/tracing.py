"""Tracing: an OpenTelemetry collector in front of Jaeger v2, both meshed, in namespace `tracing`.

Span flow: Linkerd proxies (OTLP gRPC, over mTLS to the collector's mesh identity) and apps
(OTLP, or OpenCensus for emojivoto v11) → the `otel-collector` Service → memory_limiter,
k8sattributes, batch → OTLP gRPC → the `jaeger` Service → memory, Badger, or a shared store
(OpenSearch, Elasticsearch, Cassandra) → Jaeger query/UI on 16686.

Facts this module is built on (read from jaeger chart 4.11.1 and collector chart 0.170.0):

- **Sampling.** The Linkerd proxy never starts a trace: it only emits spans for requests that
  already carry a trace context with the sampled flag set (W3C `traceparent` or B3). Plain
  traffic produces no proxy spans at all. emojivoto's vote-bot starts sampled B3 traces, which
  is why the demo shows traces without any ingress-side sampling.
- **OpenCensus.** The collector distributions dropped the OpenCensus receiver in v0.132.0, so
  with `open_census` on the collector runs `versions.OTEL_COLLECTOR_OPENCENSUS_IMAGE` (0.131.1,
  the last release that ships it) and listens on 55678; with it off it runs the current
  `versions.OTEL_COLLECTOR_IMAGE`, and neither the receiver nor the port exists. Linkerd's own
  proxies speak OTLP only (OpenCensus was removed in proxy v2.323.0), so only legacy apps need
  it; turn it off once emojivoto is gone or exports OTLP.
- **Names.** Collector v0.144.0 renamed the `otlp` exporter to `otlp_grpc` and v0.146.0 the
  `k8sattributes` processor to `k8s_attributes` (old names remain deprecated aliases). The
  config uses the names the running image knows, and the chart's own renaming is switched off
  (`rewriteDeprecatedComponentNames: false`) so what is written here is what runs.
- **Whole configs.** Pulumi's Python SDK drops `None` values, so chart defaults cannot be
  deleted with Helm's `null`. Both configs are therefore complete replacements: the
  collector's `alternateConfig` (not merged with the chart's `config`) and Jaeger's
  `userconfig` (not merged with the built-in config).
- **Restarts.** The Jaeger chart mounts `userconfig` with `subPath` and has no checksum
  annotation, so a config change would never reach a running pod; a SHA-256 of the config is
  set as an env var to roll the pod. The collector chart adds `checksum/config` itself.

Operations:
- Upgrading: bump `versions.JAEGER`/`OTEL_COLLECTOR`, render both charts with these values and
  check the Service names and ports and the pods' `serviceAccountName` against `addresses()`
  (Linkerd refuses to export to any other identity).
- Badger and `pulumi destroy`: the claim is retained (never deleted by Pulumi), and so is the
  `tracing` namespace while Badger is on, because deleting a namespace deletes every claim in
  it. Both must be adopted before the next `pulumi up` on the same cluster (`pulumi import`,
  README "Clean up"), since the provider refuses to create an object that already exists.
- Linkerd bakes the collector address into each proxy at injection: the stack's own meshed
  workloads carry a digest of the proxy configuration in their pod templates and roll in the
  same `up` (`Mesh.proxy_config`); other meshed workloads must be restarted after turning
  tracing on or changing the address.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any, cast

import pulumi
import pulumi_kubernetes as k8s

from components import common, sizing, storage, versions, viz
from components.config import (
    INDEX_TRACE_STORAGES,
    SHARED_TRACE_STORAGES,
    TRACE_STORAGES,
    TraceStoreSettings,
    TracingSettings,
)
from components.mesh import PROXY_CONFIG_ANNOTATION, PROXY_CONFIG_ENV
from components.onboarding import (
    ANY_MESH_IDENTITY,
    VIZ_PROMETHEUS_SERVICE_ACCOUNT,
    PolicySet,
    authorization,
    empty_policy,
    merge_policies,
    policy_resources,
    proxy_admin_policy,
    published_policy,
    server,
    service_account_refs,
)

# --- Names and ports (single source for the chart values and for `addresses()`) ------------

NAMESPACE = "tracing"

# Jaeger: release and `fullnameOverride` are the same, so the Deployment, Service and
# ServiceAccount are all `jaeger` (the chart has no separate SA name).
JAEGER_RELEASE = "jaeger"
JAEGER_FULLNAME = JAEGER_RELEASE
JAEGER_SERVICE = JAEGER_FULLNAME
# The stack's own Service in front of Jaeger's OTLP gRPC receiver, where the collector exports.
# The chart's Service hard-codes `appProtocol: grpc` on 4317 (jaeger-service.yaml, no value for
# it), and Linkerd's policy controller reads any appProtocol it does not know as opaque
# (linkerd2 policy-controller/core/src/outbound.rs `AppProtocol::from_str`: only `http`,
# `kubernetes.io/h2c` and `linkerd.io/opaque|tcp` are known; grpc/src/outbound.rs `to_proto`
# sends `Unknown` down the opaque path): spans would be balanced per connection, with no
# request metrics. This Service says `kubernetes.io/h2c`, which Linkerd treats as HTTP/2.
JAEGER_OTLP_SERVICE = f"{JAEGER_FULLNAME}-otlp"
# gRPC is HTTP/2 without TLS between the app and its proxy: the appProtocol that makes
# Linkerd route, balance and count it per request.
H2C = "kubernetes.io/h2c"
# Ports of the chart's single Service (hard-coded in jaeger-service.yaml; no values for them).
JAEGER_OTLP_GRPC_PORT = 4317
JAEGER_OTLP_HTTP_PORT = 4318
JAEGER_QUERY_PORT = 16686
# The query API and UI are served under this path, not `/`: viz's dashboard proxies its trace
# links (`/jaeger/search?...`) to Jaeger keeping the prefix (linkerd2 web/srv/server.go), as
# Linkerd's own Jaeger extension served it (`--query.base-path=/jaeger`). Grafana's datasource
# and the URL users open carry it too.
JAEGER_BASE_PATH = "/jaeger"
JAEGER_QUERY_GRPC_PORT = 16685
# The chart's liveness and readiness probes GET /status on this port (hard-coded).
JAEGER_HEALTH_PORT = 13133
# RED metrics from spans (see `jaeger_userconfig`): the chart's container port and its
# Service's `span-metrics` port, both hard-coded.
SPANMETRICS_PORT = 8889
# What viz's Prometheus calls the scrape job of those metrics.
SPANMETRICS_JOB = "jaeger-spanmetrics"
JAEGER_BADGER_CLAIM = f"{JAEGER_FULLNAME}-badger"
BADGER_VOLUME = "badger-data"
BADGER_MOUNT = "/badger"
# Storage backend name inside Jaeger's config (referenced by the query and the exporter).
JAEGER_STORE = "primary_store"
# Traces the memory store keeps, per profile: it holds them in the heap, so the count must
# fit the `jaeger` memory limit in components.sizing. An emojivoto trace is ~20 spans of
# ~1 KiB, so 5,000 traces ≈ 100 MiB (about 80 minutes of one vote-bot) under a 512Mi limit.
MEMORY_MAX_TRACES = {"dev": 5_000, "prod": 100_000}

# Collector: without `fullnameOverride` the chart would name everything
# `otel-collector-opentelemetry-collector` (its fullname rule). The SA name is also set
# explicitly, because it is the mesh identity Linkerd's proxies verify.
COLLECTOR_RELEASE = "otel-collector"
COLLECTOR_FULLNAME = COLLECTOR_RELEASE
COLLECTOR_SERVICE = COLLECTOR_FULLNAME
COLLECTOR_SERVICE_ACCOUNT = COLLECTOR_FULLNAME
OTLP_GRPC_PORT = 4317
OTLP_HTTP_PORT = 4318
OPENCENSUS_PORT = 55678
# The chart's probes GET / on 13133, which the `health_check` extension serves.
COLLECTOR_HEALTH_PORT = 13133
METRICS_PORT = 8888

# Listen on every interface: meshed, the inbound proxy forwards to the pod IP, and
# `kubectl port-forward` connects to localhost; since collector v0.104 servers default to
# localhost only, which would refuse both.
ALL_INTERFACES = "0.0.0.0"

# What the k8sattributes processor reads (the chart's kubernetesAttributes preset rules).
K8S_ATTRIBUTES_RULES = [
    {"apiGroups": [""], "resources": ["pods", "namespaces"], "verbs": ["get", "watch", "list"]},
    {"apiGroups": ["apps"], "resources": ["replicasets"], "verbs": ["get", "list", "watch"]},
    {"apiGroups": ["extensions"], "resources": ["replicasets"], "verbs": ["get", "list", "watch"]},
]

# Collector releases that renamed components (CHANGELOG v0.144.0 and v0.146.0).
_OTLP_GRPC_SINCE = (0, 144, 0)
_K8S_ATTRIBUTES_SINCE = (0, 146, 0)


# --- Addresses -------------------------------------------------------------------------------


@dataclass(frozen=True)
class TracingAddresses:
    """Where spans go and who receives them; pure strings, known before anything deploys."""

    namespace: str
    otlp_grpc: str
    """`host:port` of the collector's OTLP gRPC receiver (Linkerd's collector endpoint)."""
    otlp_http: str
    """`http://host:port` of the collector's OTLP HTTP receiver."""
    opencensus: str
    """`host:port` of the OpenCensus receiver (`OC_AGENT_HOST`); only served with open_census."""
    collector_service_account: str
    """The ServiceAccount the collector pods run as: Linkerd's `meshIdentity`."""
    jaeger_query: str
    """Jaeger's query API and UI in-cluster, as a URL with its base path (Grafana's
    datasource)."""
    jaeger_query_host: str
    """The same as `host:port`, the form viz's `jaegerUrl` takes (its proxy sets the URL host)."""
    jaeger_otlp_grpc: str
    """`host:port` of Jaeger's OTLP gRPC receiver, where the collector exports."""


def addresses(cluster_domain: str) -> TracingAddresses:
    """The tracing addresses in a cluster with DNS domain `cluster_domain`. Pure."""
    collector = common.svc_host(COLLECTOR_SERVICE, NAMESPACE, cluster_domain)
    jaeger = common.svc_host(JAEGER_SERVICE, NAMESPACE, cluster_domain)
    jaeger_otlp = common.svc_host(JAEGER_OTLP_SERVICE, NAMESPACE, cluster_domain)
    return TracingAddresses(
        namespace=NAMESPACE,
        otlp_grpc=f"{collector}:{OTLP_GRPC_PORT}",
        otlp_http=f"http://{collector}:{OTLP_HTTP_PORT}",
        opencensus=f"{collector}:{OPENCENSUS_PORT}",
        collector_service_account=COLLECTOR_SERVICE_ACCOUNT,
        jaeger_query=f"http://{jaeger}:{JAEGER_QUERY_PORT}{JAEGER_BASE_PATH}",
        jaeger_query_host=f"{jaeger}:{JAEGER_QUERY_PORT}",
        jaeger_otlp_grpc=f"{jaeger_otlp}:{JAEGER_OTLP_GRPC_PORT}",
    )


def endpoints(at: TracingAddresses, open_census: bool) -> dict[str, str | None]:
    """The stack's `tracing` output: where apps send spans."""
    return {
        "otlpGrpc": at.otlp_grpc,
        "otlpHttp": at.otlp_http,
        # Empty, not None: Pulumi drops None from outputs, and the contract keeps every key.
        "openCensus": at.opencensus if open_census else "",
    }


# --- Validation ------------------------------------------------------------------------------


def check(profile: str, settings: TracingSettings) -> None:
    """Fail with a message naming the input, before any resource is registered."""
    if profile not in sizing.SIZES:
        raise ValueError(
            f"TracingArgs.profile: got {profile!r}; expected one of {sorted(sizing.SIZES)}"
        )
    if settings.storage not in TRACE_STORAGES:
        raise ValueError(
            f"TracingArgs.settings.storage: got {settings.storage!r}; expected 'memory' "
            "(lost on restart), 'badger' (on a PersistentVolumeClaim) or a shared store: "
            f"one of {SHARED_TRACE_STORAGES}"
        )
    if settings.span_ttl_hours < 1:
        raise ValueError(
            f"TracingArgs.settings.span_ttl_hours: got {settings.span_ttl_hours}; expected "
            "at least 1"
        )


# --- Policy ----------------------------------------------------------------------------------

# Pod labels of the two charts (their `selectorLabels`), what the Servers select.
COLLECTOR_PODS = {
    "app.kubernetes.io/name": "opentelemetry-collector",
    "app.kubernetes.io/instance": COLLECTOR_RELEASE,
}
JAEGER_PODS = {"app.kubernetes.io/name": "jaeger", "app.kubernetes.io/instance": JAEGER_RELEASE}
# viz's dashboard proxies its trace links to Jaeger's query port as this ServiceAccount.
VIZ_WEB_SERVICE_ACCOUNT = "web"


def policy(
    open_census: bool,
    query_clients: tuple[tuple[str, str], ...] = (),
    ingress_controller_namespace: str = "",
    public_query: bool = False,
    cluster_domain: str = "cluster.local",
    prometheus_service_account: str = VIZ_PROMETHEUS_SERVICE_ACCOUNT,
    prometheus_namespace: str = viz.NAMESPACE,
) -> PolicySet:
    """Who may call what in `tracing`, on top of its default `deny`. Pure.

    - the collector's receivers (OTLP gRPC and HTTP, OpenCensus when on): any mesh identity.
      Every meshed proxy of every namespace exports its spans there, and so do the apps of
      onboarded namespaces, so the collector cannot list its clients; it can insist they are
      meshed. Unmeshed senders are refused: a span from outside the mesh has no identity to
      attribute it to, and every namespace the stack makes or onboards is meshed;
    - Jaeger's OTLP gRPC receiver: the collector only (Jaeger's OTLP HTTP receiver and query
      gRPC port get no policy, so nobody but a port-forward reaches them);
    - Jaeger's span metrics (`SPANMETRICS_PORT`): the metrics scraper;
    - Jaeger's query API and UI: viz's dashboard (its trace links are proxied by `web`), the
      `query_clients` ((ServiceAccount, namespace): Grafana's datasource), and the way the UI
      is published (`published_policy`);
    - every proxy's admin port: the metrics scraper.
    """
    p = empty_policy()
    p["Server"] |= {
        "collector-otlp": server({"matchLabels": COLLECTOR_PODS}, "otlp", "gRPC"),
        "collector-otlp-http": server({"matchLabels": COLLECTOR_PODS}, "otlp-http", "HTTP/1"),
        # The chart's container ports are unnamed: Jaeger's by number.
        "jaeger-otlp": server({"matchLabels": JAEGER_PODS}, JAEGER_OTLP_GRPC_PORT, "gRPC"),
        "jaeger-query": server({"matchLabels": JAEGER_PODS}, JAEGER_QUERY_PORT, "HTTP/1"),
        "jaeger-spanmetrics": server({"matchLabels": JAEGER_PODS}, SPANMETRICS_PORT, "HTTP/1"),
    }
    p["MeshTLSAuthentication"] |= {
        "any-mesh-identity": dict(ANY_MESH_IDENTITY),
        "collector": service_account_refs((COLLECTOR_SERVICE_ACCOUNT, None)),
        "query-clients": service_account_refs(
            (VIZ_WEB_SERVICE_ACCOUNT, viz.NAMESPACE), *query_clients
        ),
    }
    receivers = ["collector-otlp", "collector-otlp-http"]
    if open_census:
        p["Server"]["collector-opencensus"] = server(
            {"matchLabels": COLLECTOR_PODS}, "opencensus", "gRPC"
        )
        receivers.append("collector-opencensus")
    for receiver in receivers:
        p["AuthorizationPolicy"][f"{receiver}-mesh"] = authorization(
            receiver, "MeshTLSAuthentication", "any-mesh-identity"
        )
    p["AuthorizationPolicy"] |= {
        "jaeger-otlp-collector": authorization("jaeger-otlp", "MeshTLSAuthentication", "collector"),
        "jaeger-query-clients": authorization(
            "jaeger-query", "MeshTLSAuthentication", "query-clients"
        ),
        # The metrics scraper (its MeshTLSAuthentication comes with `proxy_admin_policy`).
        "jaeger-spanmetrics-scraper": authorization(
            "jaeger-spanmetrics", "MeshTLSAuthentication", "metrics-scraper"
        ),
    }
    return merge_policies(
        p,
        published_policy(
            "jaeger-query", ingress_controller_namespace, public_query, cluster_domain
        ),
        # Every pod of the namespace is meshed, and all should be scraped.
        proxy_admin_policy({"matchLabels": {}}, prometheus_service_account, prometheus_namespace),
    )


# --- Collector values ------------------------------------------------------------------------


def _version(tag: str) -> tuple[int, ...]:
    return tuple(int(part) for part in tag.split("."))


def collector_image(open_census: bool) -> tuple[str, str, str]:
    """(repository, tag, command) of the collector image: see the module docstring."""
    if open_census:
        return versions.OTEL_COLLECTOR_OPENCENSUS_IMAGE
    return versions.OTEL_COLLECTOR_IMAGE


def collector_config(open_census: bool, cluster_domain: str) -> dict[str, Any]:
    """The collector's complete configuration (the chart's `alternateConfig`). Pure."""
    _, tag, _ = collector_image(open_census)
    otlp = "otlp_grpc" if _version(tag) >= _OTLP_GRPC_SINCE else "otlp"
    k8s_attributes = "k8s_attributes" if _version(tag) >= _K8S_ATTRIBUTES_SINCE else "k8sattributes"
    exporter = f"{otlp}/jaeger"

    receivers: dict[str, Any] = {
        "otlp": {
            "protocols": {
                "grpc": {"endpoint": f"{ALL_INTERFACES}:{OTLP_GRPC_PORT}"},
                "http": {"endpoint": f"{ALL_INTERFACES}:{OTLP_HTTP_PORT}"},
            }
        }
    }
    if open_census:
        receivers["opencensus"] = {"endpoint": f"{ALL_INTERFACES}:{OPENCENSUS_PORT}"}

    return {
        "extensions": {
            "health_check": {"endpoint": f"{ALL_INTERFACES}:{COLLECTOR_HEALTH_PORT}"},
        },
        "receivers": receivers,
        "processors": {
            # Percentages of the container's memory limit (components.sizing), checked often
            # enough to refuse data before the kernel OOM-kills the pod.
            "memory_limiter": {
                "check_interval": "1s",
                "limit_percentage": 80,
                "spike_limit_percentage": 25,
            },
            # Linkerd proxies tag spans with the pod's uid and labels, not its namespace or
            # workload; this looks those up. No `connection` association: the collector is
            # meshed, so the peer of every connection is its own proxy and would label every
            # span with the collector's own pod.
            k8s_attributes: {
                "passthrough": False,
                "pod_association": [
                    {"sources": [{"from": "resource_attribute", "name": "k8s.pod.uid"}]},
                    {"sources": [{"from": "resource_attribute", "name": "k8s.pod.ip"}]},
                ],
                # Fields every supported image (0.131 and later) knows.
                "extract": {
                    "metadata": [
                        "k8s.namespace.name",
                        "k8s.pod.name",
                        "k8s.pod.uid",
                        "k8s.pod.start_time",
                        "k8s.node.name",
                        "k8s.deployment.name",
                        "k8s.statefulset.name",
                        "k8s.daemonset.name",
                        "k8s.cronjob.name",
                        "k8s.job.name",
                    ]
                },
            },
            "batch": {},
        },
        "exporters": {
            exporter: {
                "endpoint": addresses(cluster_domain).jaeger_otlp_grpc,
                # Plaintext to the local Linkerd proxy, which carries it to Jaeger over mTLS.
                "tls": {"insecure": True},
            },
        },
        "service": {
            "extensions": ["health_check"],
            "telemetry": {
                "metrics": {
                    "readers": [
                        {
                            "pull": {
                                "exporter": {
                                    "prometheus": {"host": ALL_INTERFACES, "port": METRICS_PORT}
                                }
                            }
                        }
                    ]
                }
            },
            "pipelines": {
                "traces": {
                    "receivers": list(receivers),
                    # memory_limiter first so it refuses data before any work; batch last.
                    "processors": ["memory_limiter", k8s_attributes, "batch"],
                    "exporters": [exporter],
                }
            },
        },
    }


def _port(number: int, app_protocol: str = "") -> dict[str, Any]:
    port: dict[str, Any] = {
        "enabled": True,
        "containerPort": number,
        "servicePort": number,
        "protocol": "TCP",
    }
    if app_protocol:
        port["appProtocol"] = app_protocol
    return port


def collector_values(
    profile: str,
    open_census: bool,
    cluster_domain: str,
    proxy_config: pulumi.Input[str] | None = None,
) -> dict[str, Any]:
    """Values for the opentelemetry-collector chart. Pure: the same inputs give the same dict.

    `proxy_config` (`Mesh.proxy_config`) becomes a pod annotation: the pods roll when what
    their Linkerd proxy is injected with changes.
    """
    repository, tag, command = collector_image(open_census)
    ports: dict[str, Any] = {
        "otlp": _port(OTLP_GRPC_PORT, H2C),
        "otlp-http": _port(OTLP_HTTP_PORT),
        # The chart's default Jaeger and Zipkin ports: their receivers are not configured.
        "jaeger-compact": {"enabled": False},
        "jaeger-thrift": {"enabled": False},
        "jaeger-grpc": {"enabled": False},
        "zipkin": {"enabled": False},
    }
    if open_census:
        ports["opencensus"] = _port(OPENCENSUS_PORT, H2C)
    values: dict[str, Any] = {
        "mode": "deployment",
        "fullnameOverride": COLLECTOR_FULLNAME,
        # Stateless, so prod runs two. Linkerd balances the span streams per request across them
        # only because the gRPC ports say `kubernetes.io/h2c` (`H2C`): with `grpc`, an
        # appProtocol Linkerd does not know, it would forward each connection opaquely to one
        # replica and count no requests.
        "replicaCount": 2 if profile == "prod" else 1,
        "image": {"repository": repository, "tag": tag},
        "command": {"name": command},
        "serviceAccount": {
            "create": True,
            "name": COLLECTOR_SERVICE_ACCOUNT,
            # k8sattributes reads pods and namespaces through the API.
            "automountServiceAccountToken": True,
        },
        # The preset would inject its own k8sattributes config, with fields older images
        # reject; the processor is configured above and only its RBAC is taken here.
        "clusterRole": {"create": True, "rules": K8S_ATTRIBUTES_RULES},
        "rewriteDeprecatedComponentNames": False,
        "alternateConfig": collector_config(open_census, cluster_domain),
        "ports": ports,
        # The memory limit is what memory_limiter's percentages and GOMEMLIMIT refer to.
        "resources": sizing.k8s_resources(profile, "otel-collector"),
        # The image's own non-root user, stated so the kubelet can verify runAsNonRoot.
        "securityContext": {
            **common.restricted_container_security(),
            "runAsUser": 10001,
            "runAsGroup": 10001,
        },
    }
    if profile == "prod":
        values["podDisruptionBudget"] = {"enabled": True, "minAvailable": 1}
    if proxy_config is not None:
        values["podAnnotations"] = {PROXY_CONFIG_ANNOTATION: proxy_config}
    return values


# --- Jaeger values ---------------------------------------------------------------------------


# --- Shared stores ---------------------------------------------------------------------------

# The store's password reaches Jaeger as this env var from the stack's Secret; the config (a
# ConfigMap) only names it.
STORE_SECRET = "jaeger-store"
STORE_PASSWORD_KEY = "password"
STORE_PASSWORD_ENV = "JAEGER_STORE_PASSWORD"
INDEX_CLEANER = "jaeger-es-index-cleaner"
INDEX_CLEANER_PODS = {"app.kubernetes.io/name": INDEX_CLEANER}
# After midnight UTC, when the day's index has rolled over (daily indices, `2006-01-02`).
INDEX_CLEANER_SCHEDULE = "15 0 * * *"
CASSANDRA_PORT = 9042
# Jaeger replicas per profile on a shared store: the all-in-one pod is collector and query at
# once, and both are stateless once the spans are elsewhere.
SHARED_STORE_REPLICAS = {"dev": 1, "prod": 2}


def store_servers(settings: TracingSettings, cluster_domain: str) -> tuple[str, ...]:
    """The store's servers: the configured ones, or the in-cluster OpenSearch."""
    if settings.store.in_cluster:
        return (storage.opensearch_url(cluster_domain),)
    return settings.store.servers


def _auth(store: TraceStoreSettings) -> dict[str, Any]:
    if not store.username:
        return {}
    return {
        "auth": {
            "basic": {"username": store.username, "password": f"${{env:{STORE_PASSWORD_ENV}}}"}
        }
    }


def _index_backend(settings: TracingSettings, cluster_domain: str) -> dict[str, Any]:
    """An OpenSearch or Elasticsearch backend: daily indices under the prefix."""
    store = settings.store
    servers = store_servers(settings, cluster_domain)
    # One node cannot hold a replica of its own shards: the in-cluster store asks for none.
    shards = {"shards": 1, "replicas": 0} if store.in_cluster else {}
    indices: dict[str, Any] = {"index_prefix": store.index_prefix}
    for kind in ("spans", "services", "dependencies", "sampling"):
        indices[kind] = {"date_layout": "2006-01-02", "rollover_frequency": "day", **shards}
    return {
        "server_urls": list(servers),
        "indices": indices,
        # Reads look back as far as spans are kept.
        "max_span_age": f"{settings.span_ttl_hours}h",
        "tls": {
            "insecure": all(s.startswith("http://") for s in servers),
            "insecure_skip_verify": store.tls_skip_verify,
        },
        **_auth(store),
    }


def _cassandra_backend(settings: TracingSettings) -> dict[str, Any]:
    """A Cassandra backend: spans expire by the table's TTL, `spanTtl`."""
    store = settings.store
    hosts = [s.rsplit(":", 1)[0] if ":" in s else s for s in store.servers]
    ports = {int(s.rsplit(":", 1)[1]) for s in store.servers if ":" in s} or {CASSANDRA_PORT}
    connection: dict[str, Any] = {
        "servers": hosts,
        "port": min(ports),
        "tls": {"insecure": not store.tls, "insecure_skip_verify": store.tls_skip_verify},
        **_auth(store),
    }
    if store.local_dc:
        connection["local_dc"] = store.local_dc
    ttl = f"{settings.span_ttl_hours}h"
    return {
        "connection": connection,
        "schema": {
            "keyspace": store.keyspace,
            # Jaeger creates the keyspace and tables if missing (CREATE ... IF NOT EXISTS);
            # their TTLs are set then, and a later spanTtl needs an ALTER TABLE (README).
            "create": True,
            "trace_ttl": ttl,
            "dependencies_ttl": ttl,
        },
    }


def jaeger_userconfig(
    storage: str,
    span_ttl_hours: int,
    max_traces: int,
    settings: TracingSettings | None = None,
    cluster_domain: str = "cluster.local",
) -> dict[str, Any]:
    """Jaeger v2's complete configuration (the chart's `userconfig`). Pure.

    `storage` is `memory` (keeps `max_traces`, lost on restart), `badger` (on the volume at
    `BADGER_MOUNT`, spans expire after `span_ttl_hours`), or a shared store described by
    `settings.store`: `opensearch`/`elasticsearch` (daily indices the index cleaner deletes)
    or `cassandra` (a TTL per row).
    """
    settings = settings or TracingSettings(storage=storage, span_ttl_hours=span_ttl_hours)
    if storage in INDEX_TRACE_STORAGES:
        backend: dict[str, Any] = {storage: _index_backend(settings, cluster_domain)}
    elif storage == "cassandra":
        backend = {"cassandra": _cassandra_backend(settings)}
    elif storage == "badger":
        backend = {
            "badger": {
                "directories": {
                    "keys": f"{BADGER_MOUNT}/data/keys",
                    "values": f"{BADGER_MOUNT}/data/values",
                },
                # Badger's default is a throw-away temp directory.
                "ephemeral": False,
                "ttl": {"spans": f"{span_ttl_hours}h"},
            }
        }
    else:
        backend = {"memory": {"max_traces": max_traces}}
    return {
        "service": {
            # healthcheckv2 serves the chart's hard-coded probes.
            "extensions": ["jaeger_storage", "jaeger_query", "healthcheckv2"],
            "pipelines": {
                "traces": {
                    "receivers": ["otlp"],
                    "processors": ["batch"],
                    "exporters": ["jaeger_storage_exporter", "spanmetrics"],
                },
                "metrics/spanmetrics": {"receivers": ["spanmetrics"], "exporters": ["prometheus"]},
            },
            "telemetry": {
                "resource": {"service.name": "jaeger"},
                "metrics": {
                    "level": "detailed",
                    "readers": [
                        {
                            "pull": {
                                "exporter": {
                                    "prometheus": {"host": ALL_INTERFACES, "port": METRICS_PORT}
                                }
                            }
                        }
                    ],
                },
                "logs": {"level": "info"},
            },
        },
        "extensions": {
            # The default endpoint is localhost, which the kubelet's probes cannot reach.
            "healthcheckv2": {
                "use_v2": True,
                "http": {"endpoint": f"{ALL_INTERFACES}:{JAEGER_HEALTH_PORT}"},
            },
            "jaeger_query": {
                "base_path": JAEGER_BASE_PATH,
                "storage": {"traces": JAEGER_STORE},
                "http": {"endpoint": f"{ALL_INTERFACES}:{JAEGER_QUERY_PORT}"},
                "grpc": {"endpoint": f"{ALL_INTERFACES}:{JAEGER_QUERY_GRPC_PORT}"},
            },
            "jaeger_storage": {"backends": {JAEGER_STORE: backend}},
        },
        "receivers": {
            # Only the collector sends here, over OTLP gRPC; HTTP is kept for manual tests.
            "otlp": {
                "protocols": {
                    "grpc": {"endpoint": f"{ALL_INTERFACES}:{JAEGER_OTLP_GRPC_PORT}"},
                    "http": {"endpoint": f"{ALL_INTERFACES}:{JAEGER_OTLP_HTTP_PORT}"},
                }
            }
        },
        "processors": {"batch": {}},
        # RED metrics (calls, errors, duration) per service and span from every span stored,
        # app spans as well as proxy spans. Computed here, not in the collector: the Jaeger
        # 2.19 binary ships the spanmetrics connector and the Prometheus exporter, while the
        # collector's Kubernetes distribution (0.158.0) has no Prometheus exporter (its
        # manifest.yaml), so this one path serves both collector images.
        "connectors": {
            "spanmetrics": {
                # Pinned: a feature gate of newer connectors makes seconds the default.
                "histogram": {"unit": "ms"},
                # Trace ids on the histogram's samples: a latency panel links to the trace.
                "exemplars": {"enabled": True},
                "metrics_flush_interval": "15s",
            }
        },
        "exporters": {
            "jaeger_storage_exporter": {"trace_storage": JAEGER_STORE},
            # Exemplars leave the exporter in the OpenMetrics format only.
            "prometheus": {
                "endpoint": f"{ALL_INTERFACES}:{SPANMETRICS_PORT}",
                "enable_open_metrics": True,
            },
        },
    }


def spanmetrics_scrape_config() -> dict[str, Any]:
    """The scrape job viz's Prometheus (`prometheus.scrapeConfigs`) adds for Jaeger's span
    metrics: the Jaeger pods' `SPANMETRICS_PORT`, found through the pods (the only objects
    viz's Prometheus may list). Pure."""
    return {
        "job_name": SPANMETRICS_JOB,
        "scrape_interval": "15s",
        "kubernetes_sd_configs": [{"role": "pod", "namespaces": {"names": [NAMESPACE]}}],
        "relabel_configs": [
            {
                "source_labels": [
                    "__meta_kubernetes_pod_label_app_kubernetes_io_name",
                    "__meta_kubernetes_pod_label_app_kubernetes_io_instance",
                    "__meta_kubernetes_pod_container_port_number",
                ],
                "regex": f"{JAEGER_PODS['app.kubernetes.io/name']};{JAEGER_RELEASE};"
                f"{SPANMETRICS_PORT}",
                "action": "keep",
            }
        ],
    }


def config_hash(config: dict[str, Any]) -> str:
    """A SHA-256 of a config dict, stable across runs (keys sorted, no timestamps)."""
    canonical = json.dumps(config, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def jaeger_values(
    profile: str,
    settings: TracingSettings,
    proxy_config: pulumi.Input[str] | None = None,
    cluster_domain: str = "cluster.local",
) -> dict[str, Any]:
    """Values for the jaeger chart (v2, all-in-one). Pure: the same inputs give the same dict.

    `proxy_config` (`Mesh.proxy_config`) rolls the pod when what its Linkerd proxy is injected
    with changes. `cluster_domain` names the in-cluster OpenSearch, when that is the store.
    """
    userconfig = jaeger_userconfig(
        settings.storage,
        settings.span_ttl_hours,
        MEMORY_MAX_TRACES[profile],
        settings,
        cluster_domain,
    )
    repository, tag = versions.JAEGER_IMAGE.rsplit(":", 1)
    jaeger: dict[str, Any] = {
        # Memory and Badger are single-process stores; the chart's default Recreate strategy
        # also frees Badger's directory lock before the next pod starts.
        "replicas": 1,
        "image": {"repository": repository, "tag": tag},
        "resources": sizing.k8s_resources(profile, "jaeger"),
        # The pod keeps the chart's podSecurityContext (uid/gid/fsGroup 10001), and fsGroup
        # makes a fresh volume writable; Badger writes only under its mount.
        "securityContext": common.restricted_container_security(),
        # Jaeger never calls the Kubernetes API; Linkerd's identity uses its own projected
        # token, not this one.
        "serviceAccount": {"automountServiceAccountToken": False},
        # userconfig is mounted with subPath, so an edit would never reach a running pod;
        # a new hash changes the pod template and rolls it.
        "extraEnv": [{"name": "MESHSTACK_USERCONFIG_SHA256", "value": config_hash(userconfig)}],
    }
    if proxy_config is not None:
        # The all-in-one Deployment takes no pod annotations (jaeger-deploy.yaml hard-codes
        # them), and a 64-character digest is too long for a label value: an env var it is.
        jaeger["extraEnv"].append({"name": PROXY_CONFIG_ENV, "value": proxy_config})
    if settings.storage == "badger":
        jaeger["extraVolumes"] = [
            {"name": BADGER_VOLUME, "persistentVolumeClaim": {"claimName": JAEGER_BADGER_CLAIM}}
        ]
        jaeger["extraVolumeMounts"] = [{"name": BADGER_VOLUME, "mountPath": BADGER_MOUNT}]
    if settings.storage in SHARED_TRACE_STORAGES:
        # Spans live in the store, so collector and query scale out; a rolling update keeps
        # one of them answering while the next starts.
        jaeger["replicas"] = SHARED_STORE_REPLICAS[profile]
        jaeger["strategy"] = {
            "type": "RollingUpdate",
            "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1},
        }
        if settings.store.username:
            jaeger["extraEnv"].append(
                {
                    "name": STORE_PASSWORD_ENV,
                    "valueFrom": {
                        "secretKeyRef": {"name": STORE_SECRET, "key": STORE_PASSWORD_KEY}
                    },
                }
            )
    return {"fullnameOverride": JAEGER_FULLNAME, "jaeger": jaeger, "userconfig": userconfig}


def jaeger_otlp_service_spec() -> dict[str, Any]:
    """The spec of `JAEGER_OTLP_SERVICE`: Jaeger's OTLP gRPC port, marked `H2C`. Pure."""
    return {
        "type": "ClusterIP",
        "selector": {**JAEGER_PODS, "app.kubernetes.io/component": "all-in-one"},
        "ports": [
            {
                "name": "otlp-grpc",
                "port": JAEGER_OTLP_GRPC_PORT,
                "targetPort": JAEGER_OTLP_GRPC_PORT,
                "protocol": "TCP",
                "appProtocol": H2C,
            }
        ],
    }


def index_cleaner_spec(
    profile: str,
    settings: TracingSettings,
    cluster_domain: str,
    proxy_config: pulumi.Input[str] | None = None,
) -> dict[str, Any]:
    """The spec of the CronJob that deletes span indices older than `spanTtl`. Pure.

    OpenSearch and Elasticsearch keep spans until their daily index is deleted; this is
    Jaeger's own cleaner, run nightly with the prefix and credentials Jaeger writes with.
    """
    store = settings.store
    (server, *_) = store_servers(settings, cluster_domain)
    env: list[dict[str, Any]] = [{"name": "INDEX_PREFIX", "value": store.index_prefix}]
    if server.startswith("https://"):
        env.append({"name": "ES_TLS_ENABLED", "value": "true"})
        if store.tls_skip_verify:
            env.append({"name": "ES_TLS_SKIP_HOST_VERIFY", "value": "true"})
    if store.username:
        env += [
            {"name": "ES_USERNAME", "value": store.username},
            {
                "name": "ES_PASSWORD",
                "valueFrom": {"secretKeyRef": {"name": STORE_SECRET, "key": STORE_PASSWORD_KEY}},
            },
        ]
    days = settings.span_ttl_hours // 24
    annotations: dict[str, Any] = {
        # Meshed like the rest of the namespace; as a native sidecar the proxy stops when the
        # cleaner exits, so the Job completes.
        "config.alpha.linkerd.io/proxy-enable-native-sidecar": "true"
    }
    if proxy_config is not None:
        # The next run's pod gets what proxies are injected with now, like every meshed pod.
        annotations[PROXY_CONFIG_ANNOTATION] = proxy_config
    pod = {
        "metadata": {
            "labels": dict(INDEX_CLEANER_PODS),
            "annotations": annotations,
        },
        "spec": {
            "restartPolicy": "OnFailure",
            "automountServiceAccountToken": False,
            "securityContext": {
                "runAsNonRoot": True,
                "runAsUser": 10001,
                "runAsGroup": 10001,
                "seccompProfile": {"type": "RuntimeDefault"},
            },
            "containers": [
                {
                    "name": "index-cleaner",
                    "image": versions.JAEGER_ES_INDEX_CLEANER_IMAGE,
                    "args": [str(days), server],
                    "env": env,
                    "resources": sizing.k8s_resources(profile, "es-index-cleaner"),
                    "securityContext": common.restricted_container_security(),
                }
            ],
        },
    }
    return {
        "schedule": INDEX_CLEANER_SCHEDULE,
        "concurrencyPolicy": "Forbid",
        "successfulJobsHistoryLimit": 1,
        "failedJobsHistoryLimit": 3,
        "jobTemplate": {"spec": {"backoffLimit": 3, "template": pod}},
    }


# --- Component -------------------------------------------------------------------------------


@dataclass
class TracingArgs:
    profile: str
    """`dev` or `prod`: container sizes (components.sizing), the memory store's trace count,
    and in prod two collector replicas with a PodDisruptionBudget."""
    control_plane: pulumi.Resource
    """The Linkerd control-plane chart. The namespace waits for it: its pods are injected at
    creation, and the proxy injector fails open in dev, so earlier pods would run unmeshed and
    Linkerd's proxies could not export to them."""
    settings: TracingSettings = field(default_factory=TracingSettings)
    """Default: memory storage and the OpenCensus receiver on (what the emojivoto demo needs).
    `storage: badger` keeps spans on a retained PersistentVolumeClaim of `storage_size` and
    `storage_class` for `span_ttl_hours`. Badger's memtables and block cache count against the
    `jaeger` memory limit in components.sizing; check it under real load."""
    cluster_domain: str = "cluster.local"
    """Default: cluster.local. The addresses handed to Linkerd and the apps are names in it."""
    viz_chart: pulumi.Resource | None = None
    """The linkerd-viz chart: the namespace waits for it too, so the pods start after viz's
    tap-injector and can be tapped. Default: none, no wait (and no tap until restarted)."""
    proxy_config: pulumi.Input[str] | None = None
    """A digest of what proxies are injected with (`Mesh.proxy_config`): set on both pod
    templates, so a change rolls them in the same `up`. Default: none."""
    cni: bool = False
    """The Linkerd CNI plugin is on (`MeshArgs.cni`): no pod here needs `linkerd-init`, so the
    namespace enforces PSA `restricted`. Default: false, `privileged` enforced and `restricted`
    warned and audited."""
    query_clients: tuple[tuple[str, str], ...] = ()
    """(ServiceAccount, namespace) of meshed clients of Jaeger's query API besides viz's
    dashboard, e.g. Grafana. Default: none."""
    ingress_controller_namespace: str = ""
    """Namespace of the meshed ingress controller that publishes Jaeger's UI. Default: none."""
    public_query: bool = False
    """Jaeger's UI is published by a NodePort or LoadBalancer Service: any network may call it.
    Default: false."""
    prometheus_service_account: str = VIZ_PROMETHEUS_SERVICE_ACCOUNT
    """Identity allowed to scrape the proxies. Default: viz's bundled Prometheus."""
    prometheus_namespace: str = viz.NAMESPACE
    """Namespace of `prometheus_service_account`. Default: linkerd-viz."""


class Tracing(pulumi.ComponentResource):
    """An OpenTelemetry collector and Jaeger v2 in the meshed `tracing` namespace.

    Children: `<name>-namespace` (Linkerd-injected, default `deny`, Pod Security `privileged`
    for proxy-init), the Linkerd policy of `policy()`, `<name>-badger` (the
    PersistentVolumeClaim, only with `storage: badger`), `<name>-jaeger` and `<name>-collector`
    (the two charts, releases `jaeger` and `otel-collector`), `<name>-jaeger-otlp` (the
    `jaeger-otlp` Service the collector exports to, marked `kubernetes.io/h2c`).
    On a shared store: `<name>-store`
    (the password Secret, with a username), `<name>-index-cleaner` (the CronJob, OpenSearch and
    Elasticsearch), and with `store.in_cluster` the `tracing-store` namespace, its NetworkPolicy
    and the `opensearch` chart (components/storage.py).

    Outputs: `namespace`; `endpoints` ({otlpGrpc, otlpHttp, openCensus or None});
    `query_url` (Jaeger's in-cluster query URL). Attributes `jaeger` and `collector` are the
    chart resources, for anything that must wait for them.
    """

    namespace: pulumi.Output[str]
    endpoints: pulumi.Output[dict[str, str | None]]
    query_url: pulumi.Output[str]
    jaeger: k8s.helm.v4.Chart
    collector: k8s.helm.v4.Chart

    def __init__(
        self, name: str, args: TracingArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("meshstack:tracing:Tracing", name, None, opts)
        check(args.profile, args.settings)
        at = addresses(args.cluster_domain)

        # Meshed: Linkerd proxies only export spans to a collector inside the mesh. Default
        # deny: only the clients `policy()` names reach the collector and Jaeger.
        ns = common.meshed_namespace(
            NAMESPACE,
            f"{name}-namespace",
            self,
            args.control_plane,
            default_deny=True,
            # The Badger claim is kept on destroy, and it only survives if its namespace does.
            retain_on_delete=args.settings.storage == "badger",
            extensions=[args.viz_chart] if args.viz_chart is not None else [],
            cni=args.cni,
        )

        # First: pods come up into a namespace whose rules already exist, so the first spans
        # are not refused while the policy is created.
        policies: list[pulumi.Resource] = list(
            policy_resources(
                name,
                ns.metadata.name,
                policy(
                    args.settings.open_census,
                    args.query_clients,
                    args.ingress_controller_namespace,
                    args.public_query,
                    args.cluster_domain,
                    args.prometheus_service_account,
                    args.prometheus_namespace,
                ),
                self,
                labels=common.MANAGED_BY,
            )
        )
        jaeger_deps: list[pulumi.Resource] = list(policies)
        self.badger_claim: k8s.core.v1.PersistentVolumeClaim | None = None
        if args.settings.storage == "badger":
            self.badger_claim = k8s.core.v1.PersistentVolumeClaim(
                f"{name}-badger",
                metadata=k8s.meta.v1.ObjectMetaArgs(
                    name=JAEGER_BADGER_CLAIM,
                    namespace=ns.metadata.name,
                    labels=common.MANAGED_BY,
                    # Created first but not waited for: a claim binds when its pod schedules
                    # (WaitForFirstConsumer), so waiting would only add a readiness stage.
                    annotations={"pulumi.com/skipAwait": "true"},
                ),
                spec=k8s.core.v1.PersistentVolumeClaimSpecArgs(
                    access_modes=["ReadWriteOnce"],
                    storage_class_name=args.settings.storage_class or None,
                    resources=k8s.core.v1.VolumeResourceRequirementsArgs(
                        requests={"storage": args.settings.storage_size}
                    ),
                ),
                opts=pulumi.ResourceOptions(
                    parent=self,
                    # Stored traces outlive the stack: `pulumi destroy`, or a change that would
                    # replace the claim, leaves it (and its volume) in place instead of
                    # deleting them; a replacement then fails on the existing name rather than
                    # silently starting empty. Deleting the namespace still deletes the claim,
                    # so a full teardown that must keep traces needs the namespace kept too.
                    retain_on_delete=True,
                ),
            )
            # The Deployment mounts the claim by name, so the claim is created first.
            jaeger_deps.append(self.badger_claim)

        if args.settings.storage in SHARED_TRACE_STORAGES:
            jaeger_deps += self._shared_store(name, args, ns)

        self.jaeger = common.chart(
            f"{name}-jaeger",
            versions.JAEGER,
            JAEGER_RELEASE,
            ns.metadata.name,
            jaeger_values(args.profile, args.settings, args.proxy_config, args.cluster_domain),
            self,
            depends_on=jaeger_deps,
        )
        # Where the collector exports: see JAEGER_OTLP_SERVICE.
        k8s.core.v1.Service(
            f"{name}-jaeger-otlp",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=JAEGER_OTLP_SERVICE, namespace=ns.metadata.name, labels=common.MANAGED_BY
            ),
            spec=cast(Any, jaeger_otlp_service_spec()),
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.collector = common.chart(
            f"{name}-collector",
            versions.OTEL_COLLECTOR,
            COLLECTOR_RELEASE,
            ns.metadata.name,
            collector_values(
                args.profile, args.settings.open_census, args.cluster_domain, args.proxy_config
            ),
            self,
            # The policy first, as for Jaeger.
            depends_on=policies,
        )

        self.namespace = ns.metadata.name
        self.endpoints = pulumi.Output.from_input(endpoints(at, args.settings.open_census))
        self.query_url = pulumi.Output.from_input(at.jaeger_query)
        self.register_outputs(
            {"namespace": self.namespace, "endpoints": self.endpoints, "query_url": self.query_url}
        )

    def _shared_store(
        self, name: str, args: TracingArgs, ns: k8s.core.v1.Namespace
    ) -> list[pulumi.Resource]:
        """The store's password Secret, the index cleaner and the in-cluster OpenSearch, as
        the settings ask: what Jaeger's chart waits for."""
        settings = args.settings
        deps: list[pulumi.Resource] = []
        if settings.store.username:
            deps.append(
                k8s.core.v1.Secret(
                    f"{name}-store",
                    metadata=k8s.meta.v1.ObjectMetaArgs(
                        name=STORE_SECRET, namespace=ns.metadata.name, labels=common.MANAGED_BY
                    ),
                    type="Opaque",
                    string_data={
                        STORE_PASSWORD_KEY: pulumi.Output.secret(settings.store.password.value)
                    },
                    opts=pulumi.ResourceOptions(parent=self),
                )
            )
        if settings.store.in_cluster:
            deps.append(self._opensearch(name, args))
        if settings.storage in INDEX_TRACE_STORAGES:
            k8s.batch.v1.CronJob(
                f"{name}-index-cleaner",
                metadata=k8s.meta.v1.ObjectMetaArgs(
                    name=INDEX_CLEANER, namespace=ns.metadata.name, labels=common.MANAGED_BY
                ),
                spec=cast(
                    k8s.batch.v1.CronJobSpecArgsDict,
                    index_cleaner_spec(
                        args.profile, settings, args.cluster_domain, args.proxy_config
                    ),
                ),
                # Reads the password Secret when it runs, not before.
                opts=pulumi.ResourceOptions(parent=self, depends_on=deps),
            )
        return deps

    def _opensearch(self, name: str, args: TracingArgs) -> pulumi.Resource:
        """A single-node OpenSearch in its own unmeshed namespace, locked by a NetworkPolicy
        (components/storage.py)."""
        store_ns = common.namespace(
            storage.OPENSEARCH_NAMESPACE,
            f"{name}-store-namespace",
            self,
            labels=common.PSA_RESTRICTED,
        )
        netpol = k8s.networking.v1.NetworkPolicy(
            f"{name}-opensearch-ingress",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=storage.OPENSEARCH_NETWORK_POLICY,
                namespace=store_ns.metadata.name,
                labels=common.MANAGED_BY,
            ),
            spec=cast(
                k8s.networking.v1.NetworkPolicySpecArgsDict,
                storage.opensearch_network_policy(
                    ((NAMESPACE, JAEGER_PODS), (NAMESPACE, INDEX_CLEANER_PODS))
                ),
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )
        return common.chart(
            f"{name}-opensearch",
            versions.OPENSEARCH,
            storage.OPENSEARCH_RELEASE,
            store_ns.metadata.name,
            storage.opensearch_values(
                args.profile, args.settings.storage_size, args.settings.storage_class
            ),
            self,
            depends_on=[netpol],
        )
