"""Who can reach what, in what the pinned charts render: each client the stack wires to a backend
in a default-deny namespace is admitted by a policy on the port it arrives at, and Loki's
NetworkPolicy selects Loki's real pods, ports and clients, and nobody else.

Runs where the pinned charts are at hand, as the wiring suite (tests/charts.py).
"""

from __future__ import annotations

from typing import Any

import yaml

from components import onboarding, viz
from tests.charts import Stack
from tests.test_wiring import (
    Arrival,
    Workload,
    _admitted,
    _default_deny,
    arrive,
    datasources,
    label_selector_matches,
    linkerd_values,
    mounted_config,
    of_kind,
    rendered_arg,
    s,
    suite_marks,
    workloads,
)

pytestmark = suite_marks()
__all__ = ["s"]  # the wiring suite's variant fixture


def _workload(s: Stack, namespace: str, name: str) -> Workload:
    (w,) = [
        w for w in workloads(s) if w.namespace == namespace and w.obj["metadata"]["name"] == name
    ]
    return w


def _admits(s: Stack, authn: dict[str, Any], namespace: str, caller: Workload | None) -> bool:
    """Whether one authentication admits `caller` (None: any meshed client must be admitted)."""
    identities = authn.get("identities") or []
    if "*" in identities:
        return True
    if caller is None:
        return False
    domain = linkerd_values(s)["identityTrustDomain"]
    own = f"{caller.service_account}.{caller.namespace}.serviceaccount.identity.linkerd.{domain}"
    if own in identities or f"*.{caller.namespace}.serviceaccount.identity.linkerd.{domain}" in (
        identities
    ):
        return True
    refs = [authn] if authn.get("kind") == "ServiceAccount" else authn.get("identityRefs") or []
    return any(
        r.get("kind") == "ServiceAccount"
        and r["name"] == caller.service_account
        and (r.get("namespace") or namespace) == caller.namespace
        for r in refs
    )


def _refused(s: Stack, address: str, caller: Workload | None) -> list[str]:
    problems = []
    arrivals: list[Arrival] = arrive(s, address)
    for a in arrivals:
        if not _default_deny(s, a.workload.namespace):
            continue
        authns = _admitted(s, a.workload, a.port)
        if not any(_admits(s, authn, a.workload.namespace, caller) for authn in authns):
            who = caller.name if caller else "every meshed proxy"
            problems.append(f"{who} → {address} ({a.workload.name}:{a.port}): denied")
    return problems


def test_every_meshed_proxy_may_export_its_spans_to_the_collector(s: Stack) -> None:
    if not s.graph.config.get("enableTracing", True):
        return
    endpoint = linkerd_values(s)["proxy"]["tracing"]["collector"]["endpoint"]
    assert not _refused(s, endpoint, None)


def test_apps_told_the_opencensus_agent_may_send_to_it(s: Stack) -> None:
    problems = []
    for w in workloads(s):
        for c in w.containers():
            for e in c.get("env") or []:
                if e.get("name") == "OC_AGENT_HOST" and "value" in e:
                    problems += _refused(s, str(e["value"]), w)
    assert not problems, "\n".join(problems)


def test_the_collector_may_export_to_jaeger(s: Stack) -> None:
    if not s.graph.config.get("enableTracing", True):
        return
    w = _workload(s, "tracing", "otel-collector")
    config = yaml.safe_load(mounted_config(s, w, w.containers()[0], "relay") or "{}")
    problems = []
    for exporter in config["exporters"].values():
        problems += _refused(s, exporter["endpoint"], w)
    assert not problems, "\n".join(problems)


def test_grafana_and_vizs_dashboard_may_query_jaeger(s: Stack) -> None:
    if not s.graph.config.get("enableTracing", True):
        return
    problems = []
    jaeger = rendered_arg(s, "linkerd-viz", "web", "-jaeger-addr")
    assert jaeger
    problems += _refused(s, jaeger, _workload(s, "linkerd-viz", "web"))
    if s.graph.config.get("enableGrafana", True):
        problems += _refused(s, datasources(s)["jaeger"]["url"], _workload(s, "grafana", "grafana"))
    assert not problems, "\n".join(problems)


