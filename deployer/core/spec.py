"""The spec as the rest of deployer sees it: frozen values, their defaults and enums.

:func:`deployer.spec.load.load_spec` builds a :class:`Spec` out of a validated file;
nothing here imports pydantic, so the controller, the gates and the notifier read a spec
without paying for its schema.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any, Literal, get_args

from deployer.core.quantities import Count
from deployer.core.results import Step
from deployer.core.targets import Fleet, SshOptions

# --- defaults (docs/spec.md lists each one) --------------------------------------------

DEFAULT_ENVIRONMENT = "production"
DEFAULT_KEEP_RELEASES = 5
MIN_KEEP_RELEASES = 2  # the release being replaced must stay for a rollback
DEFAULT_BATCH = (Count(1), Count(25, percent=True))
DEFAULT_MAX_FAILURES = Count(0)
DEFAULT_HOOK_TIMEOUT = 300.0
DEFAULT_HOOK_INTERVAL = 2.0

DEFAULT_GATE_TIMEOUT = 10.0
DEFAULT_GATE_INTERVAL = 30.0


class Stripe(StrEnum):
    """How hosts are spread over a wave."""

    DATACENTER = "datacenter"  # every wave takes its share from each datacenter
    NONE = "none"  # waves follow inventory order


class OnHalt(StrEnum):
    """What a halted deployment does to the hosts it already switched."""

    STOP = "stop"  # leave them on the new version
    ROLLBACK = "rollback"  # switch them back to the version they ran before


class GateWhen(StrEnum):
    """When the controller checks a gate."""

    BEFORE = "before"  # once, before wave 1
    AFTER_WAVE = "after_wave"  # once after each wave (after its bake), the last one included
    BAKE = "bake"  # every interval during each bake


NotifyEvent = Literal[
    "started",
    "wave_started",
    "wave_finished",
    "paused",
    "resumed",
    "halted",
    "succeeded",
    "failed",
    "aborted",
    "rollback_started",
    "rollback_finished",
]
NOTIFY_EVENTS: tuple[str, ...] = get_args(NotifyEvent)  # in the order a deployment tells them


@dataclass(frozen=True, slots=True)
class Strategy:
    batch: tuple[Count, ...]
    stripe: Stripe
    max_failures: Count
    bake: float  # seconds
    on_halt: OnHalt
    max_parallel: int | None  # None: as many as the wave holds
    gates: tuple[Gate, ...] = ()
    preflight: bool = False  # deploy check before wave 1
    stage_ahead: int | None = 1  # waves staged ahead of the running one; None: every later wave


@dataclass(frozen=True, slots=True)
class Gate:
    """A check between waves (see :class:`GateModel`), its defaults filled in."""

    name: str
    type: str  # "command" or "http"
    when: GateWhen
    timeout: float
    interval: float
    command: str | None = None
    url: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    status: int = 200
    field: str | None = None
    min: float | None = None
    max: float | None = None


@dataclass(frozen=True, slots=True)
class NotifySink:
    """A place a deployment's events go (see :class:`NotifyModel`)."""

    type: str  # "webhook" or "command"
    url: str | None
    headers: Mapping[str, str]
    command: str | None
    events: frozenset[str] | None  # None: every event
    timeout: float


@dataclass(frozen=True, slots=True)
class Hook:
    """A hook with its limits filled in; exactly one of command and fabric is set."""

    command: str | None
    fabric: str | None  # "/absolute/fabfile.py:task"
    args: Mapping[str, Any]
    timeout: float
    retries: int
    interval: float
    contain: bool = False  # hooks.contain: in a cgroup of its own on the host


@dataclass(frozen=True, slots=True)
class FleetRef:
    """Where the hosts come from: an inventory file (``path``) or hosts written in the spec (``inline``)."""

    path: Path | None = None
    inline: Fleet | None = None


@dataclass(frozen=True, slots=True)
class Spec:
    """One environment's spec, resolved: paths absolute, defaults filled in, hooks checked."""

    path: Path  # the spec file, absolute
    sha256: str  # of the file's bytes, recorded with each deployment
    app: str
    version: str
    environment: str
    fleet: FleetRef
    artifact: Path
    target: str  # may start with ~ (the remote user's home)
    keep_releases: int
    ssh: SshOptions
    strategy: Strategy
    hooks: Mapping[Step, Hook]
    environments: tuple[str, ...] = ()  # every environment the spec knows, the default first
    notify: tuple[NotifySink, ...] = ()
