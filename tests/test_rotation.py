"""Trust-anchor rotation through the whole program: three `pulumi up`s in a row, each fed the
outputs of the one before (the engine's `readStackOutputs`, StatefulMocks.previous), with
the certificates read as Linkerd reads them: the control plane's `identityTrustAnchorsPEM`
parsed into certificates, and the issuer verified against the anchor that must have signed it.
"""

from __future__ import annotations

import datetime
import functools
import runpy
from typing import Any

import pytest
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization

from components import dashboards, identity, lifecycle
from tests.graph import (
    ROOT,
    Graph,
    Resource,
    StatefulMocks,
    is_secret,
    record,
    self_signed_anchor,
    stack_config,
)

ANCHOR = "tls:index/selfSignedCert:SelfSignedCert"
KEY = "tls:index/privateKey:PrivateKey"
ISSUER = "tls:index/locallySignedCert:LocallySignedCert"
NOW = datetime.datetime.now(datetime.UTC)


def up(config: dict[str, Any] | None = None, previous: Graph | None = None) -> Graph:
    """One `pulumi up` of the dev stack, after `previous` (None: a stack never updated)."""
    engine = StatefulMocks()
    engine.previous = dict(previous.outputs) if previous is not None else {}
    return record(
        lambda: runpy.run_path(str(ROOT / "__main__.py"), run_name="__main__"),
        stack="dev",
        config=stack_config("dev", config),
        engine=engine,
    )


def ok(graph: Graph) -> Graph:
    assert graph.error is None, graph.error
    return graph


def rotation(phase: str, settings: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"linkerd": {"identity": {"rotation": phase, **(settings or {})}}}


def trusted(graph: Graph) -> list[x509.Certificate]:
    """The anchors the control plane hands every proxy, in order."""
    values = graph.charts()["linkerd-control-plane"].inputs["values"]
    return x509.load_pem_x509_certificates(values["identityTrustAnchorsPEM"].encode())


def issuer(graph: Graph) -> x509.Certificate:
    values = graph.charts()["linkerd-control-plane"].inputs["values"]
    return x509.load_pem_x509_certificate(values["identity"]["issuer"]["tls"]["crtPEM"].encode())


def cert_of(res: Resource) -> x509.Certificate:
    return x509.load_pem_x509_certificate(res.state["certPem"].encode())


def signed_by(cert: x509.Certificate, anchor: x509.Certificate) -> bool:
    try:
        cert.verify_directly_issued_by(anchor)
    except (ValueError, InvalidSignature):
        return False
    return True


# --- A generated anchor, phase by phase --------------------------------------------------------


@functools.cache
def generated() -> dict[str, Graph]:
    """none → bundle → issuer → finish → none, each `up` after the one before."""
    out = {"none": ok(up())}
    out["bundle"] = ok(up(rotation("bundle"), out["none"]))
    out["issuer"] = ok(up(rotation("issuer"), out["bundle"]))
    out["finish"] = ok(up(rotation("finish"), out["issuer"]))
    out["after"] = ok(up(rotation("none"), out["finish"]))
    return out


def test_bundle_trusts_a_new_anchor_beside_the_old_one_which_still_signs() -> None:
    g = generated()
    old = cert_of(g["none"].get(ANCHOR, "identity-trust-anchor"))
    new = cert_of(g["bundle"].get(ANCHOR, "identity-trust-anchor-1"))
    assert trusted(g["none"]) == [old]
    assert trusted(g["bundle"]) == [new, old]
    assert signed_by(issuer(g["bundle"]), old) and not signed_by(issuer(g["bundle"]), new)
    assert cert_of(g["bundle"].get(ANCHOR, "identity-trust-anchor")) == old, "old anchor kept"


def test_issuer_is_signed_by_the_new_anchor_while_both_are_trusted() -> None:
    g = generated()
    old = cert_of(g["none"].get(ANCHOR, "identity-trust-anchor"))
    new = cert_of(g["bundle"].get(ANCHOR, "identity-trust-anchor-1"))
    assert trusted(g["issuer"]) == [new, old]
    assert signed_by(issuer(g["issuer"]), new) and not signed_by(issuer(g["issuer"]), old)
    # The issuer keeps its key: only the signature changes.
    assert issuer(g["issuer"]).public_key() == issuer(g["bundle"]).public_key()


def test_finish_trusts_the_new_anchor_alone_and_the_old_one_leaves_the_stack() -> None:
    g = generated()
    new = cert_of(g["bundle"].get(ANCHOR, "identity-trust-anchor-1"))
    assert trusted(g["finish"]) == [new]
    assert signed_by(issuer(g["finish"]), new)
    assert g["finish"].find(ANCHOR, "identity-trust-anchor") is None
    assert g["finish"].find(KEY, "identity-trust-anchor-key") is None


def test_after_finish_the_new_anchor_is_the_stacks_and_nothing_changes() -> None:
    g = generated()
    values = lambda graph: graph.charts()["linkerd-control-plane"].inputs["values"]  # noqa: E731
    assert values(g["after"]) == values(g["finish"])
    assert g["after"].outputs["trustAnchorPem"] == g["finish"].outputs["trustAnchorPem"]


