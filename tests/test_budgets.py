"""Budgets the program holds itself to, read from its own recorded graph (never timings).

The figures come from `bench/footprint.py` and `bench/graphs.py`, the budgets from
`bench/budgets.py`; `make bench` prints the same figures in bench/results.md. The first half
checks the real program for every stack file, the second the pure functions on small graphs
built by hand.
"""

from __future__ import annotations

from typing import Any

import pytest

from bench import budgets
from bench import graphs as deps
from bench.footprint import (
    GI,
    MI,
    Amount,
    Sizes,
    cores,
    cpu_millis,
    footprint,
    gib,
    memory_bytes,
    mode_totals,
    parse_block,
)
from components import sizing
from tests.graph import Graph, Resource

CHART = "kubernetes:helm.sh/v4:Chart"


def _component(graph: Graph, name: str) -> Resource | None:
    found = [
        r
        for r in graph.resources
        if r.type.startswith("meshstack:") and deps.component_name(r.type) == name
    ]
    return found[0] if found else None


def _describe(path: list[Any]) -> str:
    # The URN's `type::name` tail: the stack and parent chain add nothing here.
    return " → ".join(r.urn.split("$")[-1] for r in path)


# --- Footprint -------------------------------------------------------------------------------


def test_the_dev_stack_requests_fit_a_laptop(dev: Graph) -> None:
    fp = footprint(dev)
    total = fp.totals()
    per_ns = "; ".join(
        f"{ns}: {cores(t.cpu_request_m)} CPU, {gib(t.memory_request_b)}"
        for ns, t in fp.namespaces().items()
    )
    assert total.cpu_request_m <= budgets.DEV_CPU_REQUEST_M, (
        f"dev requests {cores(total.cpu_request_m)} CPU, over the "
        f"{cores(budgets.DEV_CPU_REQUEST_M)} budget ({per_ns}); lower rows of "
        "components.sizing.SIZES['dev']"
    )
    assert total.memory_request_b <= budgets.DEV_MEMORY_REQUEST_B, (
        f"dev requests {gib(total.memory_request_b)}, over the "
        f"{gib(budgets.DEV_MEMORY_REQUEST_B)} budget ({per_ns}); lower rows of "
        "components.sizing.SIZES['dev']"
    )


def test_every_container_the_program_runs_has_requests_and_a_memory_limit(
    graphs: dict[str, Graph],
) -> None:
    for stack, graph in graphs.items():
        fp = footprint(graph)
        unsized = [f"{x.namespace}/{x.workload}/{x.container} ({x.source})" for x in fp.unsized]
        assert not unsized, f"{stack}: containers without requests: {unsized}"
        unbounded = [
            f"{x.namespace}/{x.workload}/{x.container}"
            for x in fp.lines
            if not x.init_excess and x.sizes.limits.memory_b is None
        ]
        assert not unbounded, f"{stack}: containers without a memory limit: {unbounded}"


def test_every_chart_the_program_installs_is_mapped_for_the_footprint(
    graphs: dict[str, Graph],
) -> None:
    for stack, graph in graphs.items():
        unmapped = [n for n in footprint(graph).notes if "not in bench/footprint.CHARTS" in n]
        assert not unmapped, f"{stack}: {unmapped}; add the chart's pods to footprint.CHARTS"


def test_chart_containers_get_the_sizing_row_the_footprint_table_names(
    graphs: dict[str, Graph],
) -> None:
    # Keeps footprint.CHARTS honest: a values key it reads must carry the row it names.
    for stack, graph in graphs.items():
        profile = graph.config.get("profile", "dev")
        for line in footprint(graph).lines:
            if not line.role or line.role not in sizing.SIZES[profile]:
                continue
            expected = parse_block(sizing.SIZES[profile][line.role].k8s())
            assert line.sizes == expected, (
                f"{stack}: {line.namespace}/{line.workload}/{line.container} ({line.source}) "
                f"has {line.sizes}, expected sizing row {line.role!r}"
            )


# --- Storage modes ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def mode_footprints() -> list[tuple[str, tuple[str, ...], Any]]:
    from tests.graph import run_program

    out = []
    for mode, namespaces, overrides in budgets.STORAGE_MODES:
        graph = run_program("prod", overrides)
        assert graph.error is None, f"{mode}: {graph.error}"
        out.append((mode, namespaces, footprint(graph)))
    return out


