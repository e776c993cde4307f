"""The GitHub Actions workflows: valid, pinned, and doing what the README says they do."""

from __future__ import annotations

import ast
import inspect
import io
import re
import shlex
import tarfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
import yaml

from components import common, versions
from components import config as cfg
from components.versions import ChartRef
from tests import pull_charts
from tests.graph import ROOT, Graph, stack_names

WORKFLOWS = ROOT / ".github" / "workflows"
# `uses: owner/repo[/path]@<40-hex commit> # vX.Y.Z`: immutable, and still readable.
PINNED = re.compile(r"^[\w.-]+/[\w./-]+@[0-9a-f]{40} # v\d+\.\d+\.\d+$")


def workflow_files() -> list[Path]:
    return sorted([*WORKFLOWS.glob("*.yml"), *WORKFLOWS.glob("*.yaml")])


def load(name: str) -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((WORKFLOWS / name).read_text())
    return data


def triggers(workflow: dict[Any, Any]) -> dict[str, Any]:
    # YAML 1.1 (PyYAML) reads the bare key `on` as the boolean True.
    on = workflow.get("on", workflow.get(True))
    return {on: None} if isinstance(on, str) else dict(on or {})


def steps(workflow: dict[str, Any]) -> list[dict[str, Any]]:
    return [step for job in workflow["jobs"].values() for step in job.get("steps", [])]


def job_steps(workflow: dict[str, Any]) -> list[tuple[dict[str, str], dict[str, Any]]]:
    """(environment, step) for every step: the workflow's, job's and step's `env` merged."""
    found = []
    for job in workflow["jobs"].values():
        for step in job.get("steps", []):
            env = {**workflow.get("env", {}), **job.get("env", {}), **step.get("env", {})}
            found.append(({k: str(v) for k, v in env.items()}, step))
    return found


def commands(run: str) -> list[tuple[dict[str, str], list[str]]]:
    """(inline `VAR=value` assignments, argv) for every line of a `run:` script."""
    out = []
    for line in run.splitlines():
        words = shlex.split(line, comments=True)
        assigned = {}
        while words and re.fullmatch(r"[A-Z_][A-Z0-9_]*=.*", words[0]):
            key, _, value = words.pop(0).partition("=")
            assigned[key] = value
        if words:
            out.append((assigned, words))
    return out


def requirement_pin(name: str) -> str:
    """The exact version requirements.txt pins for `name`."""
    for line in (ROOT / "requirements.txt").read_text().splitlines():
        m = re.fullmatch(rf"{re.escape(name)}==(\S+)", line.split("#")[0].strip())
        if m:
            return m[1]
    raise AssertionError(f"requirements.txt pins no {name}")


def uses_lines(path: Path) -> list[str]:
    """Every `uses:` value with its trailing comment, as written in the file."""
    return [
        m.group(1).strip()
        for m in re.finditer(r"^\s*(?:-\s*)?uses:\s*(.+)$", path.read_text(), re.MULTILINE)
    ]


def test_the_workflows_exist() -> None:
    assert {p.name for p in workflow_files()} >= {"ci.yml", "preview.yml", "e2e.yml"}


@pytest.mark.parametrize("path", workflow_files(), ids=lambda p: p.name)
def test_every_workflow_is_valid_yaml_with_jobs_and_triggers(path: Path) -> None:
    workflow = yaml.safe_load(path.read_text())
    assert isinstance(workflow, dict) and workflow.get("name"), path.name
    assert triggers(workflow), f"{path.name} has no `on:`"
    assert workflow.get("jobs"), f"{path.name} has no jobs"
    for job_name, job in workflow["jobs"].items():
        assert job.get("runs-on") or job.get("uses"), f"{path.name}: {job_name}"
        assert job.get("timeout-minutes"), f"{path.name}: {job_name} can hang for 6 hours"
        for step in job.get("steps", []):
            assert ("uses" in step) != ("run" in step), f"{path.name}: {step}"


