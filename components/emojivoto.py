"""emojivoto v11, the Linkerd demo app, meshed, traced and locked down by Linkerd policy.

Written by hand after the upstream manifest (linkerd/website `run.linkerd.io/public/
emojivoto.yml`) and policy (`emojivoto-policy.yml`), with these differences:
- images come from `ghcr.io/buoyantio` (upstream moved them from docker.l5d.io to ghcr.io in
  June 2025, linkerd/website #1984); the tag is still v11, the last one any upstream
  manifest uses;
- vote-bot gets its own ServiceAccount (upstream runs it as `default`) so policy can name it;
- every container has requests, limits, probes and a locked-down security context;
- the policy is the modern one (Server v1beta3, AuthorizationPolicy, MeshTLSAuthentication)
  and trusts identities, not "anyone": only web calls emoji and voting, only vote-bot (and
  the ingress controller, or everyone when web is published through a Service) calls web,
  and only the metrics scraper reads the proxies' and the apps' metrics.

What the v11 images cannot do, and how the pod specs cope:
- no `USER` in the Dockerfiles, so they would run as root: we pick a uid (`APP_UID`);
- a shell-form ENTRYPOINT (`/bin/sh -c $SVC_NAME`), so PID 1 would be a shell that ignores
  SIGTERM: we run the binary directly (`command`), which makes `working_dir` matter, because
  web serves `dist/` and `web/favicon.ico` relative to its working directory;
- no gRPC health service: emoji and voting are probed on their HTTP metrics port;
- no rate setting in vote-bot (about one vote a second per replica): replicas are the knob;
- OpenCensus only (`OC_AGENT_HOST`, host:port, plaintext gRPC), not OTLP.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

import pulumi
import pulumi_kubernetes as k8s

from components import common, sizing, versions, viz
from components.config import DNS_LABEL, EmojivotoSettings
from components.mesh import PROXY_CONFIG_ANNOTATION
from components.multicluster import AppPlacement
from components.onboarding import (
    VIZ_PROMETHEUS_SERVICE_ACCOUNT,
    PolicySet,
    authorization,
    empty_policy,
    merge_policies,
    policy_resources,
    proxy_admin_policy,
    published_policy,
    server,
    service_account_refs,
)

NAMESPACE = "emojivoto"
PART_OF = {"app.kubernetes.io/part-of": "emojivoto"}

# --- Ports and Services (the single source every address below is built from) ----------------
WEB_PORT = 8080  # web's HTTP listener (WEB_PORT)
WEB_SERVICE_PORT = 80  # web-svc, as upstream
GRPC_PORT = 8080  # emoji/voting gRPC (GRPC_PORT)
PROM_PORT = 8801  # emoji/voting Prometheus metrics (PROM_PORT), the only HTTP they serve

WEB_SERVICE = "web-svc"
EMOJI_SERVICE = "emoji-svc"
VOTING_SERVICE = "voting-svc"

# Where the images keep their binaries and web's static files.
WORKDIR = "/usr/local/bin"
# Any uid but root and the proxy's 2102: proxy-init lets traffic from 2102 bypass the proxy.
APP_UID = 10001
LINKERD_PROXY_UID = 2102


@dataclass(frozen=True)
class Port:
    name: str
    port: int
    target: int


@dataclass(frozen=True)
class ServiceDef:
    name: str
    app: str
    ports: tuple[Port, ...]


SERVICES: dict[str, ServiceDef] = {
    s.name: s
    for s in (
        ServiceDef(WEB_SERVICE, "web-svc", (Port("http", WEB_SERVICE_PORT, WEB_PORT),)),
        ServiceDef(
            EMOJI_SERVICE,
            "emoji-svc",
            (Port("grpc", GRPC_PORT, GRPC_PORT), Port("prom", PROM_PORT, PROM_PORT)),
        ),
        ServiceDef(
            VOTING_SERVICE,
            "voting-svc",
            (Port("grpc", GRPC_PORT, GRPC_PORT), Port("prom", PROM_PORT, PROM_PORT)),
        ),
    )
}


@dataclass(frozen=True)
class Workload:
    """One Deployment: its ServiceAccount has the same name, its pods the `app` label."""

    name: str
    app: str
    image: str
    binary: str
    size: str
    """Row in `sizing.SIZES`."""
    ports: tuple[tuple[str, int], ...]
    probe: tuple[str, int] | None
    """(path, port) of the HTTP readiness and liveness probe; None for vote-bot (no listener)."""


WORKLOADS: dict[str, Workload] = {
    w.name: w
    for w in (
        # `/` is a static page with no backend call: ready means "web serves", not "emoji is up".
        Workload(
            "web",
            "web-svc",
            "emojivoto-web",
            "emojivoto-web",
            "emojivoto",
            (("http", WEB_PORT),),
            ("/", WEB_PORT),
        ),
        Workload(
            "emoji",
            "emoji-svc",
            "emojivoto-emoji-svc",
            "emojivoto-emoji-svc",
            "emojivoto",
            (("grpc", GRPC_PORT), ("prom", PROM_PORT)),
            ("/metrics", PROM_PORT),
        ),
        Workload(
            "voting",
            "voting-svc",
            "emojivoto-voting-svc",
            "emojivoto-voting-svc",
            "emojivoto",
            (("grpc", GRPC_PORT), ("prom", PROM_PORT)),
            ("/metrics", PROM_PORT),
        ),
        # vote-bot ships in the web image.
        Workload(
            "vote-bot", "vote-bot", "emojivoto-web", "emojivoto-vote-bot", "vote-bot", (), None
        ),
    )
}


# The `service.name` each v11 binary gives its spans (`ocagent.WithServiceName` in its
# cmd/server.go, BuoyantIO/emojivoto at e583a22 "Update to v11"): emoji calls itself `voting`,
# a slip upstream fixed only after v12 (3ea29c7, "tracing: use the right svc name").
TRACE_SERVICE_NAMES = {"web": "web", "emoji": "voting", "voting": "voting", "vote-bot": "vote-bot"}

# What the OpenCensus exporter of the v11 binaries (contrib.go.opencensus.io/exporter/ocagent,
# `resourceProtoFromEnv`) attaches to every span batch as resource labels: the OpenCensus
# resource variables, read through go.opencensus.io/resource `FromEnv`. The app cannot learn
# its pod, so the kubelet fills these from the Downward API and expands them into the labels.
RESOURCE_LABELS_ENV = "OC_RESOURCE_LABELS"
POD_NAME_ENV, POD_NAMESPACE_ENV = "MESHSTACK_POD_NAME", "MESHSTACK_POD_NAMESPACE"
DOWNWARD_ENV = {POD_NAME_ENV: "metadata.name", POD_NAMESPACE_ENV: "metadata.namespace"}
# Resource attribute → the env var holding it; the names Grafana's trace→logs maps to Loki's
# stream labels (grafana.TRACE_TO_LOG_TAGS).
RESOURCE_ATTRIBUTES = {"k8s.pod.name": POD_NAME_ENV, "k8s.namespace.name": POD_NAMESPACE_ENV}


def resource_labels() -> str:
    """`OC_RESOURCE_LABELS`: `key="$(VAR)"` pairs, which the kubelet expands from the env vars
    defined before it. Values are quoted, as the OpenCensus resource format allows. Pure."""
    return ",".join(f'{key}="$({var})"' for key, var in RESOURCE_ATTRIBUTES.items())


def image(workload: Workload) -> str:
    return f"{versions.EMOJIVOTO_REGISTRY}/{workload.image}:{versions.EMOJIVOTO_TAG}"


def service_address(service: str, port_name: str, cluster_domain: str) -> str:
    """host:port of one of our Services. Fully qualified: no walk down the DNS search list."""
    port = next(p.port for p in SERVICES[service].ports if p.name == port_name)
    return f"{common.svc_host(service, NAMESPACE, cluster_domain)}:{port}"


def environment(
    workload: str,
    cluster_domain: str,
    oc_agent_host: str,
    remote: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """The env of each binary, as upstream, with addresses built from `SERVICES`.

    `remote`: workload → the host it is reached at in another cluster (a multicluster mirror
    or federated Service, `multicluster.app_placement`); same port, since mirrors keep them.
    """
    env: dict[str, str] = {
        "web": {
            "WEB_PORT": str(WEB_PORT),
            "EMOJISVC_HOST": service_address(EMOJI_SERVICE, "grpc", cluster_domain),
            "VOTINGSVC_HOST": service_address(VOTING_SERVICE, "grpc", cluster_domain),
            # Relative to the working directory.
            "INDEX_BUNDLE": "dist/index_bundle.js",
        },
        "emoji": {"GRPC_PORT": str(GRPC_PORT), "PROM_PORT": str(PROM_PORT)},
        "voting": {"GRPC_PORT": str(GRPC_PORT), "PROM_PORT": str(PROM_PORT)},
        # The bot prepends http:// itself.
        "vote-bot": {"WEB_HOST": service_address(WEB_SERVICE, "http", cluster_domain)},
    }[workload]
    for target, host in (remote or {}).items():
        var = {"emoji": "EMOJISVC_HOST", "voting": "VOTINGSVC_HOST"}[target]
        if var in env:
            env[var] = f"{host}:{GRPC_PORT}"
    if oc_agent_host:
        # Unset, the exporter dials localhost:55678 and silently drops spans: tracing is off.
        env["OC_AGENT_HOST"] = oc_agent_host
    return env


def labels(workload: Workload) -> dict[str, str]:
    """Pod labels: upstream's `app`/`version` plus the recommended app.kubernetes.io set."""
    return {
        "app": workload.app,
        "version": versions.EMOJIVOTO_TAG,
        "app.kubernetes.io/name": workload.name,
        "app.kubernetes.io/version": versions.EMOJIVOTO_TAG,
        **PART_OF,
    }


