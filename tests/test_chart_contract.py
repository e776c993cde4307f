"""Chart contract: the pinned charts, rendered with the stack's own values, are what the
program assumes they are.

For every chart the program pins (read from the recorded graphs, so it is exactly what
`pulumi up` would ask for: chart, version, repository, release, namespace, values), this loads
the chart from a local folder, renders it offline with helm-python-sdk as Pulumi's v4 Chart
would (hooks dropped, CRDs included) and checks:

- the folder holds the pinned version, the values pass the chart's own schema, it renders;
- every values key the stack sets is one the chart declares, reads or passes through;
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
# CI sets this where the charts are at hand: a suite that would skip is then a failure.
REQUIRED_ENV = "MESHSTACK_CONTRACT_REQUIRED"
if SKIP is not None and os.environ.get(REQUIRED_ENV) == "1":
    pytest.fail(f"{REQUIRED_ENV}=1 but the chart contract suite cannot run: {SKIP}", pytrace=False)
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

# A template action, `{{ ... }}`.
ACTION = re.compile(r"\{\{-?(.*?)-?\}\}", re.DOTALL)
# A `.Values` chain (`$.Values` too): `.Values.a.b.c`, or `index .Values "a" "b"` and
# `get .Values "a"` for keys that are not identifiers (`grafana.ini`).
DOTTED = re.compile(r"\$?\.Values((?:\.[A-Za-z_]\w*)+)")
INDEXED = re.compile(r"\b(?:index|get)\s+\$?\.Values((?:\s+\"[^\"]+\")+)")
# Functions that take a whole map and render or walk it, keys the template does not name
# (before the chain in its action, or piped after it: `.Values.a | toYaml`).
HANDS_ON = re.compile(r"\b(?:toYaml|toJson|toPrettyJson|toRawJson|tpl|range|deepCopy)\b")
PIPED_ON = re.compile(r"\s*\|\s*(?:toYaml|toJson|toPrettyJson|toRawJson)\b")
TPL = re.compile(r"\btpl\s+\(?\s*$")
INCLUDE = re.compile(r"\binclude\s+\"([^\"]+)\"\s+\(?\s*$")
# The body of `with <map>` rendering `.` whole.
WITH_WHOLE = re.compile(
    r"(?:toYaml|toJson|toPrettyJson|toRawJson)\s+\.(?![\w.])|\.\s*\|\s*to(?:Yaml|Json)"
)
END = re.compile(r"\{\{-?\s*end\b")

# Values keys the stack sets that the pinned chart neither declares nor reads, on purpose.
# Chart name → key paths (an entry accepts everything below it too).
UNDECLARED_ON_PURPOSE: dict[str, frozenset[tuple[str, ...]]] = {
    "linkerd-control-plane": frozenset(
        {
            # components/mesh.py sets it for prod as upstream's values-ha.yaml does; it is in no
            # values.yaml and no template reads it, but the chart copies all its values into
            # the linkerd-config ConfigMap, where `linkerd check` reads it for the HA checks.
            ("highAvailability",),
        }
    ),
}

KeyPath = tuple[str, ...]


@dataclass
class ChartSource:
    """What a chart folder (its dependencies included) says about the values it takes."""

    defaults: dict[str, Any]
    """values.yaml; each dependency's values.yaml under the dependency's name (or alias) and
    its `global` merged into `global`, as Helm coalesces them."""
    reads: set[KeyPath] = field(default_factory=set)
    """Every `.Values` chain in templates/**."""
    whole: set[KeyPath] = field(default_factory=set)
    """Chains a template hands on whole: to toYaml/toJson/tpl/range/deepCopy, or as the subject
    of a `with` whose body renders `.` with toYaml/toJson."""
    includes: dict[str, set[KeyPath]] = field(default_factory=dict)
    """Named template → the chains passed to it (`include "name" .Values.a.b`)."""
    tpl: set[KeyPath] = field(default_factory=set)
    """Chains rendered as templates (`tpl .Values.loki.config .`)."""


_MISSING = object()


def _lookup(defaults: dict[str, Any], path: KeyPath) -> Any:
    """The default at `path`, or _MISSING."""
    node: Any = defaults
    for key in path:
        if not isinstance(node, dict) or key not in node:
            return _MISSING
        node = node[key]
    return node


def _declared(defaults: dict[str, Any], path: KeyPath) -> bool:
    return _lookup(defaults, path) is not _MISSING


def _chains(text: str) -> Iterator[tuple[re.Match[str], KeyPath]]:
    for m in DOTTED.finditer(text):
        yield m, tuple(m[1].split(".")[1:])
    for m in INDEXED.finditer(text):
        yield m, tuple(re.findall(r'"([^"]+)"', m[1]))


def _scan_templates(text: str, source: ChartSource) -> None:
    for action in ACTION.finditer(text):
        body = action[1]
        for m, chain in _chains(body):
            source.reads.add(chain)
            before = body[: m.start()]
            if TPL.search(before):
                source.tpl.add(chain)
            include = INCLUDE.search(before)
            if include:
                source.includes.setdefault(include[1], set()).add(chain)
            elif HANDS_ON.search(before) or PIPED_ON.match(body, m.end()):
                source.whole.add(chain)
            elif re.match(r"\s*with\s*$", before):
                rest = text[action.end() :]
                end = END.search(rest)
                if WITH_WHOLE.search(rest[: end.start() if end else len(rest)]):
                    source.whole.add(chain)


def _load_chart_source(folder: Path) -> ChartSource:
    values_file = folder / "values.yaml"
    defaults = (yaml.safe_load(values_file.read_text()) or {}) if values_file.is_file() else {}
    source = ChartSource(defaults)
    for path in sorted((folder / "templates").rglob("*")):
        if path.is_file():
            _scan_templates(path.read_text(errors="replace"), source)
    # A string default the chart renders with `tpl` is template text too (Loki's `loki.config`
    # reads `.Values.loki.limits_config` and the like).
    scanned: set[KeyPath] = set()
    while todo := source.tpl - scanned:
        for chain in todo:
            scanned.add(chain)
            default = _lookup(defaults, chain)
            if isinstance(default, str):
                _scan_templates(default, source)
    meta = yaml.safe_load((folder / "Chart.yaml").read_text()) or {}
    dependencies = list(meta.get("dependencies") or [])
    requirements = folder / "requirements.yaml"  # where apiVersion v1 charts list them
    if requirements.is_file():
        dependencies += (yaml.safe_load(requirements.read_text()) or {}).get("dependencies") or []
    for dep in dependencies:
        sub_folder = folder / "charts" / dep["name"]
        if not (sub_folder / "Chart.yaml").is_file():
            raise AssertionError(
                f"{folder}: dependency {dep['name']} is not unpacked at {sub_folder} (untar "
                f"charts/*.tgz)"
            )
        sub = _load_chart_source(sub_folder)
        key = dep.get("alias") or dep["name"]
        own = {k: v for k, v in sub.defaults.items() if k != "global"}
        if own and isinstance(defaults.get(key, {}), dict):
            defaults[key] = {**own, **defaults.get(key, {})}
        if isinstance(sub.defaults.get("global"), dict):
            defaults["global"] = {**sub.defaults["global"], **(defaults.get("global") or {})}
        # A subchart's own templates read its values under its key; its named templates
        # (linkerd's `partials`, bitnami's `common`) run with the parent's context and read the
        # parent's values as they are: a dependency's chains count both ways.
        for chain in sub.reads:
            source.reads |= {(key, *chain), chain}
        for chain in sub.whole:
            source.whole |= {(key, *chain), chain}
        for name, chains in sub.includes.items():
            source.includes.setdefault(name, set()).update(chains)
            source.includes[name].update((key, *chain) for chain in chains)
    return source


@functools.cache
def chart_source(folder: Path) -> ChartSource:
    return _load_chart_source(folder)


def key_paths(values: Any, prefix: KeyPath = ()) -> Iterator[KeyPath]:
    """Every key path of a values tree, inner keys included. Lists are leaves: a list replaces
    the chart's default whole and its items are not values keys."""
    if isinstance(values, dict):
        for key, value in values.items():
            path = (*prefix, str(key))
            yield path
            yield from key_paths(value, path)


def free_form(default: Any) -> bool:
    """A values.yaml default that enumerates no keys: `{}`, `null`, `[]`, or a string holding a
    YAML document (several lines, one at least a `key:` line)."""
    if default is None or default == {} or default == []:
        return True
    return (
        isinstance(default, str)
        and "\n" in default.strip()
        and re.search(r"^\s*[\w.-]+:", default, re.MULTILINE) is not None
    )


def _below(path: KeyPath, ancestor: KeyPath) -> bool:
    return len(ancestor) < len(path) and path[: len(ancestor)] == ancestor


def accepts(source: ChartSource, path: KeyPath) -> bool:
    """Whether the chart takes the values key `path` (the rules: the test's docstring)."""
    if _declared(source.defaults, path):
        return True
    node: Any = source.defaults
    for key in path[:-1]:
        if not isinstance(node, dict) or key not in node:
            break
        node = node[key]
        if free_form(node):
            return True
    if any(chain[: len(path)] == path for chain in source.reads):
        return True
    if any(_below(path, chain) for chain in source.whole):
        return True
    for chains in source.includes.values():
        for chain in chains:
            if _below(path, chain):
                rest = path[len(chain) :]
                if any(_declared(source.defaults, (*twin, *rest)) for twin in chains):
                    return True
    return False


def unaccepted(chart: str, source: ChartSource, values: dict[str, Any]) -> list[str]:
    """Every key path of `values` the chart does not take, dotted."""
    allowed = UNDECLARED_ON_PURPOSE.get(chart, frozenset())
    return [
        ".".join(path)
        for path in key_paths(values)
        if not any(path[: len(a)] == a for a in allowed) and not accepts(source, path)
    ]


def test_every_value_key_the_stack_sets_exists_in_the_pinned_chart(rendered: Stack) -> None:
    """Every key the stack passes to a pinned chart is one the chart takes, so a misspelt,
    renamed or dropped key cannot silently fall back to the chart's default.

    Every key path of the values (`a.b.c`, inner keys included; lists are leaves) must be:

    1. declared: in the chart's values.yaml, each dependency's values.yaml counting under the
       dependency's name (or alias) and its `global` under `global`, as Helm coalesces them.
       values-ha.yaml and other example values files are not a source: the user picks them;
    2. or read: `.Values.a.b.c`, or a longer chain below it, appears in templates/** of the
       chart or of a dependency (`index`/`get .Values "a"` too), or in a string default the
       chart renders with `tpl` (Loki's `loki.config`); a dependency's chains count under its
       key and as they are, since linkerd's `partials` and bitnami's `common` are named
       templates that run with the parent's context;
    3. or below a free-form default: an ancestor is declared in values.yaml as `{}`, `null`,
       `[]` or a string holding a YAML document (several lines, a `key:` line among them);
    4. or below a map a template hands on whole: an ancestor chain is the operand of
       toYaml/toJson/tpl/range/deepCopy, or the subject of a `with` whose body renders `.`
       with toYaml/toJson (a container's `resources`, pod annotations, Grafana's ini sections,
       Loki's limits_config, the collector's `ports`): the keys below are the receiver's,
       Kubernetes' (rendered objects are validated strictly above) or the application's;
    5. or shaped like a declared twin: an ancestor chain is passed to a named template
       (`include "partials.resources" .Values.destinationResources`) to which another chain
       is passed whose declared map has the same keys below (`proxy.resources.cpu.limit`);
    6. or listed in UNDECLARED_ON_PURPOSE, each entry with its reason.
    """
    problems = []
    for release, res in sorted(rendered.graph.charts().items()):
        chart = rendered.charts[release]
        source = chart_source(chart.folder.resolve())
        problems += [
            f"{release} ({chart.chart} {chart.version}): `{path}` is neither declared in "
            f"values.yaml nor read by a template, and is below no free-form or handed-on map"
            for path in unaccepted(chart.chart, source, plain(res.inputs.get("values") or {}))
        ]
    assert not problems, "\n".join(problems)
