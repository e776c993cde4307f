"""Service level objectives from Linkerd's own metrics: queries, multi-window multi-burn-rate
alert rules and a dashboard, generated as data (pure functions, no resources), like
components/dashboards.py.

An objective names a meshed deployment (`namespace`, `deployment`), a success objective (the
share of inbound responses Linkerd does not classify as failures), optionally a latency
objective (the share of inbound responses faster than a bound), and the window the error
budget is counted over. Both SLIs read what every meshed pod's proxy exports, so any meshed
workload gets an SLO without an app change:

- `response_total{direction="inbound", classification="success"|"failure"}`: the proxy's
  legacy HTTP metrics; 5xx, gRPC errors and transport errors count as failures
  (linkerd2-proxy linkerd/http/metrics/src/requests/report.rs, linkerd/app/core/src/classify.rs);
- `response_latency_ms_bucket{le}` and `response_latency_ms_count`: the same requests'
  latency, from the request's headers to the end of the response stream, in buckets of fixed
  bounds (linkerd2-proxy linkerd/metrics/src/latency.rs, `LATENCY_BUCKETS_MS`); a bound prints
  as a whole number (`le="300"`, linkerd/metrics/src/histogram.rs `impl Display for Bucket`);
- `namespace` and `deployment`: added by viz's `linkerd-proxy` scrape job from the pod's
  namespace and its `linkerd.io/proxy-deployment` label (linkerd-viz chart
  templates/prometheus.yaml).

Alerting follows the SRE Workbook ("Alerting on SLOs", table 5-8): a row fires when the error
ratio over both its long and its short window exceeds `factor * (1 - objective)`; rows are
OR-ed as separate rules. The factors are the workbook's for a 30-day budget; over another
window a row still means "at this rate the whole budget is gone in window/factor".

The longest burn-rate window (3 days) and the budget window (30 days by default) must be in
the metrics: viz's Prometheus keeps 6 hours by default, so the stack raises its retention to
the longest objective window (components/viz.py) and gives it a volume in prod.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

# --- Objectives ------------------------------------------------------------------------------

# linkerd2-proxy linkerd/metrics/src/latency.rs: the bounds of `response_latency_ms`, in ms.
LATENCY_BUCKETS_MS = (
    *(1, 2, 3, 4, 5, 10, 20, 30, 40, 50, 100, 200, 300, 400, 500),
    *(1000, 2000, 3000, 4000, 5000, 10000, 20000, 30000, 40000, 50000),
)


@dataclass(frozen=True)
class Objective:
    """One deployment's SLO."""

    namespace: str
    deployment: str
    success_percent: float
    """Inbound responses not classified as failures, in percent (0 < x < 100)."""
    latency_ms: int = 0
    """A bound of `LATENCY_BUCKETS_MS`; 0: no latency objective."""
    latency_percent: float = 99.0
    """Inbound responses faster than `latency_ms`, in percent (0 < x < 100)."""
    window_hours: int = 30 * 24
    """The error budget's window; at least `LONGEST_BURN_WINDOW_HOURS`."""

    @property
    def name(self) -> str:
        return f"{self.namespace}/{self.deployment}"


@dataclass(frozen=True)
class BurnRate:
    """One row of the alerting table: both windows above factor * budget fire it."""

    severity: str
    long: str
    short: str
    factor: float
    pending: str
    """How long both windows must burn before the rule fires (Pyrra's `for` for its rows)."""


# SRE Workbook table 5-8 (https://sre.google/workbook/alerting-on-slos/), also Sloth's
# google-30d windows: 2% of a 30-day budget in 1h, 5% in 6h (page), 10% in 3d (ticket).
BURN_RATES = (
    BurnRate("page", "1h", "5m", 14.4, "2m"),
    BurnRate("page", "6h", "30m", 6.0, "15m"),
    BurnRate("ticket", "3d", "6h", 1.0, "1h"),
)
WINDOW_HOURS = {"5m": 5 / 60, "30m": 0.5, "1h": 1, "6h": 6, "3d": 72}
LONGEST_BURN_WINDOW_HOURS = int(max(WINDOW_HOURS[b.long] for b in BURN_RATES))

# Emojivoto's objectives when `slo.objectives` is not set: every deployment that serves
# requests, 99.5% successful and 99% under 300 ms, over 30 days. voting fails votes for one
# emoji on purpose (about 1%), so its budget burns slowly and its ticket rule shows it.
DEFAULT_SUCCESS_PERCENT = 99.5
DEFAULT_LATENCY_MS = 300
DEFAULT_LATENCY_PERCENT = 99.0
DEFAULT_WINDOW_HOURS = 30 * 24


