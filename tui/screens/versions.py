"""Which versions run across an app+environment's fleet, now or at any moment, and on which hosts."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import ClassVar

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal
from textual.message import Message
from textual.screen import Screen
from textual.widgets import DataTable, Input, Label, Static

from deployer.core.errors import DeployerError, TimeExpressionError
from deployer.core.timeexpr import FORMS, parse_time
from deployer.core.timefmt import format_age_ticking, format_moment_bare, format_span_ticking
from deployer.store.views import VersionInterval
from tui.context import Context
from tui.model import VERSION_STYLES, VersionShare, bar, stacked_bar, version_shares
from tui.navigation import OpenDeployment
from tui.widgets.cells import fill_table
from tui.widgets.key_bar import KeyBar
from tui.widgets.virtual_table import Column, VirtualTable

BAR_WIDTH = 40
VERSION_COLUMNS = ("version", "hosts", "share", "")

HOST_COLUMNS = (
    Column("host", 24),
    Column("dc", 12),
    Column("since", 19),
    Column("for", 9, "right"),
    Column("deployed by"),
)


class VersionsRead(Message):
    def __init__(self, at: datetime | None, counts: Sequence[tuple[str, int]]) -> None:
        super().__init__()
        self.at = at
        self.counts = list(counts)


class HostsRead(Message):
    def __init__(self, version: str, at: datetime | None, intervals: Sequence[VersionInterval]) -> None:
        super().__init__()
        self.version = version
        self.at = at
        self.intervals = list(intervals)


class ReadFailed(Message):
    def __init__(self, error: str) -> None:
        super().__init__()
        self.error = error


class VersionsScreen(Screen[None]):
    """Counts and a bar per version at a moment typed by the user; Enter on a version lists its hosts."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("t", "focus_time", "Time"),
        Binding("escape", "back", "Back"),
    ]

    def __init__(self, ctx: Context, app: str, environment: str, *, can_go_back: bool = True) -> None:
        super().__init__()
        self.ctx = ctx
        self.app_name = app
        self.environment = environment
        self.can_go_back = can_go_back
        self.at: datetime | None = None  # None: now
        self.shares: list[VersionShare] = []
        self.version: str | None = None
        self.loaded = False

    def compose(self) -> ComposeResult:
        yield Static("", id="versions-title")
        with Horizontal(id="time-bar"):
            yield Label("at ", id="time-label")
            yield Input(
                value="now", placeholder="now, 7d, yesterday 18:00, 2026-11-27T18:30Z", id="at", compact=True
            )
            yield Label(Text(FORMS, style="dim"), id="time-help")
        yield Static("", id="stacked")
        yield DataTable(id="versions", cursor_type="row")
        yield Static("", id="hosts-title")
        yield VirtualTable(
            HOST_COLUMNS, self._host_cells, lambda i: i.host, empty_text="", id="version-hosts"
        )
        yield KeyBar()

    def on_mount(self) -> None:
        self.title = f"versions of {self.app_name} in {self.environment}"
        table = self.query_one("#versions", DataTable)
        fill_table(table, VERSION_COLUMNS, [], [])
        table.focus()
        self._read_versions(None)

    # ---- the moment ---------------------------------------------------------------------

    def action_focus_time(self) -> None:
        self.query_one("#at", Input).focus()

    @on(Input.Submitted, "#at")
    def _moment_typed(self, event: Input.Submitted) -> None:
        text = event.value.strip() or "now"
        try:
            moment = None if text.lower() == "now" else parse_time(text, self.ctx.clock(), tz=self.ctx.tz)
        except TimeExpressionError as error:
            event.input.add_class("invalid")
            self.query_one("#time-help", Label).update(Text(str(error), style="bold red"))
            return
        event.input.remove_class("invalid")
        self.query_one("#time-help", Label).update(Text(FORMS, style="dim"))
        self._read_versions(moment)
        self.query_one("#versions", DataTable).focus()

    # ---- reading ------------------------------------------------------------------------

    @work(thread=True, exclusive=True, group="versions", exit_on_error=False)
    def _read_versions(self, at: datetime | None) -> None:
        try:
            counts = self.ctx.store.versions_at(self.app_name, self.environment, at)
        except DeployerError as error:
            self.post_message(ReadFailed(str(error)))
            return
        self.post_message(VersionsRead(at, counts))

    @work(thread=True, exclusive=True, group="hosts", exit_on_error=False)
    def _read_hosts(self, version: str, at: datetime | None) -> None:
        try:
            intervals = self.ctx.store.hosts_running(self.app_name, self.environment, version, at)
        except DeployerError as error:
            self.post_message(ReadFailed(str(error)))
            return
        self.post_message(HostsRead(version, at, intervals))

    @on(VersionsRead)
    def _show_versions(self, message: VersionsRead) -> None:
        self.at = message.at
        self.loaded = True
        self.shares = version_shares(message.counts)
        total = sum(share.host_count for share in self.shares)
        now = self.ctx.clock()
        title = Text(f"Versions of {self.app_name} in {self.environment}", style="bold")
        if message.at is None:
            title.append(f"  now ({format_moment_bare(now, self.ctx.tz)})")
        else:
            title.append(
                f"  at {format_moment_bare(message.at, self.ctx.tz)} ({format_age_ticking(message.at, now)})"
            )
        title.append(f"  {total} hosts with a known version", style="dim")
        self.query_one("#versions-title", Static).update(title)
        stacked = Text()
        for cells, style in stacked_bar(self.shares, BAR_WIDTH * 2):
            stacked.append(cells, style=style)
        self.query_one("#stacked", Static).update(stacked)
        table = self.query_one("#versions", DataTable)
        top = max((share.host_count for share in self.shares), default=0)
        rows = [
            (
                Text(share.version, style=VERSION_STYLES[index % len(VERSION_STYLES)]),
                Text(str(share.host_count), justify="right"),
                Text(f"{share.share:.0%}", justify="right"),
                Text(
                    bar(share.host_count, top, BAR_WIDTH), style=VERSION_STYLES[index % len(VERSION_STYLES)]
                ),
            )
            for index, share in enumerate(self.shares)
        ]
        fill_table(table, VERSION_COLUMNS, rows, [share.version for share in self.shares])
        if not self.shares:
            self.query_one("#versions-title", Static).update(
                title.append("\nno host ran a recorded version at that moment", style="italic")
            )
        keep = self.version if self.version in {share.version for share in self.shares} else None
        chosen = keep or (self.shares[0].version if self.shares else None)
        if chosen is not None:
            table.move_cursor(row=table.get_row_index(chosen))
            self.choose(chosen)
        else:
            self.version = None
            self.query_one("#hosts-title", Static).update("")
            self.query_one("#version-hosts", VirtualTable).rows = []

    @on(DataTable.RowHighlighted, "#versions")
    def _version_highlighted(self, event: DataTable.RowHighlighted) -> None:
        if event.row_key.value is not None and event.row_key.value != self.version:
            self.choose(event.row_key.value)

    @on(DataTable.RowSelected, "#versions")
    def _version_selected(self, event: DataTable.RowSelected) -> None:
        if event.row_key.value is not None and event.row_key.value != self.version:
            self.choose(event.row_key.value)
        self.query_one("#version-hosts", VirtualTable).focus()

    def choose(self, version: str) -> None:
        """List the hosts that run ``version`` at the screen's moment."""
        self.version = version
        self._read_hosts(version, self.at)

    @on(HostsRead)
    def _show_hosts(self, message: HostsRead) -> None:
        if message.version != self.version or message.at != self.at:
            return  # an answer to an older question
        when = "now" if message.at is None else f"at {format_moment_bare(message.at, self.ctx.tz)}"
        title = Text(f"{len(message.intervals)} hosts run ", style="bold")
        title.append(message.version, style="bold")
        title.append(f" {when}, and since when", style="bold")
        self.query_one("#hosts-title", Static).update(title)
        self.query_one("#version-hosts", VirtualTable).rows = message.intervals

    def _host_cells(self, interval: VersionInterval) -> Sequence[Text]:
        moment = self.at or self.ctx.clock()
        return (
            Text(interval.host),
            Text(interval.datacenter),
            Text(format_moment_bare(interval.since, self.ctx.tz)),
            Text(format_span_ticking(moment - interval.since), justify="right"),
            Text(interval.deployment_id or "-", style="dim"),
        )

    @on(VirtualTable.RowSelected, "#version-hosts")
    def _host_selected(self, event: VirtualTable.RowSelected) -> None:
        rows: Sequence[VersionInterval] = self.query_one("#version-hosts", VirtualTable).rows
        interval = next((i for i in rows if i.host == event.key), None)
        if interval is not None and interval.deployment_id is not None:
            self.post_message(OpenDeployment(interval.deployment_id))

    @on(ReadFailed)
    def _failed(self, message: ReadFailed) -> None:
        self.notify(message.error, title="cannot read the store", severity="error", timeout=6)

    def action_back(self) -> None:
        if self.focused is self.query_one("#at", Input):
            self.query_one("#versions", DataTable).focus()
            return
        if self.can_go_back:
            self.dismiss(None)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "back":
            return self.can_go_back or None
        return True
