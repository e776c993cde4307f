"""A shared trust anchor and its key are read before any resource, and never echoed.

Each case makes real certificates and keys with `cryptography`, as `step` or `openssl` would,
and runs the real program with them: a bad anchor is a config error naming the key and what is
wrong with it, and not a single resource is registered.
"""

from __future__ import annotations

import datetime
import json
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from components import config as cfg
from tests.graph import run_program

NOW = datetime.datetime.now(datetime.UTC)
DAY = datetime.timedelta(days=1)
ANCHOR = "meshstack:linkerd.identity.trustAnchorPem"
ANCHOR_KEY = "meshstack:trustAnchorKeyPem"

Key = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey


def ec_key(curve: ec.EllipticCurve | None = None) -> Key:
    return ec.generate_private_key(curve or ec.SECP256R1())


def rsa_key(bits: int) -> Key:
    return rsa.generate_private_key(public_exponent=65537, key_size=bits)


def key_pem(key: Key, password: bytes | None = None) -> str:
    encryption: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(password)
        if password
        else serialization.NoEncryption()
    )
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption
    ).decode()


def cert_pem(
    key: Key,
    *,
    ca: bool | None = True,
    not_before: datetime.datetime | None = None,
    not_after: datetime.datetime | None = None,
    digest: hashes.SHA256 | hashes.SHA384 | None = None,
) -> str:
    """A self-signed certificate: a root CA unless told otherwise (`ca=None`: no constraints)."""
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "root.linkerd.cluster.local")])
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before or NOW - DAY)
        .not_valid_after(not_after or NOW + 3650 * DAY)
    )
    if ca is not None:
        builder = builder.add_extension(x509.BasicConstraints(ca=ca, path_length=None), True)
    signed = builder.sign(key, digest or hashes.SHA256())
    return signed.public_bytes(serialization.Encoding.PEM).decode()


@dataclass(frozen=True)
class Anchor:
    """A trust anchor certificate and the key given with it, plus other identity settings."""

    pem: str
    key: str
    identity: dict[str, Any] = field(default_factory=dict)

    def config(self) -> dict[str, Any]:
        identity = {"trustAnchorPem": self.pem, **self.identity}
        return {"linkerd": {"identity": identity}, "trustAnchorKeyPem": self.key}


def anchor(key: Key | None = None, **cert: Any) -> Anchor:
    """A certificate made with `key` (a new P-256 key by default), given with that key."""
    key = key or ec_key()
    return Anchor(cert_pem(key, **cert), key_pem(key))


def parse(a: Anchor) -> cfg.Settings:
    raw = {k: v if isinstance(v, str) else json.dumps(v) for k, v in a.config().items()}
    return cfg.parse_settings(raw, stack="test", secret_keys=frozenset({"trustAnchorKeyPem"}))


def secret_lines(a: Anchor) -> list[str]:
    """The body lines of every private key in play: none may appear in a message."""
    pems = [a.key, a.pem]
    return [
        line
        for pem in pems
        if "PRIVATE KEY" in pem
        for line in pem.splitlines()
        if line.strip() and "-----" not in line
    ]


# --- Anchors Linkerd accepts -----------------------------------------------------------------


def test_a_valid_shared_anchor_signs_the_issuer_and_no_new_anchor_is_made() -> None:
    shared = anchor()
    graph = run_program("dev", shared.config())
    assert graph.error is None, graph.error
    made = [r.name for r in graph.of_type("tls:index/selfSignedCert:SelfSignedCert")]
    assert "identity-trust-anchor" not in made
    issuer = graph.get("tls:index/locallySignedCert:LocallySignedCert", "identity-issuer")
    assert issuer.inputs["caCertPem"] == shared.pem


ACCEPTED: dict[str, Callable[[], Anchor]] = {
    "ecdsa-p256": lambda: anchor(),
    "rsa-2048": lambda: anchor(rsa_key(2048)),
    "rsa-4096": lambda: anchor(rsa_key(4096)),
    # The shortest issuer a 90-day renewal window allows: 30 days of service, then renewal.
    "short-anchor-with-a-shorter-issuer": lambda: replace(
        anchor(not_after=NOW + 150 * DAY),
        identity={"issuerValidityHours": 2880, "issuerEarlyRenewalHours": 2160},
    ),
    "short-anchor-with-an-external-issuer": lambda: replace(
        anchor(not_after=NOW + 30 * DAY),
        key="",
        identity={"issuer": "external", "issuerRefName": "linkerd-trust-anchor"},
    ),
}


@pytest.mark.parametrize("make", ACCEPTED.values(), ids=ACCEPTED.keys())
def test_anchors_linkerd_accepts_parse(make: Callable[[], Anchor]) -> None:
    given = make()
    assert parse(given).linkerd.identity.trust_anchor_pem == given.pem


# --- Anchors that are not -------------------------------------------------------------------


def _key_pasted_as_certificate() -> Anchor:
    key = key_pem(ec_key())
    return Anchor(key, key)


def _certificate_and_key_pasted_together() -> Anchor:
    good = anchor()
    return Anchor(good.pem + good.key, good.key)


