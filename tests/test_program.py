"""The whole program, as recorded for every stack file: schema, structure, secrets, contract."""

from __future__ import annotations

from typing import Any

import kubernetes_validate
import pytest

from components import config as cfg
from tests.graph import ROOT, Graph, is_secret, leaves, run_program
from tests.markdown import table_in

# The Kubernetes versions the project supports: the pinned Linkerd needs 1.31 or newer, and
# 1.35 is the newest its support table lists.
KUBERNETES_VERSIONS = ("1.31.0", "1.35.0")

# The stack-output contract (README "Outputs"): renaming or removing one breaks consumers.
CONTRACT: dict[str, bool] = {  # name → secret
    "profile": False,
    "urls": False,
    "portForwardCommands": False,
    "linkerdNamespace": False,
    "vizNamespace": False,
    "trustDomain": False,
    "trustAnchorPem": False,
    "identityRotation": False,
    "prometheusUrl": False,
    "tracing": False,
    "lokiPushUrl": False,
    "grafanaAdminUser": False,
    "grafanaAdminPassword": True,
    "authUser": False,
    "authPassword": True,
    "namespaces": False,
    "teamNamespaces": False,
    "lokiStorageSize": False,
    "jaegerStorageSize": False,
    "multicluster": False,
    "multiclusterCredentials": True,
}


def manifest(res: Any) -> dict[str, Any]:
    """The object as the provider would send it to the API server.

    A patch (e.g. NamespacePatch) is checked as the kind it patches: a partial object, whose
    fields must still be the kind's own.
    """
    obj = {k: v for k, v in res.inputs.items() if not k.startswith("__")}
    group_version, kind = _api(res.type)
    kind = kind.removesuffix("Patch")
    obj.pop("kind", None) if res.type.endswith("Patch") else None
    obj.setdefault("apiVersion", group_version)
    obj.setdefault("kind", kind)
    return obj


def _api(type_: str) -> tuple[str, str]:
    # kubernetes:core/v1:Namespace → v1, Namespace; kubernetes:networking.k8s.io/v1:Ingress
    _, module, kind = type_.split(":")
    group, version = module.rsplit("/", 1)
    return (version if group == "core" else f"{group}/{version}"), kind


CRD_K8S_IO_GROUPS = frozenset({"gateway.networking.k8s.io"})


def is_custom(type_: str) -> bool:
    """Custom resources (e.g. `kubernetes:policy.linkerd.io/v1beta3:Server`) have a group
    outside Kubernetes' own; they are checked against their CRD schemas elsewhere."""
    group = type_.split(":")[1].rsplit("/", 1)[0]
    # The Gateway API is a `k8s.io` group served by CRDs (gateway-crds-helm), not the API server.
    return "." in group and (not group.endswith(".k8s.io") or group in CRD_K8S_IO_GROUPS)


def typed_objects(graph: Graph) -> list[Any]:
    return [r for r in graph.kubernetes_objects() if not is_custom(r.type)]


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_every_typed_kubernetes_object_is_valid_for_the_supported_versions(
    graphs: dict[str, Graph], version: str
) -> None:
    checked = 0
    for graph in graphs.values():
        for res in typed_objects(graph):
            obj = manifest(res)
            try:
                kubernetes_validate.validate(obj, version, strict=True)
            except kubernetes_validate.ValidationError as error:
                raise AssertionError(f"{res.urn} ({version}): {error}") from None
            checked += 1
    assert checked >= 10


def test_the_program_runs_for_every_stack_file(graphs: dict[str, Graph]) -> None:
    assert set(graphs) >= {"dev", "prod"}
    for graph in graphs.values():
        assert graph.error is None
        assert len(graph.resources) > 20


def test_every_resource_but_the_provider_sits_in_a_component(graphs: dict[str, Graph]) -> None:
    for graph in graphs.values():
        for res in graph.resources:
            if res.type.startswith("pulumi:providers:"):
                continue
            if res.custom:
                assert graph.ancestors(res), f"{res.urn} has no parent component"


def test_children_are_named_after_their_component(dev: Graph) -> None:
    for res in dev.resources:
        parents = dev.ancestors(res)
        if parents and not parents[0].type.startswith("kubernetes:"):
            assert res.name.startswith(f"{parents[0].name}-"), res.urn


def test_every_kubernetes_resource_uses_the_stack_provider(dev: Graph) -> None:
    for res in dev.resources:
        if res.type.startswith("kubernetes:") and res.custom:
            assert "pulumi:providers:kubernetes::k8s" in res.options["provider"], res.urn


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_stack_outputs_keep_the_documented_contract(graphs: dict[str, Graph], stack: str) -> None:
    graph = graphs[stack]
    assert set(graph.raw_outputs) == set(CONTRACT)
    for name, secret in CONTRACT.items():
        value = graph.raw_outputs[name]
        if secret:
            assert is_secret(value), f"{name} must be a secret output"
        if not secret:
            assert not any(s for _, _, s in leaves(value)), f"{name} must not be secret"


