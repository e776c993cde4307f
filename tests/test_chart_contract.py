"""Chart contract: the pinned charts, rendered with the stack's own values, are what the
program assumes they are.

For every chart the program pins (read from the recorded graphs, so it is exactly what
`pulumi up` would ask for: chart, version, repository, release, namespace, values), this loads
the chart from a local folder, renders it offline with helm-python-sdk as Pulumi's v4 Chart
would (hooks dropped, CRDs included) and checks:

- the folder holds the pinned version, the values pass the chart's own schema, it renders;
- every rendered object is valid Kubernetes for the supported versions (kinds from CRDs aside,
  whose CRDs must come from a pinned chart or the Gateway API release);
- every in-cluster address the stack writes (`<svc>.<ns>.svc...:<port>` in chart values, in
  the objects the program writes, in the stack outputs) is a port a Service really exposes,
  and the Services the stack points at select pods that exist;
- the policy pack passes on everything a real preview would show it;
- the program's Linkerd policy objects match the schemas of the pinned linkerd-crds.

Opt-in (marker `contract`): set MESHSTACK_CHARTS_DIR to a folder laid out as
`<dir>/<chart-name>/Chart.yaml` and install helm-python-sdk==0.2.2 (policy/README.md,
"Chart contract test"). Without them every test here is skipped with the reason. Rendering is
offline: `lookup` returns nothing and `.Capabilities` are Helm's defaults, where a real
preview asks the cluster.
"""

from __future__ import annotations

import functools
import importlib
import json
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

from policy import harness, rules
from tests.graph import ROOT, Graph, Resource, plain, run_program


def _import_helm() -> Any:
    """helm-python-sdk, or None: it is not in requirements-dev.txt (this test is opt-in)."""
    try:
        return importlib.import_module("helm_python")
    except ImportError:
        return None


helm = _import_helm()

CHARTS_ENV = "MESHSTACK_CHARTS_DIR"
# As tests/test_program.py: the Kubernetes versions the project supports.
KUBERNETES_VERSIONS = ("1.31.0", "1.35.0")
# The stacks checked: both stack files, and dev exposed through NodePort Services (whose
# selectors must match the charts' pods).
VARIANTS: dict[str, tuple[str, dict[str, Any]]] = {
    "dev": ("dev", {}),
    "prod": ("prod", {}),
    "dev-nodePort": ("dev", {"exposure": {"mode": "nodePort"}}),
}
# API groups served by Kubernetes itself; any other group's kinds come from a CRD.
BUILTIN_GROUPS = frozenset(
    {
        "",
        "admissionregistration.k8s.io",
        "apiextensions.k8s.io",
        "apiregistration.k8s.io",
        "apps",
        "authentication.k8s.io",
        "authorization.k8s.io",
        "autoscaling",
        "batch",
        "certificates.k8s.io",
        "coordination.k8s.io",
        "discovery.k8s.io",
        "events.k8s.io",
        "flowcontrol.apiserver.k8s.io",
        "networking.k8s.io",
        "node.k8s.io",
        "policy",
        "rbac.authorization.k8s.io",
        "resource.k8s.io",
        "scheduling.k8s.io",
        "storage.k8s.io",
    }
)
# CRD groups the program installs from outside any chart (components/mesh.py: the Gateway API
# standard-install.yaml, a `ConfigFile` from a URL the offline test cannot render).
EXTERNAL_CRD_GROUPS = frozenset({"gateway.networking.k8s.io"})
CLUSTER_SCOPED = frozenset(
    {
        "APIService",
        "ClusterRole",
        "ClusterRoleBinding",
        "CustomResourceDefinition",
        "MutatingWebhookConfiguration",
        "Namespace",
        "PersistentVolume",
        "PriorityClass",
        "StorageClass",
        "ValidatingWebhookConfiguration",
        "IngressClass",
    }
)
# `<service>.<namespace>.svc[.<domain>][:<port>]`, optionally behind a URL scheme.
ADDRESS = re.compile(
    r"(?:(?P<scheme>[a-z][a-z0-9+.-]*)://)?(?<![\w.\\-])"
    r"(?P<svc>[a-z0-9](?:[-a-z0-9]*[a-z0-9])?)\.(?P<ns>[a-z0-9](?:[-a-z0-9]*[a-z0-9])?)"
    r"\.svc(?:\.[a-z0-9-]+)*(?::(?P<port>\d+))?"
)
DEFAULT_PORTS = {"http": 80, "https": 443}


