"""The decide step of the rollout loop: pure, no I/O, no clock (``now`` is an argument).

The controller observes (the statuses it recorded, the operator's control
requests), calls :func:`decide`, and carries out the :class:`Decision`. Because
every pass recomputes the next step from what is recorded, a controller that is
killed and resumed carries on from the store alone.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum

from deployer.core.policy import may_start_count, should_halt
from deployer.core.results import DeploymentStatus, HostStatus
from deployer.core.wording import count_of


class Control(StrEnum):
    """What the operator asked for, last."""

    RUN = "run"
    PAUSE = "pause"
    ABORT = "abort"


class StopCause(StrEnum):
    """Why a deployment was asked to stop gently (see :class:`deployer.core.rollout.GracefulStop`)."""

    REQUESTED = "requested"  # by the program itself (sync --watch's last round, a test)
    SIGINT = "SIGINT"
    SIGTERM = "SIGTERM"
    DEADLINE = "deadline"

    @property
    def description(self) -> str:
        return _STOP_DESCRIPTIONS[self]


_STOP_DESCRIPTIONS = {
    StopCause.REQUESTED: "the controller was asked to stop",
    StopCause.SIGINT: "interrupted by Ctrl-C (SIGINT)",
    StopCause.SIGTERM: "stopped by SIGTERM",
    StopCause.DEADLINE: "the deadline passed",
}


class StopReason(StrEnum):
    """Why :func:`decide` starts no new host: the deployment is stopping, and ends so."""

    BUDGET = "budget"  # more hosts failed than the failure budget allows: a halt
    GATE = "gate"  # a gate failed: a halt
    ABORT = "abort"  # the operator aborted
    SIGNAL = "signal"  # SIGINT or SIGTERM: a graceful stop
    DEADLINE = "deadline"  # the command's deadline passed: a graceful stop
    REQUESTED = "requested"  # the program asked for a graceful stop

    @property
    def doing(self) -> str:
        """What the loop tells once it begins to stop: aborting, stopping or halting."""
        if self in _HALTS:
            return "halting"
        return "aborting" if self is StopReason.ABORT else "stopping"

    @property
    def ends_as(self) -> DeploymentStatus:
        """The status the deployment ends with once no host is in flight."""
        return DeploymentStatus.HALTED if self in _HALTS else DeploymentStatus.ABORTED


_HALTS = frozenset({StopReason.BUDGET, StopReason.GATE})
_STOP_REASONS = {
    StopCause.REQUESTED: StopReason.REQUESTED,
    StopCause.SIGINT: StopReason.SIGNAL,
    StopCause.SIGTERM: StopReason.SIGNAL,
    StopCause.DEADLINE: StopReason.DEADLINE,
}


@dataclass(frozen=True, slots=True)
class GatePlan:
    """Which kinds of gate a deployment has (see :mod:`deployer.core.gates`)."""

    before: bool = False  # checked once before wave 1
    after_wave: bool = False  # checked once after each wave's bake, the last wave's too
    bake: bool = False  # polled during each bake (by the controller, while decide waits)

    @property
    def watches_last_wave(self) -> bool:
        """The last wave bakes too, so the gates see it serve before the deployment ends."""
        return self.after_wave or self.bake


@dataclass(frozen=True, slots=True)
class RolloutState:
    """Everything :func:`decide` needs, observed from the controller's record."""

    waves: tuple[tuple[str, ...], ...]  # host names per wave, in plan order
    statuses: Mapping[str, HostStatus]  # every planned host's status now
    failure_budget: int  # failed hosts tolerated; one more halts
    bake: float  # seconds to wait between waves
    max_parallel: int | None = None  # at most this many hosts at once; None = the wave size
    wave_finished_at: Mapping[int, datetime] = field(default_factory=dict)  # 1-based wave -> end
    control: Control = Control.RUN
    stop: StopCause | None = None  # a graceful stop was asked (a signal, the deadline), and why
    rollback_on_halt: bool = False  # a halt is undone by an automatic rollback (on_halt: rollback)
    restart: bool = False  # a restart: its hosts are restarted, not updated (said in the final reason)
    # Hosts whose failures the budget does not count: in an automatic rollback, the hosts
    # that failed the deployment being undone (known bad; they must not stop the others).
    budget_exempt: frozenset[str] = frozenset()
    gates: GatePlan = GatePlan()
    # Gate checks done and passed: 0 for the ``before`` gates, N for those after wave N.
    gated: frozenset[int] = frozenset()
    gate_failure: str | None = None  # a failing gate's verdict ("gate error-rate: ..."): halt

    @property
    def failed_count(self) -> int:
        """Failed hosts that count against the budget."""
        return counted_failures(self.statuses, self.budget_exempt)

    @property
    def running_count(self) -> int:
        return sum(1 for status in self.statuses.values() if status is HostStatus.RUNNING)


