"""The multicluster chart rendered with the stack's values (variant `dev-multicluster`: east,
linked to west through west's gateway): what the program writes arrives where the rendered chart
reads it. Part of the chart contract suite (marker `contract`)."""

from __future__ import annotations

from typing import Any

import pytest

from components import multicluster as mcl
from tests.charts import Stack, stack, suite_marks

pytestmark = suite_marks()
LINK = "kubernetes:multicluster.linkerd.io/v1alpha3:Link"


@pytest.fixture(scope="module")
def east() -> Stack:
    return stack("dev-multicluster")


def rendered(s: Stack, kind: str, name: str) -> dict[str, Any]:
    found = [
        o
        for _, o in s.objects()
        if o["kind"] == kind
        and o["metadata"]["name"] == name
        and o["metadata"].get("namespace", mcl.NAMESPACE) == mcl.NAMESPACE
    ]
    assert len(found) == 1, f"{kind} {name}: {len(found)} rendered"
    return found[0]


def test_each_link_has_a_rendered_controller_allowed_to_read_the_secret_the_program_writes(
    east: Stack,
) -> None:
    links = east.graph.of_type(LINK)
    assert links
    for link in links:
        name = link.inputs["metadata"]["name"]
        deployment = rendered(east, "Deployment", f"controller-{name}")
        (container,) = deployment["spec"]["template"]["spec"]["containers"]
        # The controller loads the Link named by its last argument.
        assert container["args"][-1] == name
        role = rendered(east, "Role", f"controller-read-remote-creds-{name}")
        readable = {n for rule in role["rules"] for n in rule.get("resourceNames") or []}
        secret = link.inputs["spec"]["clusterCredentialsSecret"]
        written = [
            r
            for r in east.graph.of_type("kubernetes:core/v1:Secret")
            if not r.options["read"]
            and r.inputs["metadata"]["name"] == secret
            and r.inputs["metadata"]["namespace"] == mcl.NAMESPACE
        ]
        assert len(written) == 1 and secret in readable, (secret, readable)
        assert container.get("resources", {}).get("limits"), "the controller has limits"


def test_what_the_stack_exports_for_peers_is_what_the_rendered_gateway_serves(
    east: Stack,
) -> None:
    exported = east.graph.outputs["multicluster"]["gateway"]
    service = rendered(east, "Service", mcl.GATEWAY)
    ports = {p["name"]: p for p in service["spec"]["ports"]}
    assert service["spec"]["type"] == "NodePort"
    assert ports["mc-gateway"]["nodePort"] == exported["port"]
    assert ports["mc-probe"]["nodePort"] == exported["probePort"]
    identity = service["metadata"]["annotations"]["mirror.linkerd.io/gateway-identity"]
    assert identity == exported["identity"]
    # The remote-mirror token Secret the stack reads back (and exports) is the chart's.
    token = rendered(east, "Secret", mcl.REMOTE_MIRROR_TOKEN_SECRET)
    assert token["type"] == "kubernetes.io/service-account-token"
    read = east.graph.get("kubernetes:core/v1:Secret", "multicluster-remote-mirror-token")
    assert read.options["read"]
    account = token["metadata"]["annotations"]["kubernetes.io/service-account.name"]
    rendered(east, "ServiceAccount", account)


def test_the_gateways_pause_container_is_sized_in_what_a_preview_registers(east: Stack) -> None:
    gateway = rendered(east, "Deployment", mcl.GATEWAY)
    (pause,) = [
        c for c in gateway["spec"]["template"]["spec"]["containers"] if c["name"] == "pause"
    ]
    assert set(pause["resources"]) == {"requests", "limits"}


def test_the_prometheus_shared_with_peers_selects_vizs_prometheus_on_its_port(east: Stack) -> None:
    (federate,) = [
        r
        for r in east.graph.of_type("kubernetes:core/v1:Service")
        if r.inputs["metadata"]["name"] == mcl.FEDERATE_SERVICE
    ]
    selector = federate.inputs["spec"]["selector"]
    (port,) = federate.inputs["spec"]["ports"]
    pods = [
        o
        for _, o in east.objects()
        if o["kind"] == "Deployment"
        and o["metadata"].get("namespace") == federate.inputs["metadata"]["namespace"]
        and selector.items() <= o["spec"]["template"]["metadata"]["labels"].items()
    ]
    assert [p["metadata"]["name"] for p in pods] == ["prometheus"]
    served = {
        int(cp["containerPort"])
        for c in pods[0]["spec"]["template"]["spec"]["containers"]
        for cp in c.get("ports") or []
    }
    assert int(port["targetPort"]) in served