@pytest.mark.parametrize("path", workflow_files(), ids=lambda p: p.name)
def test_every_action_is_pinned_to_a_commit_with_its_version_in_a_comment(path: Path) -> None:
    lines = uses_lines(path)
    assert lines, f"{path.name} uses no actions"
    for line in lines:
        if line.startswith("./"):
            continue  # a local action is pinned by the commit being tested
        assert PINNED.match(line), f"{path.name}: `uses: {line}` is not `<action>@<sha> # vX.Y.Z`"


def test_one_action_is_pinned_to_the_same_commit_everywhere() -> None:
    seen: dict[str, str] = {}
    for path in workflow_files():
        for line in uses_lines(path):
            action, _, rest = line.partition("@")
            assert seen.setdefault(action, rest) == rest, f"{action} is pinned twice differently"


def test_workflows_only_read_the_repository() -> None:
    for path in workflow_files():
        workflow = yaml.safe_load(path.read_text())
        assert workflow.get("permissions") == {"contents": "read"}, path.name


def test_ci_runs_make_test_on_every_pull_request() -> None:
    ci = load("ci.yml")
    assert "pull_request" in triggers(ci)
    on_pr = triggers(ci)["pull_request"] or {}
    assert not on_pr.get("paths") and not on_pr.get("branches"), "CI must run on every PR"
    runs = [step["run"] for step in steps(ci) if "run" in step]
    assert any(line.strip() == "make test" for run in runs for line in run.splitlines())


def _preview_step(workflow: dict[str, Any]) -> dict[str, Any]:
    found = [
        s
        for s in steps(workflow)
        if s.get("uses", "").startswith("pulumi/actions@")
        and s.get("with", {}).get("command") == "preview"
    ]
    assert len(found) == 1, "one pulumi/actions preview step"
    return found[0]


def test_preview_runs_with_the_policy_pack_on_a_kind_cluster_and_local_state() -> None:
    preview = load("preview.yml")
    assert "pull_request" in triggers(preview)
    step = _preview_step(preview)
    options = step["with"]
    assert options["policyPacks"] == "policy"
    assert (ROOT / "policy" / "PulumiPolicy.yaml").is_file()
    assert options["secrets-provider"] == "passphrase"
    env = {**preview.get("env", {}), **step.get("env", {})}
    assert env.get("PULUMI_CONFIG_PASSPHRASE")
    backend = options["cloud-url"]
    if backend.startswith("${{ env."):
        backend = env[backend.removeprefix("${{ env.").removesuffix(" }}")]
    assert backend.startswith("file://"), "the preview must not need a Pulumi Cloud token"

    names = [s.get("uses", "").split("@")[0] for s in steps(preview)]
    assert "helm/kind-action" in names
    assert names.index("helm/kind-action") < names.index("pulumi/actions")
    kind = next(s for s in steps(preview) if s.get("uses", "").startswith("helm/kind-action@"))
    assert (ROOT / kind["with"]["config"]).is_file()


def test_preview_installs_the_program_into_the_virtualenv_pulumi_yaml_names() -> None:
    project = yaml.safe_load((ROOT / "Pulumi.yaml").read_text())
    venv = project["runtime"]["options"]["virtualenv"]
    preview = load("preview.yml")
    install = "\n".join(s["run"] for s in steps(preview) if "run" in s)
    assert f"python -m venv {venv}" in install
    assert f"{venv}/bin/pip install" in install and "requirements" in install
    all_steps, step = steps(preview), _preview_step(preview)
    installed_at = next(i for i, s in enumerate(all_steps) if f"{venv}/bin/pip" in s.get("run", ""))
    assert installed_at < all_steps.index(step), "install before the preview"


def test_preview_covers_every_stack_with_its_own_pack_config() -> None:
    preview = load("preview.yml")
    job = next(iter(preview["jobs"].values()))
    stacks = job["strategy"]["matrix"]["stack"]
    assert sorted(stacks) == stack_names()
    template = _preview_step(preview)["with"]["policyPackConfigs"]
    for stack in stacks:
        path = template.replace("${{ matrix.stack }}", stack)
        assert (ROOT / path).is_file(), path


# --- ci.yml: the chart contract suite on the pulled charts -----------------------------------


