"""Logs: Loki's values, Alloy's config and values, and the Logging component's resources."""

from __future__ import annotations

import re
from typing import Any

import pulumi_kubernetes as k8s
import pytest

from components import logging as logs
from components import versions
from components.config import LoggingSettings
from components.logging import Logging, LoggingArgs
from tests.graph import Graph, Resource, record

CHART = "kubernetes:helm.sh/v4:Chart"
NAMESPACE = "kubernetes:core/v1:Namespace"
PROFILES = ("dev", "prod")


def build(settings: LoggingSettings, cluster_domain: str = "cluster.local") -> Graph:
    def program() -> None:
        component = Logging(
            "logging",
            LoggingArgs(profile="dev", settings=settings, cluster_domain=cluster_domain),
        )
        # A consumer of the outputs, to see them as other resources receive them.
        k8s.core.v1.ConfigMap(
            "consumer",
            data={
                "namespace": component.namespace,
                "push_url": component.push_url,
                "query_url": component.query_url,
            },
        )

    graph = record(program)
    assert graph.error is None, graph.error
    return graph


@pytest.fixture(scope="module")
def graph() -> Graph:
    return build(LoggingSettings())


@pytest.fixture(scope="module")
def persistent() -> Graph:
    return build(LoggingSettings(persistence=True, storage_size="20Gi", storage_class="fast"))


def chart(graph: Graph, release: str) -> Resource:
    return graph.charts()[release]


def assert_sized(where: str, resources: dict[str, Any]) -> None:
    for part in ("requests", "limits"):
        for kind in ("cpu", "memory"):
            assert resources.get(part, {}).get(kind), f"{where}: no {part}.{kind}"


# --- Addresses -------------------------------------------------------------------------------


def test_urls_use_the_service_name_and_port_the_loki_chart_creates() -> None:
    # Rendered loki 18.11.0 with these values: Service `loki`, port http-metrics 3100.
    assert (logs.LOKI_SERVICE, logs.LOKI_HTTP_PORT) == ("loki", 3100)
    values = logs.loki_values("dev", LoggingSettings(), "cluster.local")
    assert values["fullnameOverride"] == logs.LOKI_SERVICE
    assert values["loki"]["server"]["http_listen_port"] == logs.LOKI_HTTP_PORT
    assert logs.query_url("cluster.local") == "http://loki.logging.svc.cluster.local:3100"
    assert logs.push_url("cluster.local") == (
        "http://loki.logging.svc.cluster.local:3100/loki/api/v1/push"
    )


def test_urls_follow_the_cluster_domain() -> None:
    assert logs.push_url("mesh.internal").startswith("http://loki.logging.svc.mesh.internal:3100/")
    values = logs.loki_values("dev", LoggingSettings(), "mesh.internal")
    assert values["global"]["clusterDomain"] == "mesh.internal"


# --- Loki values -----------------------------------------------------------------------------


def test_loki_is_one_monolithic_single_tenant_pod_on_the_filesystem() -> None:
    values = logs.loki_values("dev", LoggingSettings(), "cluster.local")
    assert values["deploymentMode"] == "Monolithic"
    assert values["singleBinary"]["replicas"] == 1
    assert {values[t]["replicas"] for t in ("read", "write", "backend")} == {0}
    loki = values["loki"]
    assert loki["auth_enabled"] is False
    assert loki["storage"]["type"] == "filesystem"
    assert loki["commonConfig"]["replication_factor"] == 1


def test_loki_indexes_with_tsdb_schema_v13_in_daily_periods() -> None:
    [schema] = logs.loki_values("dev", LoggingSettings(), "cluster.local")["loki"]["schemaConfig"][
        "configs"
    ]
    assert schema["store"] == "tsdb"
    assert schema["schema"] == "v13"
    assert schema["object_store"] == "filesystem"
    assert schema["index"]["period"] == "24h"
    # A string: a date that YAML or Helm turned into a timestamp would not parse in Loki.
    assert isinstance(schema["from"], str)
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", schema["from"])


@pytest.mark.parametrize("hours", [24, 168, 720])
def test_retention_comes_from_the_settings_and_is_enforced_by_the_compactor(hours: int) -> None:
    loki = logs.loki_values("dev", LoggingSettings(retention_hours=hours), "cluster.local")["loki"]
    assert loki["limits_config"]["retention_period"] == f"{hours}h"
    assert loki["compactor"]["retention_enabled"] is True
    assert loki["compactor"]["delete_request_store"] == "filesystem"


def test_caches_canary_gateway_test_and_minio_are_off_to_fit_a_laptop() -> None:
    values = logs.loki_values("dev", LoggingSettings(), "cluster.local")
    for key in ("chunksCache", "resultsCache", "lokiCanary", "test", "gateway", "minio"):
        assert values[key]["enabled"] is False, key
    assert values["sidecar"]["rules"]["enabled"] is False


