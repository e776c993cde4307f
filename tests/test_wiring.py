"""Wiring: every value one component hands another arrives where it must, in what the pinned
charts really render.

The graph tests check the values the program writes; these follow each of them to its
destination in the rendered objects: an address to the Service, its target port, the container
port of the pods it selects, and the listener the workload's own mounted configuration opens on
that port (the collector's OpenCensus receiver, Jaeger's OTLP receiver, Loki's HTTP API, ...);
an identity to the ServiceAccount the pods really run as; a webhook's caBundle to the
certificate its Service's container really serves; a policy reference to the Server and the
pods it selects. Each stack file runs, plus variants for the paths the stack files do not take
(a non-default cluster domain with ingress, NodePorts, an external Prometheus).

Runs where the pinned charts are at hand (`MESHSTACK_CHARTS_DIR`, as the chart contract suite:
tests/charts.py); skipped with the reason elsewhere.
"""

from __future__ import annotations

import base64
import configparser
import json
import re
import urllib.parse
from dataclasses import dataclass
from typing import Any

import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import NameOID

from bench.footprint import memory_bytes
from components import config as cfg
from components import logging as logs
from components import mesh
from policy import rules
from tests.charts import (
    VARIANTS,
    Stack,
    program_objects,
    services,
    stack,
    suite_marks,
    type_token,
)
from tests.graph import strings

pytestmark = suite_marks()

# The port Linkerd injects into every meshed pod for its proxy's admin server (metrics, probes):
# not in the rendered pod spec, which the proxy injector changes at admission.
PROXY_ADMIN_PORTS = {"linkerd-admin", 4191}
ALL_NETWORKS = {"0.0.0.0/0", "::/0"}


@pytest.fixture(params=sorted(VARIANTS))
def s(request: pytest.FixtureRequest) -> Stack:
    result = stack(request.param)
    problems = [f"{r}: {c.error}" for r, c in result.charts.items() if c.error]
    if problems:
        pytest.fail("\n".join(problems), pytrace=False)
    return result


# --- The cluster as rendered -----------------------------------------------------------------


def objects(s: Stack) -> list[dict[str, Any]]:
    """Every object a `pulumi up` of this stack creates: the charts' and the program's own."""
    out = [o for _, o in s.objects()]
    for r in program_objects(s.graph):
        obj = dict(r.inputs)
        obj.setdefault("kind", r.type.rpartition(":")[2])
        out.append(obj)
    return out


def ns_of(obj: dict[str, Any]) -> str:
    return str((obj.get("metadata") or {}).get("namespace") or "default")


def of_kind(s: Stack, kind: str, namespace: str | None = None) -> list[dict[str, Any]]:
    return [
        o
        for o in objects(s)
        if o.get("kind") == kind and (namespace is None or ns_of(o) == namespace)
    ]


def one(s: Stack, kind: str, namespace: str, name: str) -> dict[str, Any]:
    found = [o for o in of_kind(s, kind, namespace) if o["metadata"]["name"] == name]
    assert len(found) == 1, f"expected one {kind} {namespace}/{name}, found {len(found)}"
    return found[0]


@dataclass
class Workload:
    obj: dict[str, Any]
    pod: dict[str, Any]
    """The pod template (metadata and spec)."""

    @property
    def name(self) -> str:
        return f"{self.obj['kind']} {ns_of(self.obj)}/{self.obj['metadata']['name']}"

    @property
    def namespace(self) -> str:
        return ns_of(self.obj)

    @property
    def labels(self) -> dict[str, str]:
        return dict((self.pod.get("metadata") or {}).get("labels") or {})

    @property
    def spec(self) -> dict[str, Any]:
        return dict(self.pod.get("spec") or {})

    @property
    def service_account(self) -> str:
        return str(self.spec.get("serviceAccountName") or "default")

    def containers(self) -> list[dict[str, Any]]:
        return list(self.spec.get("containers") or [])


def workloads(s: Stack) -> list[Workload]:
    out = []
    for obj in objects(s):
        pod = rules.pod_template(type_token(obj), obj) if obj.get("apiVersion") else None
        if pod is not None:
            out.append(Workload(obj, dict(pod)))
    return out


def selected(s: Stack, namespace: str, selector: dict[str, str]) -> list[Workload]:
    """The workloads a Service selector picks (an empty selector picks none: no Endpoints)."""
    return [
        w
        for w in workloads(s)
        if w.namespace == namespace and selector and selector.items() <= w.labels.items()
    ]


