"""The policy pack, rule by rule: the real program passes, deliberately bad resources fail.

Each rule runs as the CrossGuard analyzer runs it (pulumi-policy's own tests do the same):
`policy.validate(args, report_violation)` with a hand-built `ResourceValidationArgs` (or
`StackValidationArgs`) whose props went through the analyzer's own deserialization and
unknown-checking proxy. "The real program" is the recorded graph of `__main__.py` for every
stack file; bad resources are mostly real recorded ones with one thing broken. The last
tests start `policy/__main__.py` in a process, as the CLI does (importing it would block), and
talk to it over the analyzer's gRPC protocol.
"""

from __future__ import annotations

import ast
import base64
import copy
import json
import subprocess
import sys
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import grpc
import jsonschema
import pytest
import yaml
from google.protobuf import empty_pb2, struct_pb2
from pulumi.runtime.proto import analyzer_pb2, analyzer_pb2_grpc
from pulumi_policy import (
    EnforcementLevel,
    PolicyResource,
    ResourceValidationPolicy,
    StackValidationPolicy,
)
from pulumi_policy.policy import _NotApplicableError
from pulumi_policy.proxy import UNKNOWN_STRING_VALUE, UnknownValueError

from policy import harness, rules
from policy.harness import OPTS, Subject, bag
from tests.graph import Graph, Resource, run_program

POLICY_DIR = Path(rules.__file__).resolve().parent
DEPLOYMENT = "kubernetes:apps/v1:Deployment"
CHART_V4 = "kubernetes:helm.sh/v4:Chart"
CONFIGMAP = "kubernetes:core/v1:ConfigMap"
SERVICE = "kubernetes:core/v1:Service"


# --- Running a policy the way the analyzer does ----------------------------------------------


def check(
    policy: ResourceValidationPolicy,
    resource_type: str,
    props: Mapping[str, Any],
    config: Mapping[str, Any] | None = None,
    name: str = "bad",
) -> list[str]:
    """The violations `policy` reports for one resource."""
    return harness.check_resource(policy, Subject(resource_type, name, props), config)


def check_stack(
    policy: StackValidationPolicy,
    resources: list[tuple[str, str, Mapping[str, Any]]],
    config: Mapping[str, Any] | None = None,
) -> list[tuple[str, str | None]]:
    """The (message, urn) violations `policy` reports for a stack of (type, name, props)."""
    return harness.check_stack(policy, [Subject(*r) for r in resources], config)


def as_stack(graph: Graph) -> list[tuple[str, str, Mapping[str, Any]]]:
    # Under the mocks a resource's outputs are its inputs echoed back, which is what a stack
    # policy reads.
    return [(r.type, r.name, r.raw_inputs) for r in graph.resources]


def recorded(graph: Graph, type_: str, name: str) -> dict[str, Any]:
    """A deep copy of a recorded resource's inputs, secrets unwrapped, to break on purpose."""
    return copy.deepcopy(graph.get(type_, name).inputs)


def deployment(
    image: str = "ghcr.io/buoyantio/emojivoto-web:v11",
    resources: Mapping[str, Any] | None = None,
    annotations: Mapping[str, str] | None = None,
    namespace: str = "emojivoto",
) -> dict[str, Any]:
    container: dict[str, Any] = {"name": "app", "image": image}
    container["resources"] = (
        {"requests": {"cpu": "10m", "memory": "16Mi"}, "limits": {"cpu": "100m", "memory": "64Mi"}}
        if resources is None
        else resources
    )
    template: dict[str, Any] = {
        "metadata": {"labels": {"app": "x"}},
        "spec": {"containers": [container]},
    }
    if annotations:
        template["metadata"]["annotations"] = dict(annotations)
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "bad", "namespace": namespace},
        "spec": {"selector": {"matchLabels": {"app": "x"}}, "template": template},
    }


