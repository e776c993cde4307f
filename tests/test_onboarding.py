"""Onboarding: team namespaces created or adopted into the mesh, under the recording mocks."""

from __future__ import annotations

import re
from typing import Any

import pulumi
import pytest

from components.config import TeamNamespace
from components.onboarding import (
    TRACING_CONFIGMAP,
    Onboarding,
    OnboardingArgs,
    merge_policies,
    proxy_admin_policy,
    tracing_env,
)
from components.tracing import TracingAddresses, addresses
from tests.graph import Graph, Resource, record
from tests.test_emojivoto import (
    CP_NAME,
    VIZ_PROMETHEUS,
    control_plane_stand_in,
    crd_errors,
    is_policy,
    kubernetes_validate_errors,
    linkerd_crd_schemas,
)

NAMESPACE = "kubernetes:core/v1:Namespace"
NAMESPACE_PATCH = "kubernetes:core/v1:NamespacePatch"
CONFIGMAP = "kubernetes:core/v1:ConfigMap"


# The real addresses the program hands onboarding.
ADDRESSES = addresses("cluster.local")


def build(
    teams: list[TeamNamespace],
    tracing: TracingAddresses | None = ADDRESSES,
    open_census: bool = True,
) -> Graph:
    def program() -> None:
        onboarding = Onboarding(
            "onboarding",
            OnboardingArgs(
                teams=teams,
                control_plane=control_plane_stand_in(),
                tracing=tracing,
                open_census=open_census,
            ),
        )
        pulumi.export("namespaces", onboarding.namespaces)

    graph = record(program)
    if graph.error is not None:
        raise graph.error
    return graph


def team_objects(graph: Graph) -> list[Resource]:
    return [r for r in graph.kubernetes_objects() if r.name != CP_NAME]


def metadata_of(res: Resource) -> dict[str, Any]:
    meta: dict[str, Any] = res.inputs["metadata"]
    return meta


# --- Zero, one, many -------------------------------------------------------------------------


def test_no_teams_creates_nothing_and_outputs_an_empty_list() -> None:
    graph = build([])
    assert team_objects(graph) == []
    assert graph.outputs["namespaces"] == []


def test_one_team_gets_a_meshed_default_deny_namespace() -> None:
    graph = build([TeamNamespace("team-a")])
    ns = graph.get(NAMESPACE, "onboarding-team-a-namespace")
    meta = metadata_of(ns)
    assert meta["name"] == "team-a"
    assert meta["annotations"]["linkerd.io/inject"] == "enabled"
    assert meta["annotations"]["config.linkerd.io/default-inbound-policy"] == "deny"
    assert meta["labels"]["pod-security.kubernetes.io/enforce"] == "privileged"
    assert graph.outputs["namespaces"] == ["team-a"]


def test_many_teams_are_onboarded_in_configuration_order() -> None:
    teams = [TeamNamespace("team-c"), TeamNamespace("team-a", adopt=True), TeamNamespace("b")]
    graph = build(teams)
    assert graph.outputs["namespaces"] == ["team-c", "team-a", "b"]
    assert len(graph.of_type(NAMESPACE)) == 2
    assert len(graph.of_type(NAMESPACE_PATCH)) == 1
    assert len(graph.of_type(CONFIGMAP)) == 1 + 3  # the control-plane stand-in, then one each


def test_every_namespace_and_everything_in_it_waits_for_the_control_plane() -> None:
    graph = build([TeamNamespace("team-a"), TeamNamespace("team-b", adopt=True)])
    cp = graph.get(CONFIGMAP, CP_NAME)
    objects = team_objects(graph)
    assert objects
    late = [r.urn for r in objects if not graph.waits_for(r, cp)]
    assert not late, f"created before the control plane is ready: {late}"


def test_every_child_is_parented_to_the_component_and_named_after_it() -> None:
    graph = build([TeamNamespace("team-a"), TeamNamespace("team-b", adopt=True)])
    component = graph.get("meshstack:apps:Onboarding", "onboarding")
    for r in team_objects(graph):
        assert r.parent == component.urn, r.urn
        assert r.name.startswith(("onboarding-team-a-", "onboarding-team-b-")), r.urn


# --- Adoption --------------------------------------------------------------------------------


def test_adopting_patches_the_existing_namespace_instead_of_creating_it() -> None:
    graph = build([TeamNamespace("legacy", adopt=True)])
    assert graph.of_type(NAMESPACE) == []
    patch = graph.get(NAMESPACE_PATCH, "onboarding-legacy-namespace")
    meta = metadata_of(patch)
    assert meta["name"] == "legacy"
    assert meta["annotations"]["linkerd.io/inject"] == "enabled"
    assert meta["annotations"]["config.linkerd.io/default-inbound-policy"] == "deny"
    # Without the CNI plugin: `privileged` would loosen the team's own level, so none is set.
    assert "pod-security.kubernetes.io/enforce" not in meta["labels"]
    # Only metadata: nothing else of the team's namespace is touched.
    assert set(patch.inputs) <= {"apiVersion", "kind", "metadata"}
    assert graph.outputs["namespaces"] == ["legacy"]


