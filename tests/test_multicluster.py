"""Several stacks of the program against each other's recorded outputs: the trust stack, then
clusters whose StackReferences (and config-time reads) answer with what the others exported.

Each `up` here is one `pulumi up` of one stack under the recording mocks; a peer's answer is
exactly the outputs its own `up` recorded, secret markers included.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Mapping
from typing import Any

import pytest
import yaml
from cryptography import x509

from components import config as cfg
from components import dashboards
from components import multicluster as mcl
from tests.graph import ROOT, Graph, is_secret, run_program, run_trust

ORG = "organization"
LINK = "kubernetes:multicluster.linkerd.io/v1alpha3:Link"
SECRET = "kubernetes:core/v1:Secret"
ISSUER = "tls:index/locallySignedCert:LocallySignedCert"
DEPLOYMENT = "kubernetes:apps/v1:Deployment"
SERVICE = "kubernetes:core/v1:Service"
AUTHZ = "kubernetes:policy.linkerd.io/v1alpha1:AuthorizationPolicy"
MESH_TLS = "kubernetes:policy.linkerd.io/v1alpha1:MeshTLSAuthentication"
TRUST = f"{ORG}/meshstack-trust/trust"
# Per cluster: a distinct network, and a node address its gateway's NodePort answers on.
NETWORKS = {
    "west": ("10.10.0.0/16", "10.11.0.0/16", "172.18.0.2"),
    "east": ("10.20.0.0/16", "10.21.0.0/16", "172.18.0.3"),
    "north": ("10.30.0.0/16", "10.31.0.0/16", "172.18.0.4"),
}


def name_of(stack: str) -> str:
    return f"{ORG}/meshstack/{stack}"


def up_trust(config: Mapping[str, Any] | None = None, stack: str = "trust") -> Graph:
    graph = run_trust(config, stack)
    assert graph.error is None, graph.error
    return graph


def multicluster(
    stack: str,
    links: list[tuple[str, str]] = (),  # type: ignore[assignment]
    placement: Mapping[str, str] | None = None,
    trust: str = TRUST,
    **extra: Any,
) -> dict[str, Any]:
    pods, services, node = NETWORKS[stack]
    return {
        "clusterName": stack,
        "trustStack": trust,
        "apiServerAddress": f"https://{stack}-control-plane:6443",
        "podCidr": pods,
        "serviceCidr": services,
        "gateway": {"serviceType": "NodePort", "address": node},
        "links": [{"stack": name_of(peer), "mode": mode} for peer, mode in links],
        "placement": [{"workload": w, "cluster": c} for w, c in (placement or {}).items()],
        **extra,
    }


def up(
    stack: str,
    mc: Mapping[str, Any],
    peers: Mapping[str, Graph],
    previous: Graph | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> Graph:
    """One `pulumi up` of a cluster stack (the dev stack file) named `stack`."""
    return run_program(
        "dev",
        {"enableMulticluster": True, "multicluster": dict(mc), **(overrides or {})},
        peers=peers,
        as_stack=stack,
        previous=previous,
    )


def ok(graph: Graph) -> Graph:
    assert graph.error is None, graph.error
    return graph


def pair(mode: str = "gateway", trust: Graph | None = None) -> tuple[Graph, Graph, Graph]:
    """The documented bring-up: trust; west without links; east linked to west; west again,
    linked to east. `voting` runs in west, the rest in east. Returns (trust, west, east)."""
    trust = trust or up_trust()
    place = {"voting": "west"}
    west1 = ok(up("west", multicluster("west", placement=place), {TRUST: trust}))
    peers = {TRUST: trust, name_of("west"): west1}
    east = ok(up("east", multicluster("east", [("west", mode)], place), peers))
    peers[name_of("east")] = east
    west = ok(up("west", multicluster("west", [("east", mode)], place), peers, previous=west1))
    return trust, west, east


@pytest.fixture(scope="module")
def gateway_pair() -> tuple[Graph, Graph, Graph]:
    return pair("gateway")


def _env(graph: Graph, workload: str) -> dict[str, str]:
    deployment = graph.get(DEPLOYMENT, f"emojivoto-{workload}")
    (container,) = deployment.inputs["spec"]["template"]["spec"]["containers"]
    return {e["name"]: e["value"] for e in container["env"] if "value" in e}


def _kubeconfig(secret: Any) -> dict[str, Any]:
    return yaml.safe_load(base64.b64decode(secret.inputs["data"][mcl.CREDENTIALS_KEY]))


# --- One trust root ------------------------------------------------------------------------


def test_linked_clusters_trust_the_trust_stacks_anchor_and_sign_distinct_issuers(
    gateway_pair: tuple[Graph, Graph, Graph],
) -> None:
    trust, west, east = gateway_pair
    anchor_pem = trust.outputs["trustAnchorPem"]
    anchor = x509.load_pem_x509_certificate(anchor_pem.encode())
    issuers = []
    for graph in (west, east):
        assert graph.outputs["trustAnchorPem"] == anchor_pem, graph.stack
        # No cluster generates an anchor of its own.
        anchors = graph.of_type("tls:index/selfSignedCert:SelfSignedCert")
        assert not [r for r in anchors if "trust-anchor" in r.name], graph.stack
        issuer = graph.get(ISSUER, "identity-issuer")
        # Signed with the trust stack's key, which arrived as a secret.
        assert is_secret(issuer.raw_inputs["caPrivateKeyPem"]), graph.stack
        cert = x509.load_pem_x509_certificate(issuer.state["certPem"].encode())
        cert.verify_directly_issued_by(anchor)
        issuers.append(cert)
    assert issuers[0].public_key() != issuers[1].public_key()


def test_the_anchor_key_reaches_the_cluster_through_a_stack_reference_as_a_secret(
    gateway_pair: tuple[Graph, Graph, Graph],
) -> None:
    trust, west, _ = gateway_pair
    assert is_secret(trust.raw_outputs["trustAnchorKeyPem"])
    ref = west.get("pulumi:pulumi:StackReference", "trust-stack")
    assert ref.inputs["name"] == TRUST
    issuer = west.get(ISSUER, "identity-issuer")
    assert ref.urn in issuer.dependencies or west.waits_for(issuer, ref)


def test_a_rotation_moves_every_linked_cluster_through_bundle_before_any_signs_with_the_new_anchor(
    gateway_pair: tuple[Graph, Graph, Graph],
) -> None:
    trust, west, east = gateway_pair
    rotating = up_trust({"next": "b"})
    assert rotating.outputs["trustAnchorPem"] == trust.outputs["trustAnchorPem"]
    new = rotating.outputs["nextTrustAnchorPem"]
    place = {"voting": "west"}

    def phase(stack: str, peer: str, ph: str, peers: dict[str, Graph], prev: Graph) -> Graph:
        return up(
            stack,
            multicluster(stack, [(peer, "gateway")], place),
            {TRUST: rotating, **peers},
            previous=prev,
            overrides={"linkerd": {"identity": {"rotation": ph}}},
        )

    west_b = ok(phase("west", "east", "bundle", {name_of("east"): east}, west))
    # West may not sign with the new anchor while east does not trust it yet.
    early = phase("west", "east", "issuer", {name_of("east"): east}, west_b)
    assert early.error is not None and "multicluster.links[0].stack" in str(early.error)
    assert "bundle" in str(early.error)
    assert early.resources == []
    east_b = ok(phase("east", "west", "bundle", {name_of("west"): west_b}, east))
    west_i = ok(phase("west", "east", "issuer", {name_of("east"): east_b}, west_b))
    issuer = x509.load_pem_x509_certificate(
        west_i.get(ISSUER, "identity-issuer").state["certPem"].encode()
    )
    issuer.verify_directly_issued_by(x509.load_pem_x509_certificate(new.encode()))
    # A cluster that trusts only the old anchor may not link to west, which signs with the new.
    late = phase("east", "west", "none", {name_of("west"): west_i}, east)
    assert late.error is not None and "multicluster.links[0].stack" in str(late.error)
    assert late.resources == []
    # East, still signing with the old anchor, trusts both; west trusts both too.
    assert {a["sha256"] for a in east_b.outputs["identityRotation"]["anchors"]} == {
        a["sha256"] for a in west_i.outputs["identityRotation"]["anchors"]
    }


# --- Links ---------------------------------------------------------------------------------


def test_each_link_points_at_the_address_its_peer_exported(
    gateway_pair: tuple[Graph, Graph, Graph],
) -> None:
    _, west, east = gateway_pair
    for here, peer in ((east, west), (west, east)):
        link = here.get(LINK, f"multicluster-{peer.stack}-link")
        spec, exported = link.inputs["spec"], peer.outputs["multicluster"]
        assert link.inputs["metadata"] == {"name": peer.stack, "namespace": mcl.NAMESPACE}
        assert spec["targetClusterName"] == exported["clusterName"] == peer.stack
        assert spec["gatewayAddress"] == exported["gateway"]["address"] == NETWORKS[peer.stack][2]
        assert spec["gatewayPort"] == "30143"
        assert spec["probeSpec"]["port"] == "30191"
        assert spec["gatewayIdentity"] == mcl.gateway_identity("cluster.local")
        assert spec["clusterCredentialsSecret"] == f"cluster-credentials-{peer.stack}"
        assert spec["selector"] == {"matchLabels": {"mirror.linkerd.io/exported": "true"}}
        # The chart runs one controller for it, probing the gateway.
        values = here.charts()["linkerd-multicluster"].inputs["values"]
        assert values["controllers"] == [
            {"link": {"ref": {"name": peer.stack}}, "gateway": {"enabled": True}}
        ]


def test_link_credentials_carry_the_peers_token_and_stay_secret_end_to_end(
    gateway_pair: tuple[Graph, Graph, Graph],
) -> None:
    _, west, east = gateway_pair
    exported = west.raw_outputs["multiclusterCredentials"]
    assert is_secret(exported)
    assert not is_secret(west.raw_outputs["multicluster"])
    ref = east.get("pulumi:pulumi:StackReference", "peer-west")
    assert ref.inputs["name"] == name_of("west")
    secrets = [r for r in east.of_type(SECRET) if r.name.startswith("multicluster-west-")]
    assert {s.inputs["metadata"]["namespace"] for s in secrets} == {"linkerd", mcl.NAMESPACE}
    for secret in secrets:
        assert secret.inputs["type"] == "mirror.linkerd.io/remote-kubeconfig"
        assert secret.inputs["metadata"]["name"] == "cluster-credentials-west"
        assert is_secret(secret.raw_inputs["data"]), secret.name
        kube = _kubeconfig(secret)
        token = kube["users"][0]["user"]["token"]
        assert token == base64.b64decode(west.outputs["multiclusterCredentials"]["token"]).decode()
        assert kube["clusters"][0]["cluster"]["server"] == "https://west-control-plane:6443"
        assert (
            kube["clusters"][0]["cluster"]["certificate-authority-data"]
            == west.outputs["multiclusterCredentials"]["caCrt"]
        )
        if secret.inputs["metadata"]["namespace"] == "linkerd":
            meta = secret.inputs["metadata"]
            assert meta["labels"] == {"multicluster.linkerd.io/cluster-name": "west"}
            assert set(meta["annotations"]) == {
                "multicluster.linkerd.io/trust-domain",
                "multicluster.linkerd.io/cluster-domain",
            }
    # Nothing in east's state holds the token outside a secret.
    token = west.outputs["multiclusterCredentials"]["token"]
    for res in east.resources:
        for path, value in _leaves_outside_secrets(res.raw_inputs):
            assert token not in str(value), (res.urn, path)


def _leaves_outside_secrets(value: Any, path: str = "") -> list[tuple[str, Any]]:
    from tests.graph import leaves

    return [(p, v) for p, v, secret in leaves(value, path) if not secret]


def test_the_token_peers_read_is_the_remote_mirror_accounts_own_secret(
    gateway_pair: tuple[Graph, Graph, Graph],
) -> None:
    _, west, _ = gateway_pair
    read = west.get(SECRET, "multicluster-remote-mirror-token")
    assert read.options["read"]
    chart = west.charts()["linkerd-multicluster"]
    values = chart.inputs["values"]
    assert values["remoteMirrorServiceAccount"] is True
    assert f"{values['remoteMirrorServiceAccountName']}-token" == mcl.REMOTE_MIRROR_TOKEN_SECRET


def test_three_clusters_link_each_to_the_other_two_with_one_anchor_and_three_issuers() -> None:
    trust = up_trust()
    peers: dict[str, Graph] = {TRUST: trust}
    order = ("west", "east", "north")
    graphs: dict[str, Graph] = {}
    # Each comes up linked to those already up; then everyone once more, linked to all.
    for i, stack in enumerate(order):
        links = [(p, "pod-to-pod") for p in order[:i]]
        graphs[stack] = ok(up(stack, multicluster(stack, links), peers))
        peers[name_of(stack)] = graphs[stack]
    for stack in order:
        links = [(p, "pod-to-pod") for p in order if p != stack]
        graphs[stack] = ok(up(stack, multicluster(stack, links), peers, previous=graphs[stack]))
        peers[name_of(stack)] = graphs[stack]
    anchors = {g.outputs["trustAnchorPem"] for g in graphs.values()}
    assert anchors == {trust.outputs["trustAnchorPem"]}
    issuers = {g.get(ISSUER, "identity-issuer").state["certPem"] for g in graphs.values()}
    assert len(issuers) == 3
    for stack, graph in graphs.items():
        targets = {r.inputs["spec"]["targetClusterName"] for r in graph.of_type(LINK)}
        assert targets == set(order) - {stack}
        for link in graph.of_type(LINK):
            # Pod to pod: no gateway, remote discovery only.
            assert "gatewayAddress" not in link.inputs["spec"]
            assert link.inputs["spec"]["remoteDiscoverySelector"] == {
                "matchLabels": {"mirror.linkerd.io/exported": "remote-discovery"}
            }


# --- The app across clusters ---------------------------------------------------------------


def test_web_in_east_calls_voting_in_west_through_the_mirror_and_west_admits_the_gateway(
    gateway_pair: tuple[Graph, Graph, Graph],
) -> None:
    _, west, east = gateway_pair
    env = _env(east, "web")
    assert env["VOTINGSVC_HOST"] == "voting-svc-west.emojivoto.svc.cluster.local:8080"
    # The emoji service stays local.
    assert env["EMOJISVC_HOST"] == "emoji-svc.emojivoto.svc.cluster.local:8080"
    assert east.find(DEPLOYMENT, "emojivoto-voting") is None
    assert west.find(DEPLOYMENT, "emojivoto-voting") is not None
    voting = west.get(SERVICE, "emojivoto-voting-svc")
    # What east's Link selects is what west's voting Service carries.
    selector = east.get(LINK, "multicluster-west-link").inputs["spec"]["selector"]["matchLabels"]
    assert selector.items() <= voting.inputs["metadata"]["labels"].items()
    # Through the gateway, the caller west's voting sees is west's gateway: the identity east's
    # Link names for it.
    authn = west.get(MESH_TLS, "emojivoto-meshtls-remote-callers")
    gateway = east.get(LINK, "multicluster-west-link").inputs["spec"]["gatewayIdentity"]
    assert authn.inputs["spec"]["identities"] == [gateway]
    policy = west.get(AUTHZ, "emojivoto-authz-voting-grpc-remote-callers")
    assert policy.inputs["spec"]["targetRef"]["name"] == "voting-grpc"
    # Only voting is exported, and nothing but voting's gRPC admits the remote callers.
    remote = [r for r in west.of_type(AUTHZ) if "remote-callers" in r.name]
    assert remote == [policy]


@pytest.mark.parametrize(
    ("mode", "host", "label"),
    [
        ("pod-to-pod", "voting-svc-west", {"mirror.linkerd.io/exported": "remote-discovery"}),
        ("federated", "voting-svc-federated", {"mirror.linkerd.io/federated": "member"}),
    ],
)
def test_pod_to_pod_and_federated_links_keep_the_callers_own_identity(
    mode: str, host: str, label: dict[str, str]
) -> None:
    _, west, east = pair(mode)
    assert _env(east, "web")["VOTINGSVC_HOST"] == f"{host}.emojivoto.svc.cluster.local:8080"
    voting = west.get(SERVICE, "emojivoto-voting-svc")
    assert label.items() <= voting.inputs["metadata"]["labels"].items()
    authn = west.get(MESH_TLS, "emojivoto-meshtls-remote-callers")
    # East's web, by its own ServiceAccount identity: no gateway in between.
    assert authn.inputs["spec"]["identities"] == [
        "web.emojivoto.serviceaccount.identity.linkerd.cluster.local"
    ]
    link = east.get(LINK, "multicluster-west-link").inputs["spec"]
    selector = "remoteDiscoverySelector" if mode == "pod-to-pod" else "federatedServiceSelector"
    assert link[selector] == {"matchLabels": label}
    assert "gatewayAddress" not in link


# --- Bad input ------------------------------------------------------------------------------


def _refused(graph: Graph, key: str, *words: str) -> None:
    assert graph.error is not None, "expected a config error"
    text = str(graph.error)
    assert type(graph.error).__name__ == "RunError"
    assert f"meshstack:{key}:" in text, text
    for word in words:
        assert word in text, text
    assert graph.resources == [], "nothing may be registered before the config is valid"


def test_linking_to_a_stack_that_has_no_outputs_yet_says_which_up_comes_first() -> None:
    trust = up_trust()
    graph = up("east", multicluster("east", [("west", "gateway")]), {TRUST: trust})
    _refused(graph, "multicluster.links[0].stack", "no outputs yet", "first cluster of a pair")


def test_a_cluster_without_a_trust_stack_that_has_run_is_refused() -> None:
    graph = up("west", multicluster("west"), {})
    _refused(graph, "multicluster.trustStack", "trust/")


def test_linking_to_a_stack_whose_anchor_differs_is_refused(
    gateway_pair: tuple[Graph, Graph, Graph],
) -> None:
    _, west, _ = gateway_pair
    other = f"{ORG}/meshstack-trust/other"
    other_trust = up_trust(stack="other")
    assert other_trust.outputs["trustAnchorPem"] != west.outputs["trustAnchorPem"]
    graph = up(
        "east",
        multicluster("east", [("west", "gateway")], trust=other),
        {other: other_trust, name_of("west"): west},
    )
    _refused(graph, "multicluster.links[0].stack", "trust anchor", "trustStack")


def test_a_cluster_named_twice_is_refused(gateway_pair: tuple[Graph, Graph, Graph]) -> None:
    trust, west, _ = gateway_pair
    peers = {TRUST: trust, name_of("west"): west}
    twice = up("east", multicluster("east", [("west", "gateway"), ("west", "gateway")]), peers)
    _refused(twice, "multicluster.links[1].stack", "cluster `west`", "already named")
    # A peer that calls itself what this cluster is called.
    same = up("west2", multicluster("west", [("west", "gateway")], clusterName="west"), peers)
    _refused(same, "multicluster.links[0].stack", "multicluster.clusterName")


def test_a_workload_placed_in_a_cluster_that_is_not_linked_is_refused(
    gateway_pair: tuple[Graph, Graph, Graph],
) -> None:
    trust, west, _ = gateway_pair
    graph = up(
        "east",
        multicluster("east", [("west", "gateway")], {"voting": "south"}),
        {TRUST: trust, name_of("west"): west},
    )
    _refused(graph, "multicluster.placement[0].cluster", "`south`", "multicluster.links")


def test_pod_to_pod_between_clusters_whose_networks_overlap_is_refused() -> None:
    trust = up_trust()
    west = ok(up("west", multicluster("west"), {TRUST: trust}))
    overlapping = multicluster("east", [("west", "pod-to-pod")], podCidr="10.10.128.0/17")
    graph = up("east", overlapping, {TRUST: trust, name_of("west"): west})
    _refused(graph, "multicluster.links[0].mode", "10.10.128.0/17", "overlaps", "`gateway`")
    # The same networks through the gateway are fine: nothing routes pod to pod.
    ok(
        up(
            "east",
            multicluster("east", [("west", "gateway")], podCidr="10.10.128.0/17"),
            {TRUST: trust, name_of("west"): west},
        )
    )


@pytest.mark.parametrize(
    ("mc", "key"),
    [
        ({"podCidr": ""}, "multicluster.podCidr"),
        ({"apiServerAddress": "west:6443"}, "multicluster.apiServerAddress"),
        ({"links": [{"stack": "west", "mode": "gateway"}]}, "multicluster.links[0].stack"),
        ({"links": [{"stack": "o/p/west", "mode": "tunnel"}]}, "multicluster.links[0].mode"),
        (
            {"placement": [{"workload": "web", "cluster": "west"}]},
            "multicluster.placement[0].workload",
        ),
        ({"gateway": {"serviceType": "NodePort", "address": ""}}, "multicluster.gateway.address"),
        ({"gateway": {"serviceType": "LoadBalancer"}}, "multicluster.gateway.serviceType"),
    ],
)
def test_bad_multicluster_settings_name_the_key(mc: dict[str, Any], key: str) -> None:
    trust = up_trust()
    graph = up("west", {**multicluster("west"), **mc}, {TRUST: trust})
    _refused(graph, key)


def test_placement_without_multicluster_is_refused() -> None:
    with pytest.raises(cfg.ConfigError, match="meshstack:enableMulticluster:"):
        cfg.parse_settings(
            {"multicluster": '{"placement": [{"workload": "voting", "cluster": "west"}]}'}, "dev"
        )


# --- Pure planning -------------------------------------------------------------------------


def test_peer_stacks_are_read_from_the_raw_config_leniently() -> None:
    raw = {
        "multicluster": '{"trustStack": "o/t/trust", "links": [{"stack": "o/m/west"}, 3, '
        '{"stack": "not a stack"}]}'
    }
    assert cfg.peer_stacks(raw) == ["o/m/west", "o/t/trust"]
    assert cfg.peer_stacks({"multicluster": "{not json"}) == []
    assert cfg.peer_stacks({}) == []


def test_a_link_selects_only_what_its_mode_exports() -> None:
    peer = {
        "clusterName": "west",
        "gateway": {"address": "a", "port": 1, "probePort": 2, "identity": "i"},
    }
    never = {"mirror.linkerd.io/exported": "never-for-this-link"}
    # Federated links also discover per-cluster Services (each cluster's Prometheus).
    expected = {
        "gateway": [mcl.EXPORT_LABELS["gateway"]],
        "pod-to-pod": [mcl.EXPORT_LABELS["pod-to-pod"]],
        "federated": [mcl.EXPORT_LABELS["pod-to-pod"], mcl.EXPORT_LABELS["federated"]],
    }
    for mode in cfg.MULTICLUSTER_MODES:
        spec = mcl.link_spec(peer, mode)
        selected = [
            spec[k]["matchLabels"]
            for k in ("selector", "remoteDiscoverySelector", "federatedServiceSelector")
            if spec[k]["matchLabels"] != never
        ]
        assert selected == expected[mode], mode


# --- One view ----------------------------------------------------------------------------------


def _values(graph: Graph, release: str) -> dict[str, Any]:
    return graph.charts()[release].inputs["values"]


def test_grafana_in_each_cluster_queries_the_peers_prometheus_through_the_mirror(
    gateway_pair: tuple[Graph, Graph, Graph],
) -> None:
    _, west, east = gateway_pair
    for here, peer in ((east, west), (west, east)):
        sources = _values(here, "grafana")["datasources"]["datasources.yaml"]
        remote = [d for d in sources["datasources"] if d["uid"] == f"prometheus-{peer.stack}"]
        assert len(remote) == 1, here.stack
        service = peer.get(SERVICE, "multicluster-prometheus-federate")
        mirror = f"{service.inputs['metadata']['name']}-{peer.stack}"
        port = int(service.inputs["spec"]["ports"][0]["port"])
        assert remote[0]["url"] == f"http://{mirror}.linkerd-viz.svc.cluster.local:{port}"
        # The peer exports it for the link this cluster has, and admits what arrives.
        selector = here.get(LINK, f"multicluster-{peer.stack}-link").inputs["spec"]["selector"]
        assert selector["matchLabels"].items() <= service.inputs["metadata"]["labels"].items()
        authn = peer.get(MESH_TLS, "multicluster-viz-meshtls-remote-grafana")
        gateway = here.get(LINK, f"multicluster-{peer.stack}-link").inputs["spec"]
        assert authn.inputs["spec"]["identities"] == [gateway["gatewayIdentity"]]
        authz = peer.get(AUTHZ, "multicluster-viz-authz-remote-grafana")
        assert authz.inputs["metadata"]["namespace"] == "linkerd-viz"
        assert authz.inputs["spec"]["targetRef"]["name"] == "prometheus-admin"


def test_the_golden_dashboard_picks_a_cluster_and_queries_its_prometheus(
    gateway_pair: tuple[Graph, Graph, Graph],
) -> None:
    _, _, east = gateway_pair
    (configmap,) = [
        r for r in east.of_type("kubernetes:core/v1:ConfigMap") if r.name == "grafana-dashboards"
    ]
    # The golden-metrics dashboard (the SLO and RED dashboards beside it stay on this cluster).
    dashboard = json.loads(configmap.inputs["data"][dashboards.GOLDEN_METRICS_FILE])
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["cluster"]["type"] == "datasource"
    assert variables["cluster"]["query"] == "prometheus"
    pattern = re.compile(variables["cluster"]["regex"].strip("/"))
    assert pattern.match("Prometheus") and pattern.match("Prometheus west")
    for panel in dashboard["panels"]:
        for target in panel.get("targets", []):
            assert target["datasource"]["uid"] == "${cluster}", panel["title"]
    assert variables["namespace"]["datasource"]["uid"] == "${cluster}"


def test_the_gateways_pause_container_gets_requests_and_limits_from_the_charts_transform(
    gateway_pair: tuple[Graph, Graph, Graph],
) -> None:
    _, west, _ = gateway_pair
    chart = west.charts()["linkerd-multicluster"]
    assert chart.options["transforms"] >= 1
    gateway = {
        "kind": "Deployment",
        "metadata": {"name": "linkerd-gateway"},
        "spec": {"template": {"spec": {"containers": [{"name": "pause"}]}}},
    }
    (pause,) = mcl.gateway_pause_resources(gateway)["spec"]["template"]["spec"]["containers"]
    assert set(pause["resources"]) == {"requests", "limits"}
    other = {"kind": "Deployment", "metadata": {"name": "controller-west"}, "spec": {}}
    assert mcl.gateway_pause_resources(other) == other


# --- Bring-up and bench --------------------------------------------------------------------


def test_make_up_multicluster_runs_the_documented_bring_up_in_order() -> None:
    from tests.test_make import dry_run

    commands = dry_run("up-multicluster")
    lines = commands.splitlines()

    def first(text: str, after: int = -1) -> int:
        return next(i for i, line in enumerate(lines) if text in line and i > after)

    kind = first("kind create cluster --name $c --config kind-multicluster-$c.yaml")
    trust = first("pulumi up --stack trust")
    west1 = first("pulumi up --stack west")
    east_link = first("'multicluster.links[0].stack' organization/meshstack/west")
    east = first("pulumi up --stack east")
    west_link = first("'multicluster.links[0].stack' organization/meshstack/east")
    west2 = first("pulumi up --stack west", west1)
    assert kind < trust < west1 < east_link < east < west_link < west2
    # Both clusters on kind's one network, each with its own pod and Service CIDRs.
    networks = []
    for cluster in ("west", "east"):
        config = yaml.safe_load((ROOT / f"kind-multicluster-{cluster}.yaml").read_text())
        networks.append((config["networking"]["podSubnet"], config["networking"]["serviceSubnet"]))
        assert f"multicluster.podCidr {config['networking']['podSubnet']}" in commands
    (a_pod, a_svc), (b_pod, b_svc) = networks
    assert len({a_pod, a_svc, b_pod, b_svc}) == 4


def test_each_link_adds_one_controller_pod_with_its_proxy_to_the_footprint() -> None:
    from bench.multicluster import footprint

    one, two = footprint("dev", 1), footprint("dev", 2)
    assert (two.pods - one.pods, two.containers - one.containers) == (1, 2)
    assert two.cpu_request_m > one.cpu_request_m
    # Every container counted has requests and limits (none is unbounded).
    assert one.cpu_limit_m > 0 and one.memory_limit_b > 0


# --- The trust stack -----------------------------------------------------------------------


def _anchors(graph: Graph) -> dict[str, Any]:
    return {r.name: r for r in graph.of_type("tls:index/selfSignedCert:SelfSignedCert")}


def test_the_trust_stack_rotates_through_two_slots_without_regenerating_an_anchor() -> None:
    steady = up_trust()
    assert set(_anchors(steady)) == {"anchor-a"}
    assert _anchors(steady)["anchor-a"].options["protect"]
    assert steady.outputs["nextTrustAnchorPem"] == ""
    for key in ("trustAnchorKeyPem", "nextTrustAnchorKeyPem"):
        assert is_secret(steady.raw_outputs[key]), key
    rotating = up_trust({"next": "b"})
    assert rotating.outputs["trustAnchorPem"] == steady.outputs["trustAnchorPem"]
    new = rotating.outputs["nextTrustAnchorPem"]
    assert new and new != steady.outputs["trustAnchorPem"]
    promoted = up_trust({"current": "b", "retiring": "a"})
    # The new anchor is the same certificate, now current; the old one leaves unprotected.
    assert promoted.outputs["trustAnchorPem"] == new
    anchors = _anchors(promoted)
    assert anchors["anchor-b"].options["protect"]
    assert not anchors["anchor-a"].options["protect"]
    done = up_trust({"current": "b"})
    assert set(_anchors(done)) == {"anchor-b"}


@pytest.mark.parametrize(
    ("config", "key"),
    [
        ({"current": "c"}, "current"),
        ({"next": "a"}, "next"),
        ({"next": "b", "retiring": "b"}, "retiring"),
    ],
)
def test_the_trust_stack_refuses_slots_that_would_replace_the_anchor_in_use(
    config: dict[str, str], key: str
) -> None:
    graph = run_trust(config)
    assert graph.error is not None
    assert f"meshstack-trust:{key}:" in str(graph.error)
    assert graph.resources == []


def test_a_load_balanced_gateway_exports_the_address_the_cluster_gave_it() -> None:
    trust = up_trust()
    mc = {**multicluster("west"), "gateway": {"serviceType": "LoadBalancer"}}
    graph = run_program(
        "prod",
        {"enableMulticluster": True, "multicluster": mc},
        peers={TRUST: trust},
        as_stack="west",
    )
    assert graph.error is None, graph.error
    read = graph.get(SERVICE, "multicluster-gateway-service")
    assert read.options["read"]
    # The mocks answer a read Service with the balancer's address, as the cluster would.
    assert graph.outputs["multicluster"]["gateway"]["address"] == "203.0.113.20"
    assert graph.outputs["multicluster"]["gateway"]["port"] == mcl.GATEWAY_PORT
    values = graph.charts()["linkerd-multicluster"].inputs["values"]
    assert values["gateway"]["serviceType"] == "LoadBalancer"
    assert "nodePort" not in values["gateway"]
