"""CPU and memory the program asks the cluster for, read from the recorded graph. Pure.

Two sources, both as the program sets them:

- **Typed workloads** the program writes itself (Deployment, StatefulSet, DaemonSet, Pod):
  every container's `resources` × replicas (a DaemonSet × `nodes`).
- **Helm charts**: the chart values in the graph, read at the paths `CHARTS` lists for each
  chart. The table is the mapping "which pods does this chart run, how many, with which
  containers, and which values key sizes each container"; it also names the
  `components.sizing.SIZES` row each container is meant to get (`role`), so a test can check
  the values still carry that row. A container whose values key is unset counts as unsized
  (zero, listed in `Footprint.unsized`), unless the chart has a non-empty default, which
  `default` gives.

**Linkerd proxies** are added per meshed pod with the control-plane chart's `proxy.resources`
(or a chart's own per-component `proxy.resources` override, as viz has). A pod is meshed when
its namespace is annotated `linkerd.io/inject: enabled` (Namespace or NamespacePatch written by
the program), when its pod template says so, or when the chart injects its own proxies (the
control plane and viz do). Since Linkerd 2.20 the proxy is a native sidecar, so its requests
add to the pod's like any container's.

Left out, on purpose: init containers (`linkerd-init`, Grafana's init): a pod's effective
request is the larger of its init containers and the sum of the others, and every init
container here is smaller than that sum; CronJobs and Jobs (Linkerd's daily heartbeat), which
do not run in steady state.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

# --- Quantities ------------------------------------------------------------------------------

_CPU = re.compile(r"^([0-9.]+)(m?)$")
_MEM = re.compile(r"^([0-9.]+)([KMGTPE]i?|k|m)?$")
_MEM_UNITS = {
    None: 1, "k": 10**3, "K": 10**3, "M": 10**6, "G": 10**9, "T": 10**12, "P": 10**15,
    "E": 10**18, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60,
}
MI = 2**20
GI = 2**30


def cpu_millis(value: Any) -> int:
    """A Kubernetes CPU quantity in millicores: "250m" → 250, "1" → 1000, 0.5 → 500."""
    match = _CPU.match(str(value).strip())
    if not match:
        raise ValueError(f"not a CPU quantity: {value!r}")
    number = float(match.group(1))
    return round(number if match.group(2) else number * 1000)


def memory_bytes(value: Any) -> int:
    """A Kubernetes memory quantity in bytes: "128Mi" → 134217728, "1G" → 10**9."""
    match = _MEM.match(str(value).strip())
    if not match:
        raise ValueError(f"not a memory quantity: {value!r}")
    if match.group(2) == "m":  # milli-bytes: legal, and always a mistake
        return round(float(match.group(1)) / 1000)
    return round(float(match.group(1)) * _MEM_UNITS[match.group(2)])


@dataclass(frozen=True)
class Amount:
    """Requests or limits of one container. `None` means "not set" (a limit: unbounded)."""

    cpu_m: int | None = None
    memory_b: int | None = None


@dataclass(frozen=True)
class Sizes:
    requests: Amount = Amount()
    limits: Amount = Amount()

    @property
    def is_set(self) -> bool:
        return self.requests.cpu_m is not None or self.requests.memory_b is not None


def parse_block(block: Any) -> Sizes:
    """A resources block in either form the charts take.

    Kubernetes: `{"requests": {"cpu", "memory"}, "limits": {...}}`; Linkerd's charts:
    `{"cpu": {"request", "limit"}, "memory": {...}}`. Empty strings count as unset.
    """
    if not isinstance(block, Mapping) or not block:
        return Sizes()

    def pick(section: Any, key: str, parse: Any) -> int | None:
        value = (section or {}).get(key) if isinstance(section, Mapping) else None
        return parse(value) if value not in (None, "") else None

    if "requests" in block or "limits" in block:
        req, lim = block.get("requests"), block.get("limits")
        return Sizes(
            Amount(pick(req, "cpu", cpu_millis), pick(req, "memory", memory_bytes)),
            Amount(pick(lim, "cpu", cpu_millis), pick(lim, "memory", memory_bytes)),
        )
    cpu, mem = block.get("cpu"), block.get("memory")
    return Sizes(
        Amount(pick(cpu, "request", cpu_millis), pick(mem, "request", memory_bytes)),
        Amount(pick(cpu, "limit", cpu_millis), pick(mem, "limit", memory_bytes)),
    )


def get_path(values: Any, path: str) -> Any:
    """`values["a"]["b"]` for "a.b"; None when any step is missing."""
    cur = values
    for part in path.split("."):
        if not isinstance(cur, Mapping) or part not in cur:
            return None
        cur = cur[part]
    return cur


# --- The chart table -------------------------------------------------------------------------

# How a chart's pods get a Linkerd proxy:
CHART_INJECTS = "chart"  # the chart renders or annotates its own proxies (Linkerd's charts)
NAMESPACE_INJECTS = "namespace"  # meshed if its namespace is annotated for injection


@dataclass(frozen=True)
class ChartContainer:
    name: str
    values_path: str
    """Where the chart reads this container's resources block."""
    role: str
    """The `components.sizing.SIZES` row the program means it to get."""
    default: Mapping[str, Any] | None = None
    """The chart's own block when the values leave it unset (None: the chart sets none)."""
    enabled: str = ""
    """Values path of a switch for this container alone (default on); empty: always there."""


