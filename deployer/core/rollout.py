"""What one run of the rollout loop is given and gives back, and how it is asked to stop.

Plain values (and one event) shared by the controller, the operations that start it,
the CLI and the TUI; the loop itself is :mod:`deployer.rollout.controller`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field

from deployer.core.decide import GatePlan, StopCause
from deployer.core.gates import gates_when
from deployer.core.results import DeploymentStatus, HostResult, HostStatus
from deployer.core.runner import ReleaseJob
from deployer.core.spec import Gate, GateWhen
from deployer.core.targets import SshTarget


@dataclass(frozen=True, slots=True)
class Joining:
    """Hosts that joined the inventory while a deployment ran, and the failure budget counting them."""

    targets: tuple[SshTarget, ...]
    failure_budget: int  # for every host of the deployment, the joining ones included


# Asked between waves for the hosts that joined the inventory since the deployment began
# (None: nobody joined). The operations layer re-reads the inventory; the loop itself
# does no inventory I/O, and a callback that cannot read it returns None.
Discover = Callable[[], Awaitable[Joining | None]]


@dataclass(frozen=True, slots=True)
class Rollout:
    """What one run of the loop starts with; only ``discover`` can add waves to it."""

    deployment_id: str
    job: ReleaseJob
    targets: Mapping[str, SshTarget]  # by host name: every host of every wave
    waves: tuple[tuple[str, ...], ...]
    failure_budget: int
    bake: float
    max_parallel: int | None = None
    discover: Discover | None = None
    budget_exempt: frozenset[str] = frozenset()  # failures not counted (see RolloutState)
    gates: tuple[Gate, ...] = ()  # checks between waves (none for an automatic rollback)
    stage_ahead: int | None = 1  # waves staged ahead of the running one; None: all of them
    rollback_on_halt: bool = False  # a halt is undone by automatic rollbacks (on_halt: rollback)

    @property
    def gate_plan(self) -> GatePlan:
        return GatePlan(
            before=bool(gates_when(self.gates, GateWhen.BEFORE)),
            after_wave=bool(gates_when(self.gates, GateWhen.AFTER_WAVE)),
            bake=bool(gates_when(self.gates, GateWhen.BAKE)),
        )


@dataclass(frozen=True, slots=True)
class RolloutOutcome:
    deployment_id: str
    status: DeploymentStatus
    reason: str
    statuses: Mapping[str, HostStatus]
    results: Mapping[str, HostResult] = field(default_factory=dict)
    rollback: bool = False  # it halted, and on_halt: rollback undoes that (see Decision.rollback)


class GracefulStop(asyncio.Event):
    """Set once a deployment should stop gently: no new host starts, hosts in flight finish.

    ``cause`` says why (the first request wins); the deployment then ends ``aborted``
    with that reason, and the command exits with the cause's own code.
    """

    def __init__(self) -> None:
        super().__init__()
        self.cause: StopCause | None = None

    def request(self, cause: StopCause = StopCause.REQUESTED) -> None:
        if self.cause is None:
            self.cause = cause
        self.set()
