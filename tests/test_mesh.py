"""Linkerd control plane and viz: values, ordering and no churn between runs."""

from __future__ import annotations

import re
import runpy
import urllib.parse
from typing import Any

import pulumi
import pytest

from components import common, mesh, versions, viz
from components.identity import WebhookCert
from tests.graph import ROOT, Graph, StatefulMocks, leaves, record, run_program, stack_config

CHART = "kubernetes:helm.sh/v4:Chart"


def certs(roles: list[str]) -> dict[str, WebhookCert]:
    return {
        r: WebhookCert(f"{r}-crt", f"{r}-key", f"{r}-ca")  # type: ignore[arg-type]
        for r in roles
    }


def cp_values(profile: str = "dev", tracing: mesh.TracingHookup | None = None) -> dict[str, Any]:
    return mesh.control_plane_values(
        profile,
        "cluster.local",
        "anchor",
        "pulumi",
        "crt",
        "key",
        certs(list(mesh.CONTROL_PLANE_WEBHOOKS)),
        tracing,
    )


def test_every_control_plane_webhook_gets_certificate_key_and_ca_bundle() -> None:
    values = cp_values()
    for role, (key, _) in mesh.CONTROL_PLANE_WEBHOOKS.items():
        assert values[key] == {
            "externalSecret": False,
            "crtPEM": f"{role}-crt",
            "keyPEM": f"{role}-key",
            "caBundle": f"{role}-ca",
        }


def test_heartbeat_schedule_is_fixed_so_renders_do_not_depend_on_the_clock() -> None:
    assert cp_values()["heartbeatSchedule"] == mesh.HEARTBEAT_SCHEDULE
    assert len(mesh.HEARTBEAT_SCHEDULE.split()) == 5


def test_prod_profile_applies_the_upstream_ha_values() -> None:
    values = cp_values("prod")
    assert values["controllerReplicas"] == 3
    assert values["enablePodAntiAffinity"] and values["enablePodDisruptionBudget"]
    assert values["webhookFailurePolicy"] == "Fail"
    assert "controllerReplicas" not in cp_values("dev")


def test_every_control_plane_container_has_requests_and_limits() -> None:
    values = cp_values()
    blocks = [values[k] for k in values if k.endswith("Resources")]
    blocks += [values["proxy"]["resources"], values["policyController"]["resources"]]
    assert len(blocks) == 7
    for block in blocks:
        for resource in ("cpu", "memory"):
            assert block[resource]["request"] and block[resource]["limit"], block


def test_proxy_tracing_points_at_the_collector_identity_when_tracing_is_on() -> None:
    hookup = mesh.TracingHookup("collector.tracing.svc.cluster.local:4317", "collector", "tracing")
    tracing = cp_values(tracing=hookup)["proxy"]["tracing"]
    assert tracing == {
        "enabled": True,
        "collector": {
            "endpoint": "collector.tracing.svc.cluster.local:4317",
            "meshIdentity": {"serviceAccountName": "collector", "namespace": "tracing"},
        },
    }
    assert "tracing" not in cp_values()["proxy"]


def test_external_issuer_uses_cert_manager_scheme_and_external_ca() -> None:
    values = mesh.control_plane_values(
        "dev",
        "cluster.local",
        "anchor",
        "external",
        None,
        None,
        certs(list(mesh.CONTROL_PLANE_WEBHOOKS)),
        None,
    )
    assert values["identity"] == {"externalCA": True, "issuer": {"scheme": "kubernetes.io/tls"}}


def test_linkerd_namespace_carries_the_labels_the_cli_would_set() -> None:
    labels, annotations = mesh.namespace_metadata()
    assert labels["linkerd.io/is-control-plane"] == "true"
    assert labels["config.linkerd.io/admission-webhooks"] == "disabled"
    assert labels["linkerd.io/control-plane-ns"] == "linkerd"
    assert labels["pod-security.kubernetes.io/enforce"] == "privileged"
    assert annotations == {"linkerd.io/inject": "disabled"}


# --- viz -------------------------------------------------------------------------------------


def viz_values(**kw: Any) -> dict[str, Any]:
    args: dict[str, Any] = dict(
        profile="dev",
        cluster_domain="cluster.local",
        certs=certs(list(viz.VIZ_WEBHOOKS)),
        host_regexp=viz.enforced_host_regexp("", False, "cluster.local"),
        prometheus_url="",
        grafana_external_url="",
        jaeger_url="",
    )
    args.update(kw)
    return viz.viz_values(**args)


def test_viz_never_relies_on_its_namespace_hook_job() -> None:
    assert viz_values()["createNamespaceMetadataJob"] is False
    labels, _ = viz.namespace_metadata("")
    assert labels["linkerd.io/extension"] == "viz"


