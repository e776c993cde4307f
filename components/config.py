"""Every configuration key of the stack, parsed, defaulted and validated in one place.

`parse_settings` is a pure function: it takes the raw config map (keys without the
`meshstack:` prefix, values as the strings Pulumi hands to the program) and returns frozen,
typed settings. Every problem is collected and reported at once, naming the key, the bad
value and what is accepted, before a single resource is registered. (The one input besides
the config is the time a shared trust anchor must be valid at: `now`, the clock by default.)
A value is never shown when it is, or may be, a secret.

The defaults below are the same as the ones declared in `Pulumi.yaml` (a test holds the two
together): the CLI applies the `Pulumi.yaml` defaults, but the program must not depend on it,
because unit tests and the Automation API's inline programs run without them.
"""

from __future__ import annotations

import datetime
import ipaddress
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import SignatureAlgorithmOID

from components import lifecycle, slo

PROJECT = "meshstack"

PROFILES = ("dev", "prod")
ISSUER_MODES = ("pulumi", "external")
# What signs the issuer certificate with an external issuer: cert-manager's two issuer kinds.
ISSUER_REF_KINDS = ("ClusterIssuer", "Issuer")
TRACE_STORAGES = ("memory", "badger", "opensearch", "elasticsearch", "cassandra")
# Stores several Jaeger replicas share (the rest live inside one pod).
SHARED_TRACE_STORAGES = ("opensearch", "elasticsearch", "cassandra")
# Stores that keep spans in daily indices, removed whole by the index cleaner.
INDEX_TRACE_STORAGES = ("opensearch", "elasticsearch")
# Where Loki keeps its index and chunks, and how it runs on them (components/logging.py).
LOG_STORAGES = ("filesystem", "s3")
LOG_MODES = ("monolithic", "distributed")
EXPOSURE_MODES = ("port-forward", "ingress", "gateway", "loadBalancer", "nodePort")
# Who may open the dashboard and Jaeger: oauth2-proxy with an htpasswd user or an OIDC
# provider, or nothing in front (port-forward, or an explicit allowUnauthenticated).
AUTH_MODES = ("basic", "oidc", "none")
# The keys under `exposure` that `_auth` reads (the rest are `_exposure`'s).
AUTH_KEYS = ("auth", "allowUnauthenticated", "oidc")
# The keys under `exposure` that `_edge_sampling` reads.
EDGE_KEYS = ("traceSamplePercent",)
# An email address, or `@domain` for everyone at a domain (oauth2-proxy's email_domains).
_EMAIL = re.compile(r"^([^@\s]+)?@[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")
# OIDC issuers are trusted for their TLS certificate: discovery and keys over https only.
_HTTPS_URL = re.compile(r"^https://[^\s/?#]+(/[^\s?#]*)?$")
_NO_SPACE = re.compile(r"^\S+$")


