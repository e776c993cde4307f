"""The Linkerd identity chain: trust anchor, issuer and webhook certificates."""

from __future__ import annotations

import datetime
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec

from components.identity import Identity, IdentityArgs, Webhook, expires_at
from components.mesh import webhooks as mesh_webhooks
from components.viz import webhooks as viz_webhooks
from tests.graph import Graph, Resource, leaves, record, stack_names

TLS = "tls:index/"


def build(**overrides: Any) -> Graph:
    args: dict[str, Any] = {
        "trust_domain": "cluster.local",
        "webhooks": mesh_webhooks() + viz_webhooks(),
    }
    args.update(overrides)
    graph = record(lambda: Identity("identity", IdentityArgs(**args)))
    assert graph.error is None, graph.error
    return graph


@pytest.fixture(scope="module")
def graph() -> Graph:
    return build()


def cert(graph: Graph, type_: str, name: str) -> x509.Certificate:
    res = graph.get(f"{TLS}{type_}", name)
    return x509.load_pem_x509_certificate(res.state["certPem"].encode())


def test_issuer_certificate_is_a_ca_signed_by_the_trust_anchor(graph: Graph) -> None:
    anchor = cert(graph, "selfSignedCert:SelfSignedCert", "identity-trust-anchor")
    issuer = cert(graph, "locallySignedCert:LocallySignedCert", "identity-issuer")
    issuer.verify_directly_issued_by(anchor)
    assert issuer.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert anchor.extensions.get_extension_for_class(x509.BasicConstraints).value.ca


def test_issuer_is_signed_with_the_anchor_key_not_its_own(graph: Graph) -> None:
    issuer = graph.get(f"{TLS}locallySignedCert:LocallySignedCert", "identity-issuer")
    anchor_key = graph.get(f"{TLS}privateKey:PrivateKey", "identity-trust-anchor-key")
    issuer_key = graph.get(f"{TLS}privateKey:PrivateKey", "identity-issuer-key")
    assert issuer.inputs["caPrivateKeyPem"] == anchor_key.state["privateKeyPem"]
    assert issuer.inputs["caPrivateKeyPem"] != issuer_key.state["privateKeyPem"]


def test_every_key_is_ecdsa_p256(graph: Graph) -> None:
    keys = graph.of_type(f"{TLS}privateKey:PrivateKey")
    assert len(keys) == 3 + len(mesh_webhooks() + viz_webhooks())
    for key in keys:
        assert (key.inputs["algorithm"], key.inputs["ecdsaCurve"]) == ("ECDSA", "P256"), key
    for name in ("identity-trust-anchor", "identity-issuer"):
        res = graph.find(f"{TLS}selfSignedCert:SelfSignedCert", name) or graph.get(
            f"{TLS}locallySignedCert:LocallySignedCert", name
        )
        public = x509.load_pem_x509_certificate(res.state["certPem"].encode()).public_key()
        assert isinstance(public, ec.EllipticCurvePublicKey)
        assert public.curve.name == "secp256r1", name


def test_every_private_key_is_asked_to_stay_secret(graph: Graph) -> None:
    for key in graph.of_type(f"{TLS}privateKey:PrivateKey"):
        assert {"privateKeyPem", "privateKeyPemPkcs8"} <= set(
            key.options["additionalSecretOutputs"]
        ), key


def test_private_keys_reach_other_resources_only_as_secrets(graph: Graph) -> None:
    for res in graph.resources:
        for path, value, secret in leaves(res.raw_inputs):
            if isinstance(value, str) and "PRIVATE KEY-----" in value:
                assert secret, f"{res.urn}: {path} holds a private key in plain text"


def test_issuer_lives_a_year_and_renews_ninety_days_early(graph: Graph) -> None:
    issuer = graph.get(f"{TLS}locallySignedCert:LocallySignedCert", "identity-issuer")
    assert issuer.inputs["validityPeriodHours"] == 8760
    assert issuer.inputs["earlyRenewalHours"] == 2160
    assert issuer.inputs["maxPathLength"] == 0
    anchor = graph.get(f"{TLS}selfSignedCert:SelfSignedCert", "identity-trust-anchor")
    assert anchor.inputs["validityPeriodHours"] > issuer.inputs["validityPeriodHours"]


def test_anchor_and_issuer_names_follow_the_trust_domain() -> None:
    graph = build(trust_domain="mesh.internal")
    anchor = cert(graph, "selfSignedCert:SelfSignedCert", "identity-trust-anchor")
    issuer = cert(graph, "locallySignedCert:LocallySignedCert", "identity-issuer")
    cn = x509.oid.NameOID.COMMON_NAME
    assert anchor.subject.get_attributes_for_oid(cn)[0].value == "root.linkerd.mesh.internal"
    assert issuer.subject.get_attributes_for_oid(cn)[0].value == "identity.linkerd.mesh.internal"


@pytest.mark.parametrize("hook", mesh_webhooks() + viz_webhooks(), ids=lambda h: h.role)
def test_webhook_certificate_chains_to_its_ca_bundle_for_the_service_name(
    graph: Graph, hook: Webhook
) -> None:
    leaf = cert(graph, "locallySignedCert:LocallySignedCert", f"identity-{hook.role}")
    ca = cert(graph, "selfSignedCert:SelfSignedCert", "identity-webhook-ca")
    leaf.verify_directly_issued_by(ca)
    sans = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sans.get_values_for_type(x509.DNSName) == [hook.dns_name]


def test_webhook_service_names_are_the_ones_the_charts_create() -> None:
    names = {h.dns_name for h in mesh_webhooks() + viz_webhooks()}
    assert names == {
        "linkerd-proxy-injector.linkerd.svc",
        "linkerd-sp-validator.linkerd.svc",
        "linkerd-policy-validator.linkerd.svc",
        "tap.linkerd-viz.svc",
        "tap-injector.linkerd-viz.svc",
    }


