"""The golden-metrics dashboard and alert rules, generated as data (pure functions, no resources).

Both read Linkerd's proxy metrics as viz's Prometheus stores them: `request_total`,
`response_total{classification}` and the `response_latency_ms` histogram, labelled with the
`namespace` and `deployment` of the pod that served the request (`direction="inbound"`). The
queries are built once here, so the dashboard and the alerts always measure the same thing.

Nothing here is copied from an upstream dashboard: the JSON is written for this stack.
"""

from __future__ import annotations

from typing import Any

# --- Queries ---------------------------------------------------------------------------------

# Only traffic a meshed deployment served; other workload kinds have an empty `deployment`.
_INBOUND = 'direction="inbound", deployment!=""'
_BY = "namespace, deployment"
# The dashboard's variables; `=~` so the "All" value (`.*`) matches everything.
DASHBOARD_FILTERS = 'namespace=~"$namespace", deployment=~"$deployment"'


def _selector(filters: str) -> str:
    return f"{_INBOUND}, {filters}" if filters else _INBOUND


def success_rate_query(window: str, filters: str = "") -> str:
    """Share of inbound responses Linkerd classified as successful, per deployment (0..1)."""
    sel = _selector(filters)
    return (
        f'sum by ({_BY}) (rate(response_total{{{sel}, classification="success"}}[{window}]))'
        f" / sum by ({_BY}) (rate(response_total{{{sel}}}[{window}]))"
    )


def request_rate_query(window: str, filters: str = "") -> str:
    """Inbound requests per second, per deployment."""
    return f"sum by ({_BY}) (rate(request_total{{{_selector(filters)}}}[{window}]))"


def latency_query(quantile: float, window: str, filters: str = "") -> str:
    """The given latency quantile of inbound responses in milliseconds, per deployment."""
    sel = _selector(filters)
    return (
        f"histogram_quantile({quantile}, sum by (le, {_BY}) "
        f"(rate(response_latency_ms_bucket{{{sel}}}[{window}])))"
    )


# --- Dashboard -------------------------------------------------------------------------------

GOLDEN_METRICS_UID = "meshstack-golden-metrics"
GOLDEN_METRICS_FILE = "golden-metrics.json"
# Panel ids the alert rules link to (a firing rule then shows on its panel).
SUCCESS_RATE_PANEL, REQUEST_RATE_PANEL, LATENCY_PANEL = 1, 2, 3
LATENCY_QUANTILES = (0.5, 0.95, 0.99)


def _ds(uid: str) -> dict[str, str]:
    return {"type": "prometheus", "uid": uid}


def _variable(name: str, label: str, query: str, datasource_uid: str) -> dict[str, Any]:
    return {
        "name": name,
        "label": label,
        "type": "query",
        "datasource": _ds(datasource_uid),
        "query": {"query": query, "refId": name},
        "definition": query,
        "refresh": 2,  # on time-range change, so new deployments appear
        "includeAll": True,
        "allValue": ".*",
        "multi": True,
        "sort": 1,
        "current": {"selected": True, "text": ["All"], "value": ["$__all"]},
    }


def _timeseries(
    panel_id: int,
    title: str,
    description: str,
    unit: str,
    grid: dict[str, int],
    targets: list[dict[str, Any]],
    datasource_uid: str,
    threshold: dict[str, Any] | None = None,
    extra_defaults: dict[str, Any] | None = None,
) -> dict[str, Any]:
    custom: dict[str, Any] = {"lineWidth": 1, "fillOpacity": 10, "showPoints": "never"}
    thresholds: dict[str, Any] = {"mode": "absolute", "steps": [{"color": "green", "value": None}]}
    if threshold is not None:
        # Draw the alert threshold on the graph, in the colour of the side that fires.
        custom["thresholdsStyle"] = {"mode": "line"}
        thresholds = threshold
    return {
        "id": panel_id,
        "type": "timeseries",
        "title": title,
        "description": description,
        "datasource": _ds(datasource_uid),
        "gridPos": grid,
        "fieldConfig": {
            "defaults": {
                "unit": unit,
                "custom": custom,
                "thresholds": thresholds,
                **(extra_defaults or {}),
            },
            "overrides": [],
        },
        "options": {
            "legend": {
                "displayMode": "table",
                "placement": "right",
                "calcs": ["lastNotNull", "max"],
                "showLegend": True,
            },
            "tooltip": {"mode": "multi", "sort": "desc"},
        },
        "targets": targets,
    }