def test_ci_pulls_the_pinned_charts_with_a_pinned_helm_then_runs_the_contract_suite() -> None:
    ci = load("ci.yml")
    all_steps = job_steps(ci)
    uses = [step.get("uses", "").split("@")[0] for _, step in all_steps]
    assert "azure/setup-helm" in uses, "helm installs the charts `make charts` pulls"
    helm_at = uses.index("azure/setup-helm")
    assert re.fullmatch(r"v\d+\.\d+\.\d+", str(all_steps[helm_at][1]["with"]["version"]))

    def at(make_target: str) -> tuple[int, dict[str, str], list[str]]:
        found = [
            (i, {**env, **assigned}, argv)
            for i, (env, step) in enumerate(all_steps)
            for assigned, argv in commands(step.get("run", ""))
            if argv[:2] == ["make", make_target]
        ]
        assert len(found) == 1, f"one `make {make_target}` step"
        return found[0]

    charts_at, charts_env, charts_argv = at("charts")
    test_at, test_env, _ = at("test")
    assert helm_at < charts_at < test_at, "helm, then the charts, then make test"

    # `make test` reads the folder `make charts` wrote.
    charts_dir = test_env.get("MESHSTACK_CHARTS_DIR", "")
    assert charts_dir.startswith("${{ github.workspace }}/"), "an absolute folder"
    makefile = (ROOT / "Makefile").read_text()
    default_out = re.search(r"^CHARTS_OUT \?= (\S+)$", makefile, re.MULTILINE)
    assert default_out, "the Makefile declares CHARTS_OUT"
    out = dict(a.split("=", 1) for a in charts_argv[2:] if "=" in a).get(
        "CHARTS_OUT", default_out[1]
    )
    if out == "$MESHSTACK_CHARTS_DIR":
        assert charts_env.get("MESHSTACK_CHARTS_DIR") == charts_dir
    else:
        assert charts_dir == "${{ github.workspace }}/" + out, (out, charts_dir)

    # With the charts at hand a skip would hide a broken contract: the suite must run.
    assert test_env.get("MESHSTACK_CONTRACT_REQUIRED") == "1"
    suite = [p.read_text() for p in (ROOT / "tests").glob("*.py") if p.name != Path(__file__).name]
    assert any("MESHSTACK_CONTRACT_REQUIRED" in text for text in suite), "the suite reads it"


def test_make_charts_runs_the_pull_script_into_an_ignored_folder() -> None:
    makefile = (ROOT / "Makefile").read_text()
    recipe = re.search(r"^charts:.*\n\t(.+)$", makefile, re.MULTILINE)
    assert recipe, "a `charts` target"
    assert "-m tests.pull_charts $(CHARTS_OUT)" in recipe[1]
    default_out = re.search(r"^CHARTS_OUT \?= (\S+)$", makefile, re.MULTILINE)
    assert default_out
    ignored = (ROOT / ".gitignore").read_text().splitlines()
    assert f"{default_out[1].rstrip('/')}/" in ignored, "pulled charts are not committed"


# --- tests/pull_charts.py: what `make charts` would run --------------------------------------

CHART_REFS = [
    versions.LINKERD_CRDS,
    versions.LINKERD_CONTROL_PLANE,
    versions.LINKERD_VIZ,
    versions.LINKERD2_CNI,
    versions.LINKERD_MULTICLUSTER,
    versions.GATEWAY_API_CRDS,
    versions.ENVOY_GATEWAY,
    versions.CERT_MANAGER,
    versions.TRUST_MANAGER,
    versions.JAEGER,
    versions.OPENSEARCH,
    versions.OTEL_COLLECTOR,
    versions.LOKI,
    versions.SEAWEEDFS,
    versions.ALLOY,
    versions.GRAFANA,
    versions.OAUTH2_PROXY,
]


