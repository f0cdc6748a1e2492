"""What the screens show, worked out from store views: pure, no Textual, no clock.

Every function here takes plain data (store views, ``now``) and returns plain data,
so the screens only lay it out and the arithmetic is tested on its own.

State is always shown by a symbol as well as a colour, so a 16-colour terminal and
a colour-blind operator read the same thing::

    ·  pending        1-9  running, at step n (1 connect ... 9 prune)
    ✓  succeeded      ✗    failed            ?  unreachable
    -  skipped        ■    aborted (stopped before its switch; nothing changed)
    ○  not started (the deployment ended before reaching it)
    ¿  unknown (the connection dropped mid-step; ``deploy reconcile`` asks the host)
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo
from enum import StrEnum
from functools import lru_cache
from typing import Any, Protocol

from deployer.errors import DeployerError
from deployer.results import ControlAction, DeploymentStatus, HostStatus, Step
from deployer.store.views import DeploymentProgress, DeploymentView, Liveness


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


@dataclass(frozen=True, slots=True)
class Glyph:
    """One state as drawn: a one-cell symbol, a Rich style, and the word for it."""

    symbol: str
    style: str
    label: str


HOST_GLYPHS: Mapping[HostStatus, Glyph] = {
    HostStatus.PENDING: Glyph("·", "dim", "pending"),
    HostStatus.RUNNING: Glyph("▶", "bold cyan", "running"),
    HostStatus.SUCCEEDED: Glyph("✓", "green", "succeeded"),
    HostStatus.FAILED: Glyph("✗", "bold red", "failed"),
    HostStatus.UNREACHABLE: Glyph("?", "bold magenta", "unreachable"),
    HostStatus.SKIPPED: Glyph("-", "dim", "skipped"),
    HostStatus.ABORTED: Glyph("■", "yellow", "aborted"),
    HostStatus.NOT_STARTED: Glyph("○", "dim", "not started"),
    HostStatus.UNKNOWN: Glyph("¿", "bold magenta", "unknown"),
}

# A running host shows the number of its step: the steps run in this order, so a
# bigger number is further along (and digits read the same in any colour).
STEP_NUMBERS: Mapping[Step, int] = {step: index for index, step in enumerate(Step, start=1)}
RUNNING_STYLE = "bold reverse cyan"

DEPLOYMENT_GLYPHS: Mapping[DeploymentStatus, Glyph] = {
    DeploymentStatus.RUNNING: Glyph("▶", "bold cyan", "running"),
    DeploymentStatus.PAUSED: Glyph("‖", "bold yellow", "paused"),
    DeploymentStatus.SUCCEEDED: Glyph("✓", "bold green", "succeeded"),
    DeploymentStatus.FAILED: Glyph("✗", "bold red", "failed"),
    DeploymentStatus.HALTED: Glyph("!", "bold red", "halted"),
    DeploymentStatus.ABORTED: Glyph("■", "bold yellow", "aborted"),
}


def host_glyph(status: HostStatus, step: Step | None) -> Glyph:
    """The glyph of one host; a running host's symbol is its step's number."""
    if status is HostStatus.RUNNING and step is not None:
        return Glyph(str(STEP_NUMBERS[step]), RUNNING_STYLE, f"running: {step.value}")
    return HOST_GLYPHS[status]


def legend() -> list[tuple[str, str, str]]:
    """(symbol, style, meaning) for the grid's legend line."""
    entries = [(HOST_GLYPHS[HostStatus.PENDING].symbol, "dim", "pending")]
    entries.append(("1-9", RUNNING_STYLE, "running (step)"))
    for status in (
        HostStatus.SUCCEEDED,
        HostStatus.FAILED,
        HostStatus.UNREACHABLE,
        HostStatus.UNKNOWN,
        HostStatus.SKIPPED,
        HostStatus.ABORTED,
        HostStatus.NOT_STARTED,
    ):
        glyph = HOST_GLYPHS[status]
        entries.append((glyph.symbol, glyph.style, glyph.label))
    return entries


