"""An external identity issuer that starts: cert-manager writes the issuer Secret, trust-manager
the trust roots, both before the control plane that mounts them.

The program runs under mocks with the issuer `external`; the rendered charts and the CRD
schemas of cert-manager and trust-manager are checked by the chart suites' `prod-external-issuer`
variant (tests/charts.py).
"""

from __future__ import annotations

import functools
from typing import Any

import kubernetes_validate
import pytest
from cryptography import x509

from bench import budgets
from bench import graphs as deps
from bench.footprint import footprint, parse_block
from components import external_issuer as ext
from components import mesh, sizing, versions
from components.config import ExternalIssuerSettings, IdentitySettings
from tests.charts import shared_anchor
from tests.graph import Graph, Resource, is_secret, leaves, run_program
from tests.test_program import KUBERNETES_VERSIONS, manifest, typed_objects
from tests.test_rotation import ok, up

PEM, KEY = shared_anchor()
CERTIFICATE = "kubernetes:cert-manager.io/v1:Certificate"
BUNDLE = "kubernetes:trust.cert-manager.io/v1alpha1:Bundle"
CHART = "kubernetes:helm.sh/v4:Chart"


def external(key: bool = True, **identity: Any) -> dict[str, Any]:
    config: dict[str, Any] = {
        "linkerd": {
            "identity": {
                "issuer": "external",
                "trustAnchorPem": PEM,
                "issuerRefName": "linkerd-trust-anchor",
                **identity,
            }
        }
    }
    if key:
        config["trustAnchorKeyPem"] = KEY
    return config


@functools.cache
def graph(key: bool = True, **identity: Any) -> Graph:
    g = run_program("dev", external(key, **identity))
    assert g.error is None, g.error
    return g


def one(g: Graph, type_: str) -> Resource:
    (found,) = [r for r in g.resources if r.type == type_]
    return found


def chart(g: Graph, release: str) -> Resource:
    return g.charts()[release]


# --- What the control plane mounts -------------------------------------------------------------


def test_a_certificate_writes_the_issuer_secret_the_control_plane_mounts() -> None:
    cert = one(graph(), CERTIFICATE).inputs
    assert cert["metadata"]["name"] == "linkerd-identity-issuer"
    assert cert["metadata"]["namespace"] == mesh.NAMESPACE
    spec = cert["spec"]
    assert spec["secretName"] == "linkerd-identity-issuer"
    assert spec["isCA"] is True, "the issuer signs every proxy's certificate"
    # The only issuer key Linkerd accepts (linkerd2 pkg/issuercerts/issuercerts.go).
    assert spec["privateKey"] == {"algorithm": "ECDSA", "size": 256, "rotationPolicy": "Always"}
    assert spec["commonName"] == "identity.linkerd.cluster.local"
    assert spec["issuerRef"] == {
        "group": "cert-manager.io",
        "kind": "ClusterIssuer",
        "name": "linkerd-trust-anchor",
    }
    # The stack's issuer lifetime and renewal window, as cert-manager reads durations.
    defaults = IdentitySettings()
    assert spec["duration"] == f"{defaults.issuer_validity_hours}h0m0s"
    assert spec["renewBefore"] == f"{defaults.issuer_early_renewal_hours}h0m0s"


def test_a_bundle_writes_the_anchor_as_the_roots_into_the_control_plane_namespace() -> None:
    bundle = one(graph(), BUNDLE).inputs
    assert bundle["metadata"]["name"] == "linkerd-identity-trust-roots"
    assert "namespace" not in bundle["metadata"], "a Bundle is cluster-scoped"
    assert bundle["spec"]["sources"] == [{"inLine": PEM}]
    target = bundle["spec"]["target"]
    assert target["configMap"] == {"key": "ca-bundle.crt"}
    labels, _ = mesh.namespace_metadata()
    assert target["namespaceSelector"]["matchLabels"].items() <= labels.items()


def test_the_control_plane_takes_the_external_ca_and_the_same_anchor() -> None:
    g = graph()
    values = chart(g, "linkerd-control-plane").inputs["values"]
    assert values["identity"]["externalCA"] is True
    assert values["identity"]["issuer"] == {"scheme": "kubernetes.io/tls"}
    assert values["identityTrustAnchorsPEM"] == PEM == g.outputs["trustAnchorPem"]
    assert g.find("tls:index/locallySignedCert:LocallySignedCert", "identity-issuer") is None


def test_the_control_plane_waits_for_the_issuer_secret_and_the_roots() -> None:
    g = graph()
    control_plane = chart(g, "linkerd-control-plane")
    for type_ in (CERTIFICATE, BUNDLE):
        assert g.waits_for(control_plane, one(g, type_)), type_
    # Pulumi counts them ready only once cert-manager and trust-manager wrote their objects.
    assert one(g, CERTIFICATE).inputs["metadata"]["annotations"] == {
        "pulumi.com/waitFor": "condition=Ready"
    }
    assert one(g, BUNDLE).inputs["metadata"]["annotations"] == {
        "pulumi.com/waitFor": "condition=Synced"
    }


