"""Pod Security: which level each namespace enforces, per profile, and that the pods the stack
runs in a `restricted` namespace (or one that warns at `restricted`) pass it.

With the Linkerd CNI plugin (prod's default) meshed pods need nothing from the host, so their
namespaces enforce `restricted`; without it `linkerd-init` needs NET_ADMIN and NET_RAW, so they
enforce `privileged` and warn and audit at `restricted`. Only the plugin's DaemonSet and Alloy
(hostPath volumes) keep `privileged` either way.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
import yaml

from components import common, mesh
from tests.charts import VARIANTS, Stack, stack, suite_marks
from tests.graph import Graph, plain, run_program

NAMESPACE = "kubernetes:core/v1:Namespace"
NAMESPACE_PATCH = "kubernetes:core/v1:NamespacePatch"
ENFORCE = common.PSA_ENFORCE
WARN = "pod-security.kubernetes.io/warn"
AUDIT = "pod-security.kubernetes.io/audit"

# Namespaces whose pods need the host (hostPath volumes): the only ones left `privileged`.
HOST_LEVEL = {mesh.CNI_NAMESPACE, "logging"}
# Meshed namespaces of the stack, and the team namespaces of the stack files.
MESHED = {"linkerd-viz", "tracing", "grafana", "emojivoto", "payments", "checkout", "team-a"}
# Envoy Gateway's namespace: not meshed as a namespace, but its Envoy pods are (the EnvoyProxy
# annotates them), so they get linkerd-init without the plugin.
MESHED |= {"envoy-gateway-system"}


def pod_security(g: Graph) -> dict[str, dict[str, str]]:
    """Namespace name → its PSA labels, as the program writes them (created or patched)."""
    out: dict[str, dict[str, str]] = {}
    for res in [*g.of_type(NAMESPACE), *g.of_type(NAMESPACE_PATCH)]:
        meta = plain(res.inputs["metadata"])
        out[meta["name"]] = {
            k: v for k, v in (meta.get("labels") or {}).items() if k.startswith("pod-security.")
        }
    return out


def adopted(g: Graph) -> set[str]:
    return {plain(r.inputs["metadata"])["name"] for r in g.of_type(NAMESPACE_PATCH)}


def run(stack_name: str, **overrides: Any) -> Graph:
    g = run_program(stack_name, overrides)
    assert g.error is None, g.error
    return g


CASES = {
    "dev": ("dev", {}),
    "prod": ("prod", {}),
    "dev-cni": ("dev", {"linkerd": {"cni": True}}),
    "prod-no-cni": ("prod", {"linkerd": {"cni": False}}),
}


@pytest.fixture(scope="module", params=sorted(CASES))
def case(request: pytest.FixtureRequest) -> tuple[bool, Graph]:
    name, overrides = CASES[request.param]
    # A created and an adopted team namespace in every case.
    teams = {
        "onboarding": {"namespaces": [{"name": "payments"}, {"name": "checkout", "adopt": True}]}
    }
    g = run(name, **teams, **overrides)
    cni = overrides.get("linkerd", {}).get("cni", name == "prod")
    return cni, g


def test_meshed_namespaces_enforce_restricted_with_cni_and_warn_at_it_without(
    case: tuple[bool, Graph],
) -> None:
    cni, g = case
    labels = pod_security(g)
    meshed = (MESHED & set(labels)) - adopted(g)
    assert {"linkerd-viz", "payments"} <= meshed
    for ns in meshed:
        if cni:
            assert labels[ns][ENFORCE] == "restricted", (ns, labels[ns])
        else:
            assert labels[ns] == {ENFORCE: "privileged", WARN: "restricted", AUDIT: "restricted"}, (
                ns,
                labels[ns],
            )


def test_only_the_host_level_namespaces_and_linkerd_without_cni_are_privileged(
    case: tuple[bool, Graph],
) -> None:
    cni, g = case
    privileged = {ns for ns, psa in pod_security(g).items() if psa.get(ENFORCE) == "privileged"}
    # Linkerd's own namespace as upstream labels it (templates/namespace.yaml): restricted
    # with the plugin, privileged without (its pods get linkerd-init too).
    allowed = HOST_LEVEL | ({"linkerd"} if not cni else set())
    # Without the plugin, meshed namespaces too (the test above holds them to warn/audit).
    unexplained = {ns for ns in privileged - allowed if cni or ns not in MESHED}
    assert not unexplained, unexplained
    assert ("linkerd-cni" in pod_security(g)) is cni
    assert pod_security(g)["linkerd"][ENFORCE] == ("restricted" if cni else "privileged")


def test_an_adopted_namespace_is_never_given_a_looser_level_than_restricted(
    case: tuple[bool, Graph],
) -> None:
    cni, g = case
    labels = pod_security(g)["checkout"]
    assert "checkout" in adopted(g)
    # Restricted is the strictest level: the unforced patch either matches the team's value or
    # stops the `up` at a field-manager conflict. Privileged is never written.
    assert set(labels.values()) == {"restricted"}, labels
    assert (ENFORCE in labels) is cni


# --- The rendered pods -------------------------------------------------------------------------

WORKLOADS = {"Deployment", "StatefulSet", "DaemonSet", "Job", "CronJob", "ReplicaSet", "Pod"}


def pod_spec(obj: dict[str, Any]) -> dict[str, Any]:
    spec = obj["spec"]
    if obj["kind"] == "Pod":
        return dict(spec)
    if obj["kind"] == "CronJob":
        return dict(spec["jobTemplate"]["spec"]["template"]["spec"])
    return dict(spec["template"]["spec"])


def container_problems(container: dict[str, Any], pod_context: dict[str, Any]) -> Iterator[str]:
    """What the `restricted` Pod Security Standard refuses in one container (v1.31+)."""
    sc = container.get("securityContext") or {}
    name = container["name"]
    if not sc.get("runAsNonRoot", pod_context.get("runAsNonRoot")):
        yield f"{name}: runAsNonRoot is not true"
    if sc.get("runAsUser", pod_context.get("runAsUser")) == 0:
        yield f"{name}: runs as uid 0"
    if sc.get("allowPrivilegeEscalation") is not False:
        yield f"{name}: allowPrivilegeEscalation is not false"
    if sc.get("privileged"):
        yield f"{name}: privileged"
    caps = sc.get("capabilities") or {}
    if "ALL" not in (caps.get("drop") or []):
        yield f"{name}: does not drop ALL capabilities"
    if set(caps.get("add") or []) - {"NET_BIND_SERVICE"}:
        yield f"{name}: adds {caps['add']}"
    seccomp = sc.get("seccompProfile") or pod_context.get("seccompProfile") or {}
    if seccomp.get("type") not in ("RuntimeDefault", "Localhost"):
        yield f"{name}: no RuntimeDefault seccomp profile"


def pod_problems(spec: dict[str, Any]) -> list[str]:
    out = [f"host namespace {k}" for k in ("hostNetwork", "hostPID", "hostIPC") if spec.get(k)]
    out += [f"hostPath volume {v['name']}" for v in spec.get("volumes") or [] if "hostPath" in v]
    pod_context = spec.get("securityContext") or {}
    for c in [*(spec.get("initContainers") or []), *(spec.get("containers") or [])]:
        out += container_problems(c, pod_context)
        out += [f"{c['name']}: hostPort" for p in c.get("ports") or [] if p.get("hostPort")]
    return out


def workloads(s: Stack) -> Iterator[tuple[str, str, dict[str, Any]]]:
    """(namespace, "<kind>/<name>", object) of every pod-making object, rendered by a chart or
    written by the program."""
    for _, obj in s.objects():
        if obj["kind"] in WORKLOADS:
            meta = obj["metadata"]
            yield meta.get("namespace", ""), f"{obj['kind']}/{meta['name']}", obj
    for res in s.graph.kubernetes_objects():
        kind = res.type.rpartition(":")[2]
        if kind in WORKLOADS:
            obj = {"kind": kind, **plain(res.inputs)}
            meta = obj["metadata"]
            yield meta.get("namespace", ""), f"{kind}/{meta['name']}", obj
        if kind == "EnvoyProxy":
            # The Envoy pods the controller makes at run time, in its own namespace: no chart
            # renders them, so they are built from what the EnvoyProxy sets (pod and Envoy
            # container; the shutdown-manager sidecar keeps upstream's restricted default).
            proxy = plain(res.inputs)
            deployment = proxy["spec"]["provider"]["kubernetes"].get("envoyDeployment") or {}
            pod = deployment.get("pod") or {}
            container = deployment.get("container") or {}
            spec = {
                "securityContext": pod.get("securityContext") or {},
                "containers": [{"name": "envoy", **container}],
            }
            namespace = proxy["metadata"]["namespace"]
            yield (
                namespace,
                f"EnvoyProxy/{proxy['metadata']['name']} pods",
                {
                    "kind": "Pod",
                    "spec": spec,
                },
            )


def chart_suite(test: Callable[..., None]) -> Callable[..., None]:
    for mark in suite_marks():
        test = mark(test)
    return test


def rendered(variant: str) -> Stack:
    s = stack(variant)
    problems = [f"{r}: {c.error}" for r, c in s.charts.items() if c.error]
    if problems:
        pytest.fail("\n".join(problems), pytrace=False)
    return s


@chart_suite
@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_pods_in_namespaces_held_to_restricted_pass_it(variant: str) -> None:
    s = rendered(variant)
    held = {
        ns
        for ns, psa in pod_security(s.graph).items()
        if "restricted" in (psa.get(ENFORCE), psa.get(WARN))
    }
    assert held, "no namespace is held to restricted"
    failing = {
        f"{ns} {what}": problems
        for ns, what, obj in workloads(s)
        if ns in held and (problems := pod_problems(pod_spec(obj)))
    }
    assert not failing, failing


@chart_suite
@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_every_injected_proxy_passes_restricted_whatever_the_app_beside_it(variant: str) -> None:
    s = rendered(variant)
    (config,) = [
        o
        for o in s.charts["linkerd-control-plane"].objects
        if o["kind"] == "ConfigMap" and o["metadata"]["name"] == "linkerd-config"
    ]
    values = yaml.safe_load(config["data"]["values"])
    # The injector renders every proxy from these values; a set securityContext is used as it
    # is, so the capabilities of the app's first container are not copied in.
    proxy = {"name": "linkerd-proxy", "securityContext": values["proxy"]["securityContext"]}
    assert list(container_problems(proxy, {})) == []
    assert proxy["securityContext"]["runAsUser"] == values["proxy"]["uid"]


@chart_suite
def test_grafanas_claim_needs_no_root_init_container() -> None:
    s = rendered("prod")
    assert s.graph.charts()["grafana"].inputs["values"]["persistence"]["enabled"] is True
    (deployment,) = [o for o in s.charts["grafana"].objects if o["kind"] == "Deployment"]
    spec = pod_spec(deployment)
    assert "init-chown-data" not in {c["name"] for c in spec.get("initContainers") or []}
    context = spec["securityContext"]
    assert context["fsGroup"] == context["runAsGroup"] and context["runAsNonRoot"] is True