@pytest.mark.parametrize(
    ("phase", "protected"),
    [
        ("none", {"identity-trust-anchor": True}),
        ("bundle", {"identity-trust-anchor": True, "identity-trust-anchor-1": True}),
        ("issuer", {"identity-trust-anchor": False, "identity-trust-anchor-1": True}),
        ("finish", {"identity-trust-anchor-1": True}),
    ],
)
def test_the_anchor_is_protected_except_while_it_is_being_retired(
    phase: str, protected: dict[str, bool]
) -> None:
    graph = generated()[phase]
    anchors = {r.name: r for r in graph.of_type(ANCHOR) if r.name.startswith("identity-trust")}
    assert set(anchors) == set(protected)
    for name, flag in protected.items():
        assert anchors[name].options["protect"] is flag, (phase, name)
        assert graph.get(KEY, f"{name}-key").options["protect"] is flag, (phase, name)
    # Nothing else is protected: the issuer renews, the webhooks' certificates too.
    expected = {n for n, flag in protected.items() if flag}
    expected |= {f"{n}-key" for n in expected}
    assert {r.name for r in graph.resources if r.options["protect"]} == expected


def test_the_exported_state_names_the_phase_and_the_anchors_newest_first() -> None:
    g = generated()
    state = g["issuer"].outputs["identityRotation"]
    assert state["phase"] == "issuer" and state["generation"] == 0
    fingerprints = [a["sha256"] for a in state["anchors"]]
    assert fingerprints == [
        lifecycle.fingerprint(c.public_bytes(serialization.Encoding.PEM).decode())
        for c in trusted(g["issuer"])
    ]
    assert all(a["generated"] for a in state["anchors"])
    assert g["finish"].outputs["identityRotation"]["generation"] == 1
    # trustAnchorPem keeps its meaning: the one anchor this cluster's issuer chains to.
    for phase in ("bundle", "issuer", "finish"):
        (anchor,) = x509.load_pem_x509_certificates(g[phase].outputs["trustAnchorPem"].encode())
        assert signed_by(issuer(g[phase]), anchor), phase


# --- Out of order ------------------------------------------------------------------------------

OUT_OF_ORDER = [
    ("none", "issuer", "bundle"),
    ("none", "finish", "bundle"),
    ("bundle", "finish", "issuer"),
    ("bundle", "none", "issuer"),
    ("issuer", "none", "finish"),
    ("issuer", "bundle", "finish"),
    ("finish", "issuer", "none"),
]


@pytest.mark.parametrize(("deployed", "requested", "next_valid"), OUT_OF_ORDER)
def test_a_phase_out_of_order_stops_before_any_resource_naming_the_next_valid_one(
    deployed: str, requested: str, next_valid: str
) -> None:
    graph = up(rotation(requested), generated()[deployed])
    assert graph.error is not None and type(graph.error).__name__ == "RunError"
    assert graph.resources == []
    (line,) = [x for x in str(graph.error).splitlines() if x.startswith("meshstack:")]
    assert line.startswith("meshstack:linkerd.identity.rotation:"), line
    assert f"the next valid phase is `{next_valid}`" in line


def test_a_phase_runs_again_after_itself() -> None:
    g = generated()
    again = ok(up(rotation("issuer"), g["issuer"]))
    assert trusted(again) == trusted(g["issuer"]) and issuer(again) == issuer(g["issuer"])


# --- Anchors given in config (shared with other clusters) --------------------------------------


def make_anchor(cn: str, days: int = 3650) -> tuple[str, str]:
    return self_signed_anchor(cn, days)


OLD, OLD_KEY = make_anchor("root.shared-a")
# Outlives the old one, so "the first anchor to expire" and "the new anchor" differ.
NEW, NEW_KEY = make_anchor("root.shared-b", days=7300)


def shared(phase: str, **extra: Any) -> dict[str, Any]:
    """The rotation's config: the same through the three phases, only `rotation` changes."""
    settings = {"rotation": phase, "trustAnchorPem": OLD, "nextTrustAnchorPem": NEW, **extra}
    return {
        "linkerd": {"identity": settings},
        "trustAnchorKeyPem": OLD_KEY,
        "nextTrustAnchorKeyPem": NEW_KEY,
    }


def steady(pem: str, key: str) -> dict[str, Any]:
    return {"linkerd": {"identity": {"trustAnchorPem": pem}}, "trustAnchorKeyPem": key}


@functools.cache
def given() -> dict[str, Graph]:
    out = {"none": ok(up(steady(OLD, OLD_KEY)))}
    out["bundle"] = ok(up(shared("bundle"), out["none"]))
    out["issuer"] = ok(up(shared("issuer"), out["bundle"]))
    out["finish"] = ok(up(shared("finish"), out["issuer"]))
    # The new anchor moved to trustAnchorPem (and its key), the next keys gone.
    out["after"] = ok(up(steady(NEW, NEW_KEY), out["finish"]))
    return out