def test_every_pinned_chart_is_pulled_once_with_its_repository_and_version(
    tmp_path: Path,
) -> None:
    assert pull_charts.pinned_charts() == CHART_REFS
    planned = pull_charts.plan(pull_charts.pinned_charts(), tmp_path)
    assert [argv for _, argv in planned] == [
        [
            "helm",
            "pull",
            *(
                [f"{ref.repo}/{ref.chart}"]
                if ref.repo.startswith("oci://")
                else [ref.chart, "--repo", ref.repo]
            ),
            "--version",
            ref.version,
            "--untar",
            "--untardir",
            str(tmp_path),
        ]
        for ref in CHART_REFS
    ]
    # The Gateway API CRDs are a chart too, pulled from Envoy Gateway's OCI registry.
    assert [
        "helm",
        "pull",
        "oci://docker.io/envoyproxy/gateway-crds-helm",
        "--version",
        "v1.8.3",
        "--untar",
        "--untardir",
        str(tmp_path),
    ] in [argv for _, argv in planned]


def test_the_pulled_charts_are_every_chart_the_program_deploys(graphs: dict[str, Graph]) -> None:
    pinned = {(*common.chart_source(r), r.version) for r in pull_charts.pinned_charts()}
    for stack, graph in graphs.items():
        for release, chart in graph.charts().items():
            inputs = chart.inputs
            repo = (inputs.get("repositoryOpts") or {}).get("repo")
            assert (inputs["chart"], repo, inputs["version"]) in pinned, (stack, release)


def test_an_oci_chart_is_pulled_by_its_reference() -> None:
    ref = ChartRef("thing", "1.2.3", "oci://registry.example.com/charts/")
    assert pull_charts.pull_command(ref, Path("out")) == [
        "helm",
        "pull",
        "oci://registry.example.com/charts/thing",
        "--version",
        "1.2.3",
        "--untar",
        "--untardir",
        "out",
    ]


