"""The store's views as people and scripts read them: JSON documents, and aligned text.

Pure: everything comes in as arguments (the views, ``now``, the zone to show
times in); nothing here reads the store or the clock, or prints.

The JSON documents are a public interface that users' scripts parse: keys are
only ever added, never renamed or removed. Timestamps are ISO 8601 in UTC,
enums their string values, and a missing value is ``null``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, tzinfo
from typing import Any

from deployer.core.policy import rollback_groups
from deployer.core.results import ControlAction, DeploymentStatus, HostStatus
from deployer.core.timefmt import format_age, format_moment, format_span, format_when
from deployer.core.wording import count_of, format_table
from deployer.store.views import (
    ControlState,
    DeploymentView,
    GateView,
    HostDeploymentView,
    Liveness,
    VersionInterval,
)

# ---- JSON ------------------------------------------------------------------------


def deployment_json(
    view: DeploymentView,
    *,
    with_hosts: bool,
    controller: Liveness | None = None,
    rollback: RollbackSummary | None = None,
) -> dict[str, Any]:
    """One deployment; with its hosts (and ``rollback``) for ``deploy status ID``, without in lists.

    ``controller`` is whether its controller looks alive (only meaningful while it
    runs); ``null`` when not given. ``rollback`` is what its automatic rollbacks
    restored (:func:`rollback_summary`), ``null`` when none was due.
    """
    document: dict[str, Any] = {
        "id": view.id,
        "app": view.app,
        "environment": view.environment,
        "kind": str(view.kind),
        "version": view.version,
        "previous_version": view.previous_version,
        "status": str(view.status),
        "reason": view.reason,
        "started_by": view.started_by,
        "started_from": view.started_from,
        "pid": view.pid,
        "started_at": _iso(view.started_at),
        "finished_at": _iso(view.finished_at),
        "heartbeat_at": _iso(view.heartbeat_at),
        "requested_control": None if view.requested_control is None else str(view.requested_control),
        "control_requested_at": _iso(view.control_requested_at),
        "control_requested_by": view.control_requested_by,
        "controller": None
        if controller is None
        else {"alive": controller.alive, "reason": controller.reason},
        "host_count": view.host_count,
        "failure_budget": view.failure_budget,
        "rollback_of": view.rollback_of,
        "counts": {str(status): view.counts.get(status, 0) for status in HostStatus},
        "gates": [gate_json(gate) for gate in view.gates],
    }
    if with_hosts:
        document["hosts"] = [host_json(host) for host in view.hosts]
        document["rollback"] = None if rollback is None else rollback_json(rollback)
    return document


def gate_json(gate: GateView) -> dict[str, Any]:
    """One gate of a deployment: its checks so far and the last one's verdict."""
    return {
        "name": gate.name,
        "checks": gate.check_count,
        "passed": gate.passed,
        "message": gate.message,
        "checked_at": _iso(gate.checked_at),
    }


def gate_sentence(gate: GateView, now: datetime, tz: tzinfo) -> str:
    verdict = "passed" if gate.passed else "FAILED"
    checks = "1 check" if gate.check_count == 1 else f"{gate.check_count} checks"
    return f"{gate.name}: {verdict}: {gate.message} ({checks}, last {format_when(gate.checked_at, now, tz)})"


def host_json(host: HostDeploymentView) -> dict[str, Any]:
    """One host's part in a deployment."""
    return {
        "name": host.name,
        "datacenter": host.datacenter,
        "wave": host.wave,
        "status": str(host.status),
        "step": None if host.step is None else str(host.step),
        "started_at": _iso(host.started_at),
        "finished_at": _iso(host.finished_at),
        "error": host.error,
        "exit_status": host.exit_status,
        "version": host.version,
        "previous_version": host.previous_version,
        "output_tail": host.output_tail,
        "note": host.note,
        "staged": host.staged,
    }


