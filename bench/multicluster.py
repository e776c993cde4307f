"""Multicluster figures for `make bench`: evaluating one cluster stack linked to N - 1 peers
(N = 2, 5, 10 clusters, every pair linked), under mocks against the peers' recorded outputs,
and the pods, requests and limits the multicluster components add to one cluster.

The footprint is read from what the program hands the chart (`controllerDefaults.resources`,
`localServiceMirror.resources`, the gateway's pause container from the chart's transform) and
the proxy's size from the control plane's values, per pod the chart runs: a gateway, the local
service mirror, one controller per link, each with a proxy.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass
from typing import Any

from bench.footprint import cores, cpu_millis, gib, memory_bytes
from components import multicluster as mcl
from components import sizing

TRUST = "organization/meshstack-trust/trust"
SIZES = (2, 5, 10)


def _settings(index: int, peers: list[int]) -> dict[str, Any]:
    return {
        "enableMulticluster": True,
        "multicluster": {
            "clusterName": f"c{index}",
            "trustStack": TRUST,
            "apiServerAddress": f"https://c{index}-control-plane:6443",
            "podCidr": f"10.{2 * index}.0.0/16",
            "serviceCidr": f"10.{2 * index + 1}.0.0/16",
            "gateway": {"serviceType": "NodePort", "address": f"172.18.0.{index + 2}"},
            "links": [{"stack": f"organization/meshstack/c{p}", "mode": "gateway"} for p in peers],
        },
    }


@dataclass(frozen=True)
class Evaluation:
    clusters: int
    seconds: float
    """Median wall time of one stack's evaluation linked to the other N - 1."""
    resources: int
    links: int


def evaluate(runs: int = 3) -> list[Evaluation]:
    from tests.graph import Graph, run_program, run_trust

    trust = run_trust()
    # Each peer as after its first `up` (no links): what the measured stack reads.
    first: dict[str, Graph] = {TRUST: trust}
    for i in range(1, max(SIZES)):
        peer = run_program("dev", _settings(i, []), peers={TRUST: trust}, as_stack=f"c{i}")
        if peer.error is not None:
            raise peer.error
        first[f"organization/meshstack/c{i}"] = peer
    out = []
    for n in SIZES:
        peers = list(range(1, n))
        times: list[float] = []
        for _ in range(runs):
            start = time.perf_counter()
            graph = run_program("dev", _settings(0, peers), peers=first, as_stack="c0")
            times.append(time.perf_counter() - start)
            if graph.error is not None:
                raise graph.error
        links = len(graph.of_type("kubernetes:multicluster.linkerd.io/v1alpha3:Link"))
        out.append(Evaluation(n, statistics.median(times), len(graph.resources), links))
    return out


@dataclass(frozen=True)
class Footprint:
    links: int
    pods: int
    containers: int
    cpu_request_m: int
    memory_request_b: int
    cpu_limit_m: int
    memory_limit_b: int


def _sum(resources: list[dict[str, Any]]) -> tuple[int, int, int, int]:
    return (
        sum(cpu_millis(r["requests"]["cpu"]) for r in resources),
        sum(memory_bytes(r["requests"]["memory"]) for r in resources),
        sum(cpu_millis(r["limits"]["cpu"]) for r in resources),
        sum(memory_bytes(r["limits"]["memory"]) for r in resources),
    )


def footprint(profile: str, links: int) -> Footprint:
    """What the extension adds to one cluster with `links` links, from the values the program
    gives the chart (a controller per link, the local mirror, the gateway) and a proxy each."""
    values = mcl.chart_values(
        "cluster.local",
        True,
        "NodePort",
        30143,
        30191,
        [f"c{i}" for i in range(links)],
        [],
        False,
        profile,
    )
    pods = mcl.footprint(links, gateway=True)
    proxy = sizing.k8s_resources(profile, "linkerd-proxy")
    gateway = mcl.gateway_pause_resources(
        {
            "kind": "Deployment",
            "metadata": {"name": mcl.GATEWAY},
            "spec": {"template": {"spec": {"containers": [{"name": "pause"}]}}},
        }
    )["spec"]["template"]["spec"]["containers"][0]["resources"]
    resources = (
        [values["controllerDefaults"]["resources"], proxy] * pods["controllers"]
        + [values["localServiceMirror"]["resources"], proxy] * pods["localServiceMirror"]
        + [gateway, proxy] * pods["gateway"]
    )
    return Footprint(links, sum(pods.values()), len(resources), *_sum(resources))


def report(evaluations: list[Evaluation]) -> list[str]:
    out = [
        "## Multicluster",
        "",
        "One cluster stack evaluated under mocks, linked to every other cluster (N - 1 links),",
        "its peers' outputs recorded beforehand (median of the runs, in this process):",
        "",
        "| clusters (N) | links | resources registered | evaluation |",
        "| --- | --- | --- | --- |",
    ]
    out += [
        f"| {e.clusters} | {e.links} | {e.resources} | {e.seconds:.3f} s |" for e in evaluations
    ]
    out += [
        "",
        "What the multicluster components add to one cluster (gateway, local service mirror, one",
        "controller per link; each pod with its proxy):",
        "",
        "| profile | links | pods | containers | CPU requests (cores) | memory requests | "
        "CPU limits (cores) | memory limits |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for profile in ("dev", "prod"):
        for n in SIZES:
            f = footprint(profile, n - 1)
            out.append(
                f"| {profile} | {f.links} | {f.pods} | {f.containers} | "
                f"{cores(f.cpu_request_m)} | {gib(f.memory_request_b)} | "
                f"{cores(f.cpu_limit_m)} | {gib(f.memory_limit_b)} |"
            )
    out.append("")
    return out
