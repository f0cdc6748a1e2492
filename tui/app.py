"""The deployer TUI: the app, and the three ways in.

- :func:`run_watch` (``deploy watch [ID]``): attach to a deployment, running or finished.
- :func:`run_browser` (``deploy tui``): start on the list of apps and environments.
- :func:`run_push_ui` (``deploy push SPEC --tui``): run a deployment in this process
  while the live screen shows it.

Every screen reads the store, the single source of truth, so watching works for a
deployment started in another terminal or on another machine sharing a PostgreSQL
store. Quitting only stops watching; a deployment this process did not start is never
touched (pause, resume and abort are explicit requests written to the store).
"""

from __future__ import annotations

import asyncio
import gc
import signal
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, tzinfo
from typing import Any, ClassVar, Generic, TypeVar, cast

from textual import on, work
from textual.app import App
from textual.binding import Binding, BindingType
from textual.message import Message
from textual.screen import Screen

from deployer.core.decide import StopCause
from deployer.core.errors import DeployerError, NotFound
from deployer.core.events import DeploymentStarted, Event, EventSink
from deployer.core.results import ControlAction, DeploymentStatus
from deployer.core.rollout import GracefulStop
from deployer.core.timefmt import LOCAL
from deployer.store import Store, open_store
from deployer.views.progress import describe
from tui.context import Context, operator, utcnow
from tui.model import pick_deployment_to_watch
from tui.navigation import OpenDeployment, OpenHistory, OpenHost, OpenVersions
from tui.screens.deployments import HistoryScreen, OverviewScreen
from tui.screens.dialogs import ConfirmScreen, HelpScreen
from tui.screens.host import HostScreen
from tui.screens.live import LiveScreen, Polled, RefreshProbe
from tui.screens.starting import StartingScreen
from tui.screens.versions import VersionsScreen

T = TypeVar("T")

# With freeze_gc the app runs the collector's full passes itself (see DeployerApp._take_over_gc).
FULL_COLLECTION_EVERY = 5.0  # seconds
NEVER = 1 << 30  # young collections between full ones, left to the collector: never


# ---- what the app opens on ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ShowOverview:
    """The latest deployment of every app and environment."""


@dataclass(frozen=True, slots=True)
class ShowDeployment:
    deployment_id: str
    failure_budget: int | None = None  # when known from elsewhere (the store may not record it)
    # Known before the app starts (see watch_opening), the datacenter panels are laid out
    # with the screen, at their size, rather than by its first read of the hosts.
    datacenters: tuple[tuple[str, int], ...] = ()  # (name, number of hosts)
    control: tuple[DeploymentStatus, ControlAction | None] | None = None  # (status, pending request)


@dataclass(frozen=True, slots=True)
class ShowHistory:
    app: str
    environment: str


@dataclass(frozen=True, slots=True)
class ShowVersions:
    app: str
    environment: str


@dataclass(frozen=True, slots=True)
class ShowPush:
    """A deployment run by this process; the live screen appears once it is recorded."""

    start: Callable[[EventSink], Awaitable[Any]]
    # Set by SIGINT or SIGTERM (sent by another process: in the TUI, Ctrl-C is a key) to stop
    # the deployment gracefully; the TUI closes once its hosts in flight are done.
    stop: GracefulStop | None = None


Opening = ShowOverview | ShowDeployment | ShowHistory | ShowVersions | ShowPush


# ---- messages from the push thread ------------------------------------------------------------


class PushStarted(Message):
    def __init__(self, event: DeploymentStarted) -> None:
        super().__init__()
        self.event = event


class PushProgress(Message):
    """Something happened in the deployment: read the store now. Many collapse into one."""

    def __init__(self, event: Event) -> None:
        super().__init__()
        self.event = event

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, PushProgress)


_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class PushEnded(Message):
    def __init__(self, error: BaseException | None) -> None:
        super().__init__()
        self.error = error


@dataclass(slots=True)
class PushState(Generic[T]):
    """What the push thread hands back to :func:`run_push_ui` (written once, by that thread)."""

    result: T | None = None
    error: BaseException | None = None
    deployment_id: str | None = None
    done: bool = False
    loop: asyncio.AbstractEventLoop | None = None  # the deployment's own loop, in its thread