def deployments_json(
    views: Sequence[DeploymentView], *, controllers: Mapping[str, Liveness] | None = None
) -> dict[str, Any]:
    """``deploy status`` without an id, and ``deploy history``: deployments without hosts.

    ``controllers`` holds, by deployment id, whether the unfinished ones' controllers look alive.
    """
    controllers = controllers or {}
    return {
        "deployments": [
            deployment_json(view, with_hosts=False, controller=controllers.get(view.id)) for view in views
        ]
    }


def hosts_json(
    app: str,
    environment: str,
    *,
    at: datetime,
    version: str | None,
    running: Sequence[VersionInterval],
    retired: Mapping[str, datetime],
) -> dict[str, Any]:
    """``deploy hosts``: who ran ``version`` (any when None) at ``at``, and since when.

    ``retired`` maps the names of hosts that have since left the inventory to when
    they left; every host gets a ``retired_at`` (``null`` for a host still in use).
    """
    return {
        "app": app,
        "environment": environment,
        "at": _iso(at),
        "version": version,
        "hosts": [
            {
                "name": interval.host,
                "datacenter": interval.datacenter,
                "version": interval.version,
                "since": _iso(interval.since),
                "until": _iso(interval.until),
                "deployment": interval.deployment_id,
                "retired_at": _iso(retired.get(interval.host)),
            }
            for interval in running
        ],
    }


def versions_json(
    app: str, environment: str, *, at: datetime, versions: Sequence[tuple[str, int]]
) -> dict[str, Any]:
    """``deploy versions``: each version and how many hosts ran it at ``at``."""
    return {
        "app": app,
        "environment": environment,
        "at": _iso(at),
        "versions": [{"version": version, "host_count": count} for version, count in versions],
    }


def host_history_json(
    app: str,
    environment: str,
    host: str,
    intervals: Sequence[VersionInterval],
    *,
    retired_at: datetime | None = None,
) -> dict[str, Any]:
    """``deploy history --host``: the versions a host ran, newest first (``until`` null: still)."""
    return {
        "app": app,
        "environment": environment,
        "host": host,
        "retired_at": _iso(retired_at),
        "versions": [
            {
                "version": interval.version,
                "since": _iso(interval.since),
                "until": _iso(interval.until),
                "deployment": interval.deployment_id,
            }
            for interval in intervals
        ],
    }


def control_json(state: ControlState) -> dict[str, Any]:
    """``deploy pause|resume|abort --json``: what is now asked of the deployment."""
    return {
        "id": state.deployment_id,
        "status": str(state.status),
        "requested": None if state.requested is None else str(state.requested),
        "requested_at": _iso(state.requested_at),
        "requested_by": state.requested_by,
    }


