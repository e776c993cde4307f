"""The recorded graphs of the real program, shared with tests/ (same fixtures, same stacks)."""

from tests.conftest import dev, graphs, prod

__all__ = ["dev", "graphs", "prod"]