def duration(hours: int) -> str:
    """A PromQL duration: whole days where it divides, hours otherwise."""
    return f"{hours // 24}d" if hours % 24 == 0 else f"{hours}h"


# --- Queries ---------------------------------------------------------------------------------


def selector(o: Objective) -> str:
    return f'direction="inbound", namespace="{o.namespace}", deployment="{o.deployment}"'


def success_error_ratio(o: Objective, window: str) -> str:
    """Share of inbound responses classified as failures over `window` (0..1)."""
    sel = selector(o)
    return (
        f'sum(rate(response_total{{{sel}, classification="failure"}}[{window}]))'
        f" / sum(rate(response_total{{{sel}}}[{window}]))"
    )


def latency_error_ratio(o: Objective, window: str) -> str:
    """Share of inbound responses slower than `o.latency_ms` over `window` (0..1)."""
    sel = selector(o)
    return (
        f'1 - sum(rate(response_latency_ms_bucket{{{sel}, le="{o.latency_ms}"}}[{window}]))'
        f" / sum(rate(response_latency_ms_count{{{sel}}}[{window}]))"
    )


@dataclass(frozen=True)
class Sli:
    kind: str
    """`success` or `latency`."""
    objective: Objective
    target_percent: float

    @property
    def budget(self) -> float:
        """The error budget: the share of requests allowed to miss (0..1)."""
        return 1 - self.target_percent / 100

    def error_ratio(self, window: str) -> str:
        if self.kind == "success":
            return success_error_ratio(self.objective, window)
        return latency_error_ratio(self.objective, window)

    @property
    def title(self) -> str:
        if self.kind == "success":
            return f"{self.objective.name} {self.target_percent:g}% successful"
        return f"{self.objective.name} {self.target_percent:g}% under {self.objective.latency_ms}ms"


def slis(o: Objective) -> list[Sli]:
    out = [Sli("success", o, o.success_percent)]
    if o.latency_ms:
        out.append(Sli("latency", o, o.latency_percent))
    return out


def burn_rate_query(sli: Sli, window: str) -> str:
    """How many times faster than the budget allows the SLI burns over `window`."""
    return f"({sli.error_ratio(window)}) / {sli.budget:.6g}"


# --- Alert rules (Grafana file provisioning, apiVersion 1) -----------------------------------

SLO_FOLDER = "Meshstack SLOs"
SLO_GROUP = "slo-burn-rate"
DASHBOARD_UID = "meshstack-slo"
DASHBOARD_FILE = "slo.json"


def rule_uid(sli: Sli, burn: BurnRate) -> str:
    """Stable and within Grafana's 40-character uid limit, whatever the names' length."""
    key = f"{sli.objective.name}/{sli.kind}/{burn.long}"
    return f"slo-{sli.kind}-{burn.long}-{hashlib.sha256(key.encode()).hexdigest()[:16]}"


def _query(ref: str, expr: str, window: str, datasource_uid: str) -> dict[str, Any]:
    seconds = int(WINDOW_HOURS[window] * 3600)
    return {
        "refId": ref,
        "relativeTimeRange": {"from": max(seconds, 600), "to": 0},
        "datasourceUid": datasource_uid,
        "model": {"refId": ref, "expr": expr, "instant": True, "range": False},
    }


def burn_rule(sli: Sli, burn: BurnRate, datasource_uid: str) -> dict[str, Any]:
    """Fires when the error ratio over both windows of `burn` exceeds factor * budget."""
    threshold = burn.factor * sli.budget
    o = sli.objective
    return {
        "uid": rule_uid(sli, burn),
        "title": f"SLO {sli.title}: burning {burn.factor:g}x over {burn.long} and {burn.short}",
        "condition": "C",
        "data": [
            _query("A", sli.error_ratio(burn.long), burn.long, datasource_uid),
            _query("B", sli.error_ratio(burn.short), burn.short, datasource_uid),
            {
                "refId": "C",
                "datasourceUid": "__expr__",
                "model": {
                    "refId": "C",
                    "type": "math",
                    # No traffic gives NaN, which compares false: nothing fires.
                    "expression": f"$A > {threshold:.6g} && $B > {threshold:.6g}",
                    "datasource": {"type": "__expr__", "uid": "__expr__"},
                },
            },
        ],
        "dashboardUid": DASHBOARD_UID,
        "for": burn.pending,
        "noDataState": "OK",
        "execErrState": "Error",
        "labels": {
            "severity": burn.severity,
            "source": "meshstack",
            "slo": sli.kind,
            "namespace": o.namespace,
            "deployment": o.deployment,
            "long_window": burn.long,
            "short_window": burn.short,
        },
        "annotations": {
            "summary": (
                f"{o.name}: the {sli.kind} error budget ({100 - sli.target_percent:g}% of "
                f"{duration(o.window_hours)}) burns over {burn.factor:g}x the sustainable rate "
                f"in the last {burn.long} and {burn.short}"
            ),
        },
    }