def _tgz(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def _chart_yaml(name: str, version: str) -> bytes:
    return f"apiVersion: v2\nname: {name}\nversion: {version}\n".encode()


class FakeHelm:
    """`helm pull --untar` as published charts come: dependencies packed under `charts/`."""

    def __init__(self, version: str | None = None) -> None:
        self.ran: list[list[str]] = []
        self.version = version  # what the "repository" serves; None: what was asked for

    def __call__(self, argv: Sequence[str]) -> None:
        self.ran.append(list(argv))
        # A repository chart by name, an OCI one by reference: both unpack as `<chart>/`.
        chart, asked = argv[2].rpartition("/")[2], argv[argv.index("--version") + 1]
        folder = Path(argv[argv.index("--untardir") + 1]) / chart
        assert not folder.exists(), "helm refuses to untar over an existing folder"
        (folder / "charts").mkdir(parents=True)
        (folder / "Chart.yaml").write_bytes(_chart_yaml(chart, self.version or asked))
        # A dependency that carries a packed dependency of its own.
        sub = _tgz({"sub/Chart.yaml": _chart_yaml("sub", "0.1.0")})
        dep = _tgz({"dep/Chart.yaml": _chart_yaml("dep", "1.0.0"), "dep/charts/sub-0.1.0.tgz": sub})
        (folder / "charts" / "dep-1.0.0.tgz").write_bytes(dep)


def test_pulling_unpacks_dependencies_in_place_and_a_second_run_pulls_nothing(
    tmp_path: Path,
) -> None:
    planned = [argv for _, argv in pull_charts.plan(CHART_REFS, tmp_path)]
    helm = FakeHelm()
    assert pull_charts.pull(tmp_path, run=helm) == CHART_REFS
    assert helm.ran == planned
    for ref in CHART_REFS:
        folder = tmp_path / ref.chart
        assert pull_charts.chart_at(folder) == (ref.chart, ref.version)
        assert pull_charts.chart_at(folder / "charts" / "dep") == ("dep", "1.0.0")
        assert pull_charts.chart_at(folder / "charts" / "dep" / "charts" / "sub") == (
            "sub",
            "0.1.0",
        )
        # An archive left beside its folder would load the dependency twice.
        assert not list(folder.rglob("*.tgz")), folder

    again = FakeHelm()
    assert pull_charts.pull(tmp_path, run=again) == [] and again.ran == []


def test_a_chart_at_another_version_is_replaced_and_the_others_kept(tmp_path: Path) -> None:
    pull_charts.pull(tmp_path, run=FakeHelm())
    stale = tmp_path / versions.JAEGER.chart
    (stale / "Chart.yaml").write_bytes(_chart_yaml(versions.JAEGER.chart, "4.0.0"))
    (stale / "stale-file").write_text("from the old version")
    helm = FakeHelm()
    assert pull_charts.pull(tmp_path, run=helm) == [versions.JAEGER]
    assert [argv[2] for argv in helm.ran] == [versions.JAEGER.chart]
    assert pull_charts.chart_at(stale) == (versions.JAEGER.chart, versions.JAEGER.version)
    assert not (stale / "stale-file").exists()


def test_a_pull_that_brings_another_version_fails(tmp_path: Path) -> None:
    ref = versions.LINKERD_CRDS
    with pytest.raises(RuntimeError, match=re.escape(f"not {ref.chart} {ref.version}")):
        pull_charts.pull(tmp_path, run=FakeHelm(version="9.9.9"), refs=[ref])


def test_a_dependency_archive_that_escapes_its_folder_is_refused(tmp_path: Path) -> None:
    (tmp_path / "charts").mkdir()
    (tmp_path / "charts" / "evil-1.0.0.tgz").write_bytes(_tgz({"../../evil": b"x"}))
    with pytest.raises(tarfile.FilterError):
        pull_charts.unpack_dependencies(tmp_path)
    assert not (tmp_path.parent / "evil").exists()


# --- e2e.yml and the e2e suite: a real engine on kind ----------------------------------------

E2E_MODULE = ROOT / "tests" / "e2e" / "test_kind.py"


def _github_glob(pattern: str) -> re.Pattern[str]:
    """A workflow path filter as a regex: `**` crosses folders, `*` and `?` do not."""
    out = ""
    for token in re.split(r"(\*\*/?|\*|\?)", pattern):
        if token.startswith("**"):
            out += "(?:.*/)?" if token.endswith("/") else ".*"
        elif token == "*":
            out += "[^/]*"
        elif token == "?":
            out += "[^/]"
        else:
            out += re.escape(token)
    return re.compile(out)


def _e2e_run(workflow: dict[str, Any]) -> tuple[int, dict[str, str], list[str]]:
    found = [
        (i, {**env, **assigned}, argv)
        for i, (env, step) in enumerate(job_steps(workflow))
        for assigned, argv in commands(step.get("run", ""))
        if argv and argv[0].endswith("pytest")
    ]
    assert len(found) == 1, "one pytest step"
    return found[0]


def _action(workflow: dict[str, Any], action: str) -> tuple[int, dict[str, Any]]:
    found = [
        (i, step)
        for i, (_, step) in enumerate(job_steps(workflow))
        if step.get("uses", "").split("@")[0] == action
    ]
    assert len(found) == 1, f"one {action} step"
    return found[0]


def test_e2e_runs_the_opted_in_e2e_suite_on_pull_requests_to_main_and_by_hand() -> None:
    e2e = load("e2e.yml")
    on = triggers(e2e)
    assert "workflow_dispatch" in on
    assert "main" in ((on["pull_request"] or {}).get("branches") or ["main"])
    _, env, argv = _e2e_run(e2e)
    assert env.get("MESHSTACK_E2E") == "1", "without it the suite skips"
    assert argv[0] == ".venv/bin/pytest"
    assert argv[argv.index("-m") + 1] == "e2e"


def test_e2e_path_filter_covers_what_the_suite_deploys_and_checks() -> None:
    on_pr = triggers(load("e2e.yml"))["pull_request"] or {}
    patterns = [_github_glob(p) for p in on_pr.get("paths") or ["**"]]
    # The program, its config and policy, the suite and what it imports from the repository.
    imported = [
        node.module.replace(".", "/") + ".py"
        for node in ast.walk(ast.parse(E2E_MODULE.read_text()))
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("tests")
    ]
    watched = [
        "__main__.py",
        "components/mesh.py",
        "policy/rules.py",
        "policy/config.dev.json",
        "Pulumi.yaml",
        "Pulumi.dev.yaml",
        "kind.yaml",
        "requirements.txt",
        "requirements-dev.txt",
        "tests/e2e/test_kind.py",
        ".github/workflows/e2e.yml",
        *imported,
    ]
    assert "tests/graph.py" in imported
    for path in watched:
        assert (ROOT / path).exists(), path
        assert any(p.fullmatch(path) for p in patterns), f"a change to {path} skips e2e.yml"


def test_every_pulumi_cli_in_ci_is_the_release_of_the_pinned_sdk() -> None:
    sdk = requirement_pin("pulumi")
    seen = []
    for path in workflow_files():
        for _, step in job_steps(yaml.safe_load(path.read_text())):
            if step.get("uses", "").startswith("pulumi/actions@"):
                seen.append(path.name)
                assert str(step["with"]["pulumi-version"]) == sdk, path.name
    assert {"preview.yml", "e2e.yml"} <= set(seen)


def test_e2e_installs_the_venv_the_cli_kind_and_kubectl_before_the_suite() -> None:
    e2e = load("e2e.yml")
    all_steps = job_steps(e2e)
    suite_at, _, _ = _e2e_run(e2e)

    venv = yaml.safe_load((ROOT / "Pulumi.yaml").read_text())["runtime"]["options"]["virtualenv"]
    installs = [
        i
        for i, (_, step) in enumerate(all_steps)
        for _, argv in commands(step.get("run", ""))
        if argv[:2] == [f"{venv}/bin/pip", "install"] and "requirements-dev.txt" in argv
    ]
    assert installs and installs[0] < suite_at, "the .venv from requirements-dev.txt first"

    # No `command`: the action only installs the CLI the Automation API drives.
    cli_at, cli = _action(e2e, "pulumi/actions")
    assert "command" not in cli.get("with", {}) and cli_at < suite_at

    kind_at, kind = _action(e2e, "helm/kind-action")
    options = kind["with"]
    assert kind_at < suite_at
    for key in ("version", "kubectl_version"):
        assert re.fullmatch(r"v\d+\.\d+\.\d+", str(options.get(key))), f"kind-action {key}"


def test_the_suite_not_the_workflow_creates_the_kind_cluster() -> None:
    # The fixture creates the cluster Pulumi.dev.yaml's context names and refuses an existing
    # one: a cluster made by the workflow would stop it.
    e2e = load("e2e.yml")
    _, kind = _action(e2e, "helm/kind-action")
    assert str(kind["with"].get("install_only")).lower() == "true"
    for _, step in job_steps(e2e):
        for _, argv in commands(step.get("run", "")):
            assert argv[:3] != ["kind", "create", "cluster"], "the suite creates the cluster"

    tree = ast.parse(E2E_MODULE.read_text())
    creates = [
        node
        for node in ast.walk(tree)
        if isinstance(node, ast.List)
        and [e.value for e in node.elts[:3] if isinstance(e, ast.Constant)]
        == ["kind", "create", "cluster"]
    ]
    assert creates, "tests/e2e/test_kind.py creates the kind cluster"
    context = yaml.safe_load((ROOT / "Pulumi.dev.yaml").read_text())["config"]
    assert context["meshstack:kubeContext"].startswith("kind-")


def _automation_calls(tree: ast.AST) -> dict[str, list[tuple[str, ast.Call]]]:
    """Automation API method → (enclosing top-level function, call) for up/preview/refresh."""
    found: dict[str, list[tuple[str, ast.Call]]] = {}
    assert isinstance(tree, ast.Module)
    for function in tree.body:
        if not isinstance(function, ast.FunctionDef):
            continue
        for node in ast.walk(function):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr in {"up", "preview", "refresh"}
            ):
                found.setdefault(node.func.attr, []).append((function.name, node))
    return found


