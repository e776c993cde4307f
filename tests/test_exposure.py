"""Exposure modes: every mode yields the four URLs, pointing at the right Service and port."""

from __future__ import annotations

import urllib.parse
from typing import Any

import pytest
import yaml

from components import config as cfg
from components import exposure, gateway, tracing
from tests.graph import Graph, run_program

INGRESS = {
    "mode": "ingress",
    "ingressClass": "traefik",
    "domain": "mesh.example.com",
    "clusterIssuer": "letsencrypt",
}
# Envoy Gateway installed by the stack; and a GatewayClass the cluster already has.
GATEWAY = {
    "mode": "gateway",
    "gatewayClass": "meshstack",
    "installEnvoyGateway": True,
    "domain": "mesh.example.com",
    "clusterIssuer": "letsencrypt",
}
OWN_GATEWAY = {
    "mode": "gateway",
    "gatewayClass": "cilium",
    "gatewayNamespace": "edge",
    "domain": "mesh.example.com",
    "tlsSecret": "mesh-wildcard",
}
MODES: dict[str, dict[str, Any]] = {
    "port-forward": {"exposure": {"mode": "port-forward"}},
    "ingress": {"exposure": INGRESS},
    "gateway": {"exposure": GATEWAY},
    "own-gateway": {"exposure": OWN_GATEWAY},
    "nodePort": {"exposure": {"mode": "nodePort"}},
    "loadBalancer": {"profile": "prod", "exposure": {"mode": "loadBalancer"}},
}
FOUR = {"dashboard", "grafana", "jaeger", "app"}
# What each target is reached at with sign-in on (every mode here but port-forward): the
# dashboard and Jaeger through their oauth2-proxy.
SIGNED_IN = {
    key: exposure.behind_proxy(key, t) if key in exposure.PROTECTED else t
    for key, t in exposure.TARGETS.items()
}


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
        assert urls[key] == f"http://localhost:{t.local_port}{t.path}"
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
    for key, t in SIGNED_IN.items():
        assert by_host[f"{t.host_prefix}.mesh.example.com"] == (t.namespace, t.service, t.port)
        assert modes["ingress"].outputs["urls"][key] == (
            f"https://{t.host_prefix}.mesh.example.com{t.path}"
        )


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
        t = SIGNED_IN[key]
        spec = svc.inputs["spec"]
        assert spec["selector"] == t.selector
        assert spec["ports"][0]["targetPort"] == t.target_port
        assert spec["type"] == ("NodePort" if mode == "nodePort" else "LoadBalancer")
        if mode == "nodePort":
            assert spec["ports"][0]["nodePort"] == t.node_port
            assert modes[mode].outputs["urls"][key] == f"http://localhost:{t.node_port}{t.path}"


def test_jaeger_is_opened_at_the_base_path_it_serves_under_and_the_rest_at_the_root() -> None:
    assert exposure.TARGETS["jaeger"].path == tracing.JAEGER_BASE_PATH + "/"
    assert {t.path for k, t in exposure.TARGETS.items() if k != "jaeger"} == {""}


def test_load_balancer_urls_come_from_the_service_status(modes: dict[str, Graph]) -> None:
    urls = modes["loadBalancer"].outputs["urls"]
    for key, t in SIGNED_IN.items():
        assert urls[key] == f"http://203.0.113.10:{t.port}{t.path}"


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
    from tests.graph import ROOT

    kind = yaml.safe_load((ROOT / "kind.yaml").read_text())
    mapped = {m["containerPort"] for m in kind["nodes"][0]["extraPortMappings"]}
    assert mapped == {t.node_port for t in exposure.TARGETS.values()} | set(
        gateway.NODE_PORTS.values()
    )


def _kind_host_ports() -> dict[int, int]:
    from tests.graph import ROOT

    kind = yaml.safe_load((ROOT / "kind.yaml").read_text())
    return {m["containerPort"]: m["hostPort"] for m in kind["nodes"][0]["extraPortMappings"]}


