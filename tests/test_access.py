"""Who can reach what: the inbound policy of the tracing, grafana and logging namespaces, and the
query access a team gets to viz's Prometheus, as plain functions and in the program's graph."""

from __future__ import annotations

import json
from typing import Any

import pytest

from components import config as cfg
from components import grafana, onboarding, tracing, viz
from components import logging as logs
from tests.graph import Graph, run_program

POLICY = "kubernetes:policy.linkerd.io/v1alpha1:AuthorizationPolicy"
MESHTLS = "kubernetes:policy.linkerd.io/v1alpha1:MeshTLSAuthentication"
SERVER = "kubernetes:policy.linkerd.io/v1beta3:Server"
NETPOL = "kubernetes:networking.k8s.io/v1:NetworkPolicy"
NAMESPACE = "kubernetes:core/v1:Namespace"
ALL_NETWORKS = {"0.0.0.0/0", "::/0"}


def admitted(policy: onboarding.PolicySet, server_name: str) -> list[dict[str, Any]]:
    """The authentication specs (a ServiceAccount ref as itself) that may call `server_name`."""
    out = []
    for spec in policy["AuthorizationPolicy"].values():
        if spec["targetRef"]["name"] != server_name:
            continue
        for ref in spec["requiredAuthenticationRefs"]:
            out.append(policy[ref["kind"]][ref["name"]] if ref["kind"] in policy else ref)
    return out


def service_accounts(authns: list[dict[str, Any]]) -> set[tuple[str | None, str]]:
    return {
        (ref.get("namespace"), ref["name"])
        for authn in authns
        for ref in authn.get("identityRefs") or []
    }


def every_policy_targets_a_server(policy: onboarding.PolicySet) -> None:
    for name, spec in policy["AuthorizationPolicy"].items():
        assert spec["targetRef"]["name"] in policy["Server"], name
        for ref in spec["requiredAuthenticationRefs"]:
            assert ref["name"] in policy[ref["kind"]], (name, ref)


# --- tracing ---------------------------------------------------------------------------------


@pytest.mark.parametrize("open_census", [True, False])
def test_the_collectors_receivers_admit_every_meshed_sender_and_only_meshed_ones(
    open_census: bool,
) -> None:
    p = tracing.policy(open_census)
    every_policy_targets_a_server(p)
    receivers = {
        name
        for name, s in p["Server"].items()
        if s["podSelector"]["matchLabels"] == tracing.COLLECTOR_PODS
    }
    want = {"collector-otlp", "collector-otlp-http"} | (
        {"collector-opencensus"} if open_census else set()
    )
    assert receivers == want
    for receiver in receivers:
        assert admitted(p, receiver) == [{"identities": ["*"]}], receiver


def test_jaeger_takes_spans_from_the_collector_only() -> None:
    p = tracing.policy(True)
    assert p["Server"]["jaeger-otlp"]["port"] == tracing.JAEGER_OTLP_GRPC_PORT
    assert service_accounts(admitted(p, "jaeger-otlp")) == {
        (None, tracing.COLLECTOR_SERVICE_ACCOUNT)
    }


def test_jaegers_query_api_answers_viz_and_the_query_clients_given() -> None:
    alone = tracing.policy(True)
    assert service_accounts(admitted(alone, "jaeger-query")) == {(viz.NAMESPACE, "web")}
    with_grafana = tracing.policy(True, ((grafana.SERVICE_ACCOUNT, grafana.NAMESPACE),))
    assert service_accounts(admitted(with_grafana, "jaeger-query")) == {
        (viz.NAMESPACE, "web"),
        (grafana.NAMESPACE, grafana.SERVICE_ACCOUNT),
    }


@pytest.mark.parametrize(
    ("build", "server"),
    [
        (lambda **kw: tracing.policy(True, **kw), "jaeger-query"),
        (lambda **kw: grafana.policy(**kw), "grafana-http"),
    ],
    ids=["jaeger", "grafana"],
)
def test_a_published_ui_admits_the_way_it_is_published_and_nothing_else(
    build: Any, server: str
) -> None:
    def networks(p: onboarding.PolicySet) -> set[str]:
        return {n["cidr"] for a in admitted(p, server) for n in a.get("networks") or []}

    def identities(p: onboarding.PolicySet) -> set[str]:
        return {i for a in admitted(p, server) for i in a.get("identities") or []}

    kept = build()
    assert not networks(kept) and not identities(kept)
    public = build(**{"public_query" if server == "jaeger-query" else "public": True})
    assert networks(public) == ALL_NETWORKS
    ingress = build(ingress_controller_namespace="ingress", cluster_domain="mesh.internal")
    assert identities(ingress) == {"*.ingress.serviceaccount.identity.linkerd.mesh.internal"}
    assert not networks(ingress)
    for p in (kept, public, ingress):
        every_policy_targets_a_server(p)


