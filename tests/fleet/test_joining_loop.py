"""The rollout loop on a fake runner and a real store: hosts joining between waves, and a gentle stop."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import UTC, datetime

import pytest

from deployer.core.events import Event, HostsJoined, WaveStarted
from deployer.core.results import ControlAction, DeploymentStatus, HostStatus, Step
from deployer.core.rollout import GracefulStop, Joining, Rollout, RolloutOutcome
from deployer.core.targets import Host
from deployer.rollout.controller import Controller
from deployer.store import Store, open_store
from tests.controller.fake_runner import FakeRunner
from tests.controller.test_loop import begin, hosts, target


@pytest.fixture
def store(tmp_path) -> Store:  # type: ignore[no-untyped-def]
    with open_store(f"sqlite:///{tmp_path / 'state.db'}") as store:
        yield store


class Inventory:
    """What a discover callback sees: hosts that show up after some number of asks."""

    def __init__(self, arrivals: dict[int, list[Host]], budget: int) -> None:
        self.arrivals = arrivals  # the ask (1-based) -> hosts that appear then
        self.budget = budget
        self.asks = 0

    async def discover(self) -> Joining | None:
        self.asks += 1
        joined = self.arrivals.get(self.asks, [])
        return Joining(tuple(target(h) for h in joined), self.budget) if joined else None


def run(store: Store, runner: FakeRunner, rollout: Rollout, events: list[Event], **options) -> RolloutOutcome:  # type: ignore[no-untyped-def]
    controller = Controller(
        store, runner, events.append, pid=1, machine="here", poll_interval=0.02, **options
    )
    return asyncio.run(asyncio.wait_for(controller.run(rollout), timeout=30))


def test_hosts_that_join_become_a_new_last_wave_recorded_before_they_start(store: Store) -> None:
    fleet = hosts(6)
    newcomers = [Host("n1", "127.0.1.1", "dc1"), Host("n2", "127.0.1.2", "dc2")]
    inventory = Inventory({1: newcomers}, budget=3)  # they show up while wave 1 runs
    rollout = begin(store, [fleet[:3], fleet[3:]], budget=1)
    events: list[Event] = []
    outcome = run(store, FakeRunner(), replace(rollout, discover=inventory.discover), events)

    assert outcome.status is DeploymentStatus.SUCCEEDED
    view = store.deployment(outcome.deployment_id)
    waves = {h.name: h.wave for h in view.hosts}
    assert waves == {**{h.name: 1 for h in fleet[:3]}, **{h.name: 2 for h in fleet[3:]}, "n1": 3, "n2": 3}
    assert all(h.status is HostStatus.SUCCEEDED for h in view.hosts)
    joined = [e for e in events if isinstance(e, HostsJoined)]
    assert [(e.wave, list(e.datacenters), e.failure_budget) for e in joined] == [(3, ["n1", "n2"], 3)]
    started = [(e.index, e.wave_count) for e in events if isinstance(e, WaveStarted)]
    assert started == [(1, 2), (2, 3), (3, 3)]
    assert inventory.asks == 3  # after each wave, the new one included


def test_a_host_that_joins_during_the_last_wave_is_still_deployed(store: Store) -> None:
    fleet = hosts(3)
    inventory = Inventory({1: [Host("late", "127.0.1.9", "dc3")]}, budget=0)
    rollout = begin(store, [fleet], budget=0)
    outcome = run(store, FakeRunner(), replace(rollout, discover=inventory.discover), [])
    assert outcome.statuses["late"] is HostStatus.SUCCEEDED
    assert {h.name: h.wave for h in store.deployment(outcome.deployment_id).hosts}["late"] == 2


def test_nobody_joins_a_deployment_over_its_budget(store: Store) -> None:
    fleet = hosts(6)
    inventory = Inventory({1: [Host("n1", "127.0.1.1", "dc1")]}, budget=5)
    runner = FakeRunner(fail_at={fleet[0].name: Step.VALIDATE, fleet[1].name: Step.VALIDATE})
    rollout = begin(store, [fleet[:3], fleet[3:]], budget=1)
    outcome = run(store, runner, replace(rollout, discover=inventory.discover), [])
    assert outcome.status is DeploymentStatus.HALTED
    assert inventory.asks == 0 and "n1" not in outcome.statuses


def test_a_stop_lets_hosts_in_flight_finish_and_starts_no_other(store: Store) -> None:
    fleet = hosts(6)
    runner = FakeRunner(step_seconds=0.05)  # 9 steps: a host takes about 0.45 s
    rollout = begin(store, [fleet[:3], fleet[3:]], budget=0)

    async def scenario() -> RolloutOutcome:
        stop = GracefulStop()
        controller = Controller(
            store, runner, lambda e: None, pid=1, machine="here", poll_interval=0.02, stop=stop
        )
        task = asyncio.create_task(controller.run(rollout))
        while len(runner.started) < 3:
            await asyncio.sleep(0.01)
        stop.set()  # wave 1 is at its first steps: an abort would stop it before the switch
        return await asyncio.wait_for(task, timeout=30)

    outcome = asyncio.run(scenario())
    assert outcome.status is DeploymentStatus.ABORTED
    assert (
        outcome.reason == "the controller was asked to stop; 3 hosts were not touched and keep their version"
    )
    assert [outcome.statuses[h.name] for h in fleet] == [HostStatus.SUCCEEDED] * 3 + [
        HostStatus.NOT_STARTED
    ] * 3
    assert {name for name, _ in runner.started} == {h.name for h in fleet[:3]}


def test_a_stop_after_the_last_host_started_ends_as_the_hosts_do(store: Store) -> None:
    fleet = hosts(3)
    gate = asyncio.Event()
    runner = FakeRunner(gate=gate)
    rollout = begin(store, [fleet], budget=0)

    async def scenario() -> RolloutOutcome:
        stop = GracefulStop()
        controller = Controller(
            store, runner, lambda e: None, pid=1, machine="here", poll_interval=0.02, stop=stop
        )
        task = asyncio.create_task(controller.run(rollout))
        while len(runner.started) < 3:
            await asyncio.sleep(0.01)
        stop.set()
        gate.set()
        return await asyncio.wait_for(task, timeout=30)

    assert asyncio.run(scenario()).status is DeploymentStatus.SUCCEEDED


def test_an_operators_abort_still_stops_hosts_in_flight_during_a_stop(store: Store) -> None:
    fleet = hosts(3)
    runner = FakeRunner(step_seconds=0.05)
    rollout = begin(store, [fleet], budget=0)

    async def scenario() -> RolloutOutcome:
        stop = GracefulStop()
        controller = Controller(
            store, runner, lambda e: None, pid=1, machine="here", poll_interval=0.02, stop=stop
        )
        task = asyncio.create_task(controller.run(rollout))
        while len(runner.started) < 3:
            await asyncio.sleep(0.01)
        stop.set()
        store.request_control(
            rollout.deployment_id, ControlAction.ABORT, requested_by="ana", now=datetime.now(UTC)
        )
        return await asyncio.wait_for(task, timeout=30)

    outcome = asyncio.run(scenario())
    assert outcome.status is DeploymentStatus.ABORTED
    assert set(outcome.statuses.values()) == {HostStatus.ABORTED}  # stopped before their switch
