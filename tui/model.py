"""What the screens show, worked out from store views: pure, no Textual, no clock.

Every function here takes plain data (store views, ``now``) and returns plain data,
so the screens only lay it out and the arithmetic is tested on its own. How states
are drawn is in :mod:`tui.glyphs`, the host list's filter in :mod:`tui.filter`, the
failure budget in :mod:`tui.budget`, and how times are written in
:mod:`deployer.core.timefmt`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo
from typing import Protocol

from deployer.core.results import ControlAction, DeploymentStatus, HostStatus, Step
from deployer.core.timefmt import format_moment_bare
from deployer.store.views import DeploymentProgress, DeploymentView, Liveness
from tui.budget import FailureBudget, budget_of, failed_count


class ShownHost(Protocol):
    """A host as the screens show it: the live screen's :class:`~deployer.store.views.HostProgress`
    (a poll's light read) and the host screen's :class:`~deployer.store.views.HostDeploymentView`
    both are one. Frozen values: equal when they look the same, and hashable."""

    def __hash__(self) -> int: ...
    @property
    def name(self) -> str: ...
    @property
    def datacenter(self) -> str: ...
    @property
    def wave(self) -> int | None: ...
    @property
    def status(self) -> HostStatus: ...
    @property
    def step(self) -> Step | None: ...
    @property
    def started_at(self) -> datetime | None: ...
    @property
    def finished_at(self) -> datetime | None: ...
    @property
    def error(self) -> str | None: ...
    @property
    def exit_status(self) -> int | None: ...
    @property
    def version(self) -> str | None: ...
    @property
    def staged(self) -> bool: ...


# ---- progress: datacenters and waves ---------------------------------------------------


@dataclass(frozen=True, slots=True)
class DatacenterProgress:
    """One datacenter's hosts in a deployment, in plan order (wave, then name)."""

    name: str
    hosts: tuple[ShownHost, ...]
    counts: Mapping[HostStatus, int]

    @property
    def host_count(self) -> int:
        return len(self.hosts)

    @property
    def done_count(self) -> int:
        """Hosts the deployment is done with (succeeded, failed, unreachable, skipped or aborted).

        Not those it never reached: 2 hosts a halt left untouched keep a datacenter of 4 at 2/4.
        """
        return sum(
            n for status, n in self.counts.items() if status.is_final and status is not HostStatus.NOT_STARTED
        )

    @property
    def failed_count(self) -> int:
        return sum(n for status, n in self.counts.items() if status.is_failure)

    @property
    def running_count(self) -> int:
        return self.counts.get(HostStatus.RUNNING, 0)


def datacenter_progress(hosts: Iterable[ShownHost]) -> list[DatacenterProgress]:
    """Hosts grouped by datacenter (by name), each keeping the order given."""
    grouped: dict[str, list[ShownHost]] = {}
    for host in hosts:
        grouped.setdefault(host.datacenter, []).append(host)
    progress = []
    for name in sorted(grouped):
        members = grouped[name]
        counts = dict.fromkeys(HostStatus, 0)
        for host in members:
            counts[host.status] += 1
        progress.append(DatacenterProgress(name, tuple(members), counts))
    return progress


@dataclass(frozen=True, slots=True)
class WavePosition:
    current: int | None  # 1-based; None when no host was planned
    count: int

    def describe(self) -> str:
        if self.count == 0:
            return "no waves"
        if self.current is None:
            return f"no wave started, of {self.count}"
        return f"wave {self.current} of {self.count}"


def wave_position(hosts: Iterable[ShownHost]) -> WavePosition:
    """The wave being worked on: the first with a pending or running host; once all are done,
    the last wave the deployment reached (a halt in wave 3 of 5 stays "wave 3 of 5").

    This is the controller's own rule (:func:`deployer.core.decide.active_wave`), read
    back from the store. Skipped hosts have no wave and are not counted; a host the
    deployment never started (not started, or aborted in a store from before that
    status) did not reach its wave.
    """
    unfinished: set[int] = set()
    count = reached = 0
    for host in hosts:
        if host.wave is None:
            continue
        count = max(count, host.wave)
        if not host.status.is_final:
            unfinished.add(host.wave)
        elif not _never_started(host):
            reached = max(reached, host.wave)
    if count == 0:
        return WavePosition(None, 0)
    if unfinished:
        return WavePosition(min(unfinished), count)
    return WavePosition(reached or None, count)  # None: it ended before any host started


def _never_started(host: ShownHost) -> bool:
    """A host the deployment did not reach (stores from before NOT_STARTED said ABORTED)."""
    legacy = host.status is HostStatus.ABORTED and host.started_at is None
    return host.status is HostStatus.NOT_STARTED or legacy


# ---- time ------------------------------------------------------------------------------


def elapsed(view: DeploymentView, now: datetime) -> timedelta:
    """How long the deployment ran (until it finished) or has been running (until ``now``)."""
    end = view.finished_at or now
    return max(timedelta(0), end - view.started_at)


def host_duration(host: ShownHost, now: datetime) -> timedelta | None:
    if host.started_at is None:
        return None
    end = host.finished_at or (now if host.status is HostStatus.RUNNING else host.started_at)
    return max(timedelta(0), end - host.started_at)


# ---- deployments in lists ----------------------------------------------------------------


def versions_label(view: DeploymentView) -> str:
    return f"{view.previous_version or '(new)'} → {view.version}"


def pick_deployment_to_watch(latest: Sequence[DeploymentView]) -> DeploymentView | None:
    """What ``deploy watch`` without an id attaches to: the newest unfinished deployment,
    else the newest deployment of all."""
    if not latest:
        return None
    unfinished = [view for view in latest if not view.is_finished]
    pool = unfinished or list(latest)
    return max(pool, key=lambda view: (view.started_at, view.id))


# ---- versions across a fleet ----------------------------------------------------------------

BAR_EIGHTHS = " ▏▎▍▌▋▊▉"


def bar(value: int, maximum: int, width: int) -> str:
    """A horizontal bar of ``value`` out of ``maximum`` in ``width`` cells, to an eighth of a cell."""
    if maximum <= 0 or value <= 0:
        return ""
    eighths = round(value * width * 8 / maximum)
    eighths = max(eighths, 1)
    full, part = divmod(min(eighths, width * 8), 8)
    return "█" * full + (BAR_EIGHTHS[part] if part else "")


@dataclass(frozen=True, slots=True)
class VersionShare:
    version: str
    host_count: int
    share: float  # of all hosts with a known version, 0..1


def version_shares(counts: Sequence[tuple[str, int]]) -> list[VersionShare]:
    """Each version's host count and share, most hosts first (as the store gives them)."""
    total = sum(count for _, count in counts)
    return [VersionShare(version, count, count / total if total else 0.0) for version, count in counts]


VERSION_STYLES = ("bold green", "bold cyan", "bold yellow", "bold magenta", "bold blue", "bold red")
VERSION_SYMBOLS = "█▓▒░#="


def stacked_bar(shares: Sequence[VersionShare], width: int) -> list[tuple[str, str]]:
    """One bar split between versions, each with its own fill pattern and colour.

    Cells are handed out by largest remainder, so the parts add up to ``width``
    and every version with a host gets at least one cell when there is room.
    """
    if width <= 0 or not any(share.host_count for share in shares):
        return []  # no host runs any version: nothing to draw (the shares are all 0)
    raw = [share.share * width for share in shares]
    cells = [int(value) for value in raw]
    order = sorted(range(len(raw)), key=lambda i: raw[i] - cells[i], reverse=True)
    for index in order[: width - sum(cells)]:
        cells[index] += 1
    for index, share in enumerate(shares):
        if share.host_count and cells[index] == 0:
            donor = max(range(len(cells)), key=lambda i: cells[i])
            if cells[donor] > 1:
                cells[donor] -= 1
                cells[index] = 1
    return [
        (VERSION_SYMBOLS[i % len(VERSION_SYMBOLS)] * n, VERSION_STYLES[i % len(VERSION_STYLES)])
        for i, n in enumerate(cells)
        if n
    ]


# ---- one read of a live deployment ----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LiveSnapshot:
    """Everything the live screen shows, worked out in the polling thread from one read.

    ``view`` is the deployment with its counts (its ``hosts`` are left empty);
    ``hosts`` is every host in plan order.
    """

    view: DeploymentView
    hosts: Sequence[ShownHost]
    datacenters: tuple[DatacenterProgress, ...]
    wave: WavePosition
    budget: FailureBudget
    liveness: Liveness | None  # None once the deployment finished

    @property
    def is_finished(self) -> bool:
        return self.view.is_finished


def live_snapshot(
    progress: DeploymentProgress,
    *,
    budget: int | None,
    liveness: Liveness | None,
    previous: LiveSnapshot | None = None,
) -> LiveSnapshot:
    """Group and count one read of a deployment.

    ``budget`` is used when the store does not record one (see :func:`~tui.budget.budget_of`).
    When no host changed since ``previous`` (the store hands back the same tuple),
    its grouping is kept rather than worked out again.
    """
    view, hosts = progress.view, progress.hosts
    recorded = budget_of(view)
    if previous is not None and previous.hosts is hosts:
        datacenters, wave = previous.datacenters, previous.wave
    else:
        datacenters, wave = tuple(datacenter_progress(hosts)), wave_position(hosts)
    return LiveSnapshot(
        view=view,
        hosts=hosts,
        datacenters=datacenters,
        wave=wave,
        budget=FailureBudget(failed_count(view.counts), recorded if recorded is not None else budget),
        liveness=None if view.is_finished else liveness,
    )


def control_note(view: DeploymentView, tz: tzinfo) -> str | None:
    """What the operator asked that has not taken effect yet, in words; None when nothing is pending."""
    requested = view.requested_control
    if view.is_finished or requested is None:
        return None
    who = f" by {view.control_requested_by}" if view.control_requested_by else ""
    when = f" at {format_moment_bare(view.control_requested_at, tz)}" if view.control_requested_at else ""
    if requested is ControlAction.ABORT:
        return f"abort requested{who}{when}: hosts in flight finish, no new host starts"
    if requested is ControlAction.PAUSE and view.status is DeploymentStatus.RUNNING:
        return f"pause requested{who}{when}: waiting for the controller to take it"
    if requested is ControlAction.PAUSE:
        return f"paused{who}{when}: no new host starts; press r to resume"
    if requested is ControlAction.RESUME and view.status is DeploymentStatus.PAUSED:
        return f"resume requested{who}{when}: waiting for the controller to take it"
    return None
