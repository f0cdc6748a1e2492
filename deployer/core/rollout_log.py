"""The rollout log: what the controller's loop records, and reads back, of one deployment.

The loop sees its store only through :class:`RolloutLog`, the few calls it makes, so it
depends on no database library: :class:`deployer.store.Store` is the implementation (it
satisfies the protocol by its shape, without naming it), and a test may pass another.
Every write is committed before the call returns; every timestamp going in must be
timezone-aware.

:class:`ControlState`, what the loop polls, lives here with the protocol rather than
with the store's other views, for the same reason.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from deployer.core.results import ControlAction, DeploymentStatus, HostResult, HostStatus, Step
from deployer.core.targets import Host


@dataclass(frozen=True, slots=True)
class ControlState:
    """What the controller polls: the deployment's status and the latest operator request.

    Requests are level-triggered: ``requested`` is the operator's latest wish (PAUSE:
    be paused, RESUME or None: run, ABORT: stop), not an event to consume; the
    controller compares it with ``status`` on every pass.
    """

    deployment_id: str
    status: DeploymentStatus
    requested: ControlAction | None
    requested_at: datetime | None
    requested_by: str | None

    @property
    def wants_pause(self) -> bool:
        return self.requested is ControlAction.PAUSE

    @property
    def wants_abort(self) -> bool:
        return self.requested is ControlAction.ABORT


class RolloutLog(Protocol):
    """The calls the controller's loop makes on its store (see :class:`deployer.store.Store`)."""

    def heartbeat(self, deployment_id: str, *, pid: int, started_from: str, now: datetime) -> None:
        """The controller (``started_from``, ``pid``) is alive; DeploymentLocked once it is not the owner."""
        ...

    def control_state(self, deployment_id: str) -> ControlState:
        """The deployment's status and the operator's latest request."""
        ...

    def set_status(self, deployment_id: str, status: DeploymentStatus, now: datetime) -> None:
        """A pause (PAUSED) or a resume (RUNNING) took effect."""
        ...

    def add_hosts(self, deployment_id: str, hosts: Sequence[tuple[Host, int]], now: datetime) -> None:
        """(host, wave) pairs that joined the running deployment, PENDING."""
        ...

    def record_steps(self, deployment_id: str, steps: Sequence[tuple[str, Step, datetime]]) -> None:
        """Each (host, step, when): the host is RUNNING at that step."""
        ...

    def mark_staged(self, deployment_id: str, hosts: Sequence[str], now: datetime) -> None:
        """``hosts`` (still pending) have their release staged ahead of their wave."""
        ...

    def record_host_results(self, deployment_id: str, results: Sequence[HostResult]) -> None:
        """Hosts' final status, steps and version, in one write."""
        ...

    def reconcile_host(
        self,
        deployment_id: str,
        host: str,
        *,
        status: HostStatus,
        version: str | None,
        note: str,
        now: datetime,
        step: Step | None = None,
        exit_status: int | None = None,
    ) -> None:
        """A host's outcome as a probe of the host itself found it, with ``note`` saying how."""
        ...

    def record_gate_check(
        self, deployment_id: str, name: str, *, passed: bool, message: str, at: datetime
    ) -> None:
        """One more check of the gate ``name``, and what it said."""
        ...

    def finish_deployment(
        self, deployment_id: str, status: DeploymentStatus, now: datetime, *, reason: str | None = None
    ) -> None:
        """The final ``status`` (and why); the app+environment's lock is released."""
        ...
