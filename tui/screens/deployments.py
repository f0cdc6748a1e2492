"""Lists of deployments: the latest of every app and environment, and one app+environment's history."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import ClassVar

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.message import Message
from textual.screen import Screen
from textual.widgets import DataTable, Static
from textual.worker import get_current_worker

from deployer.core.errors import DeployerError
from deployer.core.terminal_text import escape_controls
from deployer.core.timefmt import format_age_ticking, format_moment_bare, format_span_ticking
from deployer.store.views import DeploymentView
from tui.context import Context
from tui.model import elapsed, versions_label
from tui.navigation import OpenDeployment, OpenHistory, OpenVersions
from tui.widgets.cells import counts_cell, fill_table, status_cell
from tui.widgets.key_bar import KeyBar

LIST_REFRESH = 2.0  # seconds between reads of a list: statuses change, lists rarely do


class DeploymentsRead(Message):
    """One read of a list: the deployments shown, and how many there are in all."""

    def __init__(self, views: Sequence[DeploymentView], total: int) -> None:
        super().__init__()
        self.views = list(views)
        self.total = total

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, DeploymentsRead)


class DeploymentsReadFailed(Message):
    def __init__(self, error: str) -> None:
        super().__init__()
        self.error = error


class _DeploymentList(Screen[None]):
    """A table of deployments, re-read every few seconds in a thread; Enter opens one."""

    COLUMNS: ClassVar[tuple[str, ...]] = ()
    EMPTY = "no deployments recorded yet"

    def __init__(self, ctx: Context, *, can_go_back: bool = True) -> None:
        super().__init__()
        self.ctx = ctx
        self.can_go_back = can_go_back
        self.views: list[DeploymentView] = []
        self.total = 0  # how many deployments the list has in all; views may hold the newest only
        self.loaded = False
        self._wake = threading.Event()

    def compose(self) -> ComposeResult:
        yield Static("", id="list-title")
        yield DataTable(id="deployments", cursor_type="row")
        yield KeyBar()

    def on_mount(self) -> None:
        self.title = self.screen_title()
        table = self.query_one("#deployments", DataTable)
        fill_table(table, self.COLUMNS, [], [])
        table.focus()
        self._read()

    def on_unmount(self) -> None:
        self.workers.cancel_group(self, "read")
        self._wake.set()

    def screen_title(self) -> str:
        raise NotImplementedError

    def read(self) -> tuple[list[DeploymentView], int]:
        """The deployments to show and how many there are in all (run in the reading thread)."""
        raise NotImplementedError

    def read_again(self) -> None:
        """Read now rather than at the next refresh."""
        self._wake.set()

    def row(self, view: DeploymentView) -> tuple[Text | str, ...]:
        raise NotImplementedError

    def heading(self) -> Text:
        raise NotImplementedError

    @work(thread=True, exclusive=True, group="read", exit_on_error=False)
    def _read(self) -> None:
        worker = get_current_worker()
        while not worker.is_cancelled:
            try:
                self.post_message(DeploymentsRead(*self.read()))
            except DeployerError as error:
                self.post_message(DeploymentsReadFailed(str(error)))
            self._wake.wait(LIST_REFRESH)
            self._wake.clear()

    @on(DeploymentsRead)
    def _show(self, message: DeploymentsRead) -> None:
        self.loaded = True
        if (
            message.views == self.views
            and message.total == self.total
            and self.query_one("#deployments", DataTable).row_count
        ):
            return
        table = self.query_one("#deployments", DataTable)
        highlighted = self.highlighted()
        self.views, self.total = message.views, message.total
        fill_table(
            table, self.COLUMNS, [self.row(view) for view in self.views], [view.id for view in self.views]
        )
        if highlighted is not None and highlighted.id in {view.id for view in self.views}:
            table.move_cursor(row=table.get_row_index(highlighted.id))
        title = self.heading()
        if not self.views:
            title.append(f"\n{self.EMPTY}", style="italic dim")
        self.query_one("#list-title", Static).update(title)
        self.refresh_bindings()  # keys that depend on what was read (Older)

    @on(DeploymentsReadFailed)
    def _failed(self, message: DeploymentsReadFailed) -> None:
        self.notify(message.error, title="cannot read the store", severity="error", timeout=6)

    def highlighted(self) -> DeploymentView | None:
        table = self.query_one("#deployments", DataTable)
        row = table.cursor_row
        if not 0 <= row < min(len(self.views), table.row_count):
            return None
        return self.views[row]  # rows are added in the order of self.views

    @on(DataTable.RowSelected, "#deployments")
    def _open(self, event: DataTable.RowSelected) -> None:
        if event.row_key.value is not None:
            self.post_message(OpenDeployment(event.row_key.value))

    def action_versions(self) -> None:
        view = self.highlighted()
        if view is not None:
            self.post_message(OpenVersions(view.app, view.environment))

    def action_back(self) -> None:
        if self.can_go_back:
            self.dismiss(None)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "back":
            return self.can_go_back
        return True


class OverviewScreen(_DeploymentList):
    """Every app and environment with its latest deployment: where to start."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("enter", "open", "Open"),
        Binding("h", "history", "History"),
        Binding("v", "versions", "Versions"),
        Binding("escape", "back", "Back"),
    ]
    COLUMNS = ("app", "environment", "latest", "version", "kind", "hosts", "by", "started", "took")

    def screen_title(self) -> str:
        return "apps and environments"

    def read(self) -> tuple[list[DeploymentView], int]:
        views = self.ctx.store.latest_deployments()
        return views, len(views)

    def heading(self) -> Text:
        text = Text("Apps and environments", style="bold")
        text.append(f"  the latest deployment of each, in {self.ctx.store.url}", style="dim")
        return text

    def row(self, view: DeploymentView) -> tuple[Text | str, ...]:
        now = self.ctx.clock()
        return (
            Text(view.app, style="bold"),
            view.environment,
            status_cell(view.status),
            versions_label(view),
            view.kind.value,
            counts_cell(view.counts),
            view.started_by,
            format_age_ticking(view.started_at, now),
            format_span_ticking(elapsed(view, now)),
        )

    def action_open(self) -> None:
        view = self.highlighted()
        if view is not None:
            self.post_message(OpenDeployment(view.id))

    def action_history(self) -> None:
        view = self.highlighted()
        if view is not None:
            self.post_message(OpenHistory(view.app, view.environment))


