"""`make bench`: time the program under mocks and write bench/results.md.

Timings run in fresh interpreters (bench/probe.py), several times each, interleaved, and
report medians:

- **imports alone**: importing every module the program's run loads, except the project's own
  (the SDKs, their dependencies, the mock harness, the stdlib modules they pull in);
- **cold evaluation**: a fresh process importing the harness and running the program once
  (what `pulumi preview` spends in the language host, mocks standing in for the engine);
- **evaluation after imports**: the same run with those modules imported beforehand, so only
  the project's code and the Pulumi runtime's work are timed.

Then the figures that are properties of the program, not of this machine (bench/footprint.py,
bench/graphs.py), and a cProfile of the largest scaling run, grouped by package.

    python bench/run.py [--runs N] [--scaling-runs N] [--output PATH]
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import pstats
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench import budgets, graphs  # noqa: E402
from bench import multicluster as multicluster_bench  # noqa: E402
from bench.footprint import (  # noqa: E402
    Footprint,
    Totals,
    cores,
    footprint,
    gib,
    mode_totals,
)

PROBE = ROOT / "bench" / "probe.py"
WORK = ROOT / "bench" / ".work"
STACKS = ("dev", "prod")
SCALING = (0, 10, 50, 100)


# --- Measuring -------------------------------------------------------------------------------


def probe(*args: str) -> dict[str, Any]:
    """Run bench/probe.py in a fresh interpreter; its JSON plus `wall_s` (spawn to exit)."""
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, str(PROBE), *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONDONTWRITEBYTECODE": "0"},
        check=False,
    )
    wall = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"probe {' '.join(args)} failed:\n{done.stderr[-4000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    result["wall_s"] = wall
    return result


def median(samples: Sequence[dict[str, Any]], key: str) -> float:
    return statistics.median(s[key] for s in samples)


def slope(points: Sequence[tuple[float, float]]) -> float:
    """Least-squares slope of y over x."""
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    den = sum((x - mx) ** 2 for x in xs)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / den if den else 0.0


def collect(runs: int, scaling_runs: int) -> dict[str, Any]:
    WORK.mkdir(parents=True, exist_ok=True)
    # In load order (bench/probe.py says why), first seen first; the largest scaling run too,
    # since onboarding may load modules the stack files do not.
    modules: dict[str, None] = {}
    runs_of_modules: list[tuple[str, ...]] = [("modules", stack) for stack in STACKS]
    runs_of_modules.append(("modules", "dev", str(max(SCALING))))
    for probe_args in runs_of_modules:
        modules.update(dict.fromkeys(probe(*probe_args)["modules"]))
    module_file = WORK / "modules.txt"
    module_file.write_text("\n".join(modules) + "\n")

    # Every probe once per round, so drift on the machine spreads over all of them.
    plan: dict[str, tuple[str, ...]] = {"import": ("import", str(module_file))}
    for stack in STACKS:
        plan[f"cold:{stack}"] = ("eval", stack, "0")
        plan[f"warm:{stack}"] = ("eval", stack, "0", str(module_file))
    samples: dict[str, list[dict[str, Any]]] = {key: [] for key in plan}
    for _ in range(runs):
        for key, args in plan.items():
            samples[key].append(probe(*args))

    scale_plan: dict[str, tuple[str, ...]] = {}
    for n in SCALING:
        scale_plan[f"cold:{n}"] = ("eval", "dev", str(n))
        scale_plan[f"warm:{n}"] = ("eval", "dev", str(n), str(module_file))
    for _ in range(scaling_runs):
        for key, args in scale_plan.items():
            samples.setdefault(key, []).append(probe(*args))

    failed = sorted({m for s in samples["import"] for m in s["failed"]})
    return {"samples": samples, "modules": len(modules), "import_failures": failed}


def load() -> str:
    return ", ".join(f"{x:.2f}" for x in os.getloadavg())


Timings = list[tuple[str, float]]


# Phases of a run, as cumulative time of the function that does each (they nest: the program
# includes the registrations, which include the stack traces and the serialization).
PHASES: dict[str, tuple[str, str]] = {  # label → (file name ends with, function)
    "the whole run (`tests.graph.run_program`)": ("tests/graph.py", "run_program"),
    "imports inside the run (lazy SDK modules, components)": ("_bootstrap>", "_find_and_load"),
    "`__main__.py`, SDK calls it makes included": ("__main__.py", "<module>"),
    "resource constructors' registration (pulumi SDK)": (
        "pulumi/runtime/resource.py",
        "register_resource",
    ),
    "registrations' async part (pulumi SDK)": ("pulumi/runtime/resource.py", "do_register"),
    "a stack trace per resource (pulumi SDK)": ("pulumi/runtime/resource.py", "_get_stack_trace"),
    "input serialization (pulumi SDK)": ("pulumi/runtime/rpc.py", "serialize_properties"),
    # cProfile sees the main thread only; the mock monitor (tests/graph.py) answers each
    # registration on a worker thread, which shows here as the event loop waiting.
    "event loop waiting on worker threads (the mock monitor)": (
        "~",
        "<method 'poll' of 'select.epoll' objects>",
    ),
}


def profile_by_package(count: int) -> tuple[Timings, Timings, float]:
    """cProfile of a cold run with `count` namespaces in a fresh process: cumulative time of
    each of `PHASES`, own time per package, and the profiled total."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "run.prof"
        subprocess.run(
            [
                sys.executable,
                "-m",
                "cProfile",
                "-o",
                str(out),
                str(PROBE),
                "eval",
                "dev",
                str(count),
            ],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        )
        stats = pstats.Stats(str(out))
    raw: dict[Any, Any] = stats.stats  # type: ignore[attr-defined]
    by_package: dict[str, float] = {}
    phases = dict.fromkeys(PHASES, 0.0)
    total = 0.0
    for (filename, _, func), (_, _, tottime, cumtime, _) in raw.items():
        total += tottime
        by_package[_package(filename)] = by_package.get(_package(filename), 0.0) + tottime
        for label, (suffix, name) in PHASES.items():
            if func == name and filename.endswith(suffix):
                phases[label] += cumtime
    return list(phases.items()), sorted(by_package.items(), key=lambda kv: -kv[1]), total