@dataclass(frozen=True, slots=True)
class Decision:
    """What the loop does next: the one answer it acts on, judged once per pass."""

    start: tuple[str, ...] = ()  # hosts to start now
    wave: int | None = None  # the wave being worked on (1-based)
    wait_until: datetime | None = None  # nothing to start before this moment (bake)
    outcome: DeploymentStatus | None = None  # the deployment is over, with this status
    # Stopping: start nothing, let in-flight hosts finish (None: carry on).
    stop: StopReason | None = None
    # Why it stops, in a sentence; with an outcome, the deployment's final reason (final_reason).
    description: str = ""
    rollback: bool = False  # a halt that an automatic rollback (on_halt: rollback) undoes
    # Check the gates now: 0 the ``before`` gates, N the ``after_wave`` gates of wave N.
    check_gates: int | None = None


def counted_failures(statuses: Mapping[str, HostStatus], exempt: frozenset[str] = frozenset()) -> int:
    """How many hosts count against the failure budget: failed ones, those in ``exempt`` aside."""
    return sum(1 for name, status in statuses.items() if status.is_failure and name not in exempt)


def ending_status(statuses: Mapping[str, HostStatus]) -> DeploymentStatus:
    """How a deployment that ran every wave ends: SUCCEEDED only if some host succeeded.

    The failure budget is how much failure a user accepts on the way, not permission to
    call nothing a success: 2 hosts that both fail within a budget of 5 end FAILED, and
    their version never becomes good.
    """
    if any(status is HostStatus.SUCCEEDED for status in statuses.values()):
        return DeploymentStatus.SUCCEEDED
    return DeploymentStatus.FAILED


def active_wave(state: RolloutState) -> int | None:
    """The first wave (1-based) that still has a host pending or running; None when all are done."""
    for index, hosts in enumerate(state.waves, start=1):
        if any(not state.statuses[name].is_final for name in hosts):
            return index
    return None


def decide(state: RolloutState, now: datetime) -> Decision:
    """The next step of a rolling deployment.

    In order of precedence:
    1. Stop (see :func:`stopping`): start nothing, let in-flight hosts finish, then end
       ``aborted`` (an abort, a graceful stop) or ``halted`` (over the failure budget,
       counted across all waves, not per wave; or a gate failed), rolled back when
       ``rollback_on_halt``.
    3. All waves done: with gates that watch the waves, the last wave bakes and its
       ``after_wave`` gates are checked first; then ``succeeded`` if a host succeeded
       (failures within the budget are reported, not fatal); ``failed`` if none did
       (see :func:`ending_status`).
    4. Pause: start nothing, end nothing.
    5. A new wave waits ``bake`` seconds after the previous wave's last host finished,
       then for the gates after the previous wave (before wave 1: the ``before`` gates).
    6. Otherwise start as many pending hosts of the active wave as the concurrency bound allows.

    Worked example: 12 hosts in 3 waves of 4, budget 2. Wave 1 ends with 1 failure, wave 2
    loses 2 more hosts: 3 > 2, so wave 3 never starts and the deployment ends halted once
    wave 2's last host is done; wave 3's hosts keep their old version.
    """
    running = state.running_count
    stop = stopping(state)
    if stop is not None:
        reason, description = stop
        outcome = reason.ends_as if running == 0 else None
        return Decision(
            outcome=outcome,
            stop=reason,
            description=final_reason(state, outcome, description) if outcome else description,
            rollback=reason in _HALTS and state.rollback_on_halt,
        )
    wave = active_wave(state)
    if wave is None:
        return _after_last_wave(state, now)
    if state.control is Control.PAUSE:
        return Decision(wave=wave)
    hosts = state.waves[wave - 1]
    pending = [name for name in hosts if state.statuses[name] is HostStatus.PENDING]
    wave_untouched = len(pending) == len(hosts)
    previous_end = state.wave_finished_at.get(wave - 1)
    if wave_untouched and previous_end is not None and state.bake > 0:
        ready_at = previous_end + timedelta(seconds=state.bake)
        if now < ready_at:
            return Decision(wave=wave, wait_until=ready_at)
    if wave_untouched and _gates_due(state, wave - 1):
        return Decision(wave=wave, check_gates=wave - 1)
    count = may_start_count(
        pending_count=len(pending),
        in_flight_count=running,
        wave_size=len(hosts),
        max_parallel=state.max_parallel,
    )
    return Decision(start=tuple(pending[:count]), wave=wave)


