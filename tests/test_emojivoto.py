"""emojivoto: the component alone under the recording mocks, and its policy as plain data."""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pulumi_kubernetes as k8s
import pytest
import yaml

from components import emojivoto as ev
from components import grafana, sizing, versions
from components.config import EmojivotoSettings
from components.emojivoto import Emojivoto, EmojivotoArgs
from components.onboarding import POLICY_API_VERSIONS, PolicySet
from tests import charts
from tests.graph import Graph, Resource, record

OC_AGENT = "otel-collector.tracing.svc.cluster.local:55678"
CP_NAME = "cp"
KUBERNETES_VERSIONS = ("1.31.0", "1.35.0")
POLICY_GROUP = "policy.linkerd.io"
DEPLOYMENT = "kubernetes:apps/v1:Deployment"
SERVICE = "kubernetes:core/v1:Service"
SERVICE_ACCOUNT = "kubernetes:core/v1:ServiceAccount"
NAMESPACE = "kubernetes:core/v1:Namespace"
# viz's bundled Prometheus, the identity that scrapes metrics.
VIZ_PROMETHEUS = {"kind": "ServiceAccount", "name": "prometheus", "namespace": "linkerd-viz"}


# --- Helpers shared with test_onboarding -----------------------------------------------------


def integral(value: Any) -> Any:
    """Recorded inputs pass through protobuf Structs, where every number is a float."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {k: integral(v) for k, v in value.items()}
    if isinstance(value, list):
        return [integral(v) for v in value]
    return value


def kubernetes_object(res: Resource) -> dict[str, Any]:
    """The object the provider would send to the API server, from the recorded inputs."""
    obj = integral(res.inputs)
    assert obj.get("apiVersion") and obj.get("kind"), f"{res.urn}: no apiVersion/kind"
    return obj


def is_policy(res: Resource) -> bool:
    return res.type.startswith(f"kubernetes:{POLICY_GROUP}/")


# The start of a Go template action (`{{ .Values.x }}`, `{{- include "..." . }}`): Helm chart
# source, not rendered YAML.
TEMPLATE_ACTION = re.compile(r"\{\{-?\s*[-.$\"(/a-zA-Z]")


def _render_hint(out: str) -> str:
    crds = versions.LINKERD_CRDS
    return (
        f"render the chart first, e.g.\n"
        f"  helm template {crds.chart} {crds.chart} --repo {crds.repo} --version {crds.version} "
        f"--output-dir {out}\n"
        f"(or `helm template {crds.chart} <chart folder> --output-dir {out}` for a local copy, "
        f"its charts/partials dependency included), then set LINKERD_CRDS_DIR={out}"
    )


def crd_schemas(directory: Path) -> dict[tuple[str, str], dict[str, Any]]:
    """(apiVersion, kind) → openAPIV3Schema of every served version in a dir of rendered CRD
    YAML (searched recursively, so `helm template --output-dir` output works as it is).

    Helm template source (the chart's templates/ folder or the chart itself) is refused with
    how to render it: its `{{ ... }}` actions are not YAML.
    """
    files = sorted(p for p in directory.rglob("*") if p.is_file() and p.suffix in {".yaml", ".yml"})
    templated = [p for p in files if TEMPLATE_ACTION.search(p.read_text(errors="replace"))]
    if templated:
        shown = ", ".join(str(p.relative_to(directory)) for p in templated[:3])
        more = f" and {len(templated) - 3} more" if len(templated) > 3 else ""
        pytest.fail(
            f"LINKERD_CRDS_DIR={directory} holds Helm template source, not rendered YAML "
            f"(`{{{{ ... }}}}` in {shown}{more}): "
            + _render_hint(f"{directory.parent / 'linkerd-crds-rendered'}"),
            pytrace=False,
        )
    return _schemas_of([doc for path in files for doc in yaml.safe_load_all(path.read_text())])


def _schemas_of(crds: list[dict[str, Any]]) -> dict[tuple[str, str], dict[str, Any]]:
    schemas: dict[tuple[str, str], dict[str, Any]] = {}
    for doc in crds:
        if not isinstance(doc, dict) or doc.get("kind") != "CustomResourceDefinition":
            continue
        spec = doc["spec"]
        for version in spec["versions"]:
            schema = (version.get("schema") or {}).get("openAPIV3Schema")
            if version.get("served") and schema:
                schemas[(f"{spec['group']}/{version['name']}", spec["names"]["kind"])] = schema
    return schemas


def linkerd_crd_schemas() -> dict[tuple[str, str], dict[str, Any]]:
    """The CRD schemas of the pinned linkerd-crds chart: rendered from MESHSTACK_CHARTS_DIR with
    the dev stack's values (tests/charts.py), or read from LINKERD_CRDS_DIR, a folder of
    rendered CRD YAML, when that is set."""
    directory = os.environ.get("LINKERD_CRDS_DIR", "")
    if not directory:
        if charts.SKIP is not None:
            if os.environ.get(charts.REQUIRED_ENV) == "1":
                pytest.fail(f"the pinned linkerd-crds cannot be rendered: {charts.SKIP}")
            pytest.skip(
                f"{charts.SKIP}; or set LINKERD_CRDS_DIR to a directory of rendered Linkerd "
                "CRD YAML (the linkerd-crds chart through `helm template`)"
            )
        rendered = charts.stack("dev").charts[versions.LINKERD_CRDS.chart]
        assert not rendered.error, rendered.error
        return _schemas_of(rendered.objects)
    path = Path(directory)
    if not path.is_dir():
        pytest.fail(f"LINKERD_CRDS_DIR={directory} is not a directory", pytrace=False)
    schemas = crd_schemas(path)
    if not schemas:
        pytest.fail(
            f"LINKERD_CRDS_DIR={directory} holds no CustomResourceDefinition YAML: "
            + _render_hint(directory),
            pytrace=False,
        )
    return schemas


def crd_errors(schemas: Mapping[tuple[str, str], dict[str, Any]], res: Resource) -> list[str]:
    obj = kubernetes_object(res)
    key = (obj["apiVersion"], obj["kind"])
    if key not in schemas:
        return [f"{res.urn}: {key} is not served by the CRDs given"]
    # OpenAPI v3.0 schemas are JSON Schema draft 4 with extensions jsonschema ignores.
    validator = jsonschema.Draft4Validator(schemas[key])
    errors = [f"{res.urn}: {e.json_path}: {e.message}" for e in validator.iter_errors(obj)]
    # `x-kubernetes-int-or-string` carries no `type`, so jsonschema checks nothing there.
    port = obj["spec"].get("port")
    if obj["kind"] == "Server" and not isinstance(port, (int, str)):
        errors.append(f"{res.urn}: spec.port {port!r} is neither a number nor a name")
    return errors


def kubernetes_validate_errors(res: Resource) -> list[str]:
    obj = kubernetes_object(res)
    errors = []
    for version in KUBERNETES_VERSIONS:
        try:
            kubernetes_validate.validate(obj, version, strict=True)
        except kubernetes_validate.ValidationError as error:
            errors.append(f"{res.urn} @ {version}: {error.message} at {list(error.path)}")
    return errors


def control_plane_stand_in() -> k8s.core.v1.ConfigMap:
    """Any resource will do: the component only has to wait for it."""
    return k8s.core.v1.ConfigMap(CP_NAME)


# --- Building the component ------------------------------------------------------------------


def build(
    profile: str = "dev",
    settings: EmojivotoSettings | None = None,
    oc_agent_host: str = OC_AGENT,
    ingress_controller_namespace: str = "ingress-nginx",
    allow_unauthenticated_web: bool = False,
    cluster_domain: str = "cluster.local",
) -> Graph:
    def program() -> None:
        cp = control_plane_stand_in()
        Emojivoto(
            "emojivoto",
            EmojivotoArgs(
                profile=profile,
                settings=settings or EmojivotoSettings(replicas=2, vote_bot_replicas=1),
                control_plane=cp,
                oc_agent_host=oc_agent_host,
                ingress_controller_namespace=ingress_controller_namespace,
                allow_unauthenticated_web=allow_unauthenticated_web,
                cluster_domain=cluster_domain,
            ),
        )

    graph = record(program)
    if graph.error is not None:
        raise graph.error
    return graph


@pytest.fixture(scope="module")
def graph() -> Graph:
    return build()


def deployments(graph: Graph) -> dict[str, dict[str, Any]]:
    return {r.inputs["metadata"]["name"]: integral(r.inputs) for r in graph.of_type(DEPLOYMENT)}


def containers(graph: Graph) -> Iterator[tuple[str, dict[str, Any]]]:
    for name, dep in deployments(graph).items():
        for c in dep["spec"]["template"]["spec"]["containers"]:
            yield f"{name}/{c['name']}", c


def env_of(container: Mapping[str, Any]) -> dict[str, str]:
    """The literal env values (Downward API references left out)."""
    return {e["name"]: e["value"] for e in container.get("env", []) if "value" in e}


def policy_objects(graph: Graph) -> dict[str, dict[str, dict[str, Any]]]:
    """kind → name → spec, as recorded."""
    out: dict[str, dict[str, dict[str, Any]]] = {k: {} for k in POLICY_API_VERSIONS}
    for r in graph.resources:
        if is_policy(r):
            obj = kubernetes_object(r)
            out[obj["kind"]][obj["metadata"]["name"]] = obj["spec"]
    return out


def selects(selector: Mapping[str, Any], labels: Mapping[str, str]) -> bool:
    """Kubernetes label-selector semantics (matchLabels AND matchExpressions)."""
    if any(labels.get(k) != v for k, v in (selector.get("matchLabels") or {}).items()):
        return False
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr["key"], expr["operator"], expr.get("values") or []
        ok = {
            "In": labels.get(key) in values,
            "NotIn": labels.get(key) not in values,
            "Exists": key in labels,
            "DoesNotExist": key not in labels,
        }[op]
        if not ok:
            return False
    return True


# --- Namespace and ordering ------------------------------------------------------------------


def test_namespace_is_injected_privileged_and_denies_inbound_by_default(graph: Graph) -> None:
    ns = graph.get(NAMESPACE, "emojivoto-namespace")
    meta = ns.inputs["metadata"]
    assert meta["name"] == "emojivoto"
    assert meta["annotations"]["linkerd.io/inject"] == "enabled", ns.urn
    assert meta["annotations"]["config.linkerd.io/default-inbound-policy"] == "deny", ns.urn
    assert meta["labels"]["pod-security.kubernetes.io/enforce"] == "privileged", ns.urn


def test_namespace_and_every_meshed_workload_wait_for_the_control_plane(graph: Graph) -> None:
    cp = graph.get("kubernetes:core/v1:ConfigMap", CP_NAME)
    waiting = [
        *graph.of_type(NAMESPACE),
        *graph.of_type(DEPLOYMENT),
        *graph.of_type(SERVICE),
        *graph.of_type(SERVICE_ACCOUNT),
        *(r for r in graph.resources if is_policy(r)),
    ]
    assert len(graph.of_type(DEPLOYMENT)) == 4
    late = [r.urn for r in waiting if not graph.waits_for(r, cp)]
    assert not late, f"created before the control plane is ready: {late}"


def test_every_policy_object_depends_on_the_namespace(graph: Graph) -> None:
    ns = graph.get(NAMESPACE, "emojivoto-namespace")
    loose = [r.urn for r in graph.resources if is_policy(r) and ns.urn not in r.dependencies]
    assert not loose, f"policy objects not tied to the namespace: {loose}"


def test_workloads_start_after_their_policy_and_service_account(graph: Graph) -> None:
    for dep in graph.of_type(DEPLOYMENT):
        name = dep.inputs["metadata"]["name"]
        sa = graph.get(SERVICE_ACCOUNT, f"emojivoto-{name}-sa")
        assert graph.waits_for(dep, sa), dep.urn
        for r in graph.resources:
            if is_policy(r):
                assert graph.waits_for(dep, r), f"{dep.urn} does not wait for {r.urn}"


def test_every_child_is_parented_to_the_component_and_named_after_it(graph: Graph) -> None:
    component = graph.get("meshstack:apps:Emojivoto", "emojivoto")
    children = [r for r in graph.resources if r.name != CP_NAME and r is not component]
    assert children
    for r in children:
        assert r.parent == component.urn, r.urn
        assert r.name.startswith("emojivoto-"), r.urn


# --- Workloads -------------------------------------------------------------------------------


def test_four_deployments_and_three_services_exist_as_upstream(graph: Graph) -> None:
    assert set(deployments(graph)) == {"web", "emoji", "voting", "vote-bot"}
    services = {r.inputs["metadata"]["name"]: r.inputs["spec"] for r in graph.of_type(SERVICE)}
    ports = {
        name: {(p["name"], int(p["port"]), int(p["targetPort"])) for p in spec["ports"]}
        for name, spec in services.items()
    }
    assert ports == {
        "web-svc": {("http", 80, 8080)},
        "emoji-svc": {("grpc", 8080, 8080), ("prom", 8801, 8801)},
        "voting-svc": {("grpc", 8080, 8080), ("prom", 8801, 8801)},
    }


def test_every_service_selects_pods_that_declare_its_target_ports(graph: Graph) -> None:
    deps = deployments(graph)
    for svc in graph.of_type(SERVICE):
        spec = integral(svc.inputs["spec"])
        selector = {"matchLabels": spec["selector"]}
        pods = [
            d["spec"]["template"]
            for d in deps.values()
            if selects(selector, d["spec"]["template"]["metadata"]["labels"])
        ]
        assert pods, f"{svc.urn} selects no pods"
        for pod in pods:
            declared = {
                p["containerPort"] for c in pod["spec"]["containers"] for p in c.get("ports", [])
            }
            for port in spec["ports"]:
                assert port["targetPort"] in declared, f"{svc.urn}: {port} not served by {pod}"


def test_every_host_port_in_the_app_env_is_a_service_and_port_the_component_creates(
    graph: Graph,
) -> None:
    services = {
        (r.inputs["metadata"]["name"], r.inputs["metadata"]["namespace"]): {
            int(p["port"]) for p in r.inputs["spec"]["ports"]
        }
        for r in graph.of_type(SERVICE)
    }
    address = re.compile(r"^([a-z0-9-]+)\.([a-z0-9-]+)(\.svc\.cluster\.local)?:(\d+)$")
    checked = 0
    for where, c in containers(graph):
        for key, value in env_of(c).items():
            if key == "OC_AGENT_HOST":
                assert value == OC_AGENT, where  # another component's address, passed through
                continue
            match = address.match(value)
            if not match:
                continue
            svc, ns, _, port = match.groups()
            assert (svc, ns) in services, f"{where} {key}={value}: no such Service"
            assert int(port) in services[(svc, ns)], f"{where} {key}={value}: no such port"
            checked += 1
    # web → emoji, web → voting, vote-bot → web.
    assert checked == 3


def test_addresses_follow_the_cluster_domain() -> None:
    graph = build(cluster_domain="corp.internal")
    web = env_of(next(c for w, c in containers(graph) if w.startswith("web/")))
    assert web["EMOJISVC_HOST"] == "emoji-svc.emojivoto.svc.corp.internal:8080"


def test_env_is_upstreams_plus_the_opencensus_agent(graph: Graph) -> None:
    envs = {w.split("/")[0]: env_of(c) for w, c in containers(graph)}
    assert set(envs["web"]) == {
        "WEB_PORT",
        "EMOJISVC_HOST",
        "VOTINGSVC_HOST",
        "INDEX_BUNDLE",
        "OC_AGENT_HOST",
        "OC_RESOURCE_LABELS",
    }
    assert envs["web"]["INDEX_BUNDLE"] == "dist/index_bundle.js"
    for svc in ("emoji", "voting"):
        labels = envs[svc].pop("OC_RESOURCE_LABELS")
        assert labels
        assert envs[svc] == {"GRPC_PORT": "8080", "PROM_PORT": "8801", "OC_AGENT_HOST": OC_AGENT}
    assert set(envs["vote-bot"]) == {"WEB_HOST", "OC_AGENT_HOST", "OC_RESOURCE_LABELS"}


def kubelet_env(container: Mapping[str, Any], pod: Mapping[str, str]) -> dict[str, str]:
    """The env as the kubelet hands it to the process: Downward API fields filled from `pod`
    and `$(VAR)` expanded from the variables defined before it (an unknown one stays literal)."""
    out: dict[str, str] = {}
    for e in container.get("env", []):
        if "valueFrom" in e:
            out[e["name"]] = pod[e["valueFrom"]["fieldRef"]["fieldPath"]]
        else:
            out[e["name"]] = re.sub(
                r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)", lambda m: out.get(m[1], m[0]), e["value"]
            )
    return out


def opencensus_labels(text: str) -> dict[str, str]:
    """go.opencensus.io/resource `DecodeLabels`: `key=value` pairs split on commas, values
    optionally in double quotes."""
    out = {}
    for pair in text.split(","):
        key, _, value = pair.partition("=")
        assert key and _ == "=", f"not key=value: {pair!r}"
        if value.startswith('"'):
            assert value.endswith('"') and len(value) >= 2, f"unclosed quote: {pair!r}"
            value = value[1:-1]
        out[key.strip()] = value
    return out


def test_app_spans_carry_the_pod_and_namespace_they_come_from(graph: Graph) -> None:
    pod = {"metadata.name": "web-7d9f-abcde", "metadata.namespace": "emojivoto"}
    for where, c in containers(graph):
        env = kubelet_env(c, pod)
        assert opencensus_labels(env["OC_RESOURCE_LABELS"]) == {
            "k8s.pod.name": "web-7d9f-abcde",
            "k8s.namespace.name": "emojivoto",
        }, where
        # Grafana's trace→logs maps exactly these attributes to Loki's stream labels.
        assert set(ev.RESOURCE_ATTRIBUTES) == set(grafana.TRACE_TO_LOG_TAGS), where


def test_without_an_agent_no_container_gets_oc_agent_host() -> None:
    graph = build(oc_agent_host="")
    for _, c in containers(graph):
        assert "OC_AGENT_HOST" not in env_of(c)
        assert "OC_RESOURCE_LABELS" not in env_of(c)


def test_images_come_from_the_pinned_registry_and_tag(graph: Graph) -> None:
    images = {w.split("/")[0]: c["image"] for w, c in containers(graph)}
    assert versions.EMOJIVOTO_REGISTRY == "ghcr.io/buoyantio"
    tag = versions.EMOJIVOTO_TAG
    assert images == {
        "web": f"ghcr.io/buoyantio/emojivoto-web:{tag}",
        "emoji": f"ghcr.io/buoyantio/emojivoto-emoji-svc:{tag}",
        "voting": f"ghcr.io/buoyantio/emojivoto-voting-svc:{tag}",
        "vote-bot": f"ghcr.io/buoyantio/emojivoto-web:{tag}",
    }


def test_binaries_run_as_pid_1_from_the_directory_web_serves_files_from(graph: Graph) -> None:
    for where, c in containers(graph):
        assert c["workingDir"] == "/usr/local/bin", where
        assert len(c["command"]) == 1 and c["command"][0].startswith("/usr/local/bin/"), where


@pytest.mark.parametrize("profile", ["dev", "prod"])
def test_every_container_has_cpu_and_memory_requests_and_limits(profile: str) -> None:
    graph = build(profile=profile)
    for where, c in containers(graph):
        res = c["resources"]
        for kind in ("requests", "limits"):
            assert {"cpu", "memory"} <= set(res.get(kind, {})), f"{where}: {kind} {res}"
        role = "vote-bot" if where.startswith("vote-bot/") else "emojivoto"
        assert res == sizing.k8s_resources(profile, role), where


def test_containers_run_as_a_fixed_non_root_non_proxy_uid_read_only_with_no_capabilities(
    graph: Graph,
) -> None:
    for where, c in containers(graph):
        sc = c["securityContext"]
        assert sc["runAsNonRoot"] is True, where
        # The images have no USER: without a uid the kubelet refuses runAsNonRoot.
        assert isinstance(sc["runAsUser"], int) and sc["runAsUser"] > 0, where
        # proxy-init lets the proxy's uid bypass the proxy; the app must never run as it.
        assert sc["runAsUser"] != ev.LINKERD_PROXY_UID, where
        assert sc["readOnlyRootFilesystem"] is True, where
        assert sc["allowPrivilegeEscalation"] is False, where
        assert sc["capabilities"] == {"drop": ["ALL"]}, where
        assert sc["seccompProfile"] == {"type": "RuntimeDefault"}, where


def test_probes_use_http_endpoints_the_binaries_serve(graph: Graph) -> None:
    expected = {"web": ("/", 8080), "emoji": ("/metrics", 8801), "voting": ("/metrics", 8801)}
    for where, c in containers(graph):
        workload = where.split("/")[0]
        if workload == "vote-bot":
            assert "readinessProbe" not in c and "livenessProbe" not in c, "no listener to probe"
            continue
        declared = {p["containerPort"] for p in c["ports"]}
        for probe in ("readinessProbe", "livenessProbe"):
            get = c[probe]["httpGet"]
            assert (get["path"], get["port"]) == expected[workload], f"{where} {probe}"
            assert get["port"] in declared, f"{where} {probe} probes an undeclared port"


def test_each_workload_runs_as_its_own_service_account_without_a_token(graph: Graph) -> None:
    accounts = {r.inputs["metadata"]["name"]: r.inputs for r in graph.of_type(SERVICE_ACCOUNT)}
    assert set(accounts) == {"web", "emoji", "voting", "vote-bot"}
    assert all(sa["automountServiceAccountToken"] is False for sa in accounts.values())
    for name, dep in deployments(graph).items():
        pod = dep["spec"]["template"]["spec"]
        assert pod["serviceAccountName"] == name
        assert pod["automountServiceAccountToken"] is False, name


def test_pods_carry_upstream_app_labels_and_the_recommended_ones(graph: Graph) -> None:
    for name, dep in deployments(graph).items():
        pod_labels = dep["spec"]["template"]["metadata"]["labels"]
        assert pod_labels["app"] == ev.WORKLOADS[name].app
        assert pod_labels["app.kubernetes.io/name"] == name
        assert pod_labels["app.kubernetes.io/part-of"] == "emojivoto"
        assert selects(dep["spec"]["selector"], pod_labels), name


def test_replicas_follow_the_settings(graph: Graph) -> None:
    replicas = {n: d["spec"]["replicas"] for n, d in deployments(graph).items()}
    assert replicas == {"web": 2, "emoji": 2, "voting": 2, "vote-bot": 1}


def test_with_no_vote_bot_replicas_the_generated_traffic_stops() -> None:
    graph = build(settings=EmojivotoSettings(replicas=1, vote_bot_replicas=0))
    deps = deployments(graph)
    assert deps["vote-bot"]["spec"]["replicas"] == 0
    # vote-bot is the only thing that calls web by itself; the others only answer.
    callers = [w for w, c in containers(graph) if "WEB_HOST" in env_of(c)]
    assert callers == ["vote-bot/vote-bot"]
    assert all(deps[n]["spec"]["replicas"] == 1 for n in ("web", "emoji", "voting"))


def test_outputs_are_the_namespace_and_the_web_service(graph: Graph) -> None:
    component = graph.get("meshstack:apps:Emojivoto", "emojivoto")
    web = graph.get(SERVICE, "emojivoto-web-svc")
    assert web.inputs["metadata"]["name"] == ev.WEB_SERVICE == "web-svc"
    assert component.custom is False


# --- Policy (pure) ---------------------------------------------------------------------------


def clients(p: PolicySet, server_name: str) -> set[tuple[str, str]]:
    """(authentication kind, name) pairs any AuthorizationPolicy admits into a Server."""
    return {
        (ref["kind"], ref["name"])
        for spec in p["AuthorizationPolicy"].values()
        if spec["targetRef"]["name"] == server_name
        for ref in spec["requiredAuthenticationRefs"]
    }


def test_only_web_may_call_emoji_and_voting_grpc() -> None:
    p = ev.policy("ingress-nginx", True)
    for srv in ("emoji-grpc", "voting-grpc"):
        assert p["Server"][srv]["proxyProtocol"] == "gRPC"
        assert clients(p, srv) == {("MeshTLSAuthentication", "web")}
    assert p["MeshTLSAuthentication"]["web"] == {
        "identityRefs": [{"kind": "ServiceAccount", "name": "web"}]
    }


@pytest.mark.parametrize(
    ("ingress_ns", "public", "expected"),
    [
        ("", False, {"vote-bot"}),
        ("ingress-nginx", False, {"vote-bot", "ingress-controller"}),
        ("", True, {"vote-bot", "all-networks"}),
        ("traefik", True, {"vote-bot", "ingress-controller", "all-networks"}),
    ],
)
def test_web_admits_vote_bot_the_ingress_controller_and_anyone_only_when_published(
    ingress_ns: str, public: bool, expected: set[str]
) -> None:
    p = ev.policy(ingress_ns, public, "example.org")
    assert p["Server"]["web-http"]["proxyProtocol"] == "HTTP/1"
    assert {name for _, name in clients(p, "web-http")} == expected
    if ingress_ns:
        assert p["MeshTLSAuthentication"]["ingress-controller"] == {
            "identities": [f"*.{ingress_ns}.serviceaccount.identity.linkerd.example.org"]
        }
    else:
        assert "ingress-controller" not in p["MeshTLSAuthentication"]
    if public:
        assert p["NetworkAuthentication"]["all-networks"] == {
            "networks": [{"cidr": "0.0.0.0/0"}, {"cidr": "::/0"}]
        }
    else:
        assert not p["NetworkAuthentication"]


def test_metrics_ports_and_every_proxy_admin_port_admit_only_the_scraper() -> None:
    p = ev.policy()
    for srv in ("prom", "linkerd-admin"):
        assert clients(p, srv) == {("MeshTLSAuthentication", "metrics-scraper")}
    assert p["MeshTLSAuthentication"]["metrics-scraper"] == {"identityRefs": [VIZ_PROMETHEUS]}
    assert p["Server"]["linkerd-admin"]["port"] == "linkerd-admin"
    # No routes anywhere: Linkerd keeps authorizing kubelet probe paths on every Server.
    assert set(p) == set(POLICY_API_VERSIONS)


@pytest.mark.parametrize(("ingress_ns", "public"), [("", False), ("ingress-nginx", True)])
def test_authorization_policies_obey_linkerd_admission_rules(ingress_ns: str, public: bool) -> None:
    p = ev.policy(ingress_ns, public)
    allowed = {"MeshTLSAuthentication", "NetworkAuthentication", "ServiceAccount"}
    for name, spec in p["AuthorizationPolicy"].items():
        assert spec["targetRef"] == {
            "group": POLICY_GROUP,
            "kind": "Server",
            "name": spec["targetRef"]["name"],
        }
        assert spec["targetRef"]["name"] in p["Server"], name
        kinds = [ref["kind"] for ref in spec["requiredAuthenticationRefs"]]
        assert kinds and set(kinds) <= allowed, name
        assert len(kinds) == len(set(kinds)), f"{name}: two refs of one kind"
        assert not {"MeshTLSAuthentication", "ServiceAccount"} <= set(kinds), name
        for ref in spec["requiredAuthenticationRefs"]:
            if ref["kind"] != "ServiceAccount":
                assert ref["name"] in p[ref["kind"]], f"{name}: {ref} does not exist"
    for name, spec in p["MeshTLSAuthentication"].items():
        assert ("identities" in spec) != ("identityRefs" in spec), name
        for ref in spec.get("identityRefs", []):
            assert ref["kind"] in {"ServiceAccount", "Namespace"}, name


# --- Policy (as deployed) --------------------------------------------------------------------


def test_every_policy_names_a_service_account_a_workload_really_runs_as(graph: Graph) -> None:
    running = {
        (d["metadata"]["namespace"], d["spec"]["template"]["spec"]["serviceAccountName"])
        for d in deployments(graph).values()
    }
    created = {
        (r.inputs["metadata"]["namespace"], r.inputs["metadata"]["name"])
        for r in graph.of_type(SERVICE_ACCOUNT)
    }
    external = {("linkerd-viz", "prometheus")}  # viz's Prometheus, made by the viz chart
    named = 0
    for r in graph.resources:
        if not is_policy(r):
            continue
        obj = kubernetes_object(r)
        spec = obj["spec"]
        refs = spec.get("identityRefs", []) + spec.get("requiredAuthenticationRefs", [])
        for ref in refs:
            if ref["kind"] != "ServiceAccount":
                continue
            key = (ref.get("namespace") or obj["metadata"]["namespace"], ref["name"])
            if key in external:
                continue
            assert key in created and key in running, f"{r.urn} names {key}, which nothing runs as"
            named += 1
    assert named == 2  # web (for emoji and voting) and vote-bot (for web)


def test_every_server_port_is_one_the_pods_it_selects_declare(graph: Graph) -> None:
    deps = deployments(graph)
    servers = policy_objects(graph)["Server"]
    seen: dict[tuple[str, str | int], str] = {}
    for name, spec in servers.items():
        pods = {
            n: d["spec"]["template"]
            for n, d in deps.items()
            if selects(spec["podSelector"], d["spec"]["template"]["metadata"]["labels"])
        }
        assert pods, f"Server {name} selects no pod"
        for workload, pod in pods.items():
            ports = {p["name"] for c in pod["spec"]["containers"] for p in c.get("ports", [])}
            # The proxy's admin port is added by the injector to every meshed pod.
            assert spec["port"] in ports | {"linkerd-admin"}, f"Server {name}: {workload}"
            # Two Servers on one pod port conflict; Linkerd picks one of them.
            other = seen.setdefault((workload, spec["port"]), name)
            assert other == name, f"Servers {other} and {name} both select {workload}"


def test_policy_objects_validate_against_the_linkerd_crd_schemas() -> None:
    schemas = linkerd_crd_schemas()
    graph = build(allow_unauthenticated_web=True)
    objects = [r for r in graph.resources if is_policy(r)]
    assert len(objects) == 5 + 4 + 1 + 7  # Servers, MeshTLS, Network, Authz
    errors = [e for r in objects for e in crd_errors(schemas, r)]
    assert not errors, "\n".join(errors)


def test_the_crd_check_rejects_broken_policy_objects() -> None:
    """A negative control: the schema check above would catch these."""
    schemas = linkerd_crd_schemas()

    def fake(kind: str, spec: dict[str, Any]) -> Resource:
        inputs = {
            "apiVersion": POLICY_API_VERSIONS[kind],
            "kind": kind,
            "metadata": {"name": "x", "namespace": "emojivoto"},
            "spec": spec,
        }
        return Resource("urn:x", f"kubernetes:{kind}", "x", True, "", [], inputs, {})

    broken = [
        fake("Server", {"port": "grpc", "proxyProtocol": "gRPC"}),  # no selector
        fake("Server", {"podSelector": {}, "port": 8.5}),
        fake("MeshTLSAuthentication", {"identities": []}),
        fake("AuthorizationPolicy", {"targetRef": {"kind": "Server", "name": "x"}}),
        fake("NetworkAuthentication", {"networks": [{"except": ["10.0.0.1/32"]}]}),
    ]
    assert all(crd_errors(schemas, r) for r in broken)


def test_every_kubernetes_object_passes_strict_validation() -> None:
    graph = build(allow_unauthenticated_web=True)
    objects = [r for r in graph.kubernetes_objects() if not is_policy(r)]
    assert len(objects) == 1 + 4 + 4 + 3 + 1  # cp, namespace, SAs, Deployments, Services
    errors = [e for r in objects for e in kubernetes_validate_errors(r)]
    assert not errors, "\n".join(errors)


# --- Arguments -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (lambda a: setattr(a, "profile", "staging"), "EmojivotoArgs.profile"),
        (
            lambda a: setattr(a, "settings", EmojivotoSettings(replicas=0)),
            "EmojivotoArgs.settings.replicas",
        ),
        (
            lambda a: setattr(a, "oc_agent_host", "http://collector:55678"),
            "EmojivotoArgs.oc_agent_host",
        ),
        (
            lambda a: setattr(a, "ingress_controller_namespace", "Ingress_NGINX"),
            "EmojivotoArgs.ingress_controller_namespace",
        ),
    ],
)
def test_bad_arguments_are_refused_naming_the_argument(
    change: Callable[[EmojivotoArgs], None], field: str
) -> None:
    def program() -> None:
        args = EmojivotoArgs(
            profile="dev", settings=EmojivotoSettings(), control_plane=control_plane_stand_in()
        )
        change(args)
        Emojivoto("emojivoto", args)

    graph = record(program)
    assert isinstance(graph.error, ValueError), graph.error
    assert str(graph.error).startswith(field), graph.error