def step_legend() -> str:
    """``1 connect 2 upload ...``: what a running host's number means."""
    return "  ".join(f"{number} {step.value}" for step, number in STEP_NUMBERS.items())


# ---- filtering the host list -----------------------------------------------------------


class FilterError(DeployerError):
    """A filter the host list cannot read (an unknown state)."""


STATE_ALIASES: Mapping[str, frozenset[HostStatus]] = {
    **{status.value: frozenset({status}) for status in HostStatus},
    "ok": frozenset({HostStatus.SUCCEEDED}),
    "done": frozenset(status for status in HostStatus if status.is_final),
    "failures": frozenset(status for status in HostStatus if status.is_failure),
}


@dataclass(frozen=True, slots=True)
class HostFilter:
    """Which hosts the list shows: any of ``states``, any of ``datacenters``, any name pattern.

    An empty part matches everything; the parts are combined with AND. Name and
    datacenter patterns are case-insensitive; a pattern with ``*``, ``?`` or ``[``
    is a glob, any other is a substring.

    Worked example: ``failed unreachable dc:eu-1 web`` shows the failed or
    unreachable hosts of eu-1 whose names contain "web".
    """

    states: frozenset[HostStatus] = frozenset()
    datacenters: tuple[str, ...] = ()
    names: tuple[str, ...] = ()

    @property
    def is_empty(self) -> bool:
        return not (self.states or self.datacenters or self.names)

    def matches(self, host: ShownHost) -> bool:
        if self.states and host.status not in self.states:
            return False
        if self.datacenters and not any(_pattern_matches(p, host.datacenter) for p in self.datacenters):
            return False
        return not self.names or any(_pattern_matches(p, host.name) for p in self.names)

    def describe(self) -> str:
        """The filter in words, for the list's title."""
        if self.is_empty:
            return "all hosts"
        parts = []
        if self.states:
            parts.append(" or ".join(sorted(status.value for status in self.states)))
        if self.datacenters:
            parts.append("in " + " or ".join(self.datacenters))
        if self.names:
            parts.append("named " + " or ".join(self.names))
        return ", ".join(parts)


FILTER_HELP = "states (failed, running, pending, ok, failures...), dc:NAME, state:NAME, name:GLOB, or a name"


def parse_filter(text: str) -> HostFilter:
    """Read what was typed in the filter box; FilterError names an unknown state.

    Words are: a state (or ``ok``, ``done``, ``failures``), ``state:WORD``,
    ``dc:PATTERN``, ``name:PATTERN``, or else a name pattern.

    >>> parse_filter("failed dc:eu-* web-1")
    HostFilter(states=frozenset({<HostStatus.FAILED: 'failed'>}), datacenters=('eu-*',), names=('web-1',))
    """
    states: set[HostStatus] = set()
    datacenters: list[str] = []
    names: list[str] = []
    for word in text.split():
        key, colon, value = word.partition(":")
        key = key.lower()
        if colon and key in ("dc", "datacenter"):
            datacenters.append(value)
        elif colon and key in ("state", "status", "is"):
            if value:  # `state:` alone is a word still being typed
                states |= _states_named(value)
        elif colon and key in ("name", "host"):
            names.append(value)
        elif word.lower() in STATE_ALIASES:
            states |= STATE_ALIASES[word.lower()]
        else:
            names.append(word)
    return HostFilter(frozenset(states), tuple(d for d in datacenters if d), tuple(n for n in names if n))


def _states_named(word: str) -> frozenset[HostStatus]:
    """The states a word names: a state, an alias, or the start of exactly one of them."""
    word = word.lower()
    if word in STATE_ALIASES:
        return STATE_ALIASES[word]
    candidates = [name for name in STATE_ALIASES if name.startswith(word)]
    if len(candidates) == 1:
        return STATE_ALIASES[candidates[0]]
    if candidates:
        raise FilterError(f"state {word!r} could be {' or '.join(candidates)}")
    raise FilterError(f"unknown state {word!r}; one of {', '.join(STATE_ALIASES)}")


def _pattern_matches(pattern: str, value: str) -> bool:
    return _matcher(pattern)(value.lower())


