"""Grafana: datasources for metrics, logs and traces, Linkerd dashboards, and alerts on the golden
metrics and on the mesh certificates' expiry.

Grafana runs meshed in its own namespace, so viz's Prometheus (which only answers clients it
authorizes) can be given Grafana's mesh identity. Everything Grafana shows is provisioned from
files the chart renders: no click-ops state is needed, and with persistence off a restart
loses nothing but UI edits.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_kubernetes as k8s
import pulumi_random as random
from pulumi.output import UNKNOWN, contains_unknowns

from components import common, dashboards, identity, sizing, slo, versions, viz
from components import logging as logs
from components.config import GrafanaSettings, OidcSettings
from components.mesh import PROXY_CONFIG_ANNOTATION
from components.onboarding import (
    VIZ_PROMETHEUS_SERVICE_ACCOUNT,
    PolicySet,
    empty_policy,
    merge_policies,
    policy_resources,
    proxy_admin_policy,
    published_policy,
    server,
)

# --- Names -----------------------------------------------------------------------------------
# Pinned in the values (`fullnameOverride`, `serviceAccount.name`, `service.*`), so these stay
# the chart's real names whatever its naming helpers do.

NAMESPACE = "grafana"
RELEASE = "grafana"
SERVICE = "grafana"
SERVICE_PORT = 80
CONTAINER_PORT = 3000
# The mesh identity viz's Prometheus authorizes: grafana.grafana.serviceaccount.identity...
SERVICE_ACCOUNT = "grafana"

ADMIN_USER = "admin"
ADMIN_SECRET = "grafana-admin"
ADMIN_USER_KEY, ADMIN_PASSWORD_KEY = "admin-user", "admin-password"

WEBHOOK_SECRET = "grafana-alert-webhook"
WEBHOOK_SECRET_KEY = "url"
# Read by Grafana's provisioning (`$__env{...}`); no GF_ prefix, which Grafana would map onto
# its own settings.
WEBHOOK_ENV = "ALERT_WEBHOOK_URL"
# With `exposure.auth: oidc`, the client secret Grafana signs users in with: a Secret read into
# the variable Grafana maps onto `[auth.generic_oauth] client_secret` (GF_<SECTION>_<KEY>).
OIDC_SECRET = "grafana-oidc"
OIDC_SECRET_KEY = "client-secret"
OIDC_ENV = "GF_AUTH_GENERIC_OAUTH_CLIENT_SECRET"
# The role a user the provider signs in gets; changes are made as the break-glass admin.
OIDC_ROLE = "Viewer"

# Our own dashboards, from a ConfigMap this component writes (no download at pod start).
DASHBOARDS_CONFIGMAP = "grafana-dashboards-meshstack"
OWN_PROVIDER, LINKERD_PROVIDER = "meshstack", "linkerd"

# Fixed datasource uids: the Loki↔Jaeger links, dashboards and alert rules refer to them.
PROMETHEUS_UID, LOKI_UID, JAEGER_UID = "prometheus", "loki", "jaeger"

# Linkerd's dashboards are generated (dashboards.linkerd_dashboards) into this ConfigMap.
LINKERD_DASHBOARDS_CONFIGMAP = "grafana-dashboards-linkerd"

# Optional extras (`grafana.grafanaComDashboards`): Linkerd's own dashboards from grafana.com,
# name → (gnetId, revision), the list of linkerd2's grafana/values.yaml
# (https://github.com/linkerd/linkerd2/blob/main/grafana/values.yaml). Fetched by the stack's
# own init container, not the chart's `dashboards` download: that one gives every dashboard
# a hard-coded 60s connect timeout and max time (chart templates/_config.tpl
# `download_dashboards.sh`), so with egress silently dropped 18 dashboards hold the pod for
# 18 minutes.
GRAFANA_COM_PROVIDER = "grafana-com"
GRAFANA_COM_DASHBOARDS: dict[str, tuple[int, int]] = {
    "top-line": (15474, 4),
    "health": (15486, 3),
    "kubernetes": (15479, 2),
    "namespace": (15478, 3),
    "deployment": (15475, 6),
    "pod": (15477, 3),
    "service": (15480, 3),
    "route": (15481, 3),
    "authority": (15482, 3),
    "cronjob": (15483, 3),
    "job": (15487, 3),
    "daemonset": (15484, 3),
    "replicaset": (15491, 3),
    "statefulset": (15493, 3),
    "replicationcontroller": (15492, 4),
    "multicluster": (15488, 3),
    "prometheus": (15489, 2),
    "prometheus-benchmark": (15490, 2),
}
# All fetched in parallel, each given up after these many seconds: Grafana starts at most
# `DOWNLOAD_MAX_TIME_S` late, with whatever arrived.
DOWNLOAD_CONNECT_TIMEOUT_S = 3
DOWNLOAD_MAX_TIME_S = 10
DASHBOARDS_ROOT = "/var/lib/grafana/dashboards"

# A trace id in a log line, e.g. `traceID=4bf92f3577b34da6a3ce929d0e0e4736` or `"trace_id": "…"`.
TRACE_ID_REGEX = r'(?:trace_?[iI][dD])["=: ]+([0-9a-fA-F]{16,32})'
# Span attribute (OpenTelemetry k8sattributes) → the Loki stream label Alloy sets.
TRACE_TO_LOG_TAGS = {"k8s.namespace.name": logs.LABEL_NAMESPACE, "k8s.pod.name": logs.LABEL_POD}


def service_url(cluster_domain: str) -> str:
    """Grafana in the cluster (e.g. for linkerd-viz's `grafana.url`)."""
    return f"http://{common.svc_host(SERVICE, NAMESPACE, cluster_domain)}:{SERVICE_PORT}"


# --- Values (pure) ---------------------------------------------------------------------------


def datasources(
    prometheus_url: pulumi.Input[str],
    loki_url: pulumi.Input[str] | None,
    jaeger_url: pulumi.Input[str] | None,
    remote_prometheus: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """The datasource provisioning file. Loki and Jaeger only when their URLs are given; the
    links between them only when both are. `remote_prometheus`: linked cluster → the URL of its
    Prometheus through the mesh, one datasource each (uid `prometheus-<cluster>`)."""
    entries: list[dict[str, Any]] = [
        {
            "name": "Prometheus",
            "type": "prometheus",
            "uid": PROMETHEUS_UID,
            "access": "proxy",
            "url": prometheus_url,
            "isDefault": True,
            "editable": False,
            # viz's Prometheus scrapes every 10s; a shorter step would draw gaps.
            "jsonData": {"timeInterval": "10s", "httpMethod": "POST"},
        }
    ]
    for cluster, url in sorted((remote_prometheus or {}).items()):
        entries.append(
            {
                "name": f"Prometheus {cluster}",
                "type": "prometheus",
                "uid": remote_prometheus_uid(cluster),
                "access": "proxy",
                "url": url,
                "editable": False,
                "jsonData": {"timeInterval": "10s", "httpMethod": "POST"},
            }
        )
    if jaeger_url is not None:
        # The span metrics' exemplars carry `trace_id` (the Prometheus exporter's label):
        # a dot on a latency panel opens its trace in Jaeger.
        entries[0]["jsonData"]["exemplarTraceIdDestinations"] = [
            {"name": "trace_id", "datasourceUid": JAEGER_UID}
        ]
    if loki_url is not None:
        loki_json: dict[str, Any] = {"maxLines": 1000}
        if jaeger_url is not None:
            loki_json["derivedFields"] = [
                {
                    "name": "TraceID",
                    "matcherType": "regex",
                    "matcherRegex": TRACE_ID_REGEX,
                    # An internal link: opens the trace in the Jaeger datasource.
                    "datasourceUid": JAEGER_UID,
                    # `$$` is a literal `$` after provisioning's env interpolation.
                    "url": "$${__value.raw}",
                    "urlDisplayLabel": "View trace",
                }
            ]
        entries.append(
            {
                "name": "Loki",
                "type": "loki",
                "uid": LOKI_UID,
                "access": "proxy",
                "url": loki_url,
                "editable": False,
                "jsonData": loki_json,
            }
        )
    if jaeger_url is not None:
        jaeger_json: dict[str, Any] = {"nodeGraph": {"enabled": True}}
        if loki_url is not None:
            jaeger_json["tracesToLogsV2"] = {
                "datasourceUid": LOKI_UID,
                # Log lines are written around the span, not at its exact start and end.
                "spanStartTimeShift": "-5m",
                "spanEndTimeShift": "5m",
                "tags": [{"key": k, "value": v} for k, v in TRACE_TO_LOG_TAGS.items()],
                # Most apps don't log trace ids; show the pod's lines around the span instead.
                "filterByTraceID": False,
                "filterBySpanID": False,
            }
        entries.append(
            {
                "name": "Jaeger",
                "type": "jaeger",
                "uid": JAEGER_UID,
                "access": "proxy",
                "url": jaeger_url,
                "editable": False,
                "jsonData": jaeger_json,
            }
        )
    # prune: a datasource dropped from this file (logging turned off) is deleted from the DB.
    return {"apiVersion": 1, "prune": True, "datasources": entries}


def helm_literal(value: Any) -> Any:
    """`value` with every string that holds `{{` wrapped so Helm's `tpl` prints it unchanged.

    The chart runs its `datasources` and `alerting` values through `tpl`, which would evaluate
    Grafana's own templates such as `{{ $labels.deployment }}`. A Go raw string in an action,
    ``{{ `...` }}``, prints its content as is.
    """
    if isinstance(value, dict):
        return {k: helm_literal(v) for k, v in value.items()}
    if isinstance(value, list):
        return [helm_literal(v) for v in value]
    if isinstance(value, str) and "{{" in value:
        if "`" in value:
            raise ValueError(f"cannot protect a backquote from Helm's tpl: {value!r}")
        return "{{ `" + value + "` }}"
    return value


def dashboard_providers() -> dict[str, Any]:
    """File providers: our dashboards, Linkerd's (generated as well), and the grafana.com
    extras (an empty folder unless `grafanaComDashboards`)."""

    def provider(name: str, folder: str) -> dict[str, Any]:
        return {
            "name": name,
            "orgId": 1,
            "folder": folder,
            "type": "file",
            "disableDeletion": True,
            "allowUiUpdates": False,
            # The chart mounts a provider's dashboards at /var/lib/grafana/dashboards/<name>.
            "options": {"path": f"{DASHBOARDS_ROOT}/{name}"},
        }

    return {
        "apiVersion": 1,
        "providers": [
            provider(OWN_PROVIDER, "Meshstack"),
            provider(LINKERD_PROVIDER, "Linkerd"),
            provider(GRAFANA_COM_PROVIDER, "Linkerd (grafana.com)"),
        ],
    }


def grafana_com_download_script() -> str:
    """The init container's script: every extra fetched in parallel with short timeouts; a
    failure skips that dashboard and never the pod. Holds no `{{` (the chart runs it through
    Helm's `tpl`). Pure."""
    folder = f"{DASHBOARDS_ROOT}/{GRAFANA_COM_PROVIDER}"
    lines = [
        "set -u",
        f"mkdir -p {folder}",
        "fetch() {",
        f"  if curl -sSf --connect-timeout {DOWNLOAD_CONNECT_TIMEOUT_S} "
        f'--max-time {DOWNLOAD_MAX_TIME_S} -o "{folder}/$1.part" "$2"; then',
        f'    mv "{folder}/$1.part" "{folder}/$1.json"',
        "  else",
        f'    rm -f "{folder}/$1.part"; echo "grafana.com dashboard $1 skipped" >&2',
        "  fi",
        "}",
    ]
    lines += [
        f"fetch {name} https://grafana.com/api/dashboards/{gnet_id}/revisions/{revision}/download &"
        for name, (gnet_id, revision) in GRAFANA_COM_DASHBOARDS.items()
    ]
    lines += ["wait", "exit 0"]
    return "\n".join(lines) + "\n"


def grafana_com_init_container(profile: str) -> dict[str, Any]:
    """Downloads the grafana.com extras into the `storage` volume the chart mounts at
    /var/lib/grafana, where the `grafana-com` provider reads them."""
    return {
        "name": "grafana-com-dashboards",
        "image": versions.CURL_IMAGE,
        "command": ["/bin/sh", "-c", grafana_com_download_script()],
        "resources": sizing.k8s_resources(profile, "grafana-init"),
        # Grafana's own uid and group (the chart's pod securityContext), so Grafana can read
        # and replace what it writes; restricted otherwise.
        "securityContext": {
            **common.restricted_container_security(),
            "runAsUser": 472,
            "runAsGroup": 472,
        },
        "volumeMounts": [{"name": "storage", "mountPath": "/var/lib/grafana"}],
    }


def alerting(
    settings: GrafanaSettings,
    webhook: bool,
    trust_anchor_expires_at: int | None = None,
    slo_objectives: tuple[slo.Objective, ...] = (),
) -> dict[str, Any]:
    """Alert provisioning files: rules always (golden metrics, and certificate expiry: the
    trust anchor's too when its expiry is given; SLO burn rates with objectives); contact
    point and policy with a webhook."""
    rules = dashboards.alert_rules(
        PROMETHEUS_UID, settings.success_rate_threshold, settings.latency_p99_ms
    )
    rules["groups"].append(
        dashboards.certificate_alert_group(PROMETHEUS_UID, trust_anchor_expires_at)
    )
    if slo_objectives:
        rules["groups"].append(slo.alert_group(slo_objectives, PROMETHEUS_UID))
    files = {"rules.yaml": rules}
    if webhook:
        # A reference only: Grafana reads the URL from its environment, filled from a Secret.
        files["contactpoints.yaml"] = dashboards.contact_points(f"$__env{{{WEBHOOK_ENV}}}")
        files["policies.yaml"] = dashboards.notification_policies()
    return files


def _jmespath_string(value: str) -> str:
    """A JMESPath raw string literal (`'...'`): only `'` and `\\` are escaped."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def sign_in_rule(oidc: OidcSettings) -> str:
    """Grafana's `role_attribute_path`: `OIDC_ROLE` for exactly who oauth2-proxy lets in
    (`allowedGroups` from the groups claim, `allowedEmails`, `@domain` entries), nothing for
    anyone else; with `role_attribute_strict` nothing means no sign-in. Evaluated on the ID
    token and userinfo claims; a missing claim reads as empty, never as an error."""
    groups = f'not_null("{oidc.groups_claim}", `[]`)'
    email = "not_null(email, '')"
    tests = [f"contains({groups}, {_jmespath_string(g)})" for g in oidc.allowed_groups]
    for entry in oidc.allowed_emails:
        if entry.startswith("@"):
            tests.append(f"ends_with({email}, {_jmespath_string(entry)})")
        else:
            tests.append(f"{email} == {_jmespath_string(entry)}")
    return f"({' || '.join(tests)}) && {_jmespath_string(OIDC_ROLE)}"


def generic_oauth(oidc: OidcSettings) -> dict[str, Any]:
    """`[auth.generic_oauth]`: the provider oauth2-proxy uses. The client secret is not here:
    it comes from the environment (`OIDC_ENV`). The login form stays for the admin user."""
    scopes = ["openid", "email", "profile", *(["groups"] if oidc.allowed_groups else [])]
    return {
        "enabled": True,
        "name": "Single sign-on",
        "client_id": oidc.client_id,
        "scopes": " ".join(scopes),
        "auth_url": oidc.auth_url,
        "token_url": oidc.token_url,
        "api_url": oidc.userinfo_url,
        "use_pkce": True,
        "use_refresh_token": True,
        "allow_sign_up": True,
        "email_attribute_path": "email",
        "groups_attribute_path": oidc.groups_claim,
        "role_attribute_path": sign_in_rule(oidc),
        "role_attribute_strict": True,
        "allow_assign_grafana_admin": False,
    }


def grafana_values(
    profile: str,
    settings: GrafanaSettings,
    root_url: str,
    prometheus_url: pulumi.Input[str],
    loki_url: pulumi.Input[str] | None = None,
    jaeger_url: pulumi.Input[str] | None = None,
    webhook: bool = False,
    trust_anchor_expires_at: int | pulumi.Output[int | None] | None = None,
    oidc: OidcSettings | None = None,
    remote_prometheus: Mapping[str, str] | None = None,
    slo_objectives: tuple[slo.Objective, ...] = (),
) -> dict[str, Any]:
    """Values for the grafana-community `grafana` chart. Pure: the same inputs give the same
    dict, and nothing in it makes the chart generate a value (password, token, lookup)."""
    alerting_files: Any
    if isinstance(trust_anchor_expires_at, pulumi.Output):
        # A generated anchor's expiry is known once it exists (a preview before that gets no
        # anchor rule: `_anchor_expiry`), and a rotated anchor changes the rules, which
        # restarts Grafana (the chart's config checksum).
        alerting_files = trust_anchor_expires_at.apply(
            lambda at: helm_literal(alerting(settings, webhook, at, slo_objectives))
        )
    else:
        alerting_files = helm_literal(
            alerting(settings, webhook, trust_anchor_expires_at, slo_objectives)
        )
    init = sizing.k8s_resources(profile, "grafana-init")
    values: dict[str, Any] = {
        "fullnameOverride": SERVICE,
        "service": {"port": SERVICE_PORT, "targetPort": CONTAINER_PORT},
        "serviceAccount": {"create": True, "name": SERVICE_ACCOUNT},
        # No sidecars, so Grafana never calls the Kubernetes API: no RBAC and no API token in
        # the pod. (Linkerd's proxy gets its identity from its own projected token.)
        "rbac": {"create": False},
        "automountServiceAccountToken": False,
        # The chart's `lookup` + `randAlphaNum` password would change on every render; the
        # password comes from a Secret this component owns.
        "admin": {
            "existingSecret": ADMIN_SECRET,
            "userKey": ADMIN_USER_KEY,
            "passwordKey": ADMIN_PASSWORD_KEY,
        },
        # A Helm test hook (Pulumi never runs hooks); the renderer would add a random token.
        "testFramework": {"enabled": False},
        "imageRenderer": {"enabled": False},
        "resources": sizing.k8s_resources(profile, "grafana"),
        # Shared by every k8s-sidecar container; none is enabled, sized for when one is.
        "sidecar": {"resources": sizing.k8s_resources(profile, "grafana-sidecar")},
        # The chart's default pod securityContext has `fsGroup: 472`, so the kubelet gives the
        # claim to Grafana's group at mount; the root `init-chown-data` (chown -R, runAsNonRoot
        # false) only does it again, and would keep the pod out of a `restricted` namespace.
        "initChownData": {"enabled": False, "resources": init},
        "downloadDashboards": {"resources": init},
        "persistence": {
            "enabled": settings.persistence,
            "type": "pvc",
            # SQLite and plugins only: dashboards and alerts are provisioned from files.
            "size": "2Gi",
            # Otherwise the chart `lookup`s the existing claim, which a render cannot see.
            "lookupVolumeName": False,
        },
        "grafana.ini": {
            "server": {"root_url": root_url},
            # No calls home, and nothing that needs internet to render a page.
            "analytics": {
                "reporting_enabled": False,
                "check_for_updates": False,
                "check_for_plugin_updates": False,
                "feedback_links_enabled": False,
            },
            "news": {"news_feed_enabled": False},
            "security": {"disable_gravatar": True, "cookie_secure": root_url.startswith("https")},
            # Grafana 12+ installs and updates a list of plugins from grafana.com in the
            # background at every start (the bundled Loki and Jaeger datasources among them);
            # this skips the whole preinstall, the chart's `plugins:` list included, so the
            # plugins are the ones the image ships (grafana/grafana pkg/setting/
            # setting_plugins.go `readPluginSettings`).
            "plugins": {"preinstall_disabled": True},
        },
        "datasources": {
            "datasources.yaml": helm_literal(
                datasources(prometheus_url, loki_url, jaeger_url, remote_prometheus)
            )
        },
        "dashboardProviders": {"dashboardproviders.yaml": dashboard_providers()},
        "dashboardsConfigMaps": {
            OWN_PROVIDER: DASHBOARDS_CONFIGMAP,
            LINKERD_PROVIDER: LINKERD_DASHBOARDS_CONFIGMAP,
        },
        "alerting": alerting_files,
        "podAnnotations": {},
    }
    if settings.persistence:
        # One ReadWriteOnce claim: in a rolling update the new pod needs the claim the old pod
        # still holds, and waits forever when it lands on another node. Recreate stops the old
        # pod first (a short gap in Grafana, which keeps nothing in flight).
        values["deploymentStrategy"] = {"type": "Recreate"}
    # No `dashboards` value ever: any makes the chart add its download-dashboards init
    # container (see GRAFANA_COM_DASHBOARDS).
    if settings.grafana_com_dashboards:
        values["extraInitContainers"] = [grafana_com_init_container(profile)]
        # With Linkerd's native sidecar the proxy is already up when init containers run;
        # without it, traffic to 443 would be sent to a proxy not yet running.
        values["podAnnotations"]["config.linkerd.io/skip-outbound-ports"] = "443"
    env: dict[str, Any] = {}
    if webhook:
        env[WEBHOOK_ENV] = {"secretKeyRef": {"name": WEBHOOK_SECRET, "key": WEBHOOK_SECRET_KEY}}
    if oidc is not None:
        values["grafana.ini"]["auth.generic_oauth"] = generic_oauth(oidc)
        env[OIDC_ENV] = {"secretKeyRef": {"name": OIDC_SECRET, "key": OIDC_SECRET_KEY}}
    if env:
        values["envValueFrom"] = env
    return values


def remote_prometheus_uid(cluster: str) -> str:
    return f"{PROMETHEUS_UID}-{cluster}"


# The dashboard variable that picks a cluster's Prometheus (multicluster).
CLUSTER_VARIABLE = "cluster"


def golden_metrics_configmap_data(
    settings: GrafanaSettings,
    clusters: bool = False,
    slo_objectives: tuple[slo.Objective, ...] = (),
    traces: bool = False,
) -> dict[str, str]:
    """The ConfigMap data for our own dashboards provider (with the SLO dashboard when there
    are objectives, and RED metrics from spans with tracing). `clusters`: linked clusters have
    datasources too, so the golden-metrics dashboard gets a `cluster` variable choosing among
    the Prometheus datasources, and every query runs against the chosen one."""
    dashboard = dashboards.golden_metrics_dashboard(
        f"${{{CLUSTER_VARIABLE}}}" if clusters else PROMETHEUS_UID,
        settings.success_rate_threshold,
        settings.latency_p99_ms,
    )
    if clusters:
        dashboard["templating"]["list"].insert(
            0,
            {
                "name": CLUSTER_VARIABLE,
                "label": "Cluster",
                "type": "datasource",
                "query": "prometheus",
                # The local Prometheus and one per linked cluster (`datasources`).
                "regex": "/^Prometheus( .+)?$/",
                "current": {"text": "Prometheus", "value": PROMETHEUS_UID},
                "refresh": 1,
            },
        )
    data = {dashboards.GOLDEN_METRICS_FILE: json.dumps(dashboard, indent=2, sort_keys=True)}
    if slo_objectives:
        board = slo.dashboard(slo_objectives, PROMETHEUS_UID)
        data[slo.DASHBOARD_FILE] = json.dumps(board, indent=2, sort_keys=True)
    if traces:
        red = dashboards.red_dashboard(PROMETHEUS_UID)
        data[dashboards.RED_FILE] = json.dumps(red, indent=2, sort_keys=True)
    return data


def linkerd_configmap_data() -> dict[str, str]:
    """The ConfigMap data for the Linkerd dashboards provider."""
    return {
        file: json.dumps(dashboard, indent=2, sort_keys=True)
        for file, dashboard in dashboards.linkerd_dashboards(PROMETHEUS_UID).items()
    }


def prometheus_authorization_spec() -> dict[str, Any]:
    """Let Grafana's mesh identity through viz's `prometheus-admin` Server."""
    return {
        "targetRef": {
            "group": "policy.linkerd.io",
            "kind": "Server",
            "name": viz.PROMETHEUS_SERVER,
        },
        "requiredAuthenticationRefs": [
            {"kind": "ServiceAccount", "name": SERVICE_ACCOUNT, "namespace": NAMESPACE}
        ],
    }


# Pod labels of the chart's Deployment (its `selectorLabels`), what the Server selects.
PODS = {"app.kubernetes.io/name": "grafana", "app.kubernetes.io/instance": RELEASE}
# The chart's name for Grafana's HTTP container port.
CONTAINER_PORT_NAME = "grafana"


def policy(
    ingress_controller_namespace: str = "",
    public: bool = False,
    cluster_domain: str = "cluster.local",
    prometheus_service_account: str = VIZ_PROMETHEUS_SERVICE_ACCOUNT,
    prometheus_namespace: str = viz.NAMESPACE,
) -> PolicySet:
    """Who may call what in `grafana`, on top of its default `deny`. Pure.

    Nothing in the cluster calls Grafana: users do, through the way it is published
    (`published_policy`; a port-forward needs no policy), and viz's dashboard only links to it
    in the browser. Every proxy's admin port: the metrics scraper.
    """
    p = empty_policy()
    p["Server"]["grafana-http"] = server({"matchLabels": PODS}, CONTAINER_PORT_NAME, "HTTP/1")
    return merge_policies(
        p,
        published_policy("grafana-http", ingress_controller_namespace, public, cluster_domain),
        proxy_admin_policy({"matchLabels": {}}, prometheus_service_account, prometheus_namespace),
    )


# --- Component -------------------------------------------------------------------------------


@dataclass
class GrafanaArgs:
    profile: str
    """`dev` or `prod`: container requests and limits from `sizing`."""
    settings: GrafanaSettings
    """Persistence, grafana.com dashboards and alert thresholds."""
    control_plane: pulumi.Resource
    """The Linkerd control-plane chart: Grafana is meshed, so it must start after the proxy
    injector is ready."""
    viz_chart: pulumi.Resource
    """The linkerd-viz chart: the Prometheus AuthorizationPolicy targets its Server, and the
    namespace waits for it, so the pod starts after viz's tap-injector and can be tapped."""
    prometheus_url: pulumi.Input[str]
    """The Prometheus with Linkerd's metrics (viz's own or an external one)."""
    root_url: str
    """The URL users open Grafana at; links and redirects are built from it."""
    cluster_domain: str = "cluster.local"
    """Default: cluster.local. The cluster's DNS domain."""
    proxy_config: pulumi.Input[str] | None = None
    """A digest of what proxies are injected with (`Mesh.proxy_config`): a pod annotation, so
    a change rolls Grafana in the same `up`. Default: none."""
    cni: bool = False
    """The Linkerd CNI plugin is on (`MeshArgs.cni`): no pod here needs `linkerd-init`, so the
    namespace enforces PSA `restricted`. Default: false, `privileged` enforced and `restricted`
    warned and audited."""
    bundled_prometheus: bool = True
    """Default: true, viz runs its own Prometheus, which only answers authorized clients, so an
    AuthorizationPolicy for Grafana is created. False for an external Prometheus."""
    loki_url: pulumi.Input[str] | None = None
    """Default: none, no Loki datasource (logging is off)."""
    jaeger_url: pulumi.Input[str] | None = None
    """Default: none, no Jaeger datasource (tracing is off)."""
    alert_webhook_url: pulumi.Input[str] | None = None
    """Default: none, alerts show in Grafana only. A secret: it is stored in a Kubernetes
    Secret and reaches Grafana through its environment, never through the chart values."""
    ingress_controller_namespace: str = ""
    """Namespace of the meshed ingress controller that publishes Grafana. Default: none."""
    public: bool = False
    """Grafana is published by a NodePort or LoadBalancer Service: any network may call it.
    Default: false."""
    prometheus_service_account: str = VIZ_PROMETHEUS_SERVICE_ACCOUNT
    """Identity allowed to scrape Grafana's proxy. Default: viz's bundled Prometheus."""
    prometheus_namespace: str = viz.NAMESPACE
    """Namespace of `prometheus_service_account`. Default: linkerd-viz."""
    oidc: OidcSettings | None = None
    """Default: none, Grafana's own login only. The provider users sign in with (`exposure.auth:
    oidc`); the admin user and password stay, for when the provider is down."""
    remote_prometheus: dict[str, str] = field(default_factory=dict)
    """Linked cluster → its Prometheus through the mesh (multicluster): a datasource each and
    the dashboard's `cluster` variable. Default: none, this cluster only."""
    slo_objectives: tuple[slo.Objective, ...] = ()
    """Default: none, no SLO burn-rate rules or SLO dashboard."""
    trust_anchor_pem: pulumi.Input[str] | None = None
    """Default: none, no trust-anchor expiry alerts. The trust anchor that signs the identity
    issuer: Linkerd exports no metric for it, so its alerts are built from its notAfter."""


def _anchor_expiry(pem: Any) -> int | None:
    """The trust anchor's expiry, or None while it is unknown: in the preview of an `up` that
    creates the anchor, the rules then lack its alert, instead of leaving the whole chart
    unknown and so unrendered (a v4 Chart with unknown values shows no objects)."""
    if pem is UNKNOWN or contains_unknowns(pem):
        return None
    return identity.expires_at(pem)


class Grafana(pulumi.ComponentResource):
    """Grafana in the meshed `grafana` namespace.

    Children: the namespace (injected, default `deny`) and its Linkerd policy (`policy()`); a
    generated admin password and the `grafana-admin` Secret the
    chart reads; the alert webhook Secret (optional); the ConfigMap with the golden-metrics
    dashboard; the AuthorizationPolicy letting Grafana query viz's Prometheus (bundled
    Prometheus only); the `grafana` chart.

    Outputs: `namespace`, `admin_user`, `admin_password` (secret). `chart` is the chart
    resource, for whatever must wait for Grafana.
    """

    namespace: pulumi.Output[str]
    admin_user: pulumi.Output[str]
    admin_password: pulumi.Output[str]
    chart: k8s.helm.v4.Chart

    def __init__(
        self, name: str, args: GrafanaArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("meshstack:observability:Grafana", name, None, opts)

        # Meshed: viz's Prometheus only answers Grafana's mTLS identity. Default deny: only the
        # clients `policy()` names reach Grafana.
        ns = common.meshed_namespace(
            NAMESPACE,
            f"{name}-namespace",
            self,
            args.control_plane,
            default_deny=True,
            extensions=[args.viz_chart],
            cni=args.cni,
        )
        # Before the chart: the pod comes up into a namespace whose rules already exist.
        policies = policy_resources(
            name,
            ns.metadata.name,
            policy(
                args.ingress_controller_namespace,
                args.public,
                args.cluster_domain,
                args.prometheus_service_account,
                args.prometheus_namespace,
            ),
            self,
            labels=common.MANAGED_BY,
        )

        # --- Admin credentials ---
        password = random.RandomPassword(
            f"{name}-admin-password",
            length=32,
            # Letters and digits only: no quoting issues in env vars, URLs or shells.
            special=False,
            opts=pulumi.ResourceOptions(parent=self, additional_secret_outputs=["result"]),
        )
        # Explicit as well: additional_secret_outputs is applied by the engine, not the SDK.
        admin_password: pulumi.Output[str] = pulumi.Output.secret(password.result)
        admin_secret = k8s.core.v1.Secret(
            f"{name}-admin",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=ADMIN_SECRET, namespace=ns.metadata.name, labels=common.MANAGED_BY
            ),
            type="Opaque",
            string_data={ADMIN_USER_KEY: ADMIN_USER, ADMIN_PASSWORD_KEY: admin_password},
            opts=pulumi.ResourceOptions(parent=self),
        )
        chart_deps: list[pulumi.Resource] = [args.control_plane, admin_secret, *policies]

        # --- Secrets Grafana reads from its environment ---
        def env_secret(role: str, secret_name: str, key: str, value: Any) -> pulumi.Output[str]:
            """A Secret with one secret `key`, which the pod reads at start only; the returned
            digest, a pod annotation, rolls the pod when the value changes. A digest of a
            high-entropy value reveals nothing, but stays a secret."""
            secret_value = pulumi.Output.secret(value)
            chart_deps.append(
                k8s.core.v1.Secret(
                    f"{name}-{role}",
                    metadata=k8s.meta.v1.ObjectMetaArgs(
                        name=secret_name, namespace=ns.metadata.name, labels=common.MANAGED_BY
                    ),
                    type="Opaque",
                    string_data={key: secret_value},
                    opts=pulumi.ResourceOptions(parent=self),
                )
            )
            return secret_value.apply(lambda v: hashlib.sha256(v.encode()).hexdigest())

        webhook = args.alert_webhook_url is not None
        webhook_digest = (
            env_secret("alert-webhook", WEBHOOK_SECRET, WEBHOOK_SECRET_KEY, args.alert_webhook_url)
            if args.alert_webhook_url is not None
            else None
        )
        # Single sign-on's client secret (the chart values name only the Secret).
        oidc_digest = (
            env_secret("oidc", OIDC_SECRET, OIDC_SECRET_KEY, args.oidc.client_secret.value)
            if args.oidc is not None
            else None
        )

        # --- Our dashboards ---
        chart_deps.append(
            k8s.core.v1.ConfigMap(
                f"{name}-dashboards",
                metadata=k8s.meta.v1.ObjectMetaArgs(
                    name=DASHBOARDS_CONFIGMAP, namespace=ns.metadata.name, labels=common.MANAGED_BY
                ),
                data=golden_metrics_configmap_data(
                    args.settings,
                    bool(args.remote_prometheus),
                    args.slo_objectives,
                    traces=args.jaeger_url is not None,
                ),
                opts=pulumi.ResourceOptions(parent=self),
            )
        )
        chart_deps.append(
            k8s.core.v1.ConfigMap(
                f"{name}-linkerd-dashboards",
                metadata=k8s.meta.v1.ObjectMetaArgs(
                    name=LINKERD_DASHBOARDS_CONFIGMAP,
                    namespace=ns.metadata.name,
                    labels=common.MANAGED_BY,
                ),
                data=linkerd_configmap_data(),
                opts=pulumi.ResourceOptions(parent=self),
            )
        )

        # --- Access to viz's Prometheus ---
        if args.bundled_prometheus:
            # Not a dependency of the chart: the policy only needs to exist before Grafana's
            # first query, not before its pod (the alert rules' 5m pending period covers the
            # moments in between).
            k8s.apiextensions.CustomResource(
                f"{name}-prometheus-authz",
                api_version="policy.linkerd.io/v1alpha1",
                kind="AuthorizationPolicy",
                metadata=k8s.meta.v1.ObjectMetaArgs(
                    name=SERVICE_ACCOUNT, namespace=viz.NAMESPACE, labels=common.MANAGED_BY
                ),
                spec=prometheus_authorization_spec(),
                opts=pulumi.ResourceOptions(
                    parent=self,
                    # It targets the Server the viz chart creates.
                    depends_on=[args.viz_chart],
                ),
            )

        values = grafana_values(
            args.profile,
            args.settings,
            args.root_url,
            args.prometheus_url,
            args.loki_url,
            args.jaeger_url,
            webhook,
            (
                pulumi.Output.from_input(args.trust_anchor_pem).apply(
                    _anchor_expiry, run_with_unknowns=True
                )
                if args.trust_anchor_pem is not None
                else None
            ),
            oidc=args.oidc,
            remote_prometheus=args.remote_prometheus,
            slo_objectives=args.slo_objectives,
        )
        if oidc_digest is not None:
            values["podAnnotations"]["meshstack.io/oidc-client-secret-sha256"] = oidc_digest
        if webhook_digest is not None:
            values["podAnnotations"]["meshstack.io/alert-webhook-sha256"] = webhook_digest
        if args.proxy_config is not None:
            values["podAnnotations"][PROXY_CONFIG_ANNOTATION] = args.proxy_config
        self.chart = common.chart(
            f"{name}-chart",
            versions.GRAFANA,
            RELEASE,
            ns.metadata.name,
            values,
            self,
            # Meshed pods need the injector; the pod mounts the Secrets and the ConfigMap.
            depends_on=chart_deps,
        )

        self.namespace = ns.metadata.name
        self.admin_user = pulumi.Output.from_input(ADMIN_USER)
        self.admin_password = admin_password
        self.register_outputs(
            {
                "namespace": self.namespace,
                "admin_user": self.admin_user,
                "admin_password": self.admin_password,
            }
        )