def stopping(state: RolloutState) -> tuple[StopReason, str] | None:
    """Whether the deployment stops starting hosts, why, and that in a sentence; None: go on.

    In order of precedence:
    1. The operator's abort: "aborted by the operator".
    2. More failed hosts than the budget: "3 hosts failed, more than the 2 allowed".
    3. A graceful stop (a signal, the deadline), while hosts are left to start: it counts
       as an abort. Once every host has started there is nothing left to stop, and the
       hosts in flight run to their end as usual.
    4. A failed gate: its verdict ("gate error-rate: ...").
    """
    failed = state.failed_count
    if state.control is Control.ABORT:
        return StopReason.ABORT, "aborted by the operator"
    if should_halt(failed, state.failure_budget):
        return (
            StopReason.BUDGET,
            f"{count_of(failed, 'host')} failed, more than the {state.failure_budget} allowed",
        )
    if state.stop is not None and any(status is HostStatus.PENDING for status in state.statuses.values()):
        return _STOP_REASONS[state.stop], state.stop.description
    if state.gate_failure is not None:
        return StopReason.GATE, state.gate_failure
    return None


def _gates_due(state: RolloutState, point: int) -> bool:
    """Whether the gates at ``point`` (0: before wave 1; N: after wave N) are still to check."""
    has = state.gates.before if point == 0 else state.gates.after_wave
    return has and point not in state.gated


def _after_last_wave(state: RolloutState, now: datetime) -> Decision:
    """Every wave is done: bake the last one and check its gates (when there are gates), then end.

    Worked example: 3 waves, ``bake: 60s``, an ``after_wave`` gate. Wave 3 ends at 12:00:00;
    until 12:01:00 the decision waits (``bake`` gates are polled meanwhile); then the gate is
    checked once; if it passes the deployment ends ``succeeded``, else (the next decision) halted.
    """
    last = len(state.waves)
    if last and state.gates.watches_last_wave:
        end = state.wave_finished_at.get(last)
        if end is not None and state.bake > 0 and now < end + timedelta(seconds=state.bake):
            return Decision(wave=last + 1, wait_until=end + timedelta(seconds=state.bake))
        if _gates_due(state, last):
            return Decision(wave=last + 1, check_gates=last)
    outcome = ending_status(state.statuses)
    return Decision(outcome=outcome, description=final_reason(state, outcome))


def final_reason(state: RolloutState, outcome: DeploymentStatus, why: str = "") -> str:
    """The reason a deployment ends with, as recorded and shown; ``why`` it stopped, if it did.

    Examples (budget 2): "11 hosts updated, 1 failed (within the 2 allowed)"; "no host
    updated: 2 hosts failed"; "3 hosts failed, more than the 2 allowed; 4 hosts were not
    touched and keep their version" (halted before wave 3 of decide's example).
    """
    statuses = list(state.statuses.values())
    failed = sum(1 for status in statuses if status.is_failure)
    done = "restarted" if state.restart else "updated"
    if outcome is DeploymentStatus.SUCCEEDED:
        succeeded = sum(1 for status in statuses if status is HostStatus.SUCCEEDED)
        reason = f"{count_of(succeeded, 'host')} {done}"
        return reason + (f", {failed} failed (within the {state.failure_budget} allowed)" if failed else "")
    if outcome is DeploymentStatus.FAILED:
        return f"no host {done}: {count_of(failed, 'host')} failed"
    untouched = sum(1 for status in statuses if status is HostStatus.PENDING)
    if not untouched:
        return why
    kept = "was not touched and keeps its" if untouched == 1 else "were not touched and keep their"
    return f"{why}; {count_of(untouched, 'host')} {kept} version"