def _skip_reason() -> str | None:
    if not os.environ.get(CHARTS_ENV):
        return (
            f"{CHARTS_ENV} is not set: the chart contract test renders the pinned charts from "
            f"a local folder (<dir>/<chart-name>/Chart.yaml); see policy/README.md"
        )
    if helm is None:
        return "helm_python is not importable: pip install helm-python-sdk==0.2.2"
    return None


SKIP = _skip_reason()
pytestmark = [pytest.mark.contract, pytest.mark.skipif(SKIP is not None, reason=SKIP or "")]


# --- Rendering -------------------------------------------------------------------------------


@dataclass
class Rendered:
    """One pinned chart, rendered with the stack's values."""

    release: str
    chart: str
    version: str
    repo: str
    namespace: str
    folder: Path
    objects: list[dict[str, Any]] = field(default_factory=list)
    error: str = ""

    @property
    def fetch(self) -> str:
        """How to put this chart where the test looks for it."""
        return (
            f"helm pull {self.chart} --repo {self.repo} --version {self.version} --untar "
            f"--untardir {self.folder.parent}"
        )


@dataclass
class Stack:
    name: str
    """The stack file (`Pulumi.<name>.yaml`) the variant runs."""
    graph: Graph
    charts: dict[str, Rendered]

    def objects(self) -> Iterator[tuple[str, dict[str, Any]]]:
        """(release, object) for every rendered object."""
        for release, chart in self.charts.items():
            for obj in chart.objects:
                yield release, obj


