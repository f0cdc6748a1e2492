"""The reads behind :class:`~deployer.store.repository.Store`: rows into views.

Version intervals (which host ran what, when), deployments with their hosts, and the
live progress a screen polls. Each function takes an open connection (or builds a
statement) and returns views; transactions are the Store's business. The writes'
statements are in :mod:`deployer.store.queries`.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Row, Select, bindparam, func, or_, select, true

from deployer.core.results import (
    ControlAction,
    DeploymentKind,
    DeploymentStatus,
    HostStatus,
    Step,
    StepResult,
)
from deployer.store.models import gate_checks
from deployer.store.queries import HD, HS, VI, H, chunks
from deployer.store.views import (
    ControlState,
    DeploymentProgress,
    DeploymentView,
    GateView,
    HostDeploymentView,
    HostProgress,
    VersionInterval,
)


def interval_columns() -> Select[Any]:
    return select(H.c.name, H.c.datacenter, VI.c.version, VI.c.since, VI.c.until, VI.c.deployment_id)


def covering_intervals(
    app: str, environment: str, version: str | None, at: datetime | None, *, dialect: str
) -> Select[Any]:
    """Each host's interval that covers ``at`` (now when None), of ``version`` if given.

    Columns as :func:`interval_columns`; unordered. Three shapes, each served by its
    own index, none growing with the length of the history:

    - now: the open intervals (partial index ``ix_version_intervals_open``);
    - one version at a moment: that version's intervals that began by then
      (``ix_version_intervals_version_since``);
    - every version at a moment: per host, the latest interval that began by then
      (``ix_version_intervals_host_since``, one backward seek per host), kept when it
      had not ended yet. Scanning every interval that began by then would grow with
      the history; this grows with the number of hosts only. PostgreSQL is given the
      per-host seek as a LATERAL join (as a correlated subquery in the join condition
      its planner prefers to hash the whole table); SQLite has no LATERAL and runs
      the correlated subquery as a seek per host.
    """
    if at is None:
        return (
            interval_columns()
            .select_from(VI.join(H, H.c.id == VI.c.host_id))
            .where(VI.c.app == app, VI.c.environment == environment, VI.c.until.is_(None))
            .where(true() if version is None else VI.c.version == version)
        )
    if version is not None:
        return (
            interval_columns()
            .select_from(VI.join(H, H.c.id == VI.c.host_id))
            .where(
                VI.c.app == app,
                VI.c.environment == environment,
                VI.c.version == version,
                VI.c.since <= at,
                or_(VI.c.until.is_(None), VI.c.until > at),
            )
        )
    if dialect == "postgresql":
        latest = (
            select(VI.c.version, VI.c.since, VI.c.until, VI.c.deployment_id)
            .where(VI.c.host_id == H.c.id, VI.c.since <= at)
            .order_by(VI.c.since.desc(), VI.c.id.desc())
            .limit(1)
            .lateral("latest")
        )
        return (
            select(
                H.c.name,
                H.c.datacenter,
                latest.c.version,
                latest.c.since,
                latest.c.until,
                latest.c.deployment_id,
            )
            .select_from(H.join(latest, true()))
            .where(
                H.c.app == app,
                H.c.environment == environment,
                or_(latest.c.until.is_(None), latest.c.until > at),
            )
        )
    earlier = VI.alias("earlier")
    latest_id = (
        select(earlier.c.id)
        .where(earlier.c.host_id == H.c.id, earlier.c.since <= at)
        .order_by(earlier.c.since.desc(), earlier.c.id.desc())
        .limit(1)
        .correlate(H)
        .scalar_subquery()
    )
    return (
        interval_columns()
        .select_from(H.join(VI, VI.c.id == latest_id))
        .where(H.c.app == app, H.c.environment == environment, or_(VI.c.until.is_(None), VI.c.until > at))
    )


def interval_view(row: Sequence[Any]) -> VersionInterval:
    """A row of :func:`interval_columns` as a view (positional: this runs once per host listed)."""
    return VersionInterval._make(row)


def control_state_view(row: Row[Any]) -> ControlState:
    return ControlState(
        deployment_id=row.id,
        status=DeploymentStatus(row.status),
        requested=None if row.requested_control is None else ControlAction(row.requested_control),
        requested_at=row.control_requested_at,
        requested_by=row.control_requested_by,
    )


def host_counts(conn: Connection, deployment_ids: Sequence[str]) -> dict[str, dict[HostStatus, int]]:
    counts: dict[str, dict[HostStatus, int]] = defaultdict(lambda: dict.fromkeys(HostStatus, 0))
    for ids in chunks(list(deployment_ids)):
        statement = (
            select(HD.c.deployment_id, HD.c.status, func.count().label("n"))
            .where(HD.c.deployment_id.in_(ids))
            .group_by(HD.c.deployment_id, HD.c.status)
        )
        for row in conn.execute(statement):
            counts[row.deployment_id][HostStatus(row.status)] = row.n
    return counts


def gate_views(conn: Connection, deployment_ids: Sequence[str]) -> dict[str, tuple[GateView, ...]]:
    """Each deployment's gates, in name order (none for most: few specs have gates)."""
    found: dict[str, list[GateView]] = defaultdict(list)
    for ids in chunks(list(deployment_ids)):
        statement = (
            select(gate_checks).where(gate_checks.c.deployment_id.in_(ids)).order_by(gate_checks.c.name)
        )
        for row in conn.execute(statement):
            found[row.deployment_id].append(
                GateView(row.name, row.check_count, bool(row.passed), row.message, row.checked_at)
            )
    return {deployment_id: tuple(views) for deployment_id, views in found.items()}


