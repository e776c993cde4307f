"""Grafana: datasources, dashboards, alerts, values and the Grafana component's resources."""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pulumi
import pulumi_kubernetes as k8s
import pytest

from components import config as cfg
from components import dashboards, identity, versions, viz
from components import grafana as gf
from components import logging as logs
from components.config import GrafanaSettings
from components.grafana import Grafana, GrafanaArgs
from tests.graph import Graph, Resource, leaves, record

CHART = "kubernetes:helm.sh/v4:Chart"
SECRET = "kubernetes:core/v1:Secret"
AUTHZ = "kubernetes:policy.linkerd.io/v1alpha1:AuthorizationPolicy"
PROFILES = ("dev", "prod")

PROMETHEUS = (
    f"http://{viz.PROMETHEUS_SERVICE}.{viz.NAMESPACE}.svc.cluster.local:{viz.PROMETHEUS_PORT}"
)
LOKI = logs.query_url("cluster.local")
JAEGER = "http://jaeger.tracing.svc.cluster.local:16686"
WEBHOOK = "https://hooks.example.com/services/T000/B000/very-secret-token"
ROOT_URL = "https://grafana.mesh.example.com"


def values(**overrides: Any) -> dict[str, Any]:
    args: dict[str, Any] = dict(
        profile="dev",
        settings=GrafanaSettings(),
        root_url=ROOT_URL,
        prometheus_url=PROMETHEUS,
        loki_url=LOKI,
        jaeger_url=JAEGER,
        webhook=False,
    )
    args.update(overrides)
    return gf.grafana_values(**args)