def _ints(value: Any) -> Any:
    """Whole floats back to ints: the wire format has only doubles (Helm reads both alike)."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {k: _ints(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_ints(v) for v in value]
    return value


def _is_hook(obj: dict[str, Any]) -> bool:
    return "helm.sh/hook" in ((obj.get("metadata") or {}).get("annotations") or {})


def render(chart_res: Resource) -> Rendered:
    inputs = chart_res.inputs
    out = Rendered(
        release=inputs.get("name") or chart_res.name,
        chart=inputs["chart"],
        version=inputs.get("version", ""),
        repo=(inputs.get("repositoryOpts") or {}).get("repo", ""),
        namespace=inputs.get("namespace") or "default",
        folder=Path(os.environ[CHARTS_ENV]) / inputs["chart"],
    )
    if not (out.folder / "Chart.yaml").is_file():
        out.error = f"no chart at {out.folder}; fetch it with: {out.fetch}"
        return out
    values = _ints(plain(inputs.get("values") or {}))
    assert helm is not None
    try:
        with helm.Chart.load(out.folder) as chart:
            if chart.name != out.chart or chart.version != out.version:
                out.error = (
                    f"{out.folder} holds {chart.name} {chart.version}, the stack pins "
                    f"{out.chart} {out.version}; fetch it with: {out.fetch}"
                )
                return out
            chart.validate_schema(values)
            manifests = chart.render(
                values, name=out.release, namespace=out.namespace, is_install=True
            )
            crds = [] if inputs.get("skipCrds") else [c["data"] for c in chart.crds]
    except helm.HelmError as error:
        out.error = f"{type(error).__name__}: {error}"
        return out
    texts = [text for path, text in sorted(manifests.items()) if not path.endswith("NOTES.txt")]
    for text in [*crds, *texts]:
        for obj in yaml.safe_load_all(text):
            # Pulumi's v4 Chart never runs hooks (helm.sh/hook objects are dropped).
            if not obj or _is_hook(obj):
                continue
            if obj["kind"] not in CLUSTER_SCOPED:
                obj.setdefault("metadata", {}).setdefault("namespace", out.namespace)
            out.objects.append(obj)
    return out


@functools.cache
def stack(variant: str) -> Stack:
    name, overrides = VARIANTS[variant]
    graph = run_program(name, overrides)
    if graph.error is not None:
        raise graph.error
    return Stack(name, graph, {release: render(res) for release, res in graph.charts().items()})


@pytest.fixture(params=sorted(VARIANTS))
def rendered(request: pytest.FixtureRequest) -> Stack:
    result = stack(request.param)
    problems = [f"{r}: {c.error}" for r, c in result.charts.items() if c.error]
    if problems:
        pytest.fail("\n".join(problems), pytrace=False)
    print(
        f"\n{request.param}: "
        + ", ".join(f"{c.chart} {c.version} ({c.repo})" for c in result.charts.values())
    )
    return result


# --- Helpers ---------------------------------------------------------------------------------


def group_of(api_version: str) -> str:
    return api_version.rpartition("/")[0] if "/" in api_version else ""


def type_token(obj: dict[str, Any]) -> str:
    """The Pulumi type of a Kubernetes object: `kubernetes:apps/v1:Deployment`."""
    api = obj["apiVersion"]
    module = api if "/" in api else f"core/{api}"
    return f"kubernetes:{module}:{obj['kind']}"


def program_objects(graph: Graph) -> list[Resource]:
    """What the program writes itself (a patch included), as the kubernetes provider gets it."""
    return graph.kubernetes_objects()


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from _strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from _strings(v)


def addresses(text: str) -> Iterator[tuple[str, str, int]]:
    """(service, namespace, port) of every in-cluster address in `text` with a known port."""
    for m in ADDRESS.finditer(text):
        port = int(m["port"]) if m["port"] else DEFAULT_PORTS.get(m["scheme"] or "")
        if port:
            yield m["svc"], m["ns"], port


def written_addresses(s: Stack) -> dict[tuple[str, str, int], set[str]]:
    """Every address the stack writes → where it is written."""
    found: dict[tuple[str, str, int], set[str]] = {}
    sources: list[tuple[str, Any]] = [
        (f"values of chart {c.name}", plain(c.inputs.get("values") or {}))
        for c in s.graph.charts().values()
    ]
    sources += [(r.urn, r.inputs) for r in program_objects(s.graph)]
    sources += [(f"stack output {k}", v) for k, v in s.graph.outputs.items()]
    for where, value in sources:
        for text in _strings(value):
            for address in addresses(text):
                found.setdefault(address, set()).add(where)
    return found


def services(s: Stack) -> dict[tuple[str, str], dict[str, Any]]:
    """(namespace, name) → Service object, rendered or written by the program."""
    out = {
        (o["metadata"]["namespace"], o["metadata"]["name"]): o
        for _, o in s.objects()
        if o["kind"] == "Service" and o["apiVersion"] == "v1"
    }
    for r in s.graph.of_type("kubernetes:core/v1:Service"):
        meta = r.inputs["metadata"]
        out[(meta.get("namespace", "default"), meta["name"])] = r.inputs
    return out


def pod_labels(s: Stack) -> dict[str, list[dict[str, str]]]:
    """namespace → the pod template labels of every workload, rendered or the program's."""
    subjects = [(type_token(o), o) for _, o in s.objects()]
    subjects += [(r.type, r.inputs) for r in program_objects(s.graph)]
    out: dict[str, list[dict[str, str]]] = {}
    for type_, obj in subjects:
        pod = rules.pod_template(type_, obj)
        if pod is not None:
            namespace = (obj.get("metadata") or {}).get("namespace", "default")
            labels = dict((pod.get("metadata") or {}).get("labels") or {})
            out.setdefault(namespace, []).append(labels)
    return out


# --- Tests -----------------------------------------------------------------------------------