# RFC 1123 label, the rule Kubernetes applies to namespace names.
DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
# `<namespace>/<serviceAccount>`: a namespace is a DNS label, a ServiceAccount a DNS subdomain.
SCRAPER = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?/[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$")
# A DNS subdomain (ingress base domain, cluster domain).
_DNS_NAME = re.compile(
    r"^(?=.{1,253}$)[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
)
# Kubernetes resource quantity for storage, e.g. 10Gi, 500Mi.
_STORAGE = re.compile(r"^[1-9][0-9]*(Mi|Gi|Ti)$")
# Prometheus/Loki duration in whole hours, e.g. 24h, 168h.
_HOURS = re.compile(r"^([1-9][0-9]*)h$")
# Numbers as `pulumi config set --path` may store them: as text. Without `--type`, the CLI
# turns only `true`, `false` and base-10 integers into YAML booleans and numbers and keeps
# everything else (`0.99`) a string; `--type string` keeps all of them strings. Python's own
# int() and float() also take `1_000`, ` 5`, `nan` and `inf`, which no one means here.
_INT_TEXT = re.compile(r"^-?[0-9]+$")
_NUMBER_TEXT = re.compile(r"^-?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][-+]?[0-9]+)?$")
_BOOL_TEXT = {"true": True, "false": False}

# The issuer's renewal window. pulumi-tls renews a certificate only when a `pulumi up` runs
# inside it, and `linkerd check` warns from 60 days before expiry (linkerd2
# pkg/issuercerts/issuercerts.go expirationWarningThresholdInDays): 90 days leaves a month of
# weekly renew runs before that. A renewed issuer then serves at least 30 days before its own
# window opens, or nearly every run would renew it again.
MIN_EARLY_RENEWAL_HOURS = 24 * 90
MIN_ISSUER_SERVICE_HOURS = 24 * 30

# Namespaces the platform owns: onboarding one of them would hand a team the platform's policy.
RESERVED_NAMESPACES = frozenset(
    {
        "default",
        "kube-system",
        "kube-public",
        "kube-node-lease",
        "linkerd",
        "linkerd-viz",
        "tracing",
        "tracing-store",
        "logging",
        "grafana",
        "emojivoto",
    }
)


class ConfigError(ValueError):
    """Raised with every configuration problem found, one per line."""


@dataclass(frozen=True)
class SecretValue:
    """A config value that must only reach resources as a Pulumi secret.

    `repr` hides the value so it never lands in a log or a test failure message.
    """

    value: str

    def __repr__(self) -> str:
        return "SecretValue(***)"

    def __bool__(self) -> bool:
        return bool(self.value)


@dataclass(frozen=True)
class ExternalIssuerSettings:
    """cert-manager issues Linkerd's identity issuer, trust-manager distributes the roots."""

    issuer_ref_kind: str = "ClusterIssuer"
    """Kind of the cert-manager issuer that signs: `ClusterIssuer`, or an `Issuer` in the
    `linkerd` namespace."""
    issuer_ref_name: str = ""
    """Its name; required with issuer `external`."""
    install_cert_manager: bool = True
    """True: the stack installs cert-manager and trust-manager. False: both already run."""
    cert_manager_namespace: str = "cert-manager"
    """Where cert-manager and trust-manager run; a ClusterIssuer the stack makes (from the
    anchor's key) keeps its CA Secret here, cert-manager's cluster resource namespace."""


@dataclass(frozen=True)
class IdentitySettings:
    """Linkerd mTLS identity: who makes the trust anchor and the issuer."""

    issuer: str = "pulumi"
    """`pulumi`: the stack makes the issuer with pulumi-tls. `external`: cert-manager manages
    the `linkerd-identity-issuer` Secret and trust-manager the trust bundle
    (`identity.externalCA`, issuer scheme `kubernetes.io/tls`)."""
    external: ExternalIssuerSettings = ExternalIssuerSettings()
    """With issuer `external`: which cert-manager issuer signs, and who installs cert-manager."""
    rotation: str = "none"
    """The trust-anchor rotation phase this `up` runs (components/lifecycle.py)."""
    rotation_plan: lifecycle.Plan = lifecycle.STEADY
    """The anchors this `up` trusts and signs with: `rotation` checked against the phase and
    anchors the stack's last update exported."""
    next_trust_anchor_pem: str = ""
    """During a rotation, the new anchor given in config. Empty: the stack generates it."""
    next_trust_anchor_key_pem: SecretValue = SecretValue("")
    """The given new anchor's private key (config `nextTrustAnchorKeyPem`, a secret)."""
    trust_anchor_pem: str = ""
    """A trust anchor certificate shared with other clusters. Empty: the stack generates one."""
    trust_anchor_key_pem: SecretValue = SecretValue("")
    """The shared anchor's private key (config `trustAnchorKeyPem`, a secret); needed to sign
    the issuer when `trust_anchor_pem` is set and the issuer is made by the stack."""
    trust_anchor_validity_hours: int = 87600
    issuer_validity_hours: int = 8760
    issuer_early_renewal_hours: int = 2160
    """Any `pulumi up` this close to the issuer's expiry renews it: 90 days, a month before
    `linkerd check` warns."""


@dataclass(frozen=True)
class LinkerdSettings:
    install_gateway_api_crds: bool = True
    cni: bool = False
    """The linkerd2-cni plugin sets up each pod's traffic redirection instead of the root,
    NET_ADMIN `linkerd-init` container, so meshed namespaces can enforce PSA `restricted`.
    Default: per profile (`PROFILE_DEFAULTS`)."""
    identity: IdentitySettings = IdentitySettings()
    prometheus_url: str = ""
    """An external Prometheus for viz; empty runs viz's bundled Prometheus."""
    prometheus_scraper: tuple[str, str] = ("linkerd-viz", "prometheus")
    """(namespace, ServiceAccount) of the meshed Prometheus that scrapes the proxies: what
    default-deny namespaces admit on the proxies' admin port. Default: viz's bundled one."""


@dataclass(frozen=True)
class TraceStoreSettings:
    """The distributed store Jaeger keeps spans in (`tracing.store`)."""

    in_cluster: bool = False
    """OpenSearch only: a single-node OpenSearch the stack runs (kind, tests)."""
    servers: tuple[str, ...] = ()
    """OpenSearch/Elasticsearch: `http(s)://host:port` URLs; Cassandra: `host` or
    `host:port` contact points."""
    index_prefix: str = "jaeger"
    keyspace: str = "jaeger_v1_dc1"
    local_dc: str = ""
    tls: bool = False
    """Cassandra: TLS to the contact points (OpenSearch/Elasticsearch: the URL scheme)."""
    tls_skip_verify: bool = False
    """Accept any server certificate: for a test cluster with a self-signed one only."""
    username: str = ""
    password: SecretValue = SecretValue("")
    """Config `jaegerStorePassword` (a secret)."""


@dataclass(frozen=True)
class TracingSettings:
    enabled: bool = True
    open_census: bool = True
    storage: str = "memory"
    storage_size: str = "10Gi"
    storage_class: str = ""
    span_ttl_hours: int = 72
    store: TraceStoreSettings = TraceStoreSettings()


@dataclass(frozen=True)
class BucketSettings:
    """The S3-compatible bucket Loki keeps its index and chunks in (`logging.s3`)."""

    in_cluster: bool = False
    """True: a SeaweedFS the stack runs in the `logging` namespace (kind, tests); its
    credentials are generated. False: an external bucket at `endpoint`."""
    endpoint: str = ""
    """`http(s)://host[:port]` of the S3 API; required for an external bucket."""
    region: str = "us-east-1"
    bucket: str = "loki-chunks"
    force_path_style: bool = False
    """Path-style requests (`host/bucket/key`): what most S3-compatible stores need. AWS S3
    prefers virtual-hosted style. The in-cluster store always uses path style."""
    access_key_id: str = ""
    secret_access_key: SecretValue = SecretValue("")
    """Config `lokiS3SecretAccessKey` (a secret)."""
    service_account_annotations: tuple[tuple[str, str], ...] = ()
    """Workload identity instead of keys, e.g. `eks.amazonaws.com/role-arn`."""


@dataclass(frozen=True)
class LoggingSettings:
    enabled: bool = True
    retention_hours: int = 168
    persistence: bool = False
    storage_size: str = "10Gi"
    storage_class: str = ""
    storage: str = "filesystem"
    """`filesystem` (one pod, on its volume) or `s3` (an S3-compatible bucket)."""
    mode: str = "monolithic"
    """`monolithic` (the single binary, `replicas` of it) or `distributed` (the chart's
    Distributed mode: ingesters, distributors, queriers... each scaled on its own)."""
    replicas: int = 1
    """Monolithic replicas; more than one needs `s3`, which they share."""
    s3: BucketSettings = BucketSettings()


@dataclass(frozen=True)
class GrafanaSettings:
    enabled: bool = True
    persistence: bool = False
    grafana_com_dashboards: bool = False
    success_rate_threshold: float = 0.95
    latency_p99_ms: int = 500
    alert_webhook_url: SecretValue = SecretValue("")


@dataclass(frozen=True)
class EmojivotoSettings:
    enabled: bool = True
    replicas: int = 1
    vote_bot_replicas: int = 1
    """The v11 vote-bot has no rate setting: each replica votes about once a second."""


@dataclass(frozen=True)
class ExposureSettings:
    mode: str = "port-forward"
    ingress_class: str = ""
    """Required in `ingress` mode: no controller is assumed."""
    domain: str = ""
    tls_secret: str = ""
    cluster_issuer: str = ""
    ingress_namespace: str = "ingress-nginx"
    """Where the (meshed) ingress controller runs; its identity may call the app's web."""
    gateway_class: str = ""
    """Required in `gateway` mode: the GatewayClass the Gateway attaches to (the stack creates
    it when it installs Envoy Gateway)."""
    gateway_namespace: str = "envoy-gateway-system"
    """Where the Gateway and its (meshed) data plane run; their identities may call the UIs."""
    install_envoy_gateway: bool = False
    """Install Envoy Gateway with a meshed data plane; false: use the cluster's own controller."""


@dataclass(frozen=True)
class OidcSettings:
    """The OpenID Connect provider oauth2-proxy and Grafana sign users in with."""

    issuer_url: str = ""
    client_id: str = ""
    client_secret: SecretValue = SecretValue("")
    allowed_groups: tuple[str, ...] = ()
    allowed_emails: tuple[str, ...] = ()
    """Addresses, or `@domain` for everyone at a domain."""
    groups_claim: str = "groups"
    auth_url: str = ""
    token_url: str = ""
    userinfo_url: str = ""
    """The issuer's authorization, token and userinfo endpoints (its discovery document's
    `authorization_endpoint`, `token_endpoint`, `userinfo_endpoint`), for Grafana: its generic
    OAuth sign-in is configured by endpoint and reads no discovery document."""


# The endpoint keys Grafana's sign-in needs: config key → discovery document field.
OIDC_ENDPOINT_KEYS = {
    "authUrl": "authorization_endpoint",
    "tokenUrl": "token_endpoint",
    "userinfoUrl": "userinfo_endpoint",
}


@dataclass(frozen=True)
class AuthSettings:
    """Sign-in in front of the dashboard and Jaeger (config `exposure.auth` and its keys)."""

    mode: str = "none"
    """One of AUTH_MODES, resolved: an unset `exposure.auth` is `none` with port-forward and
    `basic` in every other mode (production-safe by default)."""
    allow_unauthenticated: bool = False
    oidc: OidcSettings = OidcSettings()

    @property
    def enabled(self) -> bool:
        return self.mode != "none"


@dataclass(frozen=True)
class TeamNamespace:
    name: str
    adopt: bool = False
    """True: the namespace already exists; the stack patches its labels instead of creating it."""
    prometheus_readers: tuple[str, ...] = ()
    """ServiceAccounts of the namespace that may query viz's Prometheus (`prometheusReaders`)."""


@dataclass(frozen=True)
class LinkSettings:
    """One Link to a peer cluster's stack (config `multicluster.links[i]`)."""

    stack: str
    """The peer's stack, `<org>/<project>/<stack>`."""
    mode: str = "gateway"
    """`gateway`, `pod-to-pod` or `federated`."""
    cluster: str = ""
    """The peer's cluster name, read from its `multicluster` output."""
    cluster_domain: str = ""
    """The peer's cluster domain (its trust domain), read from the same output."""


@dataclass(frozen=True)
class MulticlusterSettings:
    """Linkerd multicluster: this cluster's name and networks, its gateway, its links, and
    where the trust root comes from."""

    enabled: bool = False
    cluster_name: str = ""
    """Default: the stack's name."""
    trust_stack: str = ""
    """The trust stack (`trust/`) whose outputs give the anchor; empty: the anchor in
    `linkerd.identity` (or a generated one, for a cluster without links)."""
    api_server_address: str = ""
    pod_cidr: str = ""
    service_cidr: str = ""
    gateway: bool = True
    gateway_service_type: str = "LoadBalancer"
    gateway_address: str = ""
    gateway_node_port: int = 30143
    gateway_probe_node_port: int = 30191
    links: tuple[LinkSettings, ...] = ()
    placement: tuple[tuple[str, str], ...] = ()
    """(emojivoto workload, cluster name): where a workload runs; unplaced ones run here."""

    def cluster_of(self, workload: str) -> str:
        return dict(self.placement).get(workload, self.cluster_name)

    def link_to(self, cluster: str) -> LinkSettings | None:
        return next((link for link in self.links if link.cluster == cluster), None)


@dataclass(frozen=True)
class SloSettings:
    objectives: tuple[slo.Objective, ...] = ()
    """`slo.objectives`, then emojivoto's (`slo.emojivoto`) for its deployments not named
    there. Empty: no SLO rules or dashboard."""
    prometheus_storage_size: str = ""
    """The viz Prometheus volume; empty: an emptyDir (kept until the pod moves)."""
    prometheus_retention_hours: int = 0
    """What viz's Prometheus keeps: the longest objective window; 0: the chart's 6h."""


@dataclass(frozen=True)
class Settings:
    stack: str
    profile: str = "dev"
    kubeconfig: str = ""
    kube_context: str = ""
    cluster_domain: str = "cluster.local"
    linkerd: LinkerdSettings = LinkerdSettings()
    tracing: TracingSettings = TracingSettings()
    logging: LoggingSettings = LoggingSettings()
    grafana: GrafanaSettings = GrafanaSettings()
    emojivoto: EmojivotoSettings = EmojivotoSettings()
    exposure: ExposureSettings = ExposureSettings()
    auth: AuthSettings = AuthSettings()
    teams: tuple[TeamNamespace, ...] = field(default_factory=tuple)
    multicluster: MulticlusterSettings = MulticlusterSettings()
    slo: SloSettings = SloSettings()
    edge_trace_sample_percent: float = 100.0
    """Share of requests the edge proxy (the stack's Envoy Gateway) starts a trace for."""

    @property
    def high_availability(self) -> bool:
        return self.profile == "prod"


# --- Reading ---------------------------------------------------------------------------------


class _Reader:
    """Collects every problem with its key path instead of stopping at the first."""

    def __init__(self, secret_keys: frozenset[str] = frozenset()) -> None:
        self.errors: list[str] = []
        self.secret_keys = secret_keys

    def fail(self, key: str, value: Any, accepted: str) -> None:
        # A value under a key set with --secret is never shown, whatever its type.
        top = re.split(r"[.\[]", key, maxsplit=1)[0]
        hidden = isinstance(value, SecretValue) or top in self.secret_keys or top in NEVER_SHOWN
        shown = "(secret)" if hidden else json.dumps(value)
        self.errors.append(f"{PROJECT}:{key}: got {shown}; {accepted}")

    def decode(self, key: str, raw: str | None, kind: str) -> Any:
        """Turn the string Pulumi hands over into a Python value of the declared type."""
        if raw is None:
            return None
        if kind == "string":
            return raw
        if kind == "boolean":
            # Exactly the two words the CLI stores; JSON would also let `null` through as unset.
            if raw in _BOOL_TEXT:
                return _BOOL_TEXT[raw]
            self.fail(key, raw, f"expected a boolean (write it as {_EXAMPLE[kind]})")
            return None
        try:
            value = json.loads(raw)
        except json.JSONDecodeError:
            self.fail(key, raw, f"expected a {kind} (write it as {_EXAMPLE[kind]})")
            return None
        return value

    def pick(
        self,
        obj: Mapping[str, Any],
        prefix: str,
        name: str,
        default: Any,
        check: Callable[[Any], bool],
        accepted: str,
    ) -> Any:
        if name not in obj or obj[name] is None:
            return default
        given = obj[name]
        value = _as_declared(default, given)
        # bool is an int in Python; a flag must not pass as a number or the reverse.
        if isinstance(default, bool) != isinstance(value, bool) or not check(value):
            self.fail(_join(prefix, name), given, accepted + _set_hint(prefix, name, default))
            return default
        return value

    def unknown(self, obj: Mapping[str, Any], prefix: str, known: tuple[str, ...]) -> None:
        for key in sorted(set(obj) - set(known)):
            close = [k for k in known if k.lower() == key.lower() or _near(k, key)]
            hint = f"did you mean `{close[0]}`?" if close else f"known keys: {', '.join(known)}"
            self.errors.append(f"{PROJECT}:{_join(prefix, key)}: unknown key; {hint}")


_EXAMPLE = {
    "boolean": "true or false",
    "integer": "a whole number such as 3",
    "number": "a number such as 0.95",
    "object": "a map, e.g. `pulumi config set --path tracing.storage badger`",
    "array": "a list",
}


def _join(prefix: str, name: str) -> str:
    return f"{prefix}.{name}" if prefix else name


def _as_declared(default: Any, value: Any) -> Any:
    """`value` as the type of its key (told by the key's default), when it is in a form the
    CLI stores for that type; anything else comes back unchanged for the check to reject.

    `pulumi config set --path grafana.alerts.successRate 0.99` stores the string "0.99"
    (only integers and true/false become YAML numbers and booleans), `--type string` stores
    "500" or "true" as strings, and `--path onboarding.namespaces[0].name 2024` stores a number.
    """
    if isinstance(value, bool):
        return value
    if isinstance(default, str) and isinstance(value, int):
        return str(value)
    if not isinstance(value, str):
        return value
    if isinstance(default, bool):
        return _BOOL_TEXT.get(value, value)
    if isinstance(default, int) and _INT_TEXT.match(value):
        return int(value)
    if isinstance(default, float) and _NUMBER_TEXT.match(value):
        return float(value)
    return value


def _set_hint(prefix: str, name: str, default: Any) -> str:
    """How to set a boolean or numeric key right, with its default as the example value."""
    if isinstance(default, str):
        return ""
    key = _join(prefix, name)
    if prefix:
        shown = f"'{key}'" if "[" in key else key
        return f"; set it with `pulumi config set --path {shown} {json.dumps(default)}`"
    return f"; set it with `pulumi config set {key} {json.dumps(default)}`"


def _near(a: str, b: str) -> bool:
    """True when two keys differ by one edit: enough to catch a typo."""
    if abs(len(a) - len(b)) > 1:
        return False
    if len(a) == len(b):
        return sum(x != y for x, y in zip(a, b, strict=True)) <= 1
    short, long_ = sorted((a, b), key=len)
    return any(long_[:i] + long_[i + 1 :] == short for i in range(len(long_)))


def _is_int(lo: int, hi: int) -> Callable[[Any], bool]:
    return lambda v: isinstance(v, int) and not isinstance(v, bool) and lo <= v <= hi


def _is_bool(v: Any) -> bool:
    return isinstance(v, bool)


def _one_of(options: tuple[str, ...]) -> Callable[[Any], bool]:
    return lambda v: v in options


def _matches(pattern: re.Pattern[str]) -> Callable[[Any], bool]:
    return lambda v: isinstance(v, str) and bool(pattern.match(v))


def _hours(value: str) -> int:
    match = _HOURS.match(value)
    assert match  # checked by the caller
    return int(match.group(1))


# Top-level keys: name → declared type. Pulumi.yaml declares exactly these (a test checks).
TOP_LEVEL_KEYS: dict[str, str] = {
    "profile": "string",
    "kubeconfig": "string",
    "kubeContext": "string",
    "clusterDomain": "string",
    "linkerd": "object",
    "trustAnchorKeyPem": "string",
    "nextTrustAnchorKeyPem": "string",
    "enableTracing": "boolean",
    "tracing": "object",
    "enableLogging": "boolean",
    "logging": "object",
    "enableGrafana": "boolean",
    "grafana": "object",
    "alertWebhookUrl": "string",
    "enableEmojivoto": "boolean",
    "emojivoto": "object",
    "exposure": "object",
    "onboarding": "object",
    "oidcClientSecret": "string",
    "enableMulticluster": "boolean",
    "multicluster": "object",
    "slo": "object",
    "lokiS3SecretAccessKey": "string",
    "jaegerStorePassword": "string",
}

# Keys whose default depends on the profile: key → profile → default. `Pulumi.yaml` leaves
# them out of its defaults (one default there would apply to every profile) and says so in the
# key's description; the README's Configure table gives each profile's default.
PROFILE_DEFAULTS: dict[str, dict[str, Any]] = {
    # Production gets restricted pods; a laptop's kind cluster is not known to chain the
    # plugin behind kindnet, so dev keeps linkerd-init unless asked.
    "linkerd.cni": {"dev": False, "prod": True},
    # The volume of viz's Prometheus with SLOs: a 30-day window of a few hundred pods in prod;
    # a laptop keeps it in an emptyDir.
    "slo.prometheusStorageSize": {"dev": "", "prod": "20Gi"},
    # Every request traced on a laptop; 1% in production, where each trace costs the collector,
    # Jaeger's storage and the span metrics.
    "exposure.traceSamplePercent": {"dev": 100.0, "prod": 1.0},
}

# Keys whose values must be set with `pulumi config set --secret`.
SECRET_KEYS = (
    "trustAnchorKeyPem",
    "nextTrustAnchorKeyPem",
    "alertWebhookUrl",
    "oidcClientSecret",
    "lokiS3SecretAccessKey",
    "jaegerStorePassword",
)
# Keys whose value no error shows, secret or not: `kubeconfig` may hold a whole kubeconfig, with
# a client key or token, even where the CLI stores it in plain text.
NEVER_SHOWN = frozenset({*SECRET_KEYS, "kubeconfig"})


def is_kubeconfig_contents(value: str) -> bool:
    """True when `kubeconfig` holds a kubeconfig itself rather than the path of one: a path is
    one line, a kubeconfig (YAML, or JSON as `kubectl config view -o json` prints it) is not,
    or names its `apiVersion`."""
    text = value.strip()
    return "\n" in text or text.startswith("{") or "apiVersion" in text


# The engine's builtin function that reads a stack's outputs (pulumi/pulumi
# pkg/resource/deploy/builtins.go): {"name": "<org>/<project>/<stack>"} → {"outputs": {...}}.
READ_STACK_OUTPUTS = "pulumi:pulumi:readStackOutputs"


def previous_outputs(result: Mapping[str, Any] | None) -> dict[str, Any]:
    """The outputs of the stack's last update, from a `readStackOutputs` result (empty for a
    stack never updated, or under test mocks that answer nothing)."""
    outputs = (result or {}).get("outputs") or {}
    return dict(outputs) if isinstance(outputs, Mapping) else {}


def parse_settings(
    raw: Mapping[str, str],
    stack: str,
    secret_keys: frozenset[str] = frozenset(),
    now: datetime.datetime | None = None,
    previous: Mapping[str, Any] | None = None,
    peers: Mapping[str, Mapping[str, Any]] | None = None,
) -> Settings:
    """Parse the raw config (keys without the project prefix) into `Settings`.

    `now` (default: the current time) is when a shared trust anchor must be valid.
    `previous` holds the outputs of the stack's last update (empty before the first), for
    changes that are only safe relative to what is deployed. `peers` holds the outputs of the
    stacks `multicluster` names (trust stack, linked clusters) by stack name.
    Raises `ConfigError` listing every problem found.
    """
    r = _Reader(secret_keys)
    r.unknown(raw, "", tuple(TOP_LEVEL_KEYS))
    values = {k: r.decode(k, raw.get(k), kind) for k, kind in TOP_LEVEL_KEYS.items()}
    for key, kind in TOP_LEVEL_KEYS.items():
        value = values[key]
        if value is None:
            continue
        expected = {"string": str, "boolean": bool, "object": dict}[kind]
        if not isinstance(value, expected):
            r.fail(key, value, f"expected a {kind} (write it as {_EXAMPLE.get(kind, 'text')})")
            values[key] = None
    for key in SECRET_KEYS:
        if values[key] and key not in secret_keys:
            r.errors.append(
                f"{PROJECT}:{key}: is stored in plain text; set it with "
                f"`pulumi config set --secret {key} <value>`"
            )
    kubeconfig = values["kubeconfig"]
    if (
        isinstance(kubeconfig, str)
        and is_kubeconfig_contents(kubeconfig)
        and "kubeconfig" not in secret_keys
    ):
        # The provider receives it as a secret either way; this keeps the credentials out of
        # the stack file, where the CLI stores a value not set with --secret as it is.
        r.errors.append(
            f"{PROJECT}:kubeconfig: holds a kubeconfig's contents in plain text (not shown); "
            "set it with `pulumi config set --secret kubeconfig < kubeconfig.yaml`, or give the "
            "path of the file instead"
        )

    top = {k: v for k, v in values.items() if v is not None and TOP_LEVEL_KEYS[k] != "object"}
    profile = r.pick(top, "", "profile", "dev", _one_of(PROFILES), f"expected one of {PROFILES}")
    cluster_domain = r.pick(
        top,
        "",
        "clusterDomain",
        "cluster.local",
        _matches(_DNS_NAME),
        "expected a DNS name such as cluster.local",
    )

    settings = Settings(
        stack=stack,
        profile=profile,
        kubeconfig=top.get("kubeconfig", ""),
        kube_context=top.get("kubeContext", ""),
        cluster_domain=cluster_domain,
        linkerd=_linkerd(
            r,
            values["linkerd"] or {},
            values["trustAnchorKeyPem"] or "",
            values["nextTrustAnchorKeyPem"] or "",
            profile,
        ),
        tracing=_tracing(
            r,
            values["tracing"] or {},
            _flag(values, "enableTracing"),
            values["jaegerStorePassword"] or "",
        ),
        logging=_logging(
            r,
            values["logging"] or {},
            _flag(values, "enableLogging"),
            values["lokiS3SecretAccessKey"] or "",
        ),
        grafana=_grafana(
            r,
            values["grafana"] or {},
            _flag(values, "enableGrafana"),
            values["alertWebhookUrl"] or "",
        ),
        emojivoto=_emojivoto(r, values["emojivoto"] or {}, _flag(values, "enableEmojivoto")),
        exposure=_exposure(
            r,
            {k: v for k, v in (values["exposure"] or {}).items() if k not in AUTH_KEYS + EDGE_KEYS},
        ),
        auth=_auth(r, values["exposure"] or {}, values["oidcClientSecret"] or ""),
        teams=_onboarding(r, values["onboarding"] or {}),
    )
    settings = _multicluster(
        r, settings, values["multicluster"] or {}, values["enableMulticluster"] is True, peers or {}
    )
    settings = replace(
        settings,
        slo=_slo(r, values["slo"] or {}, settings),
        edge_trace_sample_percent=_edge_sampling(r, values["exposure"] or {}, profile),
    )
    _cross_checks(r, settings)
    _check_volumes(r, settings, previous or {})
    _check_trust_anchor(r, settings, now or datetime.datetime.now(datetime.UTC))
    settings = _identity_lifecycle(r, settings, previous or {})
    settings = _check_links(r, settings, peers or {})
    if r.errors:
        raise ConfigError("\n".join(r.errors))
    return settings


def _flag(values: Mapping[str, Any], key: str) -> bool:
    value = values.get(key)
    return True if value is None else bool(value)


def _linkerd(
    r: _Reader,
    obj: Mapping[str, Any],
    anchor_key: str,
    next_anchor_key: str = "",
    profile: str = "dev",
) -> LinkerdSettings:
    r.unknown(
        obj,
        "linkerd",
        ("installGatewayApiCrds", "cni", "identity", "prometheusUrl", "prometheusScraper"),
    )
    ident = obj.get("identity") or {}
    if not isinstance(ident, dict):
        r.fail("linkerd.identity", ident, "expected a map of identity settings")
        ident = {}
    keys = (
        "issuer",
        "trustAnchorPem",
        "trustAnchorValidityHours",
        "issuerValidityHours",
        "issuerEarlyRenewalHours",
        "rotation",
        "nextTrustAnchorPem",
        "issuerRefKind",
        "issuerRefName",
        "installCertManager",
        "certManagerNamespace",
    )
    r.unknown(ident, "linkerd.identity", keys)
    d = IdentitySettings()
    p = "linkerd.identity"
    # Only the type here: what the PEM holds is checked by `_check_trust_anchor`, which never
    # prints it (someone may have pasted a private key).
    anchor_pem = r.pick(
        ident,
        p,
        "trustAnchorPem",
        "",
        lambda v: isinstance(v, str),
        "expected a PEM certificate (-----BEGIN CERTIFICATE-----) or empty to generate one",
    )
    identity = IdentitySettings(
        issuer=r.pick(
            ident, p, "issuer", d.issuer, _one_of(ISSUER_MODES), f"expected one of {ISSUER_MODES}"
        ),
        trust_anchor_pem=anchor_pem,
        trust_anchor_key_pem=SecretValue(anchor_key),
        external=_external_issuer(r, ident, p),
        rotation=r.pick(
            ident,
            p,
            "rotation",
            d.rotation,
            _one_of(lifecycle.PHASES),
            f"expected one of {lifecycle.PHASES} (README: Rotate the trust anchor)",
        ),
        next_trust_anchor_pem=r.pick(
            ident,
            p,
            "nextTrustAnchorPem",
            "",
            lambda v: isinstance(v, str),
            "expected a PEM certificate (-----BEGIN CERTIFICATE-----) or empty to generate one",
        ),
        next_trust_anchor_key_pem=SecretValue(next_anchor_key),
        trust_anchor_validity_hours=r.pick(
            ident,
            p,
            "trustAnchorValidityHours",
            d.trust_anchor_validity_hours,
            _is_int(24 * 30, 24 * 365 * 20),
            "expected hours between 720 (30 days) and 175200 (20 years)",
        ),
        issuer_validity_hours=r.pick(
            ident,
            p,
            "issuerValidityHours",
            d.issuer_validity_hours,
            _is_int(MIN_EARLY_RENEWAL_HOURS + MIN_ISSUER_SERVICE_HOURS, 24 * 365 * 5),
            f"expected hours between {MIN_EARLY_RENEWAL_HOURS + MIN_ISSUER_SERVICE_HOURS} (the "
            "90-day renewal window after 30 days of service) and 43800 (5 years)",
        ),
        issuer_early_renewal_hours=r.pick(
            ident,
            p,
            "issuerEarlyRenewalHours",
            d.issuer_early_renewal_hours,
            _is_int(MIN_EARLY_RENEWAL_HOURS, 24 * 365 * 5),
            f"expected hours between {MIN_EARLY_RENEWAL_HOURS} (90 days: `linkerd check` warns "
            "from 60 days before expiry, and only a `pulumi up` inside the window renews) and "
            "43800",
        ),
    )
    prometheus_url = r.pick(
        obj,
        "linkerd",
        "prometheusUrl",
        "",
        lambda v: isinstance(v, str) and (v == "" or re.match(r"^https?://[^\s/]+", v) is not None),
        "expected an http(s) URL such as http://prometheus.monitoring:9090, or empty for viz's own",
    )
    # Meshed namespaces deny by default, so whoever scrapes the proxies must be named: viz's
    # own Prometheus, or the external one, which must then run meshed as this identity.
    scraper = r.pick(
        obj,
        "linkerd",
        "prometheusScraper",
        "",
        lambda v: isinstance(v, str) and (v == "" or SCRAPER.match(v) is not None),
        "expected <namespace>/<serviceAccount> of the meshed Prometheus that scrapes Linkerd's "
        "proxies, e.g. monitoring/prometheus",
    )
    if prometheus_url and obj.get("prometheusScraper") in (None, ""):
        r.fail(
            "linkerd.prometheusScraper",
            "",
            "required with linkerd.prometheusUrl: meshed namespaces deny by default, so name the "
            "<namespace>/<serviceAccount> your (meshed) Prometheus runs as, e.g. "
            "`pulumi config set --path linkerd.prometheusScraper monitoring/prometheus`",
        )
    elif scraper and not prometheus_url:
        r.fail(
            "linkerd.prometheusScraper",
            scraper,
            "only with linkerd.prometheusUrl; viz's own Prometheus is admitted already, so "
            "remove it or set linkerd.prometheusUrl",
        )
    namespace, _, account = (scraper or "").partition("/")
    return LinkerdSettings(
        install_gateway_api_crds=r.pick(
            obj, "linkerd", "installGatewayApiCrds", True, _is_bool, "expected true or false"
        ),
        cni=r.pick(
            obj,
            "linkerd",
            "cni",
            PROFILE_DEFAULTS["linkerd.cni"][profile],
            _is_bool,
            "expected true or false",
        ),
        identity=identity,
        prometheus_url=prometheus_url,
        prometheus_scraper=(namespace, account) if account else LinkerdSettings.prometheus_scraper,
    )


def _external_issuer(r: _Reader, ident: Mapping[str, Any], p: str) -> ExternalIssuerSettings:
    d = ExternalIssuerSettings()
    return ExternalIssuerSettings(
        issuer_ref_kind=r.pick(
            ident,
            p,
            "issuerRefKind",
            d.issuer_ref_kind,
            _one_of(ISSUER_REF_KINDS),
            f"expected one of {ISSUER_REF_KINDS}",
        ),
        issuer_ref_name=r.pick(
            ident,
            p,
            "issuerRefName",
            "",
            _empty_or_dns_name,
            "expected the name of a cert-manager issuer, such as linkerd-trust-anchor",
        ),
        install_cert_manager=r.pick(
            ident,
            p,
            "installCertManager",
            d.install_cert_manager,
            _is_bool,
            "expected true or false",
        ),
        cert_manager_namespace=r.pick(
            ident,
            p,
            "certManagerNamespace",
            d.cert_manager_namespace,
            _matches(DNS_LABEL),
            "expected a namespace name such as cert-manager",
        ),
    )


def _tracing(
    r: _Reader, obj: Mapping[str, Any], enabled: bool, password: str = ""
) -> TracingSettings:
    keys = ("openCensus", "storage", "storageSize", "storageClass", "spanTtl", "store")
    r.unknown(obj, "tracing", keys)
    d = TracingSettings()
    ttl = r.pick(
        obj,
        "tracing",
        "spanTtl",
        f"{d.span_ttl_hours}h",
        _matches(_HOURS),
        "expected whole hours such as 72h",
    )
    return TracingSettings(
        enabled=enabled,
        open_census=r.pick(
            obj, "tracing", "openCensus", d.open_census, _is_bool, "expected true or false"
        ),
        storage=r.pick(
            obj,
            "tracing",
            "storage",
            d.storage,
            _one_of(TRACE_STORAGES),
            f"expected one of {TRACE_STORAGES}",
        ),
        storage_size=r.pick(
            obj,
            "tracing",
            "storageSize",
            d.storage_size,
            _matches(_STORAGE),
            "expected a size such as 10Gi",
        ),
        storage_class=r.pick(obj, "tracing", "storageClass", "", _empty_or_dns_name, _SC_HELP),
        span_ttl_hours=_hours(ttl),
        store=_trace_store(r, obj.get("store"), password),
    )


# An OpenSearch/Elasticsearch URL: scheme, host, optional port, nothing after it.
_STORE_URL = re.compile(r"^https?://[a-z0-9]([-a-z0-9.]*[a-z0-9])?(:[0-9]{1,5})?/?$", re.I)
# A Cassandra contact point: host or host:port.
_CONTACT_POINT = re.compile(r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?(:[0-9]{1,5})?$", re.I)
# Index prefixes are lower case without separators Jaeger adds itself; keyspaces are CQL names.
_INDEX_PREFIX = re.compile(r"^[a-z0-9][a-z0-9_.]{0,40}$")
_KEYSPACE = re.compile(r"^[a-zA-Z][a-zA-Z0-9_]{0,47}$")


def _trace_store(r: _Reader, obj: Any, password: str) -> TraceStoreSettings:
    p = "tracing.store"
    keys = ("inCluster", "servers", "indexPrefix", "keyspace", "localDc", "tls")
    obj = _section(
        r,
        obj,
        p,
        (*keys, "tlsSkipVerify", "username"),
        "expected a map with inCluster, or servers and credentials",
    )
    d = TraceStoreSettings()
    servers = obj.get("servers") or []
    if isinstance(servers, str):
        servers = [servers]
    if not isinstance(servers, list) or not all(isinstance(x, str) for x in servers):
        r.fail(f"{p}.servers", servers, "expected a list of URLs or host[:port] contact points")
        servers = []
    return TraceStoreSettings(
        in_cluster=r.pick(obj, p, "inCluster", d.in_cluster, _is_bool, "expected true or false"),
        servers=tuple(servers),
        index_prefix=r.pick(
            obj,
            p,
            "indexPrefix",
            d.index_prefix,
            _matches(_INDEX_PREFIX),
            "expected a lower-case index prefix such as jaeger",
        ),
        keyspace=r.pick(
            obj,
            p,
            "keyspace",
            d.keyspace,
            _matches(_KEYSPACE),
            "expected a CQL keyspace name such as jaeger_v1_dc1",
        ),
        local_dc=r.pick(obj, p, "localDc", "", _empty_or(_NO_SPACE), "expected a data center name"),
        tls=r.pick(obj, p, "tls", d.tls, _is_bool, "expected true or false"),
        tls_skip_verify=r.pick(
            obj, p, "tlsSkipVerify", d.tls_skip_verify, _is_bool, "expected true or false"
        ),
        username=r.pick(obj, p, "username", "", _empty_or(_NO_SPACE), "expected a user name"),
        password=SecretValue(password),
    )


def _check_trace_store(r: _Reader, s: Settings) -> None:
    """Jaeger's store together with its servers, credentials and the span TTL."""
    t = s.tracing
    if not t.enabled or t.storage not in SHARED_TRACE_STORAGES:
        return
    st = t.store
    p = "tracing.store"
    if st.in_cluster:
        if t.storage != "opensearch":
            r.fail(
                f"{p}.inCluster",
                True,
                f"the stack runs OpenSearch only; set tracing.storage to opensearch, or give "
                f"the {t.storage} cluster in {p}.servers",
            )
        if st.servers or st.username or st.password:
            r.errors.append(
                f"{PROJECT}:{p}.inCluster: set with an external cluster's servers or "
                "credentials; drop those keys or set inCluster to false"
            )
    elif not st.servers:
        example = "https://opensearch.example.org:9200" if t.storage != "cassandra" else "cass-0"
        r.errors.append(
            f"{PROJECT}:{p}.servers: missing; {t.storage} needs its servers, e.g. "
            f"`pulumi config set --path '{p}.servers[0]' {example}`"
            + ("" if t.storage == "cassandra" else f", or set {p}.inCluster to true")
        )
    pattern = _CONTACT_POINT if t.storage == "cassandra" else _STORE_URL
    accepted = (
        "expected a contact point, host or host:port"
        if t.storage == "cassandra"
        else "expected a URL, http(s)://host[:port], such as https://opensearch.example.org:9200"
    )
    for i, server in enumerate(st.servers):
        if not pattern.match(server):
            r.fail(f"{p}.servers[{i}]", server, accepted)
    if bool(st.username) != bool(st.password):
        missing = "jaegerStorePassword" if st.username else f"{p}.username"
        r.errors.append(
            f"{PROJECT}:{missing}: missing; basic auth needs both {p}.username and the secret "
            "jaegerStorePassword (`pulumi config set --secret jaegerStorePassword <password>`), "
            "or neither"
        )
    if t.storage in INDEX_TRACE_STORAGES and t.span_ttl_hours % 24:
        days = max(1, round(t.span_ttl_hours / 24))
        r.fail(
            "tracing.spanTtl",
            f"{t.span_ttl_hours}h",
            f"{t.storage} keeps spans in daily indices that the index cleaner deletes whole, "
            f"so it can only keep whole days; set a multiple of 24h such as {days * 24}h",
        )


_SC_HELP = "expected a StorageClass name, or empty for the cluster default"


def _empty_or_dns_name(v: Any) -> bool:
    return isinstance(v, str) and (v == "" or bool(_DNS_NAME.match(v)))


def _logging(
    r: _Reader, obj: Mapping[str, Any], enabled: bool, secret_access_key: str = ""
) -> LoggingSettings:
    r.unknown(
        obj,
        "logging",
        (
            "retention",
            "persistence",
            "storageSize",
            "storageClass",
            "storage",
            "mode",
            "replicas",
            "s3",
        ),
    )
    d = LoggingSettings()
    retention = r.pick(
        obj,
        "logging",
        "retention",
        f"{d.retention_hours}h",
        lambda v: _matches(_HOURS)(v) and _hours(v) >= 24 and _hours(v) % 24 == 0,
        "expected whole days in hours, at least 24h (Loki's index period), such as 168h",
    )
    return LoggingSettings(
        enabled=enabled,
        retention_hours=_hours(retention),
        persistence=r.pick(
            obj, "logging", "persistence", d.persistence, _is_bool, "expected true or false"
        ),
        storage_size=r.pick(
            obj,
            "logging",
            "storageSize",
            d.storage_size,
            _matches(_STORAGE),
            "expected a size such as 10Gi",
        ),
        storage_class=r.pick(obj, "logging", "storageClass", "", _empty_or_dns_name, _SC_HELP),
        storage=r.pick(
            obj,
            "logging",
            "storage",
            d.storage,
            _one_of(LOG_STORAGES),
            f"expected one of {LOG_STORAGES}",
        ),
        mode=r.pick(
            obj, "logging", "mode", d.mode, _one_of(LOG_MODES), f"expected one of {LOG_MODES}"
        ),
        replicas=r.pick(obj, "logging", "replicas", d.replicas, _is_int(1, 20), "expected 1 to 20"),
        s3=_bucket(r, obj.get("s3"), secret_access_key),
    )


# An S3 endpoint: a scheme, a host and an optional port, nothing after it.
_S3_ENDPOINT = re.compile(r"^https?://[a-z0-9]([-a-z0-9.]*[a-z0-9])?(:[0-9]{1,5})?/?$", re.I)
# S3 bucket naming rules (3-63 lower-case letters, digits, dots and hyphens).
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_REGION = re.compile(r"^[a-z0-9-]{1,64}$")


def _empty_or(pattern: re.Pattern[str]) -> Callable[[Any], bool]:
    return lambda v: isinstance(v, str) and (v == "" or bool(pattern.match(v)))


def _section(
    r: _Reader, obj: Any, prefix: str, keys: tuple[str, ...], accepted: str
) -> Mapping[str, Any]:
    """A map of settings under `prefix` (empty when unset), its unknown keys reported."""
    if obj is None:
        return {}
    if not isinstance(obj, dict):
        r.fail(prefix, obj, accepted)
        return {}
    r.unknown(obj, prefix, keys)
    return obj


def _bucket(r: _Reader, obj: Any, secret_access_key: str) -> BucketSettings:
    p = "logging.s3"
    keys = ("inCluster", "endpoint", "region", "bucket", "forcePathStyle", "accessKeyId")
    obj = _section(
        r,
        obj,
        p,
        (*keys, "serviceAccountAnnotations"),
        "expected a map with inCluster, or endpoint, bucket and credentials",
    )
    d = BucketSettings()
    annotations = obj.get("serviceAccountAnnotations") or {}
    if not isinstance(annotations, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in annotations.items()
    ):
        r.fail(
            f"{p}.serviceAccountAnnotations",
            annotations,
            "expected a map of annotation names to text, e.g. "
            "{eks.amazonaws.com/role-arn: arn:aws:iam::123456789012:role/loki}",
        )
        annotations = {}
    return BucketSettings(
        in_cluster=r.pick(obj, p, "inCluster", d.in_cluster, _is_bool, "expected true or false"),
        endpoint=r.pick(
            obj,
            p,
            "endpoint",
            d.endpoint,
            _empty_or(_S3_ENDPOINT),
            "expected the S3 API as a URL, http(s)://host[:port], such as "
            "https://s3.eu-west-1.amazonaws.com",
        ),
        region=r.pick(
            obj, p, "region", d.region, _matches(_REGION), "expected a region such as us-east-1"
        ),
        bucket=r.pick(
            obj,
            p,
            "bucket",
            d.bucket,
            _matches(_BUCKET),
            "expected a bucket name (3 to 63 lower-case letters, digits, dots and hyphens)",
        ),
        force_path_style=r.pick(
            obj, p, "forcePathStyle", d.force_path_style, _is_bool, "expected true or false"
        ),
        access_key_id=r.pick(obj, p, "accessKeyId", "", _empty_or(_NO_SPACE), "expected a key id"),
        secret_access_key=SecretValue(secret_access_key),
        service_account_annotations=tuple(sorted(annotations.items())),
    )


def _check_logging(r: _Reader, s: Settings) -> None:
    """Loki's storage, mode and replicas together, and the bucket they need."""
    log = s.logging
    if not log.enabled:
        return
    if log.storage == "filesystem":
        if log.replicas > 1:
            r.fail(
                "logging.replicas",
                log.replicas,
                "more than one Loki needs object storage to share (one pod's volume cannot "
                "be): set logging.storage to s3 with a bucket (logging.s3), or set replicas to 1",
            )
        if log.mode == "distributed":
            r.fail(
                "logging.mode",
                log.mode,
                "distributed Loki needs object storage: set logging.storage to s3 with a "
                "bucket (logging.s3), or use mode monolithic",
            )
        return
    if log.mode == "distributed" and log.replicas > 1:
        r.fail(
            "logging.replicas",
            log.replicas,
            "replicas counts monolithic Loki pods; distributed mode sizes each component "
            "per profile, so drop the key or use mode monolithic",
        )
    b = log.s3
    if b.in_cluster:
        external = [k for k, v in (("endpoint", b.endpoint), ("accessKeyId", b.access_key_id)) if v]
        if external or b.secret_access_key or b.service_account_annotations:
            r.errors.append(
                f"{PROJECT}:logging.s3.inCluster: set with an external bucket's settings "
                f"({', '.join(external) or 'credentials'}); the in-cluster store makes its own "
                "endpoint and credentials, so drop those keys or set inCluster to false"
            )
        return
    if not b.endpoint:
        r.errors.append(
            f"{PROJECT}:logging.s3.endpoint: missing; an external bucket needs its S3 API, e.g. "
            "`pulumi config set --path logging.s3.endpoint https://s3.eu-west-1.amazonaws.com`, "
            "or set logging.s3.inCluster to true for a store in the cluster"
        )
    keys = bool(b.access_key_id) or bool(b.secret_access_key)
    if b.service_account_annotations and keys:
        r.errors.append(
            f"{PROJECT}:logging.s3.serviceAccountAnnotations: set with access keys; use either "
            "workload identity or logging.s3.accessKeyId with lokiS3SecretAccessKey, not both"
        )
    elif not b.service_account_annotations and not (b.access_key_id and b.secret_access_key):
        missing = "logging.s3.accessKeyId" if not b.access_key_id else "lokiS3SecretAccessKey"
        r.errors.append(
            f"{PROJECT}:{missing}: missing; an external bucket needs credentials: "
            "`pulumi config set --path logging.s3.accessKeyId <id>` and "
            "`pulumi config set --secret lokiS3SecretAccessKey <key>`, or workload identity "
            "in logging.s3.serviceAccountAnnotations"
        )


def _grafana(r: _Reader, obj: Mapping[str, Any], enabled: bool, webhook: str) -> GrafanaSettings:
    r.unknown(obj, "grafana", ("persistence", "grafanaComDashboards", "alerts"))
    alerts = obj.get("alerts") or {}
    if not isinstance(alerts, dict):
        r.fail("grafana.alerts", alerts, "expected a map with successRate and latencyP99Ms")
        alerts = {}
    r.unknown(alerts, "grafana.alerts", ("successRate", "latencyP99Ms"))
    d = GrafanaSettings()
    if webhook and not re.match(r"^https?://\S+$", webhook):
        r.fail("alertWebhookUrl", SecretValue(webhook), "expected an http(s) URL")
    return GrafanaSettings(
        enabled=enabled,
        persistence=r.pick(
            obj, "grafana", "persistence", d.persistence, _is_bool, "expected true or false"
        ),
        grafana_com_dashboards=r.pick(
            obj,
            "grafana",
            "grafanaComDashboards",
            d.grafana_com_dashboards,
            _is_bool,
            "expected true or false",
        ),
        success_rate_threshold=float(
            r.pick(
                alerts,
                "grafana.alerts",
                "successRate",
                d.success_rate_threshold,
                lambda v: isinstance(v, (int, float)) and not isinstance(v, bool) and 0 < v < 1,
                "expected a fraction between 0 and 1 (exclusive), such as 0.95",
            )
        ),
        latency_p99_ms=r.pick(
            alerts,
            "grafana.alerts",
            "latencyP99Ms",
            d.latency_p99_ms,
            _is_int(1, 600_000),
            "expected milliseconds, such as 500",
        ),
        alert_webhook_url=SecretValue(webhook),
    )


def _emojivoto(r: _Reader, obj: Mapping[str, Any], enabled: bool) -> EmojivotoSettings:
    r.unknown(obj, "emojivoto", ("replicas", "voteBotReplicas"))
    return EmojivotoSettings(
        enabled=enabled,
        replicas=r.pick(
            obj, "emojivoto", "replicas", 1, _is_int(1, 10), "expected a whole number from 1 to 10"
        ),
        vote_bot_replicas=r.pick(
            obj,
            "emojivoto",
            "voteBotReplicas",
            1,
            _is_int(0, 20),
            "expected a whole number from 0 (no traffic) to 20; each replica votes about once "
            "a second",
        ),
    )


def _exposure(r: _Reader, obj: Mapping[str, Any]) -> ExposureSettings:
    r.unknown(
        obj,
        "exposure",
        (
            "mode",
            "ingressClass",
            "domain",
            "tlsSecret",
            "clusterIssuer",
            "ingressNamespace",
            "gatewayClass",
            "gatewayNamespace",
            "installEnvoyGateway",
        ),
    )
    d = ExposureSettings()
    p = "exposure"
    return ExposureSettings(
        mode=r.pick(
            obj, p, "mode", d.mode, _one_of(EXPOSURE_MODES), f"expected one of {EXPOSURE_MODES}"
        ),
        ingress_class=r.pick(
            obj,
            p,
            "ingressClass",
            d.ingress_class,
            _empty_or_dns_name,
            "expected an IngressClass name such as traefik",
        ),
        domain=r.pick(
            obj,
            p,
            "domain",
            "",
            _empty_or_dns_name,
            "expected a lower-case DNS name such as mesh.example.com",
        ),
        tls_secret=r.pick(
            obj,
            p,
            "tlsSecret",
            "",
            _empty_or_dns_name,
            "expected the name of a kubernetes.io/tls Secret",
        ),
        cluster_issuer=r.pick(
            obj,
            p,
            "clusterIssuer",
            "",
            _empty_or_dns_name,
            "expected the name of a cert-manager ClusterIssuer",
        ),
        ingress_namespace=r.pick(
            obj,
            p,
            "ingressNamespace",
            d.ingress_namespace,
            _matches(DNS_LABEL),
            "expected a namespace name",
        ),
        gateway_class=r.pick(
            obj,
            p,
            "gatewayClass",
            d.gateway_class,
            _empty_or_dns_name,
            "expected a GatewayClass name such as envoy-gateway",
        ),
        gateway_namespace=r.pick(
            obj,
            p,
            "gatewayNamespace",
            d.gateway_namespace,
            _matches(DNS_LABEL),
            "expected a namespace name",
        ),
        install_envoy_gateway=r.pick(
            obj,
            p,
            "installEnvoyGateway",
            d.install_envoy_gateway,
            _is_bool,
            "expected true or false",
        ),
    )


# The keys of an `onboarding.namespaces` entry (README Configure documents each).
TEAM_KEYS = ("name", "adopt", "prometheusReaders")


def _strings(
    r: _Reader, obj: Mapping[str, Any], key: str, check: re.Pattern[str]
) -> tuple[str, ...]:
    """The list of strings under `exposure.oidc.<key>`, each matching `check`."""
    value = obj.get(key)
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) and check.match(v) for v in value):
        r.fail(
            f"exposure.oidc.{key}", value, f"expected a list of strings matching {check.pattern}"
        )
        return ()
    return tuple(value)


