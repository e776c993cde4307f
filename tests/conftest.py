"""Shared fixtures: the recorded graph of the real program for every stack file."""

from __future__ import annotations

import pytest

from tests.graph import Graph, run_program, stack_names


@pytest.fixture(scope="session")
def graphs() -> dict[str, Graph]:
    """The program run once per stack file (Pulumi.<stack>.yaml), as the CLI would run it."""
    out = {}
    for stack in stack_names():
        graph = run_program(stack)
        if graph.error is not None:
            raise graph.error
        out[stack] = graph
    return out


@pytest.fixture(scope="session")
def dev(graphs: dict[str, Graph]) -> Graph:
    return graphs["dev"]


@pytest.fixture(scope="session")
def prod(graphs: dict[str, Graph]) -> Graph:
    return graphs["prod"]
