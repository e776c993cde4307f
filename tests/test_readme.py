"""The READMEs' tables render as tables, every row with the header's cells."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
import yaml

from components import emojivoto
from tests.graph import ROOT
from tests.markdown import stray_rows, table_in, tables

DOCS = [ROOT / "README.md", ROOT / "policy" / "README.md"]


@pytest.mark.parametrize("path", DOCS, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_every_table_row_has_as_many_cells_as_its_header(path: Path) -> None:
    found = tables(path)
    assert found, f"{path.name} has no table"
    for table in found:
        (_, width), *rows = table.source_cells
        assert width == len(table.header) >= 2, table.section
        for line, cells in rows:
            assert cells == width, f"{path.name}:{line}: {cells} cells, the header has {width}"


@pytest.mark.parametrize("path", DOCS, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_no_table_row_is_cut_off_from_its_table(path: Path) -> None:
    # A blank line ends a table: the rows after it render as a paragraph of pipes.
    assert stray_rows(path) == []


def test_the_readme_documents_config_and_outputs_in_one_table_each() -> None:
    readme = ROOT / "README.md"
    assert table_in(readme, "Configure").header == ("key", "type", "default", "meaning")
    assert table_in(readme, "Outputs").header == ("name", "type", "secret", "meaning")


def test_the_jaeger_services_the_readme_promises_are_the_ones_the_spans_name() -> None:
    text = " ".join((ROOT / "README.md").read_text().split())
    m = re.search(r"Jaeger lists the services (.+?) \(", text)
    assert m, "README: no 'Jaeger lists the services ...' sentence"
    promised = set(re.findall(r"`([^`]+)`", m[1]))
    # The proxies' service.name: the control-plane chart's `proxy.tracing.traceServiceName`
    # default, which the stack leaves alone.
    charts = os.environ.get("MESHSTACK_CHARTS_DIR")
    proxy = {"linkerd-proxy"}
    if charts:
        values = yaml.safe_load(
            (Path(charts) / "linkerd-control-plane" / "values.yaml").read_text()
        )
        proxy = {values["proxy"]["tracing"]["traceServiceName"]}
    assert promised == set(emojivoto.TRACE_SERVICE_NAMES.values()) | proxy