def _target(ref: str, expr: str, legend: str, datasource_uid: str) -> dict[str, Any]:
    return {
        "refId": ref,
        "datasource": _ds(datasource_uid),
        "expr": expr,
        "legendFormat": legend,
        "range": True,
        "editorMode": "code",
    }


def golden_metrics_dashboard(
    datasource_uid: str, success_rate_threshold: float, latency_p99_ms: int
) -> dict[str, Any]:
    """Success rate, requests per second and p50/p95/p99 latency per meshed deployment.

    The alert thresholds are drawn on the success-rate and latency panels.
    """
    window = "$__rate_interval"
    legend = "{{namespace}}/{{deployment}}"
    panels = [
        _timeseries(
            SUCCESS_RATE_PANEL,
            "Success rate",
            "Inbound responses Linkerd classified as successful (response_total).",
            "percentunit",
            {"x": 0, "y": 0, "w": 12, "h": 9},
            [_target("A", success_rate_query(window, DASHBOARD_FILTERS), legend, datasource_uid)],
            datasource_uid,
            threshold={
                "mode": "absolute",
                "steps": [
                    {"color": "red", "value": None},
                    {"color": "green", "value": success_rate_threshold},
                ],
            },
            extra_defaults={"min": 0, "max": 1},
        ),
        _timeseries(
            REQUEST_RATE_PANEL,
            "Requests per second",
            "Inbound requests served (request_total).",
            "reqps",
            {"x": 12, "y": 0, "w": 12, "h": 9},
            [_target("A", request_rate_query(window, DASHBOARD_FILTERS), legend, datasource_uid)],
            datasource_uid,
            extra_defaults={"min": 0},
        ),
        _timeseries(
            LATENCY_PANEL,
            "Latency p50 / p95 / p99",
            "Inbound response latency quantiles (response_latency_ms histogram).",
            "ms",
            {"x": 0, "y": 9, "w": 24, "h": 10},
            [
                _target(
                    chr(ord("A") + i),
                    latency_query(q, window, DASHBOARD_FILTERS),
                    f"{legend} p{round(q * 100)}",
                    datasource_uid,
                )
                for i, q in enumerate(LATENCY_QUANTILES)
            ],
            datasource_uid,
            threshold={
                "mode": "absolute",
                "steps": [
                    {"color": "green", "value": None},
                    {"color": "red", "value": latency_p99_ms},
                ],
            },
            extra_defaults={"min": 0},
        ),
    ]
    namespaces = 'label_values(request_total{direction="inbound"}, namespace)'
    deployments = (
        'label_values(request_total{direction="inbound", namespace=~"$namespace"}, deployment)'
    )
    return {
        "uid": GOLDEN_METRICS_UID,
        "title": "Golden metrics per deployment",
        "description": "Linkerd golden metrics of every meshed deployment (meshstack).",
        "tags": ["linkerd", "golden-metrics", "meshstack"],
        "editable": False,
        "graphTooltip": 1,
        "refresh": "30s",
        "schemaVersion": 39,
        "version": 1,
        "time": {"from": "now-1h", "to": "now"},
        "timezone": "browser",
        "templating": {
            "list": [
                _variable("namespace", "Namespace", namespaces, datasource_uid),
                _variable("deployment", "Deployment", deployments, datasource_uid),
            ]
        },
        "annotations": {"list": []},
        "links": [],
        "panels": panels,
    }


# --- Alerting (Grafana unified alerting file provisioning, apiVersion 1) ---------------------

ALERT_FOLDER = "Meshstack alerts"
ALERT_GROUP = "linkerd-golden-metrics"
SUCCESS_RATE_RULE_UID = "meshstack-success-rate-low"
LATENCY_RULE_UID = "meshstack-p99-latency-high"
CONTACT_POINT = "meshstack-webhook"
# Long enough to smooth a single bad scrape, short enough to page within minutes.
ALERT_WINDOW = "5m"


def _percent(fraction: float) -> str:
    return f"{fraction * 100:g}%"


