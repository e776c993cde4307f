"""The budgets the program is held to, in one place: tests/test_budgets.py asserts the ones
that are properties of the program (footprint, readiness stages, dependencies) and
bench/run.py reports the ones that are timings on the machine it runs on.
"""

from __future__ import annotations

from bench.footprint import GI

# --- Footprint (tests) -----------------------------------------------------------------------
# The dev stack must fit a laptop kind cluster next to the developer's own work.
DEV_CPU_REQUEST_M = 2000
DEV_MEMORY_REQUEST_B = 3 * GI

# --- Storage modes (tests, README "Sizing per storage mode") ---------------------------------
# The prod stack with logs or traces on each storage engine: (mode, the namespaces that hold
# its pods, the config overrides). `make bench` reports each one's requests and limits; the
# README's sizing table must show the same figures (tests/test_budgets.py).
_BUCKET = {
    "endpoint": "https://s3.eu-west-1.amazonaws.com",
    "accessKeyId": "AKIAIOSFODNN7EXAMPLE",
}
_SECRET = {"lokiS3SecretAccessKey": "bench-only-secret-key"}
STORAGE_MODES: tuple[tuple[str, tuple[str, ...], dict[str, object]], ...] = (
    ("logs: filesystem, monolithic (1 pod)", ("logging",), {}),
    (
        "logs: s3, monolithic (2 pods)",
        ("logging",),
        {"logging": {"storage": "s3", "replicas": 2, "s3": _BUCKET}, **_SECRET},
    ),
    (
        "logs: s3, distributed",
        ("logging",),
        {"logging": {"storage": "s3", "mode": "distributed", "s3": _BUCKET}, **_SECRET},
    ),
    (
        "logs: s3 in-cluster (SeaweedFS), monolithic (2 pods)",
        ("logging",),
        {"logging": {"storage": "s3", "replicas": 2, "s3": {"inCluster": True}}},
    ),
    ("traces: badger", ("tracing",), {}),
    (
        "traces: opensearch/elasticsearch (external)",
        ("tracing",),
        {"tracing": {"storage": "opensearch", "store": {"servers": ["https://os.example.org"]}}},
    ),
    (
        "traces: opensearch (in-cluster)",
        ("tracing", "tracing-store"),
        {"tracing": {"storage": "opensearch", "store": {"inCluster": True}}},
    ),
    (
        "traces: cassandra (external)",
        ("tracing",),
        {"tracing": {"storage": "cassandra", "store": {"servers": ["cassandra.example.org"]}}},
    ),
)

# --- Readiness stages (tests) ----------------------------------------------------------------
# CRDs → control plane → viz → the stack's meshed workloads (README, "Readiness stages"). The
# fourth stage is the price of tap: viz's tap-injector only enables tap on pods created after it
# answers, so the collector, Jaeger, Grafana and emojivoto start once viz is ready.
MAX_READINESS_STAGES = 4

# --- Dependencies between components (tests) -------------------------------------------------
# Component `<Name>` (the last part of its `meshstack:<module>:<Name>` type) → the components
# it may depend on, with the reason. Anything else in the recorded graph is a wait (or an
# ordering) nobody needs; addresses that cross components are plain strings from config.
ALLOWED_DEPENDENCIES: dict[str, dict[str, str]] = {
    "Identity": {},
    "Mesh": {
        "Identity": "the control plane's trust anchor, issuer and webhook certificates",
        "ExternalIssuer": "with issuer `external`, the issuer Secret and trust roots it mounts",
    },
    # Inside Mesh: the issuer Certificate goes into the control-plane namespace.
    "ExternalIssuer": {"Mesh": "the issuer Certificate and the roots go into its namespace"},
    "Viz": {
        "Identity": "viz's tap webhook certificates",
        "Mesh": "viz pods are meshed and viz creates policy resources",
    },
    "Tracing": {
        "Mesh": "the collector and Jaeger are meshed (injected at creation)",
        "Viz": "their pods start after viz's tap-injector, which enables tap at creation",
        "Identity": "the pods' proxy-config digest includes the trust anchors",
    },
    # Not meshed (components/logging.py): Loki and Alloy wait for nothing of the stack's.
    "Logging": {},
    "Grafana": {
        "Mesh": "Grafana is meshed and reaches viz's Prometheus with policy",
        "Viz": "queries viz's Prometheus",
        "Logging": "queries Loki",
        "Tracing": "queries Jaeger",
        "Identity": "alerts on the trust anchor's expiry, read from the anchor; the pod's "
        "proxy-config digest includes the trust anchors",
    },
    "Emojivoto": {
        "Mesh": "meshed, default-deny, policy resources",
        "Viz": "its pods start after viz's tap-injector, which enables tap at creation",
        "Identity": "the pods' proxy-config digest includes the trust anchors",
    },
    # oauth2-proxy runs in the namespaces of the UIs it fronts.
    "Auth": {
        "Mesh": "oauth2-proxy is meshed (injected at creation)",
        "Viz": "runs in the dashboard's namespace",
        "Tracing": "runs in Jaeger's namespace",
        "Identity": "the pods' proxy-config digest includes the trust anchors",
    },
    "Onboarding": {"Mesh": "team namespaces are injected, and hold policy resources"},
    "EnvoyGateway": {
        "Mesh": "its CRDs come before the control plane, whose injector must mesh Envoy's pods",
        "Tracing": "the ReferenceGrant for the edge's span export goes into the collector's "
        "namespace",
    },
    "Exposure": {
        "EnvoyGateway": "the Gateway attaches to the GatewayClass it creates",
        "Mesh": "with the cluster's own Gateway: the Gateway API CRDs, before the control plane",
        "Viz": "fronts the dashboard",
        "Grafana": "fronts Grafana",
        "Tracing": "fronts Jaeger",
        "Emojivoto": "fronts the app's web",
    },
}

# --- Timings (bench/run.py; machine dependent, so not tests) ---------------------------------
# Evaluating the dev stack under mocks within this multiple of importing the same modules.
EVAL_TO_IMPORT_RATIO = 1.5
# A stack with this many onboarded namespaces evaluates within SCALE_SECONDS.
SCALE_NAMESPACES = 100
SCALE_SECONDS = 5.0