def test_every_storage_mode_runs_sized_containers_carrying_their_sizing_rows(
    mode_footprints: list[tuple[str, tuple[str, ...], Any]],
) -> None:
    for mode, namespaces, fp in mode_footprints:
        lines = [x for x in fp.lines if x.namespace in namespaces and not x.init_excess]
        assert lines, mode
        assert not [x for x in lines if not x.sizes.is_set], f"{mode}: unsized containers"
        assert not [x for x in lines if x.sizes.limits.memory_b is None], f"{mode}: no limit"
        for line in lines:
            if line.role in sizing.SIZES["prod"]:
                expected = parse_block(sizing.SIZES["prod"][line.role].k8s())
                assert line.sizes == expected, (mode, line.workload, line.container)
        assert not [n for n in fp.notes if "not in bench/footprint.CHARTS" in n], mode


def test_the_readme_sizing_table_is_what_each_storage_mode_requests(
    mode_footprints: list[tuple[str, tuple[str, ...], Any]],
) -> None:
    from tests.graph import ROOT
    from tests.markdown import table_in

    table = table_in(ROOT / "README.md", "Sizing per storage mode")
    written = {row[0].text: tuple(c.text for c in row[1:]) for row in table.rows}
    computed = {}
    for mode, namespaces, fp in mode_footprints:
        t = mode_totals(fp, namespaces)
        computed[mode] = (
            str(t.pods),
            cores(t.cpu_request_m),
            gib(t.memory_request_b),
            cores(t.cpu_limit_m),
            gib(t.memory_limit_b),
        )
    assert written == computed


def test_scaling_out_costs_more_than_one_pod_and_distributed_the_most(
    mode_footprints: list[tuple[str, tuple[str, ...], Any]],
) -> None:
    requests = {m: mode_totals(fp, ns).memory_request_b for m, ns, fp in mode_footprints}
    logs = [m for m in requests if m.startswith("logs:")]
    assert max(logs, key=requests.__getitem__) == "logs: s3, distributed"
    assert requests["logs: s3, monolithic (2 pods)"] > requests[logs[0]]
    # Two Jaeger replicas on a shared store request more than the one Badger pod.
    assert requests["traces: cassandra (external)"] > requests["traces: badger"]


# --- Readiness stages ------------------------------------------------------------------------


def test_an_up_waits_through_at_most_three_readiness_stages(graphs: dict[str, Graph]) -> None:
    over = {}
    for stack, graph in graphs.items():
        path = deps.critical_path(graph)
        if len(path) > budgets.MAX_READINESS_STAGES:
            over[stack] = f"{len(path)} stages: {_describe(path)}"
    assert not over, (
        f"more than {budgets.MAX_READINESS_STAGES} sequential readiness stages "
        f"(CRDs → control plane → everything else): {over}"
    )


# --- Dependencies between components ---------------------------------------------------------


def test_components_depend_only_on_the_components_they_need(graphs: dict[str, Graph]) -> None:
    for stack, graph in graphs.items():
        edges = deps.component_dependencies(graph)
        bad = deps.disallowed(edges, budgets.ALLOWED_DEPENDENCIES)
        assert not bad, f"{stack}: unneeded dependencies: " + "; ".join(
            f"{a} → {b} ({edges[(a, b)][0][0]} depends on {edges[(a, b)][0][1]})" for a, b in bad
        )


def test_every_component_in_the_program_has_an_allowed_dependency_entry(
    graphs: dict[str, Graph],
) -> None:
    for stack, graph in graphs.items():
        names = {
            deps.component_name(r.type) for r in graph.resources if r.type.startswith(deps.PACKAGE)
        }
        missing = names - set(budgets.ALLOWED_DEPENDENCIES)
        assert not missing, f"{stack}: add {sorted(missing)} to budgets.ALLOWED_DEPENDENCIES"


@pytest.mark.parametrize(
    ("dependent", "not_on"),
    [
        ("Logging", ("Grafana", "Tracing", "Emojivoto")),
        ("Tracing", ("Logging", "Grafana", "Emojivoto")),
        ("Emojivoto", ("Grafana", "Logging")),
        ("Onboarding", ("Grafana", "Logging", "Emojivoto")),
    ],
)
def test_components_do_not_wait_for_unrelated_ones(
    graphs: dict[str, Graph], dependent: str, not_on: tuple[str, ...]
) -> None:
    for stack, graph in graphs.items():
        res = _component(graph, dependent)
        if res is None:
            continue
        inside = [r for r in graph.resources if r is res or res in graph.ancestors(r)]
        for other_name in not_on:
            other = _component(graph, other_name)
            if other is None:
                continue
            waiting = [r.urn for r in inside if graph.waits_for(r, other)]
            assert not waiting, f"{stack}: {waiting} wait for {other.urn}"