HISTORY_PAGE = 200  # deployments read at first, and again each time older ones are asked for


class HistoryScreen(_DeploymentList):
    """An app+environment's deployments, newest first: who, when, which version, what kind, how it ended.

    The newest :data:`HISTORY_PAGE` are read first; older ones come a page at a time when
    the cursor reaches the last row shown, or on ``m``. The heading says how many are
    shown of how many there are.
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("enter", "open", "Open"),
        Binding("v", "versions", "Versions"),
        Binding("m", "older", "Older"),
        Binding("escape", "back", "Back"),
    ]
    COLUMNS = ("started", "by", "kind", "version", "outcome", "hosts", "took", "id", "why")
    EMPTY = "no deployments of this app in this environment"

    def __init__(self, ctx: Context, app: str, environment: str, *, can_go_back: bool = True) -> None:
        super().__init__(ctx, can_go_back=can_go_back)
        self.app_name = app
        self.environment = environment
        self.limit = HISTORY_PAGE  # how many of the newest are read; grows by a page on demand

    def screen_title(self) -> str:
        return f"history of {self.app_name} in {self.environment}"

    def read(self) -> tuple[list[DeploymentView], int]:
        store = self.ctx.store
        views = store.history(self.app_name, self.environment, limit=self.limit)
        if len(views) < self.limit:
            return views, len(views)
        # max: a deployment recorded between the two reads must not make the count the smaller
        return views, max(len(views), store.history_count(self.app_name, self.environment))

    def has_older(self) -> bool:
        return len(self.views) < self.total

    def heading(self) -> Text:
        text = Text(f"History of {self.app_name} in {self.environment}", style="bold")
        if self.has_older():
            text.append(
                f"  the newest {len(self.views)} of {self.total} deployments; Enter opens one,"
                " m or the last row loads older ones",
                style="dim",
            )
        else:
            text.append(f"  {len(self.views)} deployments, newest first; Enter opens one", style="dim")
        return text

    def action_older(self) -> None:
        """Read a page further back, unless it is already asked for or there is nothing older."""
        if self.has_older() and self.limit <= len(self.views):
            self.limit = len(self.views) + HISTORY_PAGE
            self.read_again()

    @on(DataTable.RowHighlighted, "#deployments")
    def _at_the_end(self, event: DataTable.RowHighlighted) -> None:
        if event.cursor_row == len(self.views) - 1:
            self.action_older()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "older":
            return self.has_older()  # shown only while there are older ones to load
        return super().check_action(action, parameters)

    def row(self, view: DeploymentView) -> tuple[Text | str, ...]:
        now = self.ctx.clock()
        return (
            format_moment_bare(view.started_at, self.ctx.tz),
            view.started_by,
            view.kind.value,
            versions_label(view),
            status_cell(view.status),
            counts_cell(view.counts),
            format_span_ticking(elapsed(view, now)),
            Text(view.id, style="dim"),
            Text(escape_controls(view.reason.splitlines()[0]) if view.reason else "", style="dim"),
        )

    def action_open(self) -> None:
        view = self.highlighted()
        if view is not None:
            self.post_message(OpenDeployment(view.id))

    def action_versions(self) -> None:
        self.post_message(OpenVersions(self.app_name, self.environment))