def container_security() -> dict[str, Any]:
    """Restricted, plus a uid: the images have no USER, so runAsNonRoot alone would fail."""
    return {
        **common.restricted_container_security(),
        "runAsUser": APP_UID,
        "runAsGroup": APP_UID,
    }


def _probe(path: str, port: int, period: int, failures: int) -> dict[str, Any]:
    return {
        "httpGet": {"path": path, "port": port},
        "periodSeconds": period,
        "timeoutSeconds": 2,
        "failureThreshold": failures,
    }


def pod_template(
    workload: Workload,
    profile: str,
    cluster_domain: str,
    oc_agent_host: str,
    proxy_config: pulumi.Input[str] | None = None,
    remote: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """The Deployment's pod template, as a plain Kubernetes dict.

    `proxy_config` (`Mesh.proxy_config`) is set as a pod annotation, so the pods roll when
    what their Linkerd proxy is injected with changes.
    """
    env: list[dict[str, Any]] = [
        {"name": k, "value": v}
        for k, v in environment(workload.name, cluster_domain, oc_agent_host, remote).items()
    ]
    if oc_agent_host:
        # The spans' pod and namespace, so Grafana finds the logs of an app span (the
        # collector is meshed and cannot tell the pod from the connection). The Downward API
        # vars come first: `$(VAR)` expands only names defined earlier in the list.
        env += [
            {"name": var, "valueFrom": {"fieldRef": {"fieldPath": path}}}
            for var, path in DOWNWARD_ENV.items()
        ]
        env.append({"name": RESOURCE_LABELS_ENV, "value": resource_labels()})
    container: dict[str, Any] = {
        "name": workload.app,
        "image": image(workload),
        # The binary as PID 1 gets SIGTERM; the image's `sh -c` entrypoint would swallow it.
        "command": [f"{WORKDIR}/{workload.binary}"],
        "workingDir": WORKDIR,
        "env": env,
        "resources": sizing.k8s_resources(profile, workload.size),
        # Nothing writes to disk (votes live in memory, logs go to stdout), hence read-only.
        "securityContext": container_security(),
    }
    if workload.ports:
        container["ports"] = [
            {"name": n, "containerPort": p, "protocol": "TCP"} for n, p in workload.ports
        ]
    if workload.probe:
        path, port = workload.probe
        container["readinessProbe"] = _probe(path, port, period=5, failures=3)
        container["livenessProbe"] = _probe(path, port, period=10, failures=6)
    metadata: dict[str, Any] = {"labels": labels(workload)}
    if proxy_config is not None:
        metadata["annotations"] = {PROXY_CONFIG_ANNOTATION: proxy_config}
    return {
        "metadata": metadata,
        "spec": {
            "serviceAccountName": workload.name,
            # No Kubernetes API calls; Linkerd mounts its own projected token for identity.
            "automountServiceAccountToken": False,
            # Pod level only what the injected proxy and proxy-init also satisfy.
            "securityContext": {"seccompProfile": {"type": "RuntimeDefault"}},
            "containers": [container],
        },
    }


def deployment_spec(
    workload: Workload,
    replicas: int,
    profile: str,
    cluster_domain: str,
    oc_agent_host: str,
    proxy_config: pulumi.Input[str] | None = None,
    remote: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    return {
        "replicas": replicas,
        # Selectors are immutable: only the label that never changes.
        "selector": {"matchLabels": {"app": workload.app}},
        "template": pod_template(
            workload, profile, cluster_domain, oc_agent_host, proxy_config, remote
        ),
    }


# --- Policy ----------------------------------------------------------------------------------


def policy(
    ingress_controller_namespace: str = "",
    allow_unauthenticated_web: bool = False,
    cluster_domain: str = "cluster.local",
    prometheus_service_account: str = VIZ_PROMETHEUS_SERVICE_ACCOUNT,
    prometheus_namespace: str = viz.NAMESPACE,
    remote_callers: Sequence[str] = (),
    exported: Sequence[str] = (),
) -> PolicySet:
    """Who may call what in the namespace, on top of its default `deny`.

    - emoji and voting gRPC: web's identity only;
    - web HTTP: vote-bot; the ingress controller's identities when there is one; anyone when
      web is published through a LoadBalancer/NodePort Service (`allow_unauthenticated_web`);
    - emoji/voting metrics (8801) and every proxy's admin port: the metrics scraper only.
      Upstream leaves 8801 open to anyone; nothing but Prometheus has a reason to read it.

    Kubelet probes need nothing here: no Server has routes, so Linkerd authorizes the probe
    paths itself (from `policyController.probeNetworks`). The flip side: those exact paths
    (`/` on web, `/metrics` on 8801) answer anyone in the probe networks, the rest does not.
    """
    by_app = lambda app: {"matchLabels": {"app": app}}  # noqa: E731 - local shorthand
    p = empty_policy()
    p["Server"] |= {
        "emoji-grpc": server(by_app("emoji-svc"), "grpc", "gRPC"),
        "voting-grpc": server(by_app("voting-svc"), "grpc", "gRPC"),
        "web-http": server(by_app("web-svc"), "http", "HTTP/1"),
        "prom": server(
            {
                "matchExpressions": [
                    {"key": "app", "operator": "In", "values": ["emoji-svc", "voting-svc"]}
                ]
            },
            "prom",
            "HTTP/1",
        ),
    }
    p["MeshTLSAuthentication"] |= {
        "web": service_account_refs(("web", None)),
        "vote-bot": service_account_refs(("vote-bot", None)),
    }
    p["AuthorizationPolicy"] |= {
        "emoji-grpc-web": authorization("emoji-grpc", "MeshTLSAuthentication", "web"),
        "voting-grpc-web": authorization("voting-grpc", "MeshTLSAuthentication", "web"),
        "web-http-vote-bot": authorization("web-http", "MeshTLSAuthentication", "vote-bot"),
        # The scraper's MeshTLSAuthentication comes with `proxy_admin_policy` below.
        "prom-metrics-scraper": authorization("prom", "MeshTLSAuthentication", "metrics-scraper"),
    }
    if remote_callers and exported:
        # Peers' callers of the workloads placed here (multicluster.app_placement): the gateway
        # here in gateway mode, the peers' web itself pod to pod. Only on the gRPC port.
        p["MeshTLSAuthentication"]["remote-callers"] = {"identities": list(remote_callers)}
        for workload in exported:
            p["AuthorizationPolicy"][f"{workload}-grpc-remote-callers"] = authorization(
                f"{workload}-grpc", "MeshTLSAuthentication", "remote-callers"
            )
    admin = proxy_admin_policy(
        {"matchLabels": dict(PART_OF)}, prometheus_service_account, prometheus_namespace
    )
    published = published_policy(
        "web-http", ingress_controller_namespace, allow_unauthenticated_web, cluster_domain
    )
    return merge_policies(p, published, admin)


# --- Component -------------------------------------------------------------------------------

_HOST_PORT = re.compile(r"^[A-Za-z0-9.-]+:[0-9]{1,5}$")


@dataclass
class EmojivotoArgs:
    profile: str
    """`dev` or `prod`: the row of `sizing.SIZES` (`emojivoto`, `vote-bot`) to use."""
    settings: EmojivotoSettings
    """Replicas of the app and of the traffic generator."""
    control_plane: pulumi.Resource
    """The Linkerd control-plane chart. The namespace (and so everything in it) waits for it:
    pods created before the injector answers would run unmeshed and bypass every policy."""
    oc_agent_host: str = ""
    """OpenCensus agent host:port for app spans. Default: empty, no `OC_AGENT_HOST` (the
    proxies still send their own spans when Linkerd tracing is on)."""
    ingress_controller_namespace: str = ""
    """Namespace of a meshed ingress controller whose identities may call web. Default: empty,
    no ingress (`kubectl port-forward` arrives over the pod's loopback, which the proxy's
    inbound redirect leaves alone, so it needs no authorization)."""
    allow_unauthenticated_web: bool = False
    """Let any network reach web's HTTP port. Default: false; set it when web is published by a
    LoadBalancer or NodePort Service, where outside clients arrive without mesh identity."""
    cluster_domain: str = "cluster.local"
    """The cluster DNS domain, also Linkerd's trust domain (Service addresses, identities).
    Default: cluster.local, Kubernetes' and Linkerd's default."""
    prometheus_service_account: str = VIZ_PROMETHEUS_SERVICE_ACCOUNT
    """Identity allowed to scrape metrics. Default: viz's bundled Prometheus (`prometheus`)."""
    prometheus_namespace: str = viz.NAMESPACE
    """Namespace of `prometheus_service_account`. Default: linkerd-viz."""
    viz_chart: pulumi.Resource | None = None
    """The linkerd-viz chart: the namespace waits for it too, so the pods start after viz's
    tap-injector and can be tapped. Default: none, no wait (and no tap until restarted)."""
    proxy_config: pulumi.Input[str] | None = None
    """A digest of what proxies are injected with (`Mesh.proxy_config`): set on every pod
    template, so a change rolls the Deployments in the same `up`. Default: none."""
    cni: bool = False
    """The Linkerd CNI plugin is on (`MeshArgs.cni`): no pod here needs `linkerd-init`, so the
    namespace enforces PSA `restricted`. Default: false, `privileged` enforced and `restricted`
    warned and audited."""
    placement: AppPlacement = field(default_factory=AppPlacement)
    """Where each workload runs across linked clusters (`multicluster.app_placement`).
    Default: all here, nothing exported."""


class Emojivoto(pulumi.ComponentResource):
    """The emojivoto demo: web, emoji, voting and the vote-bot traffic generator.

    Children: the `emojivoto` namespace (injected, PSA privileged, default `deny`), one
    ServiceAccount and Deployment per workload, Services `web-svc`, `emoji-svc`, `voting-svc`,
    and the Linkerd policy of `policy()` as custom resources.

    Outputs: `namespace`, and `web_service` (the `web-svc` Service resource, for exposure).
    """

    namespace: pulumi.Output[str]
    web_service: k8s.core.v1.Service

    def __init__(
        self, name: str, args: EmojivotoArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("meshstack:apps:Emojivoto", name, None, opts)
        _validate(args)

        # Everything below takes the namespace name from here, so it all waits too.
        ns = common.meshed_namespace(
            NAMESPACE,
            f"{name}-namespace",
            self,
            args.control_plane,
            default_deny=True,
            extensions=[args.viz_chart] if args.viz_chart is not None else [],
            cni=args.cni,
        )
        ns_name = ns.metadata.name

        # --- Policy (first: pods come up into a namespace whose rules already exist) ---
        policies = policy_resources(
            name,
            ns_name,
            policy(
                args.ingress_controller_namespace,
                args.allow_unauthenticated_web,
                args.cluster_domain,
                args.prometheus_service_account,
                args.prometheus_namespace,
                args.placement.remote_callers,
                args.placement.exported,
            ),
            self,
            labels=PART_OF,
        )

        # --- Services ---
        services: dict[str, k8s.core.v1.Service] = {}
        owner = {w.app: w.name for w in WORKLOADS.values()}
        for svc in SERVICES.values():
            if owner[svc.app] in args.placement.absent:
                continue
            exported = owner[svc.app] in args.placement.exported
            services[svc.name] = k8s.core.v1.Service(
                f"{name}-{svc.name}",
                metadata=k8s.meta.v1.ObjectMetaArgs(
                    name=svc.name,
                    namespace=ns_name,
                    labels={**PART_OF, **(args.placement.export_labels if exported else {})},
                ),
                spec=k8s.core.v1.ServiceSpecArgs(
                    type="ClusterIP",
                    selector={"app": svc.app},
                    ports=[
                        k8s.core.v1.ServicePortArgs(
                            name=p.name, port=p.port, target_port=p.target, protocol="TCP"
                        )
                        for p in svc.ports
                    ],
                ),
                opts=pulumi.ResourceOptions(parent=self),
            )

        # --- Workloads ---
        for w in WORKLOADS.values():
            if w.name in args.placement.absent:
                continue
            sa = k8s.core.v1.ServiceAccount(
                f"{name}-{w.name}-sa",
                metadata=k8s.meta.v1.ObjectMetaArgs(
                    name=w.name, namespace=ns_name, labels=labels(w)
                ),
                automount_service_account_token=False,
                opts=pulumi.ResourceOptions(parent=self),
            )
            replicas = (
                args.settings.vote_bot_replicas if w.name == "vote-bot" else args.settings.replicas
            )
            k8s.apps.v1.Deployment(
                f"{name}-{w.name}",
                metadata=k8s.meta.v1.ObjectMetaArgs(
                    name=w.name, namespace=ns_name, labels=labels(w)
                ),
                # The spec is the API's own camelCase JSON (tested as such without mocks);
                # the provider passes keys it has no Python name for through unchanged, the
                # recorded-graph tests check what reaches the engine.
                spec=cast(
                    k8s.apps.v1.DeploymentSpecArgsDict,
                    deployment_spec(
                        w,
                        replicas,
                        args.profile,
                        args.cluster_domain,
                        args.oc_agent_host,
                        args.proxy_config,
                        args.placement.remote_hosts,
                    ),
                ),
                # The ServiceAccount must exist before a pod can be admitted; the policy so
                # the first requests between the apps are not denied while it is created.
                opts=pulumi.ResourceOptions(parent=self, depends_on=[sa, *policies]),
            )

        self.namespace = ns_name
        self.web_service = services[WEB_SERVICE]
        self.register_outputs({"namespace": self.namespace, "web_service": self.web_service})


def _validate(args: EmojivotoArgs) -> None:
    if args.profile not in sizing.SIZES:
        raise ValueError(
            f"EmojivotoArgs.profile: {args.profile!r}; expected one of {sorted(sizing.SIZES)}"
        )
    if args.settings.replicas < 1:
        raise ValueError(
            f"EmojivotoArgs.settings.replicas: {args.settings.replicas}; expected at least 1 "
            "(use vote_bot_replicas 0 to stop the traffic, or disable emojivoto)"
        )
    if args.settings.vote_bot_replicas < 0:
        raise ValueError(
            f"EmojivotoArgs.settings.vote_bot_replicas: {args.settings.vote_bot_replicas}; "
            "expected 0 or more"
        )
    if args.oc_agent_host and not _HOST_PORT.match(args.oc_agent_host):
        raise ValueError(
            f"EmojivotoArgs.oc_agent_host: {args.oc_agent_host!r}; expected host:port without "
            "a scheme, e.g. otel-collector.tracing.svc.cluster.local:55678"
        )
    if args.ingress_controller_namespace and not DNS_LABEL.match(args.ingress_controller_namespace):
        raise ValueError(
            f"EmojivotoArgs.ingress_controller_namespace: {args.ingress_controller_namespace!r}"
            " is not a namespace name"
        )
