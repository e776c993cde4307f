"""The GitHub Actions workflows: valid, pinned, and doing what the README says they do."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.graph import ROOT, stack_names

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


def uses_lines(path: Path) -> list[str]:
    """Every `uses:` value with its trailing comment, as written in the file."""
    return [
        m.group(1).strip()
        for m in re.finditer(r"^\s*(?:-\s*)?uses:\s*(.+)$", path.read_text(), re.MULTILINE)
    ]


def test_the_workflows_exist() -> None:
    assert {p.name for p in workflow_files()} >= {"ci.yml", "preview.yml"}


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
