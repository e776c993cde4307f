"""CPU and memory the program asks the cluster for, read from the recorded graph. Pure.

Two sources, both as the program sets them:

- **Typed workloads** the program writes itself (Deployment, StatefulSet, DaemonSet, Pod):
  every container's `resources` x replicas (a DaemonSet x `nodes`).
- **Helm charts**: the chart values in the graph, read at the paths `CHARTS` lists for each
  chart. The table is the mapping "which pods does this chart run, how many, with which
  containers, and which values key sizes each container"; it also names the
  `components.sizing.SIZES` row each container is meant to get (`role`), so a test can check
  the values still carry that row. A container whose values key is unset counts as unsized
  (zero, listed in `Footprint.unsized`), unless the chart has a non-empty default, which
  `default` gives.

**Linkerd proxies** are added per meshed pod with the control-plane chart's `proxy.resources`
(or a chart's own per-component proxy override, as viz has). A pod is meshed when its namespace
is annotated `linkerd.io/inject: enabled` (Namespace or NamespacePatch written by the program),
when its pod template says so, or when the chart injects its own proxies (the control plane and
viz do). Since Linkerd 2.20 the proxy is a native sidecar, so its requests add to the pod's like
any container's. Without the CNI plugin every meshed pod also gets the `linkerd-init` init
container, which the pinned chart sizes with the same `proxy.resources` as the proxy
(`charts/partials/templates/_proxy-init.tpl`; older charts had a separate `proxyInit.resources`).

**Init containers** count the way the scheduler counts them: a pod's effective request is the
larger of the sum of its containers (sidecars included) and its largest init container (an
app's init container runs beside the already started proxy). Where an init container wins,
the difference is one extra line, `(init containers)`, so sums over lines stay pod totals.

Left out: CronJobs and Jobs (Linkerd's daily heartbeat), which do not run in steady state.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

# --- Quantities ------------------------------------------------------------------------------

_CPU = re.compile(r"^([0-9.]+)(m?)$")
_MEM = re.compile(r"^([0-9.]+)([KMGTPE]i?|k|m)?$")
_MEM_UNITS = {
    None: 1,
    "k": 10**3,
    "K": 10**3,
    "M": 10**6,
    "G": 10**9,
    "T": 10**12,
    "P": 10**15,
    "E": 10**18,
    "Ki": 2**10,
    "Mi": 2**20,
    "Gi": 2**30,
    "Ti": 2**40,
    "Pi": 2**50,
    "Ei": 2**60,
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
    """Values path of a switch for this container alone; empty: always there."""
    enabled_default: bool = True
    init: bool = False
    """An init container (counted against the pod's sum, not added to it)."""


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
    enabled_default: bool = True,
    init: bool = False,
) -> ChartContainer:
    return ChartContainer(name, path, role, default, enabled, enabled_default, init)


def _memcached(allocated_mi: int) -> dict[str, Any]:
    """The loki chart's memcached block: request = limit = allocatedMemory x 1.2, 500m CPU
    (templates/memcached/_memcached-statefulset.tpl)."""
    memory = f"{round(allocated_mi * 1.2)}Mi"
    return {"requests": {"cpu": "500m", "memory": memory}, "limits": {"memory": memory}}


