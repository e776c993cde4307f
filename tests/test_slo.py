"""SLOs: objectives parsed and checked before any resource, burn-rate rules after the SRE
Workbook's table, in Grafana's provisioning schema, on the metrics the pinned proxy exports."""

from __future__ import annotations

import json
import re
from typing import Any

import jsonschema
import pytest

from components import config as cfg
from components import dashboards, grafana, slo, versions, viz
from components.config import GrafanaSettings

WEB = slo.Objective("emojivoto", "web", 99.5, 300, 99.0, 30 * 24)


def parse(overrides: dict[str, Any]) -> cfg.Settings:
    raw = {k: v if isinstance(v, str) else json.dumps(v) for k, v in overrides.items()}
    return cfg.parse_settings(raw, stack="test")


# --- What the proxy exports ------------------------------------------------------------------

# Read at this Linkerd release: a bump must re-read the sources named below.
LINKERD_READ_AT = "2026.8.3"
# Metric family → the labels a query may use on it, from linkerd2-proxy (release/v2.366.0, the
# proxy of edge-26.8.3) and viz's scrape job:
# - legacy HTTP families: linkerd/http/metrics/src/requests/report.rs (names, `classification`,
#   `status_code`), linkerd/app/core/src/metrics.rs (`direction`, `dst_*`, `srv_*`),
#   linkerd/metrics/src/histogram.rs (`le`);
# - `tcp_open_connections`: linkerd/app/core/src/transport (direction and peer labels);
# - `inbound_http_authz_deny_total`: linkerd/app/inbound/src/policy/http (srv_*, route_*);
# - route families: linkerd/app/outbound/src/http/logical/policy/route/metrics/labels.rs;
# - `namespace`, `deployment` (and `pod`): viz's `linkerd-proxy` job relabels them from the
#   pod's namespace and `linkerd.io/proxy-deployment` label; checked in the rendered chart by
#   tests/test_wiring.py `test_the_slo_labels_are_the_ones_vizs_scrape_job_makes`.
SCRAPE = {"namespace", "deployment", "pod"}
LEGACY = {"direction", "classification", "status_code", "dst_namespace", "dst_deployment"}
EXPORTED: dict[str, set[str]] = {
    "request_total": SCRAPE | LEGACY,
    "response_total": SCRAPE | LEGACY,
    "response_latency_ms_bucket": SCRAPE | LEGACY | {"le"},
    "response_latency_ms_count": SCRAPE | LEGACY,
    "tcp_open_connections": SCRAPE | {"direction"},
    "inbound_http_authz_deny_total": SCRAPE | {"srv_name", "srv_kind", "route_name"},
    "outbound_http_route_request_statuses_total": SCRAPE
    | {"parent_namespace", "parent_name", "route_name", "http_status", "error"},
    "outbound_grpc_route_request_statuses_total": SCRAPE
    | {"parent_namespace", "parent_name", "route_name", "grpc_status", "error"},
}
SELECTOR = re.compile(r"([a-z_]+)\{([^}]*)\}")
MATCHER = re.compile(r'([a-z_]+)\s*(=~|!~|!=|=)\s*"')
BY = re.compile(r"by \(([^)]*)\)")


def metric_labels(expr: str) -> list[tuple[str, set[str]]]:
    """(metric, labels it is filtered on) of every selector, and the `by` labels."""
    found = [(m[1], {x[0] for x in MATCHER.findall(m[2])}) for m in SELECTOR.finditer(expr)]
    grouped = {label.strip() for g in BY.findall(expr) for label in g.split(",")}
    return [
        (metric, labels | (grouped - {"le"} if metric.endswith("_bucket") else grouped))
        for metric, labels in found
    ] or [("", set())]


def exprs(value: Any) -> list[str]:
    if isinstance(value, dict):
        return [e for k, v in value.items() for e in ([v] if k == "expr" else exprs(v))]
    if isinstance(value, list):
        return [e for v in value for e in exprs(v)]
    return []


def generated_queries() -> list[str]:
    boards = [
        slo.dashboard((WEB,), "prometheus"),
        dashboards.golden_metrics_dashboard("prometheus", 0.95, 500),
        *dashboards.linkerd_dashboards("prometheus").values(),
    ]
    return exprs([slo.alert_group((WEB,), "prometheus"), *boards])