@dataclass(frozen=True)
class ChartWorkload:
    name: str
    containers: tuple[ChartContainer, ...]
    replicas: int | str = 1
    """A fixed count, or the values path of the count."""
    replicas_default: int = 1
    """The chart's count when `replicas` is a path the values leave unset."""
    enabled: str = ""
    """Values path of an on/off switch; empty: always rendered."""
    enabled_default: bool = True
    controller: str = ""
    """Values path of the controller kind (`daemonset` means one pod per node)."""
    controller_default: str = "deployment"
    proxy_values_path: str = ""
    """Values path of this workload's own proxy resources, when the chart has one."""


@dataclass(frozen=True)
class ChartSpec:
    workloads: tuple[ChartWorkload, ...]
    proxy: str = NAMESPACE_INJECTS


def _c(
    name: str,
    path: str,
    role: str,
    default: Mapping[str, Any] | None = None,
    enabled: str = "",
) -> ChartContainer:
    return ChartContainer(name, path, role, default, enabled)


def _memcached(allocated_mi: int) -> dict[str, Any]:
    """The loki chart's memcached block: request = limit = allocatedMemory × 1.2, 500m CPU
    (templates/memcached/_memcached-statefulset.tpl)."""
    memory = f"{round(allocated_mi * 1.2)}Mi"
    return {"requests": {"cpu": "500m", "memory": memory}, "limits": {"memory": memory}}


