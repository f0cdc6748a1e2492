"""The seam between the controller and the hosts.

The controller hands a :class:`ReleaseJob` to a :class:`HostRunner` for one host
and gets a :class:`~deployer.core.results.HostResult` back, whatever happened. The
real runner is :mod:`deployer.hosts.ssh` (asyncssh); Fabric-task hooks run through
:mod:`deployer.hosts.fabric_hooks`; unit tests of the controller loop use a fake.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from deployer.core.results import DeploymentKind, HostResult, Step
from deployer.core.targets import SshTarget


@dataclass(frozen=True, slots=True)
class HookCommand:
    """One lifecycle hook as it will run on a host.

    ``command`` is a shell command, or, when ``script`` is true, a path inside the
    release (run as ``./path`` from the release directory). ``fabric`` names a
    Fabric task (``fabfile.py:migrate``, the path absolute) run instead of a command.
    """

    step: Step
    command: str
    timeout: float
    retries: int = 0  # extra attempts after the first failure (validate polls with these)
    interval: float = 0.0  # seconds between attempts
    script: bool = False
    fabric: str | None = None
    fabric_args: Mapping[str, Any] = field(default_factory=dict)
    contain: bool = False  # in a cgroup of its own on the host, all of it killed at the timeout


@dataclass(frozen=True, slots=True)
class HookOutcome:
    """How a hook the controller runs itself (a Fabric task) ended on one host: for the
    step's result, and for the driver waiting on it."""

    exit_status: int
    attempts: int
    timed_out: bool
    output: str
    error: str | None = None  # one sentence when it failed: "after_install Fabric task ... raised ..."


@dataclass(frozen=True, slots=True)
class Artifact:
    """A release packed as a .tar.gz on the controller, ready to send."""

    path: str
    sha256: str
    size: int


@dataclass(frozen=True, slots=True)
class ReleaseJob:
    """What one deployment does on each host; the same for every host of it."""

    deployment_id: str
    app: str
    environment: str
    version: str
    kind: DeploymentKind
    target: str  # may start with ~ (the remote user's home)
    keep_releases: int
    artifact: Artifact | None  # None for a restart, or a rollback to a kept release
    hooks: Mapping[Step, HookCommand]
    started_by: str
    ignore_stop_failures: bool = False
    # Deployments of the app with a host of unknown outcome: each host keeps their records
    # (<target>/.deploy/) however old, for `deploy reconcile` to read.
    keep_records: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class StepStarted:
    """A host began a step: sent as it happens, never waited on (the host's journal, not
    the controller's acknowledgement, is the record that it ran)."""

    deployment_id: str
    host: str
    step: Step
    at: datetime


# Takes a host's events as they come; must not block (the controller batches its writes).
HostEvents = Callable[[StepStarted], None]


@dataclass(frozen=True, slots=True)
class StageReport:
    """How staging one host ended: its release ready beside the live one, or why not."""

    host: str
    staged: bool
    error: str | None = None


@dataclass(frozen=True, slots=True)
class CheckAnswer:
    """What one host said to the check script, or why it could not be asked."""

    output: str | None  # the script's output; None when the host could not be asked
    error: str | None = None
    unreachable: bool = False  # no connection at all (as opposed to a refusal: key, auth)


@dataclass(frozen=True, slots=True)
class HostProbe:
    """What a host says about an app's target directory, read from the host itself."""

    host: str
    reachable: bool
    current_version: str | None = None
    releases: tuple[str, ...] = ()
    # The outcome a host recorded for a deployment id: None when it never heard of
    # it, "running" while its run is still going, else "succeeded" or "failed:<step>".
    outcome: str | None = None
    error: str | None = None


class HostRunner(Protocol):
    """Runs jobs on hosts. Everything it takes and gives is a value (no shared objects),
    so that host conversations may one day run in another process than the loop."""

    async def stage(self, target: SshTarget, job: ReleaseJob) -> StageReport:
        """Prepare ``job``'s release on one host ahead of its wave; nothing live changes.
        The host then waits for :meth:`deploy`. Never raises for the host's own failures."""
        ...

    async def deploy(self, target: SshTarget, job: ReleaseJob, events: HostEvents) -> HostResult:
        """Run ``job`` on one host (staging it first unless staged); never raises for the
        host's own failures."""
        ...

    def stop(self, deployment_id: str) -> None:
        """The operator aborted: hosts of that deployment in flight stop before their next
        step, while an abort still holds (before the old release was stopped)."""
        ...

    async def unstage(self, deployment_id: str) -> None:
        """Let every host staged for that deployment go, untouched (it ended first)."""
        ...

    async def probe(self, target: SshTarget, app_target: str, deployment_id: str | None) -> HostProbe:
        """Read a host's current release, kept releases, and its record of ``deployment_id``."""
        ...

    def prepare(self, targets: Sequence[SshTarget]) -> None:
        """A hint: these hosts' turn comes next; work that changes nothing on them may start."""
        ...

    async def aclose(self) -> None:
        """Close every connection this runner opened."""
        ...
