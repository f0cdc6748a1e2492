"""What a deployment tells the world as it goes: plain dataclasses.

The controller emits these to an :data:`EventSink`; the CLI's progress view and
the TUI consume them. Events only tell: the store stays the record of truth.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from deployer.core.gates import GateVerdict
from deployer.core.results import HostResult, HostStatus, Step


@dataclass(frozen=True, slots=True)
class DeploymentStarted:
    deployment_id: str
    app: str
    environment: str
    kind: str
    version: str
    previous_version: str | None
    wave_count: int
    host_count: int
    failure_budget: int
    # host name -> datacenter, in plan order, so views can lay out their panels at once
    datacenters: dict[str, str]
    at: datetime


@dataclass(frozen=True, slots=True)
class WaveStarted:
    deployment_id: str
    index: int  # 1-based
    wave_count: int
    hosts: tuple[str, ...]
    at: datetime


@dataclass(frozen=True, slots=True)
class WaveFinished:
    """Every host of a wave is done (whatever its outcome)."""

    deployment_id: str
    index: int  # 1-based
    wave_count: int
    counts: dict[HostStatus, int]  # the wave's hosts by status
    at: datetime


@dataclass(frozen=True, slots=True)
class Baking:
    deployment_id: str
    next_wave: int
    until: datetime
    final: bool = False  # the last wave's bake, before its gates are checked: no next wave


@dataclass(frozen=True, slots=True)
class GateChecked:
    """A gate was checked; a failing verdict halts the deployment."""

    deployment_id: str
    verdict: GateVerdict
    wave: int  # the wave it watched: 0 before wave 1


@dataclass(frozen=True, slots=True)
class HostsJoined:
    """Hosts that joined the inventory mid-deployment became a new last wave of it."""

    deployment_id: str
    wave: int  # 1-based index of the new wave, now the last
    datacenters: dict[str, str]  # the joining hosts: name -> datacenter
    failure_budget: int  # the budget now, counting them
    at: datetime


@dataclass(frozen=True, slots=True)
class HostStepStarted:
    deployment_id: str
    host: str
    step: Step
    at: datetime


@dataclass(frozen=True, slots=True)
class HostStaged:
    """A pending host's release is ready beside the live one: its wave costs one message."""

    deployment_id: str
    host: str
    at: datetime


@dataclass(frozen=True, slots=True)
class HostFinished:
    deployment_id: str
    result: HostResult
    failed_count: int  # failures so far in this deployment, against the budget
    failure_budget: int


@dataclass(frozen=True, slots=True)
class Notice:
    """Something the operator should know that changes no outcome (a wave run in parts)."""

    deployment_id: str
    text: str
    at: datetime


@dataclass(frozen=True, slots=True)
class ControlChanged:
    """The deployment was paused, resumed, aborted or halted."""

    deployment_id: str
    state: str  # "paused", "running", "aborting", "halting"
    reason: str
    at: datetime


@dataclass(frozen=True, slots=True)
class DeploymentFinished:
    deployment_id: str
    status: str  # a DeploymentStatus value
    counts: dict[HostStatus, int]
    at: datetime


Event = (
    DeploymentStarted
    | WaveStarted
    | WaveFinished
    | Baking
    | GateChecked
    | HostsJoined
    | HostStepStarted
    | HostStaged
    | HostFinished
    | ControlChanged
    | Notice
    | DeploymentFinished
)
EventSink = Callable[[Event], None]


def discard(event: Event) -> None:
    """An event sink that drops everything (scripts and tests that only read the store)."""
