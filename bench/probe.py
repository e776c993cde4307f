"""One measurement in a fresh interpreter; prints one JSON object. Run by bench/run.py.

    probe.py eval STACK NAMESPACES [PREIMPORT_FILE]
        Import tests.graph (after importing every module in PREIMPORT_FILE, when given) and
        run the program once. `imports_s` is everything before `run_program`, `eval_s` the
        run itself; both are measured from the first line of this script.
    probe.py import MODULES_FILE
        Import the modules listed in MODULES_FILE, one per line; `import_s` is the time taken.
    probe.py modules STACK [NAMESPACES]
        Run the program and list every module it loaded that is not the project's own, in
        the order they were loaded: the set `import` times, so the two figures cover the
        same third-party and stdlib code.

The SDKs import their API groups lazily (`importlib.util.LazyLoader`): a module registered
that way but never touched costs nothing, so it is left out of the list, and every listed
module is touched after import so it really loads, as it did in the program's run. Importing
a lazy package's submodule before the package itself has loaded would bind the submodule
over the package's class of the same name (pulumi_kubernetes.apiextensions.CustomResource),
hence load order, not sorted order.
"""

from __future__ import annotations

import time

START = time.perf_counter()

import importlib  # noqa: E402 - the clock starts before any import
import json  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
OWN = ("components", "tests", "bench", "__main__", "__mp_main__")


def _import_all(path: str) -> list[str]:
    failed = []
    for name in Path(path).read_text().split():
        try:
            module = importlib.import_module(name)
            # Any attribute but the introspection ones (pulumi._utils) loads a lazy module.
            getattr(module, "_meshstack_bench_touch", None)
        except Exception:  # some modules only load as a side effect of others
            failed.append(name)
    return failed


def _loaded(name: str) -> bool:
    own = name.split(".")[0] in OWN
    return not own and type(sys.modules[name]).__name__ != "_LazyModule"


def _teams(count: int) -> dict[str, object]:
    return {"onboarding": {"namespaces": [{"name": f"team-{i}"} for i in range(count)]}}


def main(argv: list[str]) -> dict[str, object]:
    sys.path.insert(0, str(ROOT))
    mode = argv[0]
    if mode == "import":
        failed = _import_all(argv[1])
        return {"import_s": time.perf_counter() - START, "failed": failed}

    failed = _import_all(argv[3]) if mode == "eval" and len(argv) > 3 else []
    from tests.graph import run_program

    before = time.perf_counter()
    stack, count = argv[1], int(argv[2]) if len(argv) > 2 else 0
    graph = run_program(stack, _teams(count) if count else None)
    after = time.perf_counter()
    if graph.error is not None:
        raise graph.error
    if mode == "modules":
        return {"modules": [m for m in list(sys.modules) if _loaded(m)]}
    return {
        "imports_s": before - START,
        "eval_s": after - before,
        "total_s": after - START,
        "resources": len(graph.resources),
        "failed": failed,
    }


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1:])))