@lru_cache(maxsize=64)
def _matcher(pattern: str) -> Callable[[str], bool]:
    """Whether a lower-cased value matches ``pattern``: compiled once, as a filter runs over thousands."""
    pattern = pattern.lower()
    if any(char in pattern for char in "*?["):
        glob = re.compile(fnmatch.translate(pattern))
        return lambda value: glob.match(value) is not None
    return lambda value: pattern in value


def filter_hosts(hosts: Sequence[ShownHost], host_filter: HostFilter) -> Sequence[ShownHost]:
    """The hosts that pass (as :meth:`HostFilter.matches` says); ``hosts`` itself when the
    filter is empty (no copy of thousands).

    Thousands of hosts live in a handful of datacenters: each datacenter's name is
    matched once, not once per host (typing a filter over 5,000 hosts took 12 ms of the
    screen's time, with every host matched against every pattern).
    """
    if host_filter.is_empty:
        return hosts
    states, names = host_filter.states, host_filter.names
    in_datacenters: set[str] | None = None
    if host_filter.datacenters:
        in_datacenters = {
            datacenter
            for datacenter in {host.datacenter for host in hosts}
            if any(_pattern_matches(pattern, datacenter) for pattern in host_filter.datacenters)
        }
    return [
        host
        for host in hosts
        if (not states or host.status in states)
        and (in_datacenters is None or host.datacenter in in_datacenters)
        and (not names or any(_pattern_matches(pattern, host.name) for pattern in names))
    ]


# ---- progress: datacenters, waves, the failure budget ----------------------------------


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

    This is the controller's own rule (:func:`deployer.decide.active_wave`), read
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


class BudgetState(StrEnum):
    UNKNOWN = "unknown"  # the deployment does not record its budget
    CLEAR = "clear"  # no failure yet
    SPENDING = "spending"  # some failures, more tolerated
    AT_LIMIT = "at-limit"  # as many failures as tolerated: one more halts
    EXCEEDED = "exceeded"  # over the budget: the deployment halts


@dataclass(frozen=True, slots=True)
class FailureBudget:
    """Failed hosts (failed or unreachable) against the number tolerated.

    Worked example: budget 2. No failure: clear. One: spending, 1 more tolerated.
    Two: at the limit, one more halts. Three: exceeded, the controller halts
    (hosts in flight finish, no new host starts).
    """

    failed_count: int
    budget: int | None

    @property
    def state(self) -> BudgetState:
        if self.budget is None:
            return BudgetState.UNKNOWN
        if self.failed_count > self.budget:
            return BudgetState.EXCEEDED
        if self.failed_count == self.budget:
            return BudgetState.AT_LIMIT
        return BudgetState.SPENDING if self.failed_count else BudgetState.CLEAR

    def describe(self) -> str:
        failed = f"{self.failed_count} failed"
        match self.state:
            case BudgetState.UNKNOWN:
                return f"{failed} (budget not recorded)"
            case BudgetState.EXCEEDED:
                return f"{failed}, more than the {self.budget} allowed: halting"
            case BudgetState.AT_LIMIT:
                return f"{failed} of {self.budget} allowed: one more halts"
            case _:
                assert self.budget is not None
                return f"{failed} of {self.budget} allowed: {self.budget - self.failed_count} more tolerated"


BUDGET_STYLES: Mapping[BudgetState, str] = {
    BudgetState.UNKNOWN: "yellow",
    BudgetState.CLEAR: "green",
    BudgetState.SPENDING: "yellow",
    BudgetState.AT_LIMIT: "bold red",
    BudgetState.EXCEEDED: "bold reverse red",
}


def failed_count(counts: Mapping[HostStatus, int]) -> int:
    return sum(n for status, n in counts.items() if status.is_failure)


def budget_of(view: DeploymentView) -> int | None:
    """The deployment's failure budget if the store records it (``DeploymentView.failure_budget``).

    Read by name so the TUI shows it as soon as the store carries it; until then
    the screens say the budget is not recorded, or use the one the controller
    announced in its DeploymentStarted event (``deploy push --tui``).
    """
    budget: Any = getattr(view, "failure_budget", None)
    return budget if isinstance(budget, int) else None


