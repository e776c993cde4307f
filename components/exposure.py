"""How users reach the four things they open: the Linkerd dashboard, Grafana, Jaeger, the app.

`plan` is pure: from the settings alone it knows every host, URL and port-forward command,
so other components (viz's Host-header check, Grafana's root URL) get known strings and wait
on nothing. The `Exposure` component then creates what the mode needs:

- `port-forward`: nothing; the outputs are the `kubectl port-forward` commands and local URLs;
- `ingress`: one Ingress per target (TLS from a Secret or a cert-manager ClusterIssuer);
- `gateway`: one Gateway (a listener per host, TLS as for ingress) of the configured
  GatewayClass, and one HTTPRoute per target beside its Service;
- `loadBalancer` / `nodePort`: one extra Service per target selecting the chart's pods, so the
  charts' own ClusterIP Services (which other components address) stay as they are.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from components import auth, common, emojivoto, grafana, tracing, viz
from components.config import Settings


@dataclass(frozen=True)
class Target:
    """A Service users open, and how each mode reaches it."""

    namespace: str
    service: str
    port: int
    local_port: int
    """`kubectl port-forward` local port."""
    node_port: int
    """Fixed NodePort, so a kind cluster can map it to the host (see the Makefile)."""
    host_prefix: str
    """Ingress host is `<host_prefix>.<domain>`."""
    selector: dict[str, str]
    """Pod labels of the chart's workload (for the extra LoadBalancer/NodePort Service)."""
    target_port: int | str
    path: str = ""
    """The path users open under the root (the URL's path). Default: the root itself."""


# Names, ports and pod labels come from the modules that create the Services (their chart
# release names and the charts' own selector labels); only the local ports, NodePorts and host
# prefixes are exposure's own.
TARGETS: dict[str, Target] = {
    "dashboard": Target(
        viz.NAMESPACE,
        viz.DASHBOARD_SERVICE,
        viz.DASHBOARD_PORT,
        local_port=8084,
        node_port=30084,
        host_prefix="linkerd",
        selector={"linkerd.io/extension": "viz", "component": "web"},
        target_port=viz.DASHBOARD_PORT,
    ),
    "grafana": Target(
        grafana.NAMESPACE,
        grafana.SERVICE,
        grafana.SERVICE_PORT,
        local_port=3000,
        node_port=30300,
        host_prefix="grafana",
        selector={
            "app.kubernetes.io/name": "grafana",
            "app.kubernetes.io/instance": grafana.RELEASE,
        },
        target_port=grafana.CONTAINER_PORT,
    ),
    "jaeger": Target(
        tracing.NAMESPACE,
        tracing.JAEGER_SERVICE,
        tracing.JAEGER_QUERY_PORT,
        local_port=16686,
        node_port=30686,
        host_prefix="jaeger",
        selector={
            "app.kubernetes.io/name": "jaeger",
            "app.kubernetes.io/instance": tracing.JAEGER_RELEASE,
        },
        target_port=tracing.JAEGER_QUERY_PORT,
        path=f"{tracing.JAEGER_BASE_PATH}/",
    ),
    "app": Target(
        emojivoto.NAMESPACE,
        emojivoto.WEB_SERVICE,
        emojivoto.WEB_SERVICE_PORT,
        local_port=8080,
        node_port=30080,
        host_prefix="emojivoto",
        selector={"app": emojivoto.SERVICES[emojivoto.WEB_SERVICE].app},
        target_port=emojivoto.WEB_PORT,
    ),
}


# The targets oauth2-proxy signs users in to when `exposure.auth` is not `none` (Grafana has
# its own sign-in; the demo app is public).
PROTECTED = ("dashboard", "jaeger")


def behind_proxy(key: str, t: Target) -> Target:
    """The target as users reach it with sign-in on: the oauth2-proxy release in the UI's
    namespace (components/auth.py), which proxies to the UI's own Service `t`."""
    return replace(
        t,
        service=auth.release(key),
        port=auth.SERVICE_PORT,
        selector=auth.selector(key),
        target_port=auth.TARGET_PORT,
    )


def upstream(t: Target, cluster_domain: str) -> str:
    """The UI's in-cluster URL, which its oauth2-proxy proxies to."""
    return f"http://{common.svc_host(t.service, t.namespace, cluster_domain)}:{t.port}"