def test_a_shared_anchor_rotates_onto_the_given_one_in_the_same_three_phases() -> None:
    g = given()
    old = x509.load_pem_x509_certificate(OLD.encode())
    new = x509.load_pem_x509_certificate(NEW.encode())
    assert trusted(g["none"]) == [old] and signed_by(issuer(g["none"]), old)
    assert trusted(g["bundle"]) == [new, old] and signed_by(issuer(g["bundle"]), old)
    assert trusted(g["issuer"]) == [new, old] and signed_by(issuer(g["issuer"]), new)
    assert trusted(g["finish"]) == [new] and signed_by(issuer(g["finish"]), new)
    assert trusted(g["after"]) == [new] and issuer(g["after"]) == issuer(g["finish"])
    for graph in g.values():
        assert graph.find(ANCHOR, "identity-trust-anchor") is None, "nothing generated"
        assert not any(r.options["protect"] for r in graph.resources), "nothing of ours"


@pytest.mark.parametrize(
    ("phase", "first_to_expire"), [("none", OLD), ("bundle", OLD), ("issuer", OLD), ("finish", NEW)]
)
def test_the_anchor_expiry_alert_counts_down_to_the_first_trusted_anchor_to_expire(
    phase: str, first_to_expire: str
) -> None:
    graph = given()[phase]
    rules = graph.charts()["grafana"].inputs["values"]["alerting"]["rules.yaml"]["groups"]
    (group,) = [g for g in rules if g["name"] == dashboards.CERTIFICATE_GROUP]
    expected = dashboards.anchor_days_left_query(identity.expires_at(first_to_expire))
    queries = [q["model"].get("expr") for r in group["rules"] for q in r["data"]]
    assert expected in queries, (phase, queries)


def test_the_given_new_anchors_key_reaches_the_issuer_only_as_a_secret() -> None:
    res = given()["issuer"].get(ISSUER, "identity-issuer")
    assert is_secret(res.raw_inputs["caPrivateKeyPem"])
    assert res.inputs["caPrivateKeyPem"] == NEW_KEY


REFUSED = [
    # An anchor swapped in one `up` would leave every running proxy distrusting the new issuer.
    (
        "anchor-changed-in-one-step",
        lambda: up(steady(NEW, NEW_KEY), given()["none"]),
        "meshstack:linkerd.identity.trustAnchorPem:",
        "is not the anchor the stack trusts",
    ),
    (
        "new-anchor-changed-between-phases",
        lambda: up(
            shared("issuer", nextTrustAnchorPem=make_anchor("root.c")[0]), given()["bundle"]
        ),
        "meshstack:linkerd.identity.nextTrustAnchorPem:",
        "is not the rotation's new anchor",
    ),
    (
        "next-keys-left-after-finish",
        lambda: up(shared("none"), given()["finish"]),
        "meshstack:linkerd.identity.nextTrustAnchorPem:",
        "must be empty outside a rotation",
    ),
    (
        "given-anchor-replacing-a-generated-one",
        lambda: up(steady(OLD, OLD_KEY), generated()["none"]),
        "meshstack:linkerd.identity.trustAnchorPem:",
        "generated by the stack",
    ),
    (
        "new-anchor-without-its-key",
        lambda: up(
            {"linkerd": {"identity": {"rotation": "bundle", "nextTrustAnchorPem": NEW}}},
            generated()["none"],
        ),
        "meshstack:nextTrustAnchorKeyPem:",
        "missing",
    ),
    (
        "new-anchor-not-a-ca",
        lambda: up(
            {
                "linkerd": {"identity": {"rotation": "bundle", "nextTrustAnchorPem": OLD_KEY}},
                "nextTrustAnchorKeyPem": OLD_KEY,
            },
            generated()["none"],
        ),
        "meshstack:linkerd.identity.nextTrustAnchorPem:",
        "holds a private key",
    ),
    (
        "new-anchors-key-mismatched",
        lambda: up(shared("bundle", trustAnchorPem=OLD) | {"nextTrustAnchorKeyPem": OLD_KEY}),
        "meshstack:nextTrustAnchorKeyPem:",
        "is not the key of linkerd.identity.nextTrustAnchorPem",
    ),
]


@pytest.mark.parametrize(
    ("make", "prefix", "words"), [r[1:] for r in REFUSED], ids=[r[0] for r in REFUSED]
)
def test_anchors_the_deployed_state_does_not_allow_are_refused_before_any_resource(
    make: Any, prefix: str, words: str
) -> None:
    graph = make()
    assert graph.error is not None and graph.resources == []
    lines = [x for x in str(graph.error).splitlines() if x.startswith(prefix)]
    assert any(words in line for line in lines), str(graph.error)
    # Keys are secrets: no message shows one.
    for key in (OLD_KEY, NEW_KEY):
        body = [line for line in key.splitlines() if "-----" not in line]
        assert not any(b in str(graph.error) for b in body)