def test_nobody_else_in_the_stack_may_query_jaeger(s: Stack) -> None:
    exposure = s.graph.config["exposure"]
    if not s.graph.config.get("enableTracing", True) or exposure["mode"] in (
        "nodePort",
        "loadBalancer",
    ):
        # Published by a Service, Jaeger's UI admits any network, a mesh identity included.
        return
    allowed = {("linkerd-viz", "web"), ("grafana", "grafana")}
    if exposure["mode"] != "port-forward":
        # Sign-in is on by default when published: the UI's oauth2-proxy (components/auth.py).
        allowed.add(("tracing", "oauth2-proxy-jaeger"))
    # Whatever publishes the UI in front of it (an ingress controller, a gateway) may call it.
    publishers = {
        exposure.get("ingressNamespace", "ingress-nginx"),
        exposure.get("gatewayNamespace", "envoy-gateway-system"),
    }
    others = [
        w
        for w in workloads(s)
        if (w.namespace, w.service_account) not in allowed and w.namespace not in publishers
    ]
    admitted = [w.name for w in others if not _refused(s, "jaeger.tracing.svc:16686", w)]
    assert admitted == [], f"these may query Jaeger: {admitted}"


# --- Loki's NetworkPolicy --------------------------------------------------------------------


def _peer_matches(s: Stack, peer: dict[str, Any], policy_ns: str, w: Workload) -> bool:
    ns_selector = peer.get("namespaceSelector")
    if ns_selector is None:
        in_scope = w.namespace == policy_ns
    else:
        in_scope = label_selector_matches(ns_selector, {"kubernetes.io/metadata.name": w.namespace})
    return in_scope and label_selector_matches(peer.get("podSelector") or {}, w.labels)


def _allowed(s: Stack, policy: dict[str, Any], w: Workload, port: int) -> bool:
    return any(
        any(p.get("port") == port for p in rule.get("ports") or [])
        and any(_peer_matches(s, peer, policy["metadata"]["namespace"], w) for peer in rule["from"])
        for rule in policy["spec"]["ingress"]
    )


def test_lokis_network_policy_admits_alloy_and_grafana_on_http_and_only_loki_elsewhere(
    s: Stack,
) -> None:
    if not s.graph.config.get("enableLogging", True):
        return
    logging = s.graph.config.get("logging") or {}
    distributed = logging.get("mode") == "distributed"
    (policy,) = [
        p for p in of_kind(s, "NetworkPolicy", "logging") if p["metadata"]["name"] == "loki-ingress"
    ]
    lokis = [
        w
        for w in workloads(s)
        if w.namespace == "logging"
        and label_selector_matches(policy["spec"]["podSelector"], w.labels)
    ]
    # One single-binary StatefulSet, or in distributed mode a workload per component, every
    # one of them a Loki (the in-cluster store and the bucket Job have policies of their own).
    if distributed:
        assert len(lokis) >= 7, [w.name for w in lokis]
    else:
        assert [w.obj["kind"] for w in lokis] == ["StatefulSet"], [w.name for w in lokis]
    for w in lokis:
        assert w.labels.get("app.kubernetes.io/name") == "loki", w.name
    ports = {
        p["containerPort"]: p.get("name")
        for w in lokis
        for c in w.containers()
        for p in c.get("ports") or []
    }
    assert {p["port"] for r in policy["spec"]["ingress"] for p in r["ports"]} == set(ports)
    http = 3100
    clients = {w.name for w in workloads(s) if _allowed(s, policy, w, http)}
    want = {"DaemonSet logging/alloy"}
    if s.graph.config.get("enableGrafana", True):
        want.add("Deployment grafana/grafana")
    if distributed:
        # The query frontend proxies live tails to the queriers over HTTP.
        want |= {w.name for w in lokis}
    assert clients == want
    for port in set(ports) - {http}:
        assert {w.name for w in workloads(s) if _allowed(s, policy, w, port)} == {
            w.name for w in lokis
        }, port


# --- Prometheus readers ----------------------------------------------------------------------


def test_a_teams_prometheus_readers_are_authorized_on_the_server_guarding_vizs_prometheus(
    s: Stack,
) -> None:
    """`prometheusReaders` writes a policy on a Server the viz chart renders: it must guard the
    port the `prometheusUrl` output arrives at, or the readers' queries stay denied."""
    if s.graph.config.get("linkerd", {}).get("prometheusUrl"):
        return
    policy = onboarding.prometheus_readers_policy("team-a", ("dashboards",))
    (spec,) = policy["AuthorizationPolicy"].values()
    (server,) = [
        o
        for o in of_kind(s, "Server", viz.NAMESPACE)
        if o["metadata"]["name"] == spec["targetRef"]["name"]
    ]
    (a,) = arrive(s, s.graph.outputs["prometheusUrl"])
    assert label_selector_matches(server["spec"]["podSelector"], a.workload.labels)
    names = {p.get("name") for p in a.container.get("ports") or [] if p["containerPort"] == a.port}
    assert server["spec"]["port"] in names | {a.port}, (server["spec"]["port"], a.port)