def _auth(r: _Reader, exposure: Mapping[str, Any], client_secret: str) -> AuthSettings:
    p = "exposure"
    mode = exposure.get("mode") or "port-forward"
    chosen = r.pick(
        exposure, p, "auth", "", _one_of(("", *AUTH_MODES)), f"expected one of {AUTH_MODES}"
    )
    obj = exposure.get("oidc") or {}
    if not isinstance(obj, dict):
        r.fail("exposure.oidc", obj, "expected a map with issuerUrl, clientId, allowedGroups")
        obj = {}
    q = "exposure.oidc"
    r.unknown(
        obj,
        q,
        (
            "issuerUrl",
            "clientId",
            "allowedGroups",
            "allowedEmails",
            "groupsClaim",
            *OIDC_ENDPOINT_KEYS,
        ),
    )
    d = OidcSettings()

    def endpoint(key: str) -> str:
        return str(
            r.pick(
                obj,
                q,
                key,
                "",
                lambda v: v == "" or bool(_HTTPS_URL.match(v)),
                f"expected the https:// URL the issuer's discovery document gives as "
                f"{OIDC_ENDPOINT_KEYS[key]}",
            )
        )

    return AuthSettings(
        mode=chosen or ("none" if mode == "port-forward" else "basic"),
        allow_unauthenticated=r.pick(
            exposure, p, "allowUnauthenticated", False, _is_bool, "expected true or false"
        ),
        oidc=OidcSettings(
            issuer_url=r.pick(
                obj,
                q,
                "issuerUrl",
                "",
                lambda v: v == "" or bool(_HTTPS_URL.match(v)),
                "expected the provider's https:// issuer URL (its discovery document and keys "
                "are trusted for their TLS certificate)",
            ),
            client_id=r.pick(
                obj,
                q,
                "clientId",
                "",
                lambda v: v == "" or bool(_NO_SPACE.match(v)),
                "expected a client id",
            ),
            client_secret=SecretValue(client_secret),
            allowed_groups=_strings(r, obj, "allowedGroups", _NO_SPACE),
            allowed_emails=_strings(r, obj, "allowedEmails", _EMAIL),
            groups_claim=r.pick(
                obj, q, "groupsClaim", d.groups_claim, _matches(_NO_SPACE), "expected a claim name"
            ),
            auth_url=endpoint("authUrl"),
            token_url=endpoint("tokenUrl"),
            userinfo_url=endpoint("userinfoUrl"),
        ),
    )


