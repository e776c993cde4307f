"""The consumer example reads the platform's real outputs and deploys into an onboarded namespace.

The StackReference is mocked with the outputs the platform program itself records, so a
renamed or reshaped output breaks this test as it would break a real consumer.
"""

from __future__ import annotations

import runpy
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