def test_loki_sends_no_usage_reports() -> None:
    loki = logs.loki_values("dev", LoggingSettings(), "cluster.local")["loki"]
    assert loki["analytics"] == {"reporting_enabled": False}


def test_persistent_loki_keeps_its_claim_when_the_statefulset_is_deleted() -> None:
    settings = LoggingSettings(persistence=True, storage_size="20Gi", storage_class="fast")
    persistence = logs.loki_values("prod", settings, "cluster.local")["singleBinary"]["persistence"]
    assert persistence["enabled"] is True
    assert (persistence["size"], persistence["storageClass"]) == ("20Gi", "fast")
    # The chart renders persistentVolumeClaimRetentionPolicy only with this flag on.
    assert persistence["enableStatefulSetAutoDeletePVC"] is True
    assert (persistence["whenDeleted"], persistence["whenScaled"]) == ("Retain", "Retain")


def test_persistent_loki_without_a_storage_class_uses_the_cluster_default() -> None:
    persistence = logs.loki_values("dev", LoggingSettings(persistence=True), "cluster.local")[
        "singleBinary"
    ]["persistence"]
    assert "storageClass" not in persistence


def test_ephemeral_loki_keeps_its_data_in_an_empty_dir() -> None:
    persistence = logs.loki_values("dev", LoggingSettings(), "cluster.local")["singleBinary"][
        "persistence"
    ]
    assert persistence == {"enabled": False}


# --- Alloy -----------------------------------------------------------------------------------


def test_alloy_ships_to_the_push_url_it_is_given() -> None:
    config = logs.alloy_config(logs.push_url("cluster.local"))
    assert re.findall(r'url = "([^"]+)"', config) == [logs.push_url("cluster.local")]


@pytest.mark.parametrize(
    ("label", "source"),
    [
        (logs.LABEL_NAMESPACE, "__meta_kubernetes_namespace"),
        (logs.LABEL_POD, "__meta_kubernetes_pod_name"),
        (logs.LABEL_CONTAINER, "__meta_kubernetes_pod_container_name"),
        (logs.LABEL_APP, "__meta_kubernetes_pod_label_app_kubernetes_io_name"),
    ],
)
def test_every_log_line_is_labelled_with_its_namespace_pod_container_and_app(
    label: str, source: str
) -> None:
    config = logs.alloy_config("http://loki:3100/loki/api/v1/push")
    rule = re.search(rf'rule {{[^}}]*"{source}"[^}}]*target_label\s*=\s*"(\w+)"', config)
    assert rule and rule.group(1) == label


def test_alloy_tails_the_log_files_of_its_own_node_only() -> None:
    config = logs.alloy_config("http://loki:3100/loki/api/v1/push")
    assert 'field = "spec.nodeName=" + coalesce(sys.env("HOSTNAME")' in config
    assert 'replacement   = "/var/log/pods/*$1/*.log"' in config
    assert "loki.source.file" in config
    assert "stage.cri {}" in config


def test_alloy_config_passes_helm_tpl_unchanged() -> None:
    # The chart runs alloy.configMap.content through `tpl`.
    assert "{{" not in logs.alloy_config(logs.push_url("cluster.local"))


def test_alloy_runs_on_every_node_and_reports_nothing_home() -> None:
    values = logs.alloy_values("dev", "// config")
    assert values["controller"]["type"] == "daemonset"
    assert values["alloy"]["enableReporting"] is False
    assert values["alloy"]["configMap"] == {"create": True, "content": "// config"}
    assert values["alloy"]["mounts"]["varlog"] is True
    assert values["crds"]["create"] is False


def test_alloy_reads_pods_and_nothing_else_from_the_api() -> None:
    rbac = logs.alloy_values("dev", "")["rbac"]
    rules = rbac["rules"] + rbac["clusterRules"]
    assert rbac["rules"] and rbac["clusterRules"], "the chart breaks on an empty rule list"
    assert {r for rule in rules for r in rule["resources"]} == {"pods"}
    assert {v for rule in rules for v in rule["verbs"]} == {"get", "list", "watch"}


def test_alloy_keeps_a_read_only_root_filesystem_and_no_capabilities() -> None:
    alloy = logs.alloy_values("dev", "")["alloy"]
    security = alloy["securityContext"]
    assert security["readOnlyRootFilesystem"] is True
    assert security["allowPrivilegeEscalation"] is False
    assert security["capabilities"] == {"drop": ["ALL"]}
    # Positions are written to a volume, since the root filesystem is read-only.
    assert {"name": "alloy-data", "mountPath": alloy["storagePath"]} in alloy["mounts"]["extra"]
    # Still not privileged, and nothing granted beyond what reading root's log files needs.
    assert security["privileged"] is False
    assert set(security) == {
        "runAsUser",
        "runAsGroup",
        "runAsNonRoot",
        "privileged",
        "allowPrivilegeEscalation",
        "readOnlyRootFilesystem",
        "capabilities",
        "seccompProfile",
    }


