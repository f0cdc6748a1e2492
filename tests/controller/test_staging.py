"""Staging ahead in the loop: which hosts are staged, when, and within which limits."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field, replace

from deployer.core.events import Event, HostStaged, Notice
from deployer.core.results import DeploymentStatus, HostStatus, Step
from deployer.core.runner import ReleaseJob, StageReport
from deployer.core.targets import SshTarget
from deployer.rollout.controller import Controller, Rollout
from deployer.store import Store
from tests.controller.fake_runner import FakeRunner
from tests.controller.test_loop import begin, hosts


@dataclass
class StagingRunner(FakeRunner):
    """Records, for each host staged, which hosts were running at that moment."""

    running: set[str] = field(default_factory=set)
    staged_while: dict[str, frozenset[str]] = field(default_factory=dict)
    failing_stage: set[str] = field(default_factory=set)
    most_held: int = 0  # the most hosts running or staged-and-waiting at once
    done: set[str] = field(default_factory=set)

    async def stage(self, target: SshTarget, job: ReleaseJob) -> StageReport:
        name = target.host.name
        self.staged_while[name] = frozenset(self.running)
        if name in self.failing_stage:
            return StageReport(name, staged=False, error="no space left")
        self.staged.append(name)
        self.most_held = max(self.most_held, len(self.running) + len(set(self.staged) - self.done))
        return StageReport(name, staged=True)

    async def deploy(self, target, job, events):  # type: ignore[no-untyped-def]
        self.running.add(target.host.name)
        try:
            return await super().deploy(target, job, events)
        finally:
            self.running.discard(target.host.name)
            self.done.add(target.host.name)


def run(store: Store, runner: FakeRunner, rollout: Rollout, limit: int | None = None) -> tuple:
    events: list[Event] = []
    controller = Controller(
        store, runner, events.append, pid=1, machine="here", poll_interval=0.02, connection_limit=limit
    )
    outcome = asyncio.run(asyncio.wait_for(controller.run(rollout), timeout=30))
    return outcome, events


def waves_of(count: int, size: int) -> list[list]:
    fleet = hosts(count * size, 1)
    return [fleet[i * size : (i + 1) * size] for i in range(count)]


def test_the_next_wave_is_staged_while_this_one_runs_never_a_host_of_the_running_wave(store: Store) -> None:
    waves = waves_of(4, 3)
    runner = StagingRunner(step_seconds=0.01)
    outcome, events = run(store, runner, begin(store, waves, budget=0, stage_ahead=1))
    assert outcome.status is DeploymentStatus.SUCCEEDED
    wave_of = {h.name: index for index, wave in enumerate(waves, 1) for h in wave}
    # Waves 2-4 are staged; wave 1 starts at once (staged at its own go).
    assert sorted(runner.staged) == sorted(h.name for wave in waves[1:] for h in wave)
    for name, running in runner.staged_while.items():
        assert all(wave_of[other] < wave_of[name] for other in running), (name, running)
    view = store.deployment(outcome.deployment_id)
    assert {h.name for h in view.hosts if h.staged} == set(runner.staged)
    assert {e.host for e in events if isinstance(e, HostStaged)} == set(runner.staged)


def test_stage_ahead_all_stages_every_later_wave_and_zero_none(store: Store) -> None:
    waves = waves_of(4, 2)
    everything = StagingRunner(step_seconds=0.05)
    run(store, everything, begin(store, waves, budget=0, stage_ahead=None))
    first = {h.name for h in waves[0]}
    # With every later wave staged, the last wave's hosts were staged while wave 1 ran.
    assert all(everything.staged_while[h.name] <= first for h in waves[3])
    nothing = StagingRunner()
    run(store, nothing, begin(store, waves, budget=0, stage_ahead=0))
    assert nothing.staged == []


def test_a_host_whose_staging_failed_is_deployed_at_its_wave_and_not_counted_before(store: Store) -> None:
    waves = waves_of(3, 2)
    runner = StagingRunner(failing_stage={waves[1][0].name})
    outcome, _ = run(store, runner, begin(store, waves, budget=0, stage_ahead=1))
    # Budget 0: a failed staging counted as a failure would have halted the deployment.
    assert outcome.status is DeploymentStatus.SUCCEEDED
    assert waves[1][0].name in {name for name, _ in runner.started}
    view = store.deployment(outcome.deployment_id)
    assert not next(h for h in view.hosts if h.name == waves[1][0].name).staged


def test_a_halt_leaves_the_staged_hosts_pending_and_untouched(store: Store) -> None:
    waves = waves_of(3, 2)
    runner = StagingRunner(fail_at={waves[0][0].name: Step.VALIDATE})
    outcome, _ = run(store, runner, begin(store, waves, budget=0, stage_ahead=1))
    assert outcome.status is DeploymentStatus.HALTED
    view = store.deployment(outcome.deployment_id)
    for host in waves[1]:
        shown = next(h for h in view.hosts if h.name == host.name)
        assert shown.status is HostStatus.NOT_STARTED and host.name not in {n for n, _ in runner.started}


def test_waves_larger_than_the_open_file_limit_run_in_parts_said_once_none_failing(store: Store) -> None:
    waves = waves_of(2, 6)
    runner = StagingRunner(step_seconds=0.01)
    rollout = replace(begin(store, waves, budget=0, stage_ahead=1), max_parallel=None)
    outcome, events = run(store, runner, rollout, limit=4)
    assert outcome.status is DeploymentStatus.SUCCEEDED
    notices = [e.text for e in events if isinstance(e, Notice)]
    assert len(notices) == 1 and "lets 4 hosts hold a connection at once" in notices[0]
    assert "6 of the largest wave" in notices[0]
    assert runner.most_held <= 4