@pytest.mark.parametrize("tls", [False, True])
def test_on_kind_the_gateway_urls_reach_envoy_through_the_hosts_own_port(tls: bool) -> None:
    """The URL users open (no port: the scheme's) → the kind host port → the node port the
    EnvoyProxy gives the Service Envoy Gateway makes → a port the Gateway really listens on
    with that scheme."""
    cfg = {
        "mode": "gateway",
        "gatewayClass": "meshstack",
        "installEnvoyGateway": True,
        "domain": "localhost",
        **({"tlsSecret": "localhost-tls"} if tls else {}),
    }
    g = run_program("dev", {"exposure": cfg})
    assert g.error is None, g.error
    (proxy,) = g.of_type("kubernetes:gateway.envoyproxy.io/v1alpha1:EnvoyProxy")
    service = proxy.inputs["spec"]["provider"]["kubernetes"]["envoyService"]
    assert service["type"] == "NodePort"
    assert service["patch"]["type"] == "StrategicMerge"
    node_ports = {p["port"]: p["nodePort"] for p in service["patch"]["value"]["spec"]["ports"]}
    (gw,) = g.of_type(GATEWAY_TYPE)
    listening = {(li["port"], li["protocol"]) for li in gw.inputs["spec"]["listeners"]}
    # The patch names only ports the Service has (one per listener port), or it adds a port.
    assert set(node_ports) == {port for port, _ in listening}
    host_ports = _kind_host_ports()
    for url in g.outputs["urls"].values():
        parts = urllib.parse.urlsplit(url)
        assert parts.port is None and parts.hostname.endswith(".localhost"), url
        default = {"http": 80, "https": 443}[parts.scheme]
        (listener_port,) = [
            port for port, node in node_ports.items() if host_ports.get(node) == default
        ]
        assert (listener_port, parts.scheme.upper()) in listening, url


# --- Gateway mode ----------------------------------------------------------------------------

HTTP_ROUTE = "kubernetes:gateway.networking.k8s.io/v1:HTTPRoute"
GATEWAY_TYPE = "kubernetes:gateway.networking.k8s.io/v1:Gateway"


@pytest.mark.parametrize("mode", ["gateway", "own-gateway"])
def test_gateway_mode_routes_each_host_through_its_own_listener_to_the_service_and_port(
    modes: dict[str, Graph], mode: str
) -> None:
    g = modes[mode]
    settings = MODES[mode]["exposure"]
    (gateway,) = g.of_type(GATEWAY_TYPE)
    gw_ns = settings.get("gatewayNamespace", "envoy-gateway-system")
    assert gateway.inputs["metadata"]["namespace"] == gw_ns
    assert gateway.inputs["spec"]["gatewayClassName"] == settings["gatewayClass"]
    listeners = {li["name"]: li for li in gateway.inputs["spec"]["listeners"]}
    every_route = g.of_type(HTTP_ROUTE)
    redirects = [r for r in every_route if r.inputs["metadata"]["name"].endswith("-redirect")]
    routes = [r for r in every_route if r not in redirects]
    # TLS: each host also has a plain-HTTP listener, whose one route redirects to https.
    assert len(routes) == 4 and set(listeners) == FOUR | {f"{k}-http" for k in FOUR}
    assert len(redirects) == 4
    for redirect in redirects:
        key = redirect.inputs["metadata"]["name"].removeprefix("meshstack-")
        key = key.removesuffix("-redirect")
        spec = redirect.inputs["spec"]
        (parent,) = spec["parentRefs"]
        plain_http = listeners[parent["sectionName"]]
        assert (plain_http["protocol"], plain_http["port"]) == ("HTTP", 80)
        assert plain_http["hostname"] == listeners[key]["hostname"] == spec["hostnames"][0]
        assert plain_http["allowedRoutes"] == listeners[key]["allowedRoutes"]
        assert redirect.inputs["metadata"]["namespace"] == SIGNED_IN[key].namespace
        (rule,) = spec["rules"]
        assert "backendRefs" not in rule
        assert rule["filters"] == [
            {
                "type": "RequestRedirect",
                "requestRedirect": {"scheme": "https", "port": 443, "statusCode": 301},
            }
        ]
        assert g.waits_for(redirect, gateway), redirect.urn
    for route in routes:
        key = route.inputs["metadata"]["name"].removeprefix("meshstack-")
        t = SIGNED_IN[key]
        host = f"{t.host_prefix}.mesh.example.com"
        spec = route.inputs["spec"]
        assert route.inputs["metadata"]["namespace"] == t.namespace
        assert spec["parentRefs"] == [
            {
                "group": "gateway.networking.k8s.io",
                "kind": "Gateway",
                "name": exposure.GATEWAY_NAME,
                "namespace": gw_ns,
                "sectionName": key,
            }
        ]
        assert spec["hostnames"] == [host]
        assert spec["rules"] == [{"backendRefs": [{"name": t.service, "port": t.port}]}]
        listener = listeners[key]
        assert (listener["hostname"], listener["port"], listener["protocol"]) == (
            host,
            443,
            "HTTPS",
        )
        # Only the target's namespace may attach a route to its host.
        assert listener["allowedRoutes"]["namespaces"]["selector"]["matchLabels"] == {
            "kubernetes.io/metadata.name": t.namespace
        }
        secret = settings.get("tlsSecret") or f"{t.host_prefix}-tls"
        assert listener["tls"]["certificateRefs"] == [{"kind": "Secret", "name": secret}]
        assert g.outputs["urls"][key] == f"https://{host}{t.path}"
        assert g.waits_for(route, gateway), route.urn
    annotations = gateway.inputs["metadata"].get("annotations") or {}
    assert annotations.get("cert-manager.io/cluster-issuer") == settings.get("clusterIssuer")


