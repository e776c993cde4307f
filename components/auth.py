"""Sign-in in front of the dashboard and Jaeger: oauth2-proxy as their reverse proxy.

One oauth2-proxy release per UI, in the UI's own namespace, rather than one release routing by
host: each is a plain `--upstream` to one in-cluster Service (no alpha config), works the same
with no host at all (port-forward, nodePort, loadBalancer, where there is nothing to route by),
and keeps the proxy-to-UI hop inside one namespace for Linkerd policy. The cost is a sign-in
per UI, since each release has its own cookie.

Every exposure mode routes the `dashboard` and `jaeger` targets to these releases' Service
(`exposure.plan`), and each release proxies to the UI's in-cluster Service:

- `basic`: an htpasswd file (key `users.txt`) with one user, whose password and bcrypt hash come
  from pulumi-random; the user and password are stack outputs (secret);
- `oidc`: the configured provider, allowed groups and/or emails; the client secret from config.

oauth2-proxy passes the Host header through (`--pass-host-header`, default true), so the
dashboard sees the host users opened, as viz's Host check (`enforcedHostRegexp`) and tap's
same-origin check need; websockets (tap, top) are proxied (`--proxy-websockets`).

Secrets (cookie secret, client secret, htpasswd) are Pulumi secrets in a Secret the stack
makes; nothing is generated inside the chart (`config.existingSecret`).
"""

from __future__ import annotations

import json
import urllib.parse
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_kubernetes as k8s
import pulumi_random as random

from components import common, sizing, versions
from components.config import AuthSettings
from components.mesh import PROXY_CONFIG_ANNOTATION
from components.onboarding import merge_policies, policy_resources, published_policy, server

SERVICE_PORT = 80
# The Service's targetPort: the container port named `http`, 4180 (chart deployment.yaml).
TARGET_PORT, CONTAINER_PORT = "http", 4180


def release(key: str) -> str:
    """The release in front of target `key`; it holds the chart name, so the chart's fullname
    (Service, Deployment names) is the release name itself (`oauth2-proxy.fullname`). One name
    per UI, though they are in different namespaces, so each release is told apart by name."""
    return f"oauth2-proxy-{key}"


def selector(key: str) -> dict[str, str]:
    """The pod labels of `release(key)` (the chart's selectorLabels)."""
    return {"app.kubernetes.io/name": "oauth2-proxy", "app.kubernetes.io/instance": release(key)}


CREDENTIALS_SECRET = "oauth2-proxy-credentials"
BASIC_USER = "admin"
# The keys the chart's env reads from `config.existingSecret` (deployment.yaml).
SECRET_KEYS = ("client-id", "client-secret", "cookie-secret")
# oauth2-proxy takes a 16, 24 or 32 byte cookie secret; 32 alphanumerics are used as they are
# (not base64-decoded: pkg/encryption/utils.go), so no special characters.
COOKIE_SECRET_LENGTH = 32
# htpasswd alone still needs a provider's client id and secret to pass validation (the default
# provider's); these are never used, since no one is sent to that provider.
UNUSED_CLIENT = "htpasswd-only"
# oauth2-proxy's own sign-in page always shows "Sign in with <provider>" above the password form
# (pkg/app/pagewriter/sign_in.html); with htpasswd alone that button leads to a provider no one
# configured. `--custom-templates-dir` replaces the page with a file of the same name
# (pagewriter/templates.go), so `basic` mounts this page, which has only the password form.
TEMPLATES_CONFIGMAP = "oauth2-proxy-templates"
TEMPLATES_DIR = "/etc/oauth2-proxy/templates"
SIGN_IN_PAGE = """{{define "sign_in.html"}}<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Sign in</title>
<style>
body { font-family: sans-serif; max-width: 22rem; margin: 4rem auto; padding: 0 1rem; }
label, input, button { display: block; width: 100%; margin: 0.4rem 0; box-sizing: border-box; }
</style>
</head>
<body>
<h1>Sign in</h1>
{{ if .SignInMessage }}<p>{{ .SignInMessage }}</p>{{ end }}
<form method="POST" action="{{ .ProxyPrefix }}/sign_in">
<input type="hidden" name="rd" value="{{ .Redirect }}">
<label for="username">User</label>
<input id="username" name="username" autocomplete="username" required>
<label for="password">Password</label>
<input id="password" name="password" type="password" autocomplete="current-password" required>
<button type="submit">Sign in</button>
</form>
</body>
</html>
{{end}}
"""


def policy(key: str, ingress_controller_namespace: str, public: bool, cluster_domain: str) -> Any:
    """Under the UI namespace's default-deny: oauth2-proxy's port is open to the way it is
    published (the ingress controller's identities, or any network for a NodePort or
    LoadBalancer Service). The UI's own Server then admits oauth2-proxy's identity instead."""
    name = release(key)
    own: dict[str, dict[str, Any]] = {
        "Server": {name: server({"matchLabels": selector(key)}, TARGET_PORT, "HTTP/1")}
    }
    return merge_policies(
        own, published_policy(name, ingress_controller_namespace, public, cluster_domain)
    )