def test_every_pinned_chart_is_at_hand_at_its_version_and_renders_with_the_stack_values(
    rendered: Stack,
) -> None:
    # The fixture fails first, with a `helm pull` command, for a missing or wrong chart.
    assert len(rendered.charts) >= 8
    for release, chart in rendered.charts.items():
        assert chart.repo.startswith(("https://", "oci://")), f"{release}: repo {chart.repo!r}"
        assert chart.objects, f"{release} renders nothing"


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_every_rendered_object_is_valid_kubernetes(rendered: Stack, version: str) -> None:
    crd_kinds = {
        (crd["spec"]["group"], crd["spec"]["names"]["kind"])
        for _, crd in rendered.objects()
        if crd["kind"] == "CustomResourceDefinition"
    }
    errors, checked = [], 0
    for release, obj in rendered.objects():
        group = group_of(obj["apiVersion"])
        where = f"{release}: {obj['kind']} {obj['metadata'].get('name')}"
        if group not in BUILTIN_GROUPS:
            if group not in EXTERNAL_CRD_GROUPS and (group, obj["kind"]) not in crd_kinds:
                errors.append(f"{where}: no pinned chart installs a CRD for {obj['apiVersion']}")
            continue
        try:
            kubernetes_validate.validate(obj, version, strict=True)
            checked += 1
        except (kubernetes_validate.ValidationError, kubernetes_validate.SchemaNotFoundError) as e:
            errors.append(f"{where} ({version}): {getattr(e, 'message', e)}")
    assert not errors, "\n".join(errors)
    assert checked >= 50


def test_every_in_cluster_address_the_stack_writes_is_a_port_a_service_exposes(
    rendered: Stack,
) -> None:
    served = services(rendered)
    written = written_addresses(rendered)
    assert len(written) >= 5, written
    problems = []
    for (svc, namespace, port), where in sorted(written.items()):
        service = served.get((namespace, svc))
        if service is None:
            problems.append(
                f"{svc}.{namespace}:{port} — no such Service; written in {', '.join(sorted(where))}"
            )
            continue
        ports = {p.get("port") for p in (service.get("spec") or {}).get("ports") or []}
        if port not in ports:
            problems.append(
                f"{svc}.{namespace}:{port} — the Service exposes {sorted(ports)}; written in "
                f"{', '.join(sorted(where))}"
            )
    assert not problems, "\n".join(problems)


def test_the_services_the_stack_points_at_select_pods_that_exist(rendered: Stack) -> None:
    served, labels = services(rendered), pod_labels(rendered)
    pointed = {(ns, svc) for svc, ns, _ in written_addresses(rendered)}
    pointed |= {
        (r.inputs["metadata"].get("namespace", "default"), r.inputs["metadata"]["name"])
        for r in rendered.graph.of_type("kubernetes:core/v1:Service")
    }
    problems = []
    for key in sorted(pointed):
        selector = ((served.get(key) or {}).get("spec") or {}).get("selector")
        if not selector:
            continue  # missing Services fail the address test; selector-less ones are manual
        if not any(selector.items() <= pod.items() for pod in labels.get(key[0], [])):
            problems.append(f"Service {key[1]} in {key[0]} selects {selector}: no such pods")
    assert not problems, "\n".join(problems)


def test_port_forward_commands_target_real_service_ports(rendered: Stack) -> None:
    served = services(rendered)
    for target, command in (rendered.graph.outputs.get("portForwardCommands") or {}).items():
        m = re.search(r"-n (\S+) port-forward svc/(\S+) \d+:(\d+)", command)
        assert m, command
        service = served.get((m[1], m[2]))
        assert service is not None, f"{target}: {command}: no such Service"
        ports = {p.get("port") for p in service["spec"]["ports"]}
        assert int(m[3]) in ports, f"{target}: {command}: the Service exposes {sorted(ports)}"


def test_the_policy_pack_passes_on_everything_a_real_preview_shows_it(rendered: Stack) -> None:
    # The pack config the preview workflow passes for this stack.
    pack_config = json.loads((ROOT / "policy" / f"config.{rendered.name}.json").read_text())
    subjects = [
        harness.Subject(type_token(o), f"{release}:{o['metadata'].get('name')}", o)
        for release, o in rendered.objects()
    ]
    subjects += [
        harness.Subject(r.type, r.name, r.raw_inputs) for r in program_objects(rendered.graph)
    ]
    violations = harness.check_all(rules.ALL, subjects, pack_config)
    assert not violations, "\n".join(map(str, violations))


def _crd_schemas(s: Stack) -> dict[tuple[str, str, str], dict[str, Any]]:
    """(group, version, kind) → openAPIV3Schema of every served version of a rendered CRD."""
    out = {}
    for _, crd in s.objects():
        if crd["kind"] != "CustomResourceDefinition":
            continue
        spec = crd["spec"]
        for v in spec["versions"]:
            if v.get("served"):
                schema = (v.get("schema") or {}).get("openAPIV3Schema") or {}
                out[(spec["group"], v["name"], spec["names"]["kind"])] = schema
    return out