def _keyword(call: ast.Call, name: str) -> ast.expr | None:
    return next((k.value for k in call.keywords if k.arg == name), None)


def test_the_e2e_suite_proves_no_churn_and_no_drift_before_the_user_checks() -> None:
    tree = ast.parse(E2E_MODULE.read_text())
    calls = _automation_calls(tree)
    assert set(calls) == {"up", "preview", "refresh"}, calls
    for method in ("preview", "refresh"):
        for _, call in calls[method]:
            flag = _keyword(call, "expect_no_changes")
            assert isinstance(flag, ast.Constant) and flag.value is True, method
    for method in ("up", "preview"):
        for _, call in calls[method]:
            assert _keyword(call, "policy_packs") is not None, f"{method} runs the policy pack"

    # Tests run in file order: the engine checks come before any test of what a user sees.
    assert isinstance(tree, ast.Module)
    tests = [f for f in tree.body if isinstance(f, ast.FunctionDef) and f.name.startswith("test_")]
    names = [f.name for f in tests]
    engine = {name for method in ("preview", "refresh") for name, _ in calls[method]}
    assert engine <= set(names), "preview and refresh are tests of their own"
    user_checks = [f.name for f in tests if "outputs" in {a.arg for a in f.args.args}]
    assert user_checks
    assert max(names.index(n) for n in engine) < min(names.index(n) for n in user_checks)