def deployment_view(
    row: Row[Any],
    counts: dict[HostStatus, int],
    hosts: tuple[HostDeploymentView, ...],
    gates: tuple[GateView, ...] = (),
) -> DeploymentView:
    return DeploymentView(
        id=row.id,
        app=row.app,
        environment=row.environment,
        kind=DeploymentKind(row.kind),
        version=row.version,
        previous_version=row.previous_version,
        status=DeploymentStatus(row.status),
        started_by=row.started_by,
        started_from=row.started_from,
        pid=row.pid,
        started_at=row.started_at,
        finished_at=row.finished_at,
        heartbeat_at=row.heartbeat_at,
        spec_sha256=row.spec_sha256,
        failure_budget=row.failure_budget,
        rollback_of=row.rollback_of,
        reason=row.reason,
        requested_control=None if row.requested_control is None else ControlAction(row.requested_control),
        control_requested_at=row.control_requested_at,
        control_requested_by=row.control_requested_by,
        counts=counts,
        hosts=hosts,
        gates=gates,
    )


def summary_views(conn: Connection, rows: Sequence[Row[Any]]) -> list[DeploymentView]:
    counts = host_counts(conn, [row.id for row in rows])
    gates = gate_views(conn, [row.id for row in rows])
    return [deployment_view(row, counts[row.id], (), gates.get(row.id, ())) for row in rows]


def full_view(conn: Connection, row: Row[Any], *, steps: bool) -> DeploymentView:
    hosts = host_views(conn, row.id, steps=steps)
    counts = dict.fromkeys(HostStatus, 0)
    for host in hosts:
        counts[host.status] += 1
    return deployment_view(row, counts, hosts, gate_views(conn, [row.id]).get(row.id, ()))


def one_host_view(conn: Connection, row: Row[Any], host: str, *, steps: bool) -> DeploymentView:
    """The deployment (counts of all its hosts) with only ``host`` in ``hosts``, none if it is not part."""
    counts = host_counts(conn, [row.id])[row.id]
    hosts = host_views(conn, row.id, steps=steps, name=host)
    return deployment_view(row, counts, hosts, gate_views(conn, [row.id]).get(row.id, ()))


def host_views(
    conn: Connection, deployment_id: str, *, steps: bool, name: str | None = None
) -> tuple[HostDeploymentView, ...]:
    """The deployment's hosts (only the one named ``name`` when given) in plan order."""
    only = true() if name is None else H.c.name == name
    host_rows = list(
        conn.execute(
            select(HD, H.c.name, H.c.datacenter)
            .select_from(HD.join(H, H.c.id == HD.c.host_id))
            .where(HD.c.deployment_id == deployment_id, only)
        )
    )
    host_rows.sort(key=lambda host: _plan_position(host.wave, host.name))
    steps_by_host: dict[int, list[StepResult]] = defaultdict(list)
    if steps:
        step_rows = conn.execute(
            select(HS)
            .join(HD, HD.c.id == HS.c.host_deployment_id)
            .where(HD.c.deployment_id == deployment_id)
            .where(true() if name is None else HD.c.id.in_([host.id for host in host_rows]))
            .order_by(HS.c.host_deployment_id, HS.c.position)
        )
        for step in step_rows:
            steps_by_host[step.host_deployment_id].append(
                StepResult(
                    step=Step(step.step),
                    exit_status=step.exit_status,
                    started_at=step.started_at,
                    duration=step.duration,
                    output=step.output,
                    attempts=step.attempts,
                )
            )
    return tuple(
        HostDeploymentView(
            name=host.name,
            datacenter=host.datacenter,
            wave=host.wave,
            status=HostStatus(host.status),
            step=None if host.step is None else Step(host.step),
            started_at=host.started_at,
            finished_at=host.finished_at,
            error=host.error,
            exit_status=host.exit_status,
            output_tail=host.output_tail,
            version=host.version,
            previous_version=host.previous_version,
            steps=tuple(steps_by_host.get(host.id, ())),
            note=host.note,
            staged=host.staged_at is not None,
        )
        for host in host_rows
    )


