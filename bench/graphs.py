"""Readiness stages and component dependencies of a recorded program graph. Pure functions.

Everything here reads a `tests.graph.Graph` (the program run under mocks) and nothing else: no
Pulumi runtime, no clock. `tests/test_budgets.py` asserts on these figures and `bench/run.py`
prints them.

How a `pulumi up` orders work: a resource is sent to the engine only once every resource it
depends on has finished, and a Kubernetes resource finishes when the provider's await logic
says it is ready. So the wall-clock time of an `up` is set by the longest chain of
dependencies between resources *that wait for readiness*; the ones that finish as soon as the
API server accepts them (Namespaces, ConfigMaps, Secrets, RBAC, policy custom resources,
certificates and keys made by pulumi-tls, passwords) only pass a dependency on.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from functools import cache
from typing import Any, Protocol

# --- What waits for readiness ----------------------------------------------------------------

# Types the provider awaits (pulumi-kubernetes `provider/pkg/await`). Remote components
# (v4 Chart, v2 ConfigFile) finish when every object they render is ready.
READINESS_TYPES = frozenset(
    {
        "kubernetes:helm.sh/v4:Chart",
        "kubernetes:helm.sh/v3:Chart",
        "kubernetes:helm.sh/v3:Release",
        "kubernetes:yaml/v2:ConfigFile",
        "kubernetes:yaml/v2:ConfigGroup",
        "kubernetes:yaml:ConfigFile",
        "kubernetes:yaml:ConfigGroup",
        "kubernetes:kustomize/v2:Directory",
        "kubernetes:apps/v1:Deployment",
        "kubernetes:apps/v1:StatefulSet",
        "kubernetes:apps/v1:DaemonSet",
        "kubernetes:apps/v1:ReplicaSet",
        "kubernetes:core/v1:ReplicationController",
        "kubernetes:core/v1:Pod",
        "kubernetes:batch/v1:Job",
        # Waits for an address from the ingress controller (and the backends' Endpoints).
        "kubernetes:networking.k8s.io/v1:Ingress",
        # Waits until Bound (or Pending, for a WaitForFirstConsumer class; pulumi-kubernetes#3130).
        "kubernetes:core/v1:PersistentVolumeClaim",
    }
)
SERVICE = "kubernetes:core/v1:Service"
SKIP_AWAIT = "pulumi.com/skipAwait"


class Resource(Protocol):
    """What these functions read of `tests.graph.Resource`."""

    urn: str
    type: str
    name: str
    parent: str
    dependencies: list[str]

    @property
    def inputs(self) -> dict[str, Any]: ...


class Graph(Protocol):
    """What these functions read of `tests.graph.Graph`."""

    resources: list[Any]


def is_readiness_wait(res: Resource) -> bool:
    """True when `pulumi up` waits for `res` to become ready, not just to be accepted.

    A Service waits for a ready endpoint when it selects pods, and for an address when it is a
    LoadBalancer; without a selector (or as ExternalName) it is done once created. The
    `pulumi.com/skipAwait: "true"` annotation turns any wait off.
    """
    inputs = res.inputs
    annotations = (inputs.get("metadata") or {}).get("annotations") or {}
    if str(annotations.get(SKIP_AWAIT, "")).lower() == "true":
        return False
    if res.type == SERVICE:
        spec = inputs.get("spec") or {}
        if spec.get("type") == "ExternalName":
            return False
        return bool(spec.get("selector")) or spec.get("type") == "LoadBalancer"
    if res.type in ("kubernetes:helm.sh/v4:Chart", "kubernetes:yaml/v2:ConfigFile"):
        return not inputs.get("skipAwait", False)
    return res.type in READINESS_TYPES


# --- The dependency structure ----------------------------------------------------------------


class _Index:
    """URN lookups and each resource's effective dependencies, built once per graph."""

    def __init__(self, graph: Graph) -> None:
        self.resources: list[Resource] = list(graph.resources)
        self.by_urn: dict[str, Resource] = {r.urn: r for r in self.resources}
        self.children: dict[str, list[str]] = {}
        for r in self.resources:
            if r.parent in self.by_urn:
                self.children.setdefault(r.parent, []).append(r.urn)

    def ancestors(self, urn: str) -> list[str]:
        out = []
        cur = self.by_urn[urn].parent
        while cur in self.by_urn:
            out.append(cur)
            cur = self.by_urn[cur].parent
        return out

    def descendants(self, urn: str) -> list[str]:
        out, todo = [], list(self.children.get(urn, []))
        while todo:
            cur = todo.pop()
            out.append(cur)
            todo.extend(self.children.get(cur, []))
        return out

    def waits_on(self, urn: str) -> set[str]:
        """The resources `urn` cannot be sent to the engine before.

        Its own dependencies plus its ancestors' (a child is registered only after its parent,
        and a component registers only after its own dependencies). A dependency on a local
        component stands for every resource inside it, as the Python SDK expands it.
        """
        out: set[str] = set()
        for holder in (urn, *self.ancestors(urn)):
            for dep in self.by_urn[holder].dependencies:
                if dep not in self.by_urn:
                    continue  # the provider or the stack: nothing to wait for
                out.add(dep)
                if not is_readiness_wait(self.by_urn[dep]):
                    out.update(self.descendants(dep))
        out.discard(urn)
        return out