@pytest.mark.parametrize("build", [lambda: tracing.policy(True), grafana.policy])
def test_the_metrics_scraper_reads_every_proxy_of_the_namespace(build: Any) -> None:
    p = build()
    assert p["Server"]["linkerd-admin"]["podSelector"] == {"matchLabels": {}}
    assert service_accounts(admitted(p, "linkerd-admin")) == {(viz.NAMESPACE, "prometheus")}


# --- Loki ------------------------------------------------------------------------------------


def _rule(spec: dict[str, Any], port: int) -> dict[str, Any]:
    (rule,) = [r for r in spec["ingress"] if any(p["port"] == port for p in r["ports"])]
    return rule


def test_lokis_http_port_takes_pushes_from_alloy_and_queries_from_the_clients_given() -> None:
    spec = logs.network_policy(((grafana.NAMESPACE, grafana.PODS),))
    assert spec["podSelector"] == {"matchLabels": logs.LOKI_PODS}
    assert spec["policyTypes"] == ["Ingress"]
    http = _rule(spec, logs.LOKI_HTTP_PORT)
    assert http["from"] == [
        {"podSelector": {"matchLabels": logs.ALLOY_PODS}},
        {
            "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "grafana"}},
            "podSelector": {"matchLabels": grafana.PODS},
        },
    ]
    assert [p["port"] for p in http["ports"]] == [logs.LOKI_HTTP_PORT]
    alone = _rule(logs.network_policy(), logs.LOKI_HTTP_PORT)
    assert alone["from"] == [{"podSelector": {"matchLabels": logs.ALLOY_PODS}}]


def test_lokis_grpc_and_memberlist_ports_answer_loki_only() -> None:
    spec = logs.network_policy(((grafana.NAMESPACE, grafana.PODS),))
    for port in (logs.LOKI_GRPC_PORT, logs.LOKI_MEMBERLIST_PORT):
        assert _rule(spec, port)["from"] == [{"podSelector": {"matchLabels": logs.LOKI_PODS}}]
    ports = {(p["protocol"], p["port"]) for r in spec["ingress"] for p in r["ports"]}
    assert ("UDP", logs.LOKI_MEMBERLIST_PORT) in ports


# --- Prometheus readers ----------------------------------------------------------------------


def test_a_teams_prometheus_readers_are_authorized_on_vizs_prometheus_server() -> None:
    p = onboarding.prometheus_readers_policy("team-a", ("dashboards", "reports"))
    every_authn = p["MeshTLSAuthentication"]["team-a-prometheus-readers"]
    assert every_authn["identityRefs"] == [
        {"kind": "ServiceAccount", "name": "dashboards", "namespace": "team-a"},
        {"kind": "ServiceAccount", "name": "reports", "namespace": "team-a"},
    ]
    (spec,) = p["AuthorizationPolicy"].values()
    assert spec["targetRef"]["name"] == viz.PROMETHEUS_SERVER
    assert onboarding.prometheus_readers_policy("team-a", ()) == onboarding.empty_policy()


def _parse(teams: list[Any], **linkerd: Any) -> cfg.Settings:
    raw = {"onboarding": {"namespaces": teams}, "linkerd": linkerd}
    return cfg.parse_settings({k: json.dumps(v) for k, v in raw.items()}, stack="test")


def test_prometheus_readers_are_read_from_the_onboarding_entry() -> None:
    s = _parse([{"name": "team-a", "prometheusReaders": ["dashboards"]}, "team-b"])
    assert [t.prometheus_readers for t in s.teams] == [("dashboards",), ()]


@pytest.mark.parametrize(
    ("readers", "message"),
    [
        (
            "dashboards",
            'onboarding.namespaces[0].prometheusReaders: got "dashboards"; expected a list',
        ),
        (["Dashboards"], 'onboarding.namespaces[0].prometheusReaders[0]: got "Dashboards"'),
        (["team-a/x"], "without the namespace"),
        (["a", "a"], "listed twice"),
    ],
)
def test_bad_prometheus_readers_are_refused_naming_the_key(readers: Any, message: str) -> None:
    with pytest.raises(cfg.ConfigError) as error:
        _parse([{"name": "team-a", "prometheusReaders": readers}])
    assert message in str(error.value)


def test_prometheus_readers_are_refused_with_an_external_prometheus() -> None:
    with pytest.raises(cfg.ConfigError) as error:
        _parse(
            [{"name": "team-a", "prometheusReaders": ["dashboards"]}],
            prometheusUrl="https://prometheus.example.org",
            prometheusScraper="monitoring/prometheus",
        )
    assert "onboarding.namespaces[0].prometheusReaders" in str(error.value)
    assert "linkerd.prometheusUrl" in str(error.value)