def test_the_stack_installs_envoy_gateway_with_one_owner_for_each_crd(
    modes: dict[str, Graph],
) -> None:
    charts = modes["gateway"].charts()
    eg = charts["eg"].inputs
    assert eg["chart"] == "oci://docker.io/envoyproxy/gateway-helm"
    assert eg["version"] == "v1.8.3"
    assert eg["values"]["crds"] == {"enabled": False}
    assert eg["namespace"] == "envoy-gateway-system"
    crds = charts["gateway-api-crds"].inputs
    assert crds["version"] == eg["version"]
    assert crds["values"]["crds"]["envoyGateway"] == {"enabled": True}
    assert crds["values"]["crds"]["gatewayAPI"] == {"enabled": True, "channel": "standard"}
    # The cluster's own implementation: no Envoy Gateway, and none of its CRDs.
    own = modes["own-gateway"].charts()
    assert "eg" not in own
    assert own["gateway-api-crds"].inputs["values"]["crds"]["envoyGateway"] == {"enabled": False}


def test_envoy_pods_are_meshed_and_dial_service_cluster_ips(modes: dict[str, Graph]) -> None:
    g = modes["gateway"]
    (proxy,) = g.of_type("kubernetes:gateway.envoyproxy.io/v1alpha1:EnvoyProxy")
    spec = proxy.inputs["spec"]
    pod = spec["provider"]["kubernetes"]["envoyDeployment"]["pod"]
    assert pod["annotations"] == {"linkerd.io/inject": "enabled"}
    assert spec["routingType"] == "Service"
    (gateway_class,) = g.of_type("kubernetes:gateway.networking.k8s.io/v1:GatewayClass")
    assert gateway_class.inputs["metadata"]["name"] == "meshstack"
    assert gateway_class.inputs["spec"] == {
        "controllerName": "gateway.envoyproxy.io/gatewayclass-controller",
        "parametersRef": {
            "group": "gateway.envoyproxy.io",
            "kind": "EnvoyProxy",
            "name": proxy.inputs["metadata"]["name"],
            "namespace": proxy.inputs["metadata"]["namespace"],
        },
    }
    # Envoy pods are created by the controller: the injector must be running by then.
    assert g.waits_for(proxy, g.charts()["linkerd-control-plane"])
    (gateway,) = g.of_type(GATEWAY_TYPE)
    assert g.waits_for(gateway, gateway_class)


def test_envoy_gateways_certificate_job_runs_as_a_plain_resource_before_the_controller(
    modes: dict[str, Graph],
) -> None:
    """The chart ships it as a Helm hook, which Pulumi's v4 Chart drops."""
    g = modes["gateway"]
    (job,) = [j for j in g.of_type("kubernetes:batch/v1:Job") if "certgen" in j.name]
    container = job.inputs["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == "docker.io/envoyproxy/gateway:v1.8.3"
    assert container["command"] == ["envoy-gateway", "certgen"]
    assert "ttlSecondsAfterFinished" not in job.inputs["spec"]
    assert g.waits_for(g.charts()["eg"], job)
    # Hooks off in the chart too, so nothing relies on the webhook a hook would patch.
    assert g.charts()["eg"].inputs["values"]["topologyInjector"] == {"enabled": False}


def test_the_uis_admit_the_envoy_proxies_identity(modes: dict[str, Graph]) -> None:
    from tests.graph import strings

    g = modes["gateway"]
    identity = "*.envoy-gateway-system.serviceaccount.identity.linkerd.cluster.local"
    authns = g.of_type("kubernetes:policy.linkerd.io/v1alpha1:MeshTLSAuthentication")
    admitting = {a.inputs["metadata"]["namespace"] for a in authns if identity in strings(a.inputs)}
    assert exposure.TARGETS["app"].namespace in admitting


def test_the_dashboard_admits_the_gateway_host(modes: dict[str, Graph]) -> None:
    import re

    values = modes["gateway"].charts()["linkerd-viz"].inputs["values"]
    assert re.match(values["dashboard"]["enforcedHostRegexp"], "linkerd.mesh.example.com:443")


def test_prod_reaches_the_uis_through_the_envoy_gateway_it_installs() -> None:
    g = run_program("prod")
    assert g.error is None, g.error
    assert "eg" in g.charts()
    # One route per URL, and (TLS) one redirect from http per URL.
    assert len(g.of_type(HTTP_ROUTE)) == 2 * len(g.outputs["urls"]) > 0
    assert g.outputs["urls"]["dashboard"] == "https://linkerd.mesh.example.com"
    (proxy,) = g.of_type("kubernetes:gateway.envoyproxy.io/v1alpha1:EnvoyProxy")
    assert proxy.inputs["spec"]["provider"]["kubernetes"]["envoyDeployment"]["replicas"] == 2


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"mode": "ingress", "domain": "mesh.example.com"}, "exposure.ingressClass: missing"),
        ({"mode": "gateway", "domain": "mesh.example.com"}, "exposure.gatewayClass: missing"),
        ({"mode": "gateway", "gatewayClass": "eg"}, "exposure.domain: missing"),
        ({"mode": "nodePort", "installEnvoyGateway": True}, "exposure.installEnvoyGateway"),
    ],
)
def test_exposure_settings_a_mode_needs_are_required(
    overrides: dict[str, Any], message: str
) -> None:
    g = run_program("dev", {"exposure": overrides})
    assert message in str(g.error), g.error