class DeployerApp(App[None]):
    """Pushes the opening screen over Textual's default one; screens ask (by message) for others."""

    CSS_PATH = "deployer.tcss"
    TITLE = "deployer"
    ENABLE_COMMAND_PALETTE = False
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("q", "quit", "Quit"),
        Binding("question_mark", "help", "Help", key_display="?"),
    ]

    def __init__(
        self,
        ctx: Context,
        opening: Opening,
        *,
        refresh_probe: RefreshProbe | None = None,
        freeze_gc: bool = False,
    ) -> None:
        super().__init__()
        self.ctx = ctx
        self.opening = opening
        self.refresh_probe = refresh_probe
        self.freeze_gc = freeze_gc
        self.push_state: PushState[Any] | None = PushState() if isinstance(opening, ShowPush) else None
        self._budgets: dict[str, int] = {}
        self._quit_when_done = False
        self._gc_thresholds = gc.get_threshold()
        self._fully_collected_at = time.monotonic()

    def get_default_screen(self) -> Screen[Any]:
        """The opening screen, at the bottom of the stack rather than pushed over Textual's
        blank one: that one is laid out again as the app starts, and each time it
        repainted the whole screen above it."""
        match self.opening:
            case ShowOverview():
                return OverviewScreen(self.ctx, can_go_back=False)
            case ShowDeployment(deployment_id, budget, datacenters, control):
                if budget is not None:
                    self._budgets[deployment_id] = budget
                return self._live(deployment_id, can_go_back=False, datacenters=datacenters, control=control)
            case ShowHistory(app, environment):
                return HistoryScreen(self.ctx, app, environment, can_go_back=False)
            case ShowVersions(app, environment):
                return VersionsScreen(self.ctx, app, environment, can_go_back=False)
            case ShowPush():
                return StartingScreen()

    def on_mount(self) -> None:
        if self.freeze_gc:
            # Process-wide, so only the entry points below (which own the process) ask for it.
            young, middle, _ = self._gc_thresholds
            gc.set_threshold(young, middle, NEVER)
            self.set_timer(0.5, self._take_over_gc)
        if isinstance(self.opening, ShowPush):
            self._run_push(self.opening.start)
            loop = asyncio.get_running_loop()
            for number in _STOP_SIGNALS:
                loop.add_signal_handler(number, self.stop_gracefully, number.name)

    def stop_gracefully(self, signal_name: str) -> None:
        """A signal to this process: stop the deployment as the CLI would, then close.

        No new host starts, the hosts in flight finish, the deployment ends ``aborted``
        saying which signal, and the command exits with that signal's code.
        """
        opening, state = self.opening, self.push_state
        loop = None if state is None or state.done else state.loop  # None: nothing left to stop
        if not isinstance(opening, ShowPush) or opening.stop is None or loop is None:
            self.exit()
            return
        if opening.stop.is_set():  # the TUI owns the deployment's thread: it closes once that ends
            self.notify(f"{signal_name}: already stopping; the TUI closes once the hosts in flight are done")
            return
        loop.call_soon_threadsafe(opening.stop.request, StopCause(signal_name))
        self._quit_when_done = True
        self.notify(
            f"{signal_name}: stopping: hosts in flight finish, no new host starts; then the TUI closes"
        )

    # ---- the garbage collector, paced by the screen --------------------------------------------

    def _take_over_gc(self) -> None:
        """Run the collector's full passes at the app's pace, between screen updates.

        From the app's mount the collector makes no full pass of its own (its short young
        passes go on as usual). Once started (half a second in), the objects that live
        as long as the process (Textual's, SQLAlchemy's, the widgets) are frozen: a pass
        over them all is long and frees nothing. What comes later still gets full
        passes, but on our schedule: left to itself the collector starts one when
        objects are allocated, that is mostly while a frame is drawn, and the pass
        (mostly over Textual's strips, which refer to themselves) stalls that frame. Now
        one runs every few seconds just after a read has been drawn, when the next read
        is a poll away (or on a timer when no screen polls).
        """
        gc.freeze()
        self.set_interval(FULL_COLLECTION_EVERY, self._collect_if_overdue)

    @on(Polled)
    def _read_shown(self) -> None:
        """A live screen's read (bubbling up from the screen that showed it): a full pass once
        it is drawn, when one is due."""
        if self.freeze_gc and time.monotonic() - self._fully_collected_at >= FULL_COLLECTION_EVERY:
            self.call_after_refresh(self._collect_garbage)

    def _collect_if_overdue(self) -> None:
        if time.monotonic() - self._fully_collected_at >= 2 * FULL_COLLECTION_EVERY:
            self.call_after_refresh(self._collect_garbage)

    def _collect_garbage(self) -> None:
        gc.collect()
        self._fully_collected_at = time.monotonic()

    def _live(
        self,
        deployment_id: str,
        *,
        can_go_back: bool = True,
        datacenters: tuple[tuple[str, int], ...] = (),
        control: tuple[DeploymentStatus, ControlAction | None] | None = None,
    ) -> LiveScreen:
        return LiveScreen(
            self.ctx,
            deployment_id,
            failure_budget=self._budgets.get(deployment_id),
            can_go_back=can_go_back,
            refresh_probe=self.refresh_probe,
            datacenters=datacenters,
            control=control,
        )

    # ---- navigation: screens ask, the app pushes ----------------------------------------------

    @on(OpenDeployment)
    def _open_deployment(self, message: OpenDeployment) -> None:
        self.push_screen(self._live(message.deployment_id))

    @on(OpenHost)
    def _open_host(self, message: OpenHost) -> None:
        self.push_screen(HostScreen(self.ctx, message.deployment_id, message.host))

    @on(OpenHistory)
    def _open_history(self, message: OpenHistory) -> None:
        self.push_screen(HistoryScreen(self.ctx, message.app_name, message.environment))

    @on(OpenVersions)
    def _open_versions(self, message: OpenVersions) -> None:
        self.push_screen(VersionsScreen(self.ctx, message.app_name, message.environment))

    def action_help(self) -> None:
        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen())

    # ---- quitting -----------------------------------------------------------------------------

    async def action_quit(self) -> None:
        """Quit; when this process runs the deployment, only after asking and aborting it."""
        state = self.push_state
        if state is None or state.done:
            self.exit()
            return
        if self._quit_when_done:
            self.notify("waiting for the hosts in flight to finish before quitting", timeout=4)
            return

        def answered(abort: bool | None) -> None:
            if abort:
                self._quit_when_done = True
                if state.deployment_id is not None:
                    self._abort(state.deployment_id)
                self.notify("aborting: hosts in flight finish, then the TUI closes", timeout=8)

        self.push_screen(
            ConfirmScreen(
                "This deployment runs in this terminal. Abort it and quit?",
                "Hosts in flight finish first; pending hosts never start and keep their version. "
                "To let it run on, keep this terminal open (and watch it from another with `deploy watch`).",
                yes="Abort and quit",
                no="Keep running",
            ),
            answered,
        )

    @work(thread=True, group="control", exit_on_error=False)
    def _abort(self, deployment_id: str) -> None:
        try:
            self.ctx.store.request_control(
                deployment_id, ControlAction.ABORT, requested_by=self.ctx.requested_by, now=self.ctx.clock()
            )
        except DeployerError as error:
            self.call_from_thread(self.notify, str(error), title="cannot abort", severity="error")

    def on_unmount(self) -> None:
        """Leaving while the deployment still runs (a crash, a signal): ask it to abort so it ends."""
        if isinstance(self.opening, ShowPush):
            loop = asyncio.get_running_loop()
            for number in _STOP_SIGNALS:
                loop.remove_signal_handler(number)
        if self.freeze_gc:
            gc.set_threshold(*self._gc_thresholds)  # the process goes on without the app's pacing
        state = self.push_state
        if state is None or state.done or state.deployment_id is None:
            return
        try:
            self.ctx.store.request_control(
                state.deployment_id,
                ControlAction.ABORT,
                requested_by=self.ctx.requested_by,
                now=self.ctx.clock(),
            )
        except DeployerError:
            return
        print(
            f"the TUI closed while deployment {state.deployment_id} ran: asked it to abort; "
            "waiting for the hosts in flight",
            file=sys.__stderr__,
        )

    # ---- a deployment run by this process -----------------------------------------------------

    @work(thread=True, exclusive=True, group="push", exit_on_error=False)
    def _run_push(self, start: Callable[[EventSink], Awaitable[Any]]) -> None:
        """Run the deployment's coroutine on its own event loop in this thread.

        The controller writes to the store synchronously; on its own loop those writes
        never stall the UI's. Its events only nudge the screens, which read the store.
        """
        state = self.push_state
        assert state is not None

        def sink(event: Event) -> None:
            if isinstance(event, DeploymentStarted):
                if state.deployment_id is None:
                    state.deployment_id = event.deployment_id
                self.post_message(PushStarted(event))
            else:
                self.post_message(PushProgress(event))

        async def run() -> Any:
            state.loop = asyncio.get_running_loop()
            return await start(sink)

        error: BaseException | None = None
        try:
            state.result = asyncio.run(run())
        except BaseException as raised:  # handed back to run_push_ui, which re-raises it
            error = raised
            state.error = raised
        finally:
            state.done = True
        self.post_message(PushEnded(error))

    @on(PushStarted)
    def _push_started(self, message: PushStarted) -> None:
        event = message.event
        self._budgets[event.deployment_id] = event.failure_budget
        if isinstance(self.screen, StartingScreen):
            # Over the starting screen, which stays below it, still (it is the stack's bottom).
            self.push_screen(self._live(event.deployment_id, can_go_back=False))
        else:
            # e.g. the rollback `on_halt: rollback` starts after a halted push: show it on top.
            self.push_screen(self._live(event.deployment_id))
        if self._quit_when_done:
            self._abort(event.deployment_id)

    @on(PushProgress)
    def _push_progress(self, message: PushProgress) -> None:
        screen = self.screen
        if isinstance(screen, LiveScreen):
            screen.wake()
        elif isinstance(screen, StartingScreen):
            line = describe(message.event)
            if line:
                screen.say(line)

    @on(PushEnded)
    def _push_ended(self, message: PushEnded) -> None:
        state = self.push_state
        if self._quit_when_done or (state is not None and state.deployment_id is None):
            self.exit()  # nothing to look at, or the operator asked to leave
            return
        if message.error is not None:
            self.notify(
                f"the deployment stopped with an error: {message.error}", severity="error", timeout=10
            )
        else:
            self.notify("the deployment has ended; q quits", timeout=10)