# --- In the program's graph ------------------------------------------------------------------


def _graph(stack: str, overrides: dict[str, Any] | None = None) -> Graph:
    graph = run_program(stack, overrides)
    if graph.error is not None:
        raise graph.error
    return graph


def _in(graph: Graph, type_: str, namespace: str) -> dict[str, dict[str, Any]]:
    return {
        r.inputs["metadata"]["name"]: r.inputs["spec"]
        for r in graph.of_type(type_)
        if r.inputs["metadata"].get("namespace") == namespace
    }


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_tracing_and_grafana_deny_by_default_and_carry_their_policy(stack: str) -> None:
    graph = _graph(stack)
    for ns in graph.of_type(NAMESPACE):
        meta = ns.inputs["metadata"]
        if meta["name"] in (tracing.NAMESPACE, grafana.NAMESPACE):
            annotations = meta.get("annotations") or {}
            assert annotations.get("config.linkerd.io/default-inbound-policy") == "deny", ns.urn
    assert set(_in(graph, SERVER, tracing.NAMESPACE)) >= {"collector-otlp", "jaeger-query"}
    assert set(_in(graph, SERVER, grafana.NAMESPACE)) == {"grafana-http", "linkerd-admin"}
    # Grafana is on in both stacks: its Jaeger datasource is let in.
    refs = _in(graph, MESHTLS, tracing.NAMESPACE)["query-clients"]["identityRefs"]
    assert {"kind": "ServiceAccount", "name": "grafana", "namespace": "grafana"} in refs


def test_the_charts_wait_for_their_namespaces_policy() -> None:
    graph = _graph("dev")
    for release in ("jaeger", "otel-collector", "grafana"):
        chart = graph.charts()[release]
        server = next(
            r
            for r in graph.of_type(SERVER)
            if r.inputs["metadata"]["namespace"] == chart.inputs["namespace"]
        )
        assert graph.waits_for(chart, server), f"{chart.urn} starts before its policy exists"


def test_without_grafana_nobody_but_viz_queries_jaeger_and_loki_takes_only_alloy() -> None:
    graph = _graph("dev", {"enableGrafana": False})
    refs = _in(graph, MESHTLS, tracing.NAMESPACE)["query-clients"]["identityRefs"]
    assert refs == [{"kind": "ServiceAccount", "name": "web", "namespace": viz.NAMESPACE}]
    spec = _in(graph, NETPOL, logs.NAMESPACE)[logs.NETWORK_POLICY]
    assert _rule(spec, logs.LOKI_HTTP_PORT)["from"] == [
        {"podSelector": {"matchLabels": logs.ALLOY_PODS}}
    ]


def test_loki_is_closed_by_a_network_policy_before_it_starts() -> None:
    graph = _graph("prod")
    netpol = next(r for r in graph.of_type(NETPOL))
    assert netpol.inputs["spec"] == logs.network_policy(((grafana.NAMESPACE, grafana.PODS),))
    assert graph.waits_for(graph.charts()["loki"], netpol)


def test_a_teams_readers_get_an_authorization_in_viz_after_its_server_exists() -> None:
    graph = _graph(
        "dev", {"onboarding": {"namespaces": [{"name": "team-a", "prometheusReaders": ["dash"]}]}}
    )
    policies = _in(graph, POLICY, viz.NAMESPACE)
    assert policies["team-a-prometheus-readers"]["targetRef"]["name"] == viz.PROMETHEUS_SERVER
    res = next(
        r
        for r in graph.of_type(POLICY)
        if r.inputs["metadata"]["name"] == "team-a-prometheus-readers"
    )
    assert graph.waits_for(res, graph.charts()["linkerd-viz"])
    assert graph.outputs["prometheusUrl"].startswith("http://prometheus.linkerd-viz.svc.")


# --- README: Who can reach what --------------------------------------------------------------

# The stacks the table covers: both stack files, and dev published through NodePort Services.
TABLE_GRAPHS: tuple[tuple[str, dict[str, Any]], ...] = (
    ("dev", {}),
    ("prod", {}),
    ("dev", {"exposure": {"mode": "nodePort"}}),
    # Loki distributed on the in-cluster store: Loki's pods call each other's HTTP port, and
    # SeaweedFS gets its own NetworkPolicy.
    ("dev", {"logging": {"storage": "s3", "mode": "distributed", "s3": {"inCluster": True}}}),
)
ANY_MESHED, ANY_NETWORK = "any meshed client", "any network"