@pytest.mark.parametrize(("percent", "numerator"), [(100.0, 10_000), (1.0, 100), (0.05, 5), (0, 0)])
def test_the_edge_samples_the_configured_share_of_requests(percent: float, numerator: int) -> None:
    tracing = gateway.edge_tracing("otel-collector", "tracing", 4317, percent)
    assert tracing["samplingFraction"] == {"numerator": numerator, "denominator": 10_000}
    assert tracing["provider"]["backendRefs"] == [
        {"name": "otel-collector", "namespace": "tracing", "port": 4317}
    ]
    spec = gateway.envoy_proxy_spec("prod", tracing=tracing)
    assert spec["telemetry"] == {"tracing": tracing}
    assert "telemetry" not in gateway.envoy_proxy_spec("prod")


@pytest.mark.parametrize(("profile", "percent"), [("dev", 100.0), ("prod", 1.0)])
def test_edge_sampling_is_low_by_default_in_prod(profile: str, percent: float) -> None:
    raw = {"profile": profile, "kubeContext": "ctx"}
    assert cfg.parse_settings(raw, stack="t").edge_trace_sample_percent == percent


@pytest.mark.parametrize("bad", ["150", "-1", '"lots"', "true"])
def test_a_bad_edge_sample_rate_is_named(bad: str) -> None:
    with pytest.raises(cfg.ConfigError, match=r"meshstack:exposure\.traceSamplePercent: got"):
        cfg.parse_settings({"exposure": f'{{"traceSamplePercent": {bad}}}'}, stack="t")


def test_the_collector_namespace_grants_the_edge_its_span_export(modes: dict[str, Graph]) -> None:
    """Gateway API admits a reference into another namespace only with a ReferenceGrant there:
    the EnvoyProxy's span export names the collector's Service in the tracing namespace."""
    g = modes["gateway"]
    (proxy,) = g.of_type("kubernetes:gateway.envoyproxy.io/v1alpha1:EnvoyProxy")
    (ref,) = proxy.inputs["spec"]["telemetry"]["tracing"]["provider"]["backendRefs"]
    (grant,) = g.of_type("kubernetes:gateway.networking.k8s.io/v1:ReferenceGrant")
    assert grant.inputs["metadata"]["namespace"] == ref["namespace"]
    assert grant.inputs["spec"]["from"] == [
        {
            "group": "gateway.envoyproxy.io",
            "kind": "EnvoyProxy",
            "namespace": proxy.inputs["metadata"]["namespace"],
        }
    ]
    assert grant.inputs["spec"]["to"] == [{"group": "", "kind": "Service", "name": ref["name"]}]
    # The Service it names is the collector's, in the namespace the tracing component makes.
    collector = g.charts()["otel-collector"]
    assert collector.inputs["namespace"] == ref["namespace"]
    tracing_ns = g.get("kubernetes:core/v1:Namespace", "tracing-namespace")
    assert g.waits_for(grant, tracing_ns)


def test_without_tracing_the_edge_exports_nothing_and_nothing_is_granted() -> None:
    g = run_program("dev", {"exposure": GATEWAY, "enableTracing": False})
    assert g.error is None, g.error
    (proxy,) = g.of_type("kubernetes:gateway.envoyproxy.io/v1alpha1:EnvoyProxy")
    assert "telemetry" not in proxy.inputs["spec"]
    assert g.of_type("kubernetes:gateway.networking.k8s.io/v1:ReferenceGrant") == []