# --- The pure functions, on graphs built by hand ---------------------------------------------


def res(
    name: str,
    type_: str = "kubernetes:core/v1:ConfigMap",
    deps: tuple[str, ...] = (),
    parent: str = "",
    inputs: dict[str, Any] | None = None,
) -> Resource:
    return Resource(
        urn=f"urn:{name}",
        type=type_,
        name=name,
        custom=not type_.startswith("meshstack:"),
        parent=f"urn:{parent}" if parent else "",
        dependencies=[f"urn:{d}" for d in deps],
        raw_inputs=inputs or {},
        options={},
    )


def graph_of(*resources: Resource) -> Graph:
    return Graph("test", {}, list(resources), {})


@pytest.mark.parametrize(
    ("quantity", "millis"), [("250m", 250), ("1", 1000), ("0.5", 500), (2, 2000), ("1.5", 1500)]
)
def test_cpu_quantities_read_as_millicores(quantity: Any, millis: int) -> None:
    assert cpu_millis(quantity) == millis


@pytest.mark.parametrize(
    ("quantity", "size"),
    [("128Mi", 128 * MI), ("1Gi", GI), ("8192Mi", 8 * GI), ("1G", 10**9), ("512", 512)],
)
def test_memory_quantities_read_as_bytes(quantity: str, size: int) -> None:
    assert memory_bytes(quantity) == size


def test_both_resources_block_forms_read_the_same() -> None:
    row = sizing.SIZES["dev"]["grafana"]
    assert parse_block(row.k8s()) == parse_block(row.linkerd())
    assert parse_block({}) == Sizes()
    assert parse_block({"cpu": {"request": "", "limit": ""}}) == Sizes()


def test_a_chain_through_resources_that_do_not_wait_is_one_stage_per_wait() -> None:
    g = graph_of(
        res("crds", "kubernetes:yaml/v2:ConfigFile"),
        res("cp", CHART, deps=("crds",)),
        res("ns", "kubernetes:core/v1:Namespace", deps=("cp",)),
        res("cm", deps=("ns",)),
        res("app", "kubernetes:apps/v1:Deployment", deps=("cm",)),
        res("loki", CHART),
    )
    assert [r.name for r in deps.critical_path(g)] == ["crds", "cp", "app"]
    stages = {urn.removeprefix("urn:"): n for urn, n in deps.stage_of(g).items()}
    assert stages == {"crds": 1, "cp": 2, "app": 3, "loki": 1}


def test_a_child_waits_for_what_its_component_depends_on() -> None:
    g = graph_of(
        res("cp", CHART),
        res("comp", "meshstack:x:Thing", deps=("cp",)),
        res("chart", CHART, parent="comp"),
    )
    assert [r.name for r in deps.critical_path(g)] == ["cp", "chart"]


def test_a_dependency_on_a_component_waits_for_everything_inside_it() -> None:
    g = graph_of(
        res("comp", "meshstack:x:Thing"),
        res("inner", CHART, parent="comp"),
        res("after", CHART, deps=("comp",)),
    )
    assert [r.name for r in deps.critical_path(g)] == ["inner", "after"]


@pytest.mark.parametrize(
    ("spec", "annotations", "waits"),
    [
        ({"selector": {"app": "web"}}, {}, True),
        ({"type": "LoadBalancer"}, {}, True),
        ({}, {}, False),
        ({"type": "ExternalName"}, {}, False),
        ({"selector": {"app": "web"}}, {"pulumi.com/skipAwait": "true"}, False),
    ],
)
def test_services_wait_when_they_select_pods_or_need_an_address(
    spec: dict[str, Any], annotations: dict[str, str], waits: bool
) -> None:
    svc = res(
        "svc",
        "kubernetes:core/v1:Service",
        inputs={"metadata": {"annotations": annotations}, "spec": spec},
    )
    assert deps.is_readiness_wait(svc) is waits


