"""Counts in sentences (``1 host``, ``2 hosts``) and plain-text tables. Pure; shared by the
CLI, the events, the preflight and the TUI."""

from __future__ import annotations

from collections.abc import Sequence


def count_of(count: int, noun: str, plural: str | None = None) -> str:
    """``count`` and ``noun`` in the right number: ``count_of(1, "host") == "1 host"``.

    ``plural`` for nouns that do not just take an ``s``: ``count_of(2, "was", "were")``.
    """
    return f"{count} {noun if count == 1 else plural or noun + 's'}"


def format_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    """Columns aligned on two spaces; the last column is not padded (no trailing blanks)."""
    widths = [len(header) for header in headers]
    for row in rows:
        for index, cell in enumerate(row):
            widths[index] = max(widths[index], len(cell))
    lines = []
    for row in [list(headers), *map(list, rows)]:
        cells = [cell.ljust(width) for cell, width in zip(row[:-1], widths, strict=False)] + row[-1:]
        lines.append("  ".join(cells).rstrip())
    return lines
