"""``deploy push --tui``: the deployment runs in this process (the real controller, imaginary hosts)
while the TUI shows it from the store, and the TUI's controls reach the controller through the store."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

from deployer.core.decide import StopCause
from deployer.core.errors import DeployerError
from deployer.core.events import DeploymentStarted, EventSink
from deployer.core.results import DeploymentKind, DeploymentStatus, HostStatus
from deployer.core.rollout import GracefulStop, Rollout, RolloutOutcome
from deployer.core.runner import ReleaseJob
from deployer.core.targets import Host, SshTarget
from deployer.rollout.controller import Controller
from deployer.store import NewDeployment, Store
from tests.controller.fake_runner import FakeRunner
from tests.tui.conftest import SIZE, screen_text, wait_for, wait_in_thread
from tui.app import DeployerApp, ShowPush
from tui.context import Context, utcnow
from tui.screens.dialogs import ConfirmScreen
from tui.screens.live import LiveScreen
from tui.screens.starting import StartingScreen

MACHINE = "push-test"


def fleet() -> list[Host]:
    return [Host(f"node-{i:02d}", f"10.1.0.{i + 1}", ("iad", "sfo", "fra")[i % 3]) for i in range(12)]


def push(
    store: Store, runner: FakeRunner, loops: list[asyncio.AbstractEventLoop], stop: GracefulStop | None = None
) -> Callable[[EventSink], Awaitable[RolloutOutcome]]:
    """What ``deploy push`` hands to run_push_ui: record the deployment, announce it, run the controller."""

    async def start(sink: EventSink) -> RolloutOutcome:
        loops.append(asyncio.get_running_loop())
        hosts = fleet()
        waves = [hosts[i : i + 4] for i in range(0, len(hosts), 4)]
        now = datetime.now(UTC)
        deployment_id = store.begin_deployment(
            NewDeployment(
                app="web",
                environment="prod",
                version="2.0",
                previous_version="1.0",
                kind=DeploymentKind.PUSH,
                started_by="tester",
                started_from=MACHINE,
                pid=os.getpid(),
                spec_sha256="0" * 64,
                hosts=[(host, index) for index, wave in enumerate(waves, start=1) for host in wave],
            ),
            now=now,
        )
        sink(
            DeploymentStarted(
                deployment_id=deployment_id,
                app="web",
                environment="prod",
                kind="push",
                version="2.0",
                previous_version="1.0",
                wave_count=len(waves),
                host_count=len(hosts),
                failure_budget=1,
                datacenters={h.name: h.datacenter for h in hosts},
                at=now,
            )
        )
        job = ReleaseJob(deployment_id, "web", "prod", "2.0", "push", "/srv/web", 5, None, {}, "tester")
        targets = {h.name: SshTarget(h, None, None, None, 5.0, 5.0, "accept-new", False) for h in hosts}
        rollout = Rollout(deployment_id, job, targets, tuple(tuple(h.name for h in w) for w in waves), 1, 0.0)
        controller = Controller(
            store, runner, sink, pid=os.getpid(), machine=MACHINE, poll_interval=0.05, stop=stop
        )
        return await controller.run(rollout)

    return start


async def test_push_shows_the_live_screen_and_its_controls_reach_the_controller(tui_store: Store) -> None:
    ctx = Context(store=tui_store, clock=utcnow, tz=UTC, poll_interval=0.1, requested_by="tester@console")
    runner = FakeRunner(step_seconds=0.01, gate=asyncio.Event())
    loops: list[asyncio.AbstractEventLoop] = []
    app = DeployerApp(ctx, ShowPush(push(tui_store, runner, loops)))

    def live() -> LiveScreen:
        assert isinstance(app.screen, LiveScreen)
        return app.screen

    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, LiveScreen) and app.screen.polls_received > 0)
        state = app.push_state
        assert state is not None and state.deployment_id is not None
        # The budget came with the DeploymentStarted event (the store does not record it).
        await wait_for(pilot, lambda: "0 failed of 1 allowed" in screen_text(app))
        # Wave 1 is in flight, held at its switch by the gate.
        await wait_for(pilot, lambda: "▶4 running" in screen_text(app))
        assert not live().can_go_back

        await pilot.press("p")
        deployment_id = state.deployment_id
        await wait_in_thread(lambda: tui_store.control_state(deployment_id).status is DeploymentStatus.PAUSED)
        await wait_for(pilot, lambda: "‖ PAUSED" in screen_text(app))

        loops[0].call_soon_threadsafe(runner.gate.set)  # type: ignore[union-attr]
        await wait_for(pilot, lambda: "✓4 succeeded" in screen_text(app))
        await pilot.pause(0.3)
        assert "running" not in screen_text(app).splitlines()[1]  # paused: nothing new started

        await pilot.press("q")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        assert "This deployment runs in this terminal. Abort it and quit?" in screen_text(app)
        await pilot.press("y")
        await wait_for(pilot, lambda: not app.is_running, timeout=10)

    state = app.push_state
    assert state is not None and state.done and state.error is None
    assert isinstance(state.result, RolloutOutcome)
    assert state.result.status is DeploymentStatus.ABORTED
    assert list(state.result.statuses.values()).count(HostStatus.SUCCEEDED) == 4
    view = tui_store.deployment(state.result.deployment_id)
    assert view.status is DeploymentStatus.ABORTED and view.control_requested_by == "tester@console"


async def test_a_signal_stops_the_push_gracefully_and_closes_the_tui(tui_store: Store) -> None:
    ctx = Context(store=tui_store, clock=utcnow, tz=UTC, poll_interval=0.1, requested_by="tester@console")
    runner = FakeRunner(step_seconds=0.01, gate=asyncio.Event())
    loops: list[asyncio.AbstractEventLoop] = []
    stop = GracefulStop()
    app = DeployerApp(ctx, ShowPush(push(tui_store, runner, loops, stop), stop))

    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: "▶4 running" in screen_text(app))  # wave 1, held at its switch
        app.stop_gracefully("SIGTERM")  # what the process's SIGTERM handler calls
        loops[0].call_soon_threadsafe(runner.gate.set)  # type: ignore[union-attr]
        await wait_for(pilot, lambda: not app.is_running, timeout=10)

    state = app.push_state
    assert state is not None and isinstance(state.result, RolloutOutcome)
    assert state.result.status is DeploymentStatus.ABORTED
    assert state.result.reason.startswith("stopped by SIGTERM")
    statuses = list(state.result.statuses.values())
    assert statuses.count(HostStatus.SUCCEEDED) == 4 and statuses.count(HostStatus.NOT_STARTED) == 8
    assert stop.cause is StopCause.SIGTERM


async def test_a_push_that_fails_before_it_starts_closes_the_tui_and_hands_back_the_error(
    tui_store: Store,
) -> None:
    ctx = Context(store=tui_store, clock=utcnow, tz=UTC, poll_interval=0.1, requested_by="tester@console")

    async def start(sink: EventSink) -> RolloutOutcome:
        await asyncio.sleep(0.05)
        raise DeployerError("artifact ./build/web.tar.gz is missing")

    app = DeployerApp(ctx, ShowPush(start))
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: not app.is_running or isinstance(app.screen, StartingScreen))
        await wait_for(pilot, lambda: not app.is_running)
    state = app.push_state
    assert state is not None and state.done
    assert isinstance(state.error, DeployerError) and "is missing" in str(state.error)
