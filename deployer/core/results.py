"""What happened on a host: steps, statuses and results as plain data.

A host's failure is data, not an exception: the runner returns a
:class:`HostResult` whatever happened, and policy turns results into a halt.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum


class Step(StrEnum):
    """The steps of one host's deployment, in the order they run."""

    CONNECT = "connect"
    UPLOAD = "upload"  # send, verify and unpack the artifact into releases/<version>/ (not live yet)
    STOP = "stop"  # in the release being replaced
    BEFORE_INSTALL = "before_install"
    AFTER_INSTALL = "after_install"
    SWITCH = "switch"  # the atomic `current` symlink switch
    START = "start"
    VALIDATE = "validate"
    PRUNE = "prune"


HOOK_STEPS = (Step.STOP, Step.BEFORE_INSTALL, Step.AFTER_INSTALL, Step.START, Step.VALIDATE)


class HostStatus(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    UNREACHABLE = "unreachable"
    SKIPPED = "skipped"
    ABORTED = "aborted"  # stopped by an operator's abort before its switch; nothing changed
    NOT_STARTED = "not_started"  # the deployment ended (halted, aborted) before reaching it
    # The controller lost sight of it mid-step (the connection dropped): its driver carries
    # on by itself, and a probe (deploy reconcile) tells how it ended. Counts as failed.
    UNKNOWN = "unknown"

    @property
    def is_final(self) -> bool:
        return self not in (HostStatus.PENDING, HostStatus.RUNNING)

    @property
    def is_failure(self) -> bool:
        """Counts against the deployment's failure budget."""
        return self in (HostStatus.FAILED, HostStatus.UNREACHABLE, HostStatus.UNKNOWN)


@dataclass(frozen=True, slots=True)
class StepResult:
    step: Step
    exit_status: int | None
    started_at: datetime
    duration: float
    output: str = ""  # stdout and stderr interleaved, capped (see OUTPUT_CAP)
    attempts: int = 1


OUTPUT_CAP = 64 * 1024  # bytes of output kept per step; the tail is kept when it is longer
TAIL_LINES = 20  # lines of output quoted in a failure's message


@dataclass(frozen=True, slots=True)
class HostResult:
    host: str
    status: HostStatus
    started_at: datetime
    finished_at: datetime
    step: Step | None = None  # the step that failed, or the last one that ran
    exit_status: int | None = None
    error: str | None = None  # one sentence for people: "validate exited 7 after 3 attempts"
    output_tail: str = ""
    steps: tuple[StepResult, ...] = field(default_factory=tuple)
    version: str | None = None  # what `current` points to when the host was left
    previous_version: str | None = None  # what it pointed to before
    uploaded: bool = False  # False when the release was already on the host

    @property
    def duration(self) -> float:
        return (self.finished_at - self.started_at).total_seconds()


def tail(text: str, lines: int = TAIL_LINES) -> str:
    """The last ``lines`` lines of ``text``."""
    return "\n".join(text.rstrip("\n").splitlines()[-lines:])


def cap_output(text: str, limit: int = OUTPUT_CAP) -> str:
    """``text`` cut to its last ``limit`` characters, saying so when it was cut."""
    if len(text) <= limit:
        return text
    return f"[... {len(text) - limit} characters cut ...]\n" + text[-limit:]


class DeploymentKind(StrEnum):
    """What a deployment does: a push, a rollback, a sync or a restart (its job on each host too)."""

    PUSH = "push"
    ROLLBACK = "rollback"
    SYNC = "sync"
    RESTART = "restart"


class DeploymentStatus(StrEnum):
    """Where a deployment stands. RUNNING and PAUSED hold the app+environment's lock."""

    RUNNING = "running"
    PAUSED = "paused"  # an operator's pause took effect: no new host starts
    SUCCEEDED = "succeeded"
    FAILED = "failed"  # ran to the end, and no host succeeded (whatever the failure budget)
    HALTED = "halted"  # stopped by policy: the failure threshold was crossed
    ABORTED = "aborted"  # stopped by an operator's abort

    @property
    def is_final(self) -> bool:
        return self not in (DeploymentStatus.RUNNING, DeploymentStatus.PAUSED)


class ControlAction(StrEnum):
    """What an operator asks of a running deployment from another process."""

    PAUSE = "pause"
    RESUME = "resume"
    ABORT = "abort"


@dataclass(frozen=True, slots=True)
class Outcome:
    """How a host's driver ended, as its ``@@done`` line or its journal says:
    ``succeeded``, ``failed:<step>:<exit>``, ``aborted:<step>``."""

    status: str  # "succeeded", "failed", "aborted", "running" or "interrupted"
    step: Step | None = None
    exit_status: int | None = None


def parse_outcome(text: str) -> Outcome:
    status, _, rest = text.strip().partition(":")
    step_name, _, exit_text = rest.partition(":")
    step = Step(step_name) if step_name in Step._value2member_map_ else None
    exit_status = int(exit_text) if exit_text.lstrip("-").isdigit() else None
    return Outcome(status, step, exit_status)