def htpasswd(user: str, bcrypt_hash: str) -> str:
    """The `users.txt` line for one user (oauth2-proxy reads bcrypt and {SHA} hashes)."""
    return f"{user}:{bcrypt_hash}\n"


def config_file(auth: AuthSettings) -> str:
    """oauth2-proxy's legacy config file: the lists extraArgs cannot repeat."""
    o = auth.oidc
    lines = []
    if auth.mode == "oidc":
        domains = [e[1:] for e in o.allowed_emails if e.startswith("@")]
        lines.append(
            f"email_domains = {json.dumps(domains or (['*'] if not o.allowed_emails else []))}"
        )
        if o.allowed_groups:
            lines.append(f"allowed_groups = {json.dumps(list(o.allowed_groups))}")
    else:
        # htpasswd sessions carry no email; the domain check does not apply to them.
        lines.append('email_domains = ["*"]')
    return "\n".join(lines) + "\n"


def emails_file(auth: AuthSettings) -> str:
    """Single allowed addresses (not `@domain` entries), one a line; empty: none."""
    return "\n".join(e for e in auth.oidc.allowed_emails if not e.startswith("@"))


def proxy_values(
    profile: str,
    auth: AuthSettings,
    upstream: str,
    external_url: str,
    proxy_config: pulumi.Input[str] | None = None,
) -> dict[str, Any]:
    """Values for one oauth2-proxy release. Pure.

    `upstream`: the UI's in-cluster URL. `external_url`: where users open it, when known before
    deploying (the OIDC redirect URL and the cookie's Secure flag come from it); empty: the
    proxy derives the redirect from the request.
    """
    args: dict[str, Any] = {
        "upstream": upstream,
        # Both are oauth2-proxy's defaults, set explicitly because tap needs them: the dashboard
        # checks Origin against the Host it receives, and tap and top are websockets.
        "pass-host-header": "true",
        "proxy-websockets": "true",
        # Behind an ingress controller or gateway: trust its X-Forwarded-* headers.
        "reverse-proxy": "true",
        # A Secure cookie is never sent over plain http (nodePort, loadBalancer, port-forward).
        "cookie-secure": "true" if external_url.startswith("https://") else "false",
        "skip-provider-button": "true" if auth.mode == "oidc" else "false",
    }
    if auth.mode == "oidc":
        o = auth.oidc
        args |= {
            "provider": "oidc",
            "oidc-issuer-url": o.issuer_url,
            "oidc-groups-claim": o.groups_claim,
            "scope": "openid email profile groups" if o.allowed_groups else "openid email profile",
        }
        if external_url:
            # oauth2-proxy's own endpoints are at the root of the host, whatever path the UI
            # is opened at (Jaeger's `/jaeger/`).
            origin = urllib.parse.urlsplit(external_url)
            args["redirect-url"] = f"{origin.scheme}://{origin.netloc}/oauth2/callback"
    values: dict[str, Any] = {
        "config": {
            "existingSecret": CREDENTIALS_SECRET,
            "requiredSecretKeys": list(SECRET_KEYS),
            "configFile": config_file(auth),
        },
        "extraArgs": args,
        "resources": sizing.k8s_resources(profile, "oauth2-proxy"),
        # Meshed: the hop to the UI is mTLS, and the UI's policy can name this identity.
        "podAnnotations": {**common.INJECT_ENABLED},
        # Sessions live in the cookie; no Redis.
        "redis-ha": {"enabled": False},
    }
    if auth.mode == "basic":
        values["htpasswdFile"] = {"enabled": True, "existingSecret": CREDENTIALS_SECRET}
        args["custom-templates-dir"] = TEMPLATES_DIR
        values["extraVolumes"] = [
            {"name": "templates", "configMap": {"name": TEMPLATES_CONFIGMAP}},
        ]
        values["extraVolumeMounts"] = [
            {"name": "templates", "mountPath": TEMPLATES_DIR, "readOnly": True},
        ]
    emails = emails_file(auth)
    if auth.mode == "oidc" and emails:
        values["authenticatedEmailsFile"] = {"enabled": True, "restricted_access": emails}
    if proxy_config is not None:
        values["podAnnotations"][PROXY_CONFIG_ANNOTATION] = proxy_config
    if profile == "prod":
        values |= {"replicaCount": 2, "podDisruptionBudget": {"enabled": True, "minAvailable": 1}}
    return values


