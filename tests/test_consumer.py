"""The consumer example reads the platform's real outputs and deploys into an onboarded namespace.

The StackReference is mocked with the outputs the platform program itself records, so a
renamed or reshaped output breaks this test as it would break a real consumer.
"""

from __future__ import annotations

import ast
import os
import re
import runpy
import subprocess
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
from pulumi.runtime import mocks

from tests.graph import ROOT, Graph, StatefulMocks, record, run_program

CONSUMER = ROOT / "examples" / "consumer"
TEAMS = {"onboarding": {"namespaces": [{"name": "team-a"}, {"name": "team-b"}]}}


class PlatformMocks(StatefulMocks):
    """StatefulMocks plus a StackReference answering with a platform stack's outputs."""

    def __init__(self, outputs: dict[str, Any]) -> None:
        self.outputs = outputs

    def new_resource(self, args: mocks.MockResourceArgs) -> tuple[str, dict[str, Any]]:
        if args.typ == "pulumi:pulumi:StackReference":
            return args.name, {"name": args.name, "outputs": self.outputs}
        return super().new_resource(args)


def consume(outputs: dict[str, Any], config: dict[str, Any] | None = None) -> Graph:
    return record(
        lambda: runpy.run_path(str(CONSUMER / "__main__.py"), run_name="__main__"),
        config=config,
        project="meshstack-consumer",
        engine=PlatformMocks(outputs),
    )


@pytest.fixture(scope="module")
def platform() -> dict[str, Any]:
    graph = run_program("dev", TEAMS)
    assert graph.error is None
    return graph.outputs


def deployment(graph: Graph) -> Any:
    assert graph.error is None, graph.error
    return graph.get("kubernetes:apps/v1:Deployment", "consumer-demo")


def test_consumer_deploys_into_the_first_onboarded_namespace(platform: dict[str, Any]) -> None:
    graph = consume(platform)
    assert deployment(graph).inputs["metadata"]["namespace"] == "team-a"
    ref = graph.of_type("pulumi:pulumi:StackReference")
    assert [r.name for r in ref] == ["organization/meshstack/dev"]


def test_consumer_sends_spans_to_the_collector_endpoint_the_platform_exports(
    platform: dict[str, Any],
) -> None:
    args = deployment(consume(platform)).inputs["spec"]["template"]["spec"]["containers"][0]["args"]
    assert f"--otlp-endpoint={platform['tracing']['otlpGrpc']}" in args
    assert platform["tracing"]["otlpGrpc"].endswith(":4317")


def test_consumer_pods_are_meshed_by_the_namespace_not_by_opting_out(
    platform: dict[str, Any],
) -> None:
    template = deployment(consume(platform)).inputs["spec"]["template"]
    annotations = (template.get("metadata") or {}).get("annotations") or {}
    assert annotations.get("linkerd.io/inject") != "disabled"


def test_consumer_can_choose_another_onboarded_namespace(platform: dict[str, Any]) -> None:
    graph = consume(platform, {"namespace": "team-b"})
    assert deployment(graph).inputs["metadata"]["namespace"] == "team-b"


def test_consumer_refuses_a_namespace_the_platform_does_not_onboard(
    platform: dict[str, Any],
) -> None:
    graph = consume(platform, {"namespace": "team-z"})
    assert graph.error is not None
    assert "meshstack-consumer:namespace" in str(graph.error)
    assert "team-a, team-b" in str(graph.error)


def test_consumer_explains_a_platform_without_team_namespaces() -> None:
    graph = consume({**run_program("dev").outputs})
    assert graph.error is not None
    assert "onboarding.namespaces" in str(graph.error)


def test_consumer_workload_is_a_valid_restricted_deployment(platform: dict[str, Any]) -> None:
    res = deployment(consume(platform))
    obj = {"apiVersion": "apps/v1", "kind": "Deployment", **res.inputs}
    for version in ("1.31.0", "1.35.0"):
        kubernetes_validate.validate(obj, version, strict=True)
    container = res.inputs["spec"]["template"]["spec"]["containers"][0]
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert set(container["resources"]) == {"requests", "limits"}
    assert ":latest" not in container["image"] and ":" in container["image"]


# --- The documented steps reach the platform's stack -------------------------------------------

BACKEND_VARS = ("PULUMI_BACKEND_URL", "PULUMI_CONFIG_PASSPHRASE")


def _clean_env() -> dict[str, str]:
    """The environment of someone who never set a backend: `make up` then uses its defaults."""
    return {k: v for k, v in os.environ.items() if not k.startswith(("PULUMI_", "MAKE"))}


def makefile_exports() -> tuple[str, ...]:
    """The backend and passphrase `make up` exports to pulumi, read from make itself."""
    printer = "print-backend: ; @echo " + " && echo ".join(f"$({v})" for v in BACKEND_VARS)
    result = subprocess.run(
        ["make", "-s", "--no-print-directory", f"--eval={printer}", "print-backend"],
        cwd=ROOT,
        env=_clean_env(),
        capture_output=True,
        text=True,
        check=True,
    )
    return tuple(result.stdout.splitlines())


def documented_exports(steps: list[str], cwd: Path) -> tuple[str, ...]:
    """The backend and passphrase set by the `cd` and `export` commands that come before
    `pulumi stack init` in `steps`, as a shell started in `cwd` ends up with them."""
    init = next((i for i, s in enumerate(steps) if "pulumi stack init" in s), None)
    assert init is not None, steps
    # `cd <dir> && <install>`: the directory change only; an export is kept whole.
    commands = [
        step.split("&&")[0].strip() if step.startswith("cd ") else step
        for step in (s.strip() for s in steps[:init])
        if step.startswith(("cd ", "export "))
    ]
    script = "\n".join([*commands, *(f'echo "${v}"' for v in BACKEND_VARS)])
    result = subprocess.run(
        ["bash", "-euc", script], cwd=cwd, env=_clean_env(), capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    return tuple(result.stdout.splitlines())


def readme_consumer_steps() -> list[str]:
    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("### Consuming the platform") :]
    block = re.search(r"```bash\n(.*?)```", section, re.DOTALL)
    assert block, "README: no commands under Consuming the platform"
    return block.group(1).splitlines()


def docstring_consumer_steps() -> list[str]:
    doc = ast.get_docstring(ast.parse((CONSUMER / "__main__.py").read_text())) or ""
    return [line.strip() for line in doc.splitlines() if line.startswith("    ")]


def test_make_up_exports_a_local_backend_in_the_repository() -> None:
    backend, passphrase = makefile_exports()
    assert backend == f"file://{ROOT}/.pulumi-state" and passphrase


def test_the_readme_consumer_steps_use_the_backend_and_passphrase_of_make_up() -> None:
    assert documented_exports(readme_consumer_steps(), ROOT) == makefile_exports()


def test_the_consumer_docstring_steps_use_the_backend_and_passphrase_of_make_up() -> None:
    assert documented_exports(docstring_consumer_steps(), CONSUMER) == makefile_exports()
