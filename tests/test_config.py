"""Configuration: every key declared, defaulted once, and every mistake named precisely."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
import yaml

from components import config as cfg
from tests.graph import (
    ROOT,
    plain,
    project_defaults,
    run_program,
    stack_config,
    stack_names,
)
from tests.markdown import table_in


def parse(overrides: dict[str, Any], secret: tuple[str, ...] = ()) -> cfg.Settings:
    raw = {k: v if isinstance(v, str) else json.dumps(v) for k, v in overrides.items()}
    return cfg.parse_settings(raw, stack="test", secret_keys=frozenset(secret))


def test_pulumi_yaml_declares_exactly_the_keys_the_program_reads() -> None:
    declared = yaml.safe_load((ROOT / "Pulumi.yaml").read_text())["config"]
    assert set(declared) == set(cfg.TOP_LEVEL_KEYS)
    for key, decl in declared.items():
        assert decl["type"] == cfg.TOP_LEVEL_KEYS[key], key
        assert decl["description"].strip(), key
        assert "default" in decl, key


def test_pulumi_yaml_defaults_are_the_program_defaults() -> None:
    assert parse(project_defaults()) == parse({})


@pytest.mark.parametrize("stack", stack_names())
def test_every_stack_file_parses(stack: str) -> None:
    config = stack_config(stack)
    settings = parse(config)
    assert settings.profile in cfg.PROFILES


def test_prod_stack_is_highly_available_persistent_and_gateway_exposed() -> None:
    s = parse(stack_config("prod"))
    assert s.high_availability
    assert s.tracing.storage == "badger" and s.logging.persistence and s.grafana.persistence
    assert s.exposure.mode == "gateway" and s.exposure.install_envoy_gateway


def test_secret_values_are_hidden_from_repr() -> None:
    s = parse({"alertWebhookUrl": "https://hooks.example.com/abc"}, secret=("alertWebhookUrl",))
    assert "hooks.example.com" not in repr(s)


# Each case: config overrides → the key the error must name.
BAD: list[tuple[dict[str, Any], str]] = [
    ({"profile": "staging"}, "meshstack:profile"),
    ({"clusterDomain": "Cluster_Local"}, "meshstack:clusterDomain"),
    ({"enableTracing": "yes"}, "meshstack:enableTracing"),
    ({"enableLogging": 1}, "meshstack:enableLogging"),
    ({"tracing": "badger"}, "meshstack:tracing"),
    ({"tracing": {"storage": "tempo"}}, "meshstack:tracing.storage"),
    ({"tracing": {"storag": "badger"}}, "meshstack:tracing.storag"),
    ({"tracing": {"storageSize": "10GB"}}, "meshstack:tracing.storageSize"),
    ({"tracing": {"spanTtl": "3d"}}, "meshstack:tracing.spanTtl"),
    ({"tracing": {"openCensus": "yes"}}, "meshstack:tracing.openCensus"),
    ({"enableTracing": "null"}, "meshstack:enableTracing"),
    ({"enableGrafana": "True"}, "meshstack:enableGrafana"),
    ({"linkerd": {"installGatewayApiCrds": "1"}}, "meshstack:linkerd.installGatewayApiCrds"),
    ({"grafana": {"alerts": {"successRate": "0.99x"}}}, "meshstack:grafana.alerts.successRate"),
    ({"grafana": {"alerts": {"successRate": "nan"}}}, "meshstack:grafana.alerts.successRate"),
    ({"grafana": {"alerts": {"successRate": "1.5"}}}, "meshstack:grafana.alerts.successRate"),
    ({"grafana": {"alerts": {"latencyP99Ms": "500ms"}}}, "meshstack:grafana.alerts.latencyP99Ms"),
    ({"grafana": {"alerts": {"latencyP99Ms": "1_000"}}}, "meshstack:grafana.alerts.latencyP99Ms"),
    ({"emojivoto": {"replicas": "2.5"}}, "meshstack:emojivoto.replicas"),
    ({"emojivoto": {"replicas": 2.0}}, "meshstack:emojivoto.replicas"),
    ({"profile": "prod"}, "meshstack:kubeContext"),
    ({"logging": {"retention": "12h"}}, "meshstack:logging.retention"),
    ({"logging": {"retention": "36h"}}, "meshstack:logging.retention"),
    ({"logging": {"storageClass": "Fast SSD"}}, "meshstack:logging.storageClass"),
    ({"grafana": {"alerts": {"successRate": 95}}}, "meshstack:grafana.alerts.successRate"),
    ({"grafana": {"alerts": {"latencyP99Ms": 0}}}, "meshstack:grafana.alerts.latencyP99Ms"),
    ({"grafana": {"alerts": {"p99": 300}}}, "meshstack:grafana.alerts.p99"),
    ({"emojivoto": {"replicas": 0}}, "meshstack:emojivoto.replicas"),
    ({"emojivoto": {"replicas": True}}, "meshstack:emojivoto.replicas"),
    ({"emojivoto": {"voteBotReplicas": 50}}, "meshstack:emojivoto.voteBotReplicas"),
    ({"exposure": {"mode": "ingres"}}, "meshstack:exposure.mode"),
    ({"exposure": {"mode": "ingress"}}, "meshstack:exposure.domain"),
    ({"exposure": {"mode": "loadBalancer"}}, "meshstack:exposure.mode"),
    (
        {"exposure": {"mode": "ingress", "domain": "x.io", "tlsSecret": "a", "clusterIssuer": "b"}},
        "meshstack:exposure.clusterIssuer",
    ),
    ({"exposure": {"tlsSecret": "mesh-tls"}}, "meshstack:exposure.mode"),
    (
        {"onboarding": {"namespaces": [{"name": "Team_A"}]}},
        "meshstack:onboarding.namespaces[0].name",
    ),
    ({"onboarding": {"namespaces": ["a", "a"]}}, "meshstack:onboarding.namespaces[1].name"),
    ({"onboarding": {"namespaces": ["linkerd"]}}, "meshstack:onboarding.namespaces[0].name"),
    (
        {"onboarding": {"namespaces": [{"name": "a", "adopt": "no"}]}},
        "meshstack:onboarding.namespaces[0].adopt",
    ),
    ({"onboarding": {"namespaces": "team-a"}}, "meshstack:onboarding.namespaces"),
    ({"linkerd": {"identity": {"issuer": "vault"}}}, "meshstack:linkerd.identity.issuer"),
    (
        {"linkerd": {"identity": {"issuerValidityHours": 10}}},
        "meshstack:linkerd.identity.issuerValidityHours",
    ),
    (
        {"linkerd": {"identity": {"issuerEarlyRenewalHours": 9000}}},
        "meshstack:linkerd.identity.issuerEarlyRenewalHours",
    ),
    (
        {"linkerd": {"identity": {"issuerEarlyRenewalHours": 720}}},
        "meshstack:linkerd.identity.issuerEarlyRenewalHours",
    ),
    (
        {"linkerd": {"identity": {"issuerValidityHours": 2200}}},
        "meshstack:linkerd.identity.issuerValidityHours",
    ),
    (
        {"linkerd": {"identity": {"trustAnchorPem": "not a cert"}}},
        "meshstack:linkerd.identity.trustAnchorPem",
    ),
    (
        {"linkerd": {"identity": {"issuer": "external"}}},
        "meshstack:linkerd.identity.trustAnchorPem",
    ),
    ({"linkerd": {"prometheusUrl": "prometheus:9090"}}, "meshstack:linkerd.prometheusUrl"),
    # An external Prometheus must be named as the scraper default-deny admits, and only then.
    (
        {"linkerd": {"prometheusUrl": "https://prom.example.org"}},
        "meshstack:linkerd.prometheusScraper",
    ),
    (
        {"linkerd": {"prometheusScraper": "monitoring/prometheus"}},
        "meshstack:linkerd.prometheusScraper",
    ),
    (
        {"linkerd": {"prometheusUrl": "https://p.example.org", "prometheusScraper": "Prom"}},
        "meshstack:linkerd.prometheusScraper",
    ),
    ({"linkerd": {"instalGatewayApiCrds": False}}, "meshstack:linkerd.instalGatewayApiCrds"),
    ({"trustAnchorKeyPem": "-----BEGIN PRIVATE KEY-----"}, "meshstack:trustAnchorKeyPem"),
    ({"alertWebhookUrl": "https://hooks.example.com/x"}, "meshstack:alertWebhookUrl"),
    ({"enableJaeger": True}, "meshstack:enableJaeger"),
]


@pytest.mark.parametrize(("overrides", "key"), BAD, ids=[k for _, k in BAD])
def test_bad_config_is_rejected_naming_the_key(overrides: dict[str, Any], key: str) -> None:
    with pytest.raises(cfg.ConfigError) as caught:
        parse(overrides)
    lines = str(caught.value).splitlines()
    assert any(line.startswith(f"{key}:") for line in lines), lines


def test_every_error_says_what_to_write_instead() -> None:
    for overrides, key in BAD:
        with pytest.raises(cfg.ConfigError) as caught:
            parse(overrides)
        line = next(x for x in str(caught.value).splitlines() if x.startswith(f"{key}:"))
        assert any(
            word in line
            for word in (
                "expected",
                "set ",
                "did you mean",
                "known keys",
                "missing",
                "choose",
                "list each",
                "must",
            )
        ), line


def test_all_problems_are_reported_at_once() -> None:
    with pytest.raises(cfg.ConfigError) as caught:
        parse({"profile": "x", "emojivoto": {"replicas": 0}, "tracing": {"storage": "s3"}})
    assert len(str(caught.value).splitlines()) == 3


def test_a_typo_suggests_the_intended_key() -> None:
    with pytest.raises(cfg.ConfigError, match=r"did you mean `storage`"):
        parse({"tracing": {"storag": "badger"}})


def test_secret_keys_set_with_secret_are_accepted() -> None:
    s = parse({"alertWebhookUrl": "https://hooks.example.com/x"}, secret=("alertWebhookUrl",))
    assert s.grafana.alert_webhook_url.value == "https://hooks.example.com/x"


def test_bad_config_stops_the_program_before_any_resource_is_registered() -> None:
    graph = run_program("dev", {"profile": "staging"})
    assert graph.error is not None
    assert "meshstack:profile" in str(graph.error)
    assert type(graph.error).__name__ == "RunError"
    assert graph.resources == []


def declared_leaves() -> dict[str, Any]:
    """Every settable key of Pulumi.yaml (object keys down to their leaves) → its default."""
    out: dict[str, Any] = {}

    def walk(prefix: str, value: Any) -> None:
        if isinstance(value, dict):
            for k, v in value.items():
                walk(f"{prefix}.{k}", v)
        else:
            out[prefix] = value

    for key, decl in yaml.safe_load((ROOT / "Pulumi.yaml").read_text())["config"].items():
        walk(key, decl["default"])
    # Keys whose default is the profile's: Pulumi.yaml leaves them out of its defaults.
    for key, by_profile in cfg.PROFILE_DEFAULTS.items():
        assert key not in out, f"Pulumi.yaml gives {key} one default; it has one per profile"
        out[key] = by_profile["dev"]
    return out


TABLE_TYPES = {bool: "boolean", int: "integer", float: "number", str: "string", list: "array"}


def test_readme_documents_every_config_key() -> None:
    table = table_in(ROOT / "README.md", "Configure")
    key, type_ = table.column("key"), table.column("type")
    documented: dict[str, str] = {}
    for row in table.rows:
        assert row[key].code, f"README Configure: `{row[key].text}` is not written as code"
        for name in row[key].code:
            assert name not in documented, f"README Configure lists {name} twice"
            documented[name] = row[type_].text
    declared = declared_leaves()
    assert set(documented) == set(declared)
    for name, default in declared.items():
        written = documented[name]
        assert written.split()[0] == TABLE_TYPES[type(default)], (name, written)
        assert ("(secret)" in written) == (name in cfg.SECRET_KEYS), (name, written)


# --- Values as `pulumi config set` stores them ------------------------------------------------


def cli_stores(text: str, type_: str = "") -> Any:
    """What `pulumi config set --path <key> <text> [--type <type_>]` writes under a nested key.

    Untyped, the CLI turns exactly `true`/`false` into booleans and base-10 integers without a
    leading zero into numbers, and keeps everything else a string; `--type` parses the text as
    that type (sdk/go/common/resource/config: `coerce` in object.go, `Value.unmarshalObject`).
    """
    if type_ == "string":
        return text
    if type_ == "float":
        return float(text)
    if type_ == "int":
        return int(text)
    if type_ == "bool":
        return text.lower() in ("1", "t", "true")
    if text in ("true", "false"):
        return text == "true"
    if re.fullmatch(r"-?[0-9]+", text) and not (len(text) > 1 and text.startswith("0")):
        return int(text)
    return text


def nested(path: str, value: Any) -> dict[str, Any]:
    """`a.b.c` → {"a": {"b": {"c": value}}}, as `--path` builds it."""
    head, *rest = path.split(".")
    for part in reversed(rest):
        value = {part: value}
    return {head: value}


def read(s: cfg.Settings, path: str) -> Any:
    return {
        "grafana.alerts.successRate": s.grafana.success_rate_threshold,
        "grafana.alerts.latencyP99Ms": s.grafana.latency_p99_ms,
        "grafana.persistence": s.grafana.persistence,
        "tracing.openCensus": s.tracing.open_census,
        "logging.persistence": s.logging.persistence,
        "emojivoto.replicas": s.emojivoto.replicas,
        "emojivoto.voteBotReplicas": s.emojivoto.vote_bot_replicas,
        "linkerd.installGatewayApiCrds": s.linkerd.install_gateway_api_crds,
        "linkerd.identity.issuerValidityHours": s.linkerd.identity.issuer_validity_hours,
        "enableTracing": s.tracing.enabled,
        "enableGrafana": s.grafana.enabled,
    }[path]


# (key, text typed after it, --type) → the value the program must end up with.
SET_WITH_PATH: list[tuple[str, str, str, Any]] = [
    ("grafana.alerts.successRate", "0.99", "", 0.99),
    ("grafana.alerts.successRate", "0.99", "float", 0.99),
    ("grafana.alerts.successRate", "0.99", "string", 0.99),
    ("grafana.alerts.successRate", ".5", "", 0.5),
    ("grafana.alerts.latencyP99Ms", "500", "", 500),
    ("grafana.alerts.latencyP99Ms", "500", "int", 500),
    ("grafana.alerts.latencyP99Ms", "500", "string", 500),
    ("grafana.alerts.latencyP99Ms", "0300", "", 300),
    ("emojivoto.replicas", "3", "", 3),
    ("emojivoto.voteBotReplicas", "0", "string", 0),
    ("linkerd.identity.issuerValidityHours", "4380", "string", 4380),
    ("tracing.openCensus", "false", "", False),
    ("tracing.openCensus", "false", "bool", False),
    ("tracing.openCensus", "false", "string", False),
    ("grafana.persistence", "true", "", True),
    ("grafana.persistence", "true", "string", True),
    ("logging.persistence", "true", "bool", True),
    ("linkerd.installGatewayApiCrds", "false", "string", False),
]


@pytest.mark.parametrize(
    ("key", "text", "type_", "expected"),
    SET_WITH_PATH,
    ids=[f"{k}={t}{' --type ' + ty if ty else ''}" for k, t, ty, _ in SET_WITH_PATH],
)
def test_values_set_with_path_are_read_as_the_cli_stores_them(
    key: str, text: str, type_: str, expected: Any
) -> None:
    settings = parse(nested(key, cli_stores(text, type_)))
    value = read(settings, key)
    assert value == expected and type(value) is type(expected), (key, text, type_, value)


# Top-level keys reach the program as the text the CLI stored, typed or not.
@pytest.mark.parametrize(
    ("key", "text", "expected"),
    [
        ("enableTracing", "false", False),
        ("enableTracing", "true", True),
        ("enableGrafana", "false", False),
    ],
)
def test_top_level_booleans_are_read_from_the_text_the_cli_stores(
    key: str, text: str, expected: bool
) -> None:
    assert read(parse({key: text}), key) is expected


def test_a_team_namespace_the_cli_stored_as_a_number_is_read_as_its_name() -> None:
    path = {"onboarding": {"namespaces": [{"name": cli_stores("2024"), "adopt": "true"}]}}
    assert parse(path).teams == (cfg.TeamNamespace(name="2024", adopt=True),)


# Garbage under a numeric or boolean key: the message names the key, shows the value as given
# and says what to write, with a command that would work.
GARBAGE: list[tuple[str, Any, str]] = [
    ("grafana.alerts.successRate", "0.99x", "expected a fraction between 0 and 1"),
    ("grafana.alerts.successRate", "95", "expected a fraction between 0 and 1"),
    ("grafana.alerts.latencyP99Ms", "fast", "expected milliseconds"),
    ("grafana.alerts.latencyP99Ms", "2.5", "expected milliseconds"),
    ("tracing.openCensus", "yes", "expected true or false"),
    ("emojivoto.replicas", "three", "expected a whole number from 1 to 10"),
]


@pytest.mark.parametrize(("key", "value", "accepted"), GARBAGE, ids=[g[0] for g in GARBAGE])
def test_garbage_under_a_typed_key_names_key_value_and_what_to_write(
    key: str, value: Any, accepted: str
) -> None:
    with pytest.raises(cfg.ConfigError) as caught:
        parse(nested(key, value))
    (line,) = str(caught.value).splitlines()
    assert line.startswith(f"meshstack:{key}: got {json.dumps(value)}; {accepted}"), line
    default = read(cfg.parse_settings({}, stack="test"), key)
    assert f"`pulumi config set --path {key} {json.dumps(default)}`" in line, line


def test_a_fraction_given_as_text_gets_no_message_that_contradicts_it() -> None:
    assert parse(nested("grafana.alerts.successRate", "0.99")).grafana.success_rate_threshold == (
        0.99
    )
    with pytest.raises(cfg.ConfigError) as caught:
        parse(nested("grafana.alerts.successRate", "1.5"))
    assert 'got "1.5"; expected a fraction between 0 and 1' in str(caught.value)


def test_a_value_under_a_key_set_as_secret_is_never_shown() -> None:
    with pytest.raises(cfg.ConfigError) as caught:
        parse({"grafana": {"alerts": {"successRate": "s3cr3t"}}}, secret=("grafana",))
    message = str(caught.value)
    assert "meshstack:grafana.alerts.successRate: got (secret)" in message
    assert "s3cr3t" not in message


# --- The prod profile names its cluster ------------------------------------------------------


def test_prod_without_a_kube_context_or_kubeconfig_is_a_config_error() -> None:
    with pytest.raises(cfg.ConfigError) as caught:
        parse({"profile": "prod"})
    (line,) = str(caught.value).splitlines()
    assert line.startswith("meshstack:kubeContext: missing;"), line
    assert "`pulumi config set kubeContext <context>`" in line


@pytest.mark.parametrize(
    "cluster", [{"kubeContext": "gke_acme_europe-west1_prod"}, {"kubeconfig": "/etc/kube/prod"}]
)
def test_prod_with_a_kube_context_or_kubeconfig_parses(cluster: dict[str, str]) -> None:
    assert parse({"profile": "prod", **cluster}).high_availability


def test_dev_may_use_the_current_context() -> None:
    assert parse({}).kube_context == ""


def test_the_prod_stack_file_pins_a_context_that_is_not_the_laptop_cluster() -> None:
    context = stack_config("prod")["kubeContext"]
    assert context and not context.startswith("kind-")
    assert stack_config("dev")["kubeContext"] == "kind-meshstack"


# --- The issuer's renewal window --------------------------------------------------------------

IDENTITY = "meshstack:linkerd.identity."


@pytest.mark.parametrize(
    ("identity", "key", "says"),
    [
        # Under 90 days: `linkerd check` warns from 60, and only an `up` in the window renews.
        ({"issuerEarlyRenewalHours": 720}, "issuerEarlyRenewalHours", "between 2160 (90 days"),
        ({"issuerEarlyRenewalHours": 2159}, "issuerEarlyRenewalHours", "between 2160 (90 days"),
        # A window the whole lifetime long would renew the issuer on every run.
        (
            {"issuerEarlyRenewalHours": 8760},
            "issuerEarlyRenewalHours",
            "would serve 0h before renewal starts",
        ),
        (
            {"issuerEarlyRenewalHours": 8400},
            "issuerEarlyRenewalHours",
            "lower it to 8040 or less, or raise linkerd.identity.issuerValidityHours to 9120",
        ),
        (
            {"issuerValidityHours": 4000, "issuerEarlyRenewalHours": 3600},
            "issuerEarlyRenewalHours",
            "serve 400h before renewal starts, under the 720h (30 days) a renewed issuer must "
            "serve; lower it to 3280 or less, or raise linkerd.identity.issuerValidityHours "
            "to 4320 or more",
        ),
        # Too short for the shortest window plus a month of service.
        ({"issuerValidityHours": 2200}, "issuerValidityHours", "between 2880 (the 90-day"),
    ],
)
def test_an_issuer_renewal_window_that_starts_late_or_leaves_no_service_is_refused(
    identity: dict[str, int], key: str, says: str
) -> None:
    with pytest.raises(cfg.ConfigError) as caught:
        parse({"linkerd": {"identity": identity}})
    lines = str(caught.value).splitlines()
    # One line, about the key at fault: a rejected value's default does not stand trial again.
    assert len(lines) == 1 and lines[0].startswith(f"{IDENTITY}{key}:") and says in lines[0], lines


@pytest.mark.parametrize(
    "identity",
    [
        {"issuerValidityHours": 2880, "issuerEarlyRenewalHours": 2160},
        {"issuerValidityHours": 8760, "issuerEarlyRenewalHours": 8040},
    ],
)
def test_a_90_day_window_after_a_month_of_service_is_accepted(identity: dict[str, int]) -> None:
    ident = parse({"linkerd": {"identity": identity}}).linkerd.identity
    assert ident.issuer_validity_hours - ident.issuer_early_renewal_hours >= 720


# --- A kubeconfig given as its contents -------------------------------------------------------

KUBECONFIG_CONTENTS = """apiVersion: v1
kind: Config
users:
- name: admin
  user:
    token: kubeconfig-s3cr3t-token
