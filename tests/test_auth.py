"""Sign-in in front of the dashboard and Jaeger: oauth2-proxy in every mode, secrets as secrets."""

from __future__ import annotations

import json
import urllib.parse
from typing import Any

import jmespath
import pytest

from components import auth, config, exposure, grafana
from tests.charts import OIDC_EXPOSURE
from tests.graph import Graph, leaves, run_program

# The provider of the chart suites' OIDC variant, published by NodePort, with single addresses
# and a domain allowed besides the group.
OIDC: dict[str, Any] = {
    "mode": "nodePort",
    **OIDC_EXPOSURE,
    "oidc": {
        **OIDC_EXPOSURE["oidc"],
        "allowedEmails": ["sre@example.com", "@ops.example.com"],
    },
}
CLIENT_SECRET = "oidc-client-secret-value"


def parse(
    exposure_cfg: dict[str, Any], profile: str = "dev", client_secret: str = ""
) -> config.Settings:
    raw = {"profile": profile, "kubeContext": "k", "exposure": exposure_cfg}
    if client_secret:
        raw["oidcClientSecret"] = client_secret
    return config.parse_settings(
        {k: v if isinstance(v, str) else json.dumps(v) for k, v in raw.items()},
        stack="test",
        secret_keys=frozenset({"oidcClientSecret"}),
    )


# --- Config ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("mode", "expected"),
    [("port-forward", "none"), ("nodePort", "basic"), ("ingress", "basic")],
)
def test_sign_in_is_on_by_default_whenever_anything_leaves_the_machine(
    mode: str, expected: str
) -> None:
    cfg: dict[str, Any] = {"mode": mode}
    if mode == "ingress":
        cfg |= {"domain": "mesh.example.com", "ingressClass": "traefik"}
    assert parse(cfg).auth.mode == expected


@pytest.mark.parametrize(
    ("profile", "cfg", "key"),
    [
        ("dev", {"mode": "nodePort", "auth": "none"}, "meshstack:exposure.auth:"),
        (
            "prod",
            {"mode": "loadBalancer", "auth": "none", "allowUnauthenticated": True},
            "meshstack:exposure.allowUnauthenticated:",
        ),
        ("dev", {"mode": "nodePort", "auth": "oidc"}, "meshstack:exposure.oidc.issuerUrl: missing"),
        ("dev", {"mode": "nodePort", "auth": "oidc"}, "meshstack:exposure.oidc.clientId: missing"),
        ("dev", {"mode": "nodePort", "auth": "oidc"}, "meshstack:oidcClientSecret: missing"),
        (
            "dev",
            {"mode": "nodePort", "auth": "oidc"},
            "meshstack:exposure.oidc.allowedGroups: missing",
        ),
        (
            "dev",
            {**OIDC, "oidc": {**OIDC["oidc"], "issuerUrl": "http://login.example.com"}},
            'meshstack:exposure.oidc.issuerUrl: got "http://login.example.com"',
        ),
        (
            "dev",
            {**OIDC, "oidc": {k: v for k, v in OIDC["oidc"].items() if k != "authUrl"}},
            "meshstack:exposure.oidc.authUrl: missing; exposure.auth oidc needs it (Grafana",
        ),
        (
            "dev",
            {**OIDC, "oidc": {**OIDC["oidc"], "tokenUrl": "login.example.com/token"}},
            'meshstack:exposure.oidc.tokenUrl: got "login.example.com/token"; expected the '
            "https:// URL the issuer's discovery document gives as token_endpoint",
        ),
    ],
)
def test_bad_auth_settings_are_refused_naming_the_key(
    profile: str, cfg: dict[str, Any], key: str
) -> None:
    with pytest.raises(config.ConfigError) as error:
        parse(cfg, profile)
    assert key in str(error.value)


def test_none_is_allowed_off_prod_when_asked_for_explicitly() -> None:
    s = parse({"mode": "nodePort", "auth": "none", "allowUnauthenticated": True})
    assert s.auth.mode == "none"


@pytest.mark.parametrize(
    "overrides",
    [
        {"exposure": {"mode": "nodePort", "auth": "none"}},
        {"exposure": {**OIDC, "issuerUrl": None, "oidc": {"clientId": "x"}}},
        {"exposure": {**OIDC, "oidc": {**OIDC["oidc"], "issuerUrl": "http://idp"}}},
        {"exposure": {"auth": "none", "allowUnauthenticated": True}, "profile": "prod"},
    ],
)
def test_bad_auth_stops_the_program_before_any_resource(overrides: dict[str, Any]) -> None:
    base = "prod" if overrides.pop("profile", "") == "prod" else "dev"
    g = run_program(base, overrides)
    assert g.error is not None and "meshstack:exposure." in str(g.error)
    assert g.resources == []


# --- Pure values -------------------------------------------------------------------------------


