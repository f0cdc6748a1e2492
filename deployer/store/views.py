"""What the store hands out: frozen values, never ORM objects, so callers never touch a session.

Every timestamp here is timezone-aware UTC.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, NamedTuple

from deployer.core.results import (
    ControlAction,
    DeploymentKind,
    DeploymentStatus,
    HostStatus,
    Step,
    StepResult,
)
from deployer.core.rollout_log import ControlState  # what the controller polls: defined beside its protocol


@dataclass(frozen=True, slots=True)
class HostRecord:
    """A host the store knows for one app+environment; ``retired_at`` is set once it left the inventory."""

    name: str
    address: str
    datacenter: str
    first_seen: datetime
    retired_at: datetime | None = None

    @property
    def is_retired(self) -> bool:
        return self.retired_at is not None


@dataclass(frozen=True, slots=True)
class HostDeploymentView:
    """One host's part in one deployment. ``steps`` is filled only when asked for."""

    name: str
    datacenter: str
    wave: int | None  # None for a host that was skipped before planning
    status: HostStatus
    step: Step | None  # the step running now, the one that failed, or the last that ran
    started_at: datetime | None
    finished_at: datetime | None
    error: str | None
    exit_status: int | None
    output_tail: str
    version: str | None  # what `current` pointed to when the host was left
    previous_version: str | None
    steps: tuple[StepResult, ...] = ()
    note: str | None = None  # how its outcome was learnt by a probe, when the controller lost sight of it
    staged: bool = False  # its release was staged ahead of its wave


@dataclass(frozen=True, slots=True)
class GateView:
    """One gate of a deployment: how often it was checked, and what its last check said."""

    name: str
    check_count: int
    passed: bool
    message: str
    checked_at: datetime


@dataclass(frozen=True, slots=True)
class DroppedNotification:
    """A notification given up after its retries."""

    sink: str
    event: str
    event_at: datetime
    dropped_at: datetime
    error: str


@dataclass(frozen=True, slots=True)
class DeploymentView:
    """One deployment as the CLI's ``--json`` and the TUI show it.

    ``counts`` has every :class:`HostStatus` as a key (zeros included). ``hosts`` is
    filled by :meth:`Store.deployment` and :meth:`Store.running_deployment`; lists of
    deployments (history, latest) leave it empty and carry the counts only.
    """

    id: str
    app: str
    environment: str
    kind: DeploymentKind
    version: str
    previous_version: str | None
    status: DeploymentStatus
    started_by: str
    started_from: str  # the controller's machine (hostname)
    pid: int  # the controller's process id on that machine
    started_at: datetime
    finished_at: datetime | None
    heartbeat_at: datetime
    spec_sha256: str
    reason: str | None  # one sentence on why it ended as it did ("3 of 10 hosts failed ...")
    requested_control: ControlAction | None  # the latest pause/resume/abort asked of it
    control_requested_at: datetime | None
    control_requested_by: str | None
    counts: Mapping[HostStatus, int]
    hosts: tuple[HostDeploymentView, ...] = ()
    failure_budget: int | None = None  # failed hosts tolerated, one more halts (None: not recorded)
    rollback_of: str | None = None  # the deployment this one rolls back automatically (on_halt)
    gates: tuple[GateView, ...] = ()  # its gates in name order (lists of deployments too)

    @property
    def host_count(self) -> int:
        return sum(self.counts.values())

    @property
    def is_finished(self) -> bool:
        return self.status.is_final

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict: enums as their values, timestamps as ISO 8601 strings."""
        return {**_jsonable(self), "host_count": self.host_count}


@dataclass(frozen=True, slots=True)
class HostProgress:
    """What a live screen shows of one host in a deployment: its state, not its output or steps.

    The fields mean what :class:`HostDeploymentView`'s of the same names mean; the
    output and the steps (kilobytes per host) are read per host, when asked for.
    """

    name: str
    datacenter: str
    wave: int | None
    status: HostStatus
    step: Step | None
    started_at: datetime | None
    finished_at: datetime | None
    error: str | None
    exit_status: int | None
    version: str | None
    staged: bool = False


@dataclass(frozen=True, slots=True, eq=False)
class DeploymentProgress:
    """One read of a deployment for a screen that polls it (:meth:`Store.deployment_progress`).

    ``view`` is the deployment with its counts and no hosts; ``hosts`` is every
    host's progress in plan order (waves in order, skipped hosts last, names in
    code-point order), as :meth:`Store.deployment` orders them.

    Handed back as ``since`` to the next read, it lets that read fetch and build only
    the hosts whose row changed: the others are the very same objects (``is``), and
    when no host changed ``hosts`` is the same tuple. A screen can compare by
    identity, and a poll of 5,000 hosts leaves next to nothing for the collector.
    The fields after ``hosts`` are what the next read starts from.
    """

    view: DeploymentView
    hosts: tuple[HostProgress, ...]
    revision: int = field(repr=False)  # the newest host_deployments.revision read
    # host_deployments.id -> its host, in plan order (``hosts`` is its values)
    progress: Mapping[int, HostProgress] = field(repr=False)
    names: Mapping[int, tuple[str, str]] = field(repr=False)  # hosts.id -> (name, datacenter)


class VersionInterval(NamedTuple):
    """A host ran ``version`` from ``since`` until ``until`` (None: it still does).

    The interval is half-open: at ``until`` the host already runs the next version.
    A named tuple, not a frozen dataclass like the other views: ``deploy hosts`` makes
    one per host, and a frozen dataclass takes much longer to make (bench/store.py).
    """

    host: str
    datacenter: str
    version: str
    since: datetime
    until: datetime | None
    deployment_id: str | None  # the deployment that put the version there

    def covers(self, moment: datetime) -> bool:
        return self.since <= moment and (self.until is None or moment < self.until)

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict (written out: lists of 10,000 hosts go through here)."""
        return {
            "host": self.host,
            "datacenter": self.datacenter,
            "version": self.version,
            "since": self.since.isoformat(),
            "until": None if self.until is None else self.until.isoformat(),
            "deployment_id": self.deployment_id,
        }


@dataclass(frozen=True, slots=True)
class Liveness:
    """Whether a running deployment's controller looks alive, and why not when it does not."""

    alive: bool
    reason: str  # "pid 4242 is gone on build-1", "no heartbeat for 5m 3s", "heartbeat 2s ago"


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, str):  # StrEnum members included: their value is the string
        return str(value)
    if isinstance(value, Mapping):
        return {str(key): _jsonable(item) for key, item in value.items()}
    if isinstance(value, tuple | list):
        return [_jsonable(item) for item in value]
    if hasattr(value, "__dataclass_fields__"):
        names = [f for f in value.__dataclass_fields__]
        return {name: _jsonable(getattr(value, name)) for name in names}
    return value


__all__ = [
    "ControlState",
    "DeploymentProgress",
    "DeploymentView",
    "HostDeploymentView",
    "HostProgress",
    "HostRecord",
    "Liveness",
    "VersionInterval",
]
