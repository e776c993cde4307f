"""Volumes that already exist: a size the cluster could not carry out is refused before any
resource, judged against the sizes the stack's last update exported.

Loki's claim comes from its StatefulSet's `volumeClaimTemplates`, which the API server never
changes (Pulumi replaces the StatefulSet instead, and the retained claim keeps its size; the
chart's resize is a Helm hook Pulumi never runs), so any new Loki size is refused. The Badger
claim is the stack's own PersistentVolumeClaim, which Kubernetes grows in place where the
StorageClass allows it and never shrinks, so only a smaller size is refused.
"""

from __future__ import annotations

import json
import runpy
from typing import Any

import pytest

from components import config as cfg
from tests.graph import ROOT, Graph, StatefulMocks, record, stack_config

LOKI_KEY = "meshstack:logging.storageSize"
BADGER_KEY = "meshstack:tracing.storageSize"


def parse(overrides: dict[str, Any], previous: dict[str, Any]) -> cfg.Settings:
    raw = {k: v if isinstance(v, str) else json.dumps(v) for k, v in overrides.items()}
    return cfg.parse_settings(raw, stack="test", previous=previous)


def loki(size: str, persistence: bool = True, enabled: bool = True) -> dict[str, Any]:
    return {
        "enableLogging": enabled,
        "logging": {"persistence": persistence, "storageSize": size},
    }


def badger(size: str, storage: str = "badger") -> dict[str, Any]:
    return {"tracing": {"storage": storage, "storageSize": size}}


def refused(overrides: dict[str, Any], previous: dict[str, Any], key: str) -> str:
    with pytest.raises(cfg.ConfigError) as caught:
        parse(overrides, previous)
    lines = [line for line in str(caught.value).splitlines() if line.startswith(f"{key}:")]
    assert len(lines) == 1, str(caught.value)
    return lines[0]


# --- Sizes (pure) ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("size", "size_bytes"),
    [("512Mi", 512 * 2**20), ("1Gi", 2**30), ("1024Mi", 2**30), ("100Gi", 100 * 2**30)],
)
def test_sizes_read_as_bytes(size: str, size_bytes: int) -> None:
    assert cfg.storage_bytes(size) == size_bytes


def test_a_tebibyte_is_more_than_a_thousand_gibibytes() -> None:
    assert cfg.storage_bytes("1Ti") > cfg.storage_bytes("1000Gi")


@pytest.mark.parametrize(
    ("overrides", "sizes"),
    [
        ({}, {"lokiStorageSize": "", "jaegerStorageSize": ""}),
        (
            {**loki("20Gi"), **badger("30Gi")},
            {"lokiStorageSize": "20Gi", "jaegerStorageSize": "30Gi"},
        ),
        # No volume: logs in an emptyDir, spans in memory, or the feature off.
        (loki("20Gi", persistence=False), {"lokiStorageSize": "", "jaegerStorageSize": ""}),
        (loki("20Gi", enabled=False), {"lokiStorageSize": "", "jaegerStorageSize": ""}),
        (
            {**badger("30Gi"), "enableTracing": False},
            {"lokiStorageSize": "", "jaegerStorageSize": ""},
        ),
    ],
)
def test_the_exported_sizes_are_the_volumes_the_stack_asks_for(
    overrides: dict[str, Any], sizes: dict[str, str]
) -> None:
    assert cfg.volume_sizes(parse(overrides, {})) == sizes


# --- Loki: its size never changes ------------------------------------------------------------


@pytest.mark.parametrize("size", ["20Gi", "5Gi", "10240Mi"])
def test_a_new_loki_size_is_refused_naming_the_key_the_size_it_has_and_the_fix(size: str) -> None:
    line = refused(loki(size), {"lokiStorageSize": "10Gi"}, LOKI_KEY)
    assert f'got "{size}"' in line
    assert "created at 10Gi" in line
    assert "set it back to 10Gi" in line
    assert "pulumi config set --path logging.storageSize 10Gi" in line
    assert "Resize" in line


@pytest.mark.parametrize(
    ("overrides", "previous"),
    [
        (loki("10Gi"), {"lokiStorageSize": "10Gi"}),  # unchanged
        (loki("20Gi"), {"lokiStorageSize": ""}),  # the last update ran Loki on an emptyDir
        (loki("20Gi"), {}),  # a stack never updated
        (loki("20Gi", persistence=False), {"lokiStorageSize": "10Gi"}),  # to an emptyDir
        (loki("20Gi", enabled=False), {"lokiStorageSize": "10Gi"}),
        # Something that is no size (an output of another shape) is no deployed volume.
        (loki("20Gi"), {"lokiStorageSize": {"size": "10Gi"}}),
    ],
    ids=["unchanged", "was-empty-dir", "first-update", "to-empty-dir", "logging-off", "garbled"],
)
def test_loki_sizes_that_change_no_existing_volume_pass(
    overrides: dict[str, Any], previous: dict[str, Any]
) -> None:
    parse(overrides, previous)


