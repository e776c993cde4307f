"""README tables as a renderer reads them: CommonMark plus GFM tables (markdown-it-py).

A line that looks like a row but sits after a blank line is not part of the table above it; a
row with more cells than the header loses the extra ones and a shorter one is padded. Reading
the rendered tables (and the source cells of each row) is what shows either.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path

from markdown_it import MarkdownIt
from markdown_it.rules_block.table import escapedSplit
from markdown_it.token import Token


@dataclass(frozen=True)
class Cell:
    text: str
    """The cell as a reader sees it: inline markup dropped (`a` / `b` → a / b)."""
    code: tuple[str, ...]
    """Every code span in the cell, e.g. the key names of a config row."""
    strong: bool
    """The cell holds bold text (e.g. **yes**)."""


@dataclass(frozen=True)
class Table:
    section: str
    """The heading the table sits under."""
    line: int
    """1-based line of the header row in the source."""
    header: tuple[str, ...]
    rows: tuple[tuple[Cell, ...], ...]
    source_cells: tuple[tuple[int, int], ...]
    """(1-based line, number of cells written in the source) for the header and every row."""

    def column(self, name: str) -> int:
        return self.header.index(name)


def _parser() -> MarkdownIt:
    return MarkdownIt("commonmark").enable("table")


def _cells_in_source(line: str) -> int:
    # The split markdown-it applies to a row: escaped pipes stay in a cell, and one leading and
    # one trailing pipe do not open a cell.
    cells = escapedSplit(line.strip())
    if cells and cells[0] == "":
        cells.pop(0)
    if cells and cells[-1] == "":
        cells.pop()
    return len(cells)


def _cell(inline: Token) -> Cell:
    children = inline.children or []
    text = "".join(t.content for t in children if t.type in ("text", "code_inline"))
    code = tuple(t.content for t in children if t.type == "code_inline")
    return Cell(text.strip(), code, any(t.type == "strong_open" for t in children))


@cache
def tables(path: Path) -> tuple[Table, ...]:
    source = path.read_text()
    lines = source.splitlines()
    tokens = _parser().parse(source)
    found: list[Table] = []
    section = ""
    i = 0
    while i < len(tokens):
        token = tokens[i]
        if token.type == "heading_open":
            section = tokens[i + 1].content
        if token.type != "table_open":
            i += 1
            continue
        header: tuple[str, ...] = ()
        rows: list[tuple[Cell, ...]] = []
        counts: list[tuple[int, int]] = []
        row: list[Cell] = []
        start = token.map[0] + 1 if token.map else 0
        i += 1
        while tokens[i].type != "table_close":
            t = tokens[i]
            if t.type == "tr_open" and t.map:
                counts.append((t.map[0] + 1, _cells_in_source(lines[t.map[0]])))
                row = []
            elif t.type == "inline":
                row.append(_cell(t))
            elif t.type == "tr_close":
                if not header:
                    header = tuple(c.text for c in row)
                else:
                    rows.append(tuple(row))
            i += 1
        found.append(Table(section, start, header, tuple(rows), tuple(counts)))
    return tuple(found)


def table_in(path: Path, section: str) -> Table:
    """The one table under the heading `section`."""
    matches = [t for t in tables(path) if t.section == section]
    assert len(matches) == 1, f"{path.name}: {len(matches)} tables under `{section}`"
    return matches[0]


def stray_rows(path: Path) -> list[tuple[int, str]]:
    """Lines that look like table rows but render as paragraphs: cut off from their table."""
    tokens = _parser().parse(path.read_text())
    return [
        (t.map[0] + 1 if t.map else 0, tokens[i + 1].content.splitlines()[0])
        for i, t in enumerate(tokens)
        if t.type == "paragraph_open" and tokens[i + 1].content.lstrip().startswith("|")
    ]
