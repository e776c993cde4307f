"""Exposure modes: every mode yields the four URLs, pointing at the right Service and port."""

from __future__ import annotations

from typing import Any

import pytest

from components import exposure
from tests.graph import Graph, run_program

INGRESS = {"mode": "ingress", "domain": "mesh.example.com", "clusterIssuer": "letsencrypt"}
MODES: dict[str, dict[str, Any]] = {
    "port-forward": {"exposure": {"mode": "port-forward"}},
    "ingress": {"exposure": INGRESS},
    "nodePort": {"exposure": {"mode": "nodePort"}},
    "loadBalancer": {"profile": "prod", "exposure": {"mode": "loadBalancer"}},
}
FOUR = {"dashboard", "grafana", "jaeger", "app"}


@pytest.fixture(scope="module")
def modes() -> dict[str, Graph]:
    out = {}
    for mode, overrides in MODES.items():
        graph = run_program("dev", overrides)
        assert graph.error is None, graph.error
        out[mode] = graph
    return out


@pytest.mark.parametrize("mode", list(MODES))
def test_each_mode_outputs_a_url_for_all_four_targets(modes: dict[str, Graph], mode: str) -> None:
    urls = modes[mode].outputs["urls"]
    assert set(urls) == FOUR
    assert all(url.startswith(("http://", "https://")) for url in urls.values()), urls


def test_port_forward_commands_target_the_service_and_port(modes: dict[str, Graph]) -> None:
    commands = modes["port-forward"].outputs["portForwardCommands"]
    urls = modes["port-forward"].outputs["urls"]
    for key, t in exposure.TARGETS.items():
        assert commands[key] == (
            f"kubectl -n {t.namespace} port-forward svc/{t.service} {t.local_port}:{t.port}"
        )
        assert urls[key] == f"http://localhost:{t.local_port}"
    assert modes["port-forward"].of_type("kubernetes:networking.k8s.io/v1:Ingress") == []


def test_ingress_routes_each_host_to_the_service_and_port(modes: dict[str, Graph]) -> None:
    ingresses = modes["ingress"].of_type("kubernetes:networking.k8s.io/v1:Ingress")
    assert len(ingresses) == 4
    by_host = {}
    for ing in ingresses:
        rule = ing.inputs["spec"]["rules"][0]
        backend = rule["http"]["paths"][0]["backend"]["service"]
        by_host[rule["host"]] = (
            ing.inputs["metadata"]["namespace"],
            backend["name"],
            backend["port"]["number"],
        )
        assert ing.inputs["metadata"]["annotations"]["cert-manager.io/cluster-issuer"]
        assert ing.inputs["spec"]["tls"][0]["hosts"] == [rule["host"]]
    for key, t in exposure.TARGETS.items():
        assert by_host[f"{t.host_prefix}.mesh.example.com"] == (t.namespace, t.service, t.port)
        assert modes["ingress"].outputs["urls"][key] == f"https://{t.host_prefix}.mesh.example.com"


def test_ingress_host_passes_the_dashboard_host_check(modes: dict[str, Graph]) -> None:
    import re

    values = modes["ingress"].charts()["linkerd-viz"].inputs["values"]
    assert re.match(values["dashboard"]["enforcedHostRegexp"], "linkerd.mesh.example.com")


def test_grafana_knows_its_public_url_and_viz_links_to_it(modes: dict[str, Graph]) -> None:
    charts = modes["ingress"].charts()
    assert charts["linkerd-viz"].inputs["values"]["grafana"]["externalUrl"] == (
        "https://grafana.mesh.example.com"
    )


@pytest.mark.parametrize("mode", ["nodePort", "loadBalancer"])
def test_service_modes_select_the_chart_pods_on_the_target_port(
    modes: dict[str, Graph], mode: str
) -> None:
    services = [
        s
        for s in modes[mode].of_type("kubernetes:core/v1:Service")
        if s.inputs["metadata"]["name"].startswith("meshstack-")
    ]
    assert len(services) == 4
    for svc in services:
        key = svc.inputs["metadata"]["name"].removeprefix("meshstack-")
        t = exposure.TARGETS[key]
        spec = svc.inputs["spec"]
        assert spec["selector"] == t.selector
        assert spec["ports"][0]["targetPort"] == t.target_port
        assert spec["type"] == ("NodePort" if mode == "nodePort" else "LoadBalancer")
        if mode == "nodePort":
            assert spec["ports"][0]["nodePort"] == t.node_port
            assert modes[mode].outputs["urls"][key] == f"http://localhost:{t.node_port}"


def test_load_balancer_urls_come_from_the_service_status(modes: dict[str, Graph]) -> None:
    urls = modes["loadBalancer"].outputs["urls"]
    for key, t in exposure.TARGETS.items():
        assert urls[key] == f"http://203.0.113.10:{t.port}"


@pytest.mark.parametrize("mode", ["ingress", "nodePort"])
def test_exposure_waits_for_the_target_namespace_but_not_the_charts_in_it(
    modes: dict[str, Graph], mode: str
) -> None:
    g = modes[mode]
    exposed = [
        r
        for r in g.resources
        if r.type in ("kubernetes:networking.k8s.io/v1:Ingress", "kubernetes:core/v1:Service")
        and r.inputs["metadata"]["name"].startswith("meshstack-")
    ]
    assert len(exposed) == 4
    namespaces = {
        n.inputs["metadata"]["name"]: n for n in g.of_type("kubernetes:core/v1:Namespace")
    }
    for res in exposed:
        assert g.waits_for(res, namespaces[res.inputs["metadata"]["namespace"]]), res
        own = [
            c
            for c in g.of_type("kubernetes:helm.sh/v4:Chart")
            # A chart of cluster-scoped objects only (the Gateway API CRDs) has no namespace.
            if c.inputs.get("namespace") == res.inputs["metadata"]["namespace"]
        ]
        for chart in own:
            assert not g.waits_for(res, chart), f"{res.urn} waits for {chart.urn}"


def test_nodeports_match_the_kind_port_mappings() -> None:
    import yaml

    from tests.graph import ROOT

    kind = yaml.safe_load((ROOT / "kind.yaml").read_text())
    mapped = {m["containerPort"] for m in kind["nodes"][0]["extraPortMappings"]}
    assert mapped == {t.node_port for t in exposure.TARGETS.values()}