def reshape(kind: str, props: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """The Deployment's pod template placed where `kind` keeps it."""
    template, meta = props["spec"]["template"], props["metadata"]
    shapes: dict[str, tuple[str, Callable[[], dict[str, Any]]]] = {
        "Deployment": (DEPLOYMENT, lambda: props),
        "StatefulSet": ("kubernetes:apps/v1:StatefulSet", lambda: props),
        "DaemonSet": ("kubernetes:apps/v1:DaemonSet", lambda: props),
        "Job": (
            "kubernetes:batch/v1:Job",
            lambda: {"metadata": meta, "spec": {"template": template}},
        ),
        "CronJob": (
            "kubernetes:batch/v1:CronJob",
            lambda: {
                "metadata": meta,
                "spec": {"schedule": "@daily", "jobTemplate": {"spec": {"template": template}}},
            },
        ),
        # A bare Pod keeps its own metadata (name, namespace) and the template's annotations.
        "Pod": (
            "kubernetes:core/v1:Pod",
            lambda: {
                "metadata": {**meta, **template["metadata"]},
                "spec": template["spec"],
            },
        ),
    }
    type_, build = shapes[kind]
    return type_, build()


WORKLOAD_KINDS = ["Deployment", "StatefulSet", "DaemonSet", "Job", "CronJob", "Pod"]


# --- The pack --------------------------------------------------------------------------------


def test_the_pack_is_a_mandatory_python_pack_of_uniquely_named_policies() -> None:
    project = yaml.safe_load((POLICY_DIR / "PulumiPolicy.yaml").read_text())
    runtime = project["runtime"]
    assert (runtime["name"] if isinstance(runtime, dict) else runtime) == "python"
    names = [p.name for p in rules.ALL]
    assert len(names) == len(set(names)) >= 6
    assert rules.ENFORCEMENT is EnforcementLevel.MANDATORY
    # __main__.py builds the pack from exactly these (it is not imported: it would block).
    main = ast.parse((POLICY_DIR / "__main__.py").read_text())
    calls = [n for n in ast.walk(main) if isinstance(n, ast.Call)]
    pack = next(c for c in calls if getattr(c.func, "id", "") == "PolicyPack")
    assert {k.arg: getattr(k.value, "id", None) for k in pack.keywords} == {
        "policies": "ALL",
        "enforcement_level": "ENFORCEMENT",
    }


def test_every_policy_is_described_in_the_policy_readme() -> None:
    readme = (POLICY_DIR / "README.md").read_text()
    for policy in rules.ALL:
        assert f"`{policy.name}`" in readme, policy.name


# --- The real program passes -----------------------------------------------------------------


@pytest.mark.parametrize("policy", rules.RESOURCE_POLICIES, ids=lambda p: p.name)
def test_every_recorded_resource_of_every_stack_passes(
    graphs: dict[str, Graph], policy: ResourceValidationPolicy
) -> None:
    for stack, graph in graphs.items():
        for res in graph.resources:
            try:
                found = check(policy, res.type, res.raw_inputs, name=res.name)
            except _NotApplicableError:  # pragma: no cover - no such resource is recorded
                continue
            assert not found, f"{stack}: {res.urn}: {found}"


def test_every_recorded_stack_passes_the_stack_policies(graphs: dict[str, Graph]) -> None:
    for stack, graph in graphs.items():
        for policy in rules.STACK_POLICIES:
            assert not check_stack(policy, as_stack(graph)), f"{stack}: {policy.name}"


def test_the_rules_see_what_they_are_about_in_the_recorded_graphs(dev: Graph, prod: Graph) -> None:
    # Not vacuous: the kinds each rule inspects are really there under the mocks.
    workloads = [r for r in dev.resources if rules.pod_template(r.type, r.inputs) is not None]
    assert len(workloads) >= 4
    containers = [
        c
        for r in workloads
        for _, c in rules.containers(rules.pod_template(r.type, r.inputs) or {})
    ]
    assert len(containers) >= 4
    assert len(dev.of_type(CHART_V4)) >= 8 and len(prod.of_type(CHART_V4)) >= 8
    assert prod.of_type(CONFIGMAP)
    meshed = rules.meshed_namespaces(
        [
            PolicyResource(r.type, bag(r.raw_inputs), r.urn, r.name, OPTS, None, None, [], {})
            for r in prod.resources
        ],
        (),
    )
    # Detected from the Namespace objects: the stack's own and the onboarded (created or
    # adopted through a NamespacePatch) ones.
    assert {"tracing", "grafana", "payments", "checkout"} <= meshed
    assert "logging" not in meshed and "linkerd" not in meshed


# --- images-pinned ---------------------------------------------------------------------------


@pytest.mark.parametrize("kind", WORKLOAD_KINDS)
@pytest.mark.parametrize(
    ("image", "bad"),
    [
        ("ghcr.io/buoyantio/emojivoto-web:v11", False),
        ("localhost:5000/team/app:1.2.3", False),
        ("otel/opentelemetry-collector-k8s@sha256:" + "0" * 64, False),
        ("ghcr.io/buoyantio/emojivoto-web:latest", True),
        ("ghcr.io/buoyantio/emojivoto-web", True),
        ("localhost:5000/team/app", True),
        ("", True),
    ],
)
def test_images_must_carry_a_version_tag_or_digest(kind: str, image: str, bad: bool) -> None:
    type_, props = reshape(kind, deployment(image=image))
    found = check(rules.images_pinned, type_, props)
    assert bool(found) is bad, found


def test_a_real_deployment_with_latest_in_an_init_container_is_caught(dev: Graph) -> None:
    props = recorded(dev, DEPLOYMENT, "emojivoto-web")
    spec = props["spec"]["template"]["spec"]
    spec["initContainers"] = [{**spec["containers"][0], "name": "setup", "image": "busybox"}]
    found = check(rules.images_pinned, DEPLOYMENT, props)
    assert len(found) == 1 and "'setup' (initContainers[0])" in found[0], found


# --- container-resources ---------------------------------------------------------------------


@pytest.mark.parametrize("kind", WORKLOAD_KINDS)
@pytest.mark.parametrize(
    ("drop", "missing"),
    [
        ((), []),
        ((("limits", "cpu"),), ["limits.cpu"]),
        ((("requests", "memory"),), ["requests.memory"]),
        ((("requests", "cpu"), ("limits", "memory")), ["requests.cpu", "limits.memory"]),
    ],
)
def test_containers_must_request_and_limit_cpu_and_memory(
    kind: str, drop: tuple[tuple[str, str], ...], missing: list[str]
) -> None:
    props = deployment()
    for section, resource in drop:
        del props["spec"]["template"]["spec"]["containers"][0]["resources"][section][resource]
    type_, props = reshape(kind, props)
    found = check(rules.container_resources, type_, props)
    assert len(found) == (1 if missing else 0), found
    for name in missing:
        assert name in found[0]


def test_a_real_deployment_without_limits_is_caught(dev: Graph) -> None:
    props = recorded(dev, DEPLOYMENT, "emojivoto-voting")
    del props["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]
    found = check(rules.container_resources, DEPLOYMENT, props)
    assert len(found) == 1 and "limits.cpu, limits.memory" in found[0], found


def test_a_container_without_any_resources_block_is_caught() -> None:
    found = check(rules.container_resources, DEPLOYMENT, deployment(resources={}))
    assert len(found) == 1 and "requests.cpu, requests.memory, limits.cpu" in found[0]


# --- no-injection-opt-out --------------------------------------------------------------------

OPT_OUT = {"linkerd.io/inject": "disabled"}


@pytest.mark.parametrize("kind", WORKLOAD_KINDS)
def test_workloads_in_meshed_namespaces_may_not_opt_out_of_injection(dev: Graph, kind: str) -> None:
    type_, props = reshape(kind, deployment(annotations=OPT_OUT, namespace="emojivoto"))
    found = check_stack(rules.no_injection_opt_out, [*as_stack(dev), (type_, "bad", props)])
    assert len(found) == 1, found
    message, urn = found[0]
    assert "'emojivoto'" in message and urn and urn.endswith("::bad")


def test_a_real_app_deployment_that_opts_out_is_caught(dev: Graph) -> None:
    props = recorded(dev, DEPLOYMENT, "emojivoto-emoji")
    props["spec"]["template"]["metadata"]["annotations"] = OPT_OUT
    stack = [r for r in as_stack(dev) if r[1] != "emojivoto-emoji"]
    found = check_stack(
        rules.no_injection_opt_out, [*stack, (DEPLOYMENT, "emojivoto-emoji", props)]
    )
    assert len(found) == 1, found


def test_onboarded_namespaces_are_detected_from_their_namespace_objects(prod: Graph) -> None:
    # `checkout` is adopted (a NamespacePatch), `payments` created: neither is in the defaults.
    for namespace in ("payments", "checkout"):
        bad = (DEPLOYMENT, "bad", deployment(annotations=OPT_OUT, namespace=namespace))
        assert len(check_stack(rules.no_injection_opt_out, [*as_stack(prod), bad])) == 1


@pytest.mark.parametrize(
    ("namespace", "annotations"),
    [
        ("logging", OPT_OUT),  # not meshed: Alloy and Loki run without proxies
        ("linkerd", OPT_OUT),  # the control plane's namespace is never injected
        ("emojivoto", {"linkerd.io/inject": "enabled"}),
        ("emojivoto", None),
    ],
)
def test_opting_out_is_fine_outside_meshed_namespaces(
    dev: Graph, namespace: str, annotations: Mapping[str, str] | None
) -> None:
    bad = (DEPLOYMENT, "w", deployment(annotations=annotations, namespace=namespace))
    assert not check_stack(rules.no_injection_opt_out, [*as_stack(dev), bad])


def test_meshed_namespaces_can_be_added_through_the_pack_config(dev: Graph) -> None:
    bad = (DEPLOYMENT, "bad", deployment(annotations=OPT_OUT, namespace="legacy"))
    assert not check_stack(rules.no_injection_opt_out, [*as_stack(dev), bad])
    found = check_stack(
        rules.no_injection_opt_out, [*as_stack(dev), bad], {"meshedNamespaces": ["legacy"]}
    )
    assert len(found) == 1


def test_the_stack_rule_skips_values_unknown_during_preview(dev: Graph) -> None:
    unknown = deployment(annotations=OPT_OUT)
    unknown["metadata"]["namespace"] = UNKNOWN_STRING_VALUE
    assert not check_stack(rules.no_injection_opt_out, [*as_stack(dev), (DEPLOYMENT, "u", unknown)])


# --- helm-chart-version-pinned ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("version", "bad"),
    [
        ("2026.8.3", False),
        ("1.0.0-rc.1", False),
        ("v4.11.1", False),
        ("^2026.8.0", True),
        ("~4.11", True),
        (">=0.170.0", True),
        ("4.x", True),
        ("4.11", True),
        ("*", True),
        ("", True),
        (None, True),
    ],
)
def test_charts_pin_one_exact_semver_version(dev: Graph, version: str | None, bad: bool) -> None:
    props = recorded(dev, CHART_V4, "tracing-jaeger")
    if version is None:
        del props["version"]
    else:
        props["version"] = version
    for type_ in (CHART_V4, "kubernetes:helm.sh/v3:Release"):
        found = check(rules.chart_version_pinned, type_, props)
        assert bool(found) is bad, (type_, version, found)


def test_a_chart_from_a_folder_in_the_repository_needs_no_version() -> None:
    props = {"chart": "./charts/local", "namespace": "x"}
    assert not check(rules.chart_version_pinned, CHART_V4, props)


def test_a_chart_without_inputs_is_reported_not_applicable() -> None:
    # What the engine shows for a v4 Chart (registered by the provider with no inputs) and for
    # the Python v3 Chart component.
    with pytest.raises(_NotApplicableError):
        check(rules.chart_version_pinned, "kubernetes:helm.sh/v3:Chart", {})


# --- no-secrets-in-configmaps ----------------------------------------------------------------


def _private_key(graph: Graph) -> str:
    key = next(r for r in graph.resources if r.type == "tls:index/privateKey:PrivateKey")
    pem = key.state["privateKeyPem"]
    assert "PRIVATE KEY" in pem
    return str(pem)


@pytest.mark.parametrize(
    ("key", "value", "expect"),
    [
        ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://otel-collector.tracing.svc:4317", None),
        ("tlsSecretName", "web-tls", None),
        ("datasources.yaml", "secureJsonData:\n  password: $__env{LOKI_PASSWORD}\n", None),
        ("config.alloy", 'basic_auth {\n  password = sys.env("LOKI_PASSWORD")\n}\n', None),
        ("token_file", "/var/run/secrets/token", None),
        ("ADMIN_PASSWORD", "hunter2", "named like a credential"),
        ("slackToken", "abc", "named like a credential"),
        ("grafana.ini", "[security]\nadmin_password = hunter2\n", "'admin_password' to a literal"),
        ("app.json", '{"apiKey": "sk-123456"}', "'apiKey' to a literal"),
        ("env", "AWS_KEY_ID=AKIAABCDEFGHIJKLMNOP", "an AWS access key id"),
        ("notifier", "https://alerts:s3cret@hooks.example.com/x", "a password in a URL"),
    ],
)
def test_configmap_entries_that_hold_credentials_are_caught(
    prod: Graph, key: str, value: str, expect: str | None
) -> None:
    props = recorded(prod, CONFIGMAP, "onboarding-payments-tracing")
    props["data"][key] = value
    found = check(rules.no_configmap_secrets, CONFIGMAP, props)
    if expect is None:
        assert not found, found
    else:
        assert len(found) == 1 and expect in found[0], found


def test_the_trust_anchor_key_pasted_into_a_real_configmap_is_caught(dev: Graph) -> None:
    props = recorded(dev, CONFIGMAP, "grafana-dashboards")
    props["data"]["ca.key"] = _private_key(dev)
    found = check(rules.no_configmap_secrets, CONFIGMAP, props)
    assert any("holds a private key" in f for f in found), found


def test_binary_configmap_data_is_decoded_and_checked(dev: Graph) -> None:
    encoded = base64.b64encode(_private_key(dev).encode()).decode()
    props = {"metadata": {"name": "x"}, "binaryData": {"blob": encoded}}
    found = check(rules.no_configmap_secrets, CONFIGMAP, props)
    assert any("holds a private key" in f for f in found), found


# --- no-load-balancer-services ---------------------------------------------------------------


@pytest.fixture(scope="module")
def load_balanced() -> Graph:
    # The config refuses loadBalancer for the dev profile; the rule also guards what the config
    # cannot see (a chart value turning a chart's own Service into a LoadBalancer).
    graph = run_program("prod", {"exposure": {"mode": "loadBalancer"}})
    assert graph.error is None
    return graph


def _services(graph: Graph) -> list[Resource]:
    return graph.of_type(SERVICE)


def test_load_balancer_services_are_refused_by_default(load_balanced: Graph) -> None:
    balanced = [
        r for r in _services(load_balanced) if r.inputs["spec"].get("type") == "LoadBalancer"
    ]
    assert len(balanced) == 3  # dashboard, grafana, jaeger (prod runs no demo app)
    for res in balanced:
        found = check(rules.no_load_balancer, res.type, res.raw_inputs, name=res.name)
        assert len(found) == 1 and "LoadBalancer" in found[0], res.urn


def test_load_balancer_services_pass_where_the_pack_config_allows_them(
    load_balanced: Graph,
) -> None:
    for res in _services(load_balanced):
        assert not check(
            rules.no_load_balancer, res.type, res.raw_inputs, {"allowLoadBalancer": True}
        )


def test_node_port_exposure_passes() -> None:
    graph = run_program("dev", {"exposure": {"mode": "nodePort"}})
    assert graph.error is None
    services = _services(graph)
    assert any(r.inputs["spec"].get("type") == "NodePort" for r in services)
    for res in services:
        assert not check(rules.no_load_balancer, res.type, res.raw_inputs)


# --- Unknown values --------------------------------------------------------------------------


def test_resource_rules_leave_unknown_values_to_the_analyzer() -> None:
    # The analyzer turns this exception into an advisory "can't run during preview" note.
    with pytest.raises(UnknownValueError):
        check(rules.images_pinned, DEPLOYMENT, deployment(image=UNKNOWN_STRING_VALUE))


# --- Pack configuration files (what the preview workflow passes) -----------------------------


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_each_stack_has_a_pack_config_that_matches_the_policies_schemas(stack: str) -> None:
    config = json.loads((POLICY_DIR / f"config.{stack}.json").read_text())
    by_name = {p.name: p for p in rules.ALL}
    for name, settings in config.items():
        assert name in by_name, f"config.{stack}.json: no policy named {name!r}"
        schema = by_name[name].config_schema
        assert schema is not None, f"{name} takes no configuration"
        properties = {"enforcementLevel": {"type": "string"}, **schema.properties}
        jsonschema.validate(
            settings,
            {"type": "object", "properties": properties, "additionalProperties": False},
        )


def test_only_prod_allows_load_balancers() -> None:
    allowed = {
        stack: json.loads((POLICY_DIR / f"config.{stack}.json").read_text())[
            rules.no_load_balancer.name
        ]["allowLoadBalancer"]
        for stack in ("dev", "prod")
    }
    assert allowed == {"dev": False, "prod": True}


# --- The pack itself, over the analyzer protocol ---------------------------------------------


@pytest.fixture(scope="module")
def analyzer() -> Iterator[Any]:
    """`policy/__main__.py` as the CLI starts it: a process serving the analyzer over gRPC."""
    proc = subprocess.Popen([sys.executable, str(POLICY_DIR)], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        port = proc.stdout.readline().strip()  # the pack prints its port first
        assert port.isdigit(), f"the pack did not start: {port!r}"
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            yield analyzer_pb2_grpc.AnalyzerStub(channel)
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def _struct(value: Mapping[str, Any]) -> struct_pb2.Struct:
    out = struct_pb2.Struct()
    out.update(value)
    return out


def test_the_pack_announces_every_policy_as_mandatory(analyzer: Any) -> None:
    info = analyzer.GetAnalyzerInfo(empty_pb2.Empty())
    assert info.name == rules.PACK_NAME
    assert [p.name for p in info.policies] == [p.name for p in rules.ALL]
    assert {p.enforcementLevel for p in info.policies} == {analyzer_pb2.MANDATORY}
    schemas = {p.name: set(p.configSchema.properties) for p in info.policies}
    assert schemas[rules.no_load_balancer.name] == {"allowLoadBalancer"}


def test_the_pack_reports_mandatory_violations_through_the_analyzer(analyzer: Any) -> None:
    bad = _struct(reshape("Deployment", deployment(image="nginx:latest", resources={}))[1])
    urn = f"urn:pulumi:dev::meshstack::{DEPLOYMENT}::bad"
    found = analyzer.Analyze(
        analyzer_pb2.AnalyzeRequest(type=DEPLOYMENT, properties=bad, urn=urn, name="bad")
    )
    assert {(d.policyName, d.enforcementLevel) for d in found.diagnostics} == {
        (rules.images_pinned.name, analyzer_pb2.MANDATORY),
        (rules.container_resources.name, analyzer_pb2.MANDATORY),
    }


def test_the_pack_config_reaches_the_policies(analyzer: Any) -> None:
    service = _struct({"metadata": {"name": "lb"}, "spec": {"type": "LoadBalancer"}})
    request = analyzer_pb2.AnalyzeRequest(type=SERVICE, properties=service, urn="urn:lb", name="lb")
    assert [d.policyName for d in analyzer.Analyze(request).diagnostics] == [
        rules.no_load_balancer.name
    ]
    prod = json.loads((POLICY_DIR / "config.prod.json").read_text())
    analyzer.Configure(
        analyzer_pb2.ConfigureAnalyzerRequest(
            policyConfig={
                name: analyzer_pb2.PolicyConfig(
                    enforcementLevel=analyzer_pb2.MANDATORY, properties=_struct(settings)
                )
                for name, settings in prod.items()
            }
        )
    )
    assert not analyzer.Analyze(request).diagnostics