def test_no_plain_secret_leaks_into_outputs(dev: Graph) -> None:
    password = dev.outputs["grafanaAdminPassword"]
    assert password
    for name, value in dev.raw_outputs.items():
        for _, leaf, secret in leaves(value):
            if leaf == password:
                assert secret, name


def test_trust_anchor_output_is_public_pem_and_no_key(dev: Graph) -> None:
    pem = dev.outputs["trustAnchorPem"]
    assert pem.startswith("-----BEGIN CERTIFICATE-----")
    assert "PRIVATE" not in pem


def test_outputs_stay_clean_when_features_are_off() -> None:
    g = run_program(
        "dev",
        {
            "enableTracing": False,
            "enableLogging": False,
            "enableGrafana": False,
            "enableEmojivoto": False,
        },
    )
    assert g.error is None
    assert set(g.raw_outputs) == set(CONTRACT)
    assert g.outputs["tracing"] == {} and g.outputs["lokiPushUrl"] == ""
    assert g.outputs["lokiStorageSize"] == "" and g.outputs["jaegerStorageSize"] == ""
    assert g.outputs["grafanaAdminPassword"] == ""
    assert is_secret(g.raw_outputs["grafanaAdminPassword"])
    assert set(g.outputs["namespaces"]) == {"linkerd", "viz"}
    assert set(g.outputs["urls"]) == {"dashboard"}
    cp = g.charts()["linkerd-control-plane"]
    assert "tracing" not in cp.inputs["values"]["proxy"]


def readme_outputs() -> dict[str, bool]:
    """name → secret, from the README's Outputs table as rendered."""
    table = table_in(ROOT / "README.md", "Outputs")
    name, secret = table.column("name"), table.column("secret")
    documented: dict[str, bool] = {}
    for row in table.rows:
        assert row[name].code, f"README Outputs: `{row[name].text}` is not written as code"
        assert row[secret].text in ("yes", "no"), row[secret].text
        for output in row[name].code:
            assert output not in documented, f"README Outputs lists {output} twice"
            documented[output] = row[secret].text == "yes"
    return documented


def test_readme_outputs_table_is_the_contract() -> None:
    assert readme_outputs() == CONTRACT


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_readme_outputs_table_lists_exactly_what_the_stack_exports(
    graphs: dict[str, Graph], stack: str
) -> None:
    exported = graphs[stack].raw_outputs
    assert set(readme_outputs()) == set(exported)
    for output, secret in readme_outputs().items():
        assert is_secret(exported[output]) == secret, output


def test_patched_namespaces_are_validated_too(prod: Graph) -> None:
    patches = [r for r in typed_objects(prod) if r.type.endswith(":NamespacePatch")]
    assert patches, "the prod stack adopts a namespace"
    for res in patches:
        for version in KUBERNETES_VERSIONS:
            kubernetes_validate.validate(manifest(res), version, strict=True)


def test_the_program_reads_its_own_last_outputs_before_any_resource() -> None:
    """Changes that are only safe relative to what is deployed are judged against the stack's
    last outputs, read from the engine before anything is registered."""
    import runpy

    from pulumi.runtime import mocks as pulumi_mocks

    from tests.graph import StatefulMocks, record, stack_config

    calls: list[tuple[str, dict[str, Any], int]] = []
    seen: list[int] = []

    class Engine(StatefulMocks):
        def new_resource(self, args: pulumi_mocks.MockResourceArgs) -> tuple[str, dict[str, Any]]:
            seen.append(1)
            return super().new_resource(args)

        def call(
            self, args: pulumi_mocks.MockCallArgs
        ) -> tuple[dict[str, Any], list[tuple[str, str]]]:
            calls.append((args.token, dict(args.args), len(seen)))
            return super().call(args)

    graph = record(
        lambda: runpy.run_path(str(ROOT / "__main__.py"), run_name="__main__"),
        stack="dev",
        config=stack_config("dev"),
        engine=Engine(),
    )
    assert graph.error is None
    reads = [(args, before) for token, args, before in calls if token == cfg.READ_STACK_OUTPUTS]
    assert reads == [({"name": "organization/meshstack/dev"}, 0)]
    assert cfg.previous_outputs({"name": "x", "outputs": {"profile": "dev"}}) == {"profile": "dev"}
    assert cfg.previous_outputs({}) == {} and cfg.previous_outputs(None) == {}