# ---- the ways in ------------------------------------------------------------------------------


def _context(store: Store, clock: Callable[[], datetime], tz: tzinfo | None, poll_interval: float) -> Context:
    return Context(
        store=store,
        clock=clock,
        tz=tz if tz is not None else LOCAL,
        poll_interval=poll_interval,
        requested_by=f"{operator()} (tui)",
    )


def resolve_watch_target(store: Store, deployment_id: str | None) -> str:
    """The deployment ``deploy watch`` attaches to: the one named (NotFound if none), else the latest."""
    if deployment_id is not None:
        store.control_state(deployment_id)  # raises NotFound before any screen appears
        return deployment_id
    chosen = pick_deployment_to_watch(store.latest_deployments())
    if chosen is None:
        raise NotFound(f"no deployments recorded in {store.url}; nothing to watch")
    return chosen.id


def watch_opening(store: Store, deployment_id: str | None) -> ShowDeployment:
    """What ``deploy watch`` opens on: the deployment (see :func:`resolve_watch_target`), with
    its datacenters and control state read now, before any screen exists to wait for them."""
    target = resolve_watch_target(store, deployment_id)
    control = store.control_state(target)
    return ShowDeployment(
        target, datacenters=store.datacenters(target), control=(control.status, control.requested)
    )


