"""The data plane follows the control plane: a change in what Linkerd's proxies are injected with
rolls every meshed workload the stack owns in the same `up`, and nothing else does.

Running proxies never change: the injector builds a proxy when its pod is created. So every pod
template the stack owns in a meshed namespace carries a digest of the injected configuration
(`mesh.proxy_config`), and a new digest is a new template. These tests run the real program
twice with one input changed and compare what each workload's template is made of.
"""

from __future__ import annotations

import asyncio
import runpy
from collections.abc import Iterator
from typing import Any

import pulumi
import pytest
from pulumi.output import UNKNOWN

from components import mesh, tracing, versions
from components.versions import ChartRef
from tests.graph import ROOT, Graph, record, run_program, stack_config
from tests.test_mesh import cp_values

DEPLOYMENT = "kubernetes:apps/v1:Deployment"
# The stack's meshed namespaces, whose every workload is the stack's own (team namespaces hold
# the teams' workloads, which the README tells them to restart).
OWNED_MESHED = ("linkerd-viz", "tracing", "grafana", "emojivoto")


# --- What the digest is made of (pure) -------------------------------------------------------


def digest(values: dict[str, Any], version: str = "2026.8.3") -> str:
    return mesh.config_digest(mesh.proxy_config(values, version))


def test_the_proxy_config_is_the_version_and_the_values_the_injector_copies_into_proxies() -> None:
    values = cp_values()
    config = mesh.proxy_config(values, "2026.8.3")
    assert set(config) == {"linkerdVersion", *mesh.PROXY_VALUE_KEYS} & {"linkerdVersion", *values}
    assert config["identityTrustAnchorsPEM"] == "anchor"
    assert config["proxy"] == values["proxy"]