@dataclass(frozen=True)
class Plan:
    mode: str
    targets: dict[str, Target]
    domain: str = ""
    tls_secret: str = ""
    cluster_issuer: str = ""
    ingress_class: str = ""
    ingress_namespace: str = ""
    gateway_class: str = ""
    gateway_namespace: str = ""
    """Where the Gateway and its data plane run (gateway mode)."""
    enabled: frozenset[str] = field(default_factory=frozenset)
    cluster_domain: str = "cluster.local"
    """The cluster's DNS domain, for the in-cluster names of the targets' Services."""

    @property
    def scheme(self) -> str:
        return "https" if self.tls_secret or self.cluster_issuer else "http"

    def host(self, key: str) -> str:
        """The external host name of a target (ingress and gateway; empty otherwise)."""
        if self.mode not in ("ingress", "gateway") or key not in self.enabled:
            return ""
        return f"{self.targets[key].host_prefix}.{self.domain}"

    def url(self, key: str) -> str:
        """The URL users open, when it is known before deploying (not for loadBalancer)."""
        if key not in self.enabled:
            return ""
        t = self.targets[key]
        if self.mode == "port-forward":
            return f"http://localhost:{t.local_port}{t.path}"
        if self.mode == "nodePort":
            return f"http://localhost:{t.node_port}{t.path}"
        if self.mode in ("ingress", "gateway"):
            return f"{self.scheme}://{self.host(key)}{t.path}"
        return ""

    def port_forward_command(self, key: str) -> str:
        t = self.targets[key]
        return f"kubectl -n {t.namespace} port-forward svc/{t.service} {t.local_port}:{t.port}"

    @property
    def ingress_controller_namespace(self) -> str:
        """Where the meshed proxies that forward users' requests run, whose identities the UIs
        admit: the ingress controller's namespace, or the Gateway's data plane's."""
        if self.mode == "ingress":
            return self.ingress_namespace
        if self.mode == "gateway":
            return self.gateway_namespace
        return ""


def plan(settings: Settings) -> Plan:
    enabled = {"dashboard"}
    if settings.grafana.enabled:
        enabled.add("grafana")
    if settings.tracing.enabled:
        enabled.add("jaeger")
    if settings.emojivoto.enabled:
        enabled.add("app")
    e = settings.exposure
    targets = {
        key: behind_proxy(key, t) if settings.auth.enabled and key in PROTECTED else t
        for key, t in TARGETS.items()
    }
    return Plan(
        mode=e.mode,
        targets=targets,
        domain=e.domain,
        tls_secret=e.tls_secret,
        cluster_issuer=e.cluster_issuer,
        ingress_class=e.ingress_class,
        ingress_namespace=e.ingress_namespace,
        gateway_class=e.gateway_class,
        gateway_namespace=e.gateway_namespace,
        enabled=frozenset(enabled),
        cluster_domain=settings.cluster_domain,
    )


def ingress_spec(p: Plan, key: str) -> dict[str, Any]:
    """The Ingress for one target, as a plain dict (validated against the Kubernetes schema)."""
    t = p.targets[key]
    host = p.host(key)
    annotations: dict[str, str] = {}
    if p.cluster_issuer:
        annotations["cert-manager.io/cluster-issuer"] = p.cluster_issuer
    # No controller-specific annotations: the controller is the cluster's. It must route to the
    # Service, not pod IPs, for Linkerd to apply its policy (README, "ingress"); the dashboard
    # sees the public Host, which viz's enforcedHostRegexp admits.
    spec: dict[str, Any] = {
        "ingressClassName": p.ingress_class,
        "rules": [
            {
                "host": host,
                "http": {
                    "paths": [
                        {
                            "path": "/",
                            "pathType": "Prefix",
                            "backend": {"service": {"name": t.service, "port": {"number": t.port}}},
                        }
                    ]
                },
            }
        ],
    }
    if p.scheme == "https":
        spec["tls"] = [{"hosts": [host], "secretName": p.tls_secret or f"{t.host_prefix}-tls"}]
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": {
            "name": f"meshstack-{key}",
            "namespace": t.namespace,
            "labels": dict(common.MANAGED_BY),
            "annotations": annotations,
        },
        "spec": spec,
    }


# The one Gateway every HTTPRoute attaches to, in `Plan.gateway_namespace`.
GATEWAY_NAME = "meshstack"


def tls_secret_name(p: Plan, key: str) -> str:
    """The Secret a host's certificate is in: the given one, or one cert-manager fills."""
    return p.tls_secret or f"{p.targets[key].host_prefix}-tls"


# The ports the Gateway's listeners open: HTTPS, and HTTP (with TLS only to redirect to it).
HTTP_PORT, HTTPS_PORT = 80, 443