# Chart name → what it runs at the pinned versions (components/versions.py). Sources: each
# chart's templates and values.yaml; /work/shared/reference/{linkerd,observability}.md.
CHARTS: dict[str, ChartSpec] = {
    "linkerd-crds": ChartSpec(()),
    # templates/{identity,destination,proxy-injector}.yaml; `controllerReplicas` for all three.
    "linkerd-control-plane": ChartSpec(
        (
            ChartWorkload(
                "linkerd-identity",
                (_c("identity", "identityResources", "linkerd-identity"),),
                replicas="controllerReplicas",
                proxy_values_path="identityProxyResources",
            ),
            ChartWorkload(
                "linkerd-destination",
                (
                    _c("destination", "destinationResources", "linkerd-destination"),
                    _c("sp-validator", "spValidatorResources", "linkerd-destination"),
                    _c("policy", "policyController.resources", "linkerd-destination"),
                ),
                replicas="controllerReplicas",
                proxy_values_path="destinationProxyResources",
            ),
            ChartWorkload(
                "linkerd-proxy-injector",
                (_c("proxy-injector", "proxyInjectorResources", "linkerd-proxy-injector"),),
                replicas="controllerReplicas",
                proxy_values_path="proxyInjectorProxyResources",
            ),
        ),
        proxy=CHART_INJECTS,
    ),
    # viz templates/{metrics-api,tap,tap-injector,web,prometheus}.yaml: every pod annotated
    # `linkerd.io/inject: enabled`, with `<component>.proxy.resources` overrides.
    "linkerd-viz": ChartSpec(
        (
            ChartWorkload(
                "metrics-api",
                (_c("metrics-api", "metricsAPI.resources", "viz-component"),),
                replicas="metricsAPI.replicas",
                proxy_values_path="metricsAPI.proxy.resources",
            ),
            ChartWorkload(
                "tap",
                (_c("tap", "tap.resources", "viz-component"),),
                replicas="tap.replicas",
                proxy_values_path="tap.proxy.resources",
            ),
            ChartWorkload(
                "tap-injector",
                (_c("tap-injector", "tapInjector.resources", "viz-component"),),
                replicas="tapInjector.replicas",
                proxy_values_path="tapInjector.proxy.resources",
            ),
            ChartWorkload(
                "web",
                (_c("web", "dashboard.resources", "viz-component"),),
                replicas="dashboard.replicas",
                proxy_values_path="dashboard.proxy.resources",
            ),
            ChartWorkload(
                "prometheus",
                (_c("prometheus", "prometheus.resources", "viz-prometheus"),),
                enabled="prometheus.enabled",
                proxy_values_path="prometheus.proxy.resources",
            ),
        ),
        proxy=CHART_INJECTS,
    ),
    # jaeger 4.x: one all-in-one Deployment (templates/allinone-deploy.yaml).
    "jaeger": ChartSpec(
        (
            ChartWorkload(
                "jaeger",
                (_c("jaeger", "jaeger.resources", "jaeger"),),
                replicas="jaeger.replicas",
                enabled="jaeger.enabled",
            ),
        )
    ),
    # opentelemetry-collector: `mode` picks Deployment/StatefulSet (replicaCount) or DaemonSet.
    "opentelemetry-collector": ChartSpec(
        (
            ChartWorkload(
                "otel-collector",
                (_c("opentelemetry-collector", "resources", "otel-collector"),),
                replicas="replicaCount",
                controller="mode",
            ),
        )
    ),
    # grafana-community loki, Monolithic mode: the single-binary StatefulSet (with the rules
    # sidecar when on) and the optional pods the chart turns on by default. The simple-scalable
    # read/write/backend targets render only in the other deployment modes.
    "loki": ChartSpec(
        (
            ChartWorkload(
                "loki",
                (
                    _c("loki", "singleBinary.resources", "loki"),
                    _c("loki-sc-rules", "sidecar.resources", "loki-sidecar",
                       enabled="sidecar.rules.enabled"),
                ),
                replicas="singleBinary.replicas",
                replicas_default=0,
            ),
            ChartWorkload(
                "loki-chunks-cache",
                (_c("memcached", "chunksCache.resources", "", default=_memcached(8192)),),
                enabled="chunksCache.enabled",
            ),
            ChartWorkload(
                "loki-results-cache",
                (_c("memcached", "resultsCache.resources", "", default=_memcached(1024)),),
                enabled="resultsCache.enabled",
            ),
            ChartWorkload(
                "loki-gateway",
                (_c("nginx", "gateway.resources", ""),),
                replicas="gateway.replicas",
                enabled="gateway.enabled",
            ),
            ChartWorkload(
                "loki-canary",
                (_c("loki-canary", "lokiCanary.resources", ""),),
                enabled="lokiCanary.enabled",
                controller="lokiCanary.kind",
                controller_default="daemonset",
            ),
            ChartWorkload(
                "minio",
                (_c("minio", "minio.resources", ""),),
                enabled="minio.enabled",
                enabled_default=False,
            ),
        )
    ),
    # grafana alloy: `controller.type` (default daemonset); the config-reloader sidecar.
    "alloy": ChartSpec(
        (
            ChartWorkload(
                "alloy",
                (
                    _c("alloy", "alloy.resources", "alloy"),
                    _c(
                        "config-reloader",
                        "configReloader.resources",
                        "alloy-config-reloader",
                        default={"requests": {"cpu": "10m", "memory": "50Mi"}},
                        enabled="configReloader.enabled",
                    ),
                ),
                replicas="controller.replicas",
                controller="controller.type",
                controller_default="daemonset",
            ),
        )
    ),
}