def test_the_program_custom_resources_match_the_pinned_crds(rendered: Stack) -> None:
    schemas = _crd_schemas(rendered)
    checked, problems = 0, []
    for res in program_objects(rendered.graph):
        obj = res.inputs
        api, kind = obj.get("apiVersion", ""), obj.get("kind", "")
        group = group_of(api)
        if group in BUILTIN_GROUPS or group in EXTERNAL_CRD_GROUPS:
            continue
        schema = schemas.get((group, api.rpartition("/")[2], kind))
        if schema is None:
            problems.append(f"{res.urn}: no pinned chart serves {api} {kind}")
            continue
        # metadata is the API server's to check; the CRD schema covers spec (and status).
        properties = {k: v for k, v in (schema.get("properties") or {}).items() if k != "metadata"}
        body = {k: v for k, v in obj.items() if k != "metadata"}
        try:
            jsonschema.validate(body, {**schema, "properties": properties})
            checked += 1
        except jsonschema.ValidationError as error:
            problems.append(f"{res.urn}: {error.message} at {list(error.absolute_path)}")
    assert not problems, "\n".join(problems)
    assert checked >= 1


# --- Values the stack sets -------------------------------------------------------------------

# A `.Values` chain a template reads: `.Values.a.b.c` (`$.Values.a.b.c` too).
VALUES_CHAIN = re.compile(r"\.Values((?:\.[A-Za-z_][A-Za-z0-9_]*)+)")
# Values keys the stack sets that the pinned chart neither declares nor reads, on purpose.
# chart name → key paths (a path here accepts everything below it too).
UNDECLARED_ON_PURPOSE: dict[str, frozenset[tuple[str, ...]]] = {
    "linkerd-control-plane": frozenset(
        {
            # components/mesh.py sets it for prod as upstream's values-ha.yaml does (it is in
            # no values.yaml and no template reads it): the chart copies all its values into
            # the linkerd-config ConfigMap, where `linkerd check` reads it to run the HA checks.
            ("highAvailability",),
        }
    ),
}


@dataclass
class ChartSource:
    """What a chart folder says about its values: declared defaults and template reads."""

    defaults: dict[str, Any]
    """values.yaml, with every dependency's values.yaml under the dependency's name (alias)
    and the dependencies' `global` merged into `global`, as Helm coalesces them."""
    reads: set[tuple[str, ...]]
    """Every `.Values.a.b.c` chain in templates/** of the chart and of its dependencies."""


def _chart_files(folder: Path) -> Iterator[tuple[str, Path]]:
    """(path relative to the chart, file) for every file of a chart folder."""
    for path in sorted(folder.rglob("*")):
        if path.is_file():
            yield path.relative_to(folder).as_posix(), path


def _load_chart_source(folder: Path) -> ChartSource:
    defaults: dict[str, Any] = {}
    values_file = folder / "values.yaml"
    if values_file.is_file():
        defaults = yaml.safe_load(values_file.read_text()) or {}
    reads: set[tuple[str, ...]] = set()
    for relative, path in _chart_files(folder):
        if relative.startswith("templates/"):
            for m in VALUES_CHAIN.finditer(path.read_text(errors="replace")):
                reads.add(tuple(m[1].split(".")[1:]))
    chart = yaml.safe_load((folder / "Chart.yaml").read_text()) or {}
    requirements = folder / "requirements.yaml"  # apiVersion v1 charts list them here
    dependencies = list(chart.get("dependencies") or [])
    if requirements.is_file():
        dependencies += (yaml.safe_load(requirements.read_text()) or {}).get("dependencies") or []
    for dep in dependencies:
        sub_folder = folder / "charts" / dep["name"]
        if not (sub_folder / "Chart.yaml").is_file():
            raise AssertionError(
                f"{folder}: dependency {dep['name']} is not unpacked at {sub_folder} (run "
                f"`helm dependency build` and untar charts/*.tgz)"
            )
        sub = _load_chart_source(sub_folder)
        key = dep.get("alias") or dep["name"]
        own = {k: v for k, v in sub.defaults.items() if k != "global"}
        if own:
            defaults.setdefault(key, {})
            if isinstance(defaults[key], dict):
                defaults[key] = {**own, **defaults[key]}
        if isinstance(sub.defaults.get("global"), dict):
            defaults["global"] = {**sub.defaults["global"], **(defaults.get("global") or {})}
        for chain in sub.reads:
            # A subchart's own templates read its values under the dependency's key; its named
            # templates (linkerd's `partials`, bitnami's `common`) are included with the
            # parent's context and read the parent's values as they are: both count.
            reads.add((key, *chain))
            reads.add(chain)
    return ChartSource(defaults, reads)


