"""A table that draws only the rows on screen: thousands of hosts cost what forty do.

Textual's DataTable keeps a styled copy of every row; a 5,000-host deployment
that changes twice a second would rebuild all of them. This table keeps the row
values as given and formats a row only when :meth:`render_line` asks for it
(the Line API), so a refresh costs the height of the widget, not the fleet.
An owner that can say what a row's line depends on (``drawn_as``) has each line
kept once drawn (a few pages of them), so scrolling back and redraws reuse it.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from typing import ClassVar, Generic, Literal, TypeVar

from rich.cells import cell_len
from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual import events
from textual.binding import Binding, BindingType
from textual.geometry import Region, Size
from textual.message import Message
from textual.scroll_view import ScrollView
from textual.strip import Strip

from tui.widgets.cells import rich_style

RowT = TypeVar("RowT")

DRAWN_ROWS_KEPT = 512  # lines kept drawn: several pages of rows, at a few kilobytes each


@dataclass(frozen=True, slots=True)
class Column:
    """A column: its title, its width in cells (0: whatever is left), and its alignment."""

    title: str
    width: int = 0
    justify: Literal["left", "right"] = "left"


class VirtualTable(ScrollView, Generic[RowT], can_focus=True):
    """Rows of ``RowT`` under a fixed header line, with a cursor.

    The owner sets :attr:`rows` (attributes down) and hears :class:`RowHighlighted`
    and :class:`RowSelected` (messages up). The cursor follows its row's key across
    updates, so a row that moves as the list refreshes stays selected.
    """

    DEFAULT_CSS = """
    VirtualTable {
        height: 1fr;
        background: $surface;
        scrollbar-size-horizontal: 0;
        & > .virtual-table--header { text-style: bold; background: $panel; }
        & > .virtual-table--cursor { background: $block-cursor-blurred-background; }
        &:focus > .virtual-table--cursor { background: $block-cursor-background; text-style: bold; }
        & > .virtual-table--empty { color: $text-muted; text-style: italic; }
    }
    """

    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "virtual-table--row",
        "virtual-table--header",
        "virtual-table--cursor",
        "virtual-table--empty",
    }

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("up", "cursor(-1)", "Up", show=False),
        Binding("down", "cursor(1)", "Down", show=False),
        Binding("pageup", "page(-1)", "Page up", show=False),
        Binding("pagedown", "page(1)", "Page down", show=False),
        Binding("home", "edge(-1)", "First", show=False),
        Binding("end", "edge(1)", "Last", show=False),
        Binding("enter", "select", "Open", show=True),
    ]

    class _RowMessage(Message):
        """Something happened to the row with ``key`` of ``table``."""

        def __init__(self, table: VirtualTable[object], key: Hashable) -> None:
            super().__init__()
            self.table = table
            self.key = key

        @property
        def control(self) -> VirtualTable[object]:
            return self.table

    class RowHighlighted(_RowMessage):
        """The cursor moved to the row with ``key``."""

    class RowSelected(_RowMessage):
        """The row with ``key`` was chosen (Enter, or a click on the highlighted row)."""

    def __init__(
        self,
        columns: Sequence[Column],
        format_row: Callable[[RowT], Sequence[Text]],
        key_of: Callable[[RowT], Hashable],
        *,
        drawn_as: Callable[[RowT], Hashable] | None = None,
        empty_text: str = "nothing to show",
        name: str | None = None,
        id: str | None = None,
        classes: str | None = None,
    ) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self.columns = tuple(columns)
        self._format_row = format_row
        self._key_of = key_of
        # What a row's line depends on, as a key (e.g. a host, and the time now while it runs),
        # when the owner knows: then lines are kept once drawn. None: every line is drawn anew.
        self._drawn_as = drawn_as
        self._drawn: dict[Hashable, Strip] = {}
        self.empty_text = empty_text
        self._rows: Sequence[RowT] = ()
        self._cursor = 0
        self._cursor_key: Hashable | None = None

    # ---- attributes set by the owner ------------------------------------------------

    @property
    def rows(self) -> Sequence[RowT]:
        return self._rows

    @rows.setter
    def rows(self, rows: Sequence[RowT]) -> None:
        if rows is self._rows:
            return  # the same sequence again (rows are values, never changed in place)
        old, self._rows = self._rows, rows
        # Keep the cursor on its row when the row is still there; O(n) only when it
        # moved, which is rare (rows keep their plan order).
        if self._cursor_key is not None and not (
            self._cursor < len(rows) and self._key_of(rows[self._cursor]) == self._cursor_key
        ):
            for index, row in enumerate(rows):
                if self._key_of(row) == self._cursor_key:
                    self._cursor = index
                    break
        self._cursor = max(0, min(self._cursor, len(rows) - 1))
        self._cursor_key = self._key_of(rows[self._cursor]) if rows else None
        self.virtual_size = Size(self.size.width, len(rows) + 1)
        top = int(self.scroll_offset.y)
        self._scroll_cursor_into_view()
        if len(old) != len(rows) or int(self.scroll_offset.y) != top or not self.size.height:
            self.refresh()
            return
        # Repaint only the visible rows that changed (rows are values: == compares them; a
        # poll hands back the very same object for a row that did not change).
        width = self.scrollable_content_region.width
        for y in range(1, self.scrollable_content_region.height):
            index = top + y - 1
            if index >= len(rows):
                break
            if (old[index] is not rows[index] and old[index] != rows[index]) or index == self._cursor:
                self.refresh(Region(0, y, width, 1))

    @property
    def cursor_key(self) -> Hashable | None:
        return self._cursor_key

    def refresh_rows(self, which: Callable[[RowT], bool] | None = None) -> None:
        """Redraw the visible rows (all, or those ``which`` picks) drawn from more than their values
        (e.g. the clock moved)."""
        if which is None:
            self.refresh()
            return
        width = self.scrollable_content_region.width
        top = int(self.scroll_offset.y)
        for y in range(1, self.scrollable_content_region.height):
            index = top + y - 1
            if index >= len(self._rows):
                break
            if which(self._rows[index]):
                self.refresh(Region(0, y, width, 1))

    # ---- keys and mouse -------------------------------------------------------------

    def action_cursor(self, delta: int) -> None:
        self._move_cursor(self._cursor + delta)

    def action_page(self, direction: int) -> None:
        self._move_cursor(self._cursor + direction * max(1, self.scrollable_content_region.height - 1))

    def action_edge(self, direction: int) -> None:
        self._move_cursor(0 if direction < 0 else len(self._rows) - 1)

    def action_select(self) -> None:
        if self._rows:
            self.post_message(self.RowSelected(self, self._key_of(self._rows[self._cursor])))  # type: ignore[arg-type]

    def on_click(self, event: events.Click) -> None:
        if event.y < 1:
            return
        index = int(self.scroll_offset.y) + event.y - 1
        if not 0 <= index < len(self._rows):
            return
        was_there = index == self._cursor
        self._move_cursor(index)
        if was_there or event.chain > 1:
            self.action_select()

    def _move_cursor(self, index: int) -> None:
        if not self._rows:
            return
        index = max(0, min(index, len(self._rows) - 1))
        moved = index != self._cursor
        self._cursor = index
        self._cursor_key = self._key_of(self._rows[index])
        self._scroll_cursor_into_view()
        self.refresh()
        if moved:
            self.post_message(self.RowHighlighted(self, self._cursor_key))  # type: ignore[arg-type]

    def _scroll_cursor_into_view(self) -> None:
        visible = max(1, self.scrollable_content_region.height - 1)
        top = int(self.scroll_offset.y)
        if self._cursor < top:
            self.scroll_to(y=self._cursor, animate=False, immediate=True)
        elif self._cursor >= top + visible:
            self.scroll_to(y=self._cursor - visible + 1, animate=False, immediate=True)

    def on_resize(self, event: events.Resize) -> None:
        self.virtual_size = Size(event.size.width, len(self._rows) + 1)

    # ---- drawing --------------------------------------------------------------------

    def render_line(self, y: int) -> Strip:
        width = self.scrollable_content_region.width
        base = self.get_component_rich_style("virtual-table--row")  # cached between refreshes
        if y == 0:
            header = [Text(column.title) for column in self.columns]
            return self._strip(header, width, base + self.get_component_rich_style("virtual-table--header"))
        index = int(self.scroll_offset.y) + y - 1
        if not self._rows:
            if y == 1:
                style = base + self.get_component_rich_style("virtual-table--empty")
                return Strip([Segment(self.empty_text[:width].ljust(width), style)], width)
            return Strip.blank(width, base)
        if index >= len(self._rows):
            return Strip.blank(width, base)
        row = self._rows[index]
        cursor = (
            self.get_component_rich_style("virtual-table--cursor", partial=True)
            if index == self._cursor
            else None
        )
        if self._drawn_as is None:
            return self._draw(row, cursor, width, base)
        key = (self._drawn_as(row), cursor, width, base)
        strip = self._drawn.get(key)
        if strip is None:
            strip = self._draw(row, cursor, width, base)
            if len(self._drawn) >= DRAWN_ROWS_KEPT:
                del self._drawn[next(iter(self._drawn))]  # the oldest
            self._drawn[key] = strip
        return strip

    def _draw(self, row: RowT, cursor: Style | None, width: int, base: Style) -> Strip:
        strip = self._strip(self._format_row(row), width, base)
        if cursor is None:
            return strip
        return Strip(list(Segment.apply_style(strip, post_style=_background_only(cursor))), width)

    def _strip(self, cells: Sequence[Text], width: int, style: Style) -> Strip:
        segments: list[Segment] = []
        used = 0
        for position, (column, cell) in enumerate(zip(self.columns, cells, strict=False)):
            last = position == len(self.columns) - 1
            room = width - used if last or column.width == 0 else column.width
            room = max(0, min(room, width - used))
            if room == 0:
                break
            pieces = _cell_segments(cell, style) if cell_len(cell.plain) <= room else None
            if pieces is None:  # too long (cut with an ellipsis), or spans that overlap: Rich draws it
                piece = cell.copy()
                piece.no_wrap = True
                piece.truncate(room, overflow="ellipsis")
                # (Rich leaves the text's own style out of a text without spans: added here.)
                own = style + rich_style(piece.style) if piece.style else style
                pieces = list(Segment.apply_style(piece.render(self.app.console), own))
            padding = Segment(" " * (room - Segment.get_line_length(pieces)), style)
            if column.justify == "right":
                segments.append(padding)
                segments.extend(pieces)
            else:
                segments.extend(pieces)
                segments.append(padding)
            used += room
            if not last and used < width:
                segments.append(Segment(" ", style))
                used += 1
        if used < width:
            segments.append(Segment(" " * (width - used), style))
        return Strip(segments, width)


def _cell_segments(cell: Text, base: Style) -> list[Segment] | None:
    """A one-line cell's segments, drawn here rather than by Rich (a table line is eight
    cells, and Rich's general drawing would be most of the time a page of the list takes).
    None for what Rich must draw: spans that overlap."""
    plain = cell.plain
    style = base + rich_style(cell.style) if cell.style else base
    segments = []
    at = 0
    for span in sorted(cell.spans):
        if span.start < at:
            return None
        if span.start > at:
            segments.append(Segment(plain[at : span.start], style))
        segments.append(Segment(plain[span.start : span.end], style + rich_style(span.style)))
        at = span.end
    if at < len(plain) or not segments:
        segments.append(Segment(plain[at:], style))
    return segments


def _background_only(style: Style) -> Style:
    """The cursor keeps each cell's own colour (state colours stay readable) and marks the row."""
    return Style(bgcolor=style.bgcolor, bold=style.bold, reverse=style.reverse)