def readiness_dependencies(graph: Graph) -> dict[str, set[str]]:
    """For every readiness wait, the readiness waits it must see finished first.

    Direct ones only: a chain through resources that do not wait (a Namespace that depends on
    the control-plane chart, say) is followed to the readiness wait at its end.
    """
    index = _Index(graph)

    @cache
    def nearest(urn: str) -> frozenset[str]:
        found: set[str] = set()
        for dep in index.waits_on(urn):
            if is_readiness_wait(index.by_urn[dep]):
                found.add(dep)
            else:
                found.update(nearest(dep))
        return frozenset(found)

    return {r.urn: set(nearest(r.urn)) for r in index.resources if is_readiness_wait(r)}


def critical_path(graph: Graph) -> list[Resource]:
    """The longest chain of readiness waits, first stage first.

    Its length is the number of sequential readiness stages of a `pulumi up` from an empty
    cluster; ties go to the chain that comes first in registration order.
    """
    deps = readiness_dependencies(graph)
    by_urn = {r.urn: r for r in graph.resources}
    order = {r.urn: i for i, r in enumerate(graph.resources)}

    @cache
    def longest(urn: str) -> tuple[str, ...]:
        best: tuple[str, ...] = ()
        for dep in sorted(deps[urn], key=order.__getitem__):
            chain = longest(dep)
            if len(chain) > len(best):
                best = chain
        return (*best, urn)

    path: tuple[str, ...] = ()
    for urn in sorted(deps, key=order.__getitem__):
        chain = longest(urn)
        if len(chain) > len(path):
            path = chain
    return [by_urn[u] for u in path]


def stage_of(graph: Graph) -> dict[str, int]:
    """The readiness stage (1-based) each readiness wait starts in, at the earliest."""
    deps = readiness_dependencies(graph)

    @cache
    def stage(urn: str) -> int:
        return 1 + max((stage(d) for d in deps[urn]), default=0)

    return {urn: stage(urn) for urn in deps}


# --- Components ------------------------------------------------------------------------------

# The project's own component types are `meshstack:<module>:<Name>`; components are told apart
# by `<Name>` (Mesh, Viz, Tracing, ...).
PACKAGE = "meshstack:"


def component_name(type_: str) -> str:
    return type_.rsplit(":", 1)[-1]


def owner(graph: Graph, res: Resource) -> str | None:
    """The `<Name>` of the innermost project component `res` belongs to (or is)."""
    index = _Index(graph)
    return _owner(index, res.urn)


def _owner(index: _Index, urn: str) -> str | None:
    for cur in (urn, *index.ancestors(urn)):
        if index.by_urn[cur].type.startswith(PACKAGE):
            return component_name(index.by_urn[cur].type)
    return None


def component_dependencies(graph: Graph) -> dict[tuple[str, str], list[tuple[str, str]]]:
    """Cross-component dependencies: (dependent, dependency) → the resource pairs behind it.

    Read from every resource's own recorded dependencies (explicit `depends_on` and those that
    flow from inputs), each side attributed to its innermost project component. Resources
    outside every component (the provider) are left out.
    """
    index = _Index(graph)
    out: dict[tuple[str, str], list[tuple[str, str]]] = {}
    for res in index.resources:
        mine = _owner(index, res.urn)
        if mine is None:
            continue
        for dep in res.dependencies:
            if dep not in index.by_urn:
                continue
            theirs = _owner(index, dep)
            if theirs is None or theirs == mine:
                continue
            out.setdefault((mine, theirs), []).append((res.urn, dep))
    return out


def disallowed(
    edges: Iterable[tuple[str, str]], allowed: Mapping[str, Iterable[str]]
) -> list[tuple[str, str]]:
    """The (dependent, dependency) pairs `allowed` does not list, sorted."""
    return sorted((a, b) for a, b in edges if b not in set(allowed.get(a, ())))