# --- The footprint ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Line:
    """One container of one workload, over all its replicas."""

    namespace: str
    workload: str
    container: str
    replicas: int
    sizes: Sizes
    source: str
    """`chart <release>` or the URN-less `<Kind> <name>` of a typed object."""
    role: str = ""
    """The SIZES row it is meant to have (chart containers), when known."""

    def total(self) -> Sizes:
        def times(v: int | None) -> int | None:
            return None if v is None else v * self.replicas

        return Sizes(
            Amount(times(self.sizes.requests.cpu_m), times(self.sizes.requests.memory_b)),
            Amount(times(self.sizes.limits.cpu_m), times(self.sizes.limits.memory_b)),
        )


@dataclass(frozen=True)
class Totals:
    cpu_request_m: int = 0
    memory_request_b: int = 0
    cpu_limit_m: int = 0
    memory_limit_b: int = 0
    pods: int = 0
    containers: int = 0
    unbounded_cpu: int = 0
    """Containers (× replicas) with no CPU limit."""
    unbounded_memory: int = 0
    """Containers (× replicas) with no memory limit."""


@dataclass
class Footprint:
    lines: list[Line] = field(default_factory=list)
    pods: dict[str, int] = field(default_factory=dict)
    """Pods per namespace."""
    notes: list[str] = field(default_factory=list)

    @property
    def unsized(self) -> list[Line]:
        """Containers that run without requests the program set."""
        return [line for line in self.lines if not line.sizes.is_set]

    def totals(self, lines: Iterable[Line] | None = None, namespace: str | None = None) -> Totals:
        chosen = list(self.lines if lines is None else lines)
        cpu_r = mem_r = cpu_l = mem_l = n = un_cpu = un_mem = 0
        for line in chosen:
            t = line.total()
            cpu_r += t.requests.cpu_m or 0
            mem_r += t.requests.memory_b or 0
            cpu_l += t.limits.cpu_m or 0
            mem_l += t.limits.memory_b or 0
            n += line.replicas
            un_cpu += line.replicas if t.limits.cpu_m is None else 0
            un_mem += line.replicas if t.limits.memory_b is None else 0
        pods = (
            self.pods.get(namespace, 0) if namespace is not None else sum(self.pods.values())
        )
        return Totals(cpu_r, mem_r, cpu_l, mem_l, pods, n, un_cpu, un_mem)

    def namespaces(self) -> dict[str, Totals]:
        names = sorted({line.namespace for line in self.lines})
        return {
            ns: self.totals([x for x in self.lines if x.namespace == ns], namespace=ns)
            for ns in names
        }


INJECT = "linkerd.io/inject"
CONTROL_PLANE_CHART = "linkerd-control-plane"
WORKLOAD_KINDS = ("Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Pod")


def meshed_namespaces(graph: Any) -> set[str]:
    """Namespaces the program annotates `linkerd.io/inject: enabled` (created or patched)."""
    out = set()
    for res in graph.resources:
        kind = res.type.rsplit(":", 1)[-1]
        if res.type.startswith("kubernetes:core/v1:") and kind in ("Namespace", "NamespacePatch"):
            meta = res.inputs.get("metadata") or {}
            if (meta.get("annotations") or {}).get(INJECT) == "enabled":
                out.add(meta.get("name") or res.name)
    return out


def _charts(graph: Any) -> list[Any]:
    return [r for r in graph.resources if r.type == "kubernetes:helm.sh/v4:Chart"]


def proxy_sizes(graph: Any) -> Sizes | None:
    """The proxy resources the control plane gives every injected pod; None without Linkerd."""
    for chart in _charts(graph):
        if chart.inputs.get("chart") == CONTROL_PLANE_CHART:
            return parse_block(get_path(chart.inputs.get("values") or {}, "proxy.resources"))
    return None


def _switch(values: Mapping[str, Any], path: str, default: bool = True) -> bool:
    if not path:
        return True
    value = get_path(values, path)
    return default if value is None else bool(value)