def test_viz_tap_webhooks_get_fixed_certificates() -> None:
    values = viz_values()
    for role, (key, _) in viz.VIZ_WEBHOOKS.items():
        assert values[key]["crtPEM"] == f"{role}-crt"
        assert values[key]["caBundle"] == f"{role}-ca"


@pytest.mark.parametrize(
    ("host", "allow_ip", "accepted", "rejected"),
    [
        (
            "",
            False,
            ["localhost:8084", "web.linkerd-viz.svc:8084"],
            ["evil.example.com", "10.0.0.1"],
        ),
        (
            "linkerd.mesh.example.com",
            False,
            ["linkerd.mesh.example.com"],
            ["linkerdXmesh.example.com"],
        ),
        ("", True, ["203.0.113.10:8084"], ["attacker.example.com"]),
    ],
)
def test_dashboard_host_check_admits_exactly_the_exposed_host(
    host: str, allow_ip: bool, accepted: list[str], rejected: list[str]
) -> None:
    pattern = re.compile(viz.enforced_host_regexp(host, allow_ip, "cluster.local"))
    for h in accepted:
        assert pattern.match(h), h
    for h in rejected:
        assert not pattern.match(h), h


def test_a_load_balancer_url_with_a_host_name_is_one_the_dashboard_answers() -> None:
    """AWS load balancers get a DNS name, not an IP; the exported URL carries it, and viz's
    host check must admit it (loadBalancer is prod-only, so always behind sign-in)."""
    name = "a1b2c3-123456789.us-east-1.elb.amazonaws.com"
    engine = StatefulMocks()
    engine.load_balancer = {"hostname": name}
    # Its own memory: the shared one would hand this status to later runs' Services.
    engine.state = {}
    g = record(
        lambda: runpy.run_path(str(ROOT / "__main__.py"), run_name="__main__"),
        stack="prod",
        config=stack_config("prod", {"exposure": {"mode": "loadBalancer"}}),
        engine=engine,
    )
    assert g.error is None, g.error
    url = g.outputs["urls"]["dashboard"]
    host = urllib.parse.urlsplit(url).netloc
    assert host.startswith(f"{name}:"), url
    (chart,) = [c for c in g.charts().values() if c.inputs["chart"].endswith("linkerd-viz")]
    pattern = re.compile(chart.inputs["values"]["dashboard"]["enforcedHostRegexp"])
    assert pattern.match(host), (host, pattern.pattern)
    assert not pattern.match("attacker.example.com/x") and not pattern.match("a b")


@pytest.mark.parametrize("allow_names", [False, True])
def test_only_sign_in_lets_the_host_check_admit_names_it_does_not_know(allow_names: bool) -> None:
    pattern = re.compile(viz.enforced_host_regexp("", True, "cluster.local", allow_names))
    assert bool(pattern.match("lb-1.elb.amazonaws.com:80")) is allow_names
    assert pattern.match("203.0.113.10:80")


def test_external_prometheus_turns_off_the_bundled_one() -> None:
    values = viz_values(prometheus_url="http://prom.monitoring:9090")
    assert values["prometheus"]["enabled"] is False
    assert values["prometheusUrl"] == "http://prom.monitoring:9090"
    _, annotations = viz.namespace_metadata("http://prom.monitoring:9090")
    assert annotations["viz.linkerd.io/external-prometheus"] == "http://prom.monitoring:9090"


# --- The recorded program ---------------------------------------------------------------------


def chart(graph: Graph, release: str) -> Any:
    return graph.charts()[release]


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_charts_are_ordered_crds_then_control_plane_then_viz(
    graphs: dict[str, Graph], stack: str
) -> None:
    g = graphs[stack]
    crds, cp, vz = (chart(g, r) for r in ("linkerd-crds", "linkerd-control-plane", "linkerd-viz"))
    assert g.waits_for(cp, crds) and g.waits_for(vz, cp)
    gateway = chart(g, mesh.GATEWAY_API_RELEASE)
    assert g.waits_for(cp, gateway)
    # The two CRD sets are one stage: neither waits for the other.
    assert not g.waits_for(crds, gateway) and not g.waits_for(gateway, crds)


def test_charts_come_from_the_pinned_edge_repository(dev: Graph) -> None:
    # The release the README names; the chart suites check the folder really holds it.
    for release in ("linkerd-crds", "linkerd-control-plane", "linkerd-viz"):
        res = chart(dev, release)
        assert res.inputs["version"] == "2026.8.3"
        assert res.inputs["repositoryOpts"]["repo"] == "https://helm.linkerd.io/edge"