def test_every_generated_query_names_metrics_and_labels_the_pinned_proxy_exports() -> None:
    assert versions.LINKERD_VERSION == LINKERD_READ_AT, "re-read the proxy's metrics (above)"
    queries = generated_queries()
    assert len(queries) > 20
    for expr in queries:
        for metric, labels in metric_labels(expr):
            assert metric in EXPORTED, f"{metric!r} is not a family the proxy exports: {expr}"
            assert labels <= EXPORTED[metric], f"{metric}: {labels - EXPORTED[metric]} in {expr}"


def test_latency_objectives_sit_on_a_bucket_bound_as_the_proxy_prints_it() -> None:
    (query,) = [q for q in exprs(slo.alert_group((WEB,), "p")) if "le=" in q][:1]
    # histogram.rs prints a bound with Rust's `{}` of an f64: 300.0 → "300".
    assert 'le="300"' in query
    assert 300 in slo.LATENCY_BUCKETS_MS and 250 not in slo.LATENCY_BUCKETS_MS


# --- Burn rates ------------------------------------------------------------------------------


def test_the_burn_rate_rules_are_the_workbooks_windows_and_factors() -> None:
    group = slo.alert_group((WEB,), "prometheus")
    rows = []
    for rule in group["rules"]:
        a, b, c = rule["data"]
        long = re.findall(r"\[(\w+)\]", a["model"]["expr"])
        short = re.findall(r"\[(\w+)\]", b["model"]["expr"])
        assert len(set(long)) == 1 and len(set(short)) == 1, rule["uid"]
        m = re.fullmatch(r"\$A > ([0-9.e-]+) && \$B > ([0-9.e-]+)", c["model"]["expression"])
        assert m and m[1] == m[2], c["model"]["expression"]
        budget = 1 - (99.5 if rule["labels"]["slo"] == "success" else 99.0) / 100
        rows.append(
            (
                rule["labels"]["slo"],
                rule["labels"]["severity"],
                long[0],
                short[0],
                round(float(m[1]) / budget, 3),
            )
        )
        assert rule["condition"] == "C" and rule["noDataState"] == "OK"
    table = [
        ("page", "1h", "5m", 14.4),
        ("page", "6h", "30m", 6.0),
        ("ticket", "3d", "6h", 1.0),
    ]
    assert sorted(rows) == sorted((sli, *row) for sli in ("success", "latency") for row in table)


def test_the_success_sli_counts_failures_over_all_inbound_responses() -> None:
    sli = slo.slis(WEB)[0]
    assert sli.error_ratio("1h") == (
        'sum(rate(response_total{direction="inbound", namespace="emojivoto", '
        'deployment="web", classification="failure"}[1h])) / sum(rate(response_total'
        '{direction="inbound", namespace="emojivoto", deployment="web"}[1h]))'
    )


def test_rule_uids_are_stable_unique_and_within_grafanas_limit() -> None:
    long_name = slo.Objective("n" * 63, "d" * 200, 99.0, 100)
    rules = slo.alert_group((WEB, long_name), "p")["rules"]
    uids = [r["uid"] for r in rules]
    assert len(set(uids)) == len(uids) == 12
    assert all(re.fullmatch(r"[A-Za-z0-9_-]{1,40}", u) for u in uids), uids
    assert uids == [r["uid"] for r in slo.alert_group((WEB, long_name), "p")["rules"]]


# --- Grafana provisioning schema -------------------------------------------------------------