def _iso(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    # The store's moments are in UTC already: converting them again would cost a large
    # fleet's `deploy hosts --json` a good part of its time, for the same text.
    return (moment if moment.tzinfo is UTC else moment.astimezone(UTC)).isoformat()


# ---- text: tables ---------------------------------------------------------------


def format_counts(counts: Mapping[HostStatus, int]) -> str:
    """``4 succeeded, 1 failed, 1 not started``: the non-zero counts, in the order a deployment goes."""
    parts = [f"{counts[status]} {status_words(status)}" for status in HostStatus if counts.get(status, 0)]
    return ", ".join(parts) if parts else "no hosts"


def status_words(status: HostStatus) -> str:
    """A host status as a person reads it: ``not started``, not ``not_started``."""
    return str(status).replace("_", " ")


# ---- an automatic rollback's outcome ------------------------------------------------


@dataclass(frozen=True, slots=True)
class RollbackSummary:
    """What the automatic rollbacks (``on_halt: rollback``) of a halted deployment restored.

    ``switched`` are the hosts the deployment switched away from an earlier version,
    ``restored`` those a rollback put back, ``failed_again`` those that failed the
    deployment and their rollback too, ``not_restored`` the other switched hosts a
    rollback did not put back, and ``nothing_to_restore`` the switched hosts whose
    first deployment it was.
    """

    deployments: tuple[DeploymentView, ...]
    switched: tuple[str, ...]
    restored: tuple[str, ...]
    failed_again: tuple[str, ...]
    not_restored: tuple[str, ...]
    nothing_to_restore: tuple[str, ...]
    untried: tuple[str, ...] = ()  # of not_restored: no rollback took them (yet)

    @property
    def status(self) -> str:
        """``succeeded``: every switched host is back; ``incomplete``: some are not (a rollback
        failed on them, or none took them: stopped or killed first); ``none``: nothing to do."""
        if self.not_restored or self.failed_again:
            return "incomplete"
        return "succeeded" if self.deployments else "none"


def rollback_summary(
    deployment: DeploymentView, rollbacks: Sequence[DeploymentView], *, due: bool
) -> RollbackSummary | None:
    """Sum up ``rollbacks`` (each with hosts) of ``deployment`` (with hosts).

    ``due``: the deployment halted with ``on_halt: rollback``. None when no rollback was
    due, or none was needed (no host had switched).
    """
    if not rollbacks and not due:
        return None
    groups = rollback_groups({h.name: (h.version, h.previous_version) for h in deployment.hosts})
    restorable = [name for names in groups.by_version.values() for name in names]
    if not rollbacks and not restorable and not groups.first_deployment:
        return None
    tried = {h.name for view in rollbacks for h in view.hosts}
    back = {h.name for view in rollbacks for h in view.hosts if h.status is HostStatus.SUCCEEDED}
    failed_before = {h.name for h in deployment.hosts if h.status.is_failure}
    left = [name for name in restorable if name not in back]
    return RollbackSummary(
        deployments=tuple(rollbacks),
        switched=tuple(restorable),
        restored=tuple(name for name in restorable if name in back),
        failed_again=tuple(name for name in left if name in tried and name in failed_before),
        not_restored=tuple(name for name in left if name not in tried or name not in failed_before),
        nothing_to_restore=groups.first_deployment,
        untried=tuple(name for name in left if name not in tried),
    )


def rollback_ids(summary: RollbackSummary) -> list[str]:
    return [view.id for view in summary.deployments]


def rollback_json(summary: RollbackSummary) -> dict[str, Any]:
    """The ``rollback`` object of a halted push's ``--json`` (docs/cli.md)."""
    return {
        "status": summary.status,
        "ids": rollback_ids(summary),
        "deployments": [
            {"id": view.id, "version": view.version, "status": str(view.status), "reason": view.reason}
            for view in summary.deployments
        ],
        "switched_count": len(summary.switched),
        "restored_count": len(summary.restored),
        "restored": list(summary.restored),
        "failed_again": list(summary.failed_again),
        "not_restored": list(summary.not_restored),
        "nothing_to_restore": list(summary.nothing_to_restore),
    }


def rollback_sentence(summary: RollbackSummary) -> str:
    """``rollback restored 7 of 9 switched hosts; lab07, lab11 failed both``."""
    parts = [
        f"rollback restored {len(summary.restored)} of {count_of(len(summary.switched), 'switched host')}"
    ]
    if summary.failed_again:
        parts.append(f"{', '.join(summary.failed_again)} failed both")
    if summary.not_restored:
        parts.append(f"{', '.join(summary.not_restored)} not restored")
    if summary.nothing_to_restore:
        had = "had" if len(summary.nothing_to_restore) > 1 else "has"
        parts.append(f"{', '.join(summary.nothing_to_restore)} {had} no earlier version to go back to")
    return "; ".join(parts)


# ---- text: the commands' output ---------------------------------------------------


def deployment_lines(
    view: DeploymentView,
    *,
    now: datetime,
    tz: tzinfo,
    controller: Liveness | None = None,
    rollback: RollbackSummary | None = None,
) -> list[str]:
    """``deploy status ID``: what, who, when, how it ended, then one row per host."""
    was = f" (was {view.previous_version})" if view.previous_version else ""
    lines = [
        f"{view.id}  {view.kind} of {view.app} {view.version} to {view.environment}{was}: {view.status}",
        f"  {'started':<10} {format_when(view.started_at, now, tz)} by {view.started_by} "
        f"on {view.started_from} (pid {view.pid})",
    ]
    if view.finished_at is not None:
        took = format_span(view.finished_at - view.started_at)
        lines.append(f"  {'finished':<10} {format_when(view.finished_at, now, tz)}, after {took}")
    if view.reason:
        lines.append(f"  {'reason':<10} {view.reason}")
    if rollback is not None:
        lines.append(
            f"  {'rollback':<10} {rollback_sentence(rollback)} ({', '.join(rollback_ids(rollback))})"
        )
    if view.requested_control is not None and view.control_requested_at is not None:
        lines.append(
            f"  {'asked':<10} {view.requested_control} by {view.control_requested_by} "
            f"at {format_when(view.control_requested_at, now, tz)}"
        )
    if controller is not None and view.finished_at is None:
        state = "alive" if controller.alive else "looks dead"
        lines.append(f"  {'controller':<10} {state}: {controller.reason}")
    for gate in view.gates:
        lines.append(f"  {'gate':<10} {gate_sentence(gate, now, tz)}")
    lines.append(f"  {'hosts':<10} {format_counts(view.counts)} ({view.host_count} in all)")
    if view.hosts:
        day = view.started_at.astimezone(tz).date()
        rows = [
            [
                "-" if host.wave is None else str(host.wave),
                host.name,
                host.datacenter,
                str(host.status),
                "-" if host.step is None else str(host.step),
                _clock(host.started_at, day, tz),
                _clock(host.finished_at, day, tz),
                " ".join((host.error or "").split()),
            ]
            for host in view.hosts
        ]
        lines.append("")
        lines += format_table(
            ["WAVE", "HOST", "DATACENTER", "STATUS", "STEP", "STARTED", "FINISHED", "ERROR"], rows
        )
    return lines


def deployments_lines(
    views: Sequence[DeploymentView],
    *,
    now: datetime,
    tz: tzinfo,
    controllers: Mapping[str, Liveness] | None = None,
    empty: str = "no deployments recorded",
) -> list[str]:
    """``deploy status`` and ``deploy history``: one row per deployment, as given (newest first).

    An unfinished deployment whose controller looks dead (per ``controllers``) says so in
    its status: it holds its app+environment's lock until ``deploy resume`` takes it over.
    """
    if not views:
        return [empty]
    controllers = controllers or {}

    def status(view: DeploymentView) -> str:
        controller = controllers.get(view.id)
        dead = view.finished_at is None and controller is not None and not controller.alive
        if dead:
            return f"{view.status} (controller dead)"
        failed = [gate.name for gate in view.gates if not gate.passed]
        if view.status is DeploymentStatus.HALTED and failed:  # why, when a gate stopped it
            return f"{view.status} (gate {failed[0]})"
        return str(view.status)

    rows = [
        [
            view.id,
            view.app,
            view.environment,
            str(view.kind),
            view.version,
            status(view),
            f"{format_moment(view.started_at, tz, seconds=False)} ({format_age(view.started_at, now)})",
            view.started_by,
            "running" if view.finished_at is None else format_span(view.finished_at - view.started_at),
            format_counts(view.counts),
        ]
        for view in views
    ]
    headers = ["ID", "APP", "ENV", "KIND", "VERSION", "STATUS", "STARTED", "BY", "TOOK", "HOSTS"]
    return format_table(headers, rows)


def hosts_lines(
    app: str,
    environment: str,
    *,
    at: datetime | None,
    now: datetime,
    tz: tzinfo,
    version: str | None,
    running: Sequence[VersionInterval],
    retired: Mapping[str, datetime],
) -> list[str]:
    """``deploy hosts``: one row per host with its version and since when; or why there is none."""
    what = version if version is not None else "any recorded version"
    if not running:
        if at is None:
            return [f"no host of {app} in {environment} runs {what}"]
        return [f"no host of {app} in {environment} ran {what} at {format_moment(at, tz)}"]
    # UNTIL only matters for a moment in the past; NOTE only when a host has left since.
    with_until = at is not None
    with_note = any(interval.host in retired for interval in running)
    rows = []
    for interval in running:
        row = [
            interval.host,
            interval.datacenter,
            interval.version,
            f"{format_moment(interval.since, tz)} ({format_age(interval.since, now)})",
        ]
        if with_until:
            row.append("-" if interval.until is None else format_moment(interval.until, tz))
        if with_note:
            left = retired.get(interval.host)
            row.append("" if left is None else f"retired {format_moment(left, tz, seconds=False)}")
        rows.append(row)
    headers = ["HOST", "DATACENTER", "VERSION", "SINCE", *(["UNTIL"] * with_until), *(["NOTE"] * with_note)]
    moment = "now" if at is None else f"at {format_moment(at, tz)}"
    count = len(running)
    title = f"{count} host{'s' if count != 1 else ''} of {app} in {environment} running {what} {moment}:"
    return [title, *format_table(headers, rows)]


def versions_lines(
    app: str,
    environment: str,
    *,
    at: datetime | None,
    tz: tzinfo,
    versions: Sequence[tuple[str, int]],
) -> list[str]:
    """``deploy versions``: each version and its host count, most hosts first."""
    moment = "now" if at is None else f"at {format_moment(at, tz)}"
    if not versions:
        verb = "runs" if at is None else "ran"
        return [f"no host of {app} in {environment} {verb} any recorded version {moment}"]
    total = sum(count for _, count in versions)
    rows = [[version, str(count), f"{100 * count / total:.0f}%"] for version, count in versions]
    return [
        f"versions of {app} in {environment} {moment}:",
        *format_table(["VERSION", "HOSTS", "SHARE"], rows),
    ]


def host_history_lines(
    app: str,
    environment: str,
    host: str,
    intervals: Sequence[VersionInterval],
    *,
    now: datetime,
    tz: tzinfo,
    retired_at: datetime | None = None,
) -> list[str]:
    """``deploy history --host``: the versions a host ran, newest first, with how long each."""
    if not intervals:
        return [f"no version of {app} is recorded on {host} in {environment}"]
    rows = [
        [
            interval.version,
            format_moment(interval.since, tz),
            "now" if interval.until is None else format_moment(interval.until, tz),
            format_span((interval.until or now) - interval.since),
            interval.deployment_id or "-",
        ]
        for interval in intervals
    ]
    title = f"versions of {app} on {host} in {environment}, newest first"
    if retired_at is not None:
        title += f" (retired {format_when(retired_at, now, tz)})"
    return [title + ":", *format_table(["VERSION", "SINCE", "UNTIL", "FOR", "DEPLOYMENT"], rows)]


def control_lines(state: ControlState, *, now: datetime, tz: tzinfo) -> list[str]:
    """What ``deploy pause|resume|abort`` recorded, and what happens next."""
    asked = f"by {state.requested_by} at {format_when(state.requested_at, now, tz)}"
    ident = state.deployment_id
    match state.requested:
        case ControlAction.PAUSE:
            effect = f"no new host starts once its controller sees it; `deploy resume {ident}` continues"
        case ControlAction.RESUME:
            effect = "its controller starts hosts again once it sees it"
        case ControlAction.ABORT:
            effect = "its controller stops the deployment once it sees it"
        case None:
            effect = "nothing is asked of it"
    return [f"{state.requested} of {ident} requested {asked} (it is {state.status}): {effect}"]


def _clock(moment: datetime | None, day: date, tz: tzinfo) -> str:
    """A host's time within its deployment: the time of day, with the date only when it differs."""
    if moment is None:
        return "-"
    local = moment.astimezone(tz)
    if local.date() == day:
        return f"{local:%H:%M:%S}"
    return f"{local:%Y-%m-%d %H:%M:%S}"
