"""Table cells shared by the lists of deployments: a status with its symbol, host counts with theirs;
and the Rich style of a style named in text, for widgets that draw their own lines."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import lru_cache
from typing import Any

from rich.cells import cell_len
from rich.style import Style
from rich.text import Text
from textual.widgets import DataTable

from deployer.core.results import DeploymentStatus, HostStatus
from tui.glyphs import DEPLOYMENT_GLYPHS, outcome_counts


@lru_cache(maxsize=256)
def rich_style(style: str | Style) -> Style:
    """``style`` as a Style, parsed once: a widget drawing thousands of cells asks again and again."""
    return style if isinstance(style, Style) else Style.parse(style)


def status_cell(status: DeploymentStatus) -> Text:
    glyph = DEPLOYMENT_GLYPHS[status]
    return Text(f"{glyph.symbol} {glyph.label}", style=glyph.style)


def counts_cell(counts: Mapping[HostStatus, int]) -> Text:
    text = Text()
    for index, (piece, style) in enumerate(outcome_counts(counts)):
        if index:
            text.append(" ")
        text.append(piece, style=style)
    return text


def fill_table(
    table: DataTable[Any],
    headers: Sequence[str],
    rows: Sequence[Sequence[Text | str]],
    keys: Sequence[str],
) -> None:
    """Replace a DataTable's columns and rows, each column as wide as its widest cell.

    The widths are measured here rather than left to DataTable's automatic widths,
    which are worked out later, on idle, and can leave rows drawn at the headers' widths.
    """
    widths = [len(header) for header in headers]
    for row in rows:
        for index, cell in enumerate(row):
            width = cell.cell_len if isinstance(cell, Text) else cell_len(cell)
            widths[index] = max(widths[index], width)
    table.clear(columns=True)
    for header, width in zip(headers, widths, strict=True):
        table.add_column(header, width=width, key=header)
    for row, key in zip(rows, keys, strict=True):
        table.add_row(*row, key=key)