def _with(values: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    import copy

    out = copy.deepcopy(values)
    *parents, leaf = path.split(".")
    node = out
    for key in parents:
        node = node.setdefault(key, {})
    node[leaf] = value
    return out


TRACING = mesh.TracingHookup("otel-collector.tracing.svc.cluster.local:4317", "c", "tracing")


@pytest.mark.parametrize(
    ("path", "value"),
    [
        ("identityTrustAnchorsPEM", "anchor\nnext-anchor"),  # a bundle during a rotation
        ("proxy.resources.cpu.limit", "2"),
        ("proxy.tracing.collector.endpoint", "collector.elsewhere.svc.cluster.local:4317"),
        ("identityTrustDomain", "mesh.internal"),
        ("clusterDomain", "mesh.internal"),
    ],
)
def test_anything_a_proxy_is_injected_with_changes_the_digest(path: str, value: Any) -> None:
    base = cp_values(tracing=TRACING)
    assert digest(_with(base, path, value)) != digest(base)


def test_a_new_linkerd_version_changes_the_digest() -> None:
    assert digest(cp_values(), "2026.9.1") != digest(cp_values(), "2026.8.3")


def test_turning_proxy_tracing_on_changes_the_digest() -> None:
    assert digest(cp_values(tracing=TRACING)) != digest(cp_values())


@pytest.mark.parametrize(
    ("path", "value"),
    [
        # The issuer signs proxies' certificates at run time: nothing of it is in a proxy.
        ("identity.issuer.tls.crtPEM", "renewed-issuer"),
        ("identity.issuer.tls.keyPEM", "renewed-key"),
        # Webhook certificates, the control plane's own pods and schedules.
        ("proxyInjector.crtPEM", "renewed-webhook"),
        ("destinationResources.cpu.limit", "4"),
        ("controllerReplicas", 3),
        ("heartbeatSchedule", "1 1 * * *"),
    ],
)
def test_what_no_proxy_holds_leaves_the_digest_alone(path: str, value: Any) -> None:
    base = cp_values()
    assert digest(_with(base, path, value)) == digest(base)


def test_the_digest_is_stable_and_independent_of_key_order() -> None:
    values = cp_values(tracing=TRACING)
    reordered = dict(reversed(list(values.items())))
    assert digest(values) == digest(reordered) == digest(cp_values(tracing=TRACING))
    assert len(digest(values)) == 64


def test_a_preview_that_cannot_know_the_trust_anchor_yet_gets_a_placeholder() -> None:
    # A trust anchor created (or replaced) by this very `up` is unknown in its preview; a
    # known placeholder keeps the charts that carry the digest renderable there.
    assert mesh.config_digest(UNKNOWN) == mesh.PROXY_CONFIG_PENDING
    assert mesh.config_digest({"identityTrustAnchorsPEM": UNKNOWN}) == mesh.PROXY_CONFIG_PENDING

    async def preview() -> tuple[Any, bool]:
        loop = asyncio.get_running_loop()
        value, known = loop.create_future(), loop.create_future()
        value.set_result(None)
        known.set_result(False)
        anchor: pulumi.Output[str] = pulumi.Output(set(), value, known)
        out = mesh.proxy_config_digest({"identityTrustAnchorsPEM": anchor, "proxy": {}})
        return await out.future(), await out.is_known()

    # A loop of its own: asyncio.run would unset the thread's loop the mock runs use.
    loop = asyncio.new_event_loop()
    try:
        assert loop.run_until_complete(preview()) == (mesh.PROXY_CONFIG_PENDING, True)
    finally:
        loop.close()


# --- The program, run twice ------------------------------------------------------------------


def carriers(g: Graph) -> dict[str, Any]:
    """Workload → the proxy-config digest its pod template is built with, for every workload
    of the stack's meshed namespaces: a Deployment's template annotation, or the chart value
    the chart puts in its pod templates (podAnnotations; Jaeger's env)."""
    out: dict[str, Any] = {}
    for d in g.of_type(DEPLOYMENT):
        template = d.inputs["spec"]["template"]
        annotations = template["metadata"].get("annotations") or {}
        out[f"deployment {d.inputs['metadata']['name']}"] = annotations.get(
            mesh.PROXY_CONFIG_ANNOTATION
        )
    charts = g.charts()
    releases: tuple[str, ...] = ("linkerd-viz", "otel-collector", "grafana")
    # oauth2-proxy in front of the dashboard and Jaeger (components/auth.py).
    releases += ("oauth2-proxy-dashboard", "oauth2-proxy-jaeger")
    for release, key in ((r, None) for r in releases):
        if release in charts:
            values = charts[release].inputs["values"]
            out[f"chart {release}"] = (values.get("podAnnotations") or {}).get(
                key or mesh.PROXY_CONFIG_ANNOTATION
            )
    if "jaeger" in charts:
        env = charts["jaeger"].inputs["values"]["jaeger"]["extraEnv"]
        found = [e["value"] for e in env if e["name"] == mesh.PROXY_CONFIG_ENV]
        out["chart jaeger"] = found[0] if found else None
    return out


def expected_digest(g: Graph) -> str:
    """The digest computed from what the graph hands the control-plane chart."""
    cp = g.charts()["linkerd-control-plane"]
    return mesh.config_digest(mesh.proxy_config(cp.inputs["values"], cp.inputs["version"]))


def meshed_workload_charts(g: Graph) -> set[str]:
    """Releases the stack installs into its own meshed namespaces."""
    return {
        f"chart {release}"
        for release, c in g.charts().items()
        if c.inputs.get("namespace") in OWNED_MESHED
    }


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_every_meshed_workload_the_stack_owns_carries_the_digest_of_its_control_plane(
    graphs: dict[str, Graph], stack: str
) -> None:
    g = graphs[stack]
    found = carriers(g)
    # Every chart in a meshed namespace of the stack, and every Deployment the program writes.
    assert meshed_workload_charts(g) <= set(found), meshed_workload_charts(g) - set(found)
    assert len(found) >= 3
    want = expected_digest(g)
    assert found == {workload: want for workload in found}


@pytest.fixture
def linkerd_bumped(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The Linkerd pins at another edge release, as an upgrade bumps components/versions.py."""
    bumped = "2026.9.1"
    monkeypatch.setattr(versions, "LINKERD_VERSION", bumped)
    for name in ("LINKERD_CRDS", "LINKERD_CONTROL_PLANE", "LINKERD_VIZ"):
        ref: ChartRef = getattr(versions, name)
        monkeypatch.setattr(versions, name, ChartRef(ref.chart, bumped, ref.repo))
    yield bumped


def _runs(overrides: dict[str, Any] | None = None) -> Graph:
    g = run_program("dev", overrides)
    assert g.error is None, g.error
    return g


def _assert_every_carrier_changed(before: Graph, after: Graph) -> None:
    old, new = carriers(before), carriers(after)
    common = set(old) & set(new)
    assert len(common) >= 3, common
    same = sorted(w for w in common if old[w] == new[w])
    assert not same, f"these pod templates would not roll: {same}"
    assert set(new.values()) == {expected_digest(after)}


def test_a_linkerd_upgrade_rolls_every_meshed_workload_the_stack_owns(
    graphs: dict[str, Graph], linkerd_bumped: str
) -> None:
    after = _runs()
    assert after.charts()["linkerd-control-plane"].inputs["version"] == linkerd_bumped
    _assert_every_carrier_changed(graphs["dev"], after)


def test_a_new_tracing_endpoint_rolls_every_meshed_workload_the_stack_owns(
    graphs: dict[str, Graph], monkeypatch: pytest.MonkeyPatch
) -> None:
    # The collector's OTLP port moves, and with it the endpoint every proxy exports to; the
    # emojivoto Deployments and Grafana change in nothing else, so only the digest rolls them.
    monkeypatch.setattr(tracing, "OTLP_GRPC_PORT", 4327)
    before, after = graphs["dev"], _runs()
    cp = "linkerd-control-plane"
    endpoint = after.charts()[cp].inputs["values"]["proxy"]["tracing"]["collector"]["endpoint"]
    assert endpoint.endswith(":4327")
    _assert_every_carrier_changed(before, after)
    for d in before.of_type(DEPLOYMENT):
        new = after.get(DEPLOYMENT, d.name)
        old_template, new_template = d.inputs["spec"]["template"], new.inputs["spec"]["template"]
        assert old_template != new_template
        old_template["metadata"].pop("annotations")
        new_template["metadata"].pop("annotations")
        assert old_template == new_template, d.name


@pytest.mark.parametrize(
    "overrides",
    [
        {"enableTracing": False},
        # A new trust anchor: the mock CA signs a different certificate.
        {"linkerd": {"identity": {"trustAnchorValidityHours": 80000}}},
    ],
    ids=["tracing-off", "new-trust-anchor"],
)
def test_config_that_changes_what_proxies_hold_rolls_every_meshed_workload(
    graphs: dict[str, Graph], overrides: dict[str, Any]
) -> None:
    _assert_every_carrier_changed(graphs["dev"], _runs(overrides))


@pytest.mark.parametrize(
    "overrides",
    [
        {"emojivoto": {"replicas": 2}},
        {"grafana": {"alerts": {"latencyP99Ms": 250}}},
        # A new issuer certificate: proxies fetch theirs from identity at run time.
        {"linkerd": {"identity": {"issuerValidityHours": 8000}}},
    ],
    ids=["replicas", "alert-threshold", "new-issuer"],
)
def test_config_no_proxy_holds_rolls_no_pod_for_the_proxys_sake(
    graphs: dict[str, Graph], overrides: dict[str, Any]
) -> None:
    assert carriers(_runs(overrides)) == carriers(graphs["dev"])


def test_a_fresh_preview_shows_the_placeholder_and_keeps_the_charts_renderable() -> None:
    # In the first preview of a stack the trust anchor does not exist yet: the digest reads
    # `pending` (known), so the collector, Jaeger and Grafana still render and show their pods.
    from tests.test_preview import FreshPreview, _has_unknown

    g = record(
        lambda: runpy.run_path(str(ROOT / "__main__.py"), run_name="__main__"),
        stack="dev",
        config=stack_config("dev"),
        engine=FreshPreview(),
        preview=True,
    )
    assert g.error is None, g.error
    found = carriers(g)
    owned = {w: v for w, v in found.items() if w != "chart linkerd-viz"}
    assert owned and set(owned.values()) == {mesh.PROXY_CONFIG_PENDING}, found
    for release in ("jaeger", "otel-collector", "grafana"):
        assert not _has_unknown(g.charts()[release].raw_inputs), release
