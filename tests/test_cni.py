"""The linkerd2-cni plugin: installed in its own namespace before the control plane, with the
proxy ports and user the control plane injects, on by default in production only."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
import yaml

from components import mesh, versions
from components.identity import WebhookCert
from tests.charts import VARIANTS, Stack, stack, suite_marks
from tests.graph import Graph, run_program

CHART = "kubernetes:helm.sh/v4:Chart"
NAMESPACE = "kubernetes:core/v1:Namespace"


def graph(stack_name: str, **overrides: Any) -> Graph:
    g = run_program(stack_name, overrides)
    assert g.error is None, g.error
    return g


@pytest.fixture(scope="module")
def prod() -> Graph:
    return graph("prod")


@pytest.fixture(scope="module")
def dev() -> Graph:
    return graph("dev")


# --- The program -------------------------------------------------------------------------------


def test_prod_installs_the_pinned_cni_chart_in_its_own_namespace(prod: Graph) -> None:
    cni = prod.charts()[mesh.CNI_RELEASE]
    assert (cni.inputs["chart"], cni.inputs["version"]) == ("linkerd2-cni", "2026.8.3")
    assert (
        cni.inputs["repositoryOpts"]["repo"]
        == versions.LINKERD_REPO
        == ("https://helm.linkerd.io/edge")
    )
    assert versions.LINKERD2_CNI.version == versions.LINKERD_CONTROL_PLANE.version
    assert cni.inputs["namespace"] == mesh.CNI_NAMESPACE == "linkerd-cni"


def test_the_cni_namespace_carries_the_labels_the_cli_gives_it(prod: Graph) -> None:
    ns = prod.get(NAMESPACE, "linkerd-cni-namespace")
    labels = ns.inputs["metadata"]["labels"]
    assert ns.inputs["metadata"]["name"] == "linkerd-cni"
    assert labels["linkerd.io/cni-resource"] == "true"
    assert labels["config.linkerd.io/admission-webhooks"] == "disabled"
    # The DaemonSet mounts hostPath volumes, which even `baseline` forbids.
    assert labels["pod-security.kubernetes.io/enforce"] == "privileged"


def test_the_control_plane_waits_for_the_plugin_and_enables_it(prod: Graph) -> None:
    charts = prod.charts()
    control_plane, cni = charts["linkerd-control-plane"], charts[mesh.CNI_RELEASE]
    assert prod.waits_for(control_plane, cni)
    assert control_plane.inputs["values"]["cniEnabled"] is True
    assert not prod.waits_for(cni, control_plane)


def test_dev_runs_linkerd_init_and_no_plugin(dev: Graph) -> None:
    assert mesh.CNI_RELEASE not in dev.charts()
    assert dev.find(NAMESPACE, "linkerd-cni-namespace") is None
    assert "cniEnabled" not in dev.charts()["linkerd-control-plane"].inputs["values"]


def test_dev_may_turn_the_plugin_on_and_prod_off() -> None:
    assert mesh.CNI_RELEASE in graph("dev", linkerd={"cni": True}).charts()
    assert mesh.CNI_RELEASE not in graph("prod", linkerd={"cni": False}).charts()


@pytest.mark.parametrize("profile", ["dev", "prod"])
def test_the_plugin_and_the_control_plane_take_the_proxy_ports_and_user_from_one_place(
    profile: str,
) -> None:
    certs = {
        role: WebhookCert("crt", "key", "ca")  # type: ignore[arg-type]
        for role in mesh.CONTROL_PLANE_WEBHOOKS
    }
    values = mesh.control_plane_values(
        profile, "cluster.local", "anchor", "pulumi", "crt", "key", certs, None, cni=True
    )
    assert values["proxy"]["ports"] == mesh.PROXY_PORTS and values["proxy"]["uid"] == 2102
    assert mesh.cni_values(profile) | {"resources": None} == {
        "inboundProxyPort": mesh.PROXY_PORTS["inbound"],
        "outboundProxyPort": mesh.PROXY_PORTS["outbound"],
        "proxyAdminPort": mesh.PROXY_PORTS["admin"],
        "proxyControlPort": mesh.PROXY_PORTS["control"],
        "proxyUID": mesh.PROXY_UID,
        "resources": None,
    }


# --- The rendered charts -----------------------------------------------------------------------

CNI_VARIANTS = sorted(v for v, (name, over) in VARIANTS.items() if name == "prod")


def _rendered(variant: str) -> Stack:
    s = stack(variant)
    problems = [f"{r}: {c.error}" for r, c in s.charts.items() if c.error]
    if problems:
        pytest.fail("\n".join(problems), pytrace=False)
    return s


def _one(s: Stack, release: str, kind: str, name: str) -> dict[str, Any]:
    (obj,) = [
        o for o in s.charts[release].objects if o["kind"] == kind and o["metadata"]["name"] == name
    ]
    return obj


def chart_suite(test: Callable[..., None]) -> Callable[..., None]:
    """Marks a test of the rendered charts as the chart suites are marked (`suite_marks`)."""
    for mark in suite_marks():
        test = mark(test)
    return test


@chart_suite
@pytest.mark.parametrize("variant", CNI_VARIANTS)
def test_the_plugin_redirects_to_the_ports_and_spares_the_user_the_proxies_get(
    variant: str,
) -> None:
    s = _rendered(variant)
    network = json.loads(
        _one(s, mesh.CNI_RELEASE, "ConfigMap", "linkerd-cni-config")["data"]["cni_network_config"]
    )["linkerd"]
    config = yaml.safe_load(
        _one(s, "linkerd-control-plane", "ConfigMap", "linkerd-config")["data"]["values"]
    )
    ports, uid = config["proxy"]["ports"], config["proxy"]["uid"]
    assert config["cniEnabled"] is True
    assert network["incoming-proxy-port"] == ports["inbound"]
    assert network["outgoing-proxy-port"] == ports["outbound"]
    assert network["proxy-uid"] == uid
    # The proxy's own admin and control ports are never redirected to it.
    assert network["inbound-ports-to-ignore"] == [str(ports["admin"]), str(ports["control"])]
    # And the injected proxy (here the control plane's own) runs as that user.
    destination = _one(s, "linkerd-control-plane", "Deployment", "linkerd-destination")
    pod = destination["spec"]["template"]["spec"]
    containers = {c["name"]: c for c in pod["containers"] + pod.get("initContainers", [])}
    assert containers["linkerd-proxy"]["securityContext"]["runAsUser"] == uid
    assert "linkerd-init" not in containers and "linkerd-network-validator" in containers