# grafana/grafana pkg/services/provisioning/alerting/rules_types.go (AlertRuleGroupV1,
# AlertRuleV1, QueryV1): the keys a file may hold; unknown ones are an error at load.
QUERY = {
    "type": "object",
    "required": ["refId", "datasourceUid", "model"],
    "additionalProperties": False,
    "properties": {
        "refId": {"type": "string"},
        "queryType": {"type": "string"},
        "relativeTimeRange": {
            "type": "object",
            "properties": {"from": {"type": "integer"}, "to": {"type": "integer"}},
            "additionalProperties": False,
        },
        "datasourceUid": {"type": "string"},
        "model": {"type": "object"},
    },
}
RULE = {
    "type": "object",
    "required": ["uid", "title", "condition", "data"],
    "additionalProperties": False,
    "properties": {
        "uid": {"type": "string", "pattern": "^[A-Za-z0-9_-]{1,40}$"},
        "title": {"type": "string", "maxLength": 190},
        "condition": {"type": "string"},
        "data": {"type": "array", "minItems": 1, "items": QUERY},
        "dashboardUid": {"type": "string"},
        "panelId": {"type": "integer"},
        "noDataState": {"enum": ["Alerting", "NoData", "OK", "KeepLast"]},
        "execErrState": {"enum": ["Alerting", "Error", "OK", "KeepLast"]},
        "for": {"type": "string", "pattern": "^[0-9]+[smhd]$"},
        "keepFiringFor": {"type": "string"},
        "annotations": {"type": "object", "additionalProperties": {"type": "string"}},
        "labels": {"type": "object", "additionalProperties": {"type": "string"}},
        "isPaused": {"type": "boolean"},
        "notification_settings": {"type": "object"},
        "record": {"type": "object"},
        "missing_series_evals_to_resolve": {"type": "integer"},
    },
}
RULES_FILE = {
    "type": "object",
    "required": ["apiVersion", "groups"],
    "properties": {
        "apiVersion": {"const": 1},
        "groups": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["orgId", "name", "folder", "interval", "rules"],
                "additionalProperties": False,
                "properties": {
                    "orgId": {"type": "integer"},
                    "name": {"type": "string"},
                    "folder": {"type": "string"},
                    "interval": {"type": "string", "pattern": "^[0-9]+[smh]$"},
                    "rules": {"type": "array", "items": RULE},
                },
            },
        },
    },
}


def test_the_rules_file_with_slos_is_in_grafanas_provisioning_schema() -> None:
    files = grafana.alerting(GrafanaSettings(), False, None, (WEB,))
    jsonschema.validate(files["rules.yaml"], RULES_FILE)
    groups = {g["name"]: g for g in files["rules.yaml"]["groups"]}
    assert len(groups[slo.SLO_GROUP]["rules"]) == 6
    # Each rule's condition is a refId of its own data, and the math reads both windows.
    for rule in groups[slo.SLO_GROUP]["rules"]:
        refs = {q["refId"] for q in rule["data"]}
        assert rule["condition"] in refs and {"A", "B"} <= refs
        assert rule["data"][2]["datasourceUid"] == "__expr__"


def test_no_objectives_no_slo_rules_and_no_slo_dashboard() -> None:
    files = grafana.alerting(GrafanaSettings(), False, None, ())
    assert slo.SLO_GROUP not in {g["name"] for g in files["rules.yaml"]["groups"]}
    assert slo.DASHBOARD_FILE not in grafana.golden_metrics_configmap_data(GrafanaSettings())
    data = grafana.golden_metrics_configmap_data(GrafanaSettings(), slo_objectives=(WEB,))
    board = json.loads(data[slo.DASHBOARD_FILE])
    assert board["uid"] == slo.DASHBOARD_UID and len(board["panels"]) == 6


# --- Configuration ---------------------------------------------------------------------------


def test_by_default_emojivotos_serving_deployments_get_objectives_over_30_days() -> None:
    s = parse({})
    assert {(o.namespace, o.deployment) for o in s.slo.objectives} == {
        ("emojivoto", "web"),
        ("emojivoto", "emoji"),
        ("emojivoto", "voting"),
    }
    assert {o.window_hours for o in s.slo.objectives} == {720}
    assert s.slo.prometheus_retention_hours == 720
    assert parse({"enableEmojivoto": False}).slo.objectives == ()
    assert parse({"slo": {"emojivoto": False}}).slo.prometheus_retention_hours == 0


def test_a_team_objective_and_an_override_of_an_emojivoto_default() -> None:
    s = parse(
        {
            "onboarding": {"namespaces": [{"name": "team-a"}]},
            "slo": {
                "objectives": [
                    {"namespace": "team-a", "deployment": "api", "successPercent": "99.9"},
                    {"namespace": "emojivoto", "deployment": "voting", "successPercent": 98},
                ]
            },
        }
    )
    by = {(o.namespace, o.deployment): o for o in s.slo.objectives}
    assert by[("team-a", "api")].success_percent == 99.9
    assert by[("team-a", "api")].latency_ms == 0
    assert by[("emojivoto", "voting")].success_percent == 98
    assert len(by) == 4