def _package(filename: str) -> str:
    if filename.startswith("~") or filename.startswith("<"):
        return "builtins (C)"
    path = Path(filename)
    parts = path.parts
    if "site-packages" in parts:
        return parts[parts.index("site-packages") + 1].removesuffix(".py")
    try:
        rel = path.resolve().relative_to(ROOT)
        return f"project: {rel.parts[0]}"
    except ValueError:
        return "stdlib"


# --- Figures of the program ------------------------------------------------------------------


def program_figures() -> dict[str, Any]:
    from tests.graph import run_program

    out: dict[str, Any] = {}
    modes: list[tuple[str, Totals]] = []
    for mode, namespaces, overrides in budgets.STORAGE_MODES:
        mode_graph = run_program("prod", overrides)
        if mode_graph.error is not None:
            raise mode_graph.error
        modes.append((mode, mode_totals(footprint(mode_graph), namespaces)))
    out["storage_modes"] = modes
    for stack in STACKS:
        graph = run_program(stack)
        if graph.error is not None:
            raise graph.error
        edges = graphs.component_dependencies(graph)
        out[stack] = {
            "graph": graph,
            "footprint": footprint(graph),
            "path": graphs.critical_path(graph),
            "edges": edges,
            "disallowed": graphs.disallowed(edges, budgets.ALLOWED_DEPENDENCIES),
        }
    return out


# --- Report ----------------------------------------------------------------------------------


def _s(x: float) -> str:
    return f"{x:.3f} s"


def _mark(ok: bool) -> str:
    return "within budget" if ok else "**over budget**"