def _check_auth(r: _Reader, s: Settings) -> None:
    """Each auth mode has the keys it needs; nothing is published without a sign-in by
    accident, and never on prod."""
    a, mode = s.auth, s.exposure.mode
    if a.allow_unauthenticated and s.profile == "prod":
        r.fail(
            "exposure.allowUnauthenticated",
            True,
            "the prod profile never publishes the dashboard or Jaeger without a sign-in; "
            "set exposure.auth to basic or oidc",
        )
    elif a.mode == "none" and mode != "port-forward" and not a.allow_unauthenticated:
        r.fail(
            "exposure.auth",
            "none",
            f"with exposure.mode {mode} anyone who reaches the address could use the dashboard "
            "(tap shows live request data); use basic or oidc, or (not on prod) set "
            "exposure.allowUnauthenticated true",
        )
    o = a.oidc
    if a.mode == "oidc":
        required = {
            "issuerUrl": (o.issuer_url, ""),
            "clientId": (o.client_id, ""),
            **{
                key: (
                    value,
                    f" (Grafana signs in with the same provider; copy {field} from "
                    f"<issuerUrl>/.well-known/openid-configuration)",
                )
                for (key, field), value in zip(
                    OIDC_ENDPOINT_KEYS.items(),
                    (o.auth_url, o.token_url, o.userinfo_url),
                    strict=True,
                )
            },
        }
        for key, (value, why) in required.items():
            # A value already refused stands in as empty here; one line about it is enough.
            reported = any(e.startswith(f"{PROJECT}:exposure.oidc.{key}:") for e in r.errors)
            if not value and not reported:
                r.errors.append(
                    f"{PROJECT}:exposure.oidc.{key}: missing; exposure.auth oidc needs it{why}: "
                    f"`pulumi config set --path exposure.oidc.{key} <value>`"
                )
        if not o.client_secret:
            r.errors.append(
                f"{PROJECT}:oidcClientSecret: missing; exposure.auth oidc needs the client's "
                "secret: `pulumi config set --secret oidcClientSecret <secret>`"
            )
        if not (o.allowed_groups or o.allowed_emails):
            r.errors.append(
                f"{PROJECT}:exposure.oidc.allowedGroups: missing; name who may sign in "
                "(allowedGroups, or allowedEmails), or every account the issuer knows could"
            )