def by_uid(file: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {d["uid"]: d for d in file["datasources"]}


def strings(value: Any) -> Iterator[str]:
    if isinstance(value, dict):
        for v in value.values():
            yield from strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from strings(v)
    elif isinstance(value, str):
        yield value


def assert_sized(where: str, resources: dict[str, Any]) -> None:
    for part in ("requests", "limits"):
        for kind in ("cpu", "memory"):
            assert resources.get(part, {}).get(kind), f"{where}: no {part}.{kind}"


# --- Datasources -----------------------------------------------------------------------------


def test_datasource_urls_use_the_service_names_and_ports_the_charts_create() -> None:
    # Rendered with the stack's values: viz Service `prometheus` 9090 (viz prometheus.yaml) and
    # loki 18.11.0 Service `loki` 3100 in `logging`.
    file = gf.datasources(PROMETHEUS, LOKI, JAEGER)
    assert by_uid(file)[gf.PROMETHEUS_UID]["url"] == (
        "http://prometheus.linkerd-viz.svc.cluster.local:9090"
    )
    assert by_uid(file)[gf.LOKI_UID]["url"] == "http://loki.logging.svc.cluster.local:3100"


def test_grafana_pins_the_service_and_service_account_names_others_rely_on() -> None:
    # Rendered grafana 12.11.1: Service `grafana` 80 → 3000, ServiceAccount `grafana`.
    v = values()
    assert (gf.SERVICE, gf.SERVICE_PORT, gf.CONTAINER_PORT) == ("grafana", 80, 3000)
    assert v["fullnameOverride"] == gf.SERVICE
    assert v["service"] == {"port": gf.SERVICE_PORT, "targetPort": gf.CONTAINER_PORT}
    assert v["serviceAccount"]["name"] == gf.SERVICE_ACCOUNT == "grafana"
    assert gf.service_url("cluster.local") == "http://grafana.grafana.svc.cluster.local:80"


@pytest.mark.parametrize(
    ("loki", "jaeger", "uids"),
    [
        (None, None, {"prometheus"}),
        (LOKI, None, {"prometheus", "loki"}),
        (None, JAEGER, {"prometheus", "jaeger"}),
        (LOKI, JAEGER, {"prometheus", "loki", "jaeger"}),
    ],
)
def test_loki_and_jaeger_are_datasources_only_when_their_urls_are_given(
    loki: str | None, jaeger: str | None, uids: set[str]
) -> None:
    file = gf.datasources(PROMETHEUS, loki, jaeger)
    assert set(by_uid(file)) == uids
    assert [d["uid"] for d in file["datasources"] if d.get("isDefault")] == ["prometheus"]
    # Links only point at datasources that exist.
    linked = {
        link["datasourceUid"]
        for d in file["datasources"]
        for link in d["jsonData"].get("derivedFields", [])
    } | {
        d["jsonData"]["tracesToLogsV2"]["datasourceUid"]
        for d in file["datasources"]
        if "tracesToLogsV2" in d["jsonData"]
    }
    assert linked <= uids


@pytest.mark.parametrize(
    "line",
    [
        "level=info msg=vote traceID=4bf92f3577b34da6a3ce929d0e0e4736",
        '{"msg": "vote", "trace_id": "4bf92f3577b34da6a3ce929d0e0e4736"}',
        "trace_id: 4bf92f3577b34da6a3ce929d0e0e4736 handled",
    ],
)
def test_a_trace_id_in_a_log_line_becomes_a_link_to_the_jaeger_trace(line: str) -> None:
    [field] = by_uid(gf.datasources(PROMETHEUS, LOKI, JAEGER))["loki"]["jsonData"]["derivedFields"]
    match = re.search(field["matcherRegex"], line)
    assert match and match.group(1) == "4bf92f3577b34da6a3ce929d0e0e4736"
    assert field["datasourceUid"] == gf.JAEGER_UID
    # `$$` survives provisioning's env interpolation as a literal `$`.
    assert field["url"] == "$${__value.raw}"


def test_a_span_links_to_the_logs_of_its_pod_around_its_time() -> None:
    jaeger = by_uid(gf.datasources(PROMETHEUS, LOKI, JAEGER))["jaeger"]["jsonData"]
    link = jaeger["tracesToLogsV2"]
    assert link["datasourceUid"] == gf.LOKI_UID
    assert (link["spanStartTimeShift"], link["spanEndTimeShift"]) == ("-5m", "5m")
    # Mapped onto labels Alloy really sets on every stream.
    assert {t["value"] for t in link["tags"]} <= {logs.LABEL_NAMESPACE, logs.LABEL_POD}
    assert {t["key"] for t in link["tags"]} == {"k8s.namespace.name", "k8s.pod.name"}


# --- Values ----------------------------------------------------------------------------------


def test_grafana_values_are_the_same_on_every_call() -> None:
    settings = GrafanaSettings(persistence=True)
    assert values(settings=settings, webhook=True) == values(settings=settings, webhook=True)


def test_nothing_makes_the_chart_generate_a_value() -> None:
    v = values(settings=GrafanaSettings(persistence=True))
    # Without an existing Secret the chart makes a random password (lookup + randAlphaNum).
    assert v["admin"] == {
        "existingSecret": gf.ADMIN_SECRET,
        "userKey": gf.ADMIN_USER_KEY,
        "passwordKey": gf.ADMIN_PASSWORD_KEY,
    }
    assert "adminPassword" not in v
    assert v["imageRenderer"]["enabled"] is False  # else a random renderer token
    assert v["testFramework"]["enabled"] is False  # a Helm test hook
    assert v["persistence"]["lookupVolumeName"] is False  # else a `lookup` of the claim


def test_grafana_answers_at_the_root_url_users_open() -> None:
    assert values()["grafana.ini"]["server"]["root_url"] == ROOT_URL
    assert (
        values(root_url="http://localhost:3000")["grafana.ini"]["security"]["cookie_secure"]
        is False
    )


def test_grafana_does_not_phone_home() -> None:
    analytics = values()["grafana.ini"]["analytics"]
    assert analytics["reporting_enabled"] is False
    assert analytics["check_for_updates"] is False


@pytest.mark.parametrize("persistence", [False, True])
def test_persistence_follows_the_settings(persistence: bool) -> None:
    v = values(settings=GrafanaSettings(persistence=persistence))
    assert v["persistence"]["enabled"] is persistence
    assert v["persistence"]["type"] == "pvc"


@pytest.mark.parametrize(("persistence", "strategy"), [(True, "Recreate"), (False, None)])
def test_a_grafana_on_its_read_write_once_volume_is_replaced_not_rolled(
    persistence: bool, strategy: str | None
) -> None:
    # The chart's value (templates/deployment.yaml `.Values.deploymentStrategy`); without a
    # volume the chart's RollingUpdate keeps Grafana up through a rollout.
    v = values(settings=GrafanaSettings(persistence=persistence))
    assert (v.get("deploymentStrategy") or {}).get("type") == strategy


@pytest.mark.parametrize("profile", PROFILES)
def test_every_container_has_requests_and_limits(profile: str) -> None:
    # Rendered with persistence and grafana.com dashboards on, the pod has init containers
    # init-chown-data and download-dashboards besides grafana; every sidecar shares one key.
    v = values(profile=profile, settings=GrafanaSettings(persistence=True))
    assert_sized("grafana", v["resources"])
    assert_sized("sidecars", v["sidecar"]["resources"])
    assert_sized("init-chown-data", v["initChownData"]["resources"])
    assert_sized("download-dashboards", v["downloadDashboards"]["resources"])


def test_grafana_needs_no_kubernetes_api_access() -> None:
    v = values()
    assert v["rbac"]["create"] is False
    assert v["automountServiceAccountToken"] is False
    assert not any(v["sidecar"].get(s, {}).get("enabled") for s in ("dashboards", "datasources"))


# --- Dashboards ------------------------------------------------------------------------------


FAKE_CURL = """#!/bin/sh
# Answers the top-line dashboard only; every other fetch times out as with egress dropped.
out=""; url=""
while [ $# -gt 0 ]; do
  case "$1" in
    -o) out="$2"; shift 2 ;;
    --connect-timeout|--max-time) echo "$1 $2" >> "$CALLS"; shift 2 ;;
    -*) shift ;;
    *) url="$1"; shift ;;
  esac
done
case "$url" in
  */15474/revisions/4/download) echo '{"uid": "linkerd-top-line"}' > "$out" ;;
  *) echo partial > "$out"; exit 28 ;;
esac
"""


def test_grafana_com_extras_are_fetched_with_short_timeouts_and_never_fail_the_pod(
    tmp_path: Path,
) -> None:
    v = values(settings=GrafanaSettings(grafana_com_dashboards=True))
    # The chart's own downloader (60s per dashboard) is never used.
    assert "dashboards" not in v
    (init,) = v["extraInitContainers"]
    assert init["volumeMounts"] == [{"name": "storage", "mountPath": "/var/lib/grafana"}]
    script = init["command"][-1]
    assert "{{" not in script  # the chart runs extraInitContainers through tpl
    # Side by side: Grafana waits for the slowest fetch, not for their sum.
    fetches = [line for line in script.splitlines() if line.startswith("fetch ")]
    assert len(fetches) == len(gf.GRAFANA_COM_DASHBOARDS)
    assert all(line.endswith(" &") for line in fetches) and "\nwait\n" in script
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "curl").write_text(FAKE_CURL)
    (bin_dir / "curl").chmod(0o755)
    root = tmp_path / "grafana"
    env = {
        "PATH": f"{bin_dir}:/usr/bin:/bin",
        "CALLS": str(tmp_path / "calls"),
    }
    run = subprocess.run(
        ["/bin/sh", "-c", script.replace("/var/lib/grafana", str(root))],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert run.returncode == 0, run.stderr
    folder = root / "dashboards" / gf.GRAFANA_COM_PROVIDER
    assert sorted(p.name for p in folder.iterdir()) == ["top-line.json"]
    assert "grafana.com dashboard health skipped" in run.stderr
    calls = (tmp_path / "calls").read_text().split("\n")
    # Every one of the 18 fetches is bounded.
    assert calls.count(f"--max-time {gf.DOWNLOAD_MAX_TIME_S}") == len(gf.GRAFANA_COM_DASHBOARDS)
    assert gf.DOWNLOAD_CONNECT_TIMEOUT_S <= 5 and gf.DOWNLOAD_MAX_TIME_S <= 15
    # And the provider Grafana reads them from points at that folder.
    providers = {
        p["name"]: p for p in v["dashboardProviders"]["dashboardproviders.yaml"]["providers"]
    }
    assert providers[gf.GRAFANA_COM_PROVIDER]["options"]["path"] == (
        "/var/lib/grafana/dashboards/grafana-com"
    )


def test_without_grafana_com_nothing_is_downloaded_at_pod_start() -> None:
    v = values(settings=GrafanaSettings(grafana_com_dashboards=False))
    # Any `dashboards` value makes the chart add the download-dashboards init container.
    assert "dashboards" not in v
    assert "extraInitContainers" not in v
    assert "plugins" not in v
    assert v["grafana.ini"]["plugins"] == {"preinstall_disabled": True}
    assert "config.linkerd.io/skip-outbound-ports" not in v["podAnnotations"]


def test_the_linkerd_dashboards_are_generated_into_their_own_provider() -> None:
    v = values()
    assert v["dashboardsConfigMaps"][gf.LINKERD_PROVIDER] == gf.LINKERD_DASHBOARDS_CONFIGMAP
    data = gf.linkerd_configmap_data()
    assert set(data) == {"linkerd-top-line.json", "linkerd-workload.json", "linkerd-routes.json"}
    uids = {json.loads(text)["uid"] for text in data.values()}
    assert len(uids) == 3 and not any("${" in text for text in data.values())


def test_our_dashboard_comes_from_a_configmap_in_its_own_provider() -> None:
    v = values()
    assert v["dashboardsConfigMaps"][gf.OWN_PROVIDER] == gf.DASHBOARDS_CONFIGMAP
    providers = {
        p["name"]: p for p in v["dashboardProviders"]["dashboardproviders.yaml"]["providers"]
    }
    # The chart mounts a provider's ConfigMap at this path.
    assert providers[gf.OWN_PROVIDER]["options"]["path"] == "/var/lib/grafana/dashboards/meshstack"
    assert set(providers) == {gf.OWN_PROVIDER, gf.LINKERD_PROVIDER, gf.GRAFANA_COM_PROVIDER}


def golden() -> dict[str, Any]:
    return dashboards.golden_metrics_dashboard("prometheus", 0.95, 500)


def test_golden_metrics_show_success_rate_rps_and_latency_quantiles_per_deployment() -> None:
    panels = {p["title"]: p for p in golden()["panels"]}
    assert set(panels) == {"Success rate", "Requests per second", "Latency p50 / p95 / p99"}
    exprs = {title: [t["expr"] for t in p["targets"]] for title, p in panels.items()}
    assert "response_total" in exprs["Success rate"][0]
    assert 'classification="success"' in exprs["Success rate"][0]
    assert "request_total" in exprs["Requests per second"][0]
    latency = exprs["Latency p50 / p95 / p99"]
    assert [re.match(r"histogram_quantile\(([\d.]+),", e).group(1) for e in latency] == [  # type: ignore[union-attr]
        "0.5",
        "0.95",
        "0.99",
    ]
    assert all("response_latency_ms_bucket" in e for e in latency)
    for expr in (e for es in exprs.values() for e in es):
        assert "by (" in expr and "deployment" in expr, expr


def test_golden_metrics_query_the_provisioned_prometheus_only() -> None:
    dashboard = golden()
    refs = [p["datasource"] for p in dashboard["panels"]]
    refs += [t["datasource"] for p in dashboard["panels"] for t in p["targets"]]
    refs += [v["datasource"] for v in dashboard["templating"]["list"]]
    assert refs and all(r == {"type": "prometheus", "uid": "prometheus"} for r in refs)
    # No import-time inputs (`${DS_...}`): file provisioning would leave them unresolved.
    assert "__inputs" not in dashboard
    assert "${DS_" not in json.dumps(dashboard)


def test_golden_metrics_draw_the_alert_thresholds() -> None:
    panels = {p["id"]: p for p in golden()["panels"]}
    steps = lambda pid: panels[pid]["fieldConfig"]["defaults"]["thresholds"]["steps"]  # noqa: E731
    assert steps(dashboards.SUCCESS_RATE_PANEL)[1]["value"] == 0.95
    assert steps(dashboards.LATENCY_PANEL)[1]["value"] == 500


def test_the_dashboard_configmap_holds_valid_json_with_a_fixed_uid() -> None:
    data = gf.golden_metrics_configmap_data(GrafanaSettings())
    assert json.loads(data[dashboards.GOLDEN_METRICS_FILE])["uid"] == dashboards.GOLDEN_METRICS_UID


# --- Alerts ----------------------------------------------------------------------------------


def rules(threshold: float = 0.95, p99: int = 500) -> dict[str, dict[str, Any]]:
    file = dashboards.alert_rules("prometheus", threshold, p99)
    return {r["uid"]: r for group in file["groups"] for r in group["rules"]}


def condition(rule: dict[str, Any]) -> dict[str, Any]:
    step = next(d for d in rule["data"] if d["refId"] == rule["condition"])
    [cond] = step["model"]["conditions"]
    return dict(cond["evaluator"])


@pytest.mark.parametrize(("threshold", "p99"), [(0.95, 500), (0.99, 300), (0.5, 2000)])
def test_alerts_fire_below_the_success_rate_and_above_the_p99_from_settings(
    threshold: float, p99: int
) -> None:
    by_uid = rules(threshold, p99)
    success = by_uid[dashboards.SUCCESS_RATE_RULE_UID]
    latency = by_uid[dashboards.LATENCY_RULE_UID]
    assert condition(success) == {"type": "lt", "params": [threshold]}
    assert condition(latency) == {"type": "gt", "params": [p99]}
    query = lambda r: r["data"][0]["model"]["expr"]  # noqa: E731
    assert "response_total" in query(success) and "by (namespace, deployment)" in query(success)
    assert query(latency).startswith("histogram_quantile(0.99,")


def test_alert_rules_are_well_formed_for_provisioning() -> None:
    for uid, rule in rules().items():
        assert re.fullmatch(r"[A-Za-z0-9_-]{1,40}", uid), uid
        assert rule["data"][0]["datasourceUid"] == gf.PROMETHEUS_UID
        assert rule["dashboardUid"] == dashboards.GOLDEN_METRICS_UID
        assert rule["noDataState"] == "OK"


def test_alerting_files_come_through_the_chart_values() -> None:
    assert set(values()["alerting"]) == {"rules.yaml"}
    assert set(values(webhook=True)["alerting"]) == {
        "rules.yaml",
        "contactpoints.yaml",
        "policies.yaml",
    }


def test_the_webhook_url_is_read_from_a_secret_not_written_in_the_values() -> None:
    v = values(webhook=True)
    [point] = v["alerting"]["contactpoints.yaml"]["contactPoints"]
    [receiver] = point["receivers"]
    assert receiver["settings"]["url"] == "$__env{ALERT_WEBHOOK_URL}"
    assert v["envValueFrom"] == {
        "ALERT_WEBHOOK_URL": {"secretKeyRef": {"name": gf.WEBHOOK_SECRET, "key": "url"}}
    }
    [policy] = v["alerting"]["policies.yaml"]["policies"]
    assert policy["receiver"] == point["name"]


def test_grafana_templates_survive_helm_tpl() -> None:
    v = values(webhook=True)
    templated = [s for s in strings([v["alerting"], v["datasources"]]) if "{{" in s]
    assert templated, "the alert annotations hold Grafana templates"
    for s in templated:
        assert s.startswith("{{ `") and s.endswith("` }}") and s.count("`") == 2, s
    assert gf.helm_literal({"a": ["{{ $x }}", "plain"]}) == {"a": ["{{ `{{ $x }}` }}", "plain"]}
    with pytest.raises(ValueError, match="backquote"):
        gf.helm_literal("{{ `x` }}")


# --- Component -------------------------------------------------------------------------------


def stand_in(type_: str, name: str) -> pulumi.ComponentResource:
    """A chart-like component with one object: depending on a component means depending on
    the objects in it, so an empty one would be waited for by nothing."""
    component = pulumi.ComponentResource(type_, name)
    k8s.core.v1.ConfigMap(f"{name}-object", opts=pulumi.ResourceOptions(parent=component))
    return component


def build(**overrides: Any) -> Graph:
    def program() -> None:
        control_plane = stand_in("test:mesh:ControlPlane", "control-plane")
        viz_chart = stand_in("test:mesh:Viz", "viz-chart")
        args: dict[str, Any] = dict(
            profile="dev",
            settings=GrafanaSettings(),
            control_plane=control_plane,
            viz_chart=viz_chart,
            prometheus_url=pulumi.Output.from_input(PROMETHEUS),
            root_url=ROOT_URL,
            loki_url=pulumi.Output.from_input(LOKI),
            jaeger_url=pulumi.Output.from_input(JAEGER),
            alert_webhook_url=pulumi.Output.secret(WEBHOOK),
        )
        args.update(overrides)
        component = Grafana("grafana", GrafanaArgs(**args))
        # A consumer of the outputs, to see them as other resources receive them.
        k8s.core.v1.ConfigMap(
            "consumer",
            data={
                "namespace": component.namespace,
                "admin_user": component.admin_user,
                "admin_password": component.admin_password,
            },
        )

    graph = record(program)
    assert graph.error is None, graph.error
    return graph


@pytest.fixture(scope="module")
def graph() -> Graph:
    return build()


def chart(graph: Graph) -> Resource:
    return graph.charts()["grafana"]


def password(graph: Graph) -> str:
    res = graph.get("random:index/randomPassword:RandomPassword", "grafana-admin-password")
    return str(res.state["result"])


def test_the_chart_is_pinned_and_installed_as_release_grafana(graph: Graph) -> None:
    res = chart(graph)
    ref = versions.GRAFANA
    assert (res.inputs["chart"], res.inputs["version"]) == (ref.chart, ref.version)
    assert res.inputs["repositoryOpts"]["repo"] == ref.repo
    assert (res.inputs["name"], res.inputs["namespace"]) == ("grafana", "grafana")


def test_the_admin_password_is_generated_and_kept_secret(graph: Graph) -> None:
    random_password = graph.get(
        "random:index/randomPassword:RandomPassword", "grafana-admin-password"
    )
    assert "result" in random_password.options["additionalSecretOutputs"]
    secret = graph.get(SECRET, "grafana-admin")
    assert (
        secret.inputs["metadata"]["name"]
        == chart(graph).inputs["values"]["admin"]["existingSecret"]
    )
    [(_, value, is_secret)] = [
        leaf for leaf in leaves(secret.raw_inputs) if leaf[0] == "stringData.admin-password"
    ]
    assert value == password(graph) and is_secret
    consumer = graph.get("kubernetes:core/v1:ConfigMap", "consumer")
    [(_, _, output_secret)] = [
        leaf for leaf in leaves(consumer.raw_inputs) if leaf[0] == "data.admin_password"
    ]
    assert output_secret, "admin_password output is not a secret"


def test_no_plain_copy_of_the_admin_password_exists_anywhere(graph: Graph) -> None:
    plain = password(graph)
    for res in graph.resources:
        for path, value, is_secret in leaves(res.raw_inputs):
            if isinstance(value, str) and plain in value:
                assert is_secret, f"{res.urn}: {path} holds the admin password in plain text"


@pytest.fixture(scope="module")
def plain_webhook() -> Graph:
    # A caller that forgot Output.secret: the component must still keep the URL secret.
    return build(alert_webhook_url=WEBHOOK)


@pytest.mark.parametrize("fixture", ["graph", "plain_webhook"])
def test_the_webhook_url_never_appears_in_plain_text(
    fixture: str, request: pytest.FixtureRequest
) -> None:
    graph: Graph = request.getfixturevalue(fixture)
    found = False
    for res in graph.resources:
        for path, value, is_secret in leaves(res.raw_inputs):
            if isinstance(value, str) and WEBHOOK in value:
                found = True
                assert is_secret, f"{res.urn}: {path} holds the webhook URL in plain text"
    assert found, "the webhook URL should reach its Secret"
    webhook = graph.get(SECRET, "grafana-alert-webhook")
    assert webhook.inputs["metadata"]["name"] == gf.WEBHOOK_SECRET
    values = chart(graph).inputs["values"]
    assert WEBHOOK not in json.dumps(values)


@pytest.mark.parametrize("fixture", ["graph", "plain_webhook"])
def test_a_new_webhook_url_rolls_the_grafana_pod(
    fixture: str, request: pytest.FixtureRequest
) -> None:
    graph: Graph = request.getfixturevalue(fixture)
    values = chart(graph).raw_inputs["values"]
    annotation = [
        leaf
        for leaf in leaves(values)
        if leaf[0] == "podAnnotations.meshstack.io/alert-webhook-sha256"
    ]
    [(_, digest, is_secret)] = annotation
    assert re.fullmatch(r"[0-9a-f]{64}", digest) and is_secret


def test_without_a_webhook_there_is_no_webhook_secret_or_contact_point() -> None:
    graph = build(alert_webhook_url=None)
    assert graph.find(SECRET, "grafana-alert-webhook") is None
    values = chart(graph).inputs["values"]
    assert "contactpoints.yaml" not in values["alerting"]
    assert "envValueFrom" not in values


def test_grafana_is_authorized_to_query_vizs_prometheus(graph: Graph) -> None:
    policy = graph.get(AUTHZ, "grafana-prometheus-authz")
    assert policy.inputs["metadata"]["namespace"] == viz.NAMESPACE
    spec = policy.inputs["spec"]
    assert spec["targetRef"] == {
        "group": "policy.linkerd.io",
        "kind": "Server",
        "name": viz.PROMETHEUS_SERVER,
    }
    assert spec["requiredAuthenticationRefs"] == [
        {"kind": "ServiceAccount", "name": "grafana", "namespace": "grafana"}
    ]
    # The identity in the policy is the ServiceAccount the chart gives the pod.
    assert chart(graph).inputs["values"]["serviceAccount"]["name"] == "grafana"
    assert graph.waits_for(policy, graph.get("test:mesh:Viz", "viz-chart"))


def test_an_external_prometheus_needs_no_authorization_policy() -> None:
    # Grafana's own namespace has its policy (the scraper on the proxy's admin port); nothing
    # is written into viz's namespace.
    policies = build(bundled_prometheus=False).of_type(AUTHZ)
    assert [p for p in policies if p.inputs["metadata"]["namespace"] != "grafana"] == []


def test_grafana_is_meshed_and_waits_for_the_control_plane(graph: Graph) -> None:
    ns = graph.get("kubernetes:core/v1:Namespace", "grafana-namespace")
    assert ns.inputs["metadata"]["annotations"] == {
        "linkerd.io/inject": "enabled",
        "config.linkerd.io/default-inbound-policy": "deny",
    }
    control_plane = graph.get("test:mesh:ControlPlane", "control-plane")
    assert graph.waits_for(ns, control_plane)
    assert graph.waits_for(chart(graph), control_plane)


def test_the_chart_waits_for_everything_its_pod_mounts(graph: Graph) -> None:
    for type_, name in (
        (SECRET, "grafana-admin"),
        (SECRET, "grafana-alert-webhook"),
        ("kubernetes:core/v1:ConfigMap", "grafana-dashboards"),
    ):
        assert graph.waits_for(chart(graph), graph.get(type_, name)), name


def test_grafana_starts_after_viz_so_its_pod_can_be_tapped(graph: Graph) -> None:
    # viz's tap-injector enables tap on pods created after it answers only (a fourth readiness
    # stage, bench/budgets.py); the namespace waits, and so everything in it.
    viz_chart = graph.get("test:mesh:Viz", "viz-chart")
    assert graph.waits_for(
        graph.get("kubernetes:core/v1:Namespace", "grafana-namespace"), viz_chart
    )
    assert graph.waits_for(chart(graph), viz_chart)


def test_datasources_reach_the_chart_with_the_urls_given(graph: Graph) -> None:
    file = chart(graph).inputs["values"]["datasources"]["datasources.yaml"]
    assert {d["uid"]: d["url"] for d in file["datasources"]} == {
        "prometheus": PROMETHEUS,
        "loki": LOKI,
        "jaeger": JAEGER,
    }


def test_every_child_is_named_after_the_component_and_parented_to_it(graph: Graph) -> None:
    component = graph.get("meshstack:observability:Grafana", "grafana")
    children = {r.name for r in graph.resources if r.parent == component.urn}
    assert children == {
        "grafana-namespace",
        "grafana-admin-password",
        "grafana-admin",
        "grafana-alert-webhook",
        "grafana-dashboards",
        "grafana-linkerd-dashboards",
        "grafana-prometheus-authz",
        "grafana-chart",
        # Its namespace's Linkerd policy (`grafana.policy`), named after it too.
        "grafana-server-grafana-http",
        "grafana-server-linkerd-admin",
        "grafana-meshtls-metrics-scraper",
        "grafana-authz-linkerd-admin-metrics-scraper",
    }


# --- Certificate expiry alerts ---------------------------------------------------------------

# What the certificate rules rely on, as read in linkerd2 at the release the stack pins
# (edge-26.8.3, chart 2026.8.3); read them again when versions.LINKERD_VERSION moves.
LINKERD_READ_AT = "2026.8.3"
# pkg/identity/service.go:157-161 (registerCertExpirationMetrics): the identity controller's
# gauge of seconds until its issuer expires; the anchor has none (the TODO at :170).
ISSUER_GAUGE = "issuer_cert_ttl_seconds"
# pkg/issuercerts/issuercerts.go:22 (expirationWarningThresholdInDays): `linkerd check` warns.
LINKERD_CHECK_WARNS_DAYS = 60
ANCHOR_EXPIRES_AT = 2082758400  # 2036-01-01T00:00:00Z


def certificate_rules(anchor_expires_at: int | None = ANCHOR_EXPIRES_AT) -> dict[str, Any]:
    group = dashboards.certificate_alert_group(gf.PROMETHEUS_UID, anchor_expires_at)
    return {r["uid"]: r for r in group["rules"]}


def query(rule: dict[str, Any]) -> str:
    return str(rule["data"][0]["model"]["expr"])


ISSUER_RULES = (dashboards.ISSUER_WARNING_RULE_UID, dashboards.ISSUER_CRITICAL_RULE_UID)
ANCHOR_RULES = (dashboards.ANCHOR_WARNING_RULE_UID, dashboards.ANCHOR_CRITICAL_RULE_UID)


def test_the_issuer_rules_read_the_gauge_the_pinned_linkerd_exports() -> None:
    assert versions.LINKERD_VERSION == LINKERD_READ_AT, (
        f"Linkerd moved to {versions.LINKERD_VERSION}: check that its identity controller still "
        f"exports {ISSUER_GAUGE} (pkg/identity/service.go) and `linkerd check` still warns at "
        f"{LINKERD_CHECK_WARNS_DAYS} days, then update LINKERD_READ_AT"
    )
    by_uid = certificate_rules()
    for uid in ISSUER_RULES:
        # The only series it reads is the gauge, in days.
        assert set(re.findall(r"[a-z_]+", query(by_uid[uid]))) == {"min", ISSUER_GAUGE}
        assert query(by_uid[uid]) == f"min({ISSUER_GAUGE}) / 86400"
        assert by_uid[uid]["data"][0]["datasourceUid"] == gf.PROMETHEUS_UID


@pytest.mark.parametrize("rules", [ISSUER_RULES, ANCHOR_RULES], ids=["issuer", "anchor"])
def test_certificates_warn_when_linkerd_check_does_and_page_a_month_before_expiry(
    rules: tuple[str, str],
) -> None:
    by_uid = certificate_rules()
    warning, critical = (by_uid[uid] for uid in rules)
    assert condition(warning) == {"type": "lt", "params": [LINKERD_CHECK_WARNS_DAYS]}
    assert condition(critical) == {"type": "lt", "params": [30]}
    assert (warning["labels"]["severity"], critical["labels"]["severity"]) == (
        "warning",
        "critical",
    )
    # Renewal starts 90 days out (config), so the issuer warns only after a month of failed
    # renewals, and never during a renewal that is on time.
    assert cfg.MIN_EARLY_RENEWAL_HOURS / 24 > LINKERD_CHECK_WARNS_DAYS
    for rule in (warning, critical):
        assert "dashboardUid" not in rule and "panelId" not in rule
        assert rule["annotations"]["description"], rule["uid"]


def test_the_anchor_rules_count_down_to_the_anchors_expiry() -> None:
    by_uid = certificate_rules()
    for uid in ANCHOR_RULES:
        assert query(by_uid[uid]) == f"(vector({ANCHOR_EXPIRES_AT}) - time()) / 86400"
        assert "2036-01-01 00:00 UTC" in by_uid[uid]["annotations"]["summary"]
    # Without a known anchor, only the issuer is watched.
    assert set(certificate_rules(None)) == set(ISSUER_RULES)


def test_a_missing_issuer_gauge_is_alerted_once_not_taken_for_healthy() -> None:
    by_uid = certificate_rules()
    states = {uid: rule["noDataState"] for uid, rule in by_uid.items()}
    assert states == {
        dashboards.ISSUER_WARNING_RULE_UID: "NoData",
        dashboards.ISSUER_CRITICAL_RULE_UID: "OK",
        dashboards.ANCHOR_WARNING_RULE_UID: "OK",
        dashboards.ANCHOR_CRITICAL_RULE_UID: "OK",
    }


def test_certificate_rules_ship_in_the_rules_file_beside_the_golden_metrics() -> None:
    file = values(trust_anchor_expires_at=ANCHOR_EXPIRES_AT)["alerting"]
    groups = {g["name"]: g for g in file["rules.yaml"]["groups"]}
    assert set(groups) == {dashboards.ALERT_GROUP, dashboards.CERTIFICATE_GROUP}
    uids = [r["uid"] for g in groups.values() for r in g["rules"]]
    assert len(uids) == len(set(uids)) and set(ISSUER_RULES + ANCHOR_RULES) <= set(uids)
    titles = [r["title"] for g in groups.values() for r in g["rules"]]
    assert len(titles) == len(set(titles)), "Grafana wants rule titles unique in a folder"
    for rule in groups[dashboards.CERTIFICATE_GROUP]["rules"]:
        assert re.fullmatch(r"[A-Za-z0-9_-]{1,40}", rule["uid"]), rule["uid"]
        # Helm's tpl must print Grafana's own templates as they are.
        summary = rule["annotations"]["summary"]
        assert summary.startswith("{{ `") and summary.endswith("` }}"), summary


def test_the_deployed_anchor_is_what_the_anchor_rules_count_down_to(
    graphs: dict[str, Graph],
) -> None:
    for stack, graph in graphs.items():
        rules_file = graph.charts()["grafana"].inputs["values"]["alerting"]["rules.yaml"]
        [group] = [g for g in rules_file["groups"] if g["name"] == dashboards.CERTIFICATE_GROUP]
        expires = identity.expires_at(graph.outputs["trustAnchorPem"])
        anchor_rules = [r for r in group["rules"] if r["uid"] in ANCHOR_RULES]
        assert len(anchor_rules) == 2, stack
        for rule in anchor_rules:
            assert query(rule) == dashboards.anchor_days_left_query(expires), stack


def test_the_volume_is_handed_to_grafana_by_fs_group_not_a_root_chown() -> None:
    # The chart's pod securityContext (`fsGroup: 472`) gives the claim to Grafana's group; the
    # root init container would only repeat it, and no root container passes `restricted`.
    assert values(settings=GrafanaSettings(persistence=True))["initChownData"]["enabled"] is False


def test_red_from_traces_reads_the_span_metrics_with_exemplars_only_with_tracing() -> None:
    assert dashboards.RED_FILE not in gf.golden_metrics_configmap_data(GrafanaSettings())
    data = gf.golden_metrics_configmap_data(GrafanaSettings(), traces=True)
    board = json.loads(data[dashboards.RED_FILE])
    targets = [t for p in board["panels"] for t in p["targets"]]
    exprs = " ".join(t["expr"] for t in targets)
    # The connector's names in the Prometheus exporter (unit pinned to ms in Jaeger's config).
    assert set(re.findall(r"traces_span_metrics_[a-z_]+", exprs)) == {
        "traces_span_metrics_calls_total",
        "traces_span_metrics_duration_milliseconds_bucket",
    }
    assert 'span_kind="SPAN_KIND_SERVER"' in exprs and "STATUS_CODE_ERROR" in exprs
    assert [t.get("exemplar") for t in targets] == [None, None, True]
    ds = gf.datasources("http://p", None, "http://j")["datasources"][0]
    assert ds["jsonData"]["exemplarTraceIdDestinations"] == [
        {"name": "trace_id", "datasourceUid": gf.JAEGER_UID}
    ]