def pod_count(values: Mapping[str, Any], wl: ChartWorkload, nodes: int) -> int:
    """How many pods of `wl` the chart runs with `values` on a cluster of `nodes` nodes."""
    if not _switch(values, wl.enabled, wl.enabled_default):
        return 0
    kind = (get_path(values, wl.controller) if wl.controller else None) or wl.controller_default
    if str(kind).lower() == "daemonset":
        return nodes
    if isinstance(wl.replicas, int):
        return wl.replicas
    value = get_path(values, wl.replicas)
    return wl.replicas_default if value is None else int(value)


def footprint(graph: Any, nodes: int = 1) -> Footprint:
    """Requests and limits of everything the program runs, with `nodes` nodes for DaemonSets."""
    out = Footprint()
    meshed = meshed_namespaces(graph)
    proxy = proxy_sizes(graph)

    def add_pods(namespace: str, count: int) -> None:
        out.pods[namespace] = out.pods.get(namespace, 0) + count

    def add_proxy(namespace: str, workload: str, count: int, sizes: Sizes | None) -> None:
        if proxy is None:
            return  # no control plane, nothing injects
        chosen = sizes if sizes is not None and sizes.is_set else proxy
        out.lines.append(
            Line(namespace, workload, "linkerd-proxy", count, chosen, "linkerd injection",
                 "linkerd-proxy")
        )

    # --- Charts ---
    for chart in _charts(graph):
        inputs = chart.inputs
        name, release = inputs.get("chart", ""), inputs.get("name") or chart.name
        namespace = inputs.get("namespace") or "default"
        values = inputs.get("values") or {}
        spec = CHARTS.get(name)
        if spec is None:
            out.notes.append(f"chart {name} (release {release}) is not in bench/footprint.CHARTS")
            continue
        for wl in spec.workloads:
            count = pod_count(values, wl, nodes)
            if count <= 0:
                continue
            add_pods(namespace, count)
            for c in wl.containers:
                if not _switch(values, c.enabled):
                    continue
                block = get_path(values, c.values_path)
                sizes = parse_block(block)
                if not sizes.is_set and c.default is not None:
                    sizes = parse_block(c.default)
                out.lines.append(
                    Line(namespace, wl.name, c.name, count, sizes, f"chart {release}", c.role)
                )
            if spec.proxy == CHART_INJECTS or namespace in meshed:
                own = (
                    parse_block(get_path(values, wl.proxy_values_path))
                    if wl.proxy_values_path
                    else None
                )
                add_proxy(namespace, wl.name, count, own)

    # --- Typed workloads ---
    for res in graph.resources:
        kind = res.type.rsplit(":", 1)[-1]
        if not (res.type.startswith("kubernetes:") and res.custom and kind in WORKLOAD_KINDS):
            continue
        inputs = res.inputs
        meta = inputs.get("metadata") or {}
        namespace = meta.get("namespace") or "default"
        name = meta.get("name") or res.name
        spec_ = inputs.get("spec") or {}
        if kind == "Pod":
            pod, count = spec_, 1
            pod_meta = meta
        else:
            template = spec_.get("template") or {}
            pod, pod_meta = template.get("spec") or {}, template.get("metadata") or {}
            replicas = spec_.get("replicas")
            count = nodes if kind == "DaemonSet" else (1 if replicas is None else int(replicas))
        if count <= 0:
            continue
        add_pods(namespace, count)
        for container in pod.get("containers") or []:
            out.lines.append(
                Line(namespace, name, container.get("name", "?"), count,
                     parse_block(container.get("resources")), f"{kind} {name}")
            )
        inject = (pod_meta.get("annotations") or {}).get(INJECT)
        if inject == "enabled" or (namespace in meshed and inject != "disabled"):
            add_proxy(namespace, name, count, None)

    out.notes.append(
        f"DaemonSets counted on {nodes} node(s); init containers, Jobs and CronJobs left out"
    )
    return out


def gib(b: int) -> str:
    return f"{b / GI:.2f} GiB"


def cores(m: int) -> str:
    return f"{m / 1000:.2f}"
