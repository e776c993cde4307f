"""The golden-metrics dashboard and alert rules, generated as data (pure functions, no resources).

Both read Linkerd's proxy metrics as viz's Prometheus stores them: `request_total`,
`response_total{classification}` and the `response_latency_ms` histogram, labelled with the
`namespace` and `deployment` of the pod that served the request (`direction="inbound"`). The
queries are built once here, so the dashboard and the alerts always measure the same thing.

The certificate alerts read the identity controller's `issuer_cert_ttl_seconds` for the issuer
and, Linkerd having no metric for it, the trust anchor's expiry as the stack knows it.

Nothing here is copied from an upstream dashboard: the JSON is written for this stack.
"""

from __future__ import annotations

import datetime
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
    return _dashboard(
        GOLDEN_METRICS_UID,
        "Golden metrics per deployment",
        "Linkerd golden metrics of every meshed deployment (meshstack).",
        panels,
        [
            _variable("namespace", "Namespace", namespaces, datasource_uid),
            _variable("deployment", "Deployment", deployments, datasource_uid),
        ],
        tags=["linkerd", "golden-metrics", "meshstack"],
    )


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
    panel_id: int | None,
    summary: str,
    *,
    severity: str = "warning",
    pending: str = ALERT_WINDOW,
    no_data: str = "OK",
    description: str = "",
) -> dict[str, Any]:
    """A rule of three steps: query (A), reduce to one number per series (B), threshold (C).

    `panel_id` links the rule to a golden-metrics panel (None: no panel shows it). `no_data`:
    the state when the query returns nothing (`OK`, or `NoData` to raise Grafana's own alert).
    """
    expr_ds = {"type": "__expr__", "uid": "__expr__"}
    rule: dict[str, Any] = {
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
        "for": pending,
        # No traffic is not an outage; a broken query is surfaced as an error, not as a page.
        "noDataState": no_data,
        "execErrState": "Error",
        "labels": {"severity": severity, "source": "meshstack"},
        "annotations": {"summary": summary},
    }
    if panel_id is None:
        del rule["dashboardUid"], rule["panelId"]
    if description:
        rule["annotations"]["description"] = description
    return rule


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


# --- Certificate expiry alerts ---------------------------------------------------------------

CERTIFICATE_GROUP = "linkerd-certificates"
ISSUER_WARNING_RULE_UID = "meshstack-issuer-expiry-warning"
ISSUER_CRITICAL_RULE_UID = "meshstack-issuer-expiry-critical"
ANCHOR_WARNING_RULE_UID = "meshstack-anchor-expiry-warning"
ANCHOR_CRITICAL_RULE_UID = "meshstack-anchor-expiry-critical"
# Days left. Warning where `linkerd check` starts warning (linkerd2
# pkg/issuercerts/issuercerts.go: expirationWarningThresholdInDays = 60): the issuer gets there
# only after a month of its 90-day renewal window went by without a successful `up`. Critical
# with a month left, time enough to rotate an anchor by hand.
EXPIRY_WARNING_DAYS = 60
EXPIRY_CRITICAL_DAYS = 30
# The identity controller's gauge: seconds until the issuer it loaded expires, 0 while it has
# none (linkerd2 pkg/identity/service.go, registerCertExpirationMetrics). It is served on
# identity's `ident-admin` port, which viz's Prometheus job `linkerd-controller` scrapes (every
# `*admin` container port in the control plane's namespace).
ISSUER_TTL_METRIC = "issuer_cert_ttl_seconds"
# Lifetimes move by the day; a restarted identity reports 0 until it has read the issuer.
CERTIFICATE_PENDING = "15m"
DAY_SECONDS = 24 * 3600
RENEW_HINT = (
    "Any `pulumi up` in the issuer's last 90 days renews it: run the renew workflow or "
    "`make up` (README, Renew certificates)."
)
ROTATE_HINT = "No `up` renews the trust anchor: rotate it (README, Rotate the trust anchor)."


def issuer_days_left_query() -> str:
    """Days until the identity issuer expires. `min`: every identity replica should hold the
    same issuer, and the one that lags behind (or holds none) is the one that fails."""
    return f"min({ISSUER_TTL_METRIC}) / {DAY_SECONDS}"


def anchor_days_left_query(expires_at: int) -> str:
    """Days until the trust anchor expires, from its notAfter (Unix seconds).

    Linkerd exports no metric for the anchor (a TODO in pkg/identity/service.go), but the stack
    knows the anchor it deploys, so its expiry is written into the query. `vector()` makes one
    series that is always there: the rule never lacks data.
    """
    return f"(vector({expires_at}) - time()) / {DAY_SECONDS}"


