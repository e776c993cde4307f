"""Linkerd's certificates as code: trust anchor, identity issuer and webhook certificates.

Everything here is made by pulumi-tls and lives in Pulumi state, so a re-render of the
charts sees the same certificates every time (the charts would otherwise generate new
webhook certificates on every render and restart the control plane on every `up`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_tls as tls
from cryptography import x509

from components import lifecycle

# Renewal starts 90 days before expiry: `linkerd check` warns from 60 days
# (linkerd2 pkg/issuercerts/issuercerts.go expirationWarningThresholdInDays), and pulumi-tls
# renews only when a `pulumi up` runs inside the window (it plans a replacement once
# `validity_end_time - early_renewal_hours` has passed), so the weekly renew workflow gets
# about four chances before the first warning.
EARLY_RENEWAL_HOURS = 24 * 90
# Webhook certificates are short-lived compared to the anchor; Kubernetes checks them on every
# admission call.
WEBHOOK_VALIDITY_HOURS = 24 * 365
WEBHOOK_EARLY_RENEWAL_HOURS = EARLY_RENEWAL_HOURS
# The webhooks' CA renews like its certificates. A renewed CA keeps its key (the key is a
# resource of its own), so the API server's new caBundle still verifies the certificates pods
# serve until they restart with new ones.
WEBHOOK_CA_VALIDITY_HOURS = 24 * 365 * 10


@dataclass(frozen=True)
class Webhook:
    """A webhook Service the chart fronts with a TLS certificate."""

    role: str
    service: str
    namespace: str

    @property
    def dns_name(self) -> str:
        # The API server calls the webhook at <service>.<namespace>.svc.
        return f"{self.service}.{self.namespace}.svc"


@dataclass(frozen=True)
class WebhookCert:
    cert_pem: pulumi.Output[str]
    key_pem: pulumi.Output[str]
    ca_bundle: pulumi.Output[str]


@dataclass
class IdentityArgs:
    trust_domain: pulumi.Input[str]
    """Linkerd's identity trust domain (the cluster domain unless configured)."""
    webhooks: list[Webhook]
    """Every webhook Service that needs a certificate (control plane and viz)."""
    issuer_mode: str = "pulumi"
    """`pulumi` makes the issuer here; `external` leaves it to cert-manager. Default: pulumi."""
    trust_anchor_pem: str = ""
    """A shared trust anchor. Default: empty, a new anchor is generated."""
    trust_anchor_key_pem: pulumi.Input[str] | None = None
    """The shared anchor's private key, a secret. Default: none."""
    rotation: lifecycle.Plan | None = None
    """Which anchors proxies trust and which one signs the issuer (components/lifecycle.py).
    Default: no rotation, the one anchor (given, or generated as `<name>-trust-anchor`)."""
    next_trust_anchor_pem: str = ""
    """During a rotation, the new anchor when given in config. Default: empty, generated."""
    next_trust_anchor_key_pem: pulumi.Input[str] | None = None
    """The given new anchor's private key, a secret. Default: none."""
    trust_anchor_validity_hours: int = 87600
    """Default: ten years; rotating an anchor means re-issuing every proxy certificate."""
    issuer_validity_hours: int = 8760
    """Default: one year, as `linkerd install` does."""
    issuer_early_renewal_hours: int = EARLY_RENEWAL_HOURS
    """Default: 90 days before expiry, a month before `linkerd check` starts warning."""


