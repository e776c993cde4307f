"""linkerd-viz: the dashboard with the golden metrics, its Prometheus and tap."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from components import common, config, sizing, versions
from components.identity import Webhook, WebhookCert
from components.mesh import PROXY_CONFIG_ANNOTATION

NAMESPACE = "linkerd-viz"
# Service and port of the dashboard (viz `web.yaml`) and of the bundled Prometheus.
DASHBOARD_SERVICE, DASHBOARD_PORT = "web", 8084
PROMETHEUS_SERVICE, PROMETHEUS_PORT = "prometheus", 9090
# The viz Server that guards Prometheus; clients such as Grafana need an AuthorizationPolicy
# against it (viz `prometheus-policy.yaml`).
PROMETHEUS_SERVER = "prometheus-admin"

VIZ_WEBHOOKS = {"tap": ("tap", "tap"), "tap-injector": ("tapInjector", "tap-injector")}

# IP literals: a DNS-rebinding attack needs a DNS name, so allowing addresses keeps the
# protection while letting a LoadBalancer or NodePort address through.
_IP_LITERAL = r"(\d{1,3}\.){3}\d{1,3}"
# Any DNS name: for a load balancer whose address is a name the cloud assigns at creation (AWS),
# unknown when the chart is rendered. Only behind sign-in: a rebinding page cannot carry the
# sign-in cookie of the real host, so the check has nothing left to protect there.
_DNS_NAME = r"[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)*"


def webhooks() -> list[Webhook]:
    return [Webhook(role, svc, NAMESPACE) for role, (_, svc) in VIZ_WEBHOOKS.items()]


def _literal(host: str) -> str:
    """A DNS name as a regexp matching itself (names hold no other metacharacter)."""
    return host.replace(".", r"\.")


def enforced_host_regexp(
    external_host: str, allow_ip: bool, cluster_domain: str, allow_names: bool = False
) -> str:
    """The dashboard's Host-header check, widened to the host users reach it by.

    The hosts viz's `web.yaml` answers by default, with its Service name in this cluster's
    domain (the chart's default spells `cluster.local`)."""
    service = f"{DASHBOARD_SERVICE}.{NAMESPACE}.svc"
    hosts = [
        r"localhost",
        r"127\.0\.0\.1",
        _literal(f"{service}.{cluster_domain}"),
        _literal(service),
        r"\[::1\]",
    ]
    if external_host:
        hosts.append(_literal(external_host))
    if allow_ip:
        hosts.append(_IP_LITERAL)
    if allow_names:
        hosts.append(_DNS_NAME)
    return rf"^({'|'.join(hosts)})(:\d+)?$"


def namespace_metadata(
    prometheus_url: str, cni: bool = False
) -> tuple[dict[str, str], dict[str, str]]:
    """What the viz chart's namespace template (CLI only) or its hook Job would set, with the
    stack's PSA labels: every viz pod drops all capabilities and runs as non-root with the
    RuntimeDefault seccomp profile (the chart's templates), so only linkerd-init holds it back."""
    labels = {"linkerd.io/extension": "viz", **common.meshed_pod_security(cni)}
    annotations = {"viz.linkerd.io/external-prometheus": prometheus_url} if prometheus_url else {}
    return labels, annotations


# What the bundled Prometheus may fill of an emptyDir (the node's disk) with a long retention.
EMPTYDIR_RETENTION_SIZE = "1GB"


def prometheus_retention(hours: int, storage_size: str) -> dict[str, Any]:
    """The bundled Prometheus's `args` (a map the chart renders as `--key=value`, merged over
    its defaults) and `persistence` for a retention of `hours`. Pure.

    A size cap as well: Prometheus deletes the oldest blocks first when the data outgrows it,
    instead of filling the disk (85% of the volume, leaving room for the WAL and compaction).
    """
    if storage_size:
        cap = f"{int(config.storage_bytes(storage_size) * 0.85) // 2**20}MB"
    else:
        cap = EMPTYDIR_RETENTION_SIZE
    out: dict[str, Any] = {
        "args": {"storage.tsdb.retention.time": f"{hours}h", "storage.tsdb.retention.size": cap}
    }
    if storage_size:
        # The chart's claim `prometheus` and, with it, a Recreate strategy (one RWO volume).
        out["persistence"] = {"accessMode": "ReadWriteOnce", "size": storage_size}
    return out


def viz_values(
    profile: str,
    cluster_domain: str,
    certs: dict[str, WebhookCert],
    host_regexp: str,
    prometheus_url: str,
    grafana_external_url: str,
    jaeger_url: str,
    proxy_config: pulumi.Input[str] | None = None,
    retention_hours: int = 0,
    storage_size: str = "",
    scrape_configs: tuple[dict[str, Any], ...] = (),
) -> dict[str, Any]:
    """Values for linkerd-viz. Pure: the same inputs give the same dict.

    `retention_hours` (0: the chart's 6h) is what the bundled Prometheus keeps, on a volume of
    `storage_size` (empty: the chart's emptyDir). `scrape_configs` are jobs it adds to its
    own (Jaeger's span metrics), whose exemplars it then stores.

    `proxy_config` (the control plane's `Mesh.proxy_config`) goes on every viz pod template, so
    a change in what proxies are injected with rolls them.
    """
    component = sizing.size(profile, "viz-component").linkerd()
    proxy = {"resources": sizing.size(profile, "linkerd-proxy").linkerd()}
    values: dict[str, Any] = {
        "linkerdNamespace": "linkerd",
        "clusterDomain": cluster_domain,
        "identityTrustDomain": cluster_domain,
        # A post-install hook: Pulumi's v4 Chart never runs hooks, so the namespace is
        # labelled by this program instead.
        "createNamespaceMetadataJob": False,
        "metricsAPI": {"resources": component, "proxy": proxy},
        "dashboard": {"resources": component, "proxy": proxy, "enforcedHostRegexp": host_regexp},
        "prometheus": {
            "enabled": not prometheus_url,
            "resources": sizing.size(profile, "viz-prometheus").linkerd(),
            "proxy": proxy,
        },
    }
    for role, (key, _) in VIZ_WEBHOOKS.items():
        values[key] = {
            "resources": component,
            "proxy": proxy,
            "externalSecret": False,
            "crtPEM": certs[role].cert_pem,
            "keyPEM": certs[role].key_pem,
            "caBundle": certs[role].ca_bundle,
        }
    if retention_hours and not prometheus_url:
        values["prometheus"] |= prometheus_retention(retention_hours, storage_size)
    if scrape_configs and not prometheus_url:
        values["prometheus"]["scrapeConfigs"] = list(scrape_configs)
        # Trace ids on histogram samples (the span metrics' exemplars); a flag of 2.55.
        values["prometheus"].setdefault("args", {})["enable-feature"] = "exemplar-storage"
    if prometheus_url:
        values["prometheusUrl"] = prometheus_url
    if grafana_external_url:
        values["grafana"] = {"externalUrl": grafana_external_url}
    if jaeger_url:
        values["jaegerUrl"] = jaeger_url
    if proxy_config is not None:
        # Read by every viz workload's pod template (web, metrics-api, tap, tap-injector,
        # prometheus), though declared in no values.yaml.
        values["podAnnotations"] = {PROXY_CONFIG_ANNOTATION: proxy_config}
    if profile == "prod":
        # Upstream values-ha.yaml.
        values |= {"enablePodAntiAffinity": True, "enablePodDisruptionBudget": True}
        values["tap"]["replicas"] = 3
    return values


@dataclass
class VizArgs:
    profile: str
    """`dev` or `prod` (upstream HA values, production resources)."""
    cluster_domain: str
    """The cluster's DNS domain, also Linkerd's trust domain."""
    webhook_certs: dict[str, WebhookCert]
    """Certificates for tap and tap-injector, so renders never generate new ones."""
    control_plane: pulumi.Resource
    """The control-plane chart: viz pods are meshed and viz creates policy resources."""
    external_host: str = ""
    """The host users reach the dashboard by (ingress). Default: none, localhost only."""
    allow_ip_hosts: bool = False
    """Let the dashboard answer on an IP address (loadBalancer/nodePort). Default: false."""
    allow_any_host: bool = False
    """Let the dashboard answer on any DNS name: a load balancer's assigned name, behind
    sign-in only. Default: false."""
    prometheus_url: str = ""
    """External Prometheus. Default: viz's own."""
    grafana_external_url: str = ""
    """Where the dashboard's Grafana links point. Default: no links."""
    jaeger_url: str = ""
    """Jaeger's `host:port` for the dashboard's trace links (viz proxies to it; no scheme).
    Default: none, no links."""
    proxy_config: pulumi.Input[str] | None = None
    """A digest of what proxies are injected with (`Mesh.proxy_config`), set on viz's pod
    templates so they roll when it changes. Default: none."""
    cni: bool = False
    """The Linkerd CNI plugin is on (`MeshArgs.cni`): no pod here needs `linkerd-init`, so the
    namespace enforces PSA `restricted`. Default: false, `privileged` enforced and `restricted`
    warned and audited."""
    prometheus_retention_hours: int = 0
    """What the bundled Prometheus keeps (the longest SLO window). Default: 0, the chart's 6h."""
    prometheus_storage_size: str = ""
    """The bundled Prometheus's volume. Default: none, the chart's emptyDir."""
    scrape_configs: tuple[dict[str, Any], ...] = ()
    """Scrape jobs the bundled Prometheus adds to its own. Default: none."""


class Viz(pulumi.ComponentResource):
    """The linkerd-viz extension.

    Children: the `linkerd-viz` namespace and the chart. Outputs: `namespace` and
    `prometheus_url` (the Prometheus with Linkerd's metrics, in-cluster).
    """

    namespace: pulumi.Output[str]
    prometheus_url: pulumi.Output[str]
    chart: k8s.helm.v4.Chart

    def __init__(
        self, name: str, args: VizArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("meshstack:mesh:Viz", name, None, opts)
        labels, annotations = namespace_metadata(args.prometheus_url, args.cni)
        ns = common.namespace(
            NAMESPACE,
            f"{name}-namespace",
            self,
            labels,
            annotations,
            # Created with the control plane ready, so its pods are injected.
            depends_on=[args.control_plane],
        )
        self.chart = common.chart(
            f"{name}-chart",
            versions.LINKERD_VIZ,
            "linkerd-viz",
            ns.metadata.name,
            viz_values(
                args.profile,
                args.cluster_domain,
                args.webhook_certs,
                enforced_host_regexp(
                    args.external_host,
                    args.allow_ip_hosts,
                    args.cluster_domain,
                    args.allow_any_host,
                ),
                args.prometheus_url,
                args.grafana_external_url,
                args.jaeger_url,
                args.proxy_config,
                args.prometheus_retention_hours,
                args.prometheus_storage_size,
                args.scrape_configs,
            ),
            self,
            depends_on=[args.control_plane],
        )
        self.namespace = ns.metadata.name
        self.prometheus_url = pulumi.Output.from_input(
            args.prometheus_url
            or f"http://{common.svc_host(PROMETHEUS_SERVICE, NAMESPACE, args.cluster_domain)}"
            f":{PROMETHEUS_PORT}"
        )
        self.register_outputs({"namespace": self.namespace, "prometheus_url": self.prometheus_url})