# The keys of an `onboarding.namespaces` entry (README Configure documents each).
TEAM_KEYS = ("name", "adopt", "prometheusReaders")


def _edge_sampling(r: _Reader, exposure: Mapping[str, Any], profile: str) -> float:
    """`exposure.traceSamplePercent`: how many requests Envoy Gateway starts a trace for."""
    return float(
        r.pick(
            exposure,
            "exposure",
            "traceSamplePercent",
            PROFILE_DEFAULTS["exposure.traceSamplePercent"][profile],
            lambda v: isinstance(v, (int, float)) and not isinstance(v, bool) and 0 <= v <= 100,
            "expected a percentage from 0 (no edge traces) to 100, such as 1 or 0.1",
        )
    )


# --- SLOs ------------------------------------------------------------------------------------

SLO_KEYS = ("window", "emojivoto", "objectives", "prometheusStorageSize")
OBJECTIVE_KEYS = (
    "namespace",
    "deployment",
    "successPercent",
    "latencyMs",
    "latencyPercent",
    "window",
)
_WINDOW = re.compile(r"^([1-9][0-9]*)(d|h)$")


def _percent(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and 0 < v < 100


def _window_hours(r: _Reader, key: str, value: Any, default: int) -> int:
    if value is None:
        return default
    m = _WINDOW.match(value) if isinstance(value, str) else None
    longest = slo.duration(slo.LONGEST_BURN_WINDOW_HOURS)
    if not m:
        r.fail(key, value, f"expected a duration in days or hours such as 30d or {longest}")
        return default
    hours = int(m[1]) * (24 if m[2] == "d" else 1)
    if hours < slo.LONGEST_BURN_WINDOW_HOURS:
        r.fail(
            key,
            value,
            f"expected at least {longest}: the ticket alert compares the error rate over "
            f"{longest} with the budget, so a shorter window cannot hold it",
        )
        return default
    return hours


def _slo_workloads(s: Settings) -> dict[str, tuple[str, ...] | None]:
    """namespace → the deployments an SLO may name there (None: any, a team's own)."""
    # Imported here: components.emojivoto reads this module's settings types.
    from components import emojivoto

    out: dict[str, tuple[str, ...] | None] = {t.name: None for t in s.teams}
    if s.emojivoto.enabled:
        out[emojivoto.NAMESPACE] = tuple(w.name for w in emojivoto.WORKLOADS.values() if w.ports)
    return out


def _slo(r: _Reader, obj: Mapping[str, Any], s: Settings) -> SloSettings:
    """`slo`: objectives per deployment; checked against what the stack deploys."""
    r.unknown(obj, "slo", SLO_KEYS)
    window = _window_hours(r, "slo.window", obj.get("window"), slo.DEFAULT_WINDOW_HOURS)
    workloads = _slo_workloads(s)
    entries = obj.get("objectives") or []
    if not isinstance(entries, list):
        r.fail(
            "slo.objectives",
            entries,
            'expected a list such as [{"namespace": "team-a", '
            '"deployment": "api", "successPercent": 99.9}]',
        )
        entries = []
    objectives: list[slo.Objective] = []
    seen: set[tuple[str, str]] = set()
    for i, entry in enumerate(entries):
        p = f"slo.objectives[{i}]"
        if not isinstance(entry, dict):
            r.fail(p, entry, 'expected a map such as {"namespace": "team-a", "deployment": "api"}')
            continue
        r.unknown(entry, p, OBJECTIVE_KEYS)
        namespace, deployment = entry.get("namespace"), entry.get("deployment")
        known = (
            ", ".join(
                f"{ns} ({', '.join(names)})" if names else f"{ns} (any deployment)"
                for ns, names in sorted(workloads.items())
            )
            or "none: enable emojivoto or onboard a namespace"
        )
        if namespace not in workloads:
            r.fail(f"{p}.namespace", namespace, f"no such meshed namespace here; known: {known}")
            continue
        allowed = workloads[namespace]
        if (
            not isinstance(deployment, str)
            or not _DNS_NAME.match(deployment)
            or (allowed is not None and deployment not in allowed)
        ):
            r.fail(
                f"{p}.deployment",
                deployment,
                f"no such deployment serving requests in {namespace}; known: {known}",
            )
            continue
        if (namespace, deployment) in seen:
            r.fail(p, f"{namespace}/{deployment}", "listed twice; give each deployment one entry")
            continue
        seen.add((namespace, deployment))
        pct = "expected a percentage above 0 and below 100 such as 99.5 (100 leaves no budget)"
        latency_ms = r.pick(
            entry,
            p,
            "latencyMs",
            0,
            lambda v: v == 0 or v in slo.LATENCY_BUCKETS_MS,
            "expected 0 (no latency objective) or a bound of the proxy's latency histogram: "
            + ", ".join(map(str, slo.LATENCY_BUCKETS_MS)),
        )
        objectives.append(
            slo.Objective(
                namespace=namespace,
                deployment=deployment,
                success_percent=float(
                    r.pick(entry, p, "successPercent", slo.DEFAULT_SUCCESS_PERCENT, _percent, pct)
                ),
                latency_ms=latency_ms,
                latency_percent=float(
                    r.pick(entry, p, "latencyPercent", slo.DEFAULT_LATENCY_PERCENT, _percent, pct)
                ),
                window_hours=_window_hours(r, f"{p}.window", entry.get("window"), window),
            )
        )
    named = {(o.namespace, o.deployment) for o in objectives}
    if r.pick(obj, "slo", "emojivoto", True, _is_bool, "expected true or false"):
        from components import emojivoto  # as in _slo_workloads

        objectives += [
            slo.Objective(
                namespace=emojivoto.NAMESPACE,
                deployment=name,
                success_percent=slo.DEFAULT_SUCCESS_PERCENT,
                latency_ms=slo.DEFAULT_LATENCY_MS,
                latency_percent=slo.DEFAULT_LATENCY_PERCENT,
                window_hours=window,
            )
            for name in workloads.get(emojivoto.NAMESPACE) or ()
            if (emojivoto.NAMESPACE, name) not in named
        ]
    storage = r.pick(
        obj,
        "slo",
        "prometheusStorageSize",
        PROFILE_DEFAULTS["slo.prometheusStorageSize"][s.profile],
        lambda v: v == "" or bool(_STORAGE.match(v)),
        "expected a size such as 20Gi, or empty for an emptyDir",
    )
    bundled = not s.linkerd.prometheus_url
    return SloSettings(
        objectives=tuple(objectives),
        prometheus_storage_size=storage if objectives and bundled else "",
        prometheus_retention_hours=(
            max(o.window_hours for o in objectives) if objectives and bundled else 0
        ),
    )


def _onboarding(r: _Reader, obj: Mapping[str, Any]) -> tuple[TeamNamespace, ...]:
    r.unknown(obj, "onboarding", ("namespaces",))
    entries = obj.get("namespaces") or []
    if not isinstance(entries, list):
        r.fail("onboarding.namespaces", entries, 'expected a list such as [{"name": "team-a"}]')
        return ()
    teams: list[TeamNamespace] = []
    seen: set[str] = set()
    for i, entry in enumerate(entries):
        p = f"onboarding.namespaces[{i}]"
        if isinstance(entry, str):
            entry = {"name": entry}
        if not isinstance(entry, dict):
            r.fail(p, entry, 'expected a name or a map such as {"name": "team-a", "adopt": false}')
            continue
        r.unknown(entry, p, TEAM_KEYS)
        name = _as_declared("", entry.get("name"))
        if not isinstance(name, str) or not DNS_LABEL.match(name):
            r.fail(
                f"{p}.name",
                name,
                "expected a namespace name: lower-case letters, digits "
                "and '-', at most 63 characters",
            )
            continue
        if name in RESERVED_NAMESPACES:
            r.fail(f"{p}.name", name, "this namespace belongs to the platform; choose a team's own")
            continue
        if name in seen:
            r.fail(f"{p}.name", name, "listed twice; list each namespace once")
            continue
        seen.add(name)
        adopt = r.pick(entry, p, "adopt", False, _is_bool, "expected true or false")
        readers = _prometheus_readers(r, f"{p}.prometheusReaders", entry.get("prometheusReaders"))
        teams.append(TeamNamespace(name=name, adopt=adopt, prometheus_readers=readers))
    return tuple(teams)


# A ServiceAccount name: a DNS subdomain (RFC 1123), at most 253 characters.
SERVICE_ACCOUNT_NAME = re.compile(
    r"^(?=.{1,253}$)[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
)


def _prometheus_readers(r: _Reader, key: str, value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        accepted = 'expected a list of the namespace\'s ServiceAccounts, e.g. ["dashboards"]'
        r.fail(key, value, accepted)
        return ()
    readers: list[str] = []
    for j, account in enumerate(value):
        if not isinstance(account, str) or not SERVICE_ACCOUNT_NAME.match(account):
            r.fail(
                f"{key}[{j}]",
                account,
                "expected a ServiceAccount name of the namespace (lower-case letters, digits, "
                "'-' and '.'), without the namespace",
            )
        elif account in readers:
            r.fail(f"{key}[{j}]", account, "listed twice; list each ServiceAccount once")
        else:
            readers.append(account)
    return tuple(readers)


def _check_prometheus_readers(r: _Reader, s: Settings) -> None:
    """Readers are let into viz's own Prometheus, which an external one replaces."""
    if not s.linkerd.prometheus_url:
        return
    for i, team in enumerate(s.teams):
        if team.prometheus_readers:
            r.fail(
                f"onboarding.namespaces[{i}].prometheusReaders",
                list(team.prometheus_readers),
                "viz runs no Prometheus of its own when linkerd.prometheusUrl is set; grant "
                "these ServiceAccounts access in that Prometheus instead and drop the key",
            )


def _cross_checks(r: _Reader, s: Settings) -> None:
    """Rules that tie keys together."""
    _check_prometheus_readers(r, s)
    _check_logging(r, s)
    _check_trace_store(r, s)
    ident = s.linkerd.identity
    early, validity = ident.issuer_early_renewal_hours, ident.issuer_validity_hours
    # A value already reported stands in as its default here; one line about it is enough.
    lifetimes = ("issuerEarlyRenewalHours", "issuerValidityHours")
    reported = any(
        e.startswith(f"{PROJECT}:linkerd.identity.{k}:") for e in r.errors for k in lifetimes
    )
    if not reported and validity - early < MIN_ISSUER_SERVICE_HOURS:
        # issuerValidityHours' own floor leaves room for the shortest window, so lowering this
        # one always fixes it.
        r.fail(
            "linkerd.identity.issuerEarlyRenewalHours",
            early,
            f"with linkerd.identity.issuerValidityHours {validity} the issuer would serve "
            f"{max(validity - early, 0)}h before renewal starts, under the "
            f"{MIN_ISSUER_SERVICE_HOURS}h (30 days) a renewed issuer must serve; lower it to "
            f"{validity - MIN_ISSUER_SERVICE_HOURS} or less, or raise "
            f"linkerd.identity.issuerValidityHours to {early + MIN_ISSUER_SERVICE_HOURS} or more",
        )
    if ident.issuer_validity_hours >= ident.trust_anchor_validity_hours:
        r.fail(
            "linkerd.identity.issuerValidityHours",
            ident.issuer_validity_hours,
            f"must be shorter than trustAnchorValidityHours "
            f"({ident.trust_anchor_validity_hours}): the anchor must outlive the issuer",
        )
    if ident.issuer == "pulumi" and ident.trust_anchor_pem and not ident.trust_anchor_key_pem:
        r.errors.append(
            f"{PROJECT}:trustAnchorKeyPem: missing; a shared linkerd.identity.trustAnchorPem "
            "needs its private key to sign this cluster's issuer: "
            "`pulumi config set --secret trustAnchorKeyPem < anchor.key`"
        )
    if ident.trust_anchor_key_pem and not ident.trust_anchor_pem:
        r.errors.append(
            f"{PROJECT}:trustAnchorKeyPem: set without linkerd.identity.trustAnchorPem; "
            "set both to share a trust anchor, or neither to generate one"
        )
    if ident.issuer == "external" and not ident.trust_anchor_pem:
        r.errors.append(
            f"{PROJECT}:linkerd.identity.trustAnchorPem: missing; with issuer `external` the "
            "trust anchor is managed outside the stack, so give its certificate (PEM) here"
        )
    e = s.exposure
    if e.mode in ("ingress", "gateway") and not e.domain:
        r.errors.append(
            f"{PROJECT}:exposure.domain: missing; {e.mode} mode needs a base domain, e.g. "
            "`pulumi config set --path exposure.domain mesh.example.com`"
        )
    if e.mode == "ingress" and not e.ingress_class:
        r.errors.append(
            f"{PROJECT}:exposure.ingressClass: missing; ingress mode needs the IngressClass of "
            "a meshed controller that routes to Services (`kubectl get ingressclass`)"
        )
    if e.mode == "gateway" and not e.gateway_class:
        r.errors.append(
            f"{PROJECT}:exposure.gatewayClass: missing; gateway mode needs a GatewayClass name: "
            "the one the stack creates with installEnvoyGateway, or one of `kubectl get "
            "gatewayclass`"
        )
    if e.install_envoy_gateway and e.mode != "gateway":
        r.fail(
            "exposure.installEnvoyGateway",
            True,
            "Envoy Gateway is only installed for mode `gateway`; set the mode or drop the key",
        )
    if e.install_envoy_gateway and not s.linkerd.install_gateway_api_crds:
        r.fail(
            "exposure.installEnvoyGateway",
            True,
            "its CRDs come with the stack's Gateway API CRDs; set "
            "linkerd.installGatewayApiCrds to true, or install Envoy Gateway outside the stack",
        )
    if s.exposure.tls_secret and s.exposure.cluster_issuer:
        r.fail(
            "exposure.clusterIssuer",
            s.exposure.cluster_issuer,
            "set either exposure.tlsSecret or exposure.clusterIssuer, not both",
        )
    if e.mode not in ("ingress", "gateway") and (e.tls_secret or e.cluster_issuer):
        r.fail(
            "exposure.mode",
            e.mode,
            "TLS settings only apply to `ingress` and `gateway`; set one of those or drop them",
        )
    if s.profile == "prod" and not (s.kube_context or s.kubeconfig):
        # Without either, `pulumi up` deploys to whatever context is current on the machine
        # that runs it: a laptop's kind cluster today, someone else's cluster tomorrow.
        r.errors.append(
            f"{PROJECT}:kubeContext: missing; the prod profile deploys only to a cluster its "
            "stack names: `pulumi config set kubeContext <context>` (one of `kubectl config "
            "get-contexts`), or set kubeconfig"
        )
    _check_auth(r, s)
    if s.profile == "dev" and s.exposure.mode == "loadBalancer":
        r.fail(
            "exposure.mode",
            "loadBalancer",
            "the dev profile exposes nothing publicly; use nodePort or port-forward, "
            "or set profile to prod",
        )


# --- Volumes that already exist --------------------------------------------------------------
# A claim is sized when it is created; Kubernetes only ever grows it, and only where its
# StorageClass allows expansion. The stack exports each volume's size, and refuses a change
# that could not be carried out, before any resource.

# Stack outputs (README "Outputs"): the size each volume was asked for, "" when there is none.
LOKI_STORAGE_OUTPUT = "lokiStorageSize"
JAEGER_STORAGE_OUTPUT = "jaegerStorageSize"
_UNITS = {"Mi": 2**20, "Gi": 2**30, "Ti": 2**40}


def storage_bytes(size: str) -> int:
    """Bytes of a size `_STORAGE` accepts (`500Mi`, `10Gi`, `1Ti`)."""
    return int(size[:-2]) * _UNITS[size[-2:]]


def volume_sizes(s: Settings) -> dict[str, str]:
    """The `*StorageSize` outputs for these settings: the size of each volume the stack asks
    for, or "" when it has none (the feature off, or its data in memory or an emptyDir)."""
    loki = s.logging.enabled and s.logging.persistence
    badger = s.tracing.enabled and s.tracing.storage == "badger"
    return {
        LOKI_STORAGE_OUTPUT: s.logging.storage_size if loki else "",
        JAEGER_STORAGE_OUTPUT: s.tracing.storage_size if badger else "",
    }


def _deployed_size(previous: Mapping[str, Any], output: str) -> str:
    value = previous.get(output)
    return value if isinstance(value, str) and _STORAGE.match(value) else ""


def _check_volumes(r: _Reader, s: Settings, previous: Mapping[str, Any]) -> None:
    """Sizes compared with the volumes the last update made (`previous`, its outputs)."""
    now = volume_sizes(s)
    loki_was = _deployed_size(previous, LOKI_STORAGE_OUTPUT)
    loki = now[LOKI_STORAGE_OUTPUT]
    if loki and loki_was and loki != loki_was:
        # The loki chart sizes the claim through the StatefulSet's volumeClaimTemplates, which
        # the API server refuses to change, so Pulumi would replace the StatefulSet; the claim
        # (retained) would keep its size, and the chart's resize is a Helm hook the v4 Chart
        # never runs.
        r.fail(
            "logging.storageSize",
            loki,
            f"Loki's volume `storage-loki-0` was created at {loki_was}, and a new size would "
            f"only replace the Loki StatefulSet, never resize the claim; set it back to "
            f"{loki_was}: `pulumi config set --path logging.storageSize {loki_was}`, and grow "
            'the claim itself as README "Resize" shows',
        )
    badger_was = _deployed_size(previous, JAEGER_STORAGE_OUTPUT)
    badger = now[JAEGER_STORAGE_OUTPUT]
    if badger and badger_was and storage_bytes(badger) < storage_bytes(badger_was):
        # The Badger claim is the stack's own: a larger size is an in-place update, which
        # Kubernetes carries out where the StorageClass allows expansion. Smaller it refuses.
        r.fail(
            "tracing.storageSize",
            badger,
            f"the Badger volume `jaeger-badger` is {badger_was} and Kubernetes never shrinks "
            f"a claim; set {badger_was} or more: "
            f"`pulumi config set --path tracing.storageSize {badger_was}`",
        )


# --- Who issues, and which anchors this update trusts --------------------------------------


def _identity_lifecycle(r: _Reader, s: Settings, previous: Mapping[str, Any]) -> Settings:
    """The external issuer's keys, and the rotation phase checked against the stack's last
    update (`previous`): the settings with the anchors this update trusts and signs with."""
    ident = s.linkerd.identity
    p = f"{PROJECT}:linkerd.identity"
    if ident.issuer == "external":
        if not ident.external.issuer_ref_name:
            r.errors.append(
                f"{p}.issuerRefName: missing; with issuer `external` a cert-manager issuer signs "
                "Linkerd's identity issuer certificate: name it (a ClusterIssuer, or an Issuer in "
                "the linkerd namespace with issuerRefKind Issuer), e.g. `pulumi config set --path "
                "linkerd.identity.issuerRefName linkerd-trust-anchor`; with trustAnchorKeyPem "
                "set the stack makes it"
            )
        if ident.rotation != "none" and not ident.next_trust_anchor_pem:
            r.errors.append(
                f"{p}.nextTrustAnchorPem: missing; with issuer `external` a rotation's new "
                "anchor is given, since cert-manager's issuer must sign with it from the `issuer` "
                "phase on: `pulumi config set --path linkerd.identity.nextTrustAnchorPem -- "
                '"$(cat new-ca.crt)"`'
            )
    # Who signs the issuer needs the new anchor's key: the stack (issuer `pulumi`), or the CA
    # issuer the stack makes for cert-manager (issuer `external` with trustAnchorKeyPem).
    signs_here = ident.issuer == "pulumi" or bool(ident.trust_anchor_key_pem)
    if signs_here and ident.next_trust_anchor_pem and not ident.next_trust_anchor_key_pem:
        r.errors.append(
            f"{PROJECT}:nextTrustAnchorKeyPem: missing; the new anchor in "
            "linkerd.identity.nextTrustAnchorPem signs the issuer from the `issuer` phase on: "
            "`pulumi config set --secret nextTrustAnchorKeyPem < new-anchor.key`"
        )
    if ident.next_trust_anchor_key_pem and not ident.next_trust_anchor_pem:
        r.errors.append(
            f"{PROJECT}:nextTrustAnchorKeyPem: set without linkerd.identity.nextTrustAnchorPem; "
            "set both to rotate onto a given anchor, or neither to have the stack generate it"
        )
    requested = lifecycle.Requested(
        ident.rotation, ident.trust_anchor_pem, ident.next_trust_anchor_pem
    )
    plan, problems = lifecycle.plan(requested, lifecycle.deployed(previous))
    r.errors += [f"{PROJECT}:{key}: {problem}" for key, problem in problems]
    return replace(s, linkerd=replace(s.linkerd, identity=replace(ident, rotation_plan=plan)))


# --- A shared trust anchor -------------------------------------------------------------------
# Read here as Linkerd and pulumi-tls will read it, so a bad anchor stops the program before a
# resource exists instead of failing a chart or a certificate halfway through `pulumi up`.
# Neither PEM is ever printed: the key is a secret, and so may be whatever was pasted in place
# of the certificate.

_PEM_LABEL = re.compile(r"-----BEGIN ([A-Z0-9 ]+)-----")
# `linkerd check` (pkg/issuercerts CheckTrustAnchorAlgoRequirements) takes an ECDSA P-256 or
# an RSA 2048/4096 anchor, signed with SHA-256; the ECDSA one also with an RSA signature.
_ANCHOR_SIGNATURES = {
    "ECDSA": (SignatureAlgorithmOID.ECDSA_WITH_SHA256, SignatureAlgorithmOID.RSA_WITH_SHA256),
    "RSA": (SignatureAlgorithmOID.RSA_WITH_SHA256,),
}
# Linkerd's documented way to make an anchor (linkerd.io, "Generating your own mTLS root
# certificates").
_MAKE_ANCHOR = (
    "`step certificate create root.linkerd.cluster.local ca.crt ca.key --profile root-ca "
    "--no-password --insecure`"
)


def _check_trust_anchor(r: _Reader, s: Settings, now: datetime.datetime) -> None:
    ident = s.linkerd.identity
    cert = _anchor_certificate(r, s, now) if ident.trust_anchor_pem else None
    if ident.trust_anchor_key_pem:
        _anchor_key(r, ident.trust_anchor_key_pem.value, cert)
    # A new anchor given for a rotation is read exactly as the current one: it signs the
    # issuer from the `issuer` phase on.
    cert = None
    if ident.next_trust_anchor_pem:
        cert = _anchor_certificate(r, s, now, _NEXT_ANCHOR_KEYS, ident.next_trust_anchor_pem)
    if ident.next_trust_anchor_key_pem:
        _anchor_key(r, ident.next_trust_anchor_key_pem.value, cert, _NEXT_ANCHOR_KEYS)


@dataclass(frozen=True)
class _AnchorKeys:
    """The config keys of an anchor certificate and of its private key."""

    cert: str
    key: str


_ANCHOR_KEYS = _AnchorKeys("linkerd.identity.trustAnchorPem", "trustAnchorKeyPem")
_NEXT_ANCHOR_KEYS = _AnchorKeys("linkerd.identity.nextTrustAnchorPem", "nextTrustAnchorKeyPem")


def _anchor_certificate(
    r: _Reader,
    s: Settings,
    now: datetime.datetime,
    keys: _AnchorKeys = _ANCHOR_KEYS,
    pem: str | None = None,
) -> x509.Certificate | None:
    """The parsed anchor (None if it does not parse); every problem with it is reported.

    `pem` is the certificate under `keys.cert`: the current anchor unless given."""
    ident = s.linkerd.identity
    pem = ident.trust_anchor_pem if pem is None else pem

    def bad(problem: str) -> None:
        r.errors.append(f"{PROJECT}:{keys.cert}: {problem}")

    labels = _PEM_LABEL.findall(pem)
    if any("PRIVATE KEY" in label for label in labels):
        bad(
            "holds a private key (not shown here), in plain text; put only the anchor's "
            "certificate (-----BEGIN CERTIFICATE-----) here and the key in the secret "
            f"`pulumi config set --secret {keys.key} < ca.key`, and take the key out of "
            f"Pulumi.{s.stack}.yaml and its history"
        )
        return None
    count = labels.count("CERTIFICATE")
    if count != 1:
        others = sorted(set(labels) - {"CERTIFICATE"})
        held = f"{count} certificates" if count else "no certificate"
        held = f"{held} (other PEM blocks: {', '.join(others)})" if others else held
        bad(
            "expected exactly one PEM certificate (-----BEGIN CERTIFICATE-----), the trust "
            f"anchor, or empty to generate one; it holds {held if labels else 'no PEM block'}"
        )
        return None
    try:
        cert = x509.load_pem_x509_certificate(pem.encode())
        basic = cert.extensions.get_extension_for_class(x509.BasicConstraints).value
        is_ca = basic.ca
    except x509.ExtensionNotFound:
        is_ca = False
    except ValueError:
        bad("the CERTIFICATE block is not a valid X.509 certificate; copy the whole anchor file")
        return None

    if not is_ca:
        bad(
            "is not a CA certificate (no basicConstraints CA:TRUE), so it cannot sign the "
            f"identity issuer; make the anchor as a root CA, e.g. {_MAKE_ANCHOR}"
        )
    family = _key_family(cert.public_key())
    if family not in _ANCHOR_SIGNATURES:
        bad(
            f"its key is {family}; Linkerd accepts ECDSA P-256 or RSA 2048/4096 trust anchors, "
            f"e.g. {_MAKE_ANCHOR}"
        )
    elif cert.signature_algorithm_oid not in _ANCHOR_SIGNATURES[family]:
        name = getattr(cert.signature_algorithm_oid, "_name", "another algorithm")
        bad(f"is signed with {name}; Linkerd accepts SHA-256 signatures only")

    start, end = cert.not_valid_before_utc, cert.not_valid_after_utc
    if now < start:
        bad(f"is not valid before {_when(start)}; check the clock of the machine that made it")
    elif end <= now:
        bad(
            f"expired on {_when(end)}; make a new anchor and give it to every cluster that "
            "shares it, or leave this empty to generate one"
        )
    elif ident.issuer == "pulumi":
        hours = ident.issuer_validity_hours
        left = int((end - now).total_seconds() // 3600)
        if left < hours:
            # Proxies stop trusting the issuer the moment the anchor above it expires.
            # No shorter than the renewal window plus a month of service (`_cross_checks`).
            shortest = ident.issuer_early_renewal_hours + MIN_ISSUER_SERVICE_HOURS
            fix = (
                f"lower linkerd.identity.issuerValidityHours to {left} or less, or "
                if left >= shortest
                else ""
            )
            bad(
                f"expires on {_when(end)}, {left}h from now, before an issuer made now for "
                f"linkerd.identity.issuerValidityHours ({hours}h) would; {fix}use an anchor "
                "valid longer"
            )
    return cert


def _anchor_key(
    r: _Reader, pem: str, cert: x509.Certificate | None, keys: _AnchorKeys = _ANCHOR_KEYS
) -> None:
    def bad(problem: str) -> None:
        r.errors.append(f"{PROJECT}:{keys.key}: {problem} (the secret is not shown)")

    labels = _PEM_LABEL.findall(pem)
    if not any("PRIVATE KEY" in label for label in labels):
        what = "a certificate" if "CERTIFICATE" in labels else "no PEM private key"
        bad(
            f"holds {what}; expected the anchor's private key (a PEM `PRIVATE KEY` or "
            f"`EC PRIVATE KEY` block): `pulumi config set --secret {keys.key} "
            "< ca.key`"
        )
        return
    try:
        key = serialization.load_pem_private_key(pem.encode(), password=None)
    except TypeError:
        bad(
            "is encrypted; give it without a passphrase (the stack's secrets provider encrypts "
            "it), e.g. from `openssl pkey -in ca.key -out ca-plain.key`"
        )
        return
    except (ValueError, UnsupportedAlgorithm):
        bad("is not a valid PEM private key; copy the whole key file")
        return
    if cert is None:
        return
    der, spki = serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    if key.public_key().public_bytes(der, spki) != cert.public_key().public_bytes(der, spki):
        bad(
            f"is not the key of {keys.cert} (their public keys differ); "
            "set the key the anchor was made with"
        )


def _key_family(key: Any) -> str:
    """`ECDSA` or `RSA` for a key Linkerd takes as an anchor, else a name for the key."""
    if isinstance(key, ec.EllipticCurvePublicKey):
        return "ECDSA" if isinstance(key.curve, ec.SECP256R1) else f"ECDSA {key.curve.name}"
    if isinstance(key, rsa.RSAPublicKey):
        return "RSA" if key.key_size in (2048, 4096) else f"RSA {key.key_size}-bit"
    return type(key).__name__.removesuffix("PublicKey").lstrip("_") or "unknown"


def _when(moment: datetime.datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


# --- Multicluster ----------------------------------------------------------------------------
# A cluster joins others through stack outputs only: its trust anchor from the trust stack
# (`trust/`), each peer's address, networks and anchors from the peer's stack. Everything a
# link needs is checked here against what the peers exported, before any resource.

MULTICLUSTER_MODES = ("gateway", "pod-to-pod", "federated")
GATEWAY_SERVICE_TYPES = ("LoadBalancer", "NodePort")
# The emojivoto workloads web calls over gRPC: the ones that may run in another cluster.
PLACEABLE = ("emoji", "voting")
MULTICLUSTER_OUTPUT = "multicluster"
_STACK_NAME = re.compile(r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$")
_API_SERVER = re.compile(r"^https://[^\s/]+$")
_MULTICLUSTER_KEYS = (
    "clusterName",
    "trustStack",
    "apiServerAddress",
    "podCidr",
    "serviceCidr",
    "gateway",
    "links",
    "placement",
)
_GATEWAY_KEYS = ("enabled", "serviceType", "address", "nodePort", "probeNodePort")
_FIRST_OF_PAIR = (
    "run `pulumi up` there first; the first cluster of a pair comes up without this link "
    "and adds it in its second `up` (README: Multicluster)"
)


def _is_cidr(v: Any) -> bool:
    if not isinstance(v, str) or "/" not in v:
        return False
    try:
        ipaddress.ip_network(v, strict=False)
    except ValueError:
        return False
    return True


def _multicluster(
    r: _Reader,
    s: Settings,
    obj: Mapping[str, Any],
    enabled: bool,
    peers: Mapping[str, Mapping[str, Any]],
) -> Settings:
    """`multicluster`, and the trust anchor taken from the trust stack's outputs."""
    p = "multicluster"
    r.unknown(obj, p, _MULTICLUSTER_KEYS)
    d = MulticlusterSettings()
    gw = obj.get("gateway") or {}
    if not isinstance(gw, dict):
        r.fail(f"{p}.gateway", gw, "expected a map of gateway settings")
        gw = {}
    r.unknown(gw, f"{p}.gateway", _GATEWAY_KEYS)
    g = f"{p}.gateway"
    m = MulticlusterSettings(
        enabled=enabled,
        cluster_name=r.pick(
            obj,
            p,
            "clusterName",
            "",
            _empty_or(DNS_LABEL),
            "expected a DNS label such as west, or empty for the stack's name",
        )
        or s.stack,
        trust_stack=r.pick(
            obj,
            p,
            "trustStack",
            "",
            _empty_or(_STACK_NAME),
            "expected <org>/<project>/<stack> of the trust stack, e.g. organization/"
            "meshstack-trust/trust",
        ),
        api_server_address=r.pick(
            obj,
            p,
            "apiServerAddress",
            "",
            _empty_or(_API_SERVER),
            "expected https://<host>:<port> where peers reach this cluster's API server, e.g. "
            "https://west-control-plane:6443",
        ),
        pod_cidr=r.pick(
            obj,
            p,
            "podCidr",
            "",
            lambda v: v == "" or _is_cidr(v),
            "expected a CIDR such as 10.10.0.0/16",
        ),
        service_cidr=r.pick(
            obj,
            p,
            "serviceCidr",
            "",
            lambda v: v == "" or _is_cidr(v),
            "expected a CIDR such as 10.11.0.0/16",
        ),
        gateway=r.pick(gw, g, "enabled", True, _is_bool, "expected true or false"),
        gateway_service_type=r.pick(
            gw,
            g,
            "serviceType",
            d.gateway_service_type,
            _one_of(GATEWAY_SERVICE_TYPES),
            f"expected one of {GATEWAY_SERVICE_TYPES} (NodePort on kind)",
        ),
        gateway_address=r.pick(
            gw,
            g,
            "address",
            "",
            lambda v: v == "" or bool(_NO_SPACE.match(v)),
            "expected the IP or host name peers reach the gateway at",
        ),
        gateway_node_port=r.pick(
            gw,
            g,
            "nodePort",
            d.gateway_node_port,
            _is_int(30000, 32767),
            "expected a node port from 30000 to 32767",
        ),
        gateway_probe_node_port=r.pick(
            gw,
            g,
            "probeNodePort",
            d.gateway_probe_node_port,
            _is_int(30000, 32767),
            "expected a node port from 30000 to 32767",
        ),
        links=_links(r, obj.get("links")),
        placement=_placement(r, obj.get("placement")),
    )
    if not enabled and (m.links or m.placement):
        r.errors.append(
            f"{PROJECT}:enableMulticluster: false while multicluster."
            f"{'links' if m.links else 'placement'} is set; `pulumi config set "
            "enableMulticluster true`, or remove them"
        )
    if enabled:
        _check_multicluster(r, m, s.profile)
    return _trust_from_stack(r, replace(s, multicluster=m), peers)


def _check_multicluster(r: _Reader, m: MulticlusterSettings, profile: str) -> None:
    p, g = "multicluster", "multicluster.gateway"
    if profile == "dev" and m.gateway and m.gateway_service_type == "LoadBalancer":
        # As exposure.mode: the dev profile opens no load balancer (the policy pack's rule too).
        r.fail(
            f"{g}.serviceType",
            "LoadBalancer",
            "the dev profile opens no load balancer; use NodePort with multicluster.gateway."
            "address (kind), or set profile to prod",
        )
    for key, value, example in (
        ("apiServerAddress", m.api_server_address, "https://west-control-plane:6443"),
        ("podCidr", m.pod_cidr, "10.10.0.0/16"),
        ("serviceCidr", m.service_cidr, "10.11.0.0/16"),
    ):
        if not value:
            r.errors.append(
                f"{PROJECT}:{p}.{key}: missing; peers need it to link to this cluster: "
                f"`pulumi config set --path {p}.{key} {example}`"
            )
    if m.pod_cidr and m.service_cidr and _overlap(m.pod_cidr, m.service_cidr):
        r.fail(f"{p}.serviceCidr", m.service_cidr, f"overlaps {p}.podCidr {m.pod_cidr}")
    if m.gateway and m.gateway_service_type == "NodePort" and not m.gateway_address:
        r.errors.append(
            f"{PROJECT}:{g}.address: missing; with serviceType NodePort peers dial a node: "
            f"give its address, e.g. `pulumi config set --path {g}.address 172.18.0.2`"
        )
    if m.gateway and m.gateway_node_port == m.gateway_probe_node_port:
        r.fail(f"{g}.probeNodePort", m.gateway_probe_node_port, f"is {g}.nodePort; use another")


def _trust_from_stack(r: _Reader, s: Settings, peers: Mapping[str, Mapping[str, Any]]) -> Settings:
    """The anchor (and, during a rotation, the new one) from the trust stack's outputs, in
    place of `linkerd.identity.trustAnchorPem` and its key: read and checked as those are."""
    m, p = s.multicluster, "multicluster"
    ident = s.linkerd.identity
    if not m.trust_stack:
        return s
    if ident.trust_anchor_pem or ident.trust_anchor_key_pem:
        r.errors.append(
            f"{PROJECT}:{p}.trustStack: set together with linkerd.identity.trustAnchorPem or "
            "trustAnchorKeyPem; the anchor comes from one place: remove those, or trustStack"
        )
        return s
    trust = peers.get(m.trust_stack) or {}
    pem, key = trust.get("trustAnchorPem"), trust.get("trustAnchorKeyPem")
    if not (isinstance(pem, str) and pem.strip() and isinstance(key, str) and key.strip()):
        r.errors.append(
            f"{PROJECT}:{p}.trustStack: {m.trust_stack} exports no trustAnchorPem and "
            "trustAnchorKeyPem yet; run `pulumi up` in trust/ for that stack first "
            "(README: Multicluster)"
        )
        return s
    next_pem, next_key = trust.get("nextTrustAnchorPem") or "", trust.get("nextTrustAnchorKeyPem")
    if ident.rotation == "finish" and not next_pem:
        # The trust stack has promoted its new anchor: it is the one `finish` keeps.
        next_pem, next_key = pem, key
    rotating = ident.rotation != "none"
    if rotating and not next_pem:
        r.errors.append(
            f"{PROJECT}:linkerd.identity.rotation: `{ident.rotation}`, but {m.trust_stack} "
            "exports no nextTrustAnchorPem; start the rotation in the trust stack first "
            "(`pulumi config set next b` there, README: Multicluster)"
        )
    ident = replace(
        ident,
        trust_anchor_pem=pem,
        trust_anchor_key_pem=SecretValue(key),
        next_trust_anchor_pem=str(next_pem) if rotating else "",
        next_trust_anchor_key_pem=SecretValue(str(next_key or "")) if rotating else SecretValue(""),
    )
    return replace(s, linkerd=replace(s.linkerd, identity=ident))


def _overlap(a: str, b: str) -> bool:
    return ipaddress.ip_network(a, strict=False).overlaps(ipaddress.ip_network(b, strict=False))


def _links(r: _Reader, value: Any) -> tuple[LinkSettings, ...]:
    if value is None:
        return ()
    example = '[{"stack": "organization/meshstack/west", "mode": "gateway"}]'
    if not isinstance(value, list):
        r.fail("multicluster.links", value, f"expected a list such as {example}")
        return ()
    out: list[LinkSettings] = []
    for i, entry in enumerate(value):
        p = f"multicluster.links[{i}]"
        if not isinstance(entry, dict):
            r.fail(p, entry, f"expected a map such as {example[1:-1]}")
            continue
        r.unknown(entry, p, ("stack", "mode"))
        stack = r.pick(
            entry,
            p,
            "stack",
            "",
            _matches(_STACK_NAME),
            "expected the peer's <org>/<project>/<stack>, e.g. organization/meshstack/west",
        )
        if not stack:
            if "stack" not in entry:
                r.errors.append(f"{PROJECT}:{p}.stack: missing; name the peer's stack")
            continue
        mode = r.pick(
            entry,
            p,
            "mode",
            "gateway",
            _one_of(MULTICLUSTER_MODES),
            f"expected one of {MULTICLUSTER_MODES}",
        )
        out.append(LinkSettings(stack=stack, mode=mode))
    return tuple(out)


def _placement(r: _Reader, value: Any) -> tuple[tuple[str, str], ...]:
    if value is None:
        return ()
    example = '[{"workload": "voting", "cluster": "west"}]'
    if not isinstance(value, list):
        r.fail("multicluster.placement", value, f"expected a list such as {example}")
        return ()
    out: dict[str, str] = {}
    for i, entry in enumerate(value):
        p = f"multicluster.placement[{i}]"
        if not isinstance(entry, dict):
            r.fail(p, entry, f"expected a map such as {example[1:-1]}")
            continue
        r.unknown(entry, p, ("workload", "cluster"))
        workload = r.pick(
            entry, p, "workload", "", _one_of(PLACEABLE), f"expected one of {PLACEABLE}"
        )
        cluster = r.pick(
            entry, p, "cluster", "", _matches(DNS_LABEL), "expected a cluster name such as west"
        )
        if workload in out:
            r.fail(f"{p}.workload", workload, "placed twice; place each workload once")
        elif workload and cluster:
            out[workload] = cluster
    return tuple(out.items())


def _trusted(previous: Mapping[str, Any]) -> tuple[str, set[str]]:
    """(signing anchor, every anchor trusted) of a stack, as SHA-256, from its outputs."""
    signer = previous.get("trustAnchorPem")
    try:
        signer_sha = lifecycle.fingerprint(signer) if isinstance(signer, str) else ""
    except ValueError:
        signer_sha = ""
    trusted = {a.sha256 for a in lifecycle.deployed(previous).anchors}
    return signer_sha, trusted | ({signer_sha} if signer_sha else set())


def _check_links(r: _Reader, s: Settings, peers: Mapping[str, Mapping[str, Any]]) -> Settings:
    """Each link against what its peer exported: the settings with the peers' cluster names."""
    m = s.multicluster
    if not m.enabled:
        return s
    ident = s.linkerd.identity
    plan = ident.rotation_plan
    given = {
        lifecycle.CURRENT_KEY: ident.trust_anchor_pem,
        lifecycle.NEXT_KEY: ident.next_trust_anchor_pem,
    }

    def sha(ref: lifecycle.AnchorRef) -> str:
        pem = given.get(ref.config_key, "") if not ref.generated else ""
        try:
            return lifecycle.fingerprint(pem) if pem else ""
        except ValueError:
            return ""

    own_signer, own_trusted = sha(plan.signer), {sha(ref) for ref in plan.trusted} - {""}
    if m.links and not own_signer:
        r.errors.append(
            f"{PROJECT}:multicluster.trustStack: missing; linked clusters must share one trust "
            "root: take it from the trust stack (`pulumi config set --path "
            "multicluster.trustStack organization/meshstack-trust/trust`, README: Multicluster)"
        )
    names: dict[str, str] = {m.cluster_name: "multicluster.clusterName"}
    links: list[LinkSettings] = []
    for i, link in enumerate(m.links):
        key = f"multicluster.links[{i}]"
        outputs = peers.get(link.stack) or {}
        if not outputs:
            r.errors.append(
                f"{PROJECT}:{key}.stack: {link.stack} has no outputs yet; {_FIRST_OF_PAIR}"
            )
            continue
        peer = outputs.get(MULTICLUSTER_OUTPUT) or {}
        if not isinstance(peer, Mapping) or not peer.get("clusterName"):
            r.errors.append(
                f"{PROJECT}:{key}.stack: {link.stack} runs without enableMulticluster, so it "
                "exports nothing to link to; turn it on there and `pulumi up` it first"
            )
            continue
        cluster = str(peer["clusterName"])
        if cluster in names:
            r.errors.append(
                f"{PROJECT}:{key}.stack: {link.stack} is cluster `{cluster}`, already named by "
                f"{names[cluster]}; every cluster needs its own multicluster.clusterName and "
                "is linked once"
            )
            continue
        names[cluster] = f"{key}.stack"
        peer_signer, peer_trusted = _trusted(outputs)
        if own_signer and (own_signer not in peer_trusted or peer_signer not in own_trusted):
            r.errors.append(
                f"{PROJECT}:{key}.stack: {link.stack}'s trust anchor (SHA-256 "
                f"{peer_signer[:16]}…) is not this cluster's ({own_signer[:16]}…), or one of "
                "the two does not yet trust the other's signing anchor; both must take "
                "multicluster.trustStack from the same trust stack, and during a rotation every "
                "linked cluster reaches `bundle` before any reaches `issuer` (README: Multicluster)"
            )
        if link.mode in ("pod-to-pod", "federated"):
            for own_key, own in (("podCidr", m.pod_cidr), ("serviceCidr", m.service_cidr)):
                for peer_key in ("podCidr", "serviceCidr"):
                    theirs = str(peer.get(peer_key) or "")
                    if own and _is_cidr(theirs) and _overlap(own, theirs):
                        r.errors.append(
                            f"{PROJECT}:{key}.mode: `{link.mode}` routes pod to pod, but "
                            f"multicluster.{own_key} {own} overlaps {cluster}'s {peer_key} "
                            f"{theirs}; give the clusters distinct CIDRs, or use mode `gateway`"
                        )
        elif not (peer.get("gateway") or {}).get("address"):
            r.errors.append(
                f"{PROJECT}:{key}.mode: `gateway`, but {cluster} exports no gateway address "
                "(gateway off, or its LoadBalancer has none yet); set multicluster.gateway "
                "there, or use mode `pod-to-pod`"
            )
        theirs_mode = (peer.get("links") or {}).get(m.cluster_name)
        if theirs_mode and theirs_mode != link.mode:
            r.errors.append(
                f"{PROJECT}:{key}.mode: `{link.mode}`, but {cluster} links back in mode "
                f"`{theirs_mode}`; a pair uses one mode on both sides"
            )
        links.append(
            replace(link, cluster=cluster, cluster_domain=str(peer.get("clusterDomain") or ""))
        )
    modes = {link.mode for link in m.links}
    if {"gateway", "pod-to-pod"} <= modes and any(c == m.cluster_name for _, c in m.placement):
        r.errors.append(
            f"{PROJECT}:multicluster.links: gateway and pod-to-pod links both consume the "
            "workloads placed here, which a Service can be exported for only one of; use one "
            "of the two modes (federated combines with either)"
        )
    # A link not yet resolvable is reported above; its cluster's name is unknown here.
    resolved = len(links) == len(m.links)
    for i, (_, cluster) in enumerate(m.placement):
        if resolved and cluster not in names:
            r.errors.append(
                f"{PROJECT}:multicluster.placement[{i}].cluster: `{cluster}` is neither this "
                f"cluster ({m.cluster_name}) nor a linked one ({', '.join(sorted(names)[:10])}); "
                "link it under multicluster.links, or place the workload elsewhere"
            )
    return replace(s, multicluster=replace(m, links=tuple(links)))


def peer_stacks(raw: Mapping[str, str]) -> list[str]:
    """The stacks whose outputs `parse_settings` needs (`peers`): the trust stack and every
    linked one, read leniently from the raw config (`parse_settings` reports what is wrong)."""
    try:
        obj = json.loads(raw.get("multicluster") or "{}")
    except json.JSONDecodeError:
        return []
    if not isinstance(obj, dict):
        return []
    names = [obj.get("trustStack")] + [
        link.get("stack") for link in obj.get("links") or [] if isinstance(link, dict)
    ]
    return sorted({n for n in names if isinstance(n, str) and _STACK_NAME.match(n)})
