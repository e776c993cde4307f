"""Rotation phases as pure functions: which phase may follow which, and which anchors each one
trusts and signs with. Table-driven, no mocks (the whole program runs in test_rotation.py)."""

from __future__ import annotations

import datetime

import pytest

from components import lifecycle as lc
from components.lifecycle import AnchorRef, Deployed, DeployedAnchor, Plan, Requested
from tests.graph import self_signed_anchor

NOW = datetime.datetime.now(datetime.UTC)


def pem(cn: str = "root.linkerd.cluster.local") -> str:
    return self_signed_anchor(cn)[0]


A, B = pem("root-a"), pem("root-b")
GEN = DeployedAnchor("0" * 64, generated=True)


def given(p: str) -> DeployedAnchor:
    return DeployedAnchor(lc.fingerprint(p), generated=False)


CURRENT = AnchorRef(config_key=lc.CURRENT_KEY)
NEXT = AnchorRef(config_key=lc.NEXT_KEY)


# --- Order -------------------------------------------------------------------------------------

# (deployed phase, requested phase) → the next valid phase an error must name, or None: allowed.
ORDER: list[tuple[str, str, str | None]] = [
    ("none", "none", None),
    ("none", "bundle", None),
    ("none", "issuer", "bundle"),
    ("none", "finish", "bundle"),
    ("bundle", "bundle", None),
    ("bundle", "issuer", None),
    ("bundle", "finish", "issuer"),
    ("bundle", "none", "issuer"),
    ("issuer", "issuer", None),
    ("issuer", "finish", None),
    ("issuer", "none", "finish"),
    ("issuer", "bundle", "finish"),
    ("finish", "finish", None),
    ("finish", "none", None),
    ("finish", "bundle", None),
    ("finish", "issuer", "none"),
]


@pytest.mark.parametrize(("deployed", "requested", "next_valid"), ORDER)
def test_each_phase_runs_only_after_the_one_before_it_or_again(
    deployed: str, requested: str, next_valid: str | None
) -> None:
    anchors = (GEN,) if deployed in ("none", "finish") else (GEN, GEN)
    _, problems = lc.plan(Requested(requested), Deployed(deployed, 0, anchors))
    if next_valid is None:
        assert problems == []
        return
    ((key, message),) = problems
    assert key == lc.ROTATION_KEY
    assert f"phase `{deployed}`" in message
    assert f"the next valid phase is `{next_valid}`" in message
    assert f"pulumi config set --path {lc.ROTATION_KEY} {next_valid}" in message


def test_the_phases_follow_linkerds_order() -> None:
    assert lc.PHASES == ("none", "bundle", "issuer", "finish")
    phase, seen = "none", []
    for _ in range(4):
        phase = lc.NEXT[phase]
        seen.append(phase)
    assert seen == ["bundle", "issuer", "finish", "none"]


# --- Anchors per phase: a generated rotation --------------------------------------------------

G0, G1 = AnchorRef(0), AnchorRef(1)
GENERATED: list[tuple[Deployed, str, Plan]] = [
    (Deployed("none", 0, (GEN,)), "none", Plan("none", 0, (G0,), G0)),
    (Deployed("none", 0, (GEN,)), "bundle", Plan("bundle", 0, (G1, G0), G0)),
    (Deployed("bundle", 0, (GEN, GEN)), "issuer", Plan("issuer", 0, (G1, G0), G1, G0)),
    (Deployed("issuer", 0, (GEN, GEN)), "finish", Plan("finish", 1, (G1,), G1)),
    (Deployed("finish", 1, (GEN,)), "finish", Plan("finish", 1, (G1,), G1)),
    (Deployed("finish", 1, (GEN,)), "none", Plan("none", 1, (G1,), G1)),
    # The next rotation takes the next number: no name is used twice.
    (Deployed("finish", 1, (GEN,)), "bundle", Plan("bundle", 1, (AnchorRef(2), G1), G1)),
]


@pytest.mark.parametrize(("deployed", "requested", "expected"), GENERATED)
def test_a_generated_rotation_trusts_new_then_old_and_moves_the_signer_in_the_issuer_phase(
    deployed: Deployed, requested: str, expected: Plan
) -> None:
    got, problems = lc.plan(Requested(requested), deployed)
    assert problems == []
    assert got == expected


def test_only_the_old_anchor_in_the_issuer_phase_is_unprotected() -> None:
    bundle, _ = lc.plan(Requested("bundle"), Deployed("none", 0, (GEN,)))
    issuer, _ = lc.plan(Requested("issuer"), Deployed("bundle", 0, (GEN, GEN)))
    finish, _ = lc.plan(Requested("finish"), Deployed("issuer", 0, (GEN, GEN)))
    assert [bundle.protected(r) for r in bundle.trusted] == [True, True]
    assert [issuer.protected(r) for r in issuer.trusted] == [True, False]
    assert [finish.protected(r) for r in finish.trusted] == [True]
    # An anchor given in config is no resource of the stack's: nothing to protect.
    shared, _ = lc.plan(Requested("none", A), Deployed("none", 0, (given(A),)))
    assert not shared.protected(shared.signer)


# --- Anchors per phase: given in config -------------------------------------------------------


