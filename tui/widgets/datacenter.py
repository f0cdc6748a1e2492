"""One datacenter of a deployment: its progress bar and the grid of its hosts."""

from __future__ import annotations

from collections.abc import Sequence

from rich.segment import Segment
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.strip import Strip
from textual.widget import Widget

from deployer.core.results import HostStatus
from tui.glyphs import HOST_GLYPHS, RUNNING_STYLE
from tui.model import DatacenterProgress
from tui.widgets.host_grid import HostGrid

# Left to right in the bar: what is done well, done badly, in flight, not started.
_BAR_ORDER: Sequence[tuple[tuple[HostStatus, ...], str, str]] = (
    ((HostStatus.SUCCEEDED,), "█", "green"),
    ((HostStatus.FAILED, HostStatus.UNREACHABLE, HostStatus.UNKNOWN), "█", "red"),
    ((HostStatus.ABORTED, HostStatus.SKIPPED), "▒", "yellow"),
    ((HostStatus.RUNNING,), "▒", "cyan"),
)


def progress_line(progress: DatacenterProgress, width: int) -> Text:
    """``████▒▒░░░░ 41/100 ✓38 ✗2 ▶1``: a stacked bar, then the counts with their symbols."""
    counts = progress.counts
    tail = Text(f" {progress.done_count}/{progress.host_count}")
    shown = (
        HostStatus.SUCCEEDED,
        HostStatus.FAILED,
        HostStatus.UNREACHABLE,
        HostStatus.RUNNING,
        HostStatus.NOT_STARTED,
    )
    for status in shown:
        if counts.get(status, 0):
            glyph = HOST_GLYPHS[status]
            style = RUNNING_STYLE if status is HostStatus.RUNNING else glyph.style
            tail.append(" ")
            tail.append(f"{glyph.symbol}{counts[status]}", style=style)
    bar_width = max(4, width - tail.cell_len)
    line = Text(no_wrap=True, overflow="ellipsis")
    # Each part ends where its running total ends, rounded: the parts always add up to
    # the bar, and a finished datacenter's bar is full.
    total = max(1, progress.host_count)
    before = drawn = 0
    for statuses, symbol, style in _BAR_ORDER:
        count = sum(counts.get(status, 0) for status in statuses)
        end = round((before + count) * bar_width / total)
        before += count
        line.append(symbol * (end - drawn), style=style)
        drawn = end
    line.append("░" * (bar_width - drawn), style="dim")
    line.append_text(tail)
    return line


class DatacenterBar(Widget):
    """The one-line progress of a datacenter, drawn to the width it gets.

    Drawn as a line (the Line API), not as a renderable: a read repaints every one of
    these, and Textual's path for renderables is the slower one.
    """

    DEFAULT_CSS = """
    DatacenterBar { height: 1; width: 1fr; }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.progress: DatacenterProgress | None = None

    def show(self, progress: DatacenterProgress) -> None:
        if self.progress is None or dict(self.progress.counts) != dict(progress.counts):
            self.refresh()
        self.progress = progress

    def render_line(self, y: int) -> Strip:
        width = self.size.width
        base = self.rich_style
        if self.progress is None or y != 0:
            return Strip.blank(width, base)
        segments = progress_line(self.progress, width).render(self.app.console)
        return Strip(Segment.apply_style(segments, base), width).adjust_cell_length(width, base)


class DatacenterPanel(Vertical):
    """A bordered panel titled with the datacenter: its bar over its host grid.

    How many hosts are done is on the bar (``41/100``), not in the border: a border
    that changes repaints the whole panel on every read.

    The owner calls :meth:`show` with the datacenter's progress (attributes down);
    clicks on hosts bubble up from the grid as :class:`HostGrid.HostClicked`.
    """

    DEFAULT_CSS = """
    DatacenterPanel {
        border: round $primary-darken-1;
        border-title-style: bold;
        border-title-color: $text;
        height: auto;
        max-height: 100%;
        min-height: 4;
        padding: 0 1;
    }
    DatacenterPanel.has-failures { border: round $error; }
    """

    def __init__(self, datacenter: str, *, host_count: int = 0, id: str | None = None) -> None:
        """``host_count``, when known before the hosts are, sizes the grid from the start."""
        super().__init__(id=id)
        self.datacenter = datacenter
        self.border_title = datacenter
        self._progress: DatacenterProgress | None = None
        self._bar = DatacenterBar()
        self._grid = HostGrid(host_count=host_count)

    def compose(self) -> ComposeResult:
        yield self._bar
        yield self._grid

    def on_mount(self) -> None:
        if self._progress is not None:
            self._apply(self._progress)

    def show(self, progress: DatacenterProgress) -> None:
        """Show ``progress`` now, or as soon as the panel is mounted."""
        self._progress = progress
        if self.is_mounted:
            self._apply(progress)

    def _apply(self, progress: DatacenterProgress) -> None:
        self.set_class(progress.failed_count > 0, "has-failures")
        self._bar.show(progress)
        self._grid.hosts = progress.hosts