@functools.cache
def chart_source(folder: Path) -> ChartSource:
    return _load_chart_source(folder)


def key_paths(values: Any, prefix: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    """Every key path of a values tree, inner keys included; lists are leaves (a list replaces
    the chart's default whole, its items are not values keys)."""
    if isinstance(values, dict):
        for key, value in values.items():
            path = (*prefix, str(key))
            yield path
            yield from key_paths(value, path)


def _looks_like_yaml_document(value: str) -> bool:
    """A string default holding a YAML/config document (a block of several `key:` lines)."""
    return "\n" in value.strip() and bool(re.search(r"^\s*[\w.-]+:", value, re.MULTILINE))


def free_form(default: Any) -> bool:
    """A values.yaml default whose keys the chart does not enumerate: an empty map (`{}`), no
    value (`null`, `~`), an empty list (`[]`) or a string holding a YAML document."""
    if default is None or default == {} or default == []:
        return True
    return isinstance(default, str) and _looks_like_yaml_document(default)


def accepts(source: ChartSource, path: tuple[str, ...]) -> bool:
    """Whether the chart's values contract accepts `path` (see the test's docstring)."""
    node: Any = source.defaults
    for depth, key in enumerate(path):
        if depth and free_form(node):
            return True  # below a free-form default
        if not isinstance(node, dict) or key not in node:
            return any(chain[: len(path)] == path for chain in source.reads)
        node = node[key]
    return True  # declared


def undeclared(chart: str, source: ChartSource, values: dict[str, Any]) -> list[str]:
    """Every key path in `values` the chart's values contract does not accept."""
    allowed = UNDECLARED_ON_PURPOSE.get(chart, frozenset())
    return [
        ".".join(path)
        for path in key_paths(values)
        if not any(path[: len(a)] == a for a in allowed) and not accepts(source, path)
    ]


def test_every_value_key_the_stack_sets_exists_in_the_pinned_chart(rendered: Stack) -> None:
    """Every key path of every values map the stack passes to a pinned chart is one the chart
    knows, so a renamed or misspelt key cannot silently fall back to the chart's default.

    A key path (`a.b.c`; every inner key is a path too, lists are leaves) is accepted when:

    - it is declared: the path exists in the chart's values.yaml, where each dependency's
      values.yaml sits under the dependency's name (or alias) and its `global` under `global`,
      as Helm coalesces them (values-ha.yaml and other values files are not a source: they
      are examples the user picks, not defaults);
    - or a template reads it: `.Values.a.b.c` (or a longer chain starting with it) appears in
      templates/** of the chart or of a dependency (a dependency's chains count both under its
      key and as they are, since linkerd's `partials` and bitnami's `common` are named
      templates included with the parent's context);
    - or it lies below a free-form default: some ancestor `a` or `a.b` is declared in
      values.yaml with `{}`, `null`, `[]` or a string holding a YAML document (several `key:`
      lines), the chart's way of saying "any keys" (annotations, config blocks, extra env);
    - or it is in UNDECLARED_ON_PURPOSE, each entry with the reason it is needed.
    """
    problems = []
    for release, res in sorted(rendered.graph.charts().items()):
        chart = rendered.charts[release]
        values = plain(res.inputs.get("values") or {})
        source = chart_source(chart.folder.resolve())
        problems += [
            f"{release} ({chart.chart} {chart.version}): {path} is not in values.yaml, read by "
            f"no template and under no free-form default"
            for path in undeclared(chart.chart, source, values)
        ]
    assert not problems, "\n".join(problems)
