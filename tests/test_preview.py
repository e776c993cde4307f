"""A preview of a stack never deployed: what it can show, and what it cannot yet.

A v4 Chart whose values hold an unknown (an output of a resource the same `up` creates) is
registered with no children: the provider reports "Preview is incomplete" (pulumi-kubernetes
provider/pkg/provider/helm/v4/chart.go, `Construct`). In a fresh stack the certificates that
pulumi-tls makes are such unknowns. The Linkerd control plane and viz cannot do without them;
every other chart must stay renderable, so CI's preview and its policy pack see its objects.
"""

from __future__ import annotations

import runpy
from typing import Any

import pytest
from pulumi.runtime import mocks

from tests.graph import ROOT, Graph, StatefulMocks, record, stack_config, stack_names

# What pulumi's Python SDK sends for a value unknown during a preview (pulumi.runtime.rpc).
UNKNOWN = "04da6b54-80e4-46f7-96ec-b56ff0331ba9"
# The charts that take the stack's certificates, named in README and policy/README.md.
NEED_CERTIFICATES = {"linkerd-control-plane", "linkerd-viz"}


class FreshPreview(StatefulMocks):
    """The engine in a preview of a new stack: a resource to be created reports its inputs
    only, so everything pulumi-tls and pulumi-random would compute is unknown."""

    def new_resource(self, args: mocks.MockResourceArgs) -> tuple[str, dict[str, Any]]:
        if args.typ.startswith(("tls:", "random:")):
            return "", dict(args.inputs)
        return super().new_resource(args)


def _has_unknown(value: Any) -> bool:
    if value == UNKNOWN:
        return True
    if isinstance(value, dict):
        return any(_has_unknown(v) for v in value.values())
    if isinstance(value, list):
        return any(_has_unknown(v) for v in value)
    return False


@pytest.fixture(scope="module", params=stack_names())
def fresh(request: pytest.FixtureRequest) -> Graph:
    graph = record(
        lambda: runpy.run_path(str(ROOT / "__main__.py"), run_name="__main__"),
        stack=request.param,
        config=stack_config(request.param),
        engine=FreshPreview(),
        preview=True,
    )
    if graph.error is not None:
        raise graph.error
    return graph


def test_only_the_charts_that_take_certificates_wait_for_them(fresh: Graph) -> None:
    charts = fresh.charts()
    blind = {release for release, res in charts.items() if _has_unknown(res.raw_inputs)}
    assert blind == NEED_CERTIFICATES, f"a fresh preview cannot render {sorted(blind)}"
    assert len(charts) - len(blind) >= 6


def test_the_simulated_preview_really_hides_the_certificates(fresh: Graph) -> None:
    # The check above is only worth something if the certificates are unknown here.
    control_plane = fresh.charts()["linkerd-control-plane"].raw_inputs
    assert _has_unknown(control_plane["values"]["identityTrustAnchorsPEM"])