def test_cert_manager_comes_first_then_trust_manager_then_what_they_make() -> None:
    g = graph()
    cert_manager, trust_manager = chart(g, "cert-manager"), chart(g, "trust-manager")
    assert g.waits_for(trust_manager, cert_manager), "trust-manager's webhook has a Certificate"
    assert not g.waits_for(cert_manager, trust_manager)
    assert g.waits_for(one(g, CERTIFICATE), cert_manager)
    assert g.waits_for(one(g, BUNDLE), trust_manager)
    linkerd_ns = g.get("kubernetes:core/v1:Namespace", "linkerd-namespace")
    for type_ in (CERTIFICATE, BUNDLE):
        assert g.waits_for(one(g, type_), linkerd_ns), f"{type_} before its target namespace"


# --- cert-manager and trust-manager -------------------------------------------------------------


def test_both_charts_are_pinned_in_their_own_namespace() -> None:
    g = graph()
    for release, ref in (
        ("cert-manager", versions.CERT_MANAGER),
        ("trust-manager", versions.TRUST_MANAGER),
    ):
        inputs = chart(g, release).inputs
        assert (inputs["chart"], inputs["version"]) == (ref.chart, ref.version)
        assert inputs["repositoryOpts"]["repo"] == ref.repo
        assert inputs["namespace"] == "cert-manager"
    ns = g.get("kubernetes:core/v1:Namespace", "linkerd-external-issuer-cert-manager-namespace")
    assert ns.inputs["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    assert "linkerd.io/inject" not in (ns.inputs["metadata"].get("annotations") or {})


def test_cert_manager_installs_its_crds_and_waits_for_its_webhook_instead_of_a_hook() -> None:
    values = ext.cert_manager_values("dev", "cert-manager")
    assert values["crds"] == {"enabled": True, "keep": True}
    # startupapicheck is a post-install hook the v4 Chart would drop anyway.
    assert values["startupapicheck"] == {"enabled": False}
    for key in (
        "validatingWebhookConfigurationAnnotations",
        "mutatingWebhookConfigurationAnnotations",
    ):
        assert values["webhook"][key] == {
            "pulumi.com/waitFor": "jsonpath={.webhooks[0].clientConfig.caBundle}"
        }
    trust = ext.trust_manager_values("dev", "cert-manager")
    assert trust["crds"]["enabled"] is True and trust["app"]["trust"]["namespace"] == "cert-manager"
    assert trust["defaultPackage"] == {"enabled": False}


@pytest.mark.parametrize("profile", ["dev", "prod"])
def test_every_cert_manager_container_is_sized(profile: str) -> None:
    values = ext.cert_manager_values(profile, "cert-manager")
    for block in (values, values["webhook"], values["cainjector"]):
        assert set(block["resources"]) == {"requests", "limits"}
    assert set(ext.trust_manager_values(profile, "cert-manager")["resources"]) == {
        "requests",
        "limits",
    }


def test_prod_runs_more_than_one_of_each_with_disruption_budgets() -> None:
    values = ext.cert_manager_values("prod", "cert-manager")
    for block in (values, values["webhook"], values["cainjector"]):
        assert block["replicaCount"] >= 2 and block["podDisruptionBudget"] == {"enabled": True}
    trust = ext.trust_manager_values("prod", "cert-manager")
    assert trust["replicaCount"] >= 2 and trust["podDisruptionBudget"] == {"enabled": True}


def test_cert_manager_already_present_is_used_as_it_is() -> None:
    g = graph(installCertManager=False)
    assert not {"cert-manager", "trust-manager"} & set(g.charts())
    assert (
        g.find("kubernetes:core/v1:Namespace", "linkerd-external-issuer-cert-manager-namespace")
        is None
    )
    assert g.waits_for(chart(g, "linkerd-control-plane"), one(g, CERTIFICATE))
    assert g.waits_for(chart(g, "linkerd-control-plane"), one(g, BUNDLE))


# --- The issuer that signs ---------------------------------------------------------------------


def test_with_the_anchors_key_the_stack_makes_a_ca_cluster_issuer_holding_it() -> None:
    g = graph()
    issuer = one(g, "kubernetes:cert-manager.io/v1:ClusterIssuer")
    assert issuer.inputs["metadata"]["name"] == "linkerd-trust-anchor"
    secret = g.get("kubernetes:core/v1:Secret", "linkerd-external-issuer-ca")
    assert issuer.inputs["spec"] == {"ca": {"secretName": secret.inputs["metadata"]["name"]}}
    # A ClusterIssuer reads its CA from cert-manager's cluster resource namespace.
    assert secret.inputs["metadata"]["namespace"] == "cert-manager"
    assert secret.inputs["type"] == "kubernetes.io/tls"
    assert secret.inputs["stringData"] == {"tls.crt": PEM, "tls.key": KEY}
    # The key makes the whole of stringData secret in state.
    assert is_secret(secret.raw_inputs["stringData"])
    assert g.waits_for(one(g, CERTIFICATE), issuer)
    assert g.waits_for(issuer, chart(g, "cert-manager")), "cert-manager's CRDs and webhook first"


def test_an_issuer_kind_is_made_in_the_control_plane_namespace() -> None:
    g = graph(issuerRefKind="Issuer")
    issuer = one(g, "kubernetes:cert-manager.io/v1:Issuer")
    assert issuer.inputs["metadata"]["namespace"] == mesh.NAMESPACE
    secret = g.get("kubernetes:core/v1:Secret", "linkerd-external-issuer-ca")
    assert secret.inputs["metadata"]["namespace"] == mesh.NAMESPACE
    assert one(g, CERTIFICATE).inputs["spec"]["issuerRef"]["kind"] == "Issuer"


def test_without_the_key_the_issuer_named_must_exist_and_nothing_holds_a_key() -> None:
    g = graph(key=False)
    assert not [r for r in g.resources if r.type.endswith((":ClusterIssuer", ":Issuer"))]
    assert g.find("kubernetes:core/v1:Secret", "linkerd-external-issuer-ca") is None
    assert one(g, CERTIFICATE).inputs["spec"]["issuerRef"]["name"] == "linkerd-trust-anchor"


def test_the_anchors_key_reaches_the_cluster_only_as_a_secret() -> None:
    for res in graph().resources:
        for path, value, secret in leaves(res.raw_inputs):
            if isinstance(value, str) and "PRIVATE KEY-----" in value:
                assert secret, f"{res.urn}: {path} holds a private key in plain text"


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_every_typed_object_is_valid_kubernetes(version: str) -> None:
    checked = 0
    for g in (graph(), graph(issuerRefKind="Issuer")):
        for res in typed_objects(g):
            kubernetes_validate.validate(manifest(res), version, strict=True)
            checked += 1
    assert checked > 10


# --- Config ----------------------------------------------------------------------------------


def test_an_external_issuer_without_its_reference_stops_before_any_resource() -> None:
    config = external()
    del config["linkerd"]["identity"]["issuerRefName"]
    g = run_program("dev", config)
    assert g.error is not None and g.resources == []
    (line,) = [x for x in str(g.error).splitlines() if x.startswith("meshstack:")]
    assert line.startswith("meshstack:linkerd.identity.issuerRefName: missing;"), line
    assert "pulumi config set --path linkerd.identity.issuerRefName" in line


@pytest.mark.parametrize(
    ("identity", "key"),
    [
        ({"issuerRefKind": "Vault"}, "meshstack:linkerd.identity.issuerRefKind"),
        ({"issuerRefName": "Linkerd Issuer"}, "meshstack:linkerd.identity.issuerRefName"),
        ({"installCertManager": "yes"}, "meshstack:linkerd.identity.installCertManager"),
        (
            {"certManagerNamespace": "Cert_Manager"},
            "meshstack:linkerd.identity.certManagerNamespace",
        ),
        # A rotation's new anchor is given: cert-manager's issuer has to sign with it.
        ({"rotation": "bundle"}, "meshstack:linkerd.identity.nextTrustAnchorPem"),
        ({"rotation": "issuer"}, "meshstack:linkerd.identity.rotation"),
    ],
)
def test_bad_external_issuer_settings_name_the_key(identity: dict[str, Any], key: str) -> None:
    g = run_program("dev", external(**identity))
    assert g.error is not None and g.resources == []
    assert any(x.startswith(f"{key}:") for x in str(g.error).splitlines()), str(g.error)


def test_the_pure_specs_follow_the_settings() -> None:
    settings = ExternalIssuerSettings(issuer_ref_kind="Issuer", issuer_ref_name="ca")
    spec = ext.certificate_spec(settings, "mesh.internal", 2880, 2160)
    assert spec["commonName"] == "identity.linkerd.mesh.internal"
    assert spec["dnsNames"] == ["identity.linkerd.mesh.internal"]
    assert spec["issuerRef"]["kind"] == "Issuer" and spec["duration"] == "2880h0m0s"
    (source,) = ext.bundle_spec(PEM)["sources"]
    assert (
        x509.load_pem_x509_certificates(source["inLine"].encode())[0]
        .extensions.get_extension_for_class(x509.BasicConstraints)
        .value.ca
    )


# --- Budgets --------------------------------------------------------------------------------


def test_cert_manager_and_trust_manager_count_in_the_footprint_with_their_sizing_rows() -> None:
    fp = footprint(graph())
    assert not [n for n in fp.notes if "not in bench/footprint.CHARTS" in n], fp.notes
    rows = {"cert-manager", "cert-manager-webhook", "cert-manager-cainjector", "trust-manager"}
    lines = [line for line in fp.lines if line.role in rows]
    assert {line.role for line in lines} == rows
    for line in lines:
        assert line.sizes == parse_block(sizing.SIZES["dev"][line.role].k8s()), line


def test_the_external_issuer_adds_only_the_dependencies_it_needs() -> None:
    edges = deps.component_dependencies(graph())
    assert deps.disallowed(edges, budgets.ALLOWED_DEPENDENCIES) == []
    assert ("Mesh", "ExternalIssuer") in edges


# --- Rotating the anchor under cert-manager ---------------------------------------------------

NEW_PEM, NEW_KEY = shared_anchor()


def rotating(phase: str) -> dict[str, Any]:
    config = external(rotation=phase, nextTrustAnchorPem=NEW_PEM)
    config["nextTrustAnchorKeyPem"] = NEW_KEY
    return config


@functools.cache
def rotation() -> dict[str, Graph]:
    out = {"none": ok(up(external()))}
    for before, phase in (("none", "bundle"), ("bundle", "issuer"), ("issuer", "finish")):
        out[phase] = ok(up(rotating(phase), out[before]))
    return out


def roots(g: Graph) -> list[x509.Certificate]:
    (source,) = one(g, BUNDLE).inputs["spec"]["sources"]
    return x509.load_pem_x509_certificates(source["inLine"].encode())


@pytest.mark.parametrize(
    ("phase", "trusted", "signer"),
    [
        ("none", ["old"], "old"),
        ("bundle", ["new", "old"], "old"),
        ("issuer", ["new", "old"], "new"),
        ("finish", ["new"], "new"),
    ],
)
def test_the_roots_and_the_ca_issuer_follow_the_rotation_phases(
    phase: str, trusted: list[str], signer: str
) -> None:
    g = rotation()[phase]
    pems = {"old": PEM, "new": NEW_PEM}
    keys = {"old": KEY, "new": NEW_KEY}
    certs = {k: x509.load_pem_x509_certificate(v.encode()) for k, v in pems.items()}
    assert roots(g) == [certs[k] for k in trusted]
    values = chart(g, "linkerd-control-plane").inputs["values"]
    assert x509.load_pem_x509_certificates(values["identityTrustAnchorsPEM"].encode()) == [
        certs[k] for k in trusted
    ]
    secret = g.get("kubernetes:core/v1:Secret", "linkerd-external-issuer-ca")
    assert secret.inputs["stringData"] == {"tls.crt": pems[signer], "tls.key": keys[signer]}
    assert g.outputs["trustAnchorPem"] == pems[signer]
    assert g.outputs["identityRotation"]["phase"] == phase


# --- The Gateway's certificates ------------------------------------------------------------------

GATEWAY_TLS = {
    "mode": "gateway",
    "gatewayClass": "meshstack",
    "installEnvoyGateway": True,
    "domain": "mesh.example.com",
    "clusterIssuer": "letsencrypt-prod",
}


def test_with_a_cluster_issuer_for_the_gateway_cert_manager_watches_gateways_after_their_crds() -> (
    None
):
    g = run_program("dev", {**external(), "exposure": GATEWAY_TLS})
    assert g.error is None, g.error
    cert_manager = chart(g, "cert-manager")
    config = cert_manager.inputs["values"]["config"]
    assert config["gatewayAPI"] == {"enabled": True}
    assert config["kind"] == "ControllerConfiguration"
    # It reads Gateways from its first start: the CRDs are there before it.
    assert g.waits_for(cert_manager, chart(g, mesh.GATEWAY_API_RELEASE))
    # The Gateway it is to watch carries the issuer's annotation.
    (gateway,) = [r for r in g.resources if r.type.endswith(":Gateway")]
    annotations = gateway.inputs["metadata"].get("annotations") or {}
    assert annotations.get("cert-manager.io/cluster-issuer") == GATEWAY_TLS["clusterIssuer"]


@pytest.mark.parametrize(
    "exposure",
    [
        {"mode": "port-forward"},
        {**GATEWAY_TLS, "clusterIssuer": "", "tlsSecret": "wildcard-tls"},
    ],
)
def test_without_a_gateway_certificate_to_issue_cert_manager_leaves_gateways_alone(
    exposure: dict[str, Any],
) -> None:
    g = run_program("dev", {**external(), "exposure": exposure})
    assert g.error is None, g.error
    assert "config" not in chart(g, "cert-manager").inputs["values"]