@pytest.mark.parametrize(
    ("overrides", "key", "hint"),
    [
        (
            {
                "slo": {
                    "objectives": [
                        {"namespace": "emojivoto", "deployment": "web", "successPercent": 100}
                    ]
                }
            },
            "slo.objectives[0].successPercent",
            "below 100",
        ),
        (
            {
                "slo": {
                    "objectives": [
                        {"namespace": "emojivoto", "deployment": "web", "successPercent": 0}
                    ]
                }
            },
            "slo.objectives[0].successPercent",
            "above 0",
        ),
        (
            {
                "slo": {
                    "objectives": [
                        {
                            "namespace": "emojivoto",
                            "deployment": "web",
                            "successPercent": 99,
                            "latencyPercent": 100.5,
                        }
                    ]
                }
            },
            "slo.objectives[0].latencyPercent",
            "below 100",
        ),
        ({"slo": {"window": "2d"}}, "slo.window", "at least 3d"),
        ({"slo": {"window": "48h"}}, "slo.window", "at least 3d"),
        (
            {
                "slo": {
                    "objectives": [{"namespace": "emojivoto", "deployment": "web", "window": "1d"}]
                }
            },
            "slo.objectives[0].window",
            "at least 3d",
        ),
        (
            {"slo": {"objectives": [{"namespace": "emojivoto", "deployment": "vote-bot"}]}},
            "slo.objectives[0].deployment",
            "emojivoto (web, emoji, voting)",
        ),
        (
            {"slo": {"objectives": [{"namespace": "shop", "deployment": "api"}]}},
            "slo.objectives[0].namespace",
            "no such meshed namespace",
        ),
        (
            {
                "enableEmojivoto": False,
                "slo": {"objectives": [{"namespace": "emojivoto", "deployment": "web"}]},
            },
            "slo.objectives[0].namespace",
            "no such meshed namespace",
        ),
        (
            {
                "slo": {
                    "objectives": [
                        {"namespace": "emojivoto", "deployment": "web", "latencyMs": 250}
                    ]
                }
            },
            "slo.objectives[0].latencyMs",
            "300, 400",
        ),
        ({"slo": {"prometheusStorageSize": "lots"}}, "slo.prometheusStorageSize", "20Gi"),
    ],
)
def test_bad_objectives_are_named_before_any_resource(
    overrides: dict[str, Any], key: str, hint: str
) -> None:
    with pytest.raises(cfg.ConfigError) as e:
        parse(overrides)
    line = next(x for x in str(e.value).splitlines() if x.startswith(f"meshstack:{key}:"))
    assert hint in line, line


def test_the_program_stops_on_a_bad_objective_before_registering_anything() -> None:
    from tests.graph import run_program

    graph = run_program("dev", {"slo": {"window": "1d"}})
    assert isinstance(graph.error, Exception) and "meshstack:slo.window" in str(graph.error)
    assert [r for r in graph.resources if r.custom] == []


# --- Retention -------------------------------------------------------------------------------


def test_viz_prometheus_keeps_the_longest_window_on_a_volume_in_prod() -> None:
    prod = parse({"profile": "prod", "kubeContext": "ctx"}).slo
    assert (prod.prometheus_retention_hours, prod.prometheus_storage_size) == (720, "20Gi")
    out = viz.prometheus_retention(720, "20Gi")
    assert out["args"]["storage.tsdb.retention.time"] == "720h"
    # Capped under the volume, so a full disk never stops Prometheus.
    cap = int(out["args"]["storage.tsdb.retention.size"].removesuffix("MB")) * 2**20
    assert cap < 20 * 2**30
    assert out["persistence"] == {"accessMode": "ReadWriteOnce", "size": "20Gi"}
    dev = viz.prometheus_retention(720, "")
    assert "persistence" not in dev
    # With an external Prometheus the stack changes nothing of viz's.
    external = parse(
        {
            "linkerd": {
                "prometheusUrl": "https://prometheus.example.org",
                "prometheusScraper": "monitoring/prometheus",
            }
        }
    ).slo
    assert (external.prometheus_retention_hours, external.prometheus_storage_size) == (0, "")
