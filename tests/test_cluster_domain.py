"""A cluster whose DNS domain is not `cluster.local`: every name the stack writes follows it.

Kubernetes lets a cluster pick its DNS domain, and Linkerd's trust domain follows it here. A
component that spells `cluster.local` itself works on every default cluster and breaks only
on such a one, so each stack file runs through the whole program with another domain and no
input, output or certificate request may name the default.
"""

from __future__ import annotations

import re

import pytest

from tests.graph import Graph, run_program, stack_names, strings

DOMAIN = "corp.internal"
# `<svc>.<ns>.svc.<domain>`, as any component writes an in-cluster name.
SERVICE_NAME = re.compile(r"\b[a-z0-9-]+\.[a-z0-9-]+\.svc\.([a-z0-9-]+(?:\.[a-z0-9-]+)*)")


@pytest.fixture(scope="module", params=stack_names())
def graph(request: pytest.FixtureRequest) -> Graph:
    result = run_program(request.param, {"clusterDomain": DOMAIN})
    if result.error is not None:
        raise result.error
    return result


def test_no_input_or_output_names_the_default_domain(graph: Graph) -> None:
    found = sorted(
        {
            f"{r.urn}: {text[:120]!r}"
            for r in graph.resources
            for text in strings(r.inputs)
            if "cluster.local" in text or r"cluster\.local" in text
        }
        | {
            f"output {k}: {text!r}"
            for k, v in graph.outputs.items()
            for text in strings(v)
            if "cluster.local" in text
        }
    )
    assert not found, "\n".join(found)


def test_every_in_cluster_name_and_the_trust_domain_use_the_configured_domain(
    graph: Graph,
) -> None:
    names = [
        m[1]
        for r in graph.resources
        for text in strings(r.inputs)
        for m in SERVICE_NAME.finditer(text)
    ]
    assert len(names) >= 5
    assert set(names) == {DOMAIN}
    assert graph.outputs["trustDomain"] == DOMAIN
    control_plane = graph.charts()["linkerd-control-plane"].inputs["values"]
    assert control_plane["identityTrustDomain"] == DOMAIN
    assert control_plane["clusterDomain"] == DOMAIN
