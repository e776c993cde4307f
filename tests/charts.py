"""Rendering the pinned charts offline with the stack's own values, as Pulumi's v4 Chart would.

Shared by the chart contract suite (tests/test_chart_contract.py) and the wiring suite
(tests/test_wiring.py). For every chart the program pins (read from the recorded graph, so it is
exactly what `pulumi up` would ask for: chart, version, repository, release, namespace, values)
`stack(variant)` loads the chart from `MESHSTACK_CHARTS_DIR/<chart>` and renders it with
helm-python-sdk: hooks dropped (the v4 Chart never runs them), CRDs included. Rendering is
offline: `lookup` returns nothing and `.Capabilities` are Helm's defaults, where a real preview
asks the cluster.
"""

from __future__ import annotations

import functools
import importlib
import os
import re
import shlex
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from components.multicluster import gateway_pause_resources
from components.versions import ChartRef
from policy import rules
from tests.graph import (
    TRUST_PROJECT,
    Graph,
    Resource,
    plain,
    run_program,
    run_trust,
    self_signed_anchor,
    stack_config,
    strings,
)
from tests.pull_charts import pull_command


def _import_helm() -> Any:
    """helm-python-sdk, or None: it is not in requirements-dev.txt (this test is opt-in)."""
    try:
        return importlib.import_module("helm_python")
    except ImportError:
        return None


helm = _import_helm()

CHARTS_ENV = "MESHSTACK_CHARTS_DIR"


def shared_anchor() -> tuple[str, str]:
    """A trust anchor certificate and its key (PEM), as Linkerd's docs make one with `step
    certificate create root.linkerd.cluster.local --profile root-ca`: ECDSA P-256, a CA."""
    return self_signed_anchor("root.linkerd.cluster.local", path_length=1)