def test_the_proxy_passes_host_and_websockets_and_upstreams_to_the_ui() -> None:
    s = parse({"mode": "nodePort"})
    values = auth.proxy_values("dev", s.auth, "http://web.linkerd-viz.svc.cluster.local:8084", "")
    args = values["extraArgs"]
    assert args["upstream"] == "http://web.linkerd-viz.svc.cluster.local:8084"
    assert args["pass-host-header"] == "true" and args["proxy-websockets"] == "true"
    assert values["htpasswdFile"] == {"enabled": True, "existingSecret": auth.CREDENTIALS_SECRET}
    assert values["config"]["existingSecret"] == auth.CREDENTIALS_SECRET
    assert values["redis-ha"] == {"enabled": False}


def test_oidc_values_name_the_issuer_groups_and_emails() -> None:
    s = parse(OIDC, client_secret=CLIENT_SECRET)
    values = auth.proxy_values("dev", s.auth, "http://x.y.svc:1", "https://linkerd.example.com")
    args = values["extraArgs"]
    assert args["provider"] == "oidc"
    assert args["oidc-issuer-url"] == OIDC["oidc"]["issuerUrl"]
    assert args["redirect-url"] == "https://linkerd.example.com/oauth2/callback"
    assert args["cookie-secure"] == "true"
    assert 'allowed_groups = ["platform"]' in values["config"]["configFile"]
    assert 'email_domains = ["ops.example.com"]' in values["config"]["configFile"]
    assert values["authenticatedEmailsFile"]["restricted_access"] == "sre@example.com"
    assert "htpasswdFile" not in values


def test_with_sign_in_the_protected_targets_route_to_oauth2_proxy_in_the_uis_namespace() -> None:
    p = exposure.plan(parse({"mode": "nodePort"}))
    for key in exposure.PROTECTED:
        t = p.targets[key]
        assert (t.namespace, t.service, t.port) == (
            exposure.TARGETS[key].namespace,
            auth.release(key),
            auth.SERVICE_PORT,
        )
        assert t.selector == auth.selector(key)
    assert p.targets["grafana"] == exposure.TARGETS["grafana"]
    assert exposure.plan(parse({})).targets == exposure.TARGETS


# --- The program -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def oidc() -> Graph:
    g = run_program("dev", {"exposure": OIDC, "oidcClientSecret": CLIENT_SECRET})
    assert g.error is None, g.error
    return g


@pytest.fixture(scope="module")
def basic() -> Graph:
    g = run_program("dev", {"exposure": {"mode": "nodePort"}})
    assert g.error is None, g.error
    return g


def _credentials(g: Graph) -> list[Any]:
    return [
        r
        for r in g.of_type("kubernetes:core/v1:Secret")
        if r.inputs["metadata"]["name"] == auth.CREDENTIALS_SECRET
    ]


def test_basic_exports_the_user_and_a_secret_password_in_an_htpasswd_file(basic: Graph) -> None:
    assert basic.outputs["authUser"] == auth.BASIC_USER
    assert basic.outputs["authPassword"]
    secrets = _credentials(basic)
    assert len(secrets) == 2  # dashboard and Jaeger
    for secret in secrets:
        users = secret.inputs["stringData"]["users.txt"]
        assert users.startswith(f"{auth.BASIC_USER}:$2a$"), users
        assert len(secret.inputs["stringData"]["cookie-secret"]) == auth.COOKIE_SECRET_LENGTH
        assert secret.inputs["stringData"]["cookie-secret"].isalnum()


@pytest.mark.parametrize("which", ["basic", "oidc"])
def test_auth_secrets_are_pulumi_secrets_in_state_and_outputs(
    which: str, basic: Graph, oidc: Graph
) -> None:
    g = {"basic": basic, "oidc": oidc}[which]
    for secret in _credentials(g):
        for path, _leaf, is_secret in leaves(secret.raw_inputs.get("stringData")):
            if path in ("client-id",):
                continue
            assert is_secret, f"{secret.urn}: stringData.{path} is not a secret"
    for path, leaf, is_secret in leaves(g.raw_outputs):
        if leaf and leaf in (g.outputs["authPassword"], CLIENT_SECRET):
            assert is_secret, path
    # Nothing secret in any chart's values.
    for chart in g.charts().values():
        flat = [leaf for _, leaf, _ in leaves(chart.raw_inputs.get("values"))]
        assert CLIENT_SECRET not in flat
        assert g.outputs["authPassword"] not in flat or not g.outputs["authPassword"]


def test_oidc_puts_the_client_secret_only_in_the_credentials_secret(oidc: Graph) -> None:
    assert oidc.outputs["authUser"] == "" and oidc.outputs["authPassword"] == ""
    for secret in _credentials(oidc):
        data = secret.inputs["stringData"]
        assert data["client-secret"] == CLIENT_SECRET and "users.txt" not in data