def test_chart_values_hold_private_keys_only_as_secrets(dev: Graph) -> None:
    for res in dev.of_type(CHART):
        for path, value, secret in leaves(res.raw_inputs):
            if isinstance(value, str) and "PRIVATE KEY" in value:
                assert secret, f"{res.urn}: {path}"
    cp = chart(dev, "linkerd-control-plane")
    keys = [p for p, v, s in leaves(cp.raw_inputs) if p.endswith("keyPEM") and s]
    assert len(keys) == 4  # issuer + three webhooks


@pytest.mark.parametrize(
    ("stack", "overrides"),
    [
        ("dev", {}),
        ("prod", {}),
        ("dev", {"tracing": {"storage": "badger"}, "exposure": {"mode": "nodePort"}}),
    ],
)
def test_two_runs_give_identical_chart_inputs(stack: str, overrides: dict[str, Any]) -> None:
    # The mock engine keeps state between runs as Pulumi does between two `up`s, so the
    # certificates repeat; anything random or clock-based in the program's values would not.
    first_run, second_run = run_program(stack, overrides), run_program(stack, overrides)
    assert first_run.error is None and second_run.error is None
    first = {r.name: r.raw_inputs for r in first_run.of_type(CHART)}
    second = {r.name: r.raw_inputs for r in second_run.of_type(CHART)}
    assert first == second
    assert len(first) >= 5


def test_viz_links_to_jaeger_by_host_and_port(dev: Graph) -> None:
    # viz's dashboard reverse-proxies to this address by setting the URL host, so a scheme
    # would break every trace link.
    import re

    jaeger = chart(dev, "linkerd-viz").inputs["values"]["jaegerUrl"]
    assert re.fullmatch(r"jaeger\.tracing\.svc\.cluster\.local:16686", jaeger), jaeger


def test_gateway_api_crds_can_be_left_to_the_cluster() -> None:
    g = run_program("dev", {"linkerd": {"installGatewayApiCrds": False}})
    assert g.error is None
    assert mesh.GATEWAY_API_RELEASE not in g.charts()
    assert chart(g, "linkerd-crds").inputs["values"]["installGatewayAPI"] is False


# --- Gateway API CRDs ------------------------------------------------------------------------


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_gateway_api_crds_come_from_the_pinned_chart_standard_channel_only(
    graphs: dict[str, Graph], stack: str
) -> None:
    g = graphs[stack]
    res = chart(g, mesh.GATEWAY_API_RELEASE)
    assert res.inputs["chart"] == "oci://docker.io/envoyproxy/gateway-crds-helm"
    assert res.inputs["version"] == versions.GATEWAY_API_CRDS.version == "v1.8.3"
    # An OCI chart is addressed by its reference; a repository would make Helm look for an
    # index.yaml the registry does not serve.
    assert "repositoryOpts" not in res.inputs
    # Envoy Gateway's own CRDs too where the stack installs it (prod), and nowhere else.
    installs_envoy_gateway = g.config["exposure"].get("installEnvoyGateway", False)
    assert res.inputs["values"] == {
        "crds": {
            "gatewayAPI": {"enabled": True, "channel": "standard"},
            "envoyGateway": {"enabled": installs_envoy_gateway},
        }
    }
    # One owner: linkerd-crds' bundled copy stays off, and nothing else installs the CRDs.
    assert chart(g, "linkerd-crds").inputs["values"]["installGatewayAPI"] is False
    assert not g.of_type("kubernetes:yaml/v2:ConfigFile")


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_gateway_api_crds_and_everything_the_chart_renders_are_kept_on_destroy(
    graphs: dict[str, Graph], stack: str
) -> None:
    res = chart(graphs[stack], mesh.GATEWAY_API_RELEASE)
    assert res.options["retainOnDelete"] is True
    # The option stops at the component; the transform carries it to every rendered object.
    assert res.options["transforms"] == 1


def test_the_retain_transform_keeps_a_child_and_changes_nothing_else() -> None:
    parent = pulumi.ResourceOptions(depends_on=[], ignore_changes=["spec"])
    props = {"metadata": {"name": "httproutes.gateway.networking.k8s.io"}}
    args = pulumi.ResourceTransformArgs(
        True, "kubernetes:apiextensions.k8s.io/v1:CustomResourceDefinition", "x", props, parent
    )
    result = common.retain_children(args)
    assert result.props is props
    assert result.opts.retain_on_delete is True
    assert result.opts.ignore_changes == ["spec"]


def test_stacks_that_applied_the_crds_from_a_configfile_update_them_in_place(dev: Graph) -> None:
    # Same resource name as the former `ConfigFile` (children are named `<name>:<object>` by
    # both), aliased from its type: the CRDs move to the chart instead of being replaced.
    res = chart(dev, mesh.GATEWAY_API_RELEASE)
    assert res.name == "linkerd-gateway-api-crds"
    assert res.options["aliases"] == [
        {"spec": {"type": "kubernetes:yaml/v2:ConfigFile", "parentUrn": ""}}
    ]