def redirect_listener(key: str) -> str:
    """The plain-HTTP listener of a host served over HTTPS, whose only route redirects."""
    return f"{key}-http"


def gateway_spec(p: Plan) -> dict[str, Any]:
    """The Gateway: listeners per enabled target's host, as a plain dict.

    A listener per host (not one wildcard listener) because cert-manager's Gateway support
    issues a certificate per listener hostname. Only the targets' namespaces may attach routes.
    With TLS each host also gets a plain-HTTP listener whose route redirects to https (and
    where cert-manager's HTTP-01 solver attaches its own, more specific, route).
    """
    https = p.scheme == "https"
    listeners = []
    for key in sorted(p.enabled):
        allowed = {
            "namespaces": {
                "from": "Selector",
                "selector": {
                    "matchLabels": {"kubernetes.io/metadata.name": p.targets[key].namespace}
                },
            }
        }
        listener: dict[str, Any] = {
            "name": key,
            "hostname": p.host(key),
            "port": HTTPS_PORT if https else HTTP_PORT,
            "protocol": "HTTPS" if https else "HTTP",
            "allowedRoutes": allowed,
        }
        if https:
            listener["tls"] = {
                "mode": "Terminate",
                "certificateRefs": [{"kind": "Secret", "name": tls_secret_name(p, key)}],
            }
        listeners.append(listener)
        if https:
            listeners.append(
                {
                    "name": redirect_listener(key),
                    "hostname": p.host(key),
                    "port": HTTP_PORT,
                    "protocol": "HTTP",
                    "allowedRoutes": allowed,
                }
            )
    annotations: dict[str, str] = {}
    if p.cluster_issuer:
        annotations["cert-manager.io/cluster-issuer"] = p.cluster_issuer
    return {
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "Gateway",
        "metadata": {
            "name": GATEWAY_NAME,
            "namespace": p.gateway_namespace,
            "labels": dict(common.MANAGED_BY),
            "annotations": annotations,
        },
        "spec": {"gatewayClassName": p.gateway_class, "listeners": listeners},
    }


def _route(p: Plan, key: str, name: str, section: str, rule: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "HTTPRoute",
        "metadata": {
            "name": name,
            "namespace": p.targets[key].namespace,
            "labels": dict(common.MANAGED_BY),
        },
        "spec": {
            "parentRefs": [
                {
                    "group": "gateway.networking.k8s.io",
                    "kind": "Gateway",
                    "name": GATEWAY_NAME,
                    "namespace": p.gateway_namespace,
                    "sectionName": section,
                }
            ],
            "hostnames": [p.host(key)],
            "rules": [rule],
        },
    }


def http_route_spec(p: Plan, key: str) -> dict[str, Any]:
    """The HTTPRoute for one target, beside its Service (no ReferenceGrant needed), bound to
    that target's listener, as a plain dict."""
    t = p.targets[key]
    return _route(
        p, key, f"meshstack-{key}", key, {"backendRefs": [{"name": t.service, "port": t.port}]}
    )


def redirect_route_spec(p: Plan, key: str) -> dict[str, Any]:
    """With TLS: the route on the host's plain-HTTP listener, a permanent redirect to the same
    host and path over https (no backend: Envoy answers it)."""
    redirect = {"scheme": "https", "port": HTTPS_PORT, "statusCode": 301}
    return _route(
        p,
        key,
        f"meshstack-{key}-redirect",
        redirect_listener(key),
        {"filters": [{"type": "RequestRedirect", "requestRedirect": redirect}]},
    )


def service_spec(p: Plan, key: str) -> dict[str, Any]:
    """The extra LoadBalancer or NodePort Service for one target, as a plain dict."""
    t = p.targets[key]
    port: dict[str, Any] = {"name": "http", "port": t.port, "targetPort": t.target_port}
    if p.mode == "nodePort":
        port["nodePort"] = t.node_port
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {
            "name": f"meshstack-{key}",
            "namespace": t.namespace,
            "labels": dict(common.MANAGED_BY),
        },
        "spec": {
            "type": "NodePort" if p.mode == "nodePort" else "LoadBalancer",
            "selector": dict(t.selector),
            "ports": [port],
        },
    }