def _totals_row(name: str, t: Totals) -> str:
    return (
        f"| {name} | {t.pods} | {t.containers} | {cores(t.cpu_request_m)} | "
        f"{gib(t.memory_request_b)} | {cores(t.cpu_limit_m)} | {gib(t.memory_limit_b)} |"
    )


def _footprint_section(stack: str, fp: Footprint) -> list[str]:
    lines = [
        f"### {stack}",
        "",
        "| namespace | pods | containers | CPU requests (cores) | memory requests | "
        "CPU limits (cores) | memory limits |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for ns, t in fp.namespaces().items():
        lines.append(_totals_row(ns, t))
    lines.append(_totals_row("**total**", fp.totals()))
    proxies = [x for x in fp.lines if x.container == "linkerd-proxy"]
    pt = fp.totals(proxies)
    lines += [
        "",
        f"Linkerd proxies: {sum(x.replicas for x in proxies)}, requesting "
        f"{cores(pt.cpu_request_m)} cores and {gib(pt.memory_request_b)} of the total.",
    ]
    inits = [x for x in fp.lines if x.init_excess]
    if inits:
        it = fp.totals(inits)
        lines.append(
            f"Init containers larger than their pod's containers (on {len(inits)} pod templates) "
            f"add {cores(it.cpu_request_m)} cores and {gib(it.memory_request_b)} of requests: "
            + ", ".join(f"`{x.namespace}/{x.workload}`" for x in inits)
            + "."
        )
    unsized = fp.unsized
    if unsized:
        lines.append(
            "Containers running without requests set by the program: "
            + ", ".join(f"`{x.namespace}/{x.workload}/{x.container}`" for x in unsized)
            + "."
        )
    unbounded = [x for x in fp.lines if x.sizes.is_set and x.sizes.limits.memory_b is None]
    if unbounded:
        lines.append(
            "Without a memory limit: "
            + ", ".join(f"`{x.namespace}/{x.workload}/{x.container}`" for x in unbounded)
            + "."
        )
    lines += [f"Note: {n}." for n in fp.notes]
    lines.append("")
    return lines


def _describe(res: Any) -> str:
    kind = res.type.rsplit(":", 1)[-1]
    release = (res.inputs or {}).get("name") if kind == "Chart" else None
    return f"`{res.name}` ({kind}{f' {release}' if release else ''})"


def report(
    timings: dict[str, Any], figures: dict[str, Any], prof: Any, runs: int, scaling_runs: int
) -> str:
    s = timings["samples"]
    imp = median(s["import"], "import_s")
    now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    out = [
        "# meshstack benchmark results",
        "",
        f"Written by `make bench` (`bench/run.py`) on {now}.",
        f"Machine: `{platform.platform()}`, {platform.machine()}, {os.cpu_count()} CPUs, "
        f"Python {platform.python_version()}; load average {timings['load'][0]} at the start "
        f"and {timings['load'][1]} at the end (1, 5, 15 min; other work on the machine shows "
        "here).",
        "",
        "## Program evaluation under mocks",
        "",
        f"Medians of {runs} fresh processes each, interleaved. *Imports alone*: importing the "
        f"{timings['modules']} modules a run of the program loads, the project's own excepted "
        "(pulumi, pulumi_kubernetes, pulumi_tls, pulumi_random, grpc, protobuf, the mock "
        "harness's yaml and cryptography, and the stdlib they pull in). *Cold*: a fresh process "
        "importing the harness (`tests.graph`) and running `run_program` once, timed from the "
        "first line of the script. *After imports*: `run_program` alone, with those modules "
        "imported first. Wall: spawn to exit, interpreter start-up included.",
        "",
        "| stack | resources | imports alone | cold: imports + evaluation | wall | "
        "evaluation after imports | cold / imports | evaluation / imports |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    ratios = {}
    for stack in STACKS:
        cold, warm = s[f"cold:{stack}"], s[f"warm:{stack}"]
        c, w = median(cold, "total_s"), median(warm, "eval_s")
        ratios[stack] = (c / imp, w / imp)
        out.append(
            f"| {stack} | {cold[0]['resources']} | {_s(imp)} | {_s(c)} | "
            f"{_s(median(cold, 'wall_s'))} | {_s(w)} | {c / imp:.2f} | {w / imp:.2f} |"
        )
    if timings["import_failures"]:
        out += [
            "",
            "Modules that did not import on their own (loaded by their parents): "
            + ", ".join(f"`{m}`" for m in timings["import_failures"])
            + ".",
        ]
    limit = budgets.EVAL_TO_IMPORT_RATIO
    cold_ratio, warm_ratio = ratios["dev"]
    out += [
        "",
        f"Budget: the dev stack's evaluation within {limit}x the imports alone. "
        f"Evaluation after imports: {warm_ratio:.2f}x ({_mark(warm_ratio <= limit)}); "
        f"cold, imports included: {cold_ratio:.2f}x ({_mark(cold_ratio <= limit)}).",
        "",
        "## Scaling with onboarded namespaces (dev stack)",
        "",
        f"`onboarding.namespaces` = `team-0` … `team-(n-1)`; medians of {scaling_runs} fresh "
        "processes each.",
        "",
        "| namespaces | resources | cold: imports + evaluation | wall | evaluation after imports |",
        "|---:|---:|---:|---:|---:|",
    ]
    warm_points, cold_points = [], []
    for n in SCALING:
        cold, warm = s[f"cold:{n}"], s[f"warm:{n}"]
        c, w = median(cold, "total_s"), median(warm, "eval_s")
        cold_points.append((n, c))
        warm_points.append((n, w))
        out.append(
            f"| {n} | {cold[0]['resources']} | {_s(c)} | {_s(median(cold, 'wall_s'))} | {_s(w)} |"
        )
    per_ns = slope(warm_points)
    per_ns_cold = slope(cold_points)
    res_per_ns = (s[f"cold:{SCALING[-1]}"][0]["resources"] - s["cold:0"][0]["resources"]) / max(
        SCALING[-1], 1
    )
    big_cold = dict(cold_points)[budgets.SCALE_NAMESPACES]
    big_wall = median(s[f"cold:{budgets.SCALE_NAMESPACES}"], "wall_s")
    out += [
        "",
        f"Per namespace (least-squares slope): {per_ns * 1000:.1f} ms after imports, "
        f"{per_ns_cold * 1000:.1f} ms cold; {res_per_ns:.0f} resources each.",
        f"Budget: {budgets.SCALE_NAMESPACES} namespaces within {budgets.SCALE_SECONDS:.0f} s: "
        f"{_s(big_cold)} cold ({_mark(big_cold < budgets.SCALE_SECONDS)}), {_s(big_wall)} wall "
        f"({_mark(big_wall < budgets.SCALE_SECONDS)}).",
        "",
    ]

    phases, by_package, total = prof
    whole = phases[0][1] or 1.0
    out += [
        f"### Where the time goes (cProfile, cold run, {budgets.SCALE_NAMESPACES} namespaces)",
        "",
        f"{_s(total)} profiled; cProfile slows Python code down, so the shares matter, not the "
        "sums. Phases (cumulative, nested: the program includes the registrations, which "
        "include the stack traces and the serialization):",
        "",
        "| phase | time | share of the run |",
        "|---|---:|---:|",
    ]
    for label, t in phases:
        out.append(f"| {label} | {_s(t)} | {t / whole:.0%} |")
    out += [
        "",
        "Own time by package (the project's own code is in the `project:` rows):",
        "",
        "| package | own time | share |",
        "|---|---:|---:|",
    ]
    for pkg, t in by_package[:10]:
        out.append(f"| {pkg} | {_s(t)} | {t / total:.0%} |")

    out += [
        "",
        "## Footprint: CPU and memory the program requests",
        "",
        "Computed by `bench/footprint.py` from the recorded graph: typed workloads "
        "(containers x replicas) and each chart's values at the paths `footprint.CHARTS` maps "
        "(which pods a chart runs, how many, which values key sizes each container, which "
        "`components.sizing` row it is meant to carry), plus, per meshed pod, one Linkerd proxy "
        "with the control plane's `proxy.resources` (or the chart's own proxy override) and the "
        "`linkerd-init` init container (the pinned chart sizes it with `proxy.resources`). Init "
        "containers count as the scheduler counts them: a pod requests the larger of its "
        "containers' sum and its largest init container. DaemonSets on one node (the kind "
        "cluster); the heartbeat CronJob left out.",
        "",
    ]
    for stack in STACKS:
        out += _footprint_section(stack, figures[stack]["footprint"])
    dev = figures["dev"]["footprint"].totals()
    ok = (
        dev.cpu_request_m <= budgets.DEV_CPU_REQUEST_M
        and dev.memory_request_b <= budgets.DEV_MEMORY_REQUEST_B
    )
    out += [
        "### prod, per storage mode",
        "",
        "The pods of the namespaces each mode runs in (`bench/budgets.STORAGE_MODES`), prod "
        "profile, proxies included; the README's sizing table shows the same figures.",
        "",
        "| mode | pods | containers | CPU requests (cores) | memory requests | CPU limits "
        "(cores) | memory limits |",
        "|---|---|---|---|---|---|---|",
        *(_totals_row(mode, t) for mode, t in figures["storage_modes"]),
        "",
    ]
    out += [
        f"Budget: dev requests within {cores(budgets.DEV_CPU_REQUEST_M)} CPU and "
        f"{gib(budgets.DEV_MEMORY_REQUEST_B)}: {cores(dev.cpu_request_m)} CPU, "
        f"{gib(dev.memory_request_b)} ({_mark(ok)}).",
        "",
        "## Critical path: sequential readiness stages",
        "",
        "The longest chain of depends-on between resources `pulumi up` waits to be ready "
        "(charts, ConfigFiles, workloads, Services with selectors, Ingresses, claims), through "
        "the ones it does not (namespaces, ConfigMaps, Secrets, policy resources, certificates); "
        "`bench/graphs.py`.",
        "",
    ]
    for stack in STACKS:
        path = figures[stack]["path"]
        budget = _mark(len(path) <= budgets.MAX_READINESS_STAGES)
        out.append(
            f"- **{stack}**: {len(path)} stages ({budget}): "
            + " → ".join(_describe(r) for r in path)
        )
    out += [
        "",
        "## Dependencies between components",
        "",
        "Recorded (dependent → dependency), against `bench/budgets.ALLOWED_DEPENDENCIES`:",
        "",
    ]
    for stack in STACKS:
        edges = figures[stack]["edges"]
        bad = set(figures[stack]["disallowed"])
        shown = ", ".join(
            f"{a} → {b}" + (" (**not allowed**)" if (a, b) in bad else "") for a, b in sorted(edges)
        )
        out.append(f"- **{stack}**: {shown or 'none'}")
    out.append("")
    return "\n".join(out)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--scaling-runs", type=int, default=5)
    parser.add_argument("--output", type=Path, default=ROOT / "bench" / "results.md")
    args = parser.parse_args(argv)

    started = time.perf_counter()
    load_before = load()
    timings = collect(args.runs, args.scaling_runs)
    timings["load"] = (load_before, load())
    figures = program_figures()
    prof = profile_by_package(budgets.SCALE_NAMESPACES)
    text = report(timings, figures, prof, args.runs, args.scaling_runs)
    # Linked clusters: one stack against its peers' recorded outputs (bench/multicluster.py).
    text += "\n" + "\n".join(multicluster_bench.report(multicluster_bench.evaluate()))
    args.output.write_text(text)
    print(f"wrote {args.output} in {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
