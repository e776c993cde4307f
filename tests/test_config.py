"""Configuration: every key declared, defaulted once, and every mistake named precisely."""

from __future__ import annotations

import json
from typing import Any

import pytest
import yaml

from components import config as cfg
from tests.graph import ROOT, project_defaults, run_program, stack_config, stack_names


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


def test_prod_stack_is_highly_available_persistent_and_ingress_exposed() -> None:
    s = parse(stack_config("prod"))
    assert s.high_availability
    assert s.tracing.storage == "badger" and s.logging.persistence and s.grafana.persistence
    assert s.exposure.mode == "ingress"


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
    ({"tracing": {"storage": "cassandra"}}, "meshstack:tracing.storage"),
    ({"tracing": {"storag": "badger"}}, "meshstack:tracing.storag"),
    ({"tracing": {"storageSize": "10GB"}}, "meshstack:tracing.storageSize"),
    ({"tracing": {"spanTtl": "3d"}}, "meshstack:tracing.spanTtl"),
    ({"tracing": {"openCensus": "true"}}, "meshstack:tracing.openCensus"),
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
        {"linkerd": {"identity": {"trustAnchorPem": "not a cert"}}},
        "meshstack:linkerd.identity.trustAnchorPem",
    ),
    (
        {"linkerd": {"identity": {"issuer": "external"}}},
        "meshstack:linkerd.identity.trustAnchorPem",
    ),
    ({"linkerd": {"prometheusUrl": "prometheus:9090"}}, "meshstack:linkerd.prometheusUrl"),
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


def test_readme_documents_every_config_key() -> None:
    readme = (ROOT / "README.md").read_text()
    declared = yaml.safe_load((ROOT / "Pulumi.yaml").read_text())["config"]
    for key, decl in declared.items():
        if decl["type"] == "object":
            for sub in decl["default"]:
                assert f"`{key}.{sub}" in readme, f"README lacks {key}.{sub}"
        else:
            assert f"`{key}`" in readme, f"README lacks {key}"