def alert_group(objectives: tuple[Objective, ...], datasource_uid: str) -> dict[str, Any]:
    """The rule group: every SLI of every objective, for every row of `BURN_RATES`."""
    return {
        "orgId": 1,
        "name": SLO_GROUP,
        "folder": SLO_FOLDER,
        "interval": "1m",
        "rules": [
            burn_rule(sli, burn, datasource_uid)
            for o in objectives
            for sli in slis(o)
            for burn in BURN_RATES
        ],
    }


# --- Dashboard -------------------------------------------------------------------------------


def _panel(
    panel_id: int, kind: str, title: str, grid: dict[str, int], targets: list[Any], ds: str
) -> dict[str, Any]:
    return {
        "id": panel_id,
        "type": kind,
        "title": title,
        "datasource": {"type": "prometheus", "uid": ds},
        "gridPos": grid,
        "targets": targets,
        "fieldConfig": {"defaults": {}, "overrides": []},
        "options": {},
    }


def _target(ref: str, expr: str, legend: str, ds: str) -> dict[str, Any]:
    return {
        "refId": ref,
        "datasource": {"type": "prometheus", "uid": ds},
        "expr": expr,
        "legendFormat": legend,
        "editorMode": "code",
    }


def dashboard(objectives: tuple[Objective, ...], datasource_uid: str) -> dict[str, Any]:
    """One row per SLI: the error budget left over the objective's window, the SLI over the
    window, and the burn rate over the alerting windows."""
    ds = datasource_uid
    panels: list[dict[str, Any]] = []
    y = 0
    for sli in (s for o in objectives for s in slis(o)):
        window = duration(sli.objective.window_hours)
        base = len(panels) + 1
        budget_left = _panel(
            base,
            "stat",
            f"{sli.title}: error budget left ({window})",
            {"x": 0, "y": y, "w": 6, "h": 6},
            [_target("A", f"1 - ({sli.error_ratio(window)}) / {sli.budget:.6g}", "", ds)],
            ds,
        )
        budget_left["fieldConfig"]["defaults"] = {
            "unit": "percentunit",
            "thresholds": {
                "mode": "absolute",
                "steps": [
                    {"color": "red", "value": None},
                    {"color": "orange", "value": 0.25},
                    {"color": "green", "value": 0.5},
                ],
            },
        }
        achieved = _panel(
            base + 1,
            "stat",
            f"{sli.title}: achieved ({window})",
            {"x": 6, "y": y, "w": 6, "h": 6},
            [_target("A", f"1 - ({sli.error_ratio(window)})", "", ds)],
            ds,
        )
        achieved["fieldConfig"]["defaults"] = {"unit": "percentunit", "decimals": 3}
        burn = _panel(
            base + 2,
            "timeseries",
            f"{sli.title}: burn rate",
            {"x": 12, "y": y, "w": 12, "h": 6},
            [
                _target(chr(ord("A") + i), burn_rate_query(sli, w), w, ds)
                for i, w in enumerate(dict.fromkeys(b.long for b in BURN_RATES))
            ],
            ds,
        )
        burn["fieldConfig"]["defaults"] = {
            "unit": "x",
            "min": 0,
            "custom": {"thresholdsStyle": {"mode": "line"}},
            "thresholds": {
                "mode": "absolute",
                "steps": [
                    {"color": "green", "value": None},
                    *({"color": "red", "value": b.factor} for b in BURN_RATES[:1]),
                ],
            },
        }
        panels += [budget_left, achieved, burn]
        y += 6
    return {
        "uid": DASHBOARD_UID,
        "title": "Service level objectives",
        "description": "Error budgets and burn rates of the stack's SLOs (meshstack).",
        "tags": ["slo", "linkerd", "meshstack"],
        "editable": False,
        "refresh": "1m",
        "schemaVersion": 39,
        "version": 1,
        "time": {"from": "now-24h", "to": "now"},
        "timezone": "browser",
        "templating": {"list": []},
        "annotations": {"list": []},
        "links": [],
        "panels": panels,
    }