"""


@pytest.mark.parametrize(
    "contents", [KUBECONFIG_CONTENTS, '{"apiVersion": "v1", "kind": "Config"}']
)
def test_a_kubeconfig_given_as_contents_in_plain_text_is_refused_without_showing_it(
    contents: str,
) -> None:
    with pytest.raises(cfg.ConfigError) as caught:
        parse({"kubeconfig": contents})
    (line,) = str(caught.value).splitlines()
    assert line.startswith("meshstack:kubeconfig: "), line
    assert "`pulumi config set --secret kubeconfig < kubeconfig.yaml`" in line
    assert "s3cr3t" not in line and "apiVersion" not in line


def test_a_kubeconfig_given_as_contents_with_secret_or_as_a_path_is_accepted() -> None:
    secret = parse({"kubeconfig": KUBECONFIG_CONTENTS}, secret=("kubeconfig",))
    assert secret.kubeconfig == KUBECONFIG_CONTENTS
    assert parse({"kubeconfig": "/home/ops/.kube/prod config"}).kubeconfig.endswith("config")


@pytest.mark.parametrize("key", cfg.SECRET_KEYS)
def test_a_secret_key_of_the_wrong_type_is_never_shown_even_in_plain_text(key: str) -> None:
    with pytest.raises(cfg.ConfigError) as caught:
        parse({key: {"value": "s3cr3t"}})
    assert "s3cr3t" not in str(caught.value)


def test_kubeconfig_contents_in_plain_text_stop_the_program_before_any_resource() -> None:
    graph = run_program("dev", {"kubeconfig": KUBECONFIG_CONTENTS}, secret_keys=())
    assert graph.error is not None and type(graph.error).__name__ == "RunError"
    assert "meshstack:kubeconfig:" in str(graph.error)
    assert "s3cr3t" not in str(graph.error)
    assert graph.resources == []


def test_kubeconfig_contents_set_as_secret_reach_the_provider() -> None:
    graph = run_program("dev", {"kubeconfig": KUBECONFIG_CONTENTS}, secret_keys=("kubeconfig",))
    assert graph.error is None, graph.error
    (provider,) = graph.of_type("pulumi:providers:kubernetes")
    assert plain(provider.inputs["kubeconfig"]) == KUBECONFIG_CONTENTS


# --- Defaults that depend on the profile ------------------------------------------------------


def test_the_readme_gives_each_profile_its_default_of_a_profile_dependent_key() -> None:
    table = table_in(ROOT / "README.md", "Configure")
    rows = {name: row for row in table.rows for name in row[table.column("key")].code}
    declared = yaml.safe_load((ROOT / "Pulumi.yaml").read_text())["config"]
    for key, by_profile in cfg.PROFILE_DEFAULTS.items():
        written = rows[key][table.column("default")].text
        for profile, default in by_profile.items():
            assert f"{json.dumps(default)} with profile {profile}" in written, (key, written)
        top, _, leaf = key.partition(".")
        assert leaf in declared[top]["description"], f"Pulumi.yaml: {top} does not name {leaf}"


@pytest.mark.parametrize(("profile", "cni"), [("dev", False), ("prod", True)])
def test_cni_is_on_in_prod_and_off_in_dev_unless_set(profile: str, cni: bool) -> None:
    cluster = {"kubeContext": "ctx"}
    assert parse({"profile": profile, **cluster}).linkerd.cni is cni
    flipped = parse({"profile": profile, **cluster, "linkerd": {"cni": not cni}})
    assert flipped.linkerd.cni is (not cni)


def test_the_stack_files_take_their_profiles_cni_default() -> None:
    assert parse(stack_config("prod")).linkerd.cni is True
    assert parse(stack_config("dev")).linkerd.cni is False


def test_cni_as_the_cli_stores_it_is_read_and_garbage_is_named() -> None:
    assert parse({"linkerd": {"cni": "true"}}).linkerd.cni is True
    with pytest.raises(cfg.ConfigError, match=r"meshstack:linkerd\.cni: got \"yes\""):
        parse({"linkerd": {"cni": "yes"}})