# --- Grafana signs in with the same provider -------------------------------------------------


def _grafana_values(g: Graph) -> dict[str, Any]:
    (chart,) = [c for c in g.charts().values() if c.inputs["chart"] == "grafana"]
    return dict(chart.inputs["values"])


def test_grafana_signs_in_with_the_provider_oauth2_proxy_uses_and_keeps_the_admin(
    oidc: Graph,
) -> None:
    values = _grafana_values(oidc)
    sso = values["grafana.ini"]["auth.generic_oauth"]
    # The client oauth2-proxy really uses, as its pods read it from their Secret.
    (client_id,) = {s.inputs["stringData"]["client-id"] for s in _credentials(oidc)}
    assert sso["enabled"] is True and sso["client_id"] == client_id
    o = OIDC["oidc"]
    assert (sso["auth_url"], sso["token_url"], sso["api_url"]) == (
        o["authUrl"],
        o["tokenUrl"],
        o["userinfoUrl"],
    )
    assert sso["role_attribute_strict"] is True and "client_secret" not in sso
    # The secret arrives from a Secret the program writes in Grafana's namespace, as a secret.
    ref = values["envValueFrom"][grafana.OIDC_ENV]["secretKeyRef"]
    (secret,) = [
        r
        for r in oidc.of_type("kubernetes:core/v1:Secret")
        if r.inputs["metadata"]["name"] == ref["name"]
        and r.inputs["metadata"]["namespace"] == grafana.NAMESPACE
    ]
    assert secret.inputs["stringData"][ref["key"]] == CLIENT_SECRET
    assert [leaf for _, leaf, is_secret in leaves(secret.raw_inputs["stringData"]) if is_secret]
    # Break-glass: the admin user still signs in with the form when the provider is down.
    assert values["admin"]["existingSecret"] == grafana.ADMIN_SECRET
    assert not values["grafana.ini"].get("auth", {}).get("disable_login_form")


def test_without_oidc_grafana_has_only_its_own_login(basic: Graph) -> None:
    values = _grafana_values(basic)
    assert "auth.generic_oauth" not in values["grafana.ini"]
    assert grafana.OIDC_ENV not in (values.get("envValueFrom") or {})


@pytest.mark.parametrize(
    ("claims", "admitted"),
    [
        ({"groups": ["platform"], "email": "someone@example.com"}, True),
        ({"email": "sre@example.com"}, True),
        ({"email": "new@ops.example.com"}, True),
        ({"groups": ["platform-readers"], "email": "someone@example.com"}, False),
        ({"email": "sre@example.com.attacker.net"}, False),
        ({"email": "new@ops.example.com.attacker.net"}, False),
        ({"email": "sre@example.org", "groups": None}, False),
        ({}, False),
    ],
)
def test_grafana_admits_exactly_the_groups_and_emails_oauth2_proxy_admits(
    claims: dict[str, Any], admitted: bool
) -> None:
    """The rule as Grafana evaluates it (JMESPath on the token's claims): a role for the
    allowed, nothing (so, with role_attribute_strict, no sign-in) for everyone else."""
    rule = grafana.sign_in_rule(parse(OIDC, client_secret=CLIENT_SECRET).auth.oidc)
    role = jmespath.search(rule, claims)
    assert (role == grafana.OIDC_ROLE) is admitted, (rule, claims, role)
    assert admitted or not isinstance(role, str)


def test_a_group_claim_with_another_name_is_the_one_read() -> None:
    cfg = {**OIDC, "oidc": {**OIDC["oidc"], "groupsClaim": "cognito:groups"}}
    rule = grafana.sign_in_rule(parse(cfg, client_secret=CLIENT_SECRET).auth.oidc)
    assert jmespath.search(rule, {"cognito:groups": ["platform"]}) == grafana.OIDC_ROLE
    assert jmespath.search(rule, {"groups": ["platform"]}) != grafana.OIDC_ROLE


def test_the_oidc_callback_is_at_the_root_of_the_host_users_open_each_ui_on(oidc: Graph) -> None:
    """oauth2-proxy serves `/oauth2/*` at the host's root whatever path the UI is opened at
    (Jaeger's `/jaeger/`), so the redirect registered with the provider is origin-only."""
    checked = 0
    for chart in oidc.charts().values():
        if chart.inputs["chart"] != "oauth2-proxy":
            continue
        key = chart.inputs["name"].removeprefix("oauth2-proxy-")
        url = urllib.parse.urlsplit(oidc.outputs["urls"][key])
        callback = chart.inputs["values"]["extraArgs"]["redirect-url"]
        assert callback == f"{url.scheme}://{url.netloc}/oauth2/callback", (key, callback)
        checked += 1
    assert checked == 2