def certificate_alert_group(datasource_uid: str, anchor_expires_at: int | None) -> dict[str, Any]:
    """A rule group: the identity issuer's and the trust anchor's remaining lifetime, each at
    a warning and a critical threshold. Without `anchor_expires_at`, the issuer's only."""
    days = '{{ printf "%.0f" $values.B.Value }} days'

    def expiry(
        uid: str, what: str, expr: str, limit: int, severity: str, hint: str, no_data: str
    ) -> dict[str, Any]:
        return _rule(
            uid,
            f"{what} expires in under {limit} days",
            expr,
            "lt",
            limit,
            datasource_uid,
            None,
            f"{what} expires in {days}{until} (threshold {limit} days).",
            severity=severity,
            pending=CERTIFICATE_PENDING,
            no_data=no_data,
            description=hint,
        )

    issuer, until = "The Linkerd identity issuer", ""
    rules = [
        # Without the gauge nothing watches the issuer (e.g. an external Prometheus that does not
        # scrape the control plane): Grafana's own NoData alert says so, once.
        expiry(
            ISSUER_WARNING_RULE_UID,
            issuer,
            issuer_days_left_query(),
            EXPIRY_WARNING_DAYS,
            "warning",
            RENEW_HINT,
            "NoData",
        ),
        expiry(
            ISSUER_CRITICAL_RULE_UID,
            issuer,
            issuer_days_left_query(),
            EXPIRY_CRITICAL_DAYS,
            "critical",
            RENEW_HINT,
            "OK",
        ),
    ]
    if anchor_expires_at is not None:
        end = datetime.datetime.fromtimestamp(anchor_expires_at, datetime.UTC)
        anchor, until = "The mesh trust anchor", f", on {end:%Y-%m-%d %H:%M} UTC"
        for uid, limit, severity in (
            (ANCHOR_WARNING_RULE_UID, EXPIRY_WARNING_DAYS, "warning"),
            (ANCHOR_CRITICAL_RULE_UID, EXPIRY_CRITICAL_DAYS, "critical"),
        ):
            rules.append(
                expiry(
                    uid,
                    anchor,
                    anchor_days_left_query(anchor_expires_at),
                    limit,
                    severity,
                    ROTATE_HINT,
                    "OK",
                )
            )
    return {
        "orgId": 1,
        "name": CERTIFICATE_GROUP,
        "folder": ALERT_FOLDER,
        "interval": "5m",
        "rules": rules,
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


# --- Linkerd dashboards ----------------------------------------------------------------------
# The Linkerd folder, generated here so Grafana needs no download at start. Each reads the
# proxy's own families (linkerd2-proxy, as viz's Prometheus labels them): `response_total`,
# `response_latency_ms_bucket`, `tcp_open_connections` (legacy, `:4191/metrics`),
# `inbound_http_authz_deny_total`, and the route families `outbound_http_route_*`.

LINKERD_TOP_LINE_UID = "meshstack-linkerd-top-line"
LINKERD_WORKLOAD_UID = "meshstack-linkerd-workload"
LINKERD_ROUTES_UID = "meshstack-linkerd-routes"
_WORKLOAD_FILTERS = 'namespace=~"$namespace", deployment=~"$deployment"'


def _ratio(selector: str, by: str, window: str) -> str:
    """Share of `response_total{selector}` classified successful, per `by` (0..1)."""
    return (
        f'sum by ({by}) (rate(response_total{{{selector}, classification="success"}}[{window}]))'
        f" / sum by ({by}) (rate(response_total{{{selector}}}[{window}]))"
    )


def _rps(selector: str, by: str, window: str) -> str:
    return f"sum by ({by}) (rate(response_total{{{selector}}}[{window}]))"


def _p99(selector: str, by: str, window: str) -> str:
    return (
        f"histogram_quantile(0.99, sum by (le, {by}) "
        f"(rate(response_latency_ms_bucket{{{selector}}}[{window}])))"
    )


def _row_of_three(
    first_id: int, y: int, what: str, selector: str, by: str, legend: str, ds: str
) -> list[dict[str, Any]]:
    """Success rate, requests per second and p99 latency side by side."""
    w = "$__rate_interval"
    specs = [
        ("Success rate", "percentunit", _ratio(selector, by, w), {"min": 0, "max": 1}),
        ("Requests per second", "reqps", _rps(selector, by, w), {"min": 0}),
        ("p99 latency", "ms", _p99(selector, by, w), {"min": 0}),
    ]
    return [
        _timeseries(
            first_id + i,
            f"{what}: {title}",
            f"{what} ({selector}).",
            unit,
            {"x": 8 * i, "y": y, "w": 8, "h": 8},
            [_target("A", expr, legend, ds)],
            ds,
            extra_defaults=extra,
        )
        for i, (title, unit, expr, extra) in enumerate(specs)
    ]


def _dashboard(
    uid: str,
    title: str,
    description: str,
    panels: list[dict[str, Any]],
    variables: list[Any],
    tags: list[str] | None = None,
) -> dict[str, Any]:
    """A dashboard of this stack: not editable (provisioned from files), last hour, 30s."""
    return {
        "uid": uid,
        "title": title,
        "description": description,
        "tags": tags or ["linkerd", "meshstack"],
        "editable": False,
        "graphTooltip": 1,
        "refresh": "30s",
        "schemaVersion": 39,
        "version": 1,
        "time": {"from": "now-1h", "to": "now"},
        "timezone": "browser",
        "templating": {"list": variables},
        "annotations": {"list": []},
        "links": [],
        "panels": panels,
    }


def _single(
    panel_id: int, title: str, description: str, unit: str, grid: tuple[int, int, int], target: Any
) -> dict[str, Any]:
    """One query drawn from zero up; `grid` is (x, y, width), 8 high; `target` (expr, legend,
    datasource uid)."""
    expr, legend, ds = target
    x, y, w = grid
    return _timeseries(
        panel_id,
        title,
        description,
        unit,
        {"x": x, "y": y, "w": w, "h": 8},
        [_target("A", expr, legend, ds)],
        ds,
        extra_defaults={"min": 0},
    )


def linkerd_dashboards(datasource_uid: str) -> dict[str, dict[str, Any]]:
    """File name → dashboard, for the Linkerd folder: the mesh by namespace, one workload's
    inbound and outbound traffic, and the traffic of HTTPRoutes and GRPCRoutes."""
    ds = datasource_uid
    namespaces = 'label_values(response_total{direction="inbound"}, namespace)'
    deployments = (
        'label_values(response_total{direction="inbound", namespace=~"$namespace"}, deployment)'
    )
    ns_var = _variable("namespace", "Namespace", namespaces, ds)
    deploy_var = _variable("deployment", "Deployment", deployments, ds)
    rate = "[$__rate_interval]"

    top_line = _dashboard(
        LINKERD_TOP_LINE_UID,
        "Linkerd: mesh by namespace",
        "Inbound traffic of every meshed namespace (meshstack).",
        _row_of_three(1, 0, "Inbound", 'direction="inbound"', "namespace", "{{namespace}}", ds),
        [],
    )

    inbound = f'direction="inbound", {_WORKLOAD_FILTERS}'
    outbound = f'direction="outbound", {_WORKLOAD_FILTERS}, dst_deployment!=""'
    workload = _dashboard(
        LINKERD_WORKLOAD_UID,
        "Linkerd: workload",
        "One deployment's inbound traffic, the deployments it calls, its connections and "
        "refused requests (meshstack).",
        [
            *_row_of_three(1, 0, "Inbound", inbound, "namespace, deployment", "{{deployment}}", ds),
            *_row_of_three(
                4,
                8,
                "Outbound",
                outbound,
                "dst_namespace, dst_deployment",
                "→ {{dst_namespace}}/{{dst_deployment}}",
                ds,
            ),
            _single(
                7,
                "Open TCP connections",
                "Connections the proxies hold open, by direction (tcp_open_connections).",
                "short",
                (0, 16, 12),
                (
                    f"sum by (direction) (tcp_open_connections{{{_WORKLOAD_FILTERS}}})",
                    "{{direction}}",
                    ds,
                ),
            ),
            _single(
                8,
                "Requests refused by policy",
                "Inbound HTTP requests no AuthorizationPolicy admitted "
                "(inbound_http_authz_deny_total).",
                "reqps",
                (12, 16, 12),
                (
                    "sum by (deployment, srv_name) (rate(inbound_http_authz_deny_total"
                    f"{{{_WORKLOAD_FILTERS}}}{rate}))",
                    "{{deployment}} {{srv_name}}",
                    ds,
                ),
            ),
        ],
        [ns_var, deploy_var],
    )

    route_filters = 'parent_namespace=~"$namespace"'
    by_route = "parent_namespace, parent_name, route_name"
    http_routes = "outbound_http_route_request_statuses_total"
    grpc_routes = "outbound_grpc_route_request_statuses_total"
    legend = "{{parent_name}} {{route_name}}"
    routes = _dashboard(
        LINKERD_ROUTES_UID,
        "Linkerd: routes",
        "Traffic of each HTTPRoute and GRPCRoute, as the calling proxies see it (meshstack).",
        [
            _single(
                1,
                "HTTP route requests per second",
                f"{http_routes}, by route.",
                "reqps",
                (0, 0, 12),
                (f"sum by ({by_route}) (rate({http_routes}{{{route_filters}}}{rate}))", legend, ds),
            ),
            _single(
                2,
                "HTTP route 5xx and errors per second",
                f"{http_routes} with a 5xx status or none (an error).",
                "reqps",
                (12, 0, 12),
                (
                    f"sum by ({by_route}) (rate({http_routes}"
                    f'{{{route_filters}, http_status=~"5..|"}}{rate}))',
                    legend,
                    ds,
                ),
            ),
            _single(
                3,
                "gRPC route requests per second",
                f"{grpc_routes}, by route and status.",
                "reqps",
                (0, 8, 24),
                (
                    f"sum by ({by_route}, grpc_status) "
                    f"(rate({grpc_routes}{{{route_filters}}}{rate}))",
                    f"{legend} {{{{grpc_status}}}}",
                    ds,
                ),
            ),
        ],
        [ns_var],
    )
    return {
        "linkerd-top-line.json": top_line,
        "linkerd-workload.json": workload,
        "linkerd-routes.json": routes,
    }


# --- RED metrics from traces -----------------------------------------------------------------
# Jaeger's spanmetrics connector (components/tracing.py) through the Prometheus exporter: with
# the default namespace `traces.span.metrics`, unit ms and the exporter's suffixes, the families
# are `traces_span_metrics_calls_total` and `traces_span_metrics_duration_milliseconds_*`,
# labelled `service_name`, `span_name`, `span_kind` and `status_code`
# (opentelemetry-collector-contrib connector/spanmetricsconnector README; Jaeger's SPM reads
# the same names: internal/storage/metricstore/prometheus).

SPAN_CALLS = "traces_span_metrics_calls_total"
SPAN_DURATION_BUCKET = "traces_span_metrics_duration_milliseconds_bucket"
RED_UID = "meshstack-red-from-traces"
RED_FILE = "red-from-traces.json"
# Server spans only: each request once, where it is served (client spans would count it twice).
_SERVER_SPANS = 'span_kind="SPAN_KIND_SERVER", service_name=~"$service"'


def red_dashboard(datasource_uid: str) -> dict[str, Any]:
    """Rate, errors and duration per service from every span (app spans as well as the
    proxies'); the latency panel shows exemplars, each a link to its trace."""
    ds = datasource_uid
    rate = "[$__rate_interval]"
    by = "service_name"
    latency = _single(
        3,
        "p99 duration (exemplars link to traces)",
        f"{SPAN_DURATION_BUCKET}: server spans; a dot is one sampled request's trace.",
        "ms",
        (0, 8, 24),
        (
            f"histogram_quantile(0.99, sum by (le, {by}) "
            f"(rate({SPAN_DURATION_BUCKET}{{{_SERVER_SPANS}}}{rate})))",
            "{{service_name}}",
            ds,
        ),
    )
    latency["targets"][0]["exemplar"] = True
    services = f"label_values({SPAN_CALLS}, service_name)"
    return _dashboard(
        RED_UID,
        "RED from traces",
        "Requests, errors and duration per service, computed from spans (meshstack).",
        [
            _single(
                1,
                "Requests per second",
                f"{SPAN_CALLS}: server spans.",
                "reqps",
                (0, 0, 12),
                (
                    f"sum by ({by}) (rate({SPAN_CALLS}{{{_SERVER_SPANS}}}{rate}))",
                    "{{service_name}}",
                    ds,
                ),
            ),
            _single(
                2,
                "Errors per second",
                f"{SPAN_CALLS}: server spans with an error status.",
                "reqps",
                (12, 0, 12),
                (
                    f"sum by ({by}) (rate({SPAN_CALLS}"
                    f'{{{_SERVER_SPANS}, status_code="STATUS_CODE_ERROR"}}{rate}))',
                    "{{service_name}}",
                    ds,
                ),
            ),
            latency,
        ],
        [_variable("service", "Service", services, ds)],
        tags=["traces", "red", "meshstack"],
    )