_ANCHOR_PEM, _ANCHOR_KEY_PEM = shared_anchor()
_ISSUER = "https://login.example.com/realms/mesh"
OIDC_EXPOSURE: dict[str, Any] = {
    "auth": "oidc",
    "oidc": {
        "issuerUrl": _ISSUER,
        "clientId": "meshstack",
        "allowedGroups": ["platform"],
        "authUrl": f"{_ISSUER}/protocol/openid-connect/auth",
        "tokenUrl": f"{_ISSUER}/protocol/openid-connect/token",
        "userinfoUrl": f"{_ISSUER}/protocol/openid-connect/userinfo",
    },
}
# As tests/test_program.py: the Kubernetes versions the project supports.
KUBERNETES_VERSIONS = ("1.31.0", "1.35.0")
# The stacks checked: both stack files, and dev exposed through NodePort Services (whose
# selectors must match the charts' pods).
VARIANTS: dict[str, tuple[str, dict[str, Any]]] = {
    "dev": ("dev", {}),
    "prod": ("prod", {}),
    "dev-nodePort": ("dev", {"exposure": {"mode": "nodePort"}}),
    # Paths no stack file takes: a cluster domain other than the default (a hard-coded
    # `cluster.local` anywhere stops resolving) with the app behind an ingress controller.
    "dev-ingress-domain": (
        "dev",
        {
            "clusterDomain": "mesh.internal",
            "exposure": {
                "mode": "ingress",
                "domain": "dev.example.org",
                "ingressNamespace": "ingress",
                "ingressClass": "traefik",
            },
        },
    ),
    # Envoy Gateway installed by the stack (its chart with the stack's values, and Envoy
    # Gateway's CRDs from gateway-crds-helm), plain HTTP listeners (prod has TLS).
    "dev-gateway": (
        "dev",
        {
            "exposure": {
                "mode": "gateway",
                "gatewayClass": "meshstack",
                "installEnvoyGateway": True,
                "domain": "dev.example.org",
            },
        },
    ),
    # Metrics from a Prometheus the stack does not run.
    "dev-external-prometheus": (
        "dev",
        {
            "linkerd": {
                "installGatewayApiCrds": True,
                "prometheusUrl": "https://prometheus.example.org",
                "prometheusScraper": "monitoring/prometheus",
                "identity": {"issuer": "pulumi"},
            },
            # A team namespace, whose default-deny admits that scraper too.
            "onboarding": {"namespaces": [{"name": "team-a"}]},
        },
    ),
    # The identity issuer from cert-manager and the roots from trust-manager, both installed by
    # the stack (HA values), with the CA issuer the stack makes from a shared anchor and key.
    "prod-external-issuer": (
        "prod",
        {
            "linkerd": {
                "identity": {
                    "issuer": "external",
                    "trustAnchorPem": _ANCHOR_PEM,
                    "issuerRefName": "linkerd-trust-anchor",
                }
            },
            "trustAnchorKeyPem": _ANCHOR_KEY_PEM,
            # Sign-in with an OIDC provider: oauth2-proxy and Grafana both use it.
            "exposure": {**stack_config("prod")["exposure"], **OIDC_EXPOSURE},
            "oidcClientSecret": "oidc-client-secret-value",
            # An SLO of a team's deployment over its own window: viz's Prometheus keeps it on
            # the prod volume.
            "onboarding": {"namespaces": [{"name": "team-a"}]},
            "slo": {
                "objectives": [
                    {
                        "namespace": "team-a",
                        "deployment": "api",
                        "successPercent": 99.9,
                        "latencyMs": 500,
                        "window": "28d",
                    }
                ]
            },
        },
    ),
    # One cluster of a linked pair (east, through west's gateway, NodePort as on kind), its
    # anchor from the trust stack, exporting the voting service it runs: the multicluster
    # chart, its Link CRD and the Link, credentials and policy the program writes.
    "dev-multicluster": (
        "dev",
        {
            "enableMulticluster": True,
            "multicluster": {
                "clusterName": "east",
                "trustStack": f"organization/{TRUST_PROJECT}/trust",
                "apiServerAddress": "https://east-control-plane:6443",
                "podCidr": "10.20.0.0/16",
                "serviceCidr": "10.21.0.0/16",
                "gateway": {"serviceType": "NodePort", "address": "172.18.0.3"},
                "links": [{"stack": "organization/meshstack/west", "mode": "gateway"}],
                "placement": [{"workload": "voting", "cluster": "east"}],
            },
        },
    ),
    # Logs and traces on storage engines beyond one node. Loki: the chart's Distributed mode
    # on the in-cluster SeaweedFS store (prod sizes, three ingesters), monolithic Loki
    # replicated on an external bucket, and replicated on the in-cluster store. Jaeger: the
    # in-cluster OpenSearch, an external Elasticsearch with basic auth over TLS, an external
    # Cassandra.
    "prod-distributed-in-cluster-opensearch": (
        "prod",
        {
            "logging": {"storage": "s3", "mode": "distributed", "s3": {"inCluster": True}},
            "tracing": {"storage": "opensearch", "spanTtl": "168h", "store": {"inCluster": True}},
        },
    ),
    "dev-replicated-external-elasticsearch": (
        "dev",
        {
            "logging": {
                "storage": "s3",
                "replicas": 2,
                "persistence": True,
                "s3": {
                    "endpoint": "https://s3.eu-west-1.amazonaws.com",
                    "region": "eu-west-1",
                    "bucket": "meshstack-logs",
                    "accessKeyId": "AKIAIOSFODNN7EXAMPLE",
                },
            },
            "lokiS3SecretAccessKey": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
            "tracing": {
                "storage": "elasticsearch",
                "spanTtl": "48h",
                "store": {
                    "servers": ["https://es-0.example.org:9200", "https://es-1.example.org:9200"],
                    "indexPrefix": "meshstack",
                    "username": "jaeger",
                },
            },
            "jaegerStorePassword": "correct-horse-battery-staple",
        },
    ),
    "dev-replicated-in-cluster-cassandra": (
        "dev",
        {
            "logging": {"storage": "s3", "replicas": 2, "s3": {"inCluster": True}},
            "tracing": {
                "storage": "cassandra",
                "spanTtl": "36h",
                "store": {
                    "servers": ["cassandra-0.example.org:9142", "cassandra-1.example.org:9142"],
                    "localDc": "dc1",
                    "tls": True,
                    "username": "jaeger",
                },
            },
            "jaegerStorePassword": "correct-horse-battery-staple",
        },
    ),
}


