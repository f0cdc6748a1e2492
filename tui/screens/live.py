"""The live screen of one deployment, read from the store: it works for a deployment run anywhere.

A thread worker re-reads the deployment every ``poll_interval`` (never on the event
loop) and posts one :class:`Polled` message per read; a newer read replaces one
still queued, so a slow screen skips stale reads instead of falling behind. Once
the deployment has finished the worker stops: the screen is then a frozen record.

Controls write requests into the store (:meth:`Store.request_control`); the
controller, wherever it runs, reads and obeys them.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from typing import ClassVar

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Container, Horizontal
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Input, Label, Static
from textual.worker import Worker, get_current_worker

from deployer.core.errors import DeployerError, NotFound
from deployer.core.results import ControlAction, DeploymentStatus, HostStatus
from deployer.core.wording import count_of
from deployer.store.views import DeploymentProgress
from tui.context import Context
from tui.filter import FilterError, HostFilter, filter_hosts, parse_filter
from tui.glyphs import legend
from tui.model import LiveSnapshot, ShownHost, live_snapshot
from tui.navigation import OpenHistory, OpenHost, OpenVersions
from tui.screens.dialogs import ConfirmScreen
from tui.widgets.datacenter import DatacenterPanel
from tui.widgets.host_grid import HostGrid
from tui.widgets.host_list import HostList
from tui.widgets.key_bar import KeyBar
from tui.widgets.summary import DeploymentSummary
from tui.widgets.text_line import TextLine
from tui.widgets.virtual_table import VirtualTable

MAX_DATACENTER_COLUMNS = 4
POLL_BACKOFF = 3.0

# For benchmarks: called after each read is shown with two time.perf_counter() stamps,
# when the polling thread posted the read and when the screen had handed it to its widgets.
RefreshProbe = Callable[[float, float], None]


class Polled(Message):
    """One read of the deployment, worked out in the polling thread: the snapshot, and the
    hosts that pass the filter that was in force then (so the event loop need not filter
    thousands of hosts again unless the filter changed since)."""

    def __init__(self, snapshot: LiveSnapshot, host_filter: HostFilter, shown: Sequence[ShownHost]) -> None:
        super().__init__()
        self.snapshot = snapshot
        self.host_filter = host_filter
        self.shown = shown
        self.posted_at = time.perf_counter()

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, Polled)


class PollFailed(Message):
    def __init__(self, error: str) -> None:
        super().__init__()
        self.error = error


class ControlAnswered(Message):
    """The store took (or refused) a pause/resume/abort request."""

    def __init__(self, action: ControlAction, error: str | None) -> None:
        super().__init__()
        self.action = action
        self.error = error


class LiveScreen(Screen[None]):
    """A deployment: summary, a panel per datacenter with its host grid, and the filtered host list."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("p", "pause", "Pause"),
        Binding("r", "resume", "Resume"),
        Binding("a", "abort", "Abort"),
        Binding("slash", "filter", "Filter", key_display="/"),
        Binding("h", "history", "History"),
        Binding("v", "versions", "Versions"),
        Binding("escape", "back", "Back"),
    ]
    # Focus starts on the host list, where the keys act, not on the first focusable widget
    # (the filter, which would take the keys as text): nothing moves once the screen is up.
    AUTO_FOCUS = "#hosts"

    def __init__(
        self,
        ctx: Context,
        deployment_id: str,
        *,
        failure_budget: int | None = None,
        can_go_back: bool = True,
        refresh_probe: RefreshProbe | None = None,
        datacenters: Sequence[tuple[str, int]] = (),
        control: tuple[DeploymentStatus, ControlAction | None] | None = None,
    ) -> None:
        """``datacenters`` (name, number of hosts) and ``control`` (status, pending request),
        when known, shape the screen from the start: its first read then only fills in
        the panels, at the size they already have, and leaves the keys as they are
        (mounting and sizing the panels, and changing the keys, would each lengthen that
        read's refresh)."""
        super().__init__()
        self.datacenters = tuple(datacenters)
        self.ctx = ctx
        self.deployment_id = deployment_id
        self.failure_budget = failure_budget
        self.can_go_back = can_go_back
        self.refresh_probe = refresh_probe
        self.snapshot: LiveSnapshot | None = None
        self.host_filter = HostFilter()
        self.filter_error: str | None = None
        self.polls_received = 0
        self._last_control = control
        self._last_error: str | None = None
        self._poller: Worker[None] | None = None
        self._wake = threading.Event()

    # ---- layout ---------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        yield DeploymentSummary(tz=self.ctx.tz, id="summary")
        legend_text = Text(no_wrap=True, overflow="ellipsis")
        for symbol, style, meaning in legend():
            legend_text.append(symbol, style=style)
            legend_text.append(f" {meaning}  ", style="dim")
        yield Static(legend_text, id="legend")
        with Container(id="datacenters") as container:
            self._size_datacenter_grid(container, len(self.datacenters))
            for name, host_count in self.datacenters:
                yield DatacenterPanel(name, host_count=host_count)
        with Horizontal(id="filter-bar"):
            yield Label("filter ", id="filter-label")
            yield Input(
                placeholder="/ to filter: failed, running, dc:NAME, a host name…",
                id="filter",
                compact=True,
            )
            yield TextLine("", id="filter-status")
        yield HostList(id="hosts")
        yield KeyBar()

    def on_mount(self) -> None:
        self.title = f"deployment {self.deployment_id}"
        # The first read of thousands of hosts and the screen's first layout both need the
        # interpreter, which runs one thread at a time: starting the read alongside only
        # slows the layout down. Read once the screen has been drawn.
        self.call_after_refresh(self._start_polling)
        self.set_interval(1.0, self._tick)

    def on_screen_suspend(self) -> None:
        """Covered by another screen: stop reading the store until shown again."""
        self.workers.cancel_group(self, "poll")
        self._wake.set()

    def on_screen_resume(self) -> None:
        self._start_polling()

    def _start_polling(self) -> None:
        if self.snapshot is not None and self.snapshot.is_finished:
            return  # a finished deployment does not change: nothing more to read
        if self._poller is None or self._poller.is_finished or self._poller.is_cancelled:
            self._poller = self._poll()

    def on_unmount(self) -> None:
        self.workers.cancel_group(self, "poll")
        self._wake.set()

    # ---- reading the store ------------------------------------------------------------

    @work(thread=True, exclusive=True, group="poll", exit_on_error=False)
    def _poll(self) -> None:
        """Read the deployment until it has finished, or the screen goes away."""
        worker = get_current_worker()
        self._wake.clear()
        store = self.ctx.store
        # Each read is handed the one before: only the hosts that changed are built anew.
        progress: DeploymentProgress | None = None
        snapshot: LiveSnapshot | None = None
        while not worker.is_cancelled:
            started = time.perf_counter()
            try:
                progress = store.deployment_progress(self.deployment_id, since=progress)
                view = progress.view
                liveness = None if view.is_finished else store.liveness(view, self.ctx.clock())
            except NotFound as error:
                self.post_message(PollFailed(str(error)))
                return
            except DeployerError as error:  # the database is unreachable: say so, try again
                self.post_message(PollFailed(str(error)))
            else:
                snapshot = live_snapshot(
                    progress, budget=self.failure_budget, liveness=liveness, previous=snapshot
                )
                host_filter = self.host_filter  # an immutable value: read once, used whole
                self.post_message(Polled(snapshot, host_filter, filter_hosts(snapshot.hosts, host_filter)))
                if view.is_finished:
                    return
            # A read of thousands of hosts holds the interpreter for a while: leave the
            # event loop at least POLL_BACKOFF times as long between reads (a read of 20 ms
            # means at least 60 ms between reads), however often we are woken.
            floor = POLL_BACKOFF * (time.perf_counter() - started)
            if worker.cancelled_event.wait(floor):
                return
            self._wake.wait(max(0.0, self.ctx.poll_interval - floor))
            self._wake.clear()

    def wake(self) -> None:
        """Read the store now rather than at the next interval (after a request, or a push event)."""
        self._wake.set()

    @on(Polled)
    def _show(self, message: Polled) -> None:
        snapshot = message.snapshot
        self.snapshot = snapshot
        self.polls_received += 1
        now = self.ctx.clock()
        self._last_error = None
        self.query_one(DeploymentSummary).show(snapshot, now)
        self._show_datacenters(snapshot)
        host_list = self.query_one(HostList)
        host_list.now = now
        self._apply_filter(message.shown if message.host_filter is self.host_filter else None)
        # Which controls apply follows the status and the pending request (see check_action).
        control = (snapshot.view.status, snapshot.view.requested_control)
        if control != self._last_control:
            self._last_control = control
            self.refresh_bindings()
        if self.refresh_probe is not None:
            self.refresh_probe(message.posted_at, time.perf_counter())

    @on(PollFailed)
    def _poll_failed(self, message: PollFailed) -> None:
        if message.error != self._last_error:  # once per outage, not once per read
            self._last_error = message.error
            self.notify(message.error, title="cannot read the deployment", severity="error", timeout=10)

    def _show_datacenters(self, snapshot: LiveSnapshot) -> None:
        container = self.query_one("#datacenters", Container)
        panels = list(container.query_children(DatacenterPanel))
        names = [progress.name for progress in snapshot.datacenters]
        if [panel.datacenter for panel in panels] != names:
            container.remove_children()
            panels = [DatacenterPanel(p.name, host_count=p.host_count) for p in snapshot.datacenters]
            self._size_datacenter_grid(container, len(names))
            container.mount_all(panels)
        for panel, progress in zip(panels, snapshot.datacenters, strict=True):
            panel.show(progress)

    @staticmethod
    def _size_datacenter_grid(container: Container, count: int) -> None:
        columns = max(1, min(count, MAX_DATACENTER_COLUMNS))
        container.styles.grid_size_columns = columns
        container.styles.grid_size_rows = max(1, -(-count // columns))

    def _tick(self) -> None:
        if self.snapshot is None or self.snapshot.is_finished:
            return
        now = self.ctx.clock()
        self.query_one(DeploymentSummary).tick(now)
        host_list = self.query_one(HostList)
        host_list.now = now
        host_list.refresh_rows(lambda host: host.status is HostStatus.RUNNING)  # the others show no clock

    # ---- the host list and its filter ---------------------------------------------------

    def _apply_filter(self, shown: Sequence[ShownHost] | None = None) -> None:
        """Show the hosts that pass the filter (``shown`` when the polling thread filtered them)."""
        if self.snapshot is None:
            return
        hosts = self.snapshot.hosts
        if shown is None:
            shown = filter_hosts(hosts, self.host_filter)
        self.query_one(HostList).rows = shown
        status = Text(f"{len(shown)} of {count_of(len(hosts), 'host')}")
        if not self.host_filter.is_empty:
            status.append(f": {self.host_filter.describe()}")
        if self.filter_error is not None:
            status = Text(self.filter_error, style="bold red")
        self.query_one("#filter-status", TextLine).show(status)

    @on(Input.Changed, "#filter")
    def _filter_changed(self, event: Input.Changed) -> None:
        """A filter that cannot be read says why, and the last good one stays in force."""
        try:
            self.host_filter = parse_filter(event.value)
        except FilterError as error:
            self.filter_error = str(error)
        else:
            self.filter_error = None
        event.input.set_class(self.filter_error is not None, "invalid")
        self._apply_filter()

    @on(Input.Submitted, "#filter")
    def _filter_done(self) -> None:
        self.query_one(HostList).focus()

    def action_filter(self) -> None:
        self.query_one("#filter", Input).focus()

    def shown_hosts(self) -> list[ShownHost]:
        return list(self.query_one(HostList).rows)

    # ---- opening hosts and other screens ------------------------------------------------

    @on(VirtualTable.RowSelected, "#hosts")
    def _open_host(self, event: VirtualTable.RowSelected) -> None:
        self.post_message(OpenHost(self.deployment_id, str(event.key)))

    @on(HostGrid.HostClicked)
    def _open_clicked_host(self, event: HostGrid.HostClicked) -> None:
        self.post_message(OpenHost(self.deployment_id, event.name))

    def action_history(self) -> None:
        if self.snapshot is not None:
            self.post_message(OpenHistory(self.snapshot.view.app, self.snapshot.view.environment))

    def action_versions(self) -> None:
        if self.snapshot is not None:
            self.post_message(OpenVersions(self.snapshot.view.app, self.snapshot.view.environment))

    def action_back(self) -> None:
        if self.focused is self.query_one("#filter", Input):
            self.query_one(HostList).focus()
            return
        if self.can_go_back:
            self.dismiss(None)

    # ---- controls -----------------------------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Show only the controls that apply; greyed out (None) while they cannot be used now."""
        if action == "back":
            return self.can_go_back
        if action not in ("pause", "resume", "abort"):
            return True
        control = self._last_control  # the latest read's, or what was known at opening
        if control is None:
            return None
        status, requested = control
        if status.is_final:
            return False
        if requested is ControlAction.ABORT:
            return None
        if action == "pause":
            return (status is DeploymentStatus.RUNNING and requested is not ControlAction.PAUSE) or None
        if action == "resume":
            return status is DeploymentStatus.PAUSED or requested is ControlAction.PAUSE or None
        return True

    def action_pause(self) -> None:
        self._request(ControlAction.PAUSE)

    def action_resume(self) -> None:
        self._request(ControlAction.RESUME)

    def action_abort(self) -> None:
        if self.snapshot is None:
            return
        view = self.snapshot.view
        running = view.counts.get(HostStatus.RUNNING, 0)
        pending = view.counts.get(HostStatus.PENDING, 0)

        def answered(abort: bool | None) -> None:
            if abort:
                self._request(ControlAction.ABORT)

        self.app.push_screen(
            ConfirmScreen(
                f"Abort deployment {view.id} of {view.app} {view.version} in {view.environment}?",
                f"The {running} hosts in flight finish; the {pending} pending hosts never start "
                "and keep their version. This cannot be undone (a new push starts over).",
                yes="Abort",
                no="Keep going",
            ),
            answered,
        )

    @work(thread=True, group="control", exit_on_error=False)
    def _request(self, action: ControlAction) -> None:
        try:
            self.ctx.store.request_control(
                self.deployment_id, action, requested_by=self.ctx.requested_by, now=self.ctx.clock()
            )
        except DeployerError as error:
            self.post_message(ControlAnswered(action, str(error)))
        else:
            self.post_message(ControlAnswered(action, None))
            self.wake()

    @on(ControlAnswered)
    def _control_answered(self, message: ControlAnswered) -> None:
        if message.error is not None:
            self.notify(message.error, title=f"cannot {message.action.value}", severity="error", timeout=6)
            return
        said = {
            ControlAction.PAUSE: "pause requested: no new host starts once the controller takes it",
            ControlAction.RESUME: "resume requested",
            ControlAction.ABORT: "abort requested: hosts in flight finish, no new host starts",
        }[message.action]
        self.notify(said, timeout=4)