def _port(value: Any) -> str:
    """A port as written: a name, or a number (the wire gives numbers as floats)."""
    return str(int(value)) if isinstance(value, float) else str(value)


def _clients_of(authn: dict[str, Any], kind: str, namespace: str) -> set[str]:
    """What an authentication admits, as the table writes it: `namespace/serviceaccount`,
    `namespace/*` for every identity of a namespace, or a phrase."""
    if kind == "ServiceAccount":
        return {f"{authn.get('namespace') or namespace}/{authn['name']}"}
    if kind == "NetworkAuthentication":
        return {ANY_NETWORK}
    out = {
        f"{r.get('namespace') or namespace}/{r['name']}" for r in authn.get("identityRefs") or []
    }
    for identity in authn.get("identities") or []:
        out.add(ANY_MESHED if identity == "*" else f"{identity.split('.')[1]}/*")
    return out


def reach(graph: Graph) -> dict[tuple[str, str], tuple[str, set[str]]]:
    """(namespace, server or NetworkPolicy) → (port, clients) of the policy the program writes."""
    objs: dict[str, dict[tuple[str, str], dict[str, Any]]] = {}
    kinds = ("AuthorizationPolicy", "Server", "MeshTLSAuthentication", "NetworkAuthentication")
    for r in graph.kubernetes_objects():
        if not r.type.endswith((*kinds, "NetworkPolicy")):
            continue
        meta = r.inputs["metadata"]
        objs.setdefault(r.type.rpartition(":")[2], {})[(meta.get("namespace"), meta["name"])] = (
            r.inputs["spec"]
        )
    out: dict[tuple[str, str], tuple[str, set[str]]] = {}
    for (namespace, _), spec in objs.get("AuthorizationPolicy", {}).items():
        target = spec["targetRef"]["name"]
        server = objs.get("Server", {}).get((namespace, target))
        port = _port(server["port"]) if server else ""
        clients = out.setdefault((namespace, target), (port, set()))[1]
        for ref in spec["requiredAuthenticationRefs"]:
            kind = ref["kind"]
            authn = ref if kind == "ServiceAccount" else objs[kind][(namespace, ref["name"])]
            clients |= _clients_of(authn, kind, namespace)
    for (namespace, name), spec in objs.get("NetworkPolicy", {}).items():
        for rule in spec["ingress"]:
            port = "/".join(sorted({_port(p["port"]) for p in rule["ports"]}))
            peers = set()
            for peer in rule["from"]:
                ns_labels = (peer.get("namespaceSelector") or {}).get("matchLabels") or {}
                pods = peer["podSelector"]["matchLabels"]
                peer_ns = ns_labels.get("kubernetes.io/metadata.name", namespace)
                peers.add(f"{peer_ns}/{pods['app.kubernetes.io/name']}")
            out[(namespace, f"{name}:{port}")] = (port, peers)
    return out


TEAM = "<team>"


def derived_table() -> dict[tuple[str, str], tuple[str, set[str]]]:
    """The union over `TABLE_GRAPHS`, every onboarded namespace written as `<team>`."""
    table: dict[tuple[str, str], tuple[str, set[str]]] = {}
    for stack, overrides in TABLE_GRAPHS:
        graph = _graph(stack, overrides)
        teams = {
            t if isinstance(t, str) else t["name"] for t in graph.config["onboarding"]["namespaces"]
        }
        for (namespace, server), (port, clients) in reach(graph).items():
            key = (TEAM if namespace in teams else namespace, server)
            table.setdefault(key, (port, set()))[1].update(clients)
    return table


def test_the_readme_says_who_can_reach_what_as_the_stacks_policy_does() -> None:
    from tests.graph import ROOT
    from tests.markdown import table_in

    table = table_in(ROOT / "README.md", "Who can reach what")
    assert table.header == ("namespace", "server (port)", "allowed clients")
    written: dict[tuple[str, str], tuple[str, set[str]]] = {}
    for ns_cell, server_cell, clients_cell in table.rows:
        (namespace,) = ns_cell.code
        server, port = server_cell.code
        key = (
            namespace,
            f"{server}:{port}" if server_cell.text.startswith("NetworkPolicy") else server,
        )
        clients = set(clients_cell.code)
        clients |= {p for p in (ANY_MESHED, ANY_NETWORK) if p in clients_cell.text}
        assert key not in written, f"README Who can reach what: {key} twice"
        written[key] = (port, clients)
    derived = derived_table()
    assert set(written) == set(derived), set(written) ^ set(derived)
    for key, (port, clients) in derived.items():
        assert written[key][1] == clients, (key, written[key][1], clients)
        if port:
            assert written[key][0] == port, (key, written[key][0], port)
