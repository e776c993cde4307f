"""meshstack-trust: the one trust anchor every cluster of a multicluster mesh chains to.

A dedicated stack rather than the first cluster's: the root outlives any one cluster (a cluster
destroyed and rebuilt, or the first one retired, leaves the mesh's identity in place), its key
sits in one state file that only the cluster stacks' StackReferences read, and a rotation
starts in one place. Each cluster signs its own issuer with the key (README: Multicluster).

Anchors live in two slots, `a` and `b`, so a rotation never renames or regenerates the one in
use: `next` makes the new one beside it, the clusters roll through `bundle`, `issuer`,
`finish`, then `current` moves to the new slot with the old one `retiring` for one `up`.

Outputs: trustAnchorPem, trustAnchorKeyPem (secret), nextTrustAnchorPem and
nextTrustAnchorKeyPem (secret; "" outside a rotation).
"""

from __future__ import annotations

import pulumi
import pulumi_tls as tls

SLOTS = ("a", "b")

config = pulumi.Config()
current = config.get("current", "a")
next_ = config.get("next", "")
retiring = config.get("retiring", "")
validity = config.get_int("validityHours", 87600)

problems = []
if current not in SLOTS:
    problems.append(f"meshstack-trust:current: got {current!r}; expected one of {SLOTS}")
for name, value in (("next", next_), ("retiring", retiring)):
    if value not in ("", *SLOTS) or value == current:
        problems.append(
            f"meshstack-trust:{name}: got {value!r}; expected the slot that is not `current` "
            f"({'b' if current == 'a' else 'a'}) or empty"
        )
if next_ and retiring:
    problems.append(
        "meshstack-trust:retiring: set during a rotation (`next`); finish the rotation, then "
        "move `current` to the new slot and retire the old one"
    )
if problems:
    raise pulumi.RunError("invalid configuration:\n" + "\n".join(problems))


def anchor(slot: str, protect: bool) -> tuple[pulumi.Output[str], pulumi.Output[str]]:
    """An ECDSA P-256 self-signed CA, as Linkerd's docs make one (`step ... --profile root-ca`).
    Protected while clusters trust it: deleting it by accident would orphan every issuer."""
    opts = pulumi.ResourceOptions(protect=protect)
    key = tls.PrivateKey(
        f"anchor-{slot}-key",
        algorithm="ECDSA",
        ecdsa_curve="P256",
        opts=pulumi.ResourceOptions.merge(
            opts,
            pulumi.ResourceOptions(
                additional_secret_outputs=["privateKeyPem", "privateKeyPemPkcs8"]
            ),
        ),
    )
    cert = tls.SelfSignedCert(
        f"anchor-{slot}",
        private_key_pem=key.private_key_pem,
        is_ca_certificate=True,
        validity_period_hours=validity,
        subject=tls.SelfSignedCertSubjectArgs(common_name="root.linkerd.cluster.local"),
        allowed_uses=["cert_signing", "crl_signing"],
        set_subject_key_id=True,
        opts=opts,
    )
    return cert.cert_pem, pulumi.Output.secret(key.private_key_pem)


pem, key = anchor(current, protect=True)
if retiring:
    anchor(retiring, protect=False)
next_pem: pulumi.Input[str] = ""
next_key: pulumi.Output[str] = pulumi.Output.secret("")
if next_:
    next_pem, next_key = anchor(next_, protect=True)

pulumi.export("trustAnchorPem", pem)
pulumi.export("trustAnchorKeyPem", key)
pulumi.export("nextTrustAnchorPem", next_pem)
pulumi.export("nextTrustAnchorKeyPem", next_key)