def budget_meter(budget: FailureBudget, width: int = 20) -> list[tuple[str, str]]:
    """The budget as cells: one ``✗`` per failure, one ``○`` per failure still tolerated.

    When the budget is wider than ``width`` the meter is scaled (each cell stands
    for several hosts) and says so with a ``≈`` in front.
    """
    if budget.budget is None:
        return []
    slots = budget.budget + 1  # the last slot is the failure that halts
    used = min(budget.failed_count, slots)
    if slots > width:
        used = round(used * width / slots) if used < slots else width
        used = max(used, 1 if budget.failed_count else 0)
        slots = width
        cells = [("≈", "dim")]
    else:
        cells = []
    style = BUDGET_STYLES[budget.state]
    cells += [("✗", style)] * used
    cells += [("○", "dim")] * (slots - used - 1)
    if used < slots:
        cells.append(("│", "bold red"))  # the one that would halt
    return cells


# ---- time ------------------------------------------------------------------------------


def format_span(span: timedelta | float) -> str:
    """A duration for people: ``0.4s``, ``45s``, ``3m 12s``, ``1h 05m``, ``2d 3h``."""
    seconds = span.total_seconds() if isinstance(span, timedelta) else float(span)
    seconds = max(0.0, seconds)
    if seconds < 10:
        return f"{seconds:.1f}s"
    whole = int(seconds)
    minutes, secs = divmod(whole, 60)
    hours, minutes = divmod(minutes, 60)
    days, hours = divmod(hours, 24)
    if days:
        return f"{days}d {hours}h"
    if hours:
        return f"{hours}h {minutes:02d}m"
    if minutes:
        return f"{minutes}m {secs:02d}s"
    return f"{secs}s"


def elapsed(view: DeploymentView, now: datetime) -> timedelta:
    """How long the deployment ran (until it finished) or has been running (until ``now``)."""
    end = view.finished_at or now
    return max(timedelta(0), end - view.started_at)


def host_duration(host: ShownHost, now: datetime) -> timedelta | None:
    if host.started_at is None:
        return None
    end = host.finished_at or (now if host.status is HostStatus.RUNNING else host.started_at)
    return max(timedelta(0), end - host.started_at)


def format_moment(moment: datetime | None, tz: tzinfo) -> str:
    """``2026-11-27 18:30:05`` in ``tz`` (the operator's zone), or a dash."""
    if moment is None:
        return "-"
    return moment.astimezone(tz).strftime("%Y-%m-%d %H:%M:%S")


def format_ago(moment: datetime | None, now: datetime) -> str:
    if moment is None:
        return "-"
    span = now - moment
    if span < timedelta(0):
        return "in " + format_span(-span)
    return format_span(span) + " ago"


# ---- deployments in lists ----------------------------------------------------------------


def outcome_counts(counts: Mapping[HostStatus, int]) -> list[tuple[str, str]]:
    """(text, style) pieces such as ``✓12`` ``✗1``: the non-zero counts, with symbols."""
    pieces = []
    for status in HostStatus:
        if counts.get(status, 0):
            glyph = HOST_GLYPHS[status]
            pieces.append((f"{glyph.symbol}{counts[status]}", glyph.style))
    return pieces


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
    if not shares or width <= 0:
        return []
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

    ``budget`` is used when the store does not record one (see :func:`budget_of`).
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
    when = f" at {format_moment(view.control_requested_at, tz)}" if view.control_requested_at else ""
    if requested is ControlAction.ABORT:
        return f"abort requested{who}{when}: hosts in flight finish, no new host starts"
    if requested is ControlAction.PAUSE and view.status is DeploymentStatus.RUNNING:
        return f"pause requested{who}{when}: waiting for the controller to take it"
    if requested is ControlAction.PAUSE:
        return f"paused{who}{when}: no new host starts; press r to resume"
    if requested is ControlAction.RESUME and view.status is DeploymentStatus.PAUSED:
        return f"resume requested{who}{when}: waiting for the controller to take it"
    return None