def _plan_position(wave: int | None, name: str) -> tuple[bool, int, str]:
    """Where a host sorts: waves in order, skipped hosts (no wave) last; names in code-point
    order on every database (sorted here, not by the database's collation)."""
    return (wave is None, wave or 0, name)


# What a live screen shows of each host of one deployment: only host_deployments' own
# columns (no join, no output), positionally, as progress_view reads them.
HOST_PROGRESS = select(
    HD.c.id,
    HD.c.host_id,
    HD.c.wave,
    HD.c.status,
    HD.c.step,
    HD.c.started_at,
    HD.c.finished_at,
    HD.c.error,
    HD.c.exit_status,
    HD.c.version,
    HD.c.staged_at,
    HD.c.revision,
).where(HD.c.deployment_id == bindparam("of_deployment"), HD.c.revision > bindparam("after"))


def datacenter_sizes(deployment_id: str) -> Select[Any]:
    """The datacenters of a deployment's hosts, each once with its number of hosts, sorted by name."""
    return (
        select(H.c.datacenter, func.count())
        .select_from(H.join(HD, HD.c.host_id == H.c.id))
        .where(HD.c.deployment_id == deployment_id)
        .group_by(H.c.datacenter)
        .order_by(H.c.datacenter)
    )


def host_names(conn: Connection, deployment_id: str) -> dict[int, tuple[str, str]]:
    """hosts.id -> (name, datacenter) of the hosts in the deployment."""
    return {
        host_id: (name, datacenter)
        for host_id, name, datacenter in conn.execute(
            select(H.c.id, H.c.name, H.c.datacenter)
            .select_from(H.join(HD, HD.c.host_id == H.c.id))
            .where(HD.c.deployment_id == deployment_id)
        )
    }


def progress_view(conn: Connection, row: Row[Any], since: DeploymentProgress | None) -> DeploymentProgress:
    """The deployment and every host's progress, reading only the rows changed since ``since``.

    A first read (no ``since``) fetches every row of the deployment's ``host_deployments``
    (their own columns, no join, no output); a read handed the one before fetches only
    the rows past its revision (see :func:`~deployer.store.queries.next_revision`), so only a host whose row
    changed gets a new :class:`HostProgress`. Names and datacenters (``hosts``) are read
    again only when a host joins, and the plan order is sorted again only when a host
    joins or changes its wave. (Rows are never deleted while a deployment is watched.)

    Worked example: 5,000 hosts; between two reads a wave of 250 moves from upload to
    switch. 250 rows are fetched and 250 objects built; the other 4,750 are those of
    ``since``, nothing is sorted. With no change between two reads, no row is fetched.
    """
    after = since.revision if since is not None else -1
    fresh = conn.execute(HOST_PROGRESS, {"of_deployment": row.id, "after": after}).all()
    names = since.names if since is not None else {}
    if any(host_id not in names for _, host_id, *_ in fresh):
        names = host_names(conn, row.id)
    progress = dict(since.progress) if since is not None else {}
    revision = max(after, 0)
    replan = since is None
    for (
        row_id,
        host_id,
        wave,
        status,
        step,
        started,
        finished,
        error,
        exit_status,
        version,
        staged,
        changed,
    ) in fresh:
        name, datacenter = names[host_id]
        before = progress.get(row_id)
        replan = replan or before is None or (before.wave, before.name) != (wave, name)
        revision = max(revision, changed)
        progress[row_id] = HostProgress(
            name=name,
            datacenter=datacenter,
            wave=wave,
            status=HostStatus(status),
            step=None if step is None else Step(step),
            started_at=started,
            finished_at=finished,
            error=error,
            exit_status=exit_status,
            version=version,
            staged=staged is not None,
        )
    if replan:  # a host joined or moved: ``progress`` is kept in plan order, so sort it again
        progress = dict(sorted(progress.items(), key=lambda item: _plan_position(item[1].wave, item[1].name)))
    hosts = since.hosts if since is not None and not fresh else tuple(progress.values())
    counts = dict.fromkeys(HostStatus, 0)
    for host in hosts:
        counts[host.status] += 1
    return DeploymentProgress(
        view=deployment_view(row, counts, (), gate_views(conn, [row.id]).get(row.id, ())),
        hosts=hosts,
        revision=revision,
        progress=progress,
        names=names,
    )
