"""Storage beyond one node: Loki on an S3-compatible bucket (monolithic replicas or the chart's
Distributed mode, an external bucket or SeaweedFS in the cluster), the bad input that must
stop the program before any resource, and the credentials that must stay secrets.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from components import config as cfg
from components import logging as logs
from components import sizing, storage, tracing, versions
from components.config import (
    BucketSettings,
    LoggingSettings,
    SecretValue,
    TraceStoreSettings,
    TracingSettings,
)
from tests.graph import Graph, leaves, plain, run_program

SECRET = "kubernetes:core/v1:Secret"
JOB = "kubernetes:batch/v1:Job"
PASSWORD = "random:index/randomPassword:RandomPassword"
KEY_ID = "AKIAIOSFODNN7EXAMPLE"
SECRET_KEY = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
EXTERNAL: dict[str, Any] = {
    "storage": "s3",
    "s3": {
        "endpoint": "https://s3.eu-west-1.amazonaws.com",
        "region": "eu-west-1",
        "bucket": "meshstack-logs",
        "accessKeyId": KEY_ID,
    },
}
IN_CLUSTER: dict[str, Any] = {"storage": "s3", "s3": {"inCluster": True}}


def parse(overrides: dict[str, Any], secret: tuple[str, ...] = ()) -> cfg.Settings:
    raw = {k: v if isinstance(v, str) else json.dumps(v) for k, v in overrides.items()}
    return cfg.parse_settings(raw, stack="test", secret_keys=frozenset(secret))


def external(**bucket: Any) -> LoggingSettings:
    fields: dict[str, Any] = {
        "endpoint": "https://s3.eu-west-1.amazonaws.com",
        "region": "eu-west-1",
        "bucket": "meshstack-logs",
        "access_key_id": KEY_ID,
        "secret_access_key": SecretValue(SECRET_KEY),
    }
    return LoggingSettings(storage="s3", replicas=2, s3=BucketSettings(**(fields | bucket)))


IN_CLUSTER_SETTINGS = LoggingSettings(storage="s3", s3=BucketSettings(in_cluster=True))
DISTRIBUTED = LoggingSettings(storage="s3", mode="distributed", s3=BucketSettings(in_cluster=True))


# --- Config ----------------------------------------------------------------------------------

BAD: list[tuple[dict[str, Any], str]] = [
    # An external bucket without its endpoint, or without credentials.
    ({"logging": {"storage": "s3"}}, "meshstack:logging.s3.endpoint"),
    (
        {"logging": {"storage": "s3", "s3": {"endpoint": "https://s3.example.org"}}},
        "meshstack:logging.s3.accessKeyId",
    ),
    (
        {"logging": {**EXTERNAL}},
        "meshstack:lokiS3SecretAccessKey",
    ),
    # A store URL that is not a URL.
    (
        {"logging": {"storage": "s3", "s3": {**EXTERNAL["s3"], "endpoint": "s3.example.org"}}},
        "meshstack:logging.s3.endpoint",
    ),
    (
        {"logging": {"storage": "s3", "s3": {"endpoint": "https://s3.example.org/bucket?x"}}},
        "meshstack:logging.s3.endpoint",
    ),
    # More than one Loki, or distributed Loki, on one pod's filesystem.
    ({"logging": {"replicas": 2}}, "meshstack:logging.replicas"),
    ({"logging": {"mode": "distributed"}}, "meshstack:logging.mode"),
    ({"logging": {"mode": "scalable"}}, "meshstack:logging.mode"),
    ({"logging": {"storage": "gcs"}}, "meshstack:logging.storage"),
    # Replicas count monolithic pods; distributed sizes each component itself.
    (
        {"logging": {**IN_CLUSTER, "mode": "distributed", "replicas": 3}},
        "meshstack:logging.replicas",
    ),
    # The in-cluster store makes its own endpoint and keys.
    (
        {"logging": {"storage": "s3", "s3": {"inCluster": True, "endpoint": "https://s3.x.org"}}},
        "meshstack:logging.s3.inCluster",
    ),
    # Keys and workload identity at once.
    (
        {
            "logging": {
                **EXTERNAL,
                "s3": {**EXTERNAL["s3"], "serviceAccountAnnotations": {"a/b": "c"}},
            },
            "lokiS3SecretAccessKey": SECRET_KEY,
        },
        "meshstack:logging.s3.serviceAccountAnnotations",
    ),
    (
        {"logging": {"storage": "s3", "s3": {"bucket": "Logs_Bucket"}}},
        "meshstack:logging.s3.bucket",
    ),
]


def test_a_secret_access_key_in_plain_text_is_refused() -> None:
    with pytest.raises(cfg.ConfigError, match=r"meshstack:lokiS3SecretAccessKey: is stored in"):
        parse({"logging": EXTERNAL, "lokiS3SecretAccessKey": SECRET_KEY})


def test_good_storage_config_parses() -> None:
    s = parse(
        {"logging": EXTERNAL, "lokiS3SecretAccessKey": SECRET_KEY}, ("lokiS3SecretAccessKey",)
    )
    assert s.logging.s3.secret_access_key.value == SECRET_KEY
    assert SECRET_KEY not in repr(s)
    wi = parse(
        {
            "logging": {
                "storage": "s3",
                "mode": "distributed",
                "s3": {
                    "endpoint": "https://s3.amazonaws.com",
                    "serviceAccountAnnotations": {"eks.amazonaws.com/role-arn": "arn:x"},
                },
            }
        }
    )
    assert wi.logging.s3.service_account_annotations == (("eks.amazonaws.com/role-arn", "arn:x"),)
    assert parse({"logging": {**IN_CLUSTER, "replicas": 3}}).logging.replicas == 3


# --- Loki's values ---------------------------------------------------------------------------


@pytest.mark.parametrize("settings", [external(), IN_CLUSTER_SETTINGS, DISTRIBUTED])
def test_the_index_chunks_and_delete_requests_go_to_the_bucket_in_tsdb_v13(
    settings: LoggingSettings,
) -> None:
    loki = logs.loki_values("prod", settings, "cluster.local")["loki"]
    (schema,) = loki["schemaConfig"]["configs"]
    assert (schema["store"], schema["schema"], schema["object_store"]) == ("tsdb", "v13", "s3")
    assert schema["index"]["period"] == "24h"
    assert loki["storage"]["type"] == "s3"
    assert loki["storage"]["bucketNames"] == {"chunks": settings.s3.bucket}
    # The compactor applies retention on the bucket, and keeps its delete requests there.
    assert loki["compactor"]["retention_enabled"] is True
    assert loki["compactor"]["delete_request_store"] == "s3"
    assert loki["limits_config"]["retention_period"] == f"{settings.retention_hours}h"


def test_an_external_bucket_is_reached_at_its_endpoint_with_keys_from_the_environment() -> None:
    values = logs.loki_values("dev", external(), "cluster.local")
    s3 = values["loki"]["storage"]["s3"]
    assert (s3["endpoint"], s3["insecure"], s3["region"]) == (
        "s3.eu-west-1.amazonaws.com",
        False,
        "eu-west-1",
    )
    # The config (a ConfigMap) names the variables; the keys arrive from the Secret.
    assert s3["accessKeyId"] == f"${{{logs.S3_ACCESS_KEY_ENV}}}"
    assert s3["secretAccessKey"] == f"${{{logs.S3_SECRET_KEY_ENV}}}"
    assert values["defaults"]["extraEnvFrom"] == [{"secretRef": {"name": logs.S3_SECRET}}]
    assert KEY_ID not in json.dumps(values) and SECRET_KEY not in json.dumps(values)


def test_workload_identity_annotates_the_service_account_and_sets_no_keys() -> None:
    settings = external(
        access_key_id="",
        secret_access_key=SecretValue(""),
        service_account_annotations=(("eks.amazonaws.com/role-arn", "arn:aws:iam::1:role/l"),),
    )
    values = logs.loki_values("prod", settings, "cluster.local")
    assert values["serviceAccount"]["annotations"] == {
        "eks.amazonaws.com/role-arn": "arn:aws:iam::1:role/l"
    }
    assert "accessKeyId" not in values["loki"]["storage"]["s3"]
    assert "extraEnvFrom" not in values["defaults"]
    assert values["defaults"]["automountServiceAccountToken"] is False


def test_the_in_cluster_bucket_is_seaweedfs_s3_port_over_path_style_http() -> None:
    s3 = logs.loki_values("dev", IN_CLUSTER_SETTINGS, "mesh.internal")["loki"]["storage"]["s3"]
    host = f"{storage.SEAWEEDFS_SERVICE}.{logs.NAMESPACE}.svc.mesh.internal"
    assert s3["endpoint"] == f"{host}:{storage.SEAWEEDFS_S3_PORT}"
    assert s3["insecure"] is True and s3["s3ForcePathStyle"] is True


def test_monolithic_loki_scales_out_on_the_bucket() -> None:
    values = logs.loki_values("prod", external(), "cluster.local")
    assert values["deploymentMode"] == "Monolithic"
    assert values["singleBinary"]["replicas"] == 2
    # Two ingesters cannot hold three copies: a factor above the count refuses every write.
    assert values["loki"]["commonConfig"]["replication_factor"] == 1
    three = logs.loki_values("prod", external(), "x") | {}
    assert three["read"] == {"replicas": 0} and three["backend"] == {"replicas": 0}
    replicated = LoggingSettings(storage="s3", replicas=3, s3=BucketSettings(in_cluster=True))
    rf = logs.loki_values("prod", replicated, "x")["loki"]["commonConfig"]["replication_factor"]
    assert rf == 3


@pytest.mark.parametrize("profile", ["dev", "prod"])
def test_distributed_loki_runs_every_component_sized_and_no_single_binary(profile: str) -> None:
    values = logs.loki_values(profile, DISTRIBUTED, "cluster.local")
    assert values["deploymentMode"] == "Distributed"
    assert values["singleBinary"]["replicas"] == 0
    # Not SimpleScalable: its targets stay off.
    for target in ("read", "write", "backend"):
        assert values[target]["replicas"] == 0
    for key, (replicas, role) in logs.DISTRIBUTED.items():
        assert values[key]["replicas"] == replicas[profile] >= 1, key
        assert values[key]["resources"] == sizing.k8s_resources(profile, role), key
    assert values["compactor"]["replicas"] == 1
    ingesters = values["ingester"]["replicas"]
    rf = values["loki"]["commonConfig"]["replication_factor"]
    assert rf <= ingesters and (rf == 3) == (ingesters >= 3)
    # The ruler (alerting is Grafana's) needs no bucket.
    assert values["ruler"] == {"enabled": False}


def test_the_urls_follow_the_mode() -> None:
    assert logs.push_url("c.l", "distributed") == (
        f"http://{logs.LOKI_DISTRIBUTOR_SERVICE}.logging.svc.c.l:3100{logs.PUSH_PATH}"
    )
    assert logs.query_url("c.l", "distributed") == (
        f"http://{logs.LOKI_QUERY_FRONTEND_SERVICE}.logging.svc.c.l:3100"
    )
    assert logs.push_url("c.l") == f"http://loki.logging.svc.c.l:3100{logs.PUSH_PATH}"


def test_distributed_loki_admits_its_own_pods_on_the_http_port() -> None:
    http = logs.network_policy((), "distributed")["ingress"][0]
    assert {"podSelector": {"matchLabels": logs.LOKI_PODS}} in http["from"]
    mono = logs.network_policy((), "monolithic")["ingress"][0]
    assert {"podSelector": {"matchLabels": logs.LOKI_PODS}} not in mono["from"]


# --- SeaweedFS -------------------------------------------------------------------------------


def test_seaweedfs_serves_s3_with_auth_from_the_stacks_secret_on_a_claim() -> None:
    values = storage.seaweedfs_values("prod", "50Gi", "fast")
    aio = values["allInOne"]
    assert aio["enabled"] and aio["s3"]["enabled"] and aio["s3"]["enableAuth"]
    assert aio["s3"]["existingConfigSecret"] == storage.SEAWEEDFS_CONFIG_SECRET
    assert aio["data"] == {"type": "persistentVolumeClaim", "size": "50Gi", "storageClass": "fast"}
    assert aio["resources"] == sizing.k8s_resources("prod", "seaweedfs")
    assert aio["podSecurityContext"]["runAsNonRoot"] is True
    assert aio["containerSecurityContext"]["capabilities"] == {"drop": ["ALL"]}
    assert f"{values['image']['repository']}:{values['image']['tag']}" == versions.SEAWEEDFS_IMAGE


def test_the_identity_file_grants_loki_read_and_write_but_not_admin() -> None:
    (identity,) = json.loads(storage.seaweedfs_identities("id", "key"))["identities"]
    assert identity["credentials"] == [{"accessKey": "id", "secretKey": "key"}]
    assert "Admin" not in identity["actions"] and {"Read", "Write"} <= set(identity["actions"])


def test_the_bucket_job_makes_the_bucket_loki_writes_to_once() -> None:
    script = storage.bucket_script("loki-chunks", "logging", "c.l")
    assert "-master=seaweedfs-all-in-one.logging.svc.c.l:9333" in script
    assert "s3.bucket.create -name loki-chunks" in script
    assert "grep -qw 'loki-chunks'" in script


def test_only_loki_reaches_the_s3_port_and_only_the_job_the_master_and_filer() -> None:
    rules = storage.seaweedfs_network_policy(logs.LOKI_PODS)["ingress"]
    assert rules[0]["from"] == [{"podSelector": {"matchLabels": logs.LOKI_PODS}}]
    assert [p["port"] for p in rules[0]["ports"]] == [storage.SEAWEEDFS_S3_PORT]
    for rule in rules[1:]:
        assert rule["from"] == [{"podSelector": {"matchLabels": storage.BUCKET_JOB_PODS}}]
        assert storage.SEAWEEDFS_S3_PORT not in [p["port"] for p in rule["ports"]]


# --- The program -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def in_cluster() -> Graph:
    graph = run_program("prod", {"logging": {**IN_CLUSTER, "mode": "distributed"}})
    assert graph.error is None, graph.error
    return graph


@pytest.fixture(scope="module")
def outside() -> Graph:
    graph = run_program(
        "dev", {"logging": {**EXTERNAL, "replicas": 2}, "lokiS3SecretAccessKey": SECRET_KEY}
    )
    assert graph.error is None, graph.error
    return graph


def test_the_in_cluster_store_gets_generated_keys_shared_by_loki_and_the_gateway(
    in_cluster: Graph,
) -> None:
    passwords = {r.name: r for r in in_cluster.of_type(PASSWORD)}
    key_id = passwords["logging-s3-access-key"]
    key = passwords["logging-s3-secret-key"]
    loki = in_cluster.get(SECRET, "logging-loki-s3").inputs["stringData"]
    gateway = in_cluster.get(SECRET, "logging-seaweedfs-s3-config").inputs["stringData"]
    (identity,) = json.loads(gateway[storage.SEAWEEDFS_CONFIG_KEY])["identities"]
    (credentials,) = identity["credentials"]
    assert loki[logs.S3_ACCESS_KEY_ENV] == credentials["accessKey"] == key_id.state["result"]
    assert loki[logs.S3_SECRET_KEY_ENV] == credentials["secretKey"] == key.state["result"]
    chart = in_cluster.charts()[storage.SEAWEEDFS_RELEASE]
    assert (chart.inputs["chart"], chart.inputs["version"]) == (
        versions.SEAWEEDFS.chart,
        versions.SEAWEEDFS.version,
    )
    assert chart.inputs["namespace"] == logs.NAMESPACE
    job = in_cluster.get(JOB, "logging-seaweedfs-bucket")
    (container,) = job.inputs["spec"]["template"]["spec"]["containers"]
    assert container["image"] == versions.SEAWEEDFS_IMAGE


def test_loki_waits_for_its_keys_and_the_store_for_its_identity_file(in_cluster: Graph) -> None:
    loki = in_cluster.charts()[logs.LOKI_RELEASE]
    assert in_cluster.waits_for(loki, in_cluster.get(SECRET, "logging-loki-s3"))
    seaweedfs = in_cluster.charts()[storage.SEAWEEDFS_RELEASE]
    assert in_cluster.waits_for(seaweedfs, in_cluster.get(SECRET, "logging-seaweedfs-s3-config"))


def test_alloy_and_grafana_follow_the_distributed_mode(in_cluster: Graph) -> None:
    assert in_cluster.outputs["lokiPushUrl"] == logs.push_url("cluster.local", "distributed")
    grafana = json.dumps(plain(in_cluster.charts()["grafana"].inputs["values"]))
    assert logs.query_url("cluster.local", "distributed") in grafana
    alloy = in_cluster.charts()[logs.ALLOY_RELEASE].inputs["values"]["alloy"]["configMap"]
    assert logs.push_url("cluster.local", "distributed") in alloy["content"]


def _credential_values(graph: Graph) -> list[str]:
    values = [KEY_ID, SECRET_KEY]
    for r in graph.of_type(PASSWORD):
        if r.name in ("logging-s3-access-key", "logging-s3-secret-key"):
            values.append(str(r.state["result"]))
    return values


@pytest.mark.parametrize("fixture", ["in_cluster", "outside"])
def test_bucket_credentials_are_secrets_in_state_and_never_in_outputs_or_config_maps(
    fixture: str, request: pytest.FixtureRequest
) -> None:
    graph: Graph = request.getfixturevalue(fixture)
    credentials = _credential_values(graph)
    found = 0
    for res in graph.resources:
        for path, value, is_secret in leaves(res.raw_inputs):
            if isinstance(value, str) and any(c and c in value for c in credentials):
                found += 1
                assert is_secret, f"{res.urn}: {path} holds a bucket credential in plain text"
                assert "ConfigMap" not in res.type, f"{res.urn}: {path}"
        if res.type == "kubernetes:helm.sh/v4:Chart":
            text = json.dumps(plain(res.inputs.get("values") or {}))
            assert not any(c in text for c in credentials), f"{res.urn}: a credential in values"
    assert found, "the credentials should reach their Secrets"
    outputs = json.dumps(plain(graph.outputs))
    assert not any(c in outputs for c in credentials)


# --- Jaeger on a shared store ----------------------------------------------------------------

PASSWORD_VALUE = "correct-horse-battery-staple"
ES: dict[str, Any] = {
    "storage": "elasticsearch",
    "spanTtl": "48h",
    "store": {"servers": ["https://es.example.org:9200"], "username": "jaeger"},
}

BAD_TRACING: list[tuple[dict[str, Any], str]] = [
    # A store URL that is not a URL, and a store without servers.
    (
        {"tracing": {"storage": "opensearch", "store": {"servers": ["es.example.org:9200"]}}},
        "meshstack:tracing.store.servers[0]",
    ),
    (
        {"tracing": {"storage": "elasticsearch", "store": {"servers": ["ftp://es:21"]}}},
        "meshstack:tracing.store.servers[0]",
    ),
    ({"tracing": {"storage": "cassandra"}}, "meshstack:tracing.store.servers"),
    (
        {"tracing": {"storage": "cassandra", "store": {"servers": ["http://c:9042"]}}},
        "meshstack:tracing.store.servers[0]",
    ),
    # A span TTL daily indices cannot express.
    (
        {"tracing": {"storage": "opensearch", "spanTtl": "36h", "store": {"inCluster": True}}},
        "meshstack:tracing.spanTtl",
    ),
    # The stack runs OpenSearch only.
    (
        {"tracing": {"storage": "elasticsearch", "store": {"inCluster": True}}},
        "meshstack:tracing.store.inCluster",
    ),
    # Basic auth needs both halves.
    ({"tracing": ES}, "meshstack:jaegerStorePassword"),
    (
        {
            "tracing": {"storage": "cassandra", "store": {"servers": ["c-0"]}},
            "jaegerStorePassword": PASSWORD_VALUE,
        },
        "meshstack:tracing.store.username",
    ),
    (
        {"tracing": {"storage": "opensearch", "store": {"inCluster": "yes"}}},
        "meshstack:tracing.store.inCluster",
    ),
]


def test_a_span_ttl_in_whole_days_and_any_ttl_for_cassandra_parse() -> None:
    s = parse({"tracing": ES, "jaegerStorePassword": PASSWORD_VALUE}, ("jaegerStorePassword",))
    assert s.tracing.store.password.value == PASSWORD_VALUE and PASSWORD_VALUE not in repr(s)
    c = parse({"tracing": {"storage": "cassandra", "spanTtl": "36h", "store": {"servers": "c"}}})
    assert (c.tracing.span_ttl_hours, c.tracing.store.servers) == (36, ("c",))


def _tracing(**store: Any) -> TracingSettings:
    kind = store.pop("storage")
    ttl = store.pop("ttl", 72)
    return TracingSettings(storage=kind, span_ttl_hours=ttl, store=TraceStoreSettings(**store))


def test_opensearch_and_elasticsearch_backends_name_servers_prefix_and_password_env() -> None:
    settings = _tracing(
        storage="elasticsearch",
        servers=("https://es.example.org:9200",),
        index_prefix="mesh",
        username="jaeger",
        password=SecretValue(PASSWORD_VALUE),
    )
    config = tracing.jaeger_userconfig("elasticsearch", 72, 1, settings)
    (backend,) = config["extensions"]["jaeger_storage"]["backends"].values()
    es = backend["elasticsearch"]
    assert es["server_urls"] == ["https://es.example.org:9200"]
    assert es["indices"]["index_prefix"] == "mesh"
    assert es["tls"]["insecure"] is False
    assert es["auth"]["basic"] == {
        "username": "jaeger",
        "password": f"${{env:{tracing.STORE_PASSWORD_ENV}}}",
    }
    assert PASSWORD_VALUE not in json.dumps(config)


def test_the_in_cluster_opensearch_gets_plain_http_and_no_index_replicas() -> None:
    settings = _tracing(storage="opensearch", in_cluster=True)
    config = tracing.jaeger_userconfig("opensearch", 72, 1, settings, "mesh.internal")
    (backend,) = config["extensions"]["jaeger_storage"]["backends"].values()
    os_ = backend["opensearch"]
    assert os_["server_urls"] == [
        "http://opensearch-cluster-master.tracing-store.svc.mesh.internal:9200"
    ]
    assert os_["tls"]["insecure"] is True
    for kind in ("spans", "services", "dependencies", "sampling"):
        assert os_["indices"][kind]["replicas"] == 0, kind


def test_cassandra_expires_spans_by_the_span_ttl() -> None:
    settings = _tracing(
        storage="cassandra",
        ttl=36,
        servers=("c-0.example.org:9142", "c-1.example.org:9142"),
        local_dc="dc1",
        tls=True,
    )
    config = tracing.jaeger_userconfig("cassandra", 36, 1, settings)
    (backend,) = config["extensions"]["jaeger_storage"]["backends"].values()
    cassandra = backend["cassandra"]
    assert cassandra["connection"]["servers"] == ["c-0.example.org", "c-1.example.org"]
    assert cassandra["connection"]["port"] == 9142
    assert cassandra["connection"]["tls"]["insecure"] is False
    assert cassandra["schema"]["trace_ttl"] == "36h"
    assert cassandra["schema"]["create"] is True


@pytest.mark.parametrize("profile", ["dev", "prod"])
def test_jaeger_scales_out_only_on_a_shared_store(profile: str) -> None:
    shared = tracing.jaeger_values(profile, _tracing(storage="opensearch", in_cluster=True))
    assert shared["jaeger"]["replicas"] == tracing.SHARED_STORE_REPLICAS[profile]
    assert shared["jaeger"]["strategy"]["type"] == "RollingUpdate"
    for single in ("memory", "badger"):
        values = tracing.jaeger_values(profile, TracingSettings(storage=single))
        assert values["jaeger"]["replicas"] == 1 and "strategy" not in values["jaeger"]
    assert tracing.SHARED_STORE_REPLICAS["prod"] > 1


def test_the_index_cleaner_keeps_whole_days_of_the_span_ttl_with_the_same_prefix() -> None:
    settings = _tracing(
        storage="opensearch",
        ttl=168,
        servers=("https://os.example.org",),
        index_prefix="mesh",
        username="u",
        password=SecretValue(PASSWORD_VALUE),
    )
    spec = tracing.index_cleaner_spec("prod", settings, "cluster.local")
    (c,) = spec["jobTemplate"]["spec"]["template"]["spec"]["containers"]
    assert c["args"] == ["7", "https://os.example.org"]
    assert c["image"] == versions.JAEGER_ES_INDEX_CLEANER_IMAGE
    env = {e["name"]: e for e in c["env"]}
    assert env["INDEX_PREFIX"]["value"] == "mesh"
    assert env["ES_PASSWORD"]["valueFrom"]["secretKeyRef"] == {
        "name": tracing.STORE_SECRET,
        "key": tracing.STORE_PASSWORD_KEY,
    }
    assert PASSWORD_VALUE not in json.dumps(spec)


@pytest.fixture(scope="module")
def with_es() -> Graph:
    graph = run_program("prod", {"tracing": ES, "jaegerStorePassword": PASSWORD_VALUE})
    assert graph.error is None, graph.error
    return graph


def test_the_store_password_is_a_secret_in_state_and_nowhere_in_plain_text(with_es: Graph) -> None:
    found = 0
    for res in with_es.resources:
        for path, value, is_secret in leaves(res.raw_inputs):
            if isinstance(value, str) and PASSWORD_VALUE in value:
                found += 1
                assert is_secret, f"{res.urn}: {path} holds the store password in plain text"
                assert res.type == SECRET, f"{res.urn}: {path}"
    assert found == 1
    assert PASSWORD_VALUE not in json.dumps(plain(with_es.outputs))
    assert with_es.get("kubernetes:batch/v1:CronJob", "tracing-index-cleaner")


# Both tables, in the order they appear: every bad input refused naming its key, and stopping
# the program before it registers any resource.
ALL_BAD = BAD + BAD_TRACING


@pytest.mark.parametrize(("overrides", "key"), ALL_BAD, ids=[k for _, k in ALL_BAD])
def test_bad_storage_config_is_refused_naming_the_key_before_any_resource(
    overrides: dict[str, Any], key: str
) -> None:
    with pytest.raises(cfg.ConfigError) as caught:
        parse(overrides, secret=("lokiS3SecretAccessKey", "jaegerStorePassword"))
    lines = [x for x in str(caught.value).splitlines() if x.startswith(f"{key}:")]
    assert lines, str(caught.value)
    assert any(w in lines[0] for w in ("expected", "set ", "missing", "drop", "use ")), lines[0]
    # A secret is never shown, whatever the error.
    assert SECRET_KEY not in str(caught.value) and PASSWORD_VALUE not in str(caught.value)
    graph = run_program("dev", overrides)
    assert graph.error is not None and type(graph.error).__name__ == "RunError"
    assert f"{key}:" in str(graph.error)
    assert graph.resources == []