def _mismatched_key() -> Anchor:
    return replace(anchor(), key=key_pem(ec_key()))


def _encrypted_key() -> Anchor:
    key = ec_key()
    return Anchor(cert_pem(key), key_pem(key, password=b"hunter2"))


def _certificate_as_key() -> Anchor:
    good = anchor()
    return replace(good, key=good.pem)


def _two_certificates() -> Anchor:
    good = anchor()
    return replace(good, pem=good.pem + anchor().pem)


def _broken_block() -> Anchor:
    good = anchor()
    body = "-----BEGIN CERTIFICATE-----\nTUlJQm9uZXk=\n-----END CERTIFICATE-----\n"
    return replace(good, pem=body)


# name → (the anchor, the key the error names, words the error must carry)
REJECTED: dict[str, tuple[Callable[[], Anchor], str, tuple[str, ...]]] = {
    "garbage": (
        lambda: replace(anchor(), pem="not a cert"),
        ANCHOR,
        ("expected exactly one PEM certificate", "holds no PEM block"),
    ),
    "public-key-instead-of-certificate": (
        lambda: replace(
            anchor(),
            pem=ec_key()
            .public_key()
            .public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
            .decode(),
        ),
        ANCHOR,
        ("expected exactly one PEM certificate", "no certificate", "PUBLIC KEY"),
    ),
    "broken-certificate-block": (_broken_block, ANCHOR, ("not a valid X.509 certificate",)),
    "two-certificates": (_two_certificates, ANCHOR, ("exactly one", "holds 2 certificates")),
    "private-key-pasted-as-certificate": (
        _key_pasted_as_certificate,
        ANCHOR,
        ("holds a private key", "trustAnchorKeyPem", "Pulumi.dev.yaml"),
    ),
    "certificate-and-key-pasted-together": (
        _certificate_and_key_pasted_together,
        ANCHOR,
        ("holds a private key",),
    ),
    "not-a-ca": (lambda: anchor(ca=False), ANCHOR, ("not a CA certificate", "CA:TRUE")),
    "no-basic-constraints": (lambda: anchor(ca=None), ANCHOR, ("not a CA certificate",)),
    "expired": (
        lambda: anchor(not_before=NOW - 400 * DAY, not_after=NOW - DAY),
        ANCHOR,
        ("expired on", (NOW - DAY).strftime("%Y-%m-%d")),
    ),
    "not-yet-valid": (
        lambda: anchor(not_before=NOW + 2 * DAY, not_after=NOW + 3650 * DAY),
        ANCHOR,
        ("is not valid before", (NOW + 2 * DAY).strftime("%Y-%m-%d")),
    ),
    "outlived-by-the-issuer": (
        lambda: anchor(not_after=NOW + 200 * DAY),
        ANCHOR,
        ("before an issuer made now", "issuerValidityHours (8760h)", "lower"),
    ),
    "ecdsa-p384": (lambda: anchor(ec_key(ec.SECP384R1())), ANCHOR, ("ECDSA P-256", "secp384r1")),
    "rsa-1024": (lambda: anchor(rsa_key(1024)), ANCHOR, ("RSA 1024-bit", "RSA 2048/4096")),
    "sha384-signature": (
        lambda: anchor(digest=hashes.SHA384()),
        ANCHOR,
        ("signed with", "SHA-256"),
    ),
    "mismatched-key": (_mismatched_key, ANCHOR_KEY, ("is not the key of", "public keys differ")),
    "encrypted-key": (_encrypted_key, ANCHOR_KEY, ("is encrypted", "without a passphrase")),
    "certificate-as-key": (_certificate_as_key, ANCHOR_KEY, ("holds a certificate",)),
    "garbage-key": (
        lambda: replace(anchor(), key="hunter2"),
        ANCHOR_KEY,
        ("holds no PEM private key", "not shown"),
    ),
}


@pytest.mark.parametrize(("make", "key", "words"), REJECTED.values(), ids=list(REJECTED.keys()))
def test_a_bad_anchor_stops_the_program_before_any_resource_naming_key_and_problem(
    make: Callable[[], Anchor], key: str, words: tuple[str, ...]
) -> None:
    given = make()
    graph = run_program("dev", given.config())
    assert graph.error is not None and type(graph.error).__name__ == "RunError"
    assert graph.resources == []
    lines = [line for line in str(graph.error).splitlines() if line.startswith(f"{key}:")]
    assert lines, str(graph.error)
    assert any(all(word in line for word in words) for line in lines), lines


@pytest.mark.parametrize(("make", "key", "words"), REJECTED.values(), ids=list(REJECTED.keys()))
def test_no_message_echoes_a_private_key_or_the_secret(
    make: Callable[[], Anchor], key: str, words: tuple[str, ...]
) -> None:
    given = make()
    with pytest.raises(cfg.ConfigError) as caught:
        parse(given)
    message = str(caught.value)
    for line in secret_lines(given):
        assert line not in message
    if "PRIVATE KEY" not in given.key:
        assert given.key not in message