def run_watch(
    deployment_id: str | None,
    *,
    store_url: str | None = None,
    clock: Callable[[], datetime] = utcnow,
    poll_interval: float = 0.5,
) -> None:
    """``deploy watch``: show one deployment (the latest when no id) until the operator quits."""
    with open_store(store_url) as store:
        opening = watch_opening(store, deployment_id)
        DeployerApp(_context(store, clock, None, poll_interval), opening, freeze_gc=True).run()


def run_browser(
    *, store_url: str | None = None, clock: Callable[[], datetime] = utcnow, poll_interval: float = 0.5
) -> None:
    """``deploy tui``: open on the apps and environments, with their latest deployments."""
    with open_store(store_url) as store:
        DeployerApp(_context(store, clock, None, poll_interval), ShowOverview(), freeze_gc=True).run()


def run_push_ui(
    start: Callable[[EventSink], Awaitable[T]],
    *,
    store: Store | str | None = None,
    clock: Callable[[], datetime] = utcnow,
    poll_interval: float = 0.5,
    stop: GracefulStop | None = None,
) -> T:
    """Run a deployment in this process while the TUI shows it; its result once both are done.

    ``start(sink)`` makes the deployment's coroutine, e.g.
    ``lambda sink: execute(prepared, store, sink)``; it runs on its own event loop in a
    worker thread, and ``sink`` is the EventSink it must report to (its
    DeploymentStarted brings up the live screen). ``store`` is the store to read (an
    open Store, a URL, or None for the default); one opened here is closed here.
    ``stop`` is the deployment's graceful stop: SIGINT and SIGTERM set it.

    Quitting while the deployment runs asks first, then requests an abort and waits
    for the hosts in flight. An error raised by the deployment is re-raised here after
    the TUI has closed, so the CLI reports it as usual.
    """
    own = not isinstance(store, Store)
    opened = open_store(store) if not isinstance(store, Store) else store
    try:
        context = _context(opened, clock, None, poll_interval)
        app = DeployerApp(context, ShowPush(start, stop), freeze_gc=True)
        app.run()
        state = app.push_state
        assert state is not None
        if state.error is not None:
            raise state.error
        if not state.done:
            raise RuntimeError("the TUI ended before the deployment did")
        return cast(T, state.result)
    finally:
        if own:
            opened.close()


__all__ = [
    "DeployerApp",
    "Opening",
    "ShowDeployment",
    "ShowHistory",
    "ShowOverview",
    "ShowPush",
    "ShowVersions",
    "resolve_watch_target",
    "run_browser",
    "run_push_ui",
    "run_watch",
]
