"""`pulumi install && pulumi up` works from requirements.txt alone.

`pulumi install` builds the virtualenv Pulumi.yaml names from requirements.txt only. Before it
starts the program, the Python language host (sdk/python/cmd/pulumi-language-python/main.go in
pulumi/pulumi) runs the typechecker from `runtime.options.typechecker` as

    <virtualenv>/bin/python -m mypy --exclude <virtualenv, relative> <program directory>

with the program directory as its working directory, after checking that a package of that
name is installed in the virtualenv ("The typechecker option is set to mypy, but mypy is not
installed"). These tests hold requirements.txt and pyproject.toml to what that run needs.
"""

from __future__ import annotations

import ast
import importlib.metadata
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.graph import ROOT

# The program: what `pulumi up` runs, and all that its typecheck may look at.
PROGRAM = [ROOT / "__main__.py", *sorted((ROOT / "components").glob("*.py"))]
# Type-checked by `make lint` only: they need the dev requirements.
DEV_ONLY = ("tests", "policy", "bench")
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s=]+)$")


def normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def pins(path: Path) -> dict[str, str]:
    """The exact pins a requirements file makes itself (not those of the files it includes)."""
    found: dict[str, str] = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#") or line.startswith("-r "):
            continue
        match = PIN.match(line)
        assert match, f"{path.name}: `{line}` is not pinned exactly (name==version)"
        name = normalize(match.group(1))
        assert name not in found, f"{path.name} pins {name} twice"
        found[name] = match.group(2)
    return found


def runtime_options() -> dict[str, str]:
    project = yaml.safe_load((ROOT / "Pulumi.yaml").read_text())
    options: dict[str, str] = project["runtime"].get("options") or {}
    return options


def typechecker() -> str | None:
    return runtime_options().get("typechecker")


def relative(paths: list[str]) -> set[str]:
    return {Path(p).resolve().relative_to(ROOT).as_posix() for p in paths}


def mypy_sources(args: list[str], monkeypatch: pytest.MonkeyPatch) -> set[str]:
    """The files mypy would check for `mypy <args>` started in the project directory."""
    from mypy.main import process_options

    monkeypatch.chdir(ROOT)
    sources, _ = process_options(args)
    return relative([s.path for s in sources if s.path])


def test_the_typechecker_pulumi_yaml_runs_is_pinned_in_requirements_txt() -> None:
    checker = typechecker()
    assert checker in (None, "mypy", "pyright"), checker
    if checker is None:
        return
    runtime = pins(ROOT / "requirements.txt")
    assert checker in runtime, (
        f"Pulumi.yaml runs {checker} before every preview and up, but a virtualenv from "
        f"requirements.txt (`pulumi install`) has no {checker}"
    )
    assert runtime[checker] == importlib.metadata.version(checker), "the venv runs another mypy"


def test_no_package_is_pinned_in_both_requirement_files() -> None:
    runtime = pins(ROOT / "requirements.txt")
    dev = pins(ROOT / "requirements-dev.txt")
    assert "-r requirements.txt" in (ROOT / "requirements-dev.txt").read_text().splitlines()
    assert not set(runtime) & set(dev), sorted(set(runtime) & set(dev))


def _imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def test_every_package_the_program_imports_is_installed_by_requirements_txt() -> None:
    third_party = {
        name
        for path in PROGRAM
        for name in _imported_modules(path)
        if name not in sys.stdlib_module_names and name not in ("__future__", "components")
    }
    assert {"pulumi", "cryptography"} <= third_party
    runtime = pins(ROOT / "requirements.txt")
    providers = importlib.metadata.packages_distributions()
    for module in sorted(third_party):
        dists = {normalize(d) for d in providers.get(module, [])}
        assert dists & set(runtime), f"the program imports {module}; requirements.txt lacks it"
        if typechecker() == "mypy":
            # A stub-only package (types-PyYAML ships `yaml-stubs`) is what mypy reads for an
            # untyped library; without it the runtime check fails on the import.
            stubs = {normalize(d) for d in providers.get(f"{module}-stubs", [])}
            assert stubs <= set(runtime), f"mypy needs {sorted(stubs)} for {module}"


def test_the_runtime_type_check_covers_exactly_the_program(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    if typechecker() != "mypy":
        pytest.skip("Pulumi.yaml runs no mypy")
    # The arguments the language host passes: its virtualenv excluded, the project directory.
    venv = runtime_options().get("virtualenv", "venv")
    checked = mypy_sources(["--exclude", venv, str(ROOT)], monkeypatch)
    assert checked == relative([str(p) for p in PROGRAM])


def lint_mypy_runs() -> list[list[str]]:
    """The arguments of every mypy run in `make lint`, from a dry run."""
    dry = subprocess.run(
        ["make", "--no-print-directory", "-n", "lint"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return [line.split()[1:] for line in dry.splitlines() if line.startswith(".venv/bin/mypy ")]


def test_make_lint_still_type_checks_tests_policy_and_bench(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    runs = lint_mypy_runs()
    assert runs, "make lint runs no mypy"
    checked = set().union(*(mypy_sources(args, monkeypatch) for args in runs))
    for folder in DEV_ONLY:
        files = {
            p.relative_to(ROOT).as_posix()
            for p in (ROOT / folder).rglob("*.py")
            if ".work" not in p.parts
        }
        assert files and files <= checked, f"make lint skips {sorted(files - checked)}"
    assert relative([str(p) for p in PROGRAM]) <= checked