@dataclass
class ExposureArgs:
    plan: Plan
    """What to expose and how: the pure result of `plan(settings)`."""
    namespaces: dict[str, pulumi.Input[str]]
    """Each enabled target's namespace, as an output of the resource that creates it: the
    Ingress or Service waits for the namespace only, not for the chart behind it (its own
    readiness check waits for the backend), so exposure adds no readiness stage."""
    gateway_namespace: pulumi.Input[str] = ""
    """Gateway mode: the Gateway's namespace, as an output of what creates it when the stack
    does. Default: `plan.gateway_namespace` (a namespace the cluster already has)."""
    gateway_after: list[pulumi.Resource] = field(default_factory=list)
    """Gateway mode: what the Gateway waits for (the Gateway API CRDs; the GatewayClass the
    stack installs). Default: nothing."""


class Exposure(pulumi.ComponentResource):
    """Ingresses, a Gateway and HTTPRoutes, or Services that expose the dashboards, and their
    URLs.

    Outputs: `urls` (target → URL), `port_forward_commands` (target → command; port-forward
    mode only, empty otherwise).
    """

    urls: pulumi.Output[dict[str, str]]
    port_forward_commands: pulumi.Output[dict[str, str]]

    def __init__(
        self, name: str, args: ExposureArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("meshstack:exposure:Exposure", name, None, opts)
        p = args.plan
        urls: dict[str, pulumi.Input[str]] = {}
        commands: dict[str, str] = {}
        gateway = None
        if p.mode == "gateway":
            obj = gateway_spec(p)
            gateway = k8s.apiextensions.CustomResource(
                f"{name}-gateway",
                api_version=obj["apiVersion"],
                kind=obj["kind"],
                metadata={
                    **obj["metadata"],
                    "namespace": args.gateway_namespace or p.gateway_namespace,
                },
                spec=obj["spec"],
                # Its kind's CRD and its GatewayClass come first (ExposureArgs.gateway_after).
                opts=pulumi.ResourceOptions(parent=self, depends_on=args.gateway_after),
            )
        for key in sorted(p.enabled):
            child = pulumi.ResourceOptions(parent=self)
            if p.mode == "port-forward":
                commands[key] = p.port_forward_command(key)
                urls[key] = p.url(key)
            elif p.mode == "ingress":
                obj = ingress_spec(p, key)
                k8s.networking.v1.Ingress(
                    f"{name}-{key}-ingress",
                    metadata={**obj["metadata"], "namespace": args.namespaces[key]},
                    spec=obj["spec"],
                    opts=child,
                )
                urls[key] = p.url(key)
            elif p.mode == "gateway":
                routes = {"route": http_route_spec(p, key)}
                if p.scheme == "https":
                    routes["redirect"] = redirect_route_spec(p, key)
                for role, obj in routes.items():
                    k8s.apiextensions.CustomResource(
                        f"{name}-{key}-{role}",
                        api_version=obj["apiVersion"],
                        kind=obj["kind"],
                        metadata={**obj["metadata"], "namespace": args.namespaces[key]},
                        spec=obj["spec"],
                        # A route whose parent is missing is only reported in its status;
                        # created after the Gateway, it is accepted on the first reconcile.
                        opts=pulumi.ResourceOptions(
                            parent=self, depends_on=[gateway] if gateway else []
                        ),
                    )
                urls[key] = p.url(key)
            else:
                obj = service_spec(p, key)
                svc = k8s.core.v1.Service(
                    f"{name}-{key}-service",
                    metadata={**obj["metadata"], "namespace": args.namespaces[key]},
                    spec=obj["spec"],
                    opts=child,
                )
                urls[key] = p.url(key) if p.mode == "nodePort" else _lb_url(svc, p.targets[key])
        self.urls = pulumi.Output.all(**urls).apply(dict) if urls else pulumi.Output.from_input({})
        self.port_forward_commands = pulumi.Output.from_input(commands)
        self.register_outputs(
            {"urls": self.urls, "port_forward_commands": self.port_forward_commands}
        )


def _lb_url(svc: k8s.core.v1.Service, t: Target) -> pulumi.Output[str]:
    """http://<address>:<port> from the Service status, once the load balancer is assigned."""

    def pick(status: Any) -> str:
        ingress = ((status or {}).get("load_balancer") or {}).get("ingress") or []
        if not ingress:
            return ""
        address = ingress[0].get("hostname") or ingress[0].get("ip") or ""
        return f"http://{address}:{t.port}{t.path}" if address else ""

    return svc.status.apply(lambda s: pick(_as_dict(s)))


def _as_dict(value: Any) -> Any:
    """Typed output objects (ServiceStatus, ...) as plain snake_case dicts."""
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    if isinstance(value, dict):
        return {k: _as_dict(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_as_dict(v) for v in value]
    return {k: _as_dict(v) for k, v in vars(value).items() if not k.startswith("_")}
