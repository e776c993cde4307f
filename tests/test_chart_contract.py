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
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

from components import mesh, versions
from policy import harness, rules
from tests.charts import (
    BUILTIN_GROUPS,
    EXTERNAL_CRD_GROUPS,
    KUBERNETES_VERSIONS,
    VARIANTS,
    Stack,
    group_of,
    pod_labels,
    program_objects,
    services,
    stack,
    suite_marks,
    type_token,
    written_addresses,
)
from tests.graph import ROOT, plain

pytestmark = suite_marks()


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


# --- Tests -----------------------------------------------------------------------------------


def test_every_pinned_chart_is_at_hand_at_its_version_and_renders_with_the_stack_values(
    rendered: Stack,
) -> None:
    # The fixture fails first, with a `helm pull` command, for a missing or wrong chart.
    assert len(rendered.charts) >= 8
    for release, chart in rendered.charts.items():
        assert chart.repo.startswith(("https://", "oci://")), f"{release}: repo {chart.repo!r}"
        assert chart.objects, f"{release} renders nothing"


def test_linkerd_charts_are_the_edge_release_their_version_names(rendered: Stack) -> None:
    """Open-source Linkerd publishes edge releases only: tag `edge-YY.M.N` is chart version
    `20YY.M.N` in the edge repository. The chart folder's `.source` names the tag it was
    packaged from."""
    linkerd = [c for c in rendered.charts.values() if c.chart.startswith("linkerd")]
    assert len(linkerd) >= 3
    for chart in linkerd:
        assert chart.repo == "https://helm.linkerd.io/edge", chart.repo
        source = chart.folder / ".source"
        if source.is_file():
            _, tag, *_ = source.read_text().split()
            year, minor, patch = tag.removeprefix("edge-").split(".")
            assert chart.version == f"20{year}.{minor}.{patch}", (chart.chart, tag)


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


def test_the_gateway_api_crds_have_one_owner_at_the_pinned_release_and_channel(
    rendered: Stack,
) -> None:
    crds = [
        (release, o)
        for release, o in rendered.objects()
        if o["kind"] == "CustomResourceDefinition"
        and o["spec"]["group"].endswith(("gateway.networking.k8s.io", "gateway.envoyproxy.io"))
    ]
    names = [o["metadata"]["name"] for _, o in crds]
    assert len(names) == len(set(names)), f"a Gateway API CRD rendered twice: {sorted(names)}"
    # Only the pinned CRD chart: not linkerd-crds' bundled copy, not Envoy Gateway's chart; and
    # Envoy Gateway's own kinds only where the stack installs it.
    assert {release for release, _ in crds} == {mesh.GATEWAY_API_RELEASE}
    installs_envoy_gateway = rendered.graph.config["exposure"].get("installEnvoyGateway", False)
    groups = {o["spec"]["group"] for _, o in crds}
    assert groups == {"gateway.networking.k8s.io"} | (
        {"gateway.envoyproxy.io"} if installs_envoy_gateway else set()
    ), names
    for _, crd in crds:
        if crd["spec"]["group"] != "gateway.networking.k8s.io":
            continue
        annotations = crd["metadata"]["annotations"]
        assert annotations["gateway.networking.k8s.io/bundle-version"] == (
            versions.GATEWAY_API_VERSION
        ), crd["metadata"]["name"]
        assert annotations["gateway.networking.k8s.io/channel"] == "standard"
    # What Linkerd's policy controller watches, at the version it reads (`linkerd check`:
    # httproutes and grpcroutes must serve v1).
    served = {
        (o["spec"]["names"]["plural"], v["name"])
        for _, o in crds
        for v in o["spec"]["versions"]
        if v.get("served")
    }
    assert {("httproutes", "v1"), ("grpcroutes", "v1")} <= served, sorted(served)


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


# `dig "k1" "k2" <default> .Values.a`: reads `.Values.a.k1.k2` (sprig's dig: keys, then the
# default, then the map). Loki's helpers read `loki.storage.bucketNames.*` this way.
DIG = re.compile(r'\bdig((?:\s+"[^"]*")+)\s+(\S+\s+)?$')


def _dug(before: str) -> KeyPath:
    """The keys a `dig` right before a chain looks up below it (empty without one)."""
    m = DIG.search(before)
    if not m:
        return ()
    keys = tuple(re.findall(r'"([^"]*)"', m[1]))
    # A quoted last argument is the default, not a key.
    return keys if m[2] else keys[:-1]


def _scan_templates(text: str, source: ChartSource) -> None:
    for action in ACTION.finditer(text):
        body = action[1]
        for m, chain in _chains(body):
            source.reads.add(chain)
            before = body[: m.start()]
            if dug := _dug(before):
                source.reads.add((*chain, *dug))
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
        if not (sub_folder / "Chart.yaml").is_file() and dep.get("condition"):
            # Left out of the layout because it is off by its condition (oauth2-proxy's
            # `redis-ha`): the values under its key are checked against the parent's defaults.
            continue
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
