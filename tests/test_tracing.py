"""Tracing: the collector and Jaeger values as plain functions, and the component's graph."""

from __future__ import annotations

import json
from typing import Any

import pulumi
import pulumi_kubernetes as k8s
import pytest

from components import sizing, tracing, versions
from components.config import TracingSettings
from components.tracing import Tracing, TracingArgs
from tests.graph import Graph, record

CHART = "kubernetes:helm.sh/v4:Chart"
PVC = "kubernetes:core/v1:PersistentVolumeClaim"
NAMESPACE = "kubernetes:core/v1:Namespace"
BADGER = TracingSettings(
    storage="badger", storage_size="50Gi", storage_class="fast-ssd", span_ttl_hours=168
)


def _deploy(profile: str, settings: TracingSettings, domain: str = "cluster.local") -> Graph:
    """Record a Tracing component behind a stand-in control plane."""

    def program() -> None:
        control_plane = k8s.helm.v4.Chart("linkerd-control-plane", chart="linkerd-control-plane")
        t = Tracing(
            "tracing",
            TracingArgs(
                profile=profile,
                settings=settings,
                cluster_domain=domain,
                control_plane=control_plane,
            ),
        )
        pulumi.export("namespace", t.namespace)
        pulumi.export("endpoints", t.endpoints)
        pulumi.export("query_url", t.query_url)

    graph = record(program, stack=profile)
    if graph.error is not None:
        raise graph.error
    return graph