class Identity(pulumi.ComponentResource):
    """Trust anchor, identity issuer and webhook certificates for Linkerd.

    Children: each generated anchor's key and self-signed certificate (`<name>-trust-anchor`,
    then `<name>-trust-anchor-<n>` for the anchor of the n-th generated rotation), protected
    unless being retired; the issuer's key, request and anchor-signed certificate (unless
    external), one webhook CA and a certificate per webhook Service.

    Outputs: `trust_anchor_pem` (public: the anchor that signs the issuer), `trust_anchors_pem`
    (every anchor proxies trust, newest first), `rotation` (the `identityRotation` state),
    `issuer_cert_pem`, `issuer_key_pem` (secret; None when the issuer is external) and
    `webhook_certs` by role.
    """

    trust_anchor_pem: pulumi.Output[str]
    trust_anchors_pem: pulumi.Output[str]
    rotation: pulumi.Output[dict[str, Any]]
    issuer_cert_pem: pulumi.Output[str] | None
    issuer_key_pem: pulumi.Output[str] | None
    webhook_certs: dict[str, WebhookCert]

    def __init__(
        self, name: str, args: IdentityArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("meshstack:mesh:Identity", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)

        # --- Trust anchors ----------------------------------------------------------------
        plan = args.rotation or lifecycle.steady(bool(args.trust_anchor_pem))
        given = {
            lifecycle.CURRENT_KEY: (args.trust_anchor_pem, args.trust_anchor_key_pem),
            lifecycle.NEXT_KEY: (args.next_trust_anchor_pem, args.next_trust_anchor_key_pem),
        }
        anchors: dict[lifecycle.AnchorRef, tuple[pulumi.Output[str], pulumi.Input[str] | None]]
        anchors = {}
        for ref in plan.trusted:
            if ref.generation is None:
                given_pem, given_key = given[ref.config_key]
                anchors[ref] = (pulumi.Output.from_input(given_pem), given_key)
                continue
            role = "trust-anchor" if ref.generation == 0 else f"trust-anchor-{ref.generation}"
            # Every proxy's trust roots: deleting or replacing the anchor by accident (a
            # refactor, a changed lifetime or trust domain, `pulumi destroy`) would break mTLS
            # for the whole mesh, and a shared anchor for the clusters that trust it. Only the
            # `issuer` phase, after which `finish` removes it, registers it unprotected.
            anchor_opts = pulumi.ResourceOptions(parent=self, protect=plan.protected(ref))
            anchor_key = _private_key(f"{name}-{role}-key", anchor_opts)
            anchor = tls.SelfSignedCert(
                f"{name}-{role}",
                private_key_pem=anchor_key.private_key_pem,
                is_ca_certificate=True,
                validity_period_hours=args.trust_anchor_validity_hours,
                subject=tls.SelfSignedCertSubjectArgs(
                    common_name=pulumi.Output.concat("root.linkerd.", args.trust_domain)
                ),
                allowed_uses=["cert_signing", "crl_signing"],
                set_subject_key_id=True,
                opts=anchor_opts,
            )
            anchors[ref] = (anchor.cert_pem, anchor_key.private_key_pem)
        self.trust_anchor_pem, anchor_key_pem = anchors[plan.signer]
        pems = [anchors[ref][0] for ref in plan.trusted]
        self.trust_anchors_pem = pulumi.Output.all(*pems).apply(lifecycle.bundle)
        self.rotation = pulumi.Output.all(*pems).apply(lambda got: lifecycle.exported(plan, got))

        # --- Identity issuer --------------------------------------------------------------
        self.issuer_cert_pem = None
        self.issuer_key_pem = None
        if args.issuer_mode == "pulumi":
            assert anchor_key_pem is not None, "config validation requires the anchor's key"
            issuer_key = _private_key(f"{name}-issuer-key", child)
            request = tls.CertRequest(
                f"{name}-issuer-request",
                private_key_pem=issuer_key.private_key_pem,
                subject=tls.CertRequestSubjectArgs(
                    common_name=pulumi.Output.concat("identity.linkerd.", args.trust_domain)
                ),
                opts=child,
            )
            issuer = tls.LocallySignedCert(
                f"{name}-issuer",
                cert_request_pem=request.cert_request_pem,
                ca_private_key_pem=pulumi.Output.secret(anchor_key_pem),
                ca_cert_pem=self.trust_anchor_pem,
                is_ca_certificate=True,
                # The issuer signs workload certificates only, never another CA.
                max_path_length=0,
                validity_period_hours=args.issuer_validity_hours,
                early_renewal_hours=args.issuer_early_renewal_hours,
                allowed_uses=["cert_signing", "crl_signing", "server_auth", "client_auth"],
                set_subject_key_id=True,
                opts=child,
            )
            self.issuer_cert_pem = issuer.cert_pem
            self.issuer_key_pem = pulumi.Output.secret(issuer_key.private_key_pem)

        # --- Webhook certificates ---------------------------------------------------------
        # One CA for all webhooks: the charts take the CA as `caBundle` for the API server.
        webhook_ca_key = _private_key(f"{name}-webhook-ca-key", child)
        webhook_ca = tls.SelfSignedCert(
            f"{name}-webhook-ca",
            private_key_pem=webhook_ca_key.private_key_pem,
            is_ca_certificate=True,
            validity_period_hours=WEBHOOK_CA_VALIDITY_HOURS,
            early_renewal_hours=WEBHOOK_EARLY_RENEWAL_HOURS,
            subject=tls.SelfSignedCertSubjectArgs(
                common_name=pulumi.Output.concat("webhook.linkerd.", args.trust_domain)
            ),
            allowed_uses=["cert_signing", "crl_signing"],
            set_subject_key_id=True,
            opts=child,
        )
        self.webhook_certs = {}
        for hook in args.webhooks:
            key = _private_key(f"{name}-{hook.role}-key", child)
            request = tls.CertRequest(
                f"{name}-{hook.role}-request",
                private_key_pem=key.private_key_pem,
                subject=tls.CertRequestSubjectArgs(common_name=hook.dns_name),
                dns_names=[hook.dns_name],
                opts=child,
            )
            cert = tls.LocallySignedCert(
                f"{name}-{hook.role}",
                cert_request_pem=request.cert_request_pem,
                ca_private_key_pem=webhook_ca_key.private_key_pem,
                ca_cert_pem=webhook_ca.cert_pem,
                validity_period_hours=WEBHOOK_VALIDITY_HOURS,
                early_renewal_hours=WEBHOOK_EARLY_RENEWAL_HOURS,
                allowed_uses=["digital_signature", "key_encipherment", "server_auth"],
                opts=child,
            )
            self.webhook_certs[hook.role] = WebhookCert(
                cert_pem=cert.cert_pem,
                # PKCS#8: the policy validator (Rust) rejects SEC1 `EC PRIVATE KEY` PEMs.
                key_pem=pulumi.Output.secret(key.private_key_pem_pkcs8),
                ca_bundle=webhook_ca.cert_pem,
            )

        self.register_outputs(
            {
                "trust_anchor_pem": self.trust_anchor_pem,
                "trust_anchors_pem": self.trust_anchors_pem,
                "rotation": self.rotation,
                "issuer_cert_pem": self.issuer_cert_pem,
                "issuer_key_pem": self.issuer_key_pem,
            }
        )


def _private_key(name: str, opts: pulumi.ResourceOptions) -> tls.PrivateKey:
    """An ECDSA P-256 key, the only kind Linkerd's issuer accepts."""
    return tls.PrivateKey(
        name,
        algorithm="ECDSA",
        ecdsa_curve="P256",
        # Marked secret explicitly as well, so no provider upgrade can leak it to state.
        opts=pulumi.ResourceOptions.merge(
            opts,
            pulumi.ResourceOptions(
                additional_secret_outputs=["privateKeyPem", "privateKeyPemPkcs8"]
            ),
        ),
    )


def expires_at(pem: str) -> int:
    """When the first certificate of a PEM bundle to expire does, in Unix seconds.

    Read from the certificates themselves, so a generated anchor, a shared one and a bundle
    of old and new anchors (during a rotation) are read alike.
    """
    return min(
        int(cert.not_valid_after_utc.timestamp())
        for cert in x509.load_pem_x509_certificates(pem.encode())
    )