# --- Badger: its claim grows, never shrinks --------------------------------------------------


@pytest.mark.parametrize("size", ["20Gi", "51199Mi"])
def test_a_smaller_badger_volume_is_refused_naming_the_key_and_the_size_it_has(size: str) -> None:
    line = refused(badger(size), {"jaegerStorageSize": "50Gi"}, BADGER_KEY)
    assert f'got "{size}"' in line
    assert "is 50Gi" in line and "never shrinks" in line
    assert "set 50Gi or more" in line


@pytest.mark.parametrize(
    ("overrides", "previous"),
    [
        (badger("50Gi"), {"jaegerStorageSize": "50Gi"}),
        (badger("1Ti"), {"jaegerStorageSize": "50Gi"}),  # grown in place by Kubernetes
        (badger("51200Mi"), {"jaegerStorageSize": "50Gi"}),  # the same size, other units
        (badger("5Gi"), {"jaegerStorageSize": ""}),  # spans were in memory
        (badger("5Gi", storage="memory"), {"jaegerStorageSize": "50Gi"}),
    ],
    ids=["unchanged", "grown", "same-in-mebibytes", "was-memory", "to-memory"],
)
def test_badger_sizes_kubernetes_can_carry_out_pass(
    overrides: dict[str, Any], previous: dict[str, Any]
) -> None:
    parse(overrides, previous)


def test_both_volumes_are_reported_at_once() -> None:
    with pytest.raises(cfg.ConfigError) as caught:
        parse(
            {**loki("20Gi"), **badger("1Gi")},
            {"lokiStorageSize": "10Gi", "jaegerStorageSize": "10Gi"},
        )
    keys = sorted(line.split(": ", 1)[0] for line in str(caught.value).splitlines())
    assert keys == [LOKI_KEY, BADGER_KEY]


# --- The program: the outputs of one `up` judge the next -------------------------------------


class Engine(StatefulMocks):
    """A stack whose last update exported `previous`."""

    def __init__(self, previous: dict[str, Any]) -> None:
        self.previous = previous


def up(stack: str, overrides: dict[str, Any], previous: dict[str, Any]) -> Graph:
    return record(
        lambda: runpy.run_path(str(ROOT / "__main__.py"), run_name="__main__"),
        stack=stack,
        config=stack_config(stack, overrides),
        engine=Engine(previous),
    )


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_the_stack_exports_the_sizes_of_its_volumes(graphs: dict[str, Graph], stack: str) -> None:
    settings = cfg.parse_settings(
        {k: v if isinstance(v, str) else json.dumps(v) for k, v in stack_config(stack).items()},
        stack=stack,
    )
    outputs = graphs[stack].outputs
    assert {k: outputs[k] for k in cfg.volume_sizes(settings)} == cfg.volume_sizes(settings)


def test_the_prod_stack_file_asks_for_both_volumes(prod: Graph) -> None:
    assert prod.outputs["lokiStorageSize"] == "100Gi"
    assert prod.outputs["jaegerStorageSize"] == "50Gi"


@pytest.mark.parametrize(
    ("overrides", "key"),
    [
        ({"logging": {"retention": "720h", "persistence": True, "storageSize": "200Gi"}}, LOKI_KEY),
        (
            {
                "tracing": {
                    "openCensus": False,
                    "storage": "badger",
                    "storageSize": "20Gi",
                    "spanTtl": "168h",
                }
            },
            BADGER_KEY,
        ),
    ],
    ids=["loki-resized", "badger-shrunk"],
)
def test_a_resize_the_cluster_cannot_carry_out_stops_the_next_up_before_any_resource(
    prod: Graph, overrides: dict[str, Any], key: str
) -> None:
    # The prod stack as deployed (its outputs), then an `up` with one size changed.
    graph = up("prod", overrides, prod.outputs)
    assert graph.error is not None
    assert type(graph.error).__name__ == "RunError"
    assert f"{key}:" in str(graph.error)
    assert graph.resources == []


def test_an_up_that_keeps_the_sizes_or_grows_badger_goes_ahead(prod: Graph) -> None:
    grown = {"tracing": {"openCensus": False, "storage": "badger", "storageSize": "80Gi"}}
    for overrides in ({}, grown):
        graph = up("prod", overrides, prod.outputs)
        assert graph.error is None, graph.error
        claim = graph.get("kubernetes:core/v1:PersistentVolumeClaim", "tracing-badger")
        size = claim.inputs["spec"]["resources"]["requests"]["storage"]
        assert size == (grown["tracing"]["storageSize"] if overrides else "50Gi")