def test_the_pinned_sdk_takes_every_argument_the_e2e_suite_passes() -> None:
    from pulumi import automation as auto

    for method, found in _automation_calls(ast.parse(E2E_MODULE.read_text())).items():
        accepted = inspect.signature(getattr(auto.Stack, method)).parameters
        for _, call in found:
            for keyword in call.keywords:
                assert keyword.arg in accepted, f"Stack.{method}() takes no {keyword.arg}"


def test_the_e2e_suite_skips_with_a_reason_naming_a_missing_tool(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from tests.e2e import test_kind

    monkeypatch.delenv("MESHSTACK_E2E", raising=False)
    monkeypatch.setattr(
        test_kind.shutil, "which", lambda tool: None if tool == "kind" else f"/bin/{tool}"
    )
    reason = test_kind._skip_reason()
    assert reason and reason.startswith("kind not found on PATH"), reason
    monkeypatch.setattr(test_kind.shutil, "which", lambda tool: f"/bin/{tool}")
    reason = test_kind._skip_reason()
    assert reason and "MESHSTACK_E2E=1" in reason, reason


@pytest.mark.parametrize("stack", stack_names())
def test_preview_names_the_kind_cluster_as_the_context_the_stack_pins(stack: str) -> None:
    """The preview runs each stack file as it is: a stack pinned to a context other than the
    kind cluster's (prod) finds that context, aliased to the throw-away cluster."""
    import subprocess
    import textwrap
    from unittest import mock

    (step,) = [s for s in steps(load("preview.yml")) if "<<'PY'" in s.get("run", "")]
    script = step["run"].split("<<'PY'\n", 1)[1].rsplit("PY", 1)[0]
    script = textwrap.dedent(script)
    calls: list[list[str]] = []
    with mock.patch.object(subprocess, "run", lambda cmd, **_: calls.append(cmd)):
        import os

        cwd = os.getcwd()
        os.chdir(ROOT)
        try:
            exec(script.replace("${{ matrix.stack }}", stack), {})
        finally:
            os.chdir(cwd)
    config = yaml.safe_load((ROOT / f"Pulumi.{stack}.yaml").read_text())["config"]
    context = config.get("meshstack:kubeContext") or "kind-meshstack"
    aliases = [c for c in calls if c[:3] == ["kubectl", "config", "set-context"]]
    if context == "kind-meshstack":
        assert not aliases
    else:
        assert aliases == [
            [
                "kubectl",
                "config",
                "set-context",
                context,
                "--cluster",
                "kind-meshstack",
                "--user",
                "kind-meshstack",
            ]
        ]
    teams = (config.get("meshstack:onboarding") or {}).get("namespaces") or []
    adopted = [["kubectl", "create", "namespace", t["name"]] for t in teams if t.get("adopt")]
    assert [c for c in calls if c[:2] == ["kubectl", "create"]] == adopted


# --- renew.yml: certificates renewed on a schedule -------------------------------------------


def _pulumi_commands(workflow: dict[str, Any]) -> list[tuple[int, dict[str, Any]]]:
    """(position, step) of every pulumi/actions step that runs a command."""
    return [
        (i, step)
        for i, (_, step) in enumerate(job_steps(workflow))
        if step.get("uses", "").split("@")[0] == "pulumi/actions"
        and step.get("with", {}).get("command")
    ]


def test_renew_runs_on_a_weekly_schedule_and_by_hand_never_on_a_change() -> None:
    on = triggers(load("renew.yml"))
    assert set(on) == {"schedule", "workflow_dispatch"}, "a renewal deploys: never on a PR"
    crons = [entry["cron"] for entry in on["schedule"]]
    assert crons
    for cron in crons:
        minute, hour, day, month, weekday = cron.split()
        assert minute.isdigit() and hour.isdigit(), cron
        # Every week of every month: at least one run a week.
        assert (day, month) == ("*", "*") and (weekday == "*" or weekday.isdigit()), cron
    # Each renewal window opens 90 days before expiry, `linkerd check` warns from 60: a weekly
    # run gets four tries in between.
    assert (cfg.MIN_EARLY_RENEWAL_HOURS // 24 - 60) // 7 >= 4


def test_renew_refreshes_then_updates_the_same_stack_with_the_policy_pack() -> None:
    renew = load("renew.yml")
    found = _pulumi_commands(renew)
    assert [step["with"]["command"] for _, step in found] == ["refresh", "up"]
    (_, refresh), (_, up) = found
    for key in ("stack-name", "cloud-url"):
        assert refresh["with"][key] == up["with"][key], key
    for _, step in found:
        # A renewal that finds no stack fails rather than deploying a new one.
        assert str(step["with"].get("upsert", "false")).lower() == "false"
        assert str(step["with"].get("expect-no-changes", "false")).lower() == "false"
    # The pack `make up` runs, with the config file of whichever stack is renewed.
    assert up["with"]["policyPacks"] == "policy"
    template = up["with"]["policyPackConfigs"]
    stack = up["with"]["stack-name"]
    assert template == f"policy/config.{stack}.json"
    for name in stack_names():
        assert (ROOT / template.replace(stack, name)).is_file(), name
    makefile = (ROOT / "Makefile").read_text()
    assert "--policy-pack policy --policy-pack-config policy/config.$(STACK).json" in makefile


def test_renew_uses_the_cli_release_of_the_pinned_sdk() -> None:
    found = _pulumi_commands(load("renew.yml"))
    assert found
    for _, step in found:
        assert str(step["with"]["pulumi-version"]) == requirement_pin("pulumi")


def test_renew_reaches_the_users_cluster_and_backend_through_repository_secrets() -> None:
    renew = load("renew.yml")
    env = renew["env"]
    for name in ("PULUMI_BACKEND_URL", "PULUMI_CONFIG_PASSPHRASE", "PULUMI_ACCESS_TOKEN"):
        assert env[name] == f"${{{{ secrets.{name} }}}}", name
    all_steps = job_steps(renew)
    for _, step in _pulumi_commands(renew):
        assert step["with"]["cloud-url"] == "${{ env.PULUMI_BACKEND_URL }}"
    # The kubeconfig comes from a secret into a file only the runner's user reads, before any
    # pulumi command; KUBECONFIG then names it for the Kubernetes provider.
    writes = [
        i
        for i, (step_env, step) in enumerate(all_steps)
        if step_env.get("KUBECONFIG_CONTENT") == "${{ secrets.KUBECONFIG }}"
        and "KUBECONFIG=" in step.get("run", "")
    ]
    assert len(writes) == 1
    script = all_steps[writes[0]][1]["run"]
    assert script.index("umask 077") < script.index("$KUBECONFIG_CONTENT")
    first_pulumi = _pulumi_commands(renew)[0][0]
    assert writes[0] < first_pulumi
    # Missing secrets fail the run before anything else happens.
    first = all_steps[0][1].get("run", "")
    assert "exit 1" in first and "KUBECONFIG" in first and "PULUMI_BACKEND_URL" in first


def test_a_renewal_is_never_cancelled_halfway() -> None:
    concurrency = load("renew.yml")["concurrency"]
    assert concurrency["cancel-in-progress"] is False
    assert "inputs.stack" in concurrency["group"]