def test_adopting_never_forces_a_key_the_team_set_so_destroy_gives_it_back() -> None:
    graph = build([TeamNamespace("legacy", adopt=True)])
    patch = graph.get(NAMESPACE_PATCH, "onboarding-legacy-namespace")
    meta = metadata_of(patch)
    # Server-side apply without force: a key another manager set to another value is a conflict
    # (the `up` stops there), one set to the same value is shared, so the patch's manager owns
    # only keys the namespace did not have, the only ones deleting the patch removes.
    assert "pulumi.com/patchForce" not in meta.get("annotations", {})
    # The keys it sets: injection, default deny, and `restricted` warnings and audit.
    assert meta["labels"] == {
        "pod-security.kubernetes.io/warn": "restricted",
        "pod-security.kubernetes.io/audit": "restricted",
    }
    assert set(meta["annotations"]) == {
        "linkerd.io/inject",
        "config.linkerd.io/default-inbound-policy",
    }
    # Deleted (its fields released) on destroy, never left behind with the keys it owns.
    assert patch.options["retainOnDelete"] is False


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_the_provider_never_forces_patches_either(graphs: dict[str, Graph], stack: str) -> None:
    (provider,) = graphs[stack].of_type("pulumi:providers:kubernetes")
    assert str(provider.inputs.get("enablePatchForce", "false")).lower() == "false"


def test_objects_in_an_adopted_namespace_wait_for_the_patch() -> None:
    graph = build([TeamNamespace("legacy", adopt=True)])
    patch = graph.get(NAMESPACE_PATCH, "onboarding-legacy-namespace")
    inside = [r for r in team_objects(graph) if r is not patch]
    assert inside
    assert all(patch.urn in r.dependencies for r in inside)


# --- Tracing ConfigMap -----------------------------------------------------------------------


def test_tracing_configmap_hands_out_otlp_and_opencensus_endpoints() -> None:
    graph = build([TeamNamespace("team-a")])
    cm = graph.get(CONFIGMAP, "onboarding-team-a-tracing")
    assert metadata_of(cm)["name"] == TRACING_CONFIGMAP
    assert metadata_of(cm)["namespace"] == "team-a"
    assert cm.inputs["data"] == {
        "OTEL_EXPORTER_OTLP_ENDPOINT": "http://otel-collector.tracing.svc.cluster.local:4317",
        "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc",
        "OC_AGENT_HOST": "otel-collector.tracing.svc.cluster.local:55678",
    }


def test_without_tracing_there_is_no_tracing_configmap() -> None:
    graph = build([TeamNamespace("team-a")], tracing=None)
    assert graph.find(CONFIGMAP, "onboarding-team-a-tracing") is None
    assert graph.outputs["namespaces"] == ["team-a"]


@pytest.mark.parametrize(
    ("tracing", "open_census", "keys"),
    [
        (None, True, None),
        (None, False, None),
        (ADDRESSES, False, {"OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_PROTOCOL"}),
        (
            ADDRESSES,
            True,
            {"OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_PROTOCOL", "OC_AGENT_HOST"},
        ),
    ],
)
def test_tracing_env_keys_follow_tracing_and_opencensus(
    tracing: TracingAddresses | None, open_census: bool, keys: set[str] | None
) -> None:
    data = tracing_env(tracing, open_census)
    assert (set(data) if data is not None else None) == keys


def test_tracing_env_keys_are_usable_with_env_from() -> None:
    data = tracing_env(ADDRESSES, True)
    assert data
    for key, value in data.items():
        assert re.match(r"^[A-Z_][A-Z0-9_]*$", key), key
        assert value and value == value.strip(), key
    assert data["OTEL_EXPORTER_OTLP_ENDPOINT"].startswith("http://")
    assert "://" not in data["OC_AGENT_HOST"]


# --- Policy ----------------------------------------------------------------------------------


def test_the_metrics_scraper_may_read_every_team_proxy_despite_default_deny() -> None:
    graph = build([TeamNamespace("team-a")])
    specs = {r.inputs["kind"]: r.inputs["spec"] for r in graph.resources if is_policy(r)}
    assert specs["Server"] == {
        "podSelector": {"matchLabels": {}},
        "port": "linkerd-admin",
        "proxyProtocol": "HTTP/1",
    }
    assert specs["MeshTLSAuthentication"] == {"identityRefs": [VIZ_PROMETHEUS]}
    assert specs["AuthorizationPolicy"]["targetRef"]["name"] == "linkerd-admin"


def test_merging_policies_refuses_two_objects_with_one_name() -> None:
    admin = proxy_admin_policy({"matchLabels": {}})
    with pytest.raises(ValueError, match="two Server objects named linkerd-admin"):
        merge_policies(admin, admin)


def test_policy_objects_validate_against_the_linkerd_crd_schemas() -> None:
    schemas = linkerd_crd_schemas()
    graph = build([TeamNamespace("team-a"), TeamNamespace("team-b", adopt=True)])
    objects = [r for r in graph.resources if is_policy(r)]
    assert len(objects) == 2 * 3
    errors = [e for r in objects for e in crd_errors(schemas, r)]
    assert not errors, "\n".join(errors)


def test_every_kubernetes_object_passes_strict_validation() -> None:
    graph = build([TeamNamespace("team-a"), TeamNamespace("team-b", adopt=True)])
    objects = [r for r in team_objects(graph) if not is_policy(r)]
    assert {r.type for r in objects} == {NAMESPACE, NAMESPACE_PATCH, CONFIGMAP}
    errors = [e for r in objects for e in kubernetes_validate_errors(r)]
    assert not errors, "\n".join(errors)


# --- Arguments -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("teams", "message"),
    [
        ([TeamNamespace("Team_A")], "OnboardingArgs.teams[0].name"),
        ([TeamNamespace("a"), TeamNamespace("a", adopt=True)], "OnboardingArgs.teams[1].name"),
    ],
)
def test_bad_team_names_are_refused_naming_the_entry(
    teams: list[TeamNamespace], message: str
) -> None:
    def program() -> None:
        cp = control_plane_stand_in()
        Onboarding("onboarding", OnboardingArgs(teams=teams, control_plane=cp))

    graph = record(program)
    assert isinstance(graph.error, ValueError), graph.error
    assert str(graph.error).startswith(message), graph.error