def test_cross_component_dependencies_are_attributed_to_the_innermost_components() -> None:
    g = graph_of(
        res("mesh", "meshstack:mesh:Mesh"),
        res("cp", CHART, parent="mesh"),
        res("app", "meshstack:apps:App"),
        res("ns", "kubernetes:core/v1:Namespace", deps=("cp",), parent="app"),
        res("logs", "meshstack:observability:Logging"),
        res("loki", CHART, parent="logs"),
    )
    edges = deps.component_dependencies(g)
    assert set(edges) == {("App", "Mesh")}
    assert deps.disallowed(edges, {"App": ["Mesh"]}) == []
    assert deps.disallowed(edges, {"App": []}) == [("App", "Mesh")]


def _control_plane(proxy: dict[str, Any], cni: bool = False) -> Resource:
    values: dict[str, Any] = {"proxy": {"resources": proxy}, "controllerReplicas": 1}
    if cni:
        values["cniEnabled"] = True
    return res(
        "cp",
        CHART,
        inputs={
            "chart": "linkerd-control-plane",
            "name": "linkerd",
            "namespace": "linkerd",
            "values": values,
        },
    )


def _deployment(replicas: int, cpu: str, memory: str, namespace: str = "team") -> Resource:
    container = {
        "name": "app",
        "resources": {
            "requests": {"cpu": cpu, "memory": memory},
            "limits": {"cpu": cpu, "memory": memory},
        },
    }
    return res(
        "app",
        "kubernetes:apps/v1:Deployment",
        inputs={
            "metadata": {"name": "app", "namespace": namespace},
            "spec": {"replicas": replicas, "template": {"spec": {"containers": [container]}}},
        },
    )


def _namespace(name: str, inject: bool) -> Resource:
    annotations = {"linkerd.io/inject": "enabled"} if inject else {}
    return res(
        f"ns-{name}",
        "kubernetes:core/v1:Namespace",
        inputs={"metadata": {"name": name, "annotations": annotations}},
    )


SMALL_PROXY = {
    "cpu": {"request": "10m", "limit": "100m"},
    "memory": {"request": "20Mi", "limit": "64Mi"},
}


@pytest.mark.parametrize(
    ("inject", "app_cpu", "cpu_m", "memory_mi"),
    [
        # Unmeshed: the app alone, times 3 replicas.
        (False, "50m", 3 * 50, 3 * 64),
        # Meshed: plus one proxy per pod; `linkerd-init` (sized like the proxy) hides in the
        # pod's sum.
        (True, "50m", 3 * (50 + 10), 3 * (64 + 20)),
        # A tiny app: still the sum, since the init container never exceeds the proxy alone.
        (True, "1m", 3 * (1 + 10), 3 * (64 + 20)),
    ],
)
def test_footprint_counts_replicas_proxies_and_init_containers(
    inject: bool, app_cpu: str, cpu_m: int, memory_mi: int
) -> None:
    g = graph_of(
        _control_plane(SMALL_PROXY),
        _namespace("team", inject),
        _deployment(3, app_cpu, "64Mi"),
    )
    team = footprint(g).namespaces()["team"]
    assert (team.cpu_request_m, team.memory_request_b) == (cpu_m, memory_mi * MI)
    assert team.pods == 3


def test_linkerd_init_takes_the_proxy_resources_and_disappears_with_cni() -> None:
    from bench.footprint import mesh_sizes

    mesh = mesh_sizes(graph_of(_control_plane(SMALL_PROXY)))
    assert mesh is not None and mesh.proxy_init == mesh.proxy
    cni = mesh_sizes(graph_of(_control_plane(SMALL_PROXY, cni=True)))
    assert cni is not None and cni.proxy_init is None


def test_footprint_reads_chart_values_and_the_charts_own_defaults() -> None:
    loki = res(
        "loki",
        CHART,
        inputs={
            "chart": "loki",
            "name": "loki",
            "namespace": "logging",
            "values": {
                "singleBinary": {
                    "replicas": 1,
                    "resources": {"requests": {"cpu": "50m", "memory": "128Mi"}},
                },
                "sidecar": {"rules": {"enabled": False}},
                "gateway": {"enabled": False},
                "lokiCanary": {"enabled": False},
                "resultsCache": {"enabled": False},
            },
        },
    )
    fp = footprint(graph_of(loki))
    by_workload = {line.workload: line for line in fp.lines}
    # The chunks cache is on unless turned off, at the chart's ~9.6Gi.
    assert by_workload["loki-chunks-cache"].sizes.requests == Amount(500, 9830 * MI)
    assert by_workload["loki"].sizes.requests == Amount(50, 128 * MI)
    assert set(by_workload) == {"loki", "loki-chunks-cache"}