def _rule(
    uid: str,
    title: str,
    expr: str,
    evaluator: str,
    threshold: float,
    datasource_uid: str,
    panel_id: int,
    summary: str,
) -> dict[str, Any]:
    """A rule of three steps: query (A), reduce to one number per series (B), threshold (C)."""
    expr_ds = {"type": "__expr__", "uid": "__expr__"}
    return {
        "uid": uid,
        "title": title,
        "condition": "C",
        "data": [
            {
                "refId": "A",
                "relativeTimeRange": {"from": 600, "to": 0},
                "datasourceUid": datasource_uid,
                "model": {
                    "refId": "A",
                    "expr": expr,
                    "instant": True,
                    "range": False,
                    "editorMode": "code",
                    "intervalMs": 1000,
                    "maxDataPoints": 43200,
                },
            },
            {
                "refId": "B",
                "datasourceUid": "__expr__",
                "model": {
                    "refId": "B",
                    "type": "reduce",
                    "expression": "A",
                    "reducer": "last",
                    # A deployment without traffic divides 0 by 0; drop it rather than fire.
                    "settings": {"mode": "dropNN"},
                    "datasource": expr_ds,
                },
            },
            {
                "refId": "C",
                "datasourceUid": "__expr__",
                "model": {
                    "refId": "C",
                    "type": "threshold",
                    "expression": "B",
                    "conditions": [{"evaluator": {"type": evaluator, "params": [threshold]}}],
                    "datasource": expr_ds,
                },
            },
        ],
        "dashboardUid": GOLDEN_METRICS_UID,
        "panelId": panel_id,
        "for": ALERT_WINDOW,
        # No traffic is not an outage; a broken query is surfaced as an error, not as a page.
        "noDataState": "OK",
        "execErrState": "Error",
        "labels": {"severity": "warning", "source": "meshstack"},
        "annotations": {"summary": summary},
    }


def alert_rules(
    datasource_uid: str, success_rate_threshold: float, latency_p99_ms: int
) -> dict[str, Any]:
    """The rules file: success rate below, and p99 latency above, the thresholds per deployment.

    Annotations hold Grafana (Go) templates; they are not env-interpolated by provisioning.
    """
    where = "{{ $labels.namespace }}/{{ $labels.deployment }}"
    rules = [
        _rule(
            SUCCESS_RATE_RULE_UID,
            f"Success rate below {_percent(success_rate_threshold)}",
            success_rate_query(ALERT_WINDOW),
            "lt",
            success_rate_threshold,
            datasource_uid,
            SUCCESS_RATE_PANEL,
            f"{where}: inbound success rate {{{{ humanizePercentage $values.B.Value }}}} "
            f"(threshold {_percent(success_rate_threshold)})",
        ),
        _rule(
            LATENCY_RULE_UID,
            f"p99 latency above {latency_p99_ms}ms",
            latency_query(0.99, ALERT_WINDOW),
            "gt",
            latency_p99_ms,
            datasource_uid,
            LATENCY_PANEL,
            f'{where}: inbound p99 latency {{{{ printf "%.0f" $values.B.Value }}}}ms '
            f"(threshold {latency_p99_ms}ms)",
        ),
    ]
    return {
        "apiVersion": 1,
        "groups": [
            {
                "orgId": 1,
                "name": ALERT_GROUP,
                "folder": ALERT_FOLDER,
                "interval": "1m",
                "rules": rules,
            }
        ],
    }


def contact_points(url: str) -> dict[str, Any]:
    """A webhook contact point. `url` should be a reference (`$__env{...}`), never the URL."""
    return {
        "apiVersion": 1,
        "contactPoints": [
            {
                "orgId": 1,
                "name": CONTACT_POINT,
                "receivers": [
                    {
                        "uid": CONTACT_POINT,
                        "type": "webhook",
                        "settings": {"url": url, "httpMethod": "POST"},
                        "disableResolveMessage": False,
                    }
                ],
            }
        ],
    }


def notification_policies() -> dict[str, Any]:
    """Route every alert to the webhook (this file replaces the org's whole policy tree)."""
    return {
        "apiVersion": 1,
        "policies": [
            {
                "orgId": 1,
                "receiver": CONTACT_POINT,
                "group_by": ["grafana_folder", "alertname"],
                "group_wait": "30s",
                "group_interval": "5m",
                "repeat_interval": "4h",
            }
        ],
    }
