"""A runner that plays a host's steps in memory: for the controller loop's own logic.

It streams a step event as each step starts and honours ``stop`` before its switch,
as the SSH runner's driver does, so the loop's recording, pausing and aborting are
exercised for real; only the hosts are imaginary. Its steps take ``step_seconds`` on
the ``clock`` it is given (a test's fake clock: then they end when the test moves time
on), and a test can wait for a host to reach a step (:meth:`FakeRunner.reached`).
End-to-end runs on real SSH hosts live in tests/e2e.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from deployer.core.clock import SYSTEM_CLOCK, Clock
from deployer.core.results import HostResult, HostStatus, Step
from deployer.core.runner import HostEvents, HostProbe, ReleaseJob, StageReport, StepStarted
from deployer.core.targets import SshTarget

STEPS = (
    Step.CONNECT,
    Step.UPLOAD,
    Step.STOP,
    Step.BEFORE_INSTALL,
    Step.AFTER_INSTALL,
    Step.SWITCH,
    Step.START,
    Step.VALIDATE,
    Step.PRUNE,
)


@dataclass
class FakeRunner:
    step_seconds: float = 0.0
    fail_at: dict[str, Step] = field(default_factory=dict)  # host -> the step that fails there
    versions: dict[str, str] = field(default_factory=dict)  # host -> what `current` points to
    started: list[tuple[str, datetime]] = field(default_factory=list)
    gate: asyncio.Event | None = None  # when set, hosts wait on it before their switch
    prepared: list[list[str]] = field(default_factory=list)  # each prepare call's hosts
    staged: list[str] = field(default_factory=list)  # hosts staged ahead, in order
    stopped: set[str] = field(default_factory=set)  # deployments told to stop
    clock: Clock = SYSTEM_CLOCK
    _reached: dict[tuple[str, Step], asyncio.Event] = field(default_factory=dict)

    def reached(self, host: str, step: Step) -> asyncio.Event:
        """Set once ``host`` has begun ``step`` (and told the loop)."""
        return self._reached.setdefault((host, step), asyncio.Event())

    def prepare(self, targets: Sequence[SshTarget]) -> None:
        self.prepared.append([target.host.name for target in targets])

    async def stage(self, target: SshTarget, job: ReleaseJob) -> StageReport:
        self.staged.append(target.host.name)
        return StageReport(target.host.name, staged=True)

    def stop(self, deployment_id: str) -> None:
        self.stopped.add(deployment_id)

    async def unstage(self, deployment_id: str) -> None:
        return None

    async def deploy(self, target: SshTarget, job: ReleaseJob, events: HostEvents) -> HostResult:
        name = target.host.name
        began = self.clock.now()
        self.started.append((name, began))
        previous = self.versions.get(name)
        for step in STEPS:
            switched = self.versions.get(name) == job.version and previous != job.version
            if job.deployment_id in self.stopped and not switched:
                return HostResult(
                    name,
                    HostStatus.ABORTED,
                    began,
                    self.clock.now(),
                    step=step,
                    version=self.versions.get(name),
                    previous_version=previous,
                )
            events(StepStarted(job.deployment_id, name, step, self.clock.now()))
            self.reached(name, step).set()
            if step is Step.SWITCH and self.gate is not None:
                await self.gate.wait()
            await self.clock.wait_until(self.clock.now() + timedelta(seconds=self.step_seconds))
            if self.fail_at.get(name) is step:
                return HostResult(
                    name,
                    HostStatus.FAILED,
                    began,
                    self.clock.now(),
                    step=step,
                    exit_status=1,
                    error=f"{step} exited 1",
                    version=self.versions.get(name),
                    previous_version=previous,
                )
            if step is Step.SWITCH:
                self.versions[name] = job.version
        return HostResult(
            name,
            HostStatus.SUCCEEDED,
            began,
            self.clock.now(),
            step=Step.PRUNE,
            version=job.version,
            previous_version=previous,
        )

    async def probe(self, target: SshTarget, app_target: str, deployment_id: str | None) -> HostProbe:
        return HostProbe(target.host.name, True, self.versions.get(target.host.name))

    async def aclose(self) -> None:
        return None