def _exporter(config: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    (name,) = config["service"]["pipelines"]["traces"]["exporters"]
    return name, config["exporters"][name]


# --- Addresses -------------------------------------------------------------------------------


def test_the_addresses_derive_from_the_release_and_fullname() -> None:
    at = tracing.addresses("cluster.local")
    collector = tracing.collector_values("dev", True, "cluster.local")
    jaeger = tracing.jaeger_values("dev", TracingSettings())

    # The names the charts are told to use are the names handed to Linkerd and the apps.
    assert collector["fullnameOverride"] == tracing.COLLECTOR_RELEASE
    assert collector["serviceAccount"] == {
        "create": True,
        "name": at.collector_service_account,
        "automountServiceAccountToken": True,
    }
    assert at.otlp_grpc.startswith(f"{collector['fullnameOverride']}.{at.namespace}.svc.")
    assert jaeger["fullnameOverride"] == tracing.JAEGER_RELEASE
    assert at.jaeger_query.startswith(f"http://{jaeger['fullnameOverride']}.{at.namespace}.svc.")
    # The exact strings, as checked against the rendered charts (jaeger 4.11.1, collector 0.170.0).
    assert at == tracing.TracingAddresses(
        namespace="tracing",
        otlp_grpc="otel-collector.tracing.svc.cluster.local:4317",
        otlp_http="http://otel-collector.tracing.svc.cluster.local:4318",
        opencensus="otel-collector.tracing.svc.cluster.local:55678",
        collector_service_account="otel-collector",
        jaeger_query="http://jaeger.tracing.svc.cluster.local:16686/jaeger",
        jaeger_query_host="jaeger.tracing.svc.cluster.local:16686",
        jaeger_otlp_grpc="jaeger-otlp.tracing.svc.cluster.local:4317",
    )


def test_the_addresses_follow_the_cluster_domain() -> None:
    at = tracing.addresses("mesh.example")
    assert at.otlp_grpc == "otel-collector.tracing.svc.mesh.example:4317"
    assert at.jaeger_query == "http://jaeger.tracing.svc.mesh.example:16686/jaeger"
    assert at.collector_service_account == "otel-collector"


def test_the_collector_service_ports_are_the_ports_in_the_addresses() -> None:
    at = tracing.addresses("cluster.local")
    ports = tracing.collector_values("dev", True, "cluster.local")["ports"]
    assert ports["otlp"]["servicePort"] == int(at.otlp_grpc.rsplit(":", 1)[1])
    assert ports["otlp-http"]["servicePort"] == int(at.otlp_http.rsplit(":", 1)[1])
    assert ports["opencensus"]["servicePort"] == int(at.opencensus.rsplit(":", 1)[1])
    for port in ("otlp", "otlp-http", "opencensus"):
        assert ports[port]["containerPort"] == ports[port]["servicePort"]


# --- Collector -------------------------------------------------------------------------------


def test_the_collector_has_both_receivers_a_pipeline_and_an_exporter_to_jaegers_otlp() -> None:
    config = tracing.collector_config(open_census=True, cluster_domain="cluster.local")
    otlp = config["receivers"]["otlp"]["protocols"]
    assert otlp["grpc"]["endpoint"] == "0.0.0.0:4317"
    assert otlp["http"]["endpoint"] == "0.0.0.0:4318"
    assert config["receivers"]["opencensus"]["endpoint"] == "0.0.0.0:55678"

    traces = config["service"]["pipelines"]["traces"]
    assert traces["receivers"] == ["otlp", "opencensus"]
    assert traces["processors"][0] == "memory_limiter", "memory_limiter must refuse data first"
    assert traces["processors"][-1] == "batch"
    assert set(traces["processors"]) <= set(config["processors"])

    name, exporter = _exporter(config)
    assert name.split("/")[0] in ("otlp", "otlp_grpc")
    assert exporter["endpoint"] == tracing.addresses("cluster.local").jaeger_otlp_grpc
    assert exporter["endpoint"] == "jaeger-otlp.tracing.svc.cluster.local:4317"
    assert exporter["tls"] == {"insecure": True}


def test_the_collector_serves_the_probes_health_check() -> None:
    config = tracing.collector_config(open_census=False, cluster_domain="cluster.local")
    assert config["extensions"]["health_check"]["endpoint"] == "0.0.0.0:13133"
    assert config["service"]["extensions"] == ["health_check"]


def test_the_memory_limiter_has_a_memory_limit_to_work_against() -> None:
    for profile in sizing.SIZES:
        values = tracing.collector_values(profile, False, "cluster.local")
        assert values["resources"]["limits"]["memory"]
        limiter = values["alternateConfig"]["processors"]["memory_limiter"]
        assert 0 < limiter["spike_limit_percentage"] < limiter["limit_percentage"] <= 90


def test_open_census_off_runs_the_current_image_and_nothing_listens_on_55678() -> None:
    values = tracing.collector_values("prod", False, "cluster.local")
    repository, tag, command = versions.OTEL_COLLECTOR_IMAGE
    assert values["image"] == {"repository": repository, "tag": tag}
    assert values["command"] == {"name": command}
    assert "opencensus" not in values["ports"]
    assert "opencensus" not in values["alternateConfig"]["receivers"]
    assert values["alternateConfig"]["service"]["pipelines"]["traces"]["receivers"] == ["otlp"]
    assert "55678" not in json.dumps(values)


def test_open_census_on_pins_the_last_release_that_ships_the_receiver() -> None:
    values = tracing.collector_values("dev", True, "cluster.local")
    repository, tag, command = versions.OTEL_COLLECTOR_OPENCENSUS_IMAGE
    assert tag == "0.131.1"
    assert values["image"] == {"repository": repository, "tag": tag}
    assert values["command"] == {"name": command}
    assert values["ports"]["opencensus"] == {
        "enabled": True,
        "containerPort": 55678,
        "servicePort": 55678,
        "protocol": "TCP",
        "appProtocol": "kubernetes.io/h2c",
    }


@pytest.mark.parametrize(
    ("open_census", "exporter", "processor"),
    [(True, "otlp/jaeger", "k8sattributes"), (False, "otlp_grpc/jaeger", "k8s_attributes")],
)
def test_the_collector_config_uses_the_component_names_its_image_knows(
    open_census: bool, exporter: str, processor: str
) -> None:
    values = tracing.collector_values("dev", open_census, "cluster.local")
    config = values["alternateConfig"]
    assert list(config["exporters"]) == [exporter]
    assert processor in config["processors"]
    assert processor in config["service"]["pipelines"]["traces"]["processors"]
    # What is written is what runs: the chart must not rename anything.
    assert values["rewriteDeprecatedComponentNames"] is False


def test_k8sattributes_gets_the_presets_rbac_and_never_matches_by_connection() -> None:
    values = tracing.collector_values("dev", False, "cluster.local")
    assert values["clusterRole"] == {"create": True, "rules": tracing.K8S_ATTRIBUTES_RULES}
    assert {
        "apiGroups": [""],
        "resources": ["pods", "namespaces"],
        "verbs": ["get", "watch", "list"],
    } in values["clusterRole"]["rules"]
    # Every inbound connection of a meshed collector comes from its own proxy.
    association = values["alternateConfig"]["processors"]["k8s_attributes"]["pod_association"]
    sources = [s["from"] for rule in association for s in rule["sources"]]
    assert "connection" not in sources


def test_the_collector_uses_complete_config_with_no_none_values() -> None:
    """Pulumi drops None, so nothing may rely on it to delete a chart default."""
    for profile in sizing.SIZES:
        for open_census in (True, False):
            values = tracing.collector_values(profile, open_census, "cluster.local")
            assert values["alternateConfig"], "alternateConfig replaces the chart's config"
            assert "config" not in values
            assert "null" not in json.dumps(values)


def test_the_collector_runs_restricted() -> None:
    context = tracing.collector_values("dev", False, "cluster.local")["securityContext"]
    assert context["runAsNonRoot"] is True
    assert context["readOnlyRootFilesystem"] is True
    assert context["allowPrivilegeEscalation"] is False
    assert context["capabilities"] == {"drop": ["ALL"]}


def test_prod_runs_two_collectors_with_a_disruption_budget() -> None:
    prod = tracing.collector_values("prod", False, "cluster.local")
    dev = tracing.collector_values("dev", False, "cluster.local")
    assert prod["replicaCount"] == 2
    assert prod["podDisruptionBudget"] == {"enabled": True, "minAvailable": 1}
    assert dev["replicaCount"] == 1
    assert "podDisruptionBudget" not in dev


# --- Jaeger ----------------------------------------------------------------------------------


def test_jaeger_listens_on_all_interfaces_and_keeps_the_probes_health_check() -> None:
    config = tracing.jaeger_userconfig("memory", 72, 5_000)
    otlp = config["receivers"]["otlp"]["protocols"]
    assert otlp["grpc"]["endpoint"] == "0.0.0.0:4317"
    assert otlp["http"]["endpoint"] == "0.0.0.0:4318"
    assert config["extensions"]["healthcheckv2"] == {
        "use_v2": True,
        "http": {"endpoint": "0.0.0.0:13133"},
    }
    assert "healthcheckv2" in config["service"]["extensions"]
    assert config["extensions"]["jaeger_query"]["http"]["endpoint"] == "0.0.0.0:16686"


def test_jaeger_userconfig_is_complete_and_self_consistent() -> None:
    for storage in ("memory", "badger"):
        config = tracing.jaeger_userconfig(storage, 72, 5_000)
        (store,) = config["extensions"]["jaeger_storage"]["backends"]
        assert config["extensions"]["jaeger_query"]["storage"]["traces"] == store
        assert config["exporters"]["jaeger_storage_exporter"]["trace_storage"] == store
        connectors = set(config.get("connectors") or {})
        for pipeline in config["service"]["pipelines"].values():
            assert set(pipeline["receivers"]) <= set(config["receivers"]) | connectors
            assert set(pipeline.get("processors", [])) <= set(config["processors"])
            assert set(pipeline["exporters"]) <= set(config["exporters"]) | connectors
        # A connector is an exporter of one pipeline and a receiver of another.
        used = config["service"]["pipelines"].values()
        for connector in connectors:
            assert any(connector in p["exporters"] for p in used), connector
            assert any(connector in p["receivers"] for p in used), connector
        assert set(config["service"]["extensions"]) <= set(config["extensions"])
        assert "null" not in json.dumps(config)


def test_dev_storage_is_in_memory_and_bounded_by_profile() -> None:
    values = tracing.jaeger_values("dev", TracingSettings())
    backend = values["userconfig"]["extensions"]["jaeger_storage"]["backends"]
    assert backend == {tracing.JAEGER_STORE: {"memory": {"max_traces": 5_000}}}
    assert "extraVolumes" not in values["jaeger"]
    assert "extraVolumeMounts" not in values["jaeger"]


def test_badger_keeps_spans_for_the_configured_ttl_under_the_mount() -> None:
    values = tracing.jaeger_values("prod", BADGER)
    badger = values["userconfig"]["extensions"]["jaeger_storage"]["backends"][tracing.JAEGER_STORE][
        "badger"
    ]
    assert badger["ttl"] == {"spans": "168h"}
    assert badger["ephemeral"] is False
    (mount,) = values["jaeger"]["extraVolumeMounts"]
    (volume,) = values["jaeger"]["extraVolumes"]
    assert mount["name"] == volume["name"]
    assert volume["persistentVolumeClaim"] == {"claimName": tracing.JAEGER_BADGER_CLAIM}
    for directory in badger["directories"].values():
        assert directory.startswith(mount["mountPath"] + "/")


def test_a_userconfig_change_rolls_the_jaeger_pod_and_nothing_else_does() -> None:
    def sha(settings: TracingSettings) -> str:
        (env,) = tracing.jaeger_values("prod", settings)["jaeger"]["extraEnv"]
        assert env["name"] == "MESHSTACK_USERCONFIG_SHA256"
        return str(env["value"])

    assert sha(BADGER) == sha(BADGER), "the hash must be stable across runs"
    assert sha(BADGER) != sha(TracingSettings(storage="badger", span_ttl_hours=24))
    assert sha(BADGER) == tracing.config_hash(tracing.jaeger_values("prod", BADGER)["userconfig"])
    # The claim's size is not part of Jaeger's config: resizing must not restart it.
    assert sha(BADGER) == sha(
        TracingSettings(
            storage="badger", storage_size="99Gi", storage_class="fast-ssd", span_ttl_hours=168
        )
    )


def test_jaeger_runs_restricted_without_an_api_token() -> None:
    jaeger = tracing.jaeger_values("dev", TracingSettings())["jaeger"]
    assert jaeger["securityContext"]["runAsNonRoot"] is True
    assert jaeger["securityContext"]["readOnlyRootFilesystem"] is True
    assert jaeger["serviceAccount"] == {"automountServiceAccountToken": False}
    assert jaeger["replicas"] == 1
    repository, tag = versions.JAEGER_IMAGE.rsplit(":", 1)
    assert jaeger["image"] == {"repository": repository, "tag": tag}


@pytest.mark.parametrize("profile", sorted(sizing.SIZES))
def test_every_container_has_requests_and_limits(profile: str) -> None:
    containers = {
        "otel-collector": tracing.collector_values(profile, True, "cluster.local")["resources"],
        "jaeger": tracing.jaeger_values(profile, BADGER)["jaeger"]["resources"],
    }
    for role, resources in containers.items():
        assert resources == sizing.k8s_resources(profile, role)
        for kind in ("requests", "limits"):
            assert resources[kind].keys() == {"cpu", "memory"}, f"{role} {kind}"


@pytest.mark.parametrize(
    ("profile", "settings", "message"),
    [
        ("staging", TracingSettings(), "TracingArgs.profile: got 'staging'"),
        ("dev", TracingSettings(storage="s3"), "TracingArgs.settings.storage"),
        ("dev", TracingSettings(span_ttl_hours=0), "TracingArgs.settings.span_ttl_hours"),
    ],
)
def test_bad_arguments_fail_naming_the_input(
    profile: str, settings: TracingSettings, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        tracing.check(profile, settings)


# --- Component -------------------------------------------------------------------------------


def test_the_namespace_is_meshed_privileged_and_waits_for_the_control_plane() -> None:
    graph = _deploy("dev", TracingSettings())
    ns = graph.get(NAMESPACE, "tracing-namespace")
    control_plane = graph.get(CHART, "linkerd-control-plane")
    meta = ns.inputs["metadata"]
    assert meta["name"] == "tracing"
    assert meta["annotations"]["linkerd.io/inject"] == "enabled"
    assert meta["labels"]["pod-security.kubernetes.io/enforce"] == "privileged"
    assert graph.waits_for(ns, control_plane), f"{ns.urn} must wait for the control plane"
    for chart in (graph.get(CHART, "tracing-jaeger"), graph.get(CHART, "tracing-collector")):
        assert graph.waits_for(chart, ns), f"{chart.urn} must wait for its namespace"


def test_prod_storage_is_persistent_and_retained() -> None:
    graph = _deploy("prod", BADGER)
    claim = graph.get(PVC, "tracing-badger")
    assert claim.options["retainOnDelete"] is True, f"{claim.urn} must survive pulumi destroy"
    assert claim.inputs["metadata"]["name"] == tracing.JAEGER_BADGER_CLAIM
    assert claim.inputs["metadata"]["namespace"] == "tracing"
    assert claim.inputs["spec"] == {
        "accessModes": ["ReadWriteOnce"],
        "storageClassName": "fast-ssd",
        "resources": {"requests": {"storage": "50Gi"}},
    }

    jaeger = graph.get(CHART, "tracing-jaeger")
    values = jaeger.inputs["values"]
    (volume,) = values["jaeger"]["extraVolumes"]
    (mount,) = values["jaeger"]["extraVolumeMounts"]
    assert volume["persistentVolumeClaim"]["claimName"] == claim.inputs["metadata"]["name"]
    assert mount["name"] == volume["name"]
    badger = values["userconfig"]["extensions"]["jaeger_storage"]["backends"][tracing.JAEGER_STORE][
        "badger"
    ]
    for directory in badger["directories"].values():
        assert directory.startswith(mount["mountPath"] + "/")
    assert graph.waits_for(jaeger, claim), f"{jaeger.urn} must wait for {claim.urn}"


def test_a_claim_without_a_storage_class_uses_the_cluster_default() -> None:
    graph = _deploy("prod", TracingSettings(storage="badger"))
    assert "storageClassName" not in graph.get(PVC, "tracing-badger").inputs["spec"]


def test_memory_storage_creates_no_claim() -> None:
    graph = _deploy("dev", TracingSettings())
    assert graph.of_type(PVC) == []
    assert "extraVolumes" not in graph.get(CHART, "tracing-jaeger").inputs["values"]["jaeger"]


def test_the_charts_are_pinned_and_released_under_the_address_names() -> None:
    graph = _deploy("dev", TracingSettings())
    charts = graph.charts()
    for release, ref in (
        (tracing.JAEGER_RELEASE, versions.JAEGER),
        (tracing.COLLECTOR_RELEASE, versions.OTEL_COLLECTOR),
    ):
        inputs = charts[release].inputs
        assert (inputs["chart"], inputs["version"]) == (ref.chart, ref.version)
        assert inputs["repositoryOpts"]["repo"] == ref.repo
        assert inputs["namespace"] == "tracing"
        assert inputs["values"]["fullnameOverride"] == release


def test_the_component_values_are_the_pure_values() -> None:
    graph = _deploy("prod", BADGER, domain="mesh.example")
    charts = graph.charts()
    assert charts["otel-collector"].inputs["values"] == tracing.collector_values(
        "prod", BADGER.open_census, "mesh.example"
    )
    assert charts["jaeger"].inputs["values"] == tracing.jaeger_values("prod", BADGER)


def test_children_are_parented_and_named_after_the_component() -> None:
    graph = _deploy("prod", BADGER)
    component = graph.get("meshstack:tracing:Tracing", "tracing")
    children = [r for r in graph.resources if r.parent == component.urn]
    # The namespace's Linkerd policy (`tracing.policy`) is named after the component too.
    policy = [
        f"tracing-{role}-{name}"
        for kind, role in (
            ("Server", "server"),
            ("MeshTLSAuthentication", "meshtls"),
            ("NetworkAuthentication", "netauthn"),
            ("AuthorizationPolicy", "authz"),
        )
        for name in tracing.policy(True)[kind]
    ]
    assert sorted(r.name for r in children) == sorted(
        [
            "tracing-badger",
            "tracing-collector",
            "tracing-jaeger",
            "tracing-jaeger-otlp",
            "tracing-namespace",
            *policy,
        ]
    )


@pytest.mark.parametrize("open_census", [True, False])
def test_the_outputs_are_the_addresses(open_census: bool) -> None:
    graph = _deploy("dev", TracingSettings(open_census=open_census))
    at = tracing.addresses("cluster.local")
    assert graph.outputs["namespace"] == "tracing"
    assert graph.outputs["query_url"] == at.jaeger_query
    assert graph.outputs["endpoints"] == {
        "otlpGrpc": at.otlp_grpc,
        "otlpHttp": at.otlp_http,
        "openCensus": at.opencensus if open_census else "",
    }