def test_a_shared_trust_anchor_signs_the_issuer_without_generating_a_new_anchor(
    graph: Graph,
) -> None:
    anchor = graph.get(f"{TLS}selfSignedCert:SelfSignedCert", "identity-trust-anchor")
    anchor_key = graph.get(f"{TLS}privateKey:PrivateKey", "identity-trust-anchor-key")
    shared = build(
        trust_anchor_pem=anchor.state["certPem"],
        trust_anchor_key_pem=anchor_key.state["privateKeyPem"],
    )
    assert shared.find(f"{TLS}selfSignedCert:SelfSignedCert", "identity-trust-anchor") is None
    issuer = cert(shared, "locallySignedCert:LocallySignedCert", "identity-issuer")
    issuer.verify_directly_issued_by(
        x509.load_pem_x509_certificate(anchor.state["certPem"].encode())
    )
    raw = shared.get(f"{TLS}locallySignedCert:LocallySignedCert", "identity-issuer").raw_inputs
    assert any(p == "caPrivateKeyPem" and s for p, _, s in leaves(raw))


def test_an_external_issuer_makes_no_issuer_certificate(graph: Graph) -> None:
    anchor = graph.get(f"{TLS}selfSignedCert:SelfSignedCert", "identity-trust-anchor")
    external = build(issuer_mode="external", trust_anchor_pem=anchor.state["certPem"])
    assert external.find(f"{TLS}locallySignedCert:LocallySignedCert", "identity-issuer") is None
    assert external.find(f"{TLS}privateKey:PrivateKey", "identity-issuer-key") is None


# --- Renewal ---------------------------------------------------------------------------------

# `linkerd check` warns from 60 days before a certificate expires (linkerd2
# pkg/issuercerts/issuercerts.go: expirationWarningThresholdInDays = 60); pulumi-tls renews
# only when an `up` runs inside `earlyRenewalHours`, so renewal starts a month earlier.
LINKERD_CHECK_WARNS_DAYS = 60
RENEWAL_STARTS_DAYS = 90
# A renewed certificate serves at least this long before its own window opens.
SERVES_AT_LEAST_DAYS = 30


def renewed_by_up(graph: Graph) -> list[Resource]:
    """Every certificate an `up` renews: each one pulumi-tls signs with a CA, and the
    webhooks' CA."""
    return [
        *graph.of_type(f"{TLS}locallySignedCert:LocallySignedCert"),
        graph.get(f"{TLS}selfSignedCert:SelfSignedCert", "identity-webhook-ca"),
    ]


@pytest.mark.parametrize("stack", stack_names())
def test_the_issuer_and_every_webhook_certificate_renew_90_days_before_expiry(
    graphs: dict[str, Graph], stack: str
) -> None:
    graph = graphs[stack]
    certs = renewed_by_up(graph)
    expected = {"identity-issuer", "identity-webhook-ca"} | {
        f"identity-{hook.role}" for hook in mesh_webhooks() + viz_webhooks()
    }
    assert {c.name for c in certs} == expected
    assert RENEWAL_STARTS_DAYS > LINKERD_CHECK_WARNS_DAYS
    for res in certs:
        early = res.inputs.get("earlyRenewalHours", 0)
        assert early >= 24 * RENEWAL_STARTS_DAYS, f"{res.urn}: renews {early}h before expiry"
        # Read from the signed certificate: the window opens well after it is issued.
        signed = x509.load_pem_x509_certificate(res.state["certPem"].encode())
        window_opens = signed.not_valid_after_utc - datetime.timedelta(hours=early)
        served = window_opens - signed.not_valid_before_utc
        assert served >= datetime.timedelta(days=SERVES_AT_LEAST_DAYS), (
            f"{res.urn}: renewal starts {served} after issuance"
        )


@pytest.mark.parametrize("stack", stack_names())
def test_no_up_renews_the_trust_anchor_by_itself(graphs: dict[str, Graph], stack: str) -> None:
    # A new anchor must reach every proxy before an issuer it signed does (identity reads the
    # anchors once at start): that is the rotation runbook's job, and an alert's to prompt it.
    anchors = [
        r
        for r in graphs[stack].of_type(f"{TLS}selfSignedCert:SelfSignedCert")
        if r.name.startswith("identity-trust-anchor")
    ]
    assert anchors
    for anchor in anchors:
        assert not anchor.inputs.get("earlyRenewalHours"), anchor.urn


def test_the_anchor_expiry_is_read_from_the_certificate(graph: Graph) -> None:
    anchor = graph.get(f"{TLS}selfSignedCert:SelfSignedCert", "identity-trust-anchor")
    end = datetime.datetime.strptime(anchor.state["validityEndTime"], "%Y-%m-%dT%H:%M:%S%z")
    assert expires_at(anchor.state["certPem"]) == int(end.timestamp())


def test_the_anchor_expiry_of_a_bundle_is_its_first_to_expire(graph: Graph) -> None:
    # During a rotation the trust roots hold the old anchor and the new one.
    anchor = graph.get(f"{TLS}selfSignedCert:SelfSignedCert", "identity-trust-anchor")
    shorter = build(trust_anchor_validity_hours=24 * 400)
    short = shorter.get(f"{TLS}selfSignedCert:SelfSignedCert", "identity-trust-anchor")
    bundle = anchor.state["certPem"] + short.state["certPem"]
    assert expires_at(bundle) == expires_at(short.state["certPem"])
    assert expires_at(bundle) < expires_at(anchor.state["certPem"])
