"""The rollout loop on a fake runner and a real store: halting, the fleet-wide budget, bake, pause, abort."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import TypeVar

import pytest

from deployer.core.events import Baking, ControlChanged, Event, HostFinished, WaveFinished, WaveStarted
from deployer.core.results import ControlAction, DeploymentKind, DeploymentStatus, HostStatus, Step
from deployer.core.rollout import Rollout, RolloutOutcome
from deployer.core.runner import ReleaseJob
from deployer.core.targets import Host, SshTarget
from deployer.rollout.controller import Controller
from deployer.store import NewDeployment, Store, open_store
from tests.controller.fake_runner import FakeRunner
from tests.fake_clock import FakeClock

E = TypeVar("E", bound=Event)
WITHIN = 10.0  # real seconds any one wait of these tests may take, at most


def hosts(count: int = 12, datacenters: int = 3) -> list[Host]:
    per = count // datacenters
    return [Host(f"h{i + 1:02d}", f"127.0.0.{i + 1}", f"dc{i // per + 1}") for i in range(count)]


def target(host: Host) -> SshTarget:
    return SshTarget(host, None, None, None, 1.0, 1.0, "strict", False)


@pytest.fixture
def store(tmp_path) -> Store:  # type: ignore[no-untyped-def]
    with open_store(f"sqlite:///{tmp_path / 'state.db'}") as store:
        yield store


def begin(
    store: Store, waves: list[list[Host]], budget: int, bake: float = 0.0, stage_ahead: int | None = 0
) -> Rollout:
    """A rollout of ``waves``; no staging ahead unless asked (tests/controller/test_staging.py)."""
    deployment_id = store.begin_deployment(
        NewDeployment(
            app="web",
            environment="prod",
            version="2.0",
            previous_version="1.0",
            kind=DeploymentKind.PUSH,
            started_by="test",
            started_from="here",
            pid=1,
            spec_sha256="0" * 64,
            hosts=[(h, i) for i, wave in enumerate(waves, start=1) for h in wave],
        ),
        now=datetime.now(UTC),
    )
    job = ReleaseJob(deployment_id, "web", "prod", "2.0", "push", "/srv/web", 5, None, {}, "test")
    return Rollout(
        deployment_id,
        job,
        {h.name: target(h) for wave in waves for h in wave},
        tuple(tuple(h.name for h in wave) for wave in waves),
        budget,
        bake,
        stage_ahead=stage_ahead,
    )


def run(store: Store, runner: FakeRunner, rollout: Rollout, events: list[Event] | None = None):  # type: ignore[no-untyped-def]
    sink = events.append if events is not None else (lambda event: None)
    controller = Controller(store, runner, sink, pid=1, machine="here", poll_interval=0.02)
    return asyncio.run(asyncio.wait_for(controller.run(rollout), timeout=30))


class Told:
    """The events the loop told, as a sink; a test waits (bounded) for the one it needs."""

    def __init__(self) -> None:
        self.events: list[Event] = []
        self._more = asyncio.Event()

    def __call__(self, event: Event) -> None:
        self.events.append(event)
        self._more.set()

    async def first(self, kind: type[E], test: Callable[[E], bool] = lambda event: True) -> E:
        async with asyncio.timeout(WITHIN):
            while True:
                for event in self.events:
                    if isinstance(event, kind) and test(event):
                        return event
                self._more.clear()
                await self._more.wait()


def start(
    store: Store,
    runner: FakeRunner,
    rollout: Rollout,
    told: Told,
    clock: FakeClock,
    poll_interval: float = 1.0,
) -> asyncio.Task[RolloutOutcome]:
    """The loop of ``rollout``, running on ``clock`` (the runner's too) as a task."""
    runner.clock = clock
    controller = Controller(
        store, runner, told, pid=1, machine="here", clock=clock, poll_interval=poll_interval
    )
    return asyncio.create_task(controller.run(rollout))


async def reached(runner: FakeRunner, step: Step, *names: str) -> None:
    async with asyncio.timeout(WITHIN):
        for name in names:
            await runner.reached(name, step).wait()


def test_halts_in_the_wave_where_the_third_failure_lands(store: Store) -> None:
    # 12 hosts in 3 datacenters, waves of 3 striped (one per datacenter); validate fails on the
    # 4 hosts of dc1; budget 2. Waves 1 and 2 lose one dc1 host each (2 failed: go on), wave 3
    # loses the third: halt after wave 3; wave 4 never starts and keeps the old version.
    fleet = hosts()
    by_dc = [[h for h in fleet if h.datacenter == f"dc{d}"] for d in (1, 2, 3)]
    waves = [[by_dc[0][i], by_dc[1][i], by_dc[2][i]] for i in range(4)]
    runner = FakeRunner(fail_at={h.name: Step.VALIDATE for h in by_dc[0]})
    outcome = run(store, runner, begin(store, waves, budget=2))
    assert outcome.status is DeploymentStatus.HALTED
    view = store.deployment(outcome.deployment_id)
    statuses = {h.name: h.status for h in view.hosts}
    assert [statuses[h.name] for h in waves[3]] == [HostStatus.NOT_STARTED] * 3
    assert sum(s is HostStatus.FAILED for s in statuses.values()) == 3
    assert sum(s is HostStatus.SUCCEEDED for s in statuses.values()) == 6
    started = {name for name, _ in runner.started}
    assert started.isdisjoint(h.name for h in waves[3])
    # Once a host of each wave was past its switch, the runner could connect to the next
    # wave (wave 4's hosts were connected to, never deployed to: connecting changes nothing
    # on a host).
    assert runner.prepared == [[h.name for h in wave] for wave in waves[1:]]
    assert view.status is DeploymentStatus.HALTED
    assert "3 hosts failed" in (view.reason or "")


def test_the_next_wave_is_connected_to_once_a_host_of_this_one_is_past_its_switch(store: Store) -> None:
    # Connecting to the next wave must not compete with this wave's uploads: it begins
    # when a host of this wave reaches its hooks (the fake runner holds hosts before the
    # switch until the gate opens).
    fleet = hosts(4, 2)
    gate = asyncio.Event()
    runner = FakeRunner(gate=gate)
    rollout = begin(store, [fleet[:2], fleet[2:]], budget=0)

    async def scenario() -> tuple[list[list[str]], list[list[str]], RolloutOutcome]:
        task = start(store, runner, rollout, Told(), FakeClock())
        await reached(runner, Step.SWITCH, "h01", "h02")  # wave 1 is in flight, held before its switch
        before_switch = list(runner.prepared)
        gate.set()
        outcome = await asyncio.wait_for(task, timeout=WITHIN)
        return before_switch, runner.prepared, outcome

    before_switch, prepared, outcome = asyncio.run(scenario())
    assert before_switch == []
    assert prepared == [["h03", "h04"]]
    assert outcome.status is DeploymentStatus.SUCCEEDED


def test_the_budget_is_fleet_wide_and_a_fully_failed_wave_does_not_end_the_run(store: Store) -> None:
    fleet = hosts(8, 2)
    waves = [fleet[0:2], fleet[2:4], fleet[4:6], fleet[6:8]]
    # Wave 1 fails entirely (2 failures, budget 2: go on); wave 3 loses one more: halt.
    runner = FakeRunner(fail_at={"h01": Step.START, "h02": Step.VALIDATE, "h05": Step.VALIDATE})
    outcome = run(store, runner, begin(store, waves, budget=2))
    assert outcome.status is DeploymentStatus.HALTED
    assert outcome.statuses["h03"] is HostStatus.SUCCEEDED
    assert outcome.statuses["h07"] is HostStatus.NOT_STARTED


def test_hosts_that_end_together_each_count_the_failures_before_them(store: Store) -> None:
    fleet = hosts(4, 2)
    # No step takes time: the four end before the loop wakes, and it records them together.
    runner = FakeRunner(fail_at={h.name: Step.START for h in fleet[:3]})
    events: list[Event] = []
    outcome = run(store, runner, begin(store, [fleet], budget=3), events)
    assert outcome.status is DeploymentStatus.SUCCEEDED
    told = [e.failed_count for e in events if isinstance(e, HostFinished) and e.result.host != "h04"]
    assert sorted(told) == [1, 2, 3]
    assert store.failed_hosts_of_last_deployment("web", "prod") == {"h01", "h02", "h03"}


def test_succeeds_within_the_budget_and_records_versions(store: Store) -> None:
    fleet = hosts(6, 3)
    runner = FakeRunner(fail_at={"h02": Step.BEFORE_INSTALL})
    outcome = run(store, runner, begin(store, [fleet[:3], fleet[3:]], budget=1))
    assert outcome.status is DeploymentStatus.SUCCEEDED
    current = store.current_versions("web", "prod")
    assert current == {h.name: "2.0" for h in fleet if h.name != "h02"}
    assert store.failed_hosts_of_last_deployment("web", "prod") == {"h02"}


def test_waves_run_in_order_and_bake_between_them(store: Store) -> None:
    fleet = hosts(4, 2)
    runner = FakeRunner()
    rollout = begin(store, [fleet[:2], fleet[2:]], budget=0, bake=60)
    clock, told = FakeClock(), Told()

    async def scenario() -> tuple[set[str], RolloutOutcome]:
        task = start(store, runner, rollout, told, clock)
        await told.first(WaveFinished)
        baking = await told.first(Baking)
        assert baking.until == clock.now() + timedelta(seconds=60)
        clock.advance(59.9)
        await clock.sleeping()  # the loop woke, looked, and waits again
        started_while_baking = {name for name, _ in runner.started}
        clock.advance(0.1)
        return started_while_baking, await asyncio.wait_for(task, timeout=WITHIN)

    started_while_baking, outcome = asyncio.run(scenario())
    assert outcome.status is DeploymentStatus.SUCCEEDED
    assert started_while_baking == {"h01", "h02"}
    first_wave_end = max(
        e.result.finished_at
        for e in told.events
        if isinstance(e, HostFinished) and e.result.host in ("h01", "h02")
    )
    second_wave_start = min(t for name, t in runner.started if name in ("h03", "h04"))
    assert second_wave_start - first_wave_end == timedelta(seconds=60)
    assert [e.index for e in told.events if isinstance(e, WaveStarted)] == [1, 2]


def test_pause_from_another_process_starts_nothing_new_until_resumed(store: Store, tmp_path) -> None:  # type: ignore[no-untyped-def]
    fleet = hosts(4, 2)
    gate = asyncio.Event()
    runner = FakeRunner(gate=gate)
    rollout = begin(store, [fleet[:2], fleet[2:]], budget=0)
    other = open_store(f"sqlite:///{tmp_path / 'state.db'}")  # another process's connection

    clock, told = FakeClock(), Told()

    async def scenario() -> object:
        task = start(store, runner, rollout, told, clock, poll_interval=0.02)
        await reached(runner, Step.SWITCH, "h01", "h02")  # wave 1 is in flight, held before its switch
        other.request_control(rollout.deployment_id, ControlAction.PAUSE, requested_by="op", now=clock.now())
        clock.advance(0.02)  # the next poll reads it
        await told.first(ControlChanged, lambda e: e.state == "paused")
        gate.set()  # wave 1 finishes while paused
        await told.first(WaveFinished)
        for _ in range(15):  # the loop polls on, paused, and starts nothing
            clock.advance(0.02)
            await clock.sleeping()
        paused_view = other.deployment(rollout.deployment_id)
        started_while_paused = {name for name, _ in runner.started}
        other.request_control(rollout.deployment_id, ControlAction.RESUME, requested_by="op", now=clock.now())
        clock.advance(0.02)
        outcome = await asyncio.wait_for(task, timeout=WITHIN)
        return paused_view, started_while_paused, outcome

    paused_view, started_while_paused, outcome = asyncio.run(scenario())  # type: ignore[misc]
    other.close()
    assert paused_view.status is DeploymentStatus.PAUSED
    assert started_while_paused == {"h01", "h02"}
    assert outcome.status is DeploymentStatus.SUCCEEDED
    assert {name for name, _ in runner.started} == {"h01", "h02", "h03", "h04"}


def test_abort_stops_hosts_before_their_switch(store: Store, tmp_path) -> None:  # type: ignore[no-untyped-def]
    fleet = hosts(4, 2)
    runner = FakeRunner(step_seconds=0.05)
    rollout = begin(store, [fleet[:2], fleet[2:]], budget=0)
    other = open_store(f"sqlite:///{tmp_path / 'state.db'}")
    clock, told = FakeClock(), Told()

    async def scenario() -> RolloutOutcome:
        task = start(store, runner, rollout, told, clock, poll_interval=0.02)
        await reached(runner, Step.CONNECT, "h01", "h02")
        for step in (Step.UPLOAD, Step.STOP, Step.BEFORE_INSTALL):  # the first wave goes mid-way
            clock.advance(0.05)
            await reached(runner, step, "h01", "h02")
        other.request_control(rollout.deployment_id, ControlAction.ABORT, requested_by="op", now=clock.now())
        clock.advance(0.02)  # the loop's next poll reads it; the hosts are still in their step
        await told.first(ControlChanged, lambda e: e.state == "aborting")
        clock.advance(0.05)  # their step ends: the next one is not begun
        return await asyncio.wait_for(task, timeout=WITHIN)

    outcome = asyncio.run(scenario())
    other.close()
    assert outcome.status is DeploymentStatus.ABORTED
    assert outcome.statuses["h01"] is HostStatus.ABORTED
    assert store.deployment(outcome.deployment_id).hosts[0].step is Step.AFTER_INSTALL
    assert outcome.statuses["h03"] is HostStatus.NOT_STARTED
    assert "h03" not in {name for name, _ in runner.started}
    assert store.current_versions("web", "prod") == {}