def label_selector_matches(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    """A metav1.LabelSelector (matchLabels and matchExpressions) against pod labels."""
    if not (selector.get("matchLabels") or {}).items() <= labels.items():
        return False
    for e in selector.get("matchExpressions") or []:
        key, op, values = e["key"], e["operator"], set(e.get("values") or [])
        if op == "In" and labels.get(key) not in values:
            return False
        if op == "NotIn" and labels.get(key) in values:
            return False
        if op == "Exists" and key not in labels:
            return False
        if op == "DoesNotExist" and key in labels:
            return False
    return True


def pod_selected(s: Stack, namespace: str, selector: dict[str, Any]) -> list[Workload]:
    """The workloads a policy podSelector picks (an empty selector picks every pod)."""
    return [
        w
        for w in workloads(s)
        if w.namespace == namespace and label_selector_matches(selector, w.labels)
    ]


@dataclass
class Arrival:
    """Where a connection to `<service>.<namespace>:<port>` ends up."""

    workload: Workload
    container: dict[str, Any]
    port: int


def resolve(s: Stack, service: str, namespace: str, port: int) -> list[Arrival]:
    """Service → its port → targetPort → the container port of every pod it selects."""
    svc = services(s).get((namespace, service))
    assert svc is not None, f"{service}.{namespace}: no such Service"
    ports = [p for p in svc["spec"].get("ports") or [] if p.get("port") == port]
    assert ports, f"{service}.{namespace}:{port}: the Service exposes no such port"
    target = ports[0].get("targetPort", port)
    out = []
    for w in selected(s, namespace, svc["spec"].get("selector") or {}):
        for c in w.containers():
            for cp in c.get("ports") or []:
                if target in (cp.get("name"), cp.get("containerPort")):
                    out.append(Arrival(w, c, int(cp["containerPort"])))
    assert out, f"{service}.{namespace}:{port} (targetPort {target}) reaches no container port"
    return out


HOST_PORT = re.compile(
    r"^(?P<svc>[a-z0-9-]+)\.(?P<ns>[a-z0-9-]+)\.svc(?:\.(?P<domain>[a-z0-9.-]+))?:(?P<port>\d+)$"
)


def arrive(s: Stack, address: str) -> list[Arrival]:
    """`[scheme://]svc.ns.svc[.domain]:port[/path]` → where it arrives. The domain must be the
    stack's cluster domain: a name in another domain does not resolve in this cluster."""
    parsed = urllib.parse.urlsplit(address if "://" in address else f"tcp://{address}")
    hostport = parsed.netloc or address
    if ":" not in hostport:
        hostport += ":" + str({"http": 80, "https": 443}[parsed.scheme])
    m = HOST_PORT.match(hostport)
    assert m, f"{address}: not an in-cluster Service address"
    domain = s.graph.config.get("clusterDomain", "cluster.local")
    assert m["domain"] in (None, domain), f"{address}: not in the cluster domain {domain}"
    return resolve(s, m["svc"], m["ns"], int(m["port"]))


# --- What listens on a container port --------------------------------------------------------


def mounted_config(s: Stack, w: Workload, container: dict[str, Any], key: str) -> str | None:
    """The text of ConfigMap key `key` as `container` mounts it (a whole ConfigMap, or an item
    of it, or a subPath), or None."""
    volumes = {v["name"]: v for v in w.spec.get("volumes") or []}
    for mount in container.get("volumeMounts") or []:
        source = (volumes.get(mount["name"]) or {}).get("configMap")
        if not source:
            continue
        items = {i["key"] for i in source.get("items") or []}
        if items and key not in items:
            continue
        if mount.get("subPath") not in (None, key):
            continue
        for cm in of_kind(s, "ConfigMap", w.namespace):
            if cm["metadata"]["name"] == source["name"] and key in (cm.get("data") or {}):
                return str(cm["data"][key])
    return None


def _port(endpoint: str) -> int:
    return int(endpoint.rpartition(":")[2])


def listeners(s: Stack, a: Arrival) -> dict[int, str]:
    """Container port → what the workload's own configuration serves there."""
    c, w = a.container, a.workload
    args = " ".join([*(c.get("command") or []), *(c.get("args") or [])])
    out: dict[int, str] = {}
    if "--config=/conf/relay.yaml" in args:  # the OpenTelemetry collector
        config = yaml.safe_load(mounted_config(s, w, c, "relay") or "{}")
        for name, receiver in (config.get("receivers") or {}).items():
            kind = name.split("/")[0]
            if "endpoint" in (receiver or {}):
                out[_port(receiver["endpoint"])] = kind
            for protocol, server in ((receiver or {}).get("protocols") or {}).items():
                out[_port(server["endpoint"])] = f"{kind}/{protocol}"
    elif "/etc/jaeger/user-config.yaml" in args:  # Jaeger v2
        config = yaml.safe_load(mounted_config(s, w, c, "user-config.yaml") or "{}")
        for protocol, server in config["receivers"]["otlp"]["protocols"].items():
            out[_port(server["endpoint"])] = f"otlp/{protocol}"
        query = config["extensions"]["jaeger_query"]
        for protocol in ("http", "grpc"):
            if protocol in query:
                out[_port(query[protocol]["endpoint"])] = f"jaeger_query/{protocol}"
    elif "-config.file=/etc/loki/config/config.yaml" in args:  # Loki
        config = yaml.safe_load(mounted_config(s, w, c, "config.yaml") or "{}")
        out[int(config["server"]["http_listen_port"])] = "loki/http"
    elif "/usr/bin/weed" in args and re.search(r"^\s*server\b", args, re.M):  # SeaweedFS
        for flag, what in (("s3.port", "s3"), ("master.port", "master"), ("filer.port", "filer")):
            listen = re.search(rf"-{re.escape(flag)}=(\d+)", args)
            if listen:
                out[int(listen[1])] = f"seaweedfs/{what}"
    elif c.get("name") == "opensearch":
        env = {e["name"]: e.get("value") for e in c.get("env") or []}
        out[int(env.get("http.port") or 9200)] = "opensearch/http"
    elif c.get("name") == "prometheus" and "--config.file=/etc/prometheus/prometheus.yml" in args:
        listen = re.search(r"--web\.listen-address=\S*:(\d+)", args)
        out[int(listen[1]) if listen else 9090] = "prometheus/http"
    elif "--htpasswd-file" in args or "--provider=oidc" in args:  # oauth2-proxy
        listen = re.search(r"--http-address=\S*:(\d+)", args)
        out[int(listen[1]) if listen else 4180] = "oauth2-proxy/http"
    elif c.get("name") == "grafana":
        ini = mounted_config(s, w, c, "grafana.ini") or ""
        port = re.search(r"^http_port\s*=\s*(\d+)", ini, re.MULTILINE)
        out[int(port[1]) if port else 3000] = "grafana/http"
    return out


def served(s: Stack, address: str) -> set[str]:
    """What answers at `address`, across every pod its Service selects."""
    return {listeners(s, a).get(a.port, f"nothing on {a.port}") for a in arrive(s, address)}


def program_env(s: Stack, name: str) -> list[tuple[str, str]]:
    """(workload, value) of every env var `name` the program's own workloads set."""
    out = []
    for w in workloads(s):
        for c in w.containers():
            for e in c.get("env") or []:
                if e.get("name") == name and "value" in e:
                    out.append((w.name, str(e["value"])))
    return out


def rendered_arg(s: Stack, namespace: str, deployment: str, flag: str) -> str | None:
    d = one(s, "Deployment", namespace, deployment)
    for c in d["spec"]["template"]["spec"]["containers"]:
        for arg in c.get("args") or []:
            if arg.startswith(f"{flag}="):
                return str(arg.split("=", 1)[1])
    return None


def linkerd_values(s: Stack) -> dict[str, Any]:
    """The control plane's values as the proxy injector reads them (ConfigMap linkerd-config)."""
    cm = one(s, "ConfigMap", "linkerd", "linkerd-config")
    values: dict[str, Any] = yaml.safe_load(cm["data"]["values"])
    return values


def datasources(s: Stack) -> dict[str, dict[str, Any]]:
    """Grafana's provisioned datasources by type, as the pod mounts them: the first of each type,
    this cluster's (linked clusters' Prometheus follow it, tests/test_multicluster.py)."""
    (w,) = [w for w in workloads(s) if w.obj["metadata"]["name"] == "grafana"]
    (c,) = [c for c in w.containers() if c["name"] == "grafana"]
    text = mounted_config(s, w, c, "datasources.yaml")
    assert text, "Grafana mounts no datasources.yaml"
    out: dict[str, dict[str, Any]] = {}
    for d in yaml.safe_load(text)["datasources"]:
        out.setdefault(d["type"], d)
    return out


# --- Spans -----------------------------------------------------------------------------------


def test_the_apps_opencensus_spans_arrive_at_the_collectors_opencensus_receiver(s: Stack) -> None:
    found = program_env(s, "OC_AGENT_HOST")
    for cm in of_kind(s, "ConfigMap"):
        if "OC_AGENT_HOST" in (cm.get("data") or {}):
            found.append(
                (f"ConfigMap {ns_of(cm)}/{cm['metadata']['name']}", cm["data"]["OC_AGENT_HOST"])
            )
    if not s.graph.config["tracing"].get("openCensus", True) or not s.graph.config.get(
        "enableTracing", True
    ):
        assert not found, f"OpenCensus is off, yet these are told an agent address: {found}"
        return
    assert found
    for where, address in found:
        assert served(s, address) == {"opencensus"}, f"{where}: OC_AGENT_HOST={address}"


def test_linkerd_proxies_export_to_the_collectors_otlp_grpc_receiver_as_the_identity_it_runs_as(
    s: Stack,
) -> None:
    tracing = linkerd_values(s)["proxy"]["tracing"]
    assert tracing["enabled"] is True
    collector = tracing["collector"]
    arrivals = arrive(s, collector["endpoint"])
    assert {listeners(s, a).get(a.port) for a in arrivals} == {"otlp/grpc"}, collector
    identity = collector["meshIdentity"]
    runs_as = {(a.workload.namespace, a.workload.service_account) for a in arrivals}
    assert runs_as == {(identity["namespace"], identity["serviceAccountName"])}, (
        f"Linkerd verifies the collector as {identity}, its pods run as {runs_as}"
    )


def test_the_collector_exports_to_jaegers_otlp_grpc_receiver(s: Stack) -> None:
    (w,) = [w for w in workloads(s) if w.obj["metadata"]["name"] == "otel-collector"]
    config = yaml.safe_load(mounted_config(s, w, w.containers()[0], "relay") or "{}")
    pipeline = config["service"]["pipelines"]["traces"]
    for name in pipeline["exporters"]:
        assert name.split("/")[0] in ("otlp", "otlp_grpc"), name
        assert served(s, config["exporters"][name]["endpoint"]) == {"otlp/grpc"}, name
    # Every receiver the pipeline reads is one the collector's Service publishes.
    published = {
        listeners(s, a).get(a.port)
        for p in services(s)[("tracing", "otel-collector")]["spec"]["ports"]
        for a in resolve(s, "otel-collector", "tracing", p["port"])
    }
    receivers = {
        f"{r}/{proto}" if proto else r
        for r in pipeline["receivers"]
        for proto in (list(config["receivers"][r].get("protocols") or {}) or [""])
    }
    assert receivers <= published, f"receivers {receivers}, published {published}"


def service_port(s: Stack, address: str) -> dict[str, Any]:
    """The Service port entry `[scheme://]svc.ns.svc[.domain]:port` connects to."""
    parsed = urllib.parse.urlsplit(address if "://" in address else f"tcp://{address}")
    m = HOST_PORT.match(parsed.netloc or address)
    assert m, f"{address}: not an in-cluster Service address with a port"
    svc = services(s)[(m["ns"], m["svc"])]
    (port,) = [p for p in svc["spec"]["ports"] if p["port"] == int(m["port"])]
    return dict(port)


def span_grpc_addresses(s: Stack) -> list[tuple[str, str]]:
    """(who, address) of every gRPC connection spans travel: proxies and apps to the collector,
    the collector to Jaeger."""
    found = [("linkerd proxies", linkerd_values(s)["proxy"]["tracing"]["collector"]["endpoint"])]
    found += [(f"{w} OC_AGENT_HOST", a) for w, a in program_env(s, "OC_AGENT_HOST")]
    for cm in of_kind(s, "ConfigMap"):
        data = cm.get("data") or {}
        if data.get("OTEL_EXPORTER_OTLP_PROTOCOL") == "grpc":
            found.append((f"ConfigMap {ns_of(cm)}", data["OTEL_EXPORTER_OTLP_ENDPOINT"]))
    (w,) = [w for w in workloads(s) if w.obj["metadata"]["name"] == "otel-collector"]
    config = yaml.safe_load(mounted_config(s, w, w.containers()[0], "relay") or "{}")
    for name, exporter in config["exporters"].items():
        if name.split("/")[0] in ("otlp", "otlp_grpc"):
            found.append((f"collector exporter {name}", exporter["endpoint"]))
    found += [(f"EnvoyProxy {where}", address) for where, address, _ in edge_tracing(s)]
    return found


def edge_tracing(s: Stack) -> list[tuple[str, str, dict[str, Any]]]:
    """(EnvoyProxy, address of its OTLP backend, its tracing) for each EnvoyProxy that traces."""
    out = []
    for r in program_objects(s.graph):
        if r.inputs.get("kind") != "EnvoyProxy":
            continue
        tracing = (r.inputs["spec"].get("telemetry") or {}).get("tracing")
        if tracing:
            (ref,) = tracing["provider"]["backendRefs"]
            address = f"{ref['name']}.{ref['namespace']}.svc:{int(ref['port'])}"
            out.append((r.inputs["metadata"]["name"], address, tracing))
    return out


def test_the_edge_starts_traces_at_the_configured_rate_into_the_collectors_otlp_receiver(
    s: Stack,
) -> None:
    found = edge_tracing(s)
    exposure = s.graph.config.get("exposure", {})
    if not (exposure.get("installEnvoyGateway") and s.graph.config.get("enableTracing", True)):
        assert not found
        return
    (_, address, tracing) = found[0]
    assert tracing["provider"]["type"] == "OpenTelemetry"
    assert served(s, address) == {"otlp/grpc"}, address
    fraction = tracing["samplingFraction"]
    expected = exposure.get("traceSamplePercent", 100.0 if s.name == "dev" else 1.0)
    assert fraction["numerator"] / fraction["denominator"] == pytest.approx(expected / 100)


def test_every_grpc_span_connection_reaches_a_service_port_linkerd_treats_as_http2(
    s: Stack,
) -> None:
    # Linkerd knows `kubernetes.io/h2c` as HTTP/2; `grpc` is an unknown appProtocol, which it
    # forwards opaquely (per connection, no request metrics): linkerd2
    # policy-controller/core/src/outbound.rs `AppProtocol::from_str`.
    found = span_grpc_addresses(s)
    assert len(found) >= 2, found
    for who, address in found:
        port = service_port(s, address)
        assert port.get("appProtocol") == "kubernetes.io/h2c", f"{who} → {address}: {port}"


def test_red_metrics_from_spans_reach_vizs_prometheus_with_exemplars_that_open_traces(
    s: Stack,
) -> None:
    (w,) = [w for w in workloads(s) if w.obj["metadata"]["name"] == "jaeger"]
    (c,) = w.containers()
    config = yaml.safe_load(mounted_config(s, w, c, "user-config.yaml") or "{}")
    pipelines = config["service"]["pipelines"]
    # Every stored span also feeds the spanmetrics connector...
    assert "spanmetrics" in pipelines["traces"]["exporters"]
    assert config["connectors"]["spanmetrics"]["exemplars"]["enabled"] is True
    # ...whose metrics pipeline ends in the Prometheus exporter, in OpenMetrics (exemplars).
    (metrics,) = [p for p in pipelines.values() if "spanmetrics" in p["receivers"]]
    (exporter,) = [config["exporters"][e] for e in metrics["exporters"]]
    assert exporter["enable_open_metrics"] is True
    port = _port(exporter["endpoint"])
    assert port in {cp["containerPort"] for cp in c.get("ports") or []}
    job = _scrape_job(s, "jaeger-spanmetrics") if _scrape_job(s, "linkerd-proxy") else None
    if job is None:  # an external Prometheus scrapes what its owner configures
        assert s.graph.config["linkerd"].get("prometheusUrl")
        return
    # The scrape job keeps exactly this pod's port, as Prometheus evaluates its relabeling.
    (keep,) = [r for r in job["relabel_configs"] if r["action"] == "keep"]
    meta = {
        f"__meta_kubernetes_pod_label_{k.replace('.', '_').replace('/', '_')}": v
        for k, v in w.labels.items()
    } | {"__meta_kubernetes_pod_container_port_number": str(port)}
    value = ";".join(meta.get(label, "") for label in keep["source_labels"])
    assert re.fullmatch(keep["regex"], value), (keep, value)
    assert job["kubernetes_sd_configs"][0]["namespaces"]["names"] == [w.namespace]
    # Under default-deny, a Server on that port admits the scraper.
    servers = [
        name
        for (ns, name), srv in _servers(s).items()
        if ns == w.namespace and srv["spec"]["port"] == port
    ]
    assert servers, f"no Server for Jaeger's port {port}"
    (prom,) = [x for x in workloads(s) if x.obj["metadata"]["name"] == "prometheus"]
    (pc,) = [x for x in prom.containers() if x["name"] == "prometheus"]
    assert "--enable-feature=exemplar-storage" in (pc.get("args") or [])
    ds = datasources(s)
    (dest,) = ds["prometheus"]["jsonData"]["exemplarTraceIdDestinations"]
    assert dest["datasourceUid"] == ds["jaeger"]["uid"]


def test_onboarded_namespaces_are_told_addresses_that_reach_the_collector(s: Stack) -> None:
    teams = s.graph.outputs["teamNamespaces"]
    maps = [cm for cm in of_kind(s, "ConfigMap") if cm["metadata"]["name"] == "meshstack-tracing"]
    if not s.graph.config.get("enableTracing", True):
        assert not maps
        return
    assert {ns_of(cm) for cm in maps} == set(teams)
    for cm in maps:
        data = cm["data"]
        assert data["OTEL_EXPORTER_OTLP_PROTOCOL"] == "grpc"
        assert served(s, data["OTEL_EXPORTER_OTLP_ENDPOINT"]) == {"otlp/grpc"}


# --- Dashboards and their backends -----------------------------------------------------------


def test_grafanas_datasources_reach_prometheus_lokis_query_api_and_jaeger_query(s: Stack) -> None:
    ds = datasources(s)
    external = s.graph.config.get("linkerd", {}).get("prometheusUrl", "")
    if external:
        assert ds["prometheus"]["url"] == external
    else:
        assert served(s, ds["prometheus"]["url"]) == {"prometheus/http"}
    if s.graph.config.get("enableLogging", True):
        loki = ds["loki"]["url"]
        assert served(s, loki) == {"loki/http"}
        # Grafana appends /loki/api/v1/query_range and friends to the base URL.
        assert urllib.parse.urlsplit(loki).path in ("", "/"), f"Loki datasource {loki}"
    if s.graph.config.get("enableTracing", True):
        assert served(s, ds["jaeger"]["url"]) == {"jaeger_query/http"}


def test_jaeger_serves_under_the_path_every_client_of_its_query_port_asks_for(s: Stack) -> None:
    """viz's dashboard proxies its trace links (`/jaeger/search?...`) to Jaeger keeping the
    prefix (linkerd2 web/srv/server.go: `/jaeger/*`), Grafana appends `/api/...` to its
    datasource URL, and users open the exported URL: each must be under the base path the
    Jaeger pod's own configuration serves at."""
    if not s.graph.config.get("enableTracing", True):
        return
    (w,) = [w for w in workloads(s) if w.obj["metadata"]["name"] == "jaeger"]
    (c,) = w.containers()
    text = next(
        (t for key in ("user-config.yaml", "config.yaml") if (t := mounted_config(s, w, c, key))),
        "",
    )
    query = (yaml.safe_load(text) or {})["extensions"]["jaeger_query"]
    base = query.get("base_path", "/")
    assert base == "/jaeger", "viz's trace links arrive at /jaeger/..."
    assert urllib.parse.urlsplit(datasources(s)["jaeger"]["url"]).path.rstrip("/") == base
    url = s.graph.outputs["urls"].get("jaeger")
    if url:
        assert urllib.parse.urlsplit(url).path.startswith(f"{base}/"), url


URL = re.compile(r"https?://[^\s\"']+")


def test_grafana_fetches_no_dashboard_or_plugin_at_start_but_bounded_extras(s: Stack) -> None:
    (w,) = [w for w in workloads(s) if w.obj["metadata"]["name"] == "grafana"]
    (c,) = [c for c in w.containers() if c["name"] == "grafana"]
    env = {e["name"] for c in w.containers() for e in c.get("env") or []}
    # The chart's `plugins:` list becomes a blocking install from grafana.com.
    assert not env & {"GF_PLUGINS_PREINSTALL_SYNC", "GF_INSTALL_PLUGINS"}, env
    ini = mounted_config(s, w, c, "grafana.ini") or ""
    plugins = re.search(r"^\[plugins\]\n((?:[^\[].*\n?)*)", ini, re.MULTILINE)
    # Grafana's background preinstall (and auto-update) of its default plugin list is off.
    assert plugins and re.search(r"^preinstall_disabled = true$", plugins[1], re.MULTILINE), ini
    for cm in of_kind(s, "ConfigMap", "grafana"):
        assert "download_dashboards.sh" not in (cm.get("data") or {}), "the chart downloads"
    extras = s.graph.config.get("grafana", {}).get("grafanaComDashboards", False)
    fetching = []
    for init in w.spec.get("initContainers") or []:
        script = " ".join([*(init.get("command") or []), *(init.get("args") or [])])
        if not URL.search(script):
            continue
        fetching.append(init["name"])
        # Each fetch is bounded, the fetches run side by side, and none can fail the pod.
        for line in script.splitlines():
            if "curl " in line:
                connect = re.search(r"--connect-timeout (\d+)", line)
                total = re.search(r"--max-time (\d+)", line)
                assert connect and int(connect[1]) <= 5, line
                assert total and int(total[1]) <= 15, line
        assert script.rstrip().endswith("wait\nexit 0"), script
    assert fetching == (["grafana-com-dashboards"] if extras else []), fetching
    # The Linkerd dashboards come from the program's own ConfigMap, mounted where the
    # provider reads them.
    providers = yaml.safe_load(mounted_config(s, w, c, "dashboardproviders.yaml") or "{}")
    paths = {p["name"]: p["options"]["path"] for p in providers["providers"]}
    volumes = {v["name"]: v for v in w.spec.get("volumes") or []}
    mounted = {
        m["mountPath"]: (volumes[m["name"]].get("configMap") or {}).get("name")
        for m in c.get("volumeMounts") or []
    }
    cm_name = mounted[paths["linkerd"]]
    (dashboards,) = [
        r.inputs["data"]
        for r in program_objects(s.graph)
        # (A resource read with `.get`, such as a peer's token Secret, has no inputs.)
        if (r.inputs.get("metadata") or {}).get("name") == cm_name
    ]
    # The Linkerd folder holds the generated Linkerd dashboards, and only them.
    assert {json.loads(text)["uid"] for text in dashboards.values()} == {
        "meshstack-linkerd-top-line",
        "meshstack-linkerd-workload",
        "meshstack-linkerd-routes",
    }


def _scrape_job(s: Stack, job: str) -> dict[str, Any] | None:
    cms = [c for c in of_kind(s, "ConfigMap", "linkerd-viz") if "prometheus.yml" in c["data"]]
    if not cms:
        return None
    config = yaml.safe_load(cms[0]["data"]["prometheus.yml"])
    (found,) = [j for j in config["scrape_configs"] if j["job_name"] == job]
    return dict(found)


def test_the_slo_labels_are_the_ones_vizs_scrape_job_makes(s: Stack) -> None:
    job = _scrape_job(s, "linkerd-proxy")
    if job is None:  # an external Prometheus: its scrape config is the user's
        assert s.graph.config["linkerd"].get("prometheusUrl")
        return
    relabel = job["relabel_configs"]
    # `namespace` from the pod's namespace, `deployment` from linkerd.io/proxy-deployment
    # (a label the proxy injector sets on every pod of a Deployment).
    assert {
        "source_labels": ["__meta_kubernetes_namespace"],
        "action": "replace",
        "target_label": "namespace",
    } in relabel
    maps = [r for r in relabel if r.get("action") == "labelmap"]
    assert maps[0]["regex"] == "__meta_kubernetes_pod_label_linkerd_io_proxy_(.+)"
    assert maps[0].get("replacement", "$1") == "$1"


def test_vizs_prometheus_keeps_the_longest_slo_window(s: Stack) -> None:
    # The SLO settings do not depend on the links, whose peers this parse could not read.
    raw = {
        k: v if isinstance(v, str) else json.dumps(v)
        for k, v in s.graph.config.items()
        if k not in ("enableMulticluster", "multicluster")
    }
    settings = cfg.parse_settings(raw, s.name, frozenset(cfg.SECRET_KEYS)).slo
    windows = [o.window_hours for o in settings.objectives]
    expected = f"{max(windows)}h" if windows else "6h"
    deployments = [
        w
        for w in workloads(s)
        if w.namespace == "linkerd-viz" and w.obj["metadata"]["name"] == "prometheus"
    ]
    if not deployments:
        return
    (w,) = deployments
    (c,) = [c for c in w.containers() if c["name"] == "prometheus"]
    args = c.get("args") or []
    assert f"--storage.tsdb.retention.time={expected}" in args, args
    data = next(v for v in w.spec["volumes"] if v["name"] == "data")
    if settings.prometheus_storage_size:
        claim = data["persistentVolumeClaim"]["claimName"]
        (pvc,) = [
            p
            for p in of_kind(s, "PersistentVolumeClaim", "linkerd-viz")
            if p["metadata"]["name"] == claim
        ]
        size = memory_bytes(pvc["spec"]["resources"]["requests"]["storage"])
        cap = re.search(r"--storage\.tsdb\.retention\.size=(\d+)MB", " ".join(args))
        assert cap and int(cap[1]) * 2**20 < size, (args, size)
        assert w.obj["spec"]["strategy"]["type"] == "Recreate"
    else:
        assert "emptyDir" in data
    if windows:
        assert "--storage.tsdb.retention.size" in " ".join(args)


def test_viz_reaches_prometheus_and_links_to_jaeger_query_and_grafana(s: Stack) -> None:
    external = s.graph.config.get("linkerd", {}).get("prometheusUrl", "")
    url = rendered_arg(s, "linkerd-viz", "metrics-api", "-prometheus-url")
    assert url
    if external:
        assert url == external
        assert not [
            w for w in workloads(s) if w.namespace == "linkerd-viz" and "prometheus" in w.name
        ]
    else:
        assert served(s, url) == {"prometheus/http"}
    assert s.graph.outputs["prometheusUrl"] == url
    jaeger = rendered_arg(s, "linkerd-viz", "web", "-jaeger-addr")
    if s.graph.config.get("enableTracing", True):
        assert jaeger and served(s, jaeger) == {"jaeger_query/http"}
    grafana = rendered_arg(s, "linkerd-viz", "web", "-grafana-external-addr")
    assert (grafana or "") == s.graph.outputs["urls"].get("grafana", "")


def test_grafanas_root_url_is_the_url_users_open(s: Stack) -> None:
    (w,) = [w for w in workloads(s) if w.obj["metadata"]["name"] == "grafana"]
    ini = mounted_config(s, w, w.containers()[0], "grafana.ini") or ""
    root = re.search(r"^root_url\s*=\s*(\S*)", ini, re.MULTILINE)
    expected = s.graph.outputs["urls"].get("grafana", "")
    assert root and root[1] == expected, f"root_url {root and root[1]!r}, users open {expected!r}"


def test_grafana_signs_in_with_the_client_oauth2_proxy_uses_and_reads_its_secret(
    s: Stack,
) -> None:
    """With OIDC, the grafana.ini the pod mounts enables generic OAuth for the client the
    oauth2-proxy pods read from their Secret, and the client secret arrives through the
    variable Grafana maps onto `[auth.generic_oauth] client_secret`, from a Secret with that
    key in Grafana's namespace. The admin login stays (break-glass)."""
    proxies = [x for x in workloads(s) if x.obj["metadata"]["name"].startswith("oauth2-proxy")]
    oidc_proxies = [
        w for w in proxies if "--provider=oidc" in (w.containers()[0].get("args") or [])
    ]
    (w,) = [w for w in workloads(s) if w.obj["metadata"]["name"] == "grafana"]
    (c,) = [c for c in w.containers() if c["name"] == "grafana"]
    ini = configparser.ConfigParser(interpolation=None)
    ini.read_string(mounted_config(s, w, c, "grafana.ini") or "")
    if not oidc_proxies:
        assert not ini.has_section("auth.generic_oauth")
        return
    sso = ini["auth.generic_oauth"]
    assert sso["enabled"] == "true"
    client_ids = set()
    for p in oidc_proxies:
        (proxy,) = p.containers()
        env = {e["name"]: e for e in proxy.get("env") or []}
        ref = env["OAUTH2_PROXY_CLIENT_ID"]["valueFrom"]["secretKeyRef"]
        secret = one(s, "Secret", p.namespace, ref["name"])
        client_ids.add((secret.get("stringData") or {})[ref["key"]])
    assert client_ids == {sso["client_id"]}
    for key in ("auth_url", "token_url", "api_url"):
        assert sso[key].startswith("https://"), (key, sso[key])
    assert "client_secret" not in sso
    env = {e["name"]: e for e in c.get("env") or []}
    ref = env["GF_AUTH_GENERIC_OAUTH_CLIENT_SECRET"]["valueFrom"]["secretKeyRef"]
    secret = one(s, "Secret", w.namespace, ref["name"])
    assert (secret.get("stringData") or {}).get(ref["key"]), "no client secret under that key"
    assert ini["server"]["root_url"].startswith("https://"), "OAuth redirects need https"
    admin = env["GF_SECURITY_ADMIN_PASSWORD"]["valueFrom"]["secretKeyRef"]
    assert (one(s, "Secret", w.namespace, admin["name"]).get("stringData") or {}).get(admin["key"])


def test_the_cert_manager_the_stack_installs_issues_the_gateways_certificates(s: Stack) -> None:
    """A Gateway annotated with a ClusterIssuer gets its listener Secrets only from a
    cert-manager whose controller configuration enables Gateway API support: checked in the
    configuration file the rendered controller really loads."""
    wanted = [
        g
        for g in of_kind(s, "Gateway")
        if "cert-manager.io/cluster-issuer" in ((g["metadata"].get("annotations")) or {})
    ]
    controllers = [
        w
        for w in workloads(s)
        if w.obj["kind"] == "Deployment"
        and (w.obj["metadata"].get("labels") or {}).get("app.kubernetes.io/component")
        == "controller"
        and (w.obj["metadata"].get("labels") or {}).get("app.kubernetes.io/name") == "cert-manager"
    ]
    if not controllers:
        return
    (w,) = controllers
    (c,) = w.containers()
    flags = [a.split("=", 1)[1] for a in c.get("args") or [] if a.startswith("--config=")]
    loaded: dict[str, Any] = {}
    if flags:
        directory, _, file_name = flags[0].rpartition("/")
        at_dir = {
            **c,
            "volumeMounts": [m for m in c["volumeMounts"] if m["mountPath"] == directory],
        }
        loaded = yaml.safe_load(mounted_config(s, w, at_dir, file_name) or "{}") or {}
    enabled = (loaded.get("gatewayAPI") or {}).get("enabled") is True
    assert enabled == bool(wanted), (
        f"Gateways asking cert-manager for certificates: {len(wanted)}; gatewayAPI {loaded}"
    )
    if flags:
        assert loaded["kind"] == "ControllerConfiguration"


def test_alloy_pushes_to_lokis_push_api(s: Stack) -> None:
    (w,) = [w for w in workloads(s) if w.obj["metadata"]["name"] == "alloy"]
    config = mounted_config(s, w, w.containers()[0], "config.alloy") or ""
    urls = re.findall(r'loki\.write "[^"]+" \{\s*endpoint \{\s*url\s*=\s*"([^"]+)"', config)
    assert urls, "Alloy writes to no Loki endpoint"
    for url in urls:
        assert served(s, url) == {"loki/http"}
        assert urllib.parse.urlsplit(url).path == logs.PUSH_PATH
        assert url == s.graph.outputs["lokiPushUrl"]


def test_lokis_in_process_caches_fit_well_inside_its_memory_limit(s: Stack) -> None:
    """Every Loki pod (the single binary, or each component in distributed mode) against the
    memory limit it runs with."""
    checked = 0
    for w in workloads(s):
        if w.namespace != "logging" or not w.obj["metadata"]["name"].startswith("loki"):
            continue
        # Its container is `loki`, or named for the component in distributed mode.
        found = [(c, t) for c in w.containers() if (t := mounted_config(s, w, c, "config.yaml"))]
        if not found:
            continue
        ((c, text),) = found
        config = yaml.safe_load(text) or {}
        # Loki 3 fills every cache left unconfigured with a 100 MB in-process one: the chunk
        # cache, the results cache, and five that copy the results cache (grafana/loki v3
        # pkg/loki/config_wrapper.go `applyEmbeddedCacheConfig`). Unset, the default counts.
        chunks = config.get("chunk_store_config", {}).get("chunk_cache_config", {})
        results = config.get("query_range", {}).get("results_cache", {}).get("cache", {})
        for cache in (chunks, results):
            assert not cache.get("memcached_client"), cache
        chunks_mb = chunks.get("embedded_cache", {}).get("max_size_mb", 100)
        results_mb = results.get("embedded_cache", {}).get("max_size_mb", 100)
        total = (chunks_mb + 6 * results_mb) * 2**20
        limit = memory_bytes(c["resources"]["limits"]["memory"])
        # Half the limit at most: the ingester's chunks and the queries need the rest.
        where = f"{w.obj['metadata']['name']}: caches {total / 2**20:.0f}Mi"
        assert total <= limit / 2, f"{where} under a {limit / 2**20:.0f}Mi limit"
        checked += 1
    if s.graph.config.get("enableLogging", True):
        assert checked, "no Loki pod was checked"


def test_alloy_keeps_its_read_positions_on_the_node(s: Stack) -> None:
    (w,) = [w for w in workloads(s) if w.obj["metadata"]["name"] == "alloy"]
    (alloy,) = [c for c in w.containers() if c["name"] == "alloy"]
    args = alloy.get("args") or []
    (storage,) = [a.split("=", 1)[1] for a in args if a.startswith("--storage.path=")]
    volumes = {v["name"]: v for v in w.spec.get("volumes") or []}
    (mount,) = [m for m in alloy.get("volumeMounts") or [] if m["mountPath"] == storage]
    host = volumes[mount["name"]].get("hostPath") or {}
    assert host.get("path", "").startswith("/var/lib/"), volumes[mount["name"]]
    assert host.get("type") == "DirectoryOrCreate"
    # Nothing more than before: no privilege, no capability, a read-only root filesystem.
    security = alloy["securityContext"]
    assert security["privileged"] is False and security["allowPrivilegeEscalation"] is False
    assert security["capabilities"] == {"drop": ["ALL"]}
    assert security["readOnlyRootFilesystem"] is True


def test_alert_rules_query_a_prometheus_datasource_that_exists(s: Stack) -> None:
    ds = {d["uid"]: d["type"] for d in datasources(s).values()}
    (w,) = [w for w in workloads(s) if w.obj["metadata"]["name"] == "grafana"]
    text = mounted_config(s, w, w.containers()[0], "rules.yaml")
    assert text
    queries = [
        q
        for group in yaml.safe_load(text)["groups"]
        for rule in group["rules"]
        for q in rule["data"]
    ]
    assert queries
    for q in queries:
        if "expr" in q["model"] and q["datasourceUid"] != "__expr__":
            assert ds.get(q["datasourceUid"]) == "prometheus", q


def _relabel_keeps(job: dict[str, Any], labels: dict[str, str]) -> bool:
    """Whether a scrape job's `keep`/`drop` relabel steps let a target with `labels` through
    (Prometheus anchors every relabel regex at both ends)."""
    for step in job.get("relabel_configs") or []:
        if step.get("action") not in ("keep", "drop"):
            continue
        value = ";".join(labels.get(name, "") for name in step["source_labels"])
        matched = re.fullmatch(step.get("regex", "(.*)"), value) is not None
        if matched != (step["action"] == "keep"):
            return False
    return True


def test_the_issuer_expiry_alert_reaches_a_prometheus_that_scrapes_identitys_gauge(
    s: Stack,
) -> None:
    """The rule's datasource is a Prometheus; that Prometheus's own configuration scrapes the
    port the identity controller serves `issuer_cert_ttl_seconds` on (its admin server,
    `-admin-addr` default :9990 in linkerd2 controller/cmd/identity/main.go)."""
    (w,) = [w for w in workloads(s) if w.obj["metadata"]["name"] == "grafana"]
    text = mounted_config(s, w, w.containers()[0], "rules.yaml")
    assert text
    (group,) = [g for g in yaml.safe_load(text)["groups"] if g["name"] == "linkerd-certificates"]
    issuer_rules = [r for r in group["rules"] if "issuer_cert_ttl_seconds" in str(r["data"])]
    assert len(issuer_rules) == 2
    by_uid = {d["uid"]: d for d in datasources(s).values()}
    (uid,) = {q["datasourceUid"] for r in issuer_rules for q in r["data"] if "expr" in q["model"]}
    assert by_uid[uid]["type"] == "prometheus", by_uid.get(uid)
    url = by_uid[uid]["url"]
    external = s.graph.config.get("linkerd", {}).get("prometheusUrl", "")
    if external:
        # The user's Prometheus: its scrape configuration is not the stack's to see.
        assert url == external
        return

    (prometheus,) = {a.workload.name: a for a in arrive(s, url)}.values()
    assert listeners(s, prometheus).get(prometheus.port) == "prometheus/http"
    config = yaml.safe_load(
        mounted_config(s, prometheus.workload, prometheus.container, "prometheus.yml") or "{}"
    )
    identity = one(s, "Deployment", "linkerd", "linkerd-identity")
    pod = identity["spec"]["template"]
    (container,) = [c for c in pod["spec"]["containers"] if c["name"] == "identity"]
    admin = [p for p in container["ports"] if p["containerPort"] == 9990]
    assert admin, "identity serves no container port 9990"
    scraped = [
        job["job_name"]
        for job in config["scrape_configs"]
        for sd in job.get("kubernetes_sd_configs") or []
        if sd.get("role") == "pod"
        and "linkerd" in ((sd.get("namespaces") or {}).get("names") or ["linkerd"])
        and _relabel_keeps(
            job,
            {
                "__meta_kubernetes_namespace": "linkerd",
                "__meta_kubernetes_pod_container_name": container["name"],
                "__meta_kubernetes_pod_container_port_name": admin[0]["name"],
                **{
                    f"__meta_kubernetes_pod_label_{re.sub(r'[^a-zA-Z0-9_]', '_', k)}": v
                    for k, v in (pod["metadata"].get("labels") or {}).items()
                },
            },
        )
    ]
    # viz's job for the control plane's own metrics (linkerd-viz templates/prometheus.yaml).
    assert scraped == ["linkerd-controller"], scraped


# --- Certificates ----------------------------------------------------------------------------


def _pems(text: str) -> list[x509.Certificate]:
    return x509.load_pem_x509_certificates(text.encode())


def _secret_data(secret: dict[str, Any], key: str) -> str:
    if key in (secret.get("stringData") or {}):
        return str(secret["stringData"][key])
    return base64.b64decode(secret["data"][key]).decode()


def _served_secrets(s: Stack, service: dict[str, Any], port: int) -> list[dict[str, Any]]:
    """Every Secret the containers behind `service:port` mount (where they keep their TLS
    certificate and key)."""
    meta = service["metadata"]
    out = []
    for a in resolve(s, meta["name"], ns_of(service), port):
        volumes = {v["name"]: v for v in a.workload.spec.get("volumes") or []}
        for mount in a.container.get("volumeMounts") or []:
            secret = (volumes.get(mount["name"]) or {}).get("secret")
            if secret:
                found = one(s, "Secret", ns_of(service), secret["secretName"])
                out.append(found)
    assert out, f"nothing behind {meta['name']}:{port} mounts a TLS Secret"
    return out


# Where cert-manager's cainjector takes the caBundle it writes into a webhook configuration: a
# Certificate's CA (`<namespace>/<name>`), or a Secret's `ca.crt` (cert-manager's own webhook,
# whose CA the webhook makes itself at start).
CAINJECTOR_SOURCES = ("cert-manager.io/inject-ca-from", "cert-manager.io/inject-ca-from-secret")


def test_every_webhook_serves_a_certificate_its_ca_bundle_verifies_for_its_service(
    s: Stack,
) -> None:
    calls = []  # (who, service ref, caBundle)
    injected = []  # (who, service ref, cainjector annotation, its value)
    for kind in ("MutatingWebhookConfiguration", "ValidatingWebhookConfiguration"):
        for config in of_kind(s, kind):
            annotations = config["metadata"].get("annotations") or {}
            for hook in config["webhooks"]:
                cc = hook["clientConfig"]
                source = [(k, v) for k, v in annotations.items() if k in CAINJECTOR_SOURCES]
                if "caBundle" not in cc and source:
                    injected.append((f"{kind} {hook['name']}", cc["service"], *source[0]))
                    continue
                calls.append((f"{kind} {hook['name']}", cc["service"], cc["caBundle"]))
    _check_injected_ca_bundles(s, injected)
    for api in of_kind(s, "APIService"):
        calls.append(
            (
                f"APIService {api['metadata']['name']}",
                api["spec"]["service"],
                api["spec"]["caBundle"],
            )
        )
    assert len(calls) >= 5
    anchor = _pems(s.graph.outputs["trustAnchorPem"])[0]
    for who, ref, bundle in calls:
        (ca,) = _pems(base64.b64decode(bundle).decode())
        assert ca != anchor, f"{who}: caBundle is the mesh trust anchor, not the webhook CA"
        service = services(s)[(ref["namespace"], ref["name"])]
        dns = f"{ref['name']}.{ref['namespace']}.svc"
        for secret in _served_secrets(s, service, int(ref.get("port", 443))):
            cert = _pems(_secret_data(secret, "tls.crt"))[0]
            key = serialization.load_pem_private_key(
                _secret_data(secret, "tls.key").encode(),
                None,
            )
            where = f"{who} → Secret {secret['metadata']['name']}"
            cert.verify_directly_issued_by(ca)  # raises when the bundle did not sign it
            names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
            assert dns in names.get_values_for_type(x509.DNSName), f"{where}: SAN {names}"
            assert key.public_key() == cert.public_key(), f"{where}: key does not match"


def _check_injected_ca_bundles(s: Stack, injected: list[tuple[str, Any, str, str]]) -> None:
    """A webhook whose caBundle cert-manager's cainjector writes at run time: cainjector runs,
    and the CA it copies is the one that signs what the Service's pods serve."""
    if not injected:
        return
    assert [w for w in workloads(s) if w.labels.get("app.kubernetes.io/component") == "cainjector"]
    for who, ref, annotation, value in injected:
        namespace, _, name = value.partition("/")
        dns = f"{ref['name']}.{ref['namespace']}.svc"
        arrivals = resolve(s, ref["name"], ref["namespace"], int(ref.get("port", 443)))
        if annotation == "cert-manager.io/inject-ca-from":
            # The pods serve the Secret the Certificate writes, for the Service's name.
            cert = one(s, "Certificate", namespace, name)
            assert dns in cert["spec"]["dnsNames"], f"{who}: {cert['spec']['dnsNames']}"
            for a in arrivals:
                mounted = {
                    (v.get("secret") or {}).get("secretName") for v in a.workload.spec["volumes"]
                }
                assert cert["spec"]["secretName"] in mounted, f"{who}: {a.workload.name}"
        else:
            # The webhook makes its serving CA itself, in the Secret cainjector reads.
            for a in arrivals:
                args = [
                    arg.replace("$(POD_NAMESPACE)", a.workload.namespace)
                    for arg in a.container.get("args") or []
                ]
                assert f"--dynamic-serving-ca-secret-name={name}" in args, (who, args)
                assert a.workload.namespace == namespace, who
                assert f"--dynamic-serving-dns-names={dns}" in args, (who, args)


def test_the_identity_issuer_is_a_ca_the_trust_anchor_signed_for_the_trust_domain(
    s: Stack,
) -> None:
    values = linkerd_values(s)
    domain = values["identityTrustDomain"]
    assert domain == s.graph.config.get("clusterDomain", "cluster.local")
    if values["identity"]["externalCA"]:
        _check_external_issuer(s, values, domain)
        return
    roots = one(s, "ConfigMap", "linkerd", "linkerd-identity-trust-roots")["data"]["ca-bundle.crt"]
    (anchor,) = _pems(roots)
    assert _pems(s.graph.outputs["trustAnchorPem"]) == [anchor]
    secret = one(s, "Secret", "linkerd", "linkerd-identity-issuer")
    issuer = _pems(_secret_data(secret, "crt.pem"))[0]
    issuer.verify_directly_issued_by(anchor)
    assert issuer.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    cn = issuer.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value
    # The identity controller refuses an issuer not named for its trust domain.
    assert cn == f"identity.linkerd.{domain}"
    key = serialization.load_pem_private_key(_secret_data(secret, "key.pem").encode(), None)
    assert key.public_key() == issuer.public_key()


def _check_external_issuer(s: Stack, values: dict[str, Any], domain: str) -> None:
    """cert-manager and trust-manager write what the chart leaves out: the roots ConfigMap the
    pods mount, holding the anchor, and the issuer Secret, a CA named for the trust domain."""
    assert values["identity"]["issuer"]["scheme"] == "kubernetes.io/tls"
    chart_made = [
        c
        for c in of_kind(s, "ConfigMap", "linkerd")
        if c["metadata"]["name"] == "linkerd-identity-trust-roots"
    ]
    assert not chart_made, "the roots are trust-manager's to write"
    (identity,) = [w for w in workloads(s) if w.obj["metadata"]["name"] == "linkerd-identity"]
    volumes = {v["name"]: v for v in identity.spec["volumes"]}
    roots_cm = volumes["trust-roots"]["configMap"]["name"]
    issuer_secret = volumes["identity-issuer"]["secret"]["secretName"]

    (bundle,) = [b for b in of_kind(s, "Bundle") if b["metadata"]["name"] == roots_cm]
    target = bundle["spec"]["target"]
    assert target["configMap"]["key"] == "ca-bundle.crt"
    (ns,) = [n for n in of_kind(s, "Namespace") if n["metadata"]["name"] == "linkerd"]
    selector = target["namespaceSelector"]["matchLabels"]
    assert selector.items() <= ns["metadata"]["labels"].items(), "no roots in linkerd"
    anchors = [a for src in bundle["spec"]["sources"] for a in _pems(src["inLine"])]
    assert anchors == _pems(s.graph.outputs["trustAnchorPem"])

    cert = one(s, "Certificate", "linkerd", issuer_secret)
    spec = cert["spec"]
    assert spec["secretName"] == issuer_secret and spec["isCA"] is True
    # The identity controller refuses an issuer not named for its trust domain.
    assert spec["commonName"] == f"identity.linkerd.{domain}"
    assert spec["privateKey"]["algorithm"] == "ECDSA" and spec["privateKey"]["size"] == 256
    ref = spec["issuerRef"]
    kind = "ClusterIssuer" if ref["kind"] == "ClusterIssuer" else "Issuer"
    issuers = [i for i in of_kind(s, kind) if i["metadata"]["name"] == ref["name"]]
    if issuers:
        # Made by the stack from the anchor's key: its CA Secret holds the anchor and that key.
        (issuer,) = issuers
        identity_config = s.graph.config["linkerd"]["identity"]
        ca_ns = (
            ns_of(issuer)
            if kind == "Issuer"
            else identity_config.get("certManagerNamespace", "cert-manager")
        )
        secret = one(s, "Secret", ca_ns, issuer["spec"]["ca"]["secretName"])
        (ca,) = _pems(_secret_data(secret, "tls.crt"))
        assert [ca] == anchors
        key = serialization.load_pem_private_key(_secret_data(secret, "tls.key").encode(), None)
        assert key.public_key() == ca.public_key()


# --- Policy ----------------------------------------------------------------------------------


def _servers(s: Stack) -> dict[tuple[str, str], dict[str, Any]]:
    return {(ns_of(o), o["metadata"]["name"]): o for o in of_kind(s, "Server")}


def _server_ports(s: Stack, server: dict[str, Any]) -> list[tuple[Workload, int | str]]:
    """(pod, port) pairs a Server selects; fails on a Server that selects nothing."""
    spec = server["spec"]
    selector = spec.get("podSelector") or {}
    pods = pod_selected(s, ns_of(server), selector)
    where = f"Server {ns_of(server)}/{server['metadata']['name']}"
    # An empty selector is every pod of the namespace, the stack's or a team's.
    assert pods or not any(selector.values()), f"{where} selects no pods ({selector})"
    port = spec["port"]
    for w in pods:
        ports = {
            p.get(k)
            for c in w.containers()
            for p in c.get("ports") or []
            for k in ("name", "containerPort")
        }
        assert port in ports | PROXY_ADMIN_PORTS, f"{where}: {w.name} has no port {port}"
    return [(w, port) for w in pods]


def _authn(s: Stack, namespace: str, ref: dict[str, Any]) -> dict[str, Any]:
    kind = ref["kind"]
    if kind == "ServiceAccount":
        return {"kind": kind, **ref}
    return {"kind": kind, **one(s, kind, ref.get("namespace", namespace), ref["name"])["spec"]}


def _identities_ok(s: Stack, namespace: str, authn: dict[str, Any]) -> list[str]:
    """Problems with the identities an authentication admits: each must be a ServiceAccount
    some pod runs as, or an identity string in the trust domain."""
    domain = linkerd_values(s)["identityTrustDomain"]
    accounts = {(w.namespace, w.service_account) for w in workloads(s)}
    # Namespaces whose pods this stack runs; a client elsewhere (an external Prometheus) is
    # the user's to run.
    owned = {ns_of(o) for _, o in s.objects()} | {
        o["metadata"]["name"] for o in of_kind(s, "Namespace")
    }
    problems = []
    refs = [authn] if authn["kind"] == "ServiceAccount" else authn.get("identityRefs") or []
    for ref in refs:
        if ref.get("kind") == "ServiceAccount":
            key = (ref.get("namespace") or namespace, ref["name"])
            if key[0] in owned and key not in accounts:
                problems.append(f"no pod runs as ServiceAccount {key[0]}/{key[1]}")
    for identity in authn.get("identities") or []:
        # `*`: any identity the trust anchor vouches for (every proxy exporting spans).
        if identity != "*" and not identity.endswith(f".serviceaccount.identity.linkerd.{domain}"):
            problems.append(f"identity {identity} is outside the trust domain {domain}")
    return problems


def test_every_authorization_targets_a_server_that_selects_serving_pods_and_real_clients(
    s: Stack,
) -> None:
    servers = _servers(s)
    # The stack's own policies (the charts' are upstream's: viz renders its Prometheus policy
    # even with Prometheus off).
    policies = [
        r.inputs for r in program_objects(s.graph) if r.type.endswith(":AuthorizationPolicy")
    ]
    assert policies
    problems = []
    for policy in policies:
        namespace, spec = ns_of(policy), policy["spec"]
        target = spec["targetRef"]
        where = f"AuthorizationPolicy {namespace}/{policy['metadata']['name']}"
        if target["kind"] == "Server":
            server = servers.get((namespace, target["name"]))
            if server is None:
                problems.append(f"{where}: no Server {target['name']} in {namespace}")
                continue
            _server_ports(s, server)
        for ref in spec.get("requiredAuthenticationRefs") or []:
            problems += [
                f"{where}: {p}" for p in _identities_ok(s, namespace, _authn(s, namespace, ref))
            ]
    assert not problems, "\n".join(problems)


def _default_deny(s: Stack, namespace: str) -> bool:
    for ns in of_kind(s, "Namespace"):
        if ns["metadata"]["name"] == namespace:
            annotations = ns["metadata"].get("annotations") or {}
            return annotations.get("config.linkerd.io/default-inbound-policy") == "deny"
    return False


def _admitted(s: Stack, w: Workload, port: int) -> list[dict[str, Any]]:
    """The authentications of every policy on a Server that covers `port` of `w`'s pods."""
    names = {
        p.get("name")
        for c in w.containers()
        for p in c.get("ports") or []
        if p.get("containerPort") == port
    }
    covering = {
        name
        for (namespace, name), server in _servers(s).items()
        if namespace == w.namespace
        and ((server["spec"].get("podSelector") or {}).get("matchLabels") or {}).items()
        <= w.labels.items()
        and server["spec"]["port"] in names | {port}
    }
    out = []
    for policy in of_kind(s, "AuthorizationPolicy", w.namespace):
        if policy["spec"]["targetRef"].get("name") in covering:
            out += [
                _authn(s, w.namespace, r)
                for r in policy["spec"].get("requiredAuthenticationRefs") or []
            ]
    return out


def _multicluster_gateway(svc: dict[str, Any]) -> bool:
    """The multicluster gateway's Service: published for peer clusters' proxies, not users, and
    checked on its own (`test_the_multicluster_gateway_admits_only_meshed_callers`)."""
    annotations = svc["metadata"].get("annotations") or {}
    return annotations.get("mirror.linkerd.io/multicluster-gateway") == "true"


def test_the_multicluster_gateway_admits_only_meshed_callers(s: Stack) -> None:
    """Its ports reach the gateway pod's proxy (injected at admission: 4143 inbound, 4191
    admin), whose Server takes only mTLS-authenticated clients: the peers' proxies."""
    gateways = [o for o in of_kind(s, "Service") if _multicluster_gateway(o)]
    if not s.graph.config.get("enableMulticluster"):
        assert gateways == []
        return
    (svc,) = gateways
    proxy = {
        int(linkerd_values(s)["proxy"]["ports"]["inbound"]),
        int(linkerd_values(s)["proxy"]["ports"]["admin"]),
    }
    assert {int(p["port"]) for p in svc["spec"]["ports"]} == proxy
    servers = [o for o in of_kind(s, "Server") if ns_of(o) == ns_of(svc)]
    (server,) = [
        o
        for o in servers
        if o["spec"]["podSelector"]["matchLabels"].items() <= svc["spec"]["selector"].items()
        and o["spec"]["port"] == "linkerd-proxy"
    ]
    policies = [
        o
        for o in of_kind(s, "AuthorizationPolicy")
        if ns_of(o) == ns_of(svc) and o["spec"]["targetRef"]["name"] == server["metadata"]["name"]
    ]
    assert policies
    for policy in policies:
        kinds = {ref["kind"] for ref in policy["spec"]["requiredAuthenticationRefs"]}
        # Every policy requires a mesh identity (a network alone never admits).
        assert "MeshTLSAuthentication" in kinds, policy["metadata"]["name"]


def _published(s: Stack) -> list[tuple[str, Arrival]]:
    """(how, arrival) for every path into the cluster the stack opens: each port of its
    NodePort/LoadBalancer Services, each Ingress backend and each HTTPRoute backendRef,
    followed to the pods."""
    mode = s.graph.config["exposure"]["mode"]
    services_out = [
        o
        for o in of_kind(s, "Service")
        if o["spec"].get("type") in ("NodePort", "LoadBalancer") and not _multicluster_gateway(o)
    ]
    ingresses = of_kind(s, "Ingress")
    assert bool(services_out) == (mode in ("nodePort", "loadBalancer")), mode
    assert bool(ingresses) == (mode == "ingress"), mode
    routes = of_kind(s, "HTTPRoute")
    assert bool(routes) == (mode == "gateway"), mode
    out = []
    for svc in services_out:
        for port in svc["spec"]["ports"]:
            for a in resolve(s, svc["metadata"]["name"], ns_of(svc), port["port"]):
                out.append(("service", a))
    for ing in ingresses:
        for rule in ing["spec"]["rules"]:
            for path in rule["http"]["paths"]:
                backend = path["backend"]["service"]
                for a in resolve(s, backend["name"], ns_of(ing), backend["port"]["number"]):
                    out.append(("ingress", a))
    for route in routes:
        for rule in route["spec"]["rules"]:
            # A redirect rule has no backend: Envoy answers it.
            for ref in rule.get("backendRefs") or []:
                # A backendRef is a Service in the route's namespace unless it says otherwise.
                assert ref.get("kind", "Service") == "Service", ref
                arrivals = resolve(s, ref["name"], ref.get("namespace", ns_of(route)), ref["port"])
                assert arrivals, f"{ns_of(route)}/{route['metadata']['name']}: {ref} reaches no pod"
                out.extend(("gateway", a) for a in arrivals)
    return out


def test_what_the_stack_publishes_reaches_a_serving_port_and_is_authorized_to(s: Stack) -> None:
    """Behind Linkerd's default-deny, a published port needs a policy admitting its callers:
    anyone for a NodePort/LoadBalancer Service, the ingress controller's identities for an
    Ingress, the Gateway's Envoy pods' for an HTTPRoute."""
    exposure = s.graph.config["exposure"]
    ingress_ns = (
        exposure.get("gatewayNamespace", "envoy-gateway-system")
        if exposure["mode"] == "gateway"
        else exposure.get("ingressNamespace", "ingress-nginx")
    )
    controller = (
        f"*.{ingress_ns}.serviceaccount.identity.linkerd.{linkerd_values(s)['identityTrustDomain']}"
    )
    problems = []
    for how, a in _published(s):
        # Users open a web UI there: where the workload's config is known, its HTTP server.
        serving = listeners(s, a)
        if serving and not serving.get(a.port, "").endswith("/http"):
            problems.append(f"{a.workload.name}:{a.port} ({how}): serves {serving.get(a.port)}")
        if not _default_deny(s, a.workload.namespace):
            continue
        admitted = _admitted(s, a.workload, a.port)
        where = f"{a.workload.name}:{a.port} ({how})"
        if how == "service":
            networks = {n["cidr"] for authn in admitted for n in authn.get("networks") or []}
            if not networks & ALL_NETWORKS:
                problems.append(f"{where}: published, but only meshed clients may call it")
        else:
            identities = {i for authn in admitted for i in authn.get("identities") or []}
            if controller not in identities:
                problems.append(f"{where}: the ingress controller may not call it ({identities})")
    assert not problems, "\n".join(problems)


def _published_targets(s: Stack) -> list[tuple[str, str, Arrival]]:
    """(target key, how, arrival) for each NodePort/LoadBalancer Service, Ingress and HTTPRoute
    the stack makes for a target (named `meshstack-<key>`)."""
    out = []
    for svc in of_kind(s, "Service"):
        if svc["spec"].get("type") in ("NodePort", "LoadBalancer") and not _multicluster_gateway(
            svc
        ):
            key = svc["metadata"]["name"].removeprefix("meshstack-")
            for port in svc["spec"]["ports"]:
                for a in resolve(s, svc["metadata"]["name"], ns_of(svc), port["port"]):
                    out.append((key, "service", a))
    for ing in of_kind(s, "Ingress"):
        key = ing["metadata"]["name"].removeprefix("meshstack-")
        for rule in ing["spec"]["rules"]:
            for path in rule["http"]["paths"]:
                backend = path["backend"]["service"]
                for a in resolve(s, backend["name"], ns_of(ing), backend["port"]["number"]):
                    out.append((key, "ingress", a))
    for route in of_kind(s, "HTTPRoute"):
        key = route["metadata"]["name"].removeprefix("meshstack-")
        for rule in route["spec"]["rules"]:
            # A redirect rule has no backend: Envoy answers it.
            for ref in rule.get("backendRefs") or []:
                namespace = ref.get("namespace", ns_of(route))
                for a in resolve(s, ref["name"], namespace, ref["port"]):
                    out.append((key, "gateway", a))
    return out


def test_every_published_path_to_the_dashboard_or_jaeger_arrives_at_oauth2_proxy(
    s: Stack,
) -> None:
    """Sign-in is on by default in every mode that publishes (exposure.auth), so whatever
    reaches the dashboard or Jaeger from outside reaches oauth2-proxy, which proxies to the UI
    Service's HTTP listener."""
    domain = s.graph.config.get("clusterDomain", "cluster.local")
    ui = {
        "dashboard": (f"web.linkerd-viz.svc.{domain}:8084", "web"),
        "jaeger": (f"jaeger.tracing.svc.{domain}:16686", "jaeger_query/http"),
    }
    seen = set()
    for key, how, a in _published_targets(s):
        if key not in ui:
            continue
        seen.add(key)
        where = f"{key} ({how}) → {a.workload.name}:{a.port}"
        assert listeners(s, a).get(a.port) == "oauth2-proxy/http", where
        upstream = rendered_arg(
            s, a.workload.namespace, a.workload.obj["metadata"]["name"], "--upstream"
        )
        assert upstream == f"http://{ui[key][0]}", where
        arrivals = arrive(s, upstream)
        if key == "jaeger":
            assert served(s, upstream) == {ui[key][1]}, where
        else:
            assert {(x.workload.obj["metadata"]["name"], x.port) for x in arrivals} == {
                ("web", 8084)
            }, where
    if s.graph.config["exposure"]["mode"] != "port-forward":
        assert seen == {"dashboard", "jaeger"} & set(s.graph.outputs["urls"]), seen


def test_the_sign_in_page_users_reach_offers_only_the_sign_in_that_is_configured(
    s: Stack,
) -> None:
    """oauth2-proxy's built-in page always shows a provider button (pkg/app/pagewriter/
    sign_in.html). With htpasswd alone that button leads nowhere, so the page the published pod
    really loads from `--custom-templates-dir` must be a password form that posts to its own
    sign-in endpoint; with OIDC the page is skipped and users go straight to the provider."""
    seen = 0
    for key, how, a in _published_targets(s):
        if listeners(s, a).get(a.port) != "oauth2-proxy/http":
            continue
        c = a.container
        args = c.get("args") or []
        where = f"{key} ({how}) → {a.workload.name}"
        seen += 1
        if "--provider=oidc" in args:
            assert "--skip-provider-button=true" in args, where
            continue
        assert any(x.startswith("--htpasswd-file=") for x in args), where
        flag = [x.split("=", 1)[1] for x in args if x.startswith("--custom-templates-dir=")]
        assert len(flag) == 1, f"{where}: no --custom-templates-dir"
        mounted = [m for m in c.get("volumeMounts") or [] if m["mountPath"] == flag[0]]
        assert len(mounted) == 1, f"{where}: nothing mounted at {flag[0]}"
        c_at_dir = {**c, "volumeMounts": mounted}
        page = mounted_config(s, a.workload, c_at_dir, "sign_in.html")
        assert page, f"{where}: no sign_in.html at {flag[0]}"
        # A file in the templates dir is parsed as is; the page is the template it defines.
        assert page.lstrip().startswith('{{define "sign_in.html"}}'), where
        forms = re.findall(r'<form[^>]*action="([^"]*)"', page)
        assert forms == ["{{ .ProxyPrefix }}/sign_in"], f"{where}: forms post to {forms}"
        assert re.search(r'<form[^>]*method="POST"', page), where
        for field_name in ("username", "password", "rd"):
            assert f'name="{field_name}"' in page, f"{where}: no {field_name} field"
        assert "/start" not in page and "ProviderName" not in page, where
    if s.graph.config["exposure"]["mode"] != "port-forward":
        assert seen, "no published sign-in page was checked"


def test_the_dashboard_answers_the_host_users_reach_it_by(s: Stack) -> None:
    pattern = re.compile(rendered_arg(s, "linkerd-viz", "web", "-enforced-host") or "")
    domain = s.graph.config.get("clusterDomain", "cluster.local")
    # In-cluster callers and port-forwards.
    for host in (f"web.linkerd-viz.svc.{domain}:8084", "localhost:8084", "127.0.0.1:8084"):
        assert pattern.match(host), f"{pattern.pattern} refuses {host}"
    url = s.graph.outputs["urls"].get("dashboard", "")
    mode = s.graph.config["exposure"]["mode"]
    if mode in ("ingress", "gateway"):
        assert pattern.match(urllib.parse.urlsplit(url).netloc), url
    if mode in ("nodePort", "loadBalancer"):
        # A kind node's address, as the browser sends it.
        assert pattern.match("172.18.0.2:30084")


# --- The data plane follows the control plane -----------------------------------------------


def test_every_pod_the_stack_runs_meshed_is_built_with_the_digest_of_what_proxies_get(
    s: Stack,
) -> None:
    """A change in what the injector gives proxies must change every pod template the stack owns
    in a meshed namespace, or those pods keep their old proxies until someone restarts them."""
    cp = s.graph.charts()["linkerd-control-plane"].inputs
    want = mesh.config_digest(mesh.proxy_config(cp["values"], cp["version"]))
    meshed = [
        w for w in workloads(s) if w.namespace in ("linkerd-viz", "tracing", "grafana", "emojivoto")
    ]
    assert len(meshed) >= 5
    for w in meshed:
        annotations = (w.pod.get("metadata") or {}).get("annotations") or {}
        env = {e["name"]: e.get("value") for c in w.containers() for e in c.get("env") or []}
        carried = annotations.get(mesh.PROXY_CONFIG_ANNOTATION, env.get(mesh.PROXY_CONFIG_ENV))
        assert carried == want, f"{w.name}: {carried!r}, expected the digest {want}"


# --- Storage ---------------------------------------------------------------------------------


def test_a_deployment_on_a_read_write_once_claim_stops_its_old_pod_before_starting_a_new_one(
    s: Stack,
) -> None:
    # A rolling update's new pod would wait for the claim the old pod holds, forever when it
    # is scheduled to another node.
    rwo = {
        (ns_of(o), o["metadata"]["name"])
        for o in of_kind(s, "PersistentVolumeClaim")
        if "ReadWriteOnce" in ((o.get("spec") or {}).get("accessModes") or ["ReadWriteOnce"])
    }
    checked = 0
    for d in of_kind(s, "Deployment"):
        volumes = d["spec"]["template"]["spec"].get("volumes") or []
        claims = {(v.get("persistentVolumeClaim") or {}).get("claimName") for v in volumes}
        if any((ns_of(d), c) in rwo for c in claims if c):
            strategy = (d["spec"].get("strategy") or {}).get("type", "RollingUpdate")
            assert strategy == "Recreate", f"Deployment {ns_of(d)}/{d['metadata']['name']}"
            checked += 1
    volumes_on = s.graph.config.get("grafana", {}).get("persistence") or (
        s.graph.config.get("tracing", {}).get("storage") == "badger"
    )
    assert checked >= (1 if volumes_on else 0)


def test_every_claim_a_pod_mounts_exists_and_badger_writes_on_it(s: Stack) -> None:
    claims = {(ns_of(o), o["metadata"]["name"]) for o in of_kind(s, "PersistentVolumeClaim")}
    for w in workloads(s):
        for v in w.spec.get("volumes") or []:
            claim = (v.get("persistentVolumeClaim") or {}).get("claimName")
            if claim:
                assert (w.namespace, claim) in claims, f"{w.name} mounts missing claim {claim}"
    if s.graph.config["tracing"].get("storage") == "badger":
        (w,) = [w for w in workloads(s) if w.obj["metadata"]["name"] == "jaeger"]
        c = w.containers()[0]
        config = yaml.safe_load(mounted_config(s, w, c, "user-config.yaml") or "{}")
        backends = config["extensions"]["jaeger_storage"]["backends"]
        (badger,) = [b["badger"] for b in backends.values()]
        volumes = {v["name"]: v for v in w.spec["volumes"]}
        on_claims = [
            m["mountPath"]
            for m in c.get("volumeMounts") or []
            if "persistentVolumeClaim" in volumes.get(m["name"], {})
        ]
        for directory in badger["directories"].values():
            assert any(directory.startswith(f"{p.rstrip('/')}/") for p in on_claims), directory


# The variants in a cluster domain other than the default: only there can a hard-coded
# `cluster.local` be told apart from the configured domain.
OTHER_DOMAIN = sorted(v for v, (_, overrides) in VARIANTS.items() if "clusterDomain" in overrides)


@pytest.mark.parametrize("variant", OTHER_DOMAIN)
def test_every_in_cluster_name_is_in_the_configured_cluster_domain(variant: str) -> None:
    s = stack(variant)
    domain = s.graph.config["clusterDomain"]
    assert domain != "cluster.local"
    found = [
        text
        for o in objects(s)
        for text in strings(o)
        if "cluster.local" in text or "cluster\\.local" in text
    ]
    assert not found, f"names in cluster.local in a {domain} cluster: {found[:5]}"


# --- Storage engines -------------------------------------------------------------------------


def _loki_configs(s: Stack) -> list[tuple[Workload, dict[str, Any], dict[str, Any]]]:
    """(workload, container, config) of every Loki container, as each mounts its config."""
    out = []
    for w in workloads(s):
        if w.namespace != logs.NAMESPACE:
            continue
        for c in w.containers():
            args = " ".join(c.get("args") or [])
            if "-config.file=/etc/loki/config/config.yaml" in args:
                text = mounted_config(s, w, c, "config.yaml")
                assert text, f"{w.name}: mounts no Loki config"
                out.append((w, c, yaml.safe_load(text)))
    assert out, "no Loki container"
    return out


def _secret_keys(s: Stack, namespace: str, name: str) -> set[str]:
    secret = one(s, "Secret", namespace, name)
    return set(secret.get("stringData") or {}) | set(secret.get("data") or {})


def _env_sources(s: Stack, w: Workload, c: dict[str, Any]) -> set[str]:
    """The env var names a container gets, each from a value or from a Secret that exists
    with the key it is read from."""
    names = set()
    for e in c.get("env") or []:
        ref = (e.get("valueFrom") or {}).get("secretKeyRef")
        if ref:
            assert ref["key"] in _secret_keys(s, w.namespace, ref["name"]), (w.name, ref)
        names.add(e["name"])
    for source in c.get("envFrom") or []:
        ref = source.get("secretRef")
        if ref:
            names |= {
                f"{source.get('prefix', '')}{k}" for k in _secret_keys(s, w.namespace, ref["name"])
            }
    return names


def test_loki_writes_its_index_and_chunks_where_the_mode_says(s: Stack) -> None:
    storage_key = (s.graph.config.get("logging") or {}).get("storage", "filesystem")
    for w, _, config in _loki_configs(s):
        (schema,) = config["schema_config"]["configs"]
        assert (schema["store"], schema["schema"]) == ("tsdb", "v13"), w.name
        assert schema["object_store"] == storage_key, w.name
        assert config["compactor"]["delete_request_store"] == storage_key, w.name
        assert config["compactor"]["retention_enabled"] is True, w.name


def test_every_loki_pod_reads_the_bucket_keys_its_config_names_from_a_secret_that_exists(
    s: Stack,
) -> None:
    for w, c, config in _loki_configs(s):
        text = yaml.safe_dump(config)
        wanted = set(re.findall(r"\$\{([A-Z0-9_]+)\}", text))
        # -config.expand-env is what makes Loki replace them.
        if wanted:
            assert "-config.expand-env=true" in (c.get("args") or []), w.name
        missing = wanted - _env_sources(s, w, c)
        assert not missing, f"{w.name}: the config expands {missing}, which no Secret provides"


def test_an_in_cluster_bucket_is_the_seaweedfs_s3_api_loki_signs_in_to(s: Stack) -> None:
    s3_configs = [
        cfg["common"]["storage"]["s3"]
        for _, _, cfg in _loki_configs(s)
        if "s3" in (cfg["common"].get("storage") or {})
    ]
    in_cluster = ((s.graph.config.get("logging") or {}).get("s3") or {}).get("inCluster")
    if not in_cluster:
        for s3 in s3_configs:
            assert ".svc" not in s3["endpoint"], s3["endpoint"]
        return
    assert s3_configs
    for s3 in s3_configs:
        scheme = "http" if s3["insecure"] else "https"
        assert served(s, f"{scheme}://{s3['endpoint']}") == {"seaweedfs/s3"}
    # The gateway's identity file holds the keys Loki's Secret gives it.
    (store,) = [w for w in workloads(s) if w.labels.get("app.kubernetes.io/name") == "seaweedfs"]
    (c,) = store.containers()
    args = " ".join(c.get("command") or [])
    config_file = re.search(r"-s3\.config=(\S+)", args)
    assert config_file, "the gateway runs without an identity file: anyone could write"
    directory, _, key = config_file[1].rpartition("/")
    (mount,) = [m for m in c.get("volumeMounts") or [] if m["mountPath"] == directory]
    (volume,) = [v for v in store.spec["volumes"] if v["name"] == mount["name"]]
    identities = one(s, "Secret", store.namespace, volume["secret"]["secretName"])
    (identity,) = json.loads(identities["stringData"][key])["identities"]
    (creds,) = identity["credentials"]
    loki_secret = one(s, "Secret", logs.NAMESPACE, logs.S3_SECRET)["stringData"]
    (expected,) = {
        tuple(loki_secret[s3[k].strip("${}")] for k in ("access_key_id", "secret_access_key"))
        for s3 in s3_configs
    }
    assert (creds["accessKey"], creds["secretKey"]) == expected


def test_lokis_network_policy_selects_every_loki_pod_and_the_stores_only_its_own(s: Stack) -> None:
    policies = {o["metadata"]["name"]: o for o in of_kind(s, "NetworkPolicy", logs.NAMESPACE)}
    loki_policy = policies[logs.NETWORK_POLICY]["spec"]["podSelector"]
    for w, _, _ in _loki_configs(s):
        assert label_selector_matches(loki_policy, w.labels), w.name
    if "seaweedfs-ingress" in policies:
        selector = policies["seaweedfs-ingress"]["spec"]["podSelector"]
        chosen = pod_selected(s, logs.NAMESPACE, selector)
        assert [w.obj["metadata"]["name"] for w in chosen] == ["seaweedfs-all-in-one"]
        # What the S3 port admits are Loki's pods, all of them.
        (s3_rule,) = [
            r
            for r in policies["seaweedfs-ingress"]["spec"]["ingress"]
            if 8333 in [p["port"] for p in r["ports"]]
        ]
        (peer,) = s3_rule["from"]
        for w, _, _ in _loki_configs(s):
            assert label_selector_matches(peer["podSelector"], w.labels), w.name


def _jaeger(s: Stack) -> tuple[Workload, dict[str, Any], dict[str, Any]]:
    """Jaeger's workload, container and the user config it mounts."""
    (w,) = [w for w in workloads(s) if w.obj["metadata"]["name"] == "jaeger"]
    (c,) = [c for c in w.containers() if "/etc/jaeger/user-config.yaml" in str(c.get("args"))]
    config = yaml.safe_load(mounted_config(s, w, c, "user-config.yaml") or "{}")
    return w, c, config


def _store(config: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """(kind, settings) of Jaeger's one trace backend, the one its query and exporter use."""
    name = config["extensions"]["jaeger_query"]["storage"]["traces"]
    assert config["exporters"]["jaeger_storage_exporter"]["trace_storage"] == name
    ((kind, backend),) = config["extensions"]["jaeger_storage"]["backends"][name].items()
    return kind, backend


def test_jaeger_keeps_spans_in_the_store_the_stack_asks_for(s: Stack) -> None:
    _, _, config = _jaeger(s)
    kind, _ = _store(config)
    assert kind == (s.graph.config.get("tracing") or {}).get("storage", "memory")


def test_jaeger_reads_every_credential_its_config_names_from_a_secret_that_exists(
    s: Stack,
) -> None:
    w, c, config = _jaeger(s)
    wanted = set(re.findall(r"\$\{env:([A-Za-z0-9_]+)\}", yaml.safe_dump(config)))
    missing = wanted - _env_sources(s, w, c)
    assert not missing, f"{w.name}: the config expands {missing}, which nothing provides"
    # And the config itself (a ConfigMap) holds no password.
    _, backend = _store(config)
    basic = (backend.get("auth") or backend.get("connection", {}).get("auth") or {}).get(
        "basic"
    ) or {}
    assert "password" not in basic or basic["password"].startswith("${env:"), basic


def test_an_in_cluster_opensearch_is_what_jaeger_writes_to_and_only_its_clients_reach(
    s: Stack,
) -> None:
    tracing = s.graph.config.get("tracing") or {}
    _, _, config = _jaeger(s)
    kind, backend = _store(config)
    if not (tracing.get("store") or {}).get("inCluster"):
        for url in backend.get("server_urls") or []:
            assert ".svc" not in url, url
        return
    assert kind == "opensearch"
    for url in backend["server_urls"]:
        assert served(s, url) == {"opensearch/http"}
    (policy,) = of_kind(s, "NetworkPolicy", "tracing-store")
    (store,) = pod_selected(s, "tracing-store", policy["spec"]["podSelector"])
    assert store.obj["kind"] == "StatefulSet"
    (rule,) = policy["spec"]["ingress"]
    assert [p["port"] for p in rule["ports"]] == [9200]
    clients = [
        w
        for w in workloads(s)
        if any(
            label_selector_matches(peer["podSelector"], w.labels)
            and peer["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"]
            == w.namespace
            for peer in rule["from"]
        )
    ]
    names = sorted(w.obj["metadata"]["name"] for w in clients)
    assert names == ["jaeger", "jaeger-es-index-cleaner"], names


def test_the_index_cleaner_deletes_what_jaeger_writes_after_the_span_ttl(s: Stack) -> None:
    tracing = s.graph.config.get("tracing") or {}
    cleaners = [w for w in workloads(s) if w.obj["metadata"]["name"] == "jaeger-es-index-cleaner"]
    _, jaeger_c, config = _jaeger(s)
    kind, backend = _store(config)
    if kind not in ("opensearch", "elasticsearch"):
        assert not cleaners
        return
    (cleaner,) = cleaners
    assert cleaner.obj["kind"] == "CronJob"
    (c,) = cleaner.containers()
    days, url = c["args"]
    assert url in backend["server_urls"]
    assert int(days) * 24 == int(tracing["spanTtl"].rstrip("h"))
    assert backend["max_span_age"] == tracing["spanTtl"]
    env = {e["name"]: e for e in c.get("env") or []}
    assert env["INDEX_PREFIX"]["value"] == backend["indices"]["index_prefix"]
    if "auth" in backend:
        assert env["ES_USERNAME"]["value"] == backend["auth"]["basic"]["username"]
        jaeger_env = {e["name"]: e for e in jaeger_c.get("env") or []}
        password_env = backend["auth"]["basic"]["password"][len("${env:") : -1]
        # The same Secret key Jaeger reads, and it exists.
        ref = env["ES_PASSWORD"]["valueFrom"]["secretKeyRef"]
        assert ref == jaeger_env[password_env]["valueFrom"]["secretKeyRef"]
        assert ref["key"] in _secret_keys(s, cleaner.namespace, ref["name"])
    if url.startswith("https://"):
        assert env["ES_TLS_ENABLED"]["value"] == "true"


def test_jaeger_scales_out_in_prod_once_its_store_is_shared(s: Stack) -> None:
    jaeger, _, config = _jaeger(s)
    kind, _ = _store(config)
    replicas = jaeger.obj["spec"].get("replicas", 1)
    strategy = (jaeger.obj["spec"].get("strategy") or {}).get("type")
    if kind in ("memory", "badger"):
        assert replicas == 1
    elif s.name == "prod":
        assert replicas >= 2 and strategy == "RollingUpdate", (replicas, strategy)