def test_a_given_rotation_keeps_its_config_through_the_three_phases() -> None:
    req = {phase: Requested(phase, A, B) for phase in ("bundle", "issuer", "finish")}
    bundle, p1 = lc.plan(req["bundle"], Deployed("none", 0, (given(A),)))
    issuer, p2 = lc.plan(req["issuer"], Deployed("bundle", 0, (given(B), given(A))))
    finish, p3 = lc.plan(req["finish"], Deployed("issuer", 0, (given(B), given(A))))
    again, p4 = lc.plan(req["finish"], Deployed("finish", 0, (given(B),)))
    promoted, p5 = lc.plan(Requested("none", B), Deployed("finish", 0, (given(B),)))
    assert p1 == p2 == p3 == p4 == p5 == []
    assert (bundle.trusted, bundle.signer) == ((NEXT, CURRENT), CURRENT)
    assert (issuer.trusted, issuer.signer) == ((NEXT, CURRENT), NEXT)
    assert (finish.trusted, finish.signer) == ((NEXT,), NEXT)
    assert (again.trusted, again.signer) == ((NEXT,), NEXT)
    assert (promoted.trusted, promoted.signer) == ((CURRENT,), CURRENT)


def test_a_generated_anchor_can_hand_over_to_a_given_one() -> None:
    plan, problems = lc.plan(Requested("bundle", "", B), Deployed("none", 3, (GEN,)))
    assert problems == []
    assert plan.trusted == (NEXT, AnchorRef(3)) and plan.signer == AnchorRef(3)
    finish, problems = lc.plan(Requested("finish", "", B), Deployed("issuer", 3, (given(B), GEN)))
    assert problems == [] and finish.trusted == (NEXT,) and finish.generation == 3


# (requested, deployed) → the key the error names and words it carries.
REFUSED: list[tuple[str, Requested, Deployed, str, tuple[str, ...]]] = [
    (
        "anchor-changed-in-one-step",
        Requested("none", B),
        Deployed("none", 0, (given(A),)),
        lc.CURRENT_KEY,
        ("is not the anchor the stack trusts", "rotate", "bundle"),
    ),
    (
        "given-anchor-in-place-of-a-generated-one",
        Requested("none", A),
        Deployed("none", 0, (GEN,)),
        lc.CURRENT_KEY,
        ("generated by the stack", "leave", "empty"),
    ),
    (
        "generated-anchor-in-place-of-a-given-one",
        Requested("none", ""),
        Deployed("none", 0, (given(A),)),
        lc.CURRENT_KEY,
        ("is empty", "given in config", "set it to that anchor"),
    ),
    (
        "new-anchor-changed-mid-rotation",
        Requested("issuer", A, pem("root-c")),
        Deployed("bundle", 0, (given(B), given(A))),
        lc.NEXT_KEY,
        ("is not the rotation's new anchor",),
    ),
    (
        "old-anchor-changed-mid-rotation",
        Requested("issuer", pem("root-c"), B),
        Deployed("bundle", 0, (given(B), given(A))),
        lc.CURRENT_KEY,
        ("is not the rotation's old anchor",),
    ),
    (
        "new-anchor-is-the-old-one",
        Requested("bundle", A, A),
        Deployed("none", 0, (given(A),)),
        lc.NEXT_KEY,
        ("is the anchor in", "give the new anchor"),
    ),
    (
        "next-anchor-left-in-place-after-finish",
        Requested("none", A, B),
        Deployed("finish", 0, (given(B),)),
        lc.NEXT_KEY,
        ("must be empty outside a rotation", "move it to", "trustAnchorKeyPem"),
    ),
    (
        "new-rotation-without-promoting-the-last-one",
        Requested("bundle", A, pem("root-c")),
        Deployed("finish", 0, (given(B),)),
        lc.CURRENT_KEY,
        ("is not the anchor the stack trusts",),
    ),
]


@pytest.mark.parametrize(
    ("requested", "deployed", "key", "words"),
    [r[1:] for r in REFUSED],
    ids=[r[0] for r in REFUSED],
)
def test_anchors_that_are_not_the_deployed_ones_are_refused_naming_the_key(
    requested: Requested, deployed: Deployed, key: str, words: tuple[str, ...]
) -> None:
    _, problems = lc.plan(requested, deployed)
    lines = [message for k, message in problems if k == key]
    assert lines, problems
    assert any(all(w in line for w in words) for line in lines), lines


def test_a_stack_never_updated_has_nothing_to_compare_with() -> None:
    for phase in ("none", "bundle"):
        _, problems = lc.plan(Requested(phase, A, B if phase == "bundle" else ""), Deployed())
        assert problems == []


# --- What the last update exported ------------------------------------------------------------


def test_the_exported_state_reads_back_as_deployed() -> None:
    plan, _ = lc.plan(Requested("bundle", "", B), Deployed("none", 2, (GEN,)))
    exported = lc.exported(plan, [B, A])
    assert exported["phase"] == "bundle" and exported["generation"] == 2
    assert exported["trustAnchorsPem"] == B.strip() + "\n" + A.strip() + "\n"
    assert lc.deployed({lc.OUTPUT: exported}) == Deployed(
        "bundle", 2, (given(B), DeployedAnchor(lc.fingerprint(A), True))
    )


def test_a_stack_from_before_rotation_is_in_phase_none_with_its_one_anchor() -> None:
    assert lc.deployed({"trustAnchorPem": A}) == Deployed(
        "none", 0, (DeployedAnchor(lc.fingerprint(A), None),)
    )
    assert lc.deployed({}) == Deployed()


def test_one_anchor_passes_through_unchanged_and_two_are_joined_newest_first() -> None:
    assert lc.bundle([A]) == A
    assert lc.bundle(["x\n", A]) != lc.bundle([A])
    joined = lc.bundle([B, A])
    assert [lc.fingerprint(c) for c in _split(joined)] == [lc.fingerprint(B), lc.fingerprint(A)]


def _split(text: str) -> list[str]:
    marker = "-----END CERTIFICATE-----"
    return [part + marker for part in text.split(marker) if "BEGIN" in part]