# Chart name → what it runs at the pinned versions (components/versions.py). Sources: each
# chart's templates and values.yaml at that version.
CHARTS: dict[str, ChartSpec] = {
    "linkerd-crds": ChartSpec(()),
    # With `linkerd.cni`: templates/cni-plugin.yaml, a DaemonSet in the uninjected `linkerd-cni`
    # namespace (its repair controller, off by default, is not counted).
    "linkerd2-cni": ChartSpec(
        (
            ChartWorkload(
                "linkerd-cni",
                (_c("install-cni", "resources", "linkerd-cni"),),
                controller_default="daemonset",
            ),
        )
    ),
    # With issuer `external` (components/external_issuer.py): templates/{deployment,
    # webhook-deployment,cainjector-deployment}.yaml; not meshed (the injector skips them).
    "cert-manager": ChartSpec(
        (
            ChartWorkload(
                "cert-manager",
                (_c("cert-manager-controller", "resources", "cert-manager"),),
                replicas="replicaCount",
            ),
            ChartWorkload(
                "cert-manager-webhook",
                (_c("cert-manager-webhook", "webhook.resources", "cert-manager-webhook"),),
                replicas="webhook.replicaCount",
            ),
            ChartWorkload(
                "cert-manager-cainjector",
                (
                    _c(
                        "cert-manager-cainjector",
                        "cainjector.resources",
                        "cert-manager-cainjector",
                    ),
                ),
                replicas="cainjector.replicaCount",
                enabled="cainjector.enabled",
            ),
        )
    ),
    # templates/deployment.yaml; the `defaultPackage` init container only when enabled.
    "trust-manager": ChartSpec(
        (
            ChartWorkload(
                "trust-manager",
                (_c("trust-manager", "resources", "trust-manager"),),
                replicas="replicaCount",
            ),
        )
    ),
    # CRDs and an admission policy only (templates/standard-gatewayapi-crds.yaml).
    "gateway-crds-helm": ChartSpec(()),
    # With exposure.installEnvoyGateway: templates/envoy-gateway-deployment.yaml, not meshed.
    # The Envoy pods the controller creates per Gateway are not the chart's, so not counted.
    "gateway-helm": ChartSpec(
        (
            ChartWorkload(
                "envoy-gateway",
                (_c("envoy-gateway", "deployment.envoyGateway.resources", "envoy-gateway"),),
                replicas="deployment.replicas",
            ),
        )
    ),
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
                    _c(
                        "loki-sc-rules",
                        "sidecar.resources",
                        "loki-sidecar",
                        enabled="sidecar.rules.enabled",
                    ),
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
            # Distributed mode (logging.mode): one workload per component, 0 replicas by
            # default (templates/<component>/workload.yaml).
            *(
                ChartWorkload(
                    f"loki-{component}",
                    (_c(component, f"{key}.resources", role),),
                    replicas=f"{key}.replicas",
                    replicas_default=0,
                )
                for key, component, role in (
                    ("distributor", "distributor", "loki-component"),
                    ("ingester", "ingester", "loki-ingester"),
                    ("querier", "querier", "loki-querier"),
                    ("queryFrontend", "query-frontend", "loki-component"),
                    ("queryScheduler", "query-scheduler", "loki-component"),
                    ("indexGateway", "index-gateway", "loki-component"),
                    ("compactor", "compactor", "loki-component"),
                )
            ),
        )
    ),
    # opensearch (tracing.store.inCluster): the node StatefulSet (`replicas`, forced to one by
    # singleNode) with its config-copying init container (templates/statefulset.yaml).
    "opensearch": ChartSpec(
        (
            ChartWorkload(
                "opensearch-cluster-master",
                (
                    _c("opensearch", "resources", "opensearch"),
                    _c("configfile", "initResources", "opensearch-init", init=True),
                ),
            ),
        )
    ),
    # seaweedfs (logging.s3.inCluster): the all-in-one Deployment alone; master, volume and
    # filer are off (templates/all-in-one/all-in-one-deployment.yaml).
    "seaweedfs": ChartSpec(
        (
            ChartWorkload(
                "seaweedfs-all-in-one",
                (_c("seaweedfs", "allInOne.resources", "seaweedfs"),),
                replicas="allInOne.replicas",
                enabled="allInOne.enabled",
                enabled_default=False,
            ),
        )
    ),
    # oauth2-proxy (components/auth.py): one Deployment; meshed by its pod annotation.
    "oauth2-proxy": ChartSpec(
        (
            ChartWorkload(
                "oauth2-proxy",
                (_c("oauth2-proxy", "resources", "oauth2-proxy"),),
                replicas="replicaCount",
            ),
        ),
        proxy=CHART_INJECTS,
    ),
    # grafana-community grafana: one Deployment; the k8s-sidecar containers only when their
    # `sidecar.*.enabled` switch is on (all off by default; they share `sidecar.resources`).
    "grafana": ChartSpec(
        (
            ChartWorkload(
                "grafana",
                (
                    _c("grafana", "resources", "grafana"),
                    *(
                        _c(
                            f"grafana-sc-{kind}",
                            "sidecar.resources",
                            "grafana-sidecar",
                            enabled=f"sidecar.{kind}.enabled",
                            enabled_default=False,
                        )
                        for kind in ("dashboards", "datasources", "alerts", "notifiers", "plugins")
                    ),
                    # templates/_pod.tpl: downloads `dashboards` entries at start; chowns the
                    # volume when persistence is on.
                    _c(
                        "download-dashboards",
                        "downloadDashboards.resources",
                        "grafana-init",
                        enabled="dashboards",
                        enabled_default=False,
                        init=True,
                    ),
                    _c(
                        "init-chown-data",
                        "initChownData.resources",
                        "grafana-init",
                        enabled="persistence.enabled",
                        enabled_default=False,
                        init=True,
                    ),
                ),
                replicas="replicas",
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
    """`chart <release>`, `<Kind> <name>` of a typed object, or `linkerd injection`."""
    role: str = ""
    """The SIZES row it is meant to have (chart containers and proxies), when known."""
    init_excess: bool = False
    """Not a container: what the pod's init containers ask for above its containers' sum."""

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
    """Running containers over all replicas (init containers not counted)."""
    unbounded_memory: int = 0
    """Containers (over all replicas) with no memory limit."""


@dataclass
class Footprint:
    lines: list[Line] = field(default_factory=list)
    pods: dict[str, int] = field(default_factory=dict)
    """Pods per namespace."""
    notes: list[str] = field(default_factory=list)

    @property
    def unsized(self) -> list[Line]:
        """Containers that run without requests the program set."""
        return [x for x in self.lines if not x.init_excess and not x.sizes.is_set]

    def totals(self, lines: Iterable[Line] | None = None, namespace: str | None = None) -> Totals:
        chosen = list(self.lines if lines is None else lines)
        cpu_r = mem_r = cpu_l = mem_l = n = un_mem = 0
        for line in chosen:
            t = line.total()
            cpu_r += t.requests.cpu_m or 0
            mem_r += t.requests.memory_b or 0
            cpu_l += t.limits.cpu_m or 0
            mem_l += t.limits.memory_b or 0
            if not line.init_excess:
                n += line.replicas
                un_mem += line.replicas if t.limits.memory_b is None else 0
        if namespace is not None:
            pods = self.pods.get(namespace, 0)
        elif lines is None:
            pods = sum(self.pods.values())
        else:
            pods = 0
        return Totals(cpu_r, mem_r, cpu_l, mem_l, pods, n, un_mem)

    def namespaces(self) -> dict[str, Totals]:
        names = sorted({line.namespace for line in self.lines})
        return {
            ns: self.totals([x for x in self.lines if x.namespace == ns], namespace=ns)
            for ns in names
        }


INJECT = "linkerd.io/inject"
CONTROL_PLANE_CHART = "linkerd-control-plane"
WORKLOAD_KINDS = ("Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Pod")


@dataclass(frozen=True)
class Mesh:
    """What Linkerd's injector adds to a meshed pod, as the program configures it."""

    proxy: Sizes
    proxy_init: Sizes | None
    """None with the CNI plugin (no init container)."""


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


def mesh_sizes(graph: Any) -> Mesh | None:
    """The proxy (and proxy-init) the control plane gives every injected pod; None without
    Linkerd's control plane in the graph."""
    for chart in _charts(graph):
        if chart.inputs.get("chart") == CONTROL_PLANE_CHART:
            values = chart.inputs.get("values") or {}
            proxy = parse_block(get_path(values, "proxy.resources"))
            return Mesh(proxy=proxy, proxy_init=None if values.get("cniEnabled") else proxy)
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


@dataclass
class _Pod:
    """One pod template being accounted: its containers and its init containers."""

    namespace: str
    workload: str
    replicas: int
    source: str
    containers: list[tuple[str, Sizes, str]] = field(default_factory=list)
    inits: list[tuple[str, Sizes, bool]] = field(default_factory=list)
    """(name, sizes, runs beside the proxy)."""


def _add(a: int | None, b: int | None) -> int:
    return (a or 0) + (b or 0)


def _pod_lines(pod: _Pod) -> list[Line]:
    lines = [
        Line(
            pod.namespace,
            pod.workload,
            name,
            pod.replicas,
            sizes,
            pod.source if name != "linkerd-proxy" else "linkerd injection",
            role,
        )
        for name, sizes, role in pod.containers
    ]
    if not pod.inits:
        return lines
    proxy = next((s for n, s, _ in pod.containers if n == "linkerd-proxy"), Sizes())
    sums = [0, 0, 0, 0]
    for _, sizes, _ in pod.containers:
        for i, v in enumerate(_flat(sizes)):
            sums[i] += v or 0
    peaks = [0, 0, 0, 0]
    for _, sizes, beside_proxy in pod.inits:
        need = [
            _add(a, b if beside_proxy else 0)
            for a, b in zip(_flat(sizes), _flat(proxy), strict=True)
        ]
        peaks = [max(p, n) for p, n in zip(peaks, need, strict=True)]
    excess = [max(0, p - s) for p, s in zip(peaks, sums, strict=True)]
    if any(excess):
        lines.append(
            Line(
                pod.namespace,
                pod.workload,
                "(init containers)",
                pod.replicas,
                Sizes(Amount(excess[0], excess[1]), Amount(excess[2], excess[3])),
                pod.source,
                init_excess=True,
            )
        )
    return lines


def _flat(s: Sizes) -> tuple[int | None, int | None, int | None, int | None]:
    return (s.requests.cpu_m, s.requests.memory_b, s.limits.cpu_m, s.limits.memory_b)


def footprint(graph: Any, nodes: int = 1) -> Footprint:
    """Requests and limits of everything the program runs, with `nodes` nodes for DaemonSets."""
    out = Footprint()
    meshed = meshed_namespaces(graph)
    mesh = mesh_sizes(graph)

    def finish(pod: _Pod, injected: bool, own_proxy: Sizes | None = None) -> None:
        if injected and mesh is not None:
            proxy = own_proxy if own_proxy is not None and own_proxy.is_set else mesh.proxy
            pod.containers.append(("linkerd-proxy", proxy, "linkerd-proxy"))
            if mesh.proxy_init is not None:
                pod.inits.insert(0, ("linkerd-init", mesh.proxy_init, False))
        out.pods[pod.namespace] = out.pods.get(pod.namespace, 0) + pod.replicas
        out.lines.extend(_pod_lines(pod))

    # --- Charts ---
    for chart in _charts(graph):
        inputs = chart.inputs
        # An OCI chart is given by reference (`oci://<registry>/<path>/<chart>`).
        name = str(inputs.get("chart", "")).rpartition("/")[2]
        release = inputs.get("name") or chart.name
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
            pod = _Pod(namespace, wl.name, count, f"chart {release}")
            injected = spec.proxy == CHART_INJECTS or namespace in meshed
            for c in wl.containers:
                if not _switch(values, c.enabled, c.enabled_default):
                    continue
                sizes = parse_block(get_path(values, c.values_path))
                if not sizes.is_set and c.default is not None:
                    sizes = parse_block(c.default)
                if c.init:
                    pod.inits.append((c.name, sizes, injected))
                else:
                    pod.containers.append((c.name, sizes, c.role))
            own = (
                parse_block(get_path(values, wl.proxy_values_path))
                if wl.proxy_values_path
                else None
            )
            finish(pod, injected, own)

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
            pod_spec, pod_meta, count = spec_, meta, 1
        else:
            template = spec_.get("template") or {}
            pod_spec, pod_meta = template.get("spec") or {}, template.get("metadata") or {}
            replicas = spec_.get("replicas")
            count = nodes if kind == "DaemonSet" else (1 if replicas is None else int(replicas))
        if count <= 0:
            continue
        inject = (pod_meta.get("annotations") or {}).get(INJECT)
        injected = inject == "enabled" or (namespace in meshed and inject != "disabled")
        pod = _Pod(namespace, name, count, f"{kind} {name}")
        for c in pod_spec.get("initContainers") or []:
            sizes = parse_block(c.get("resources"))
            if c.get("restartPolicy") == "Always":  # a native sidecar runs all along
                pod.containers.append((c.get("name", "?"), sizes, ""))
            else:
                pod.inits.append((c.get("name", "?"), sizes, injected))
        for c in pod_spec.get("containers") or []:
            pod.containers.append((c.get("name", "?"), parse_block(c.get("resources")), ""))
        finish(pod, injected)

    out.notes.append(f"DaemonSets counted on {nodes} node(s); Jobs and CronJobs left out")
    return out


def gib(b: int) -> str:
    return f"{b / GI:.2f} GiB"


def cores(m: int) -> str:
    return f"{m / 1000:.2f}"


def mode_totals(fp: Footprint, namespaces: Iterable[str]) -> Totals:
    """The requests and limits of the pods in `namespaces` (one storage mode's share)."""
    chosen = set(namespaces)
    t = fp.totals([x for x in fp.lines if x.namespace in chosen])
    return replace(t, pods=sum(fp.pods.get(ns, 0) for ns in chosen))