@dataclass
class ProtectedUi:
    """One UI to put behind oauth2-proxy."""

    namespace: pulumi.Input[str]
    """The UI's namespace (an output of the resource that creates it); the proxy runs there."""
    upstream: str
    """The UI's in-cluster URL, `http://<service>.<namespace>.svc.<domain>:<port>`."""
    external_url: str = ""
    """Where users open it, when known before deploying. Default: unknown."""
    default_deny: bool = False
    """The namespace denies by default: the proxy's port gets a Server and the policy of the
    way it is published. Default: false (no policy objects)."""
    ingress_controller_namespace: str = ""
    """With `default_deny`: the meshed ingress controller that publishes it. Default: none."""
    public: bool = False
    """With `default_deny`: published by a NodePort or LoadBalancer Service. Default: false."""


@dataclass
class AuthArgs:
    profile: str
    """`dev` or `prod` (two replicas and a disruption budget)."""
    settings: AuthSettings
    """`basic` or `oidc` (this component is not created for `none`)."""
    uis: dict[str, ProtectedUi]
    """Target key (`dashboard`, `jaeger`) → the UI to protect."""
    control_plane: pulumi.Resource
    """The control-plane chart: the proxies are meshed, so they start after the injector."""
    proxy_config: pulumi.Input[str] | None = None
    """The control plane's proxy-config digest, so the pods roll when it changes. Default: none."""
    cluster_domain: str = "cluster.local"
    """The cluster's DNS domain, Linkerd's trust domain (ingress controller identities)."""


class Auth(pulumi.ComponentResource):
    """oauth2-proxy releases in front of the dashboard and Jaeger, and their credentials.

    Children: per UI a credentials Secret and the chart; a cookie secret per UI, and with
    `basic` the password (pulumi-random). Outputs: `basic_user` and `basic_password` (secret;
    empty with `oidc`).
    """

    basic_user: pulumi.Output[str]
    basic_password: pulumi.Output[str]

    def __init__(
        self, name: str, args: AuthArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("meshstack:auth:Auth", name, None, opts)
        s = args.settings
        child = pulumi.ResourceOptions(parent=self)
        users: pulumi.Output[str] | None = None
        password: pulumi.Output[str] = pulumi.Output.secret("")
        if s.mode == "basic":
            generated = random.RandomPassword(
                f"{name}-basic-password", length=24, special=False, opts=child
            )
            password = pulumi.Output.secret(generated.result)
            users = pulumi.Output.secret(
                generated.bcrypt_hash.apply(lambda h: htpasswd(BASIC_USER, h))
            )
        client_id = s.oidc.client_id if s.mode == "oidc" else UNUSED_CLIENT
        client_secret = pulumi.Output.secret(
            s.oidc.client_secret.value if s.mode == "oidc" else UNUSED_CLIENT
        )
        for key, ui in sorted(args.uis.items()):
            cookie = random.RandomPassword(
                f"{name}-{key}-cookie-secret",
                length=COOKIE_SECRET_LENGTH,
                special=False,
                opts=child,
            )
            data: dict[str, pulumi.Input[str]] = {
                "client-id": client_id,
                "client-secret": client_secret,
                "cookie-secret": pulumi.Output.secret(cookie.result),
            }
            if users is not None:
                data["users.txt"] = users
            secret = k8s.core.v1.Secret(
                f"{name}-{key}-credentials",
                metadata={
                    "name": CREDENTIALS_SECRET,
                    "namespace": ui.namespace,
                    "labels": dict(common.MANAGED_BY),
                },
                string_data=data,
                opts=child,
            )
            policies = (
                policy_resources(
                    f"{name}-{key}",
                    ui.namespace,
                    policy(key, ui.ingress_controller_namespace, ui.public, args.cluster_domain),
                    self,
                    labels=common.MANAGED_BY,
                )
                if ui.default_deny
                else []
            )
            pages: list[pulumi.Resource] = []
            if s.mode == "basic":
                pages.append(
                    k8s.core.v1.ConfigMap(
                        f"{name}-{key}-templates",
                        metadata={
                            "name": TEMPLATES_CONFIGMAP,
                            "namespace": ui.namespace,
                            "labels": dict(common.MANAGED_BY),
                        },
                        data={"sign_in.html": SIGN_IN_PAGE},
                        opts=child,
                    )
                )
            common.chart(
                f"{name}-{key}-chart",
                versions.OAUTH2_PROXY,
                release(key),
                ui.namespace,
                proxy_values(args.profile, s, ui.upstream, ui.external_url, args.proxy_config),
                self,
                # Meshed pods start once the injector answers, into a namespace whose rules
                # already admit their callers; the Secret holds what they read.
                depends_on=[args.control_plane, secret, *pages, *policies],
            )
        self.basic_user = pulumi.Output.from_input(BASIC_USER if s.mode == "basic" else "")
        self.basic_password = password
        self.register_outputs(
            {"basic_user": self.basic_user, "basic_password": self.basic_password}
        )