def _linked_peers() -> dict[str, Graph]:
    """What the multicluster variant's StackReferences read: the trust stack's outputs, and
    those of `west`, a cluster that came up first (without links), from the same program."""
    trust = run_trust()
    name = f"organization/{TRUST_PROJECT}/trust"
    west = run_program(
        "dev",
        {
            "enableMulticluster": True,
            "multicluster": {
                "trustStack": name,
                "apiServerAddress": "https://west-control-plane:6443",
                "podCidr": "10.10.0.0/16",
                "serviceCidr": "10.11.0.0/16",
                "gateway": {"serviceType": "NodePort", "address": "172.18.0.2"},
            },
        },
        peers={name: trust},
        as_stack="west",
    )
    return {name: trust, "organization/meshstack/west": west}


# Variants whose stack reads other stacks' outputs: variant → those stacks' runs.
VARIANT_PEERS: dict[str, Callable[[], dict[str, Graph]]] = {"dev-multicluster": _linked_peers}
# API groups served by Kubernetes itself; any other group's kinds come from a CRD.
BUILTIN_GROUPS = frozenset(
    {
        "",
        "admissionregistration.k8s.io",
        "apiextensions.k8s.io",
        "apiregistration.k8s.io",
        "apps",
        "authentication.k8s.io",
        "authorization.k8s.io",
        "autoscaling",
        "batch",
        "certificates.k8s.io",
        "coordination.k8s.io",
        "discovery.k8s.io",
        "events.k8s.io",
        "flowcontrol.apiserver.k8s.io",
        "networking.k8s.io",
        "node.k8s.io",
        "policy",
        "rbac.authorization.k8s.io",
        "resource.k8s.io",
        "scheduling.k8s.io",
        "storage.k8s.io",
    }
)
# CRD groups the program installs from outside any pinned chart: none. Every kind the charts
# render, the Gateway API's included (gateway-crds-helm), is checked against a rendered CRD.
EXTERNAL_CRD_GROUPS: frozenset[str] = frozenset()
CLUSTER_SCOPED = frozenset(
    {
        "APIService",
        "ClusterRole",
        "ClusterRoleBinding",
        "CustomResourceDefinition",
        "MutatingWebhookConfiguration",
        "Namespace",
        "PersistentVolume",
        "PriorityClass",
        "StorageClass",
        "ValidatingWebhookConfiguration",
        "IngressClass",
        "ValidatingAdmissionPolicy",
        "ValidatingAdmissionPolicyBinding",
    }
)
# `<service>.<namespace>.svc[.<domain>][:<port>]`, optionally behind a URL scheme.
ADDRESS = re.compile(
    r"(?:(?P<scheme>[a-z][a-z0-9+.-]*)://)?(?<![\w.\\-])"
    r"(?P<svc>[a-z0-9](?:[-a-z0-9]*[a-z0-9])?)\.(?P<ns>[a-z0-9](?:[-a-z0-9]*[a-z0-9])?)"
    r"\.svc(?:\.[a-z0-9-]+)*(?::(?P<port>\d+))?"
)
DEFAULT_PORTS = {"http": 80, "https": 443}


def _skip_reason() -> str | None:
    if not os.environ.get(CHARTS_ENV):
        return (
            f"{CHARTS_ENV} is not set: the chart contract test renders the pinned charts from "
            f"a local folder (<dir>/<chart-name>/Chart.yaml); see policy/README.md"
        )
    if helm is None:
        return "helm_python is not importable: pip install helm-python-sdk==0.2.2"
    return None


SKIP = _skip_reason()
# CI sets this where the charts are at hand: a suite that would skip is then a failure.
REQUIRED_ENV = "MESHSTACK_CONTRACT_REQUIRED"


def suite_marks() -> list[pytest.MarkDecorator]:
    """The `pytestmark` of a suite that renders charts: marker `contract`, skipped with the
    reason when the charts or the renderer are missing, and a collection error instead of a
    skip where CI requires it."""
    if SKIP is not None and os.environ.get(REQUIRED_ENV) == "1":
        pytest.fail(f"{REQUIRED_ENV}=1 but the chart suites cannot run: {SKIP}", pytrace=False)
    return [pytest.mark.contract, pytest.mark.skipif(SKIP is not None, reason=SKIP or "")]


