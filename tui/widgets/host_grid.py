"""A grid of hosts, one symbol each, coloured by state: only the visible rows are drawn."""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from rich.segment import Segment
from textual import events
from textual.geometry import Region, Size
from textual.message import Message
from textual.scroll_view import ScrollView
from textual.strip import Strip

from tui.glyphs import host_glyph
from tui.model import ShownHost
from tui.widgets.cells import rich_style

CELL_WIDTH = 2  # the symbol and a space


class HostGrid(ScrollView, can_focus=False):
    """Hosts laid out left to right, top to bottom, in the order given (plan order).

    Each host is a symbol (see :mod:`tui.model`); a running host shows its step's
    number. The owner sets :attr:`hosts`; a click on a host posts :class:`HostClicked`.
    Given ``host_count``, the grid has the size of that many hosts (blank) until they
    come: their coming then repaints it without a new layout of the screen.
    """

    DEFAULT_CSS = """
    HostGrid {
        height: auto;
        min-height: 1;
        scrollbar-size-vertical: 1;
        overflow-x: hidden;
    }
    """

    COMPONENT_CLASSES: ClassVar[set[str]] = {"host-grid--cell"}

    class HostClicked(Message):
        def __init__(self, name: str) -> None:
            super().__init__()
            self.name = name

    def __init__(self, *, host_count: int = 0, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self._hosts: Sequence[ShownHost] = ()
        self._host_count = host_count

    @property
    def hosts(self) -> Sequence[ShownHost]:
        return self._hosts

    @hosts.setter
    def hosts(self, hosts: Sequence[ShownHost]) -> None:
        old, self._hosts = self._hosts, hosts
        # Before the first layout the width is unknown: on_resize sizes it.
        if hosts is old or not self.size.width:
            return
        if len(old) != len(hosts):
            self._update_virtual_size(self.scrollable_content_region.width)
            self.refresh()
            return
        # Repaint only the visible rows whose hosts are drawn differently now: between two
        # reads of a deployment, most rows (done or pending waves) have not changed.
        width, columns = self.scrollable_content_region.width, self.columns
        top = int(self.scroll_offset.y)
        for y in range(self.scrollable_content_region.height):
            start = (top + y) * columns
            if start >= len(hosts):
                break
            for before, after in zip(
                old[start : start + columns], hosts[start : start + columns], strict=True
            ):
                if before.status is not after.status or before.step is not after.step:
                    self.refresh(Region(0, y, width, 1))
                    break

    @property
    def columns(self) -> int:
        return max(1, self.scrollable_content_region.width // CELL_WIDTH)

    def _rows_at(self, width: int) -> int:
        return -(-(len(self._hosts) or self._host_count) // max(1, width // CELL_WIDTH))

    def _update_virtual_size(self, width: int) -> None:
        size = Size(width, self._rows_at(width))
        if size != self.virtual_size:
            self.virtual_size = size
            # An auto height follows the number of rows, and the scrollbar the height.
            self.refresh(layout=True)

    def get_content_height(self, container: Size, viewport: Size, width: int) -> int:
        return max(1, self._rows_at(width))

    def on_resize(self, event: events.Resize) -> None:
        self._update_virtual_size(self.scrollable_content_region.width)

    def render_line(self, y: int) -> Strip:
        width = self.scrollable_content_region.width
        # The widget's own colours, cached between refreshes (self.rich_style walks the DOM).
        base = self.get_component_rich_style("host-grid--cell")
        columns = self.columns
        start = (int(self.scroll_offset.y) + y) * columns
        members = self._hosts[start : start + columns]
        if not members:
            return Strip.blank(width, base)
        # One segment per run of hosts drawn alike: a row of 75 finished hosts is one segment.
        segments = []
        run_style = ""
        run: list[str] = []
        for host in members:
            glyph = host_glyph(host.status, host.step, host.staged)
            if glyph.style != run_style and run:
                segments.append(Segment(" ".join(run) + " ", base + rich_style(run_style)))
                run = []
            run_style = glyph.style
            run.append(glyph.symbol)
        segments.append(Segment(" ".join(run) + " ", base + rich_style(run_style)))
        used = len(members) * CELL_WIDTH
        if used < width:
            segments.append(Segment(" " * (width - used), base))
        return Strip(segments, max(width, used)) if used <= width else Strip(segments, used).crop(0, width)

    def host_at(self, x: int, y: int) -> ShownHost | None:
        """The host drawn at (x, y) of the widget's content, if any."""
        column = x // CELL_WIDTH
        if column >= self.columns:
            return None
        index = (int(self.scroll_offset.y) + y) * self.columns + column
        return self._hosts[index] if 0 <= index < len(self._hosts) else None

    def on_click(self, event: events.Click) -> None:
        host = self.host_at(event.x, event.y)
        if host is not None:
            self.post_message(self.HostClicked(host.name))
