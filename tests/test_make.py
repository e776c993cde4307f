"""`make up` and `make preview` touch the kind cluster only for a stack that deploys to it.

Dry runs (`make -n`) print every command a target would run without running any, so these
tests see exactly what `make up` would do to a machine's clusters and kubeconfig.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.graph import ROOT

# What may only happen for a stack pinned to the kind cluster: creating it, and (as `kind
# create cluster` does, or kubectl) switching the current context.
KIND_ONLY = ("kind create", "kind ", "use-context")


def dry_run(target: str, *args: str, cwd: Path = ROOT) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MAKE", "PULUMI_", "STACK"))}
    result = subprocess.run(
        ["make", "--no-print-directory", "-n", target, *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return result.stdout


def context_of(stack: str) -> str:
    config = yaml.safe_load((ROOT / f"Pulumi.{stack}.yaml").read_text())["config"]
    return str(config.get("meshstack:kubeContext", ""))


@pytest.mark.parametrize("target", ["up", "preview"])
def test_make_for_the_prod_stack_never_runs_kind_or_switches_context(target: str) -> None:
    assert not context_of("prod").startswith("kind-")
    commands = dry_run(target, "STACK=prod")
    assert f"pulumi {target} --stack prod" in commands
    for word in KIND_ONLY:
        assert word not in commands, commands


@pytest.mark.parametrize("target", ["up", "preview"])
def test_make_for_the_dev_stack_creates_the_kind_cluster_it_is_pinned_to(target: str) -> None:
    assert context_of("dev") == "kind-meshstack"
    commands = dry_run(target, "STACK=dev")
    assert "kind create cluster --name meshstack --config kind.yaml" in commands
    assert commands.index("kind create") < commands.index(f"pulumi {target} --stack dev")


def test_make_for_a_stack_without_a_stack_file_never_runs_kind() -> None:
    commands = dry_run("up", "STACK=staging")
    assert "pulumi up --stack staging" in commands
    assert "kind " not in commands


# A stack file's context (as YAML may write it) and the CLUSTER make is given → kind or not.
CASES = [
    ('"kind-meshstack"  # the laptop cluster', "meshstack", True),
    ("'kind-lab'", "lab", True),
    ("kind-lab", "meshstack", False),
    ("gke_acme_europe-west1_prod", "meshstack", False),
    ("", "meshstack", False),
]


@pytest.mark.parametrize(("context", "cluster", "kind"), CASES)
def test_only_a_stack_pinned_to_kind_dash_cluster_gets_the_kind_cluster(
    tmp_path: Path, context: str, cluster: str, kind: bool
) -> None:
    for name in ("Makefile", "kind.yaml", "requirements.txt", "requirements-dev.txt"):
        shutil.copy(ROOT / name, tmp_path / name)
    (tmp_path / "Pulumi.team.yaml").write_text(
        f"config:\n  meshstack:kubeContext: {context}\n" if context else "config: {}\n"
    )
    commands = dry_run("up", "STACK=team", f"CLUSTER={cluster}", cwd=tmp_path)
    assert ("kind create cluster --name " + cluster in commands) is kind, commands