# --- Rendering -------------------------------------------------------------------------------


@dataclass
class Rendered:
    """One pinned chart, rendered with the stack's values."""

    release: str
    chart: str
    version: str
    repo: str
    namespace: str
    folder: Path
    objects: list[dict[str, Any]] = field(default_factory=list)
    error: str = ""

    @property
    def fetch(self) -> str:
        """How to put this chart where the test looks for it."""
        ref = ChartRef(self.chart, self.version, self.repo)
        return shlex.join(pull_command(ref, self.folder.parent))


@dataclass
class Stack:
    name: str
    """The stack file (`Pulumi.<name>.yaml`) the variant runs."""
    graph: Graph
    charts: dict[str, Rendered]

    def objects(self) -> Iterator[tuple[str, dict[str, Any]]]:
        """(release, object) for every rendered object."""
        for release, chart in self.charts.items():
            for obj in chart.objects:
                yield release, obj


def _ints(value: Any) -> Any:
    """Whole floats back to ints: the wire format has only doubles (Helm reads both alike)."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {k: _ints(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_ints(v) for v in value]
    return value


# How Helm splits a rendered template into objects (helm internal/release/v2/util/manifest.go
# `sep`): `---` at the start of a line, whatever follows it. cert-manager's rbac.yaml renders
# `---# Permission to approve ...`, which YAML itself does not read as a document start.
HELM_DOCUMENT_SEPARATOR = re.compile(r"(?m)^---[ \t]*")


def _is_hook(obj: dict[str, Any]) -> bool:
    return "helm.sh/hook" in ((obj.get("metadata") or {}).get("annotations") or {})


def chart_and_repo(inputs: dict[str, Any]) -> tuple[str, str]:
    """(chart name, repository) of a v4 Chart's inputs: a repository's chart by name, or an
    OCI chart by its full reference (`oci://<registry>/<path>/<chart>`, no repository)."""
    chart = str(inputs["chart"])
    if chart.startswith("oci://"):
        repo, _, name = chart.rpartition("/")
        return name, repo
    return chart, (inputs.get("repositoryOpts") or {}).get("repo", "")


def render(chart_res: Resource) -> Rendered:
    inputs = chart_res.inputs
    name, repo = chart_and_repo(inputs)
    out = Rendered(
        release=inputs.get("name") or chart_res.name,
        chart=name,
        version=inputs.get("version", ""),
        repo=repo,
        namespace=inputs.get("namespace") or "default",
        folder=Path(os.environ[CHARTS_ENV]) / name,
    )
    if not (out.folder / "Chart.yaml").is_file():
        out.error = f"no chart at {out.folder}; fetch it with: {out.fetch}"
        return out
    values = _ints(plain(inputs.get("values") or {}))
    assert helm is not None
    try:
        with helm.Chart.load(out.folder) as chart:
            if chart.name != out.chart or chart.version != out.version:
                out.error = (
                    f"{out.folder} holds {chart.name} {chart.version}, the stack pins "
                    f"{out.chart} {out.version}; fetch it with: {out.fetch}"
                )
                return out
            chart.validate_schema(values)
            manifests = chart.render(
                values, name=out.release, namespace=out.namespace, is_install=True
            )
            crds = [] if inputs.get("skipCrds") else [c["data"] for c in chart.crds]
    except helm.HelmError as error:
        out.error = f"{type(error).__name__}: {error}"
        return out
    texts = [text for path, text in sorted(manifests.items()) if not path.endswith("NOTES.txt")]
    for text in [*crds, *texts]:
        for obj in map(yaml.safe_load, HELM_DOCUMENT_SEPARATOR.split(text)):
            # Pulumi's v4 Chart never runs hooks (helm.sh/hook objects are dropped).
            if not obj or _is_hook(obj):
                continue
            if obj["kind"] not in CLUSTER_SCOPED:
                obj.setdefault("metadata", {}).setdefault("namespace", out.namespace)
            out.objects.append(RENDER_TRANSFORMS.get(name, _same)(obj))
    return out


def _same(obj: dict[str, Any]) -> dict[str, Any]:
    return obj


# What the program's transform on a chart does to each object it renders (the engine runs it on
# every child of the Chart in a real preview; under mocks nothing renders), by chart name.
RENDER_TRANSFORMS: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
    "linkerd-multicluster": gateway_pause_resources,
}


@functools.cache
def stack(variant: str) -> Stack:
    name, overrides = VARIANTS[variant]
    peers = VARIANT_PEERS[variant]() if variant in VARIANT_PEERS else None
    graph = run_program(name, overrides, peers=peers)
    if graph.error is not None:
        raise graph.error
    return Stack(name, graph, {release: render(res) for release, res in graph.charts().items()})


# --- Helpers ---------------------------------------------------------------------------------


def group_of(api_version: str) -> str:
    return api_version.rpartition("/")[0] if "/" in api_version else ""


def type_token(obj: dict[str, Any]) -> str:
    """The Pulumi type of a Kubernetes object: `kubernetes:apps/v1:Deployment`."""
    api = obj["apiVersion"]
    module = api if "/" in api else f"core/{api}"
    return f"kubernetes:{module}:{obj['kind']}"


def program_objects(graph: Graph) -> list[Resource]:
    """What the program writes itself (a patch included), as the kubernetes provider gets it."""
    return graph.kubernetes_objects()


def addresses(text: str) -> Iterator[tuple[str, str, int]]:
    """(service, namespace, port) of every in-cluster address in `text` with a known port."""
    for m in ADDRESS.finditer(text):
        port = int(m["port"]) if m["port"] else DEFAULT_PORTS.get(m["scheme"] or "")
        if port:
            yield m["svc"], m["ns"], port


def written_addresses(s: Stack) -> dict[tuple[str, str, int], set[str]]:
    """Every address the stack writes → where it is written."""
    found: dict[tuple[str, str, int], set[str]] = {}
    sources: list[tuple[str, Any]] = [
        (f"values of chart {c.name}", plain(c.inputs.get("values") or {}))
        for c in s.graph.charts().values()
    ]
    sources += [(r.urn, r.inputs) for r in program_objects(s.graph)]
    sources += [(f"stack output {k}", v) for k, v in s.graph.outputs.items()]
    mirrored = mirror_suffixes(s)
    for where, value in sources:
        for text in strings(value):
            for address in addresses(text):
                if not address[0].endswith(mirrored):
                    found.setdefault(address, set()).add(where)
    return found


def mirror_suffixes(s: Stack) -> tuple[str, ...]:
    """`-<cluster>` of every cluster the stack links to. The service mirror makes a peer's
    Service here as `<svc>-<cluster>` at run time: no chart renders it, so an address of one is
    checked against the peer's own Service (tests/test_multicluster.py), not here."""
    return tuple(
        f"-{r.inputs['spec']['targetClusterName']}"
        for r in s.graph.of_type("kubernetes:multicluster.linkerd.io/v1alpha3:Link")
    )


def services(s: Stack) -> dict[tuple[str, str], dict[str, Any]]:
    """(namespace, name) → Service object, rendered or written by the program."""
    out = {
        (o["metadata"]["namespace"], o["metadata"]["name"]): o
        for _, o in s.objects()
        if o["kind"] == "Service" and o["apiVersion"] == "v1"
    }
    for r in s.graph.of_type("kubernetes:core/v1:Service"):
        meta = r.inputs["metadata"]
        out[(meta.get("namespace", "default"), meta["name"])] = r.inputs
    return out


def pod_labels(s: Stack) -> dict[str, list[dict[str, str]]]:
    """namespace → the pod template labels of every workload, rendered or the program's."""
    subjects = [(type_token(o), o) for _, o in s.objects()]
    subjects += [(r.type, r.inputs) for r in program_objects(s.graph)]
    out: dict[str, list[dict[str, str]]] = {}
    for type_, obj in subjects:
        pod = rules.pod_template(type_, obj)
        if pod is not None:
            namespace = (obj.get("metadata") or {}).get("namespace", "default")
            labels = dict((pod.get("metadata") or {}).get("labels") or {})
            out.setdefault(namespace, []).append(labels)
    return out