def test_a_restarted_alloy_resumes_from_positions_kept_on_its_node() -> None:
    values = logs.alloy_values("dev", "")
    (volume,) = [v for v in values["controller"]["volumes"]["extra"] if v["name"] == "alloy-data"]
    # On the node (an emptyDir dies with the pod, and the next one ships every file again),
    # under /var/lib, created by the kubelet on a new node.
    assert volume["hostPath"] == {"path": logs.ALLOY_NODE_PATH, "type": "DirectoryOrCreate"}
    assert logs.ALLOY_NODE_PATH.startswith("/var/lib/")
    mount = {"name": "alloy-data", "mountPath": logs.ALLOY_STORAGE_PATH}
    assert mount in values["alloy"]["mounts"]["extra"]
    assert values["alloy"]["storagePath"] == logs.ALLOY_STORAGE_PATH
    # Written, so not read-only; the log files themselves stay read-only (`varlog`).
    assert "readOnly" not in mount


@pytest.mark.parametrize("profile", PROFILES)
def test_every_container_has_requests_and_limits(profile: str) -> None:
    loki = logs.loki_values(profile, LoggingSettings(), "cluster.local")
    alloy = logs.alloy_values(profile, "")
    assert_sized("loki", loki["singleBinary"]["resources"])
    assert_sized("loki rules sidecar", loki["sidecar"]["resources"])
    assert_sized("alloy", alloy["alloy"]["resources"])
    assert_sized("alloy config-reloader", alloy["configReloader"]["resources"])


def test_values_are_the_same_on_every_call() -> None:
    settings = LoggingSettings(persistence=True)
    assert logs.loki_values("prod", settings, "x") == logs.loki_values("prod", settings, "x")
    config = logs.alloy_config(logs.push_url("x"))
    assert logs.alloy_values("prod", config) == logs.alloy_values("prod", config)


# --- Component -------------------------------------------------------------------------------


def test_both_charts_are_pinned_and_installed_in_the_logging_namespace(graph: Graph) -> None:
    for release, ref in (("loki", versions.LOKI), ("alloy", versions.ALLOY)):
        res = chart(graph, release)
        assert (res.inputs["chart"], res.inputs["version"]) == (ref.chart, ref.version), res
        assert res.inputs["repositoryOpts"]["repo"] == ref.repo, res
        assert res.inputs["namespace"] == "logging", res


def test_alloy_ships_to_the_same_url_the_component_exports(graph: Graph) -> None:
    outputs = graph.get("kubernetes:core/v1:ConfigMap", "consumer").inputs["data"]
    content = chart(graph, "alloy").inputs["values"]["alloy"]["configMap"]["content"]
    assert f'url = "{outputs["push_url"]}"' in content
    assert outputs["query_url"] == logs.query_url("cluster.local")
    assert outputs["namespace"] == "logging"


def test_the_logging_namespace_is_not_meshed_but_allows_alloys_host_mount(graph: Graph) -> None:
    ns = graph.get(NAMESPACE, "logging-namespace")
    metadata = ns.inputs["metadata"]
    assert metadata["name"] == "logging"
    assert "linkerd.io/inject" not in (metadata.get("annotations") or {})
    assert metadata["labels"]["pod-security.kubernetes.io/enforce"] == "privileged"


def test_pulumi_destroy_keeps_the_namespace_only_when_logs_are_persistent(
    graph: Graph, persistent: Graph
) -> None:
    # The retained claim lives in the namespace; deleting the namespace would delete it.
    assert persistent.get(NAMESPACE, "logging-namespace").options["retainOnDelete"] is True
    assert graph.get(NAMESPACE, "logging-namespace").options["retainOnDelete"] is False


def test_persistent_settings_reach_the_loki_chart(persistent: Graph) -> None:
    values = chart(persistent, "loki").inputs["values"]["singleBinary"]["persistence"]
    assert (values["enabled"], values["size"], values["storageClass"]) == (True, "20Gi", "fast")


def test_every_child_is_named_after_the_component_and_parented_to_it(graph: Graph) -> None:
    component = graph.get("meshstack:observability:Logging", "logging")
    children = [r for r in graph.resources if r.parent == component.urn]
    assert {r.name for r in children} == {
        "logging-namespace",
        "logging-loki-ingress",
        "logging-loki",
        "logging-alloy",
    }
