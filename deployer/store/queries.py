"""The writes' statements behind :class:`~deployer.store.repository.Store`, and what every query shares.

The table aliases, the lookups every write starts from, and the statements of the
writes, the hottest ones built once. Each function takes an open connection (or builds
a statement) and returns plain rows; transactions are the Store's business. The reads,
rows into views, are in :mod:`deployer.store.view_queries`.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import BindParameter, Connection, Row, Select, bindparam, delete, func, insert, select, update

from deployer.core.errors import NotFound
from deployer.core.results import HostStatus
from deployer.core.targets import Host
from deployer.store.models import deployments, host_deployments, host_steps, hosts, version_intervals

D = deployments
H = hosts
HD = host_deployments
HS = host_steps
VI = version_intervals

CHUNK = 500  # names per IN (...) list: well under SQLite's bound-parameter limit


def host_id_in(deployment_id: Any, host: Any) -> Any:
    """The id of ``host`` in the app+environment of ``deployment_id``, as a scalar subquery."""
    return (
        select(H.c.id)
        .select_from(H.join(D, (D.c.app == H.c.app) & (D.c.environment == H.c.environment)))
        .where(D.c.id == deployment_id, H.c.name == host)
        .scalar_subquery()
    )


_LATEST = HD.alias("latest")


def next_revision(deployment_id: Any) -> Any:
    """The revision for a row of ``deployment_id`` that changes now, as a scalar subquery: one
    past every row of the deployment.

    A screen polling the deployment then reads only the rows past the last revision it
    saw (:func:`progress_view`). That misses nothing because one controller writes a
    deployment's rows, one statement after another: revisions are committed in the
    order they are given, so a read that saw revision R saw every revision before it.
    """
    return (
        select(func.coalesce(func.max(_LATEST.c.revision), 0) + 1)
        .where(_LATEST.c.deployment_id == deployment_id)
        .scalar_subquery()
    )


# The hottest write (every step of every host): built once, run with the parameters
# of_deployment, host, new_step and now (names that are not columns, as SQLAlchemy asks).
MARK_STAGED = (
    update(HD)
    .where(
        HD.c.deployment_id == bindparam("of_deployment"),
        HD.c.host_id == host_id_in(bindparam("of_deployment"), bindparam("host")),
        HD.c.status == HostStatus.PENDING.value,
    )
    .values(
        staged_at=bindparam("now", type_=HD.c.staged_at.type),
        revision=next_revision(bindparam("of_deployment")),
    )
)

RECORD_STEP = (
    update(HD)
    .where(
        HD.c.deployment_id == bindparam("of_deployment"),
        HD.c.host_id == host_id_in(bindparam("of_deployment"), bindparam("host")),
    )
    .values(
        status=HostStatus.RUNNING.value,
        step=bindparam("new_step"),
        started_at=func.coalesce(HD.c.started_at, bindparam("now", type_=HD.c.started_at.type)),
        revision=next_revision(bindparam("of_deployment")),
    )
)


def unfinished(app: str, environment: str) -> Select[Any]:
    return select(D).where(D.c.app == app, D.c.environment == environment, D.c.finished_at.is_(None))


def deployment_row(conn: Connection, deployment_id: str, *, for_update: bool = False) -> Row[Any]:
    statement = select(D).where(D.c.id == deployment_id)
    if for_update:
        statement = statement.with_for_update()
    row = conn.execute(statement).one_or_none()
    if row is None:
        raise NotFound(f"no deployment {deployment_id}")
    return row


def upsert_hosts(
    conn: Connection, app: str, environment: str, hosts: Sequence[Host], now: datetime
) -> dict[str, int]:
    """Make sure each host is recorded, current and not retired; name -> row id."""
    known = {
        row.name: row
        for row in conn.execute(
            select(H.c.id, H.c.name, H.c.address, H.c.datacenter, H.c.retired_at).where(
                H.c.app == app, H.c.environment == environment
            )
        )
    }
    new = [host for host in hosts if host.name not in known]
    changed = [
        host
        for host in hosts
        if host.name in known
        and (
            known[host.name].address != host.address
            or known[host.name].datacenter != host.datacenter
            or known[host.name].retired_at is not None
        )
    ]
    if new:
        conn.execute(
            insert(H),
            [
                {
                    "app": app,
                    "environment": environment,
                    "name": host.name,
                    "address": host.address,
                    "datacenter": host.datacenter,
                    "first_seen": now,
                    "retired_at": None,
                }
                for host in new
            ],
        )
    if changed:
        conn.execute(
            update(H)
            .where(H.c.id == bindparam("host_id"))
            .values(
                address=bindparam("new_address"), datacenter=bindparam("new_datacenter"), retired_at=None
            ),
            [
                {
                    "host_id": known[host.name].id,
                    "new_address": host.address,
                    "new_datacenter": host.datacenter,
                }
                for host in changed
            ],
        )
    ids = {name: row.id for name, row in known.items()}
    if new:
        for names in chunks([host.name for host in new]):
            ids.update(
                (row.name, row.id)
                for row in conn.execute(
                    select(H.c.id, H.c.name).where(
                        H.c.app == app, H.c.environment == environment, H.c.name.in_(names)
                    )
                )
            )
    return ids


def pending_row(
    deployment_id: str, host_id: int, wave: int, previous_version: str | None = None
) -> dict[str, Any]:
    return {
        "deployment_id": deployment_id,
        "host_id": host_id,
        "wave": wave,
        "status": HostStatus.PENDING.value,
        "error": None,
        "output_tail": "",
        "previous_version": previous_version,
    }


def skipped_row(deployment_id: str, host_id: int, reason: str) -> dict[str, Any]:
    return {
        "deployment_id": deployment_id,
        "host_id": host_id,
        "wave": None,
        "status": HostStatus.SKIPPED.value,
        "error": reason,
        "output_tail": "",
        "previous_version": None,  # one executemany: every row names the same columns
    }


# record_host_results runs once per host of every deployment: its statements are built
# once, here, so that each call only binds values (building a statement and its cache key
# cost more than running it on SQLite).
_RESULT: BindParameter[int] = bindparam("result_id")
FIND_FOR_RESULT = (
    select(
        HD.c.id,
        HD.c.host_id,
        D.c.app,
        D.c.environment,
        VI.c.id.label("interval_id"),
        VI.c.version.label("interval_version"),
        VI.c.since.label("interval_since"),
    )
    .select_from(
        HD.join(D, D.c.id == HD.c.deployment_id).outerjoin(
            VI, (VI.c.host_id == HD.c.host_id) & VI.c.until.is_(None)
        )
    )
    .where(
        HD.c.deployment_id == bindparam("of_deployment"),
        HD.c.host_id == host_id_in(bindparam("of_deployment"), bindparam("host")),
    )
)
RECORD_RESULT = (
    update(HD)
    .where(HD.c.id == _RESULT)
    .values(
        {
            column: bindparam(f"new_{column}", type_=HD.c[column].type)
            for column in (
                "status",
                "step",
                "started_at",
                "finished_at",
                "error",
                "exit_status",
                "output_tail",
                "version",
            )
        }
        | {
            # What the host ran before, as recorded when the deployment began, unless the
            # result knows better (a host lost before its driver said it knows nothing).
            "previous_version": func.coalesce(
                bindparam("new_previous_version", type_=HD.c.previous_version.type), HD.c.previous_version
            ),
            "revision": next_revision(bindparam("of_deployment")),
        }
    )
)
FORGET_STEPS = delete(HS).where(HS.c.host_deployment_id == _RESULT)
RECORD_STEPS = insert(HS)
CLOSE_INTERVAL = (
    update(VI)
    .where(VI.c.id == bindparam("interval_id"))
    .values(until=bindparam("moment", type_=VI.c.until.type))
)
OPEN_INTERVAL = insert(VI)


def move_host_to_version(
    conn: Connection,
    found: Row[Any, Any, Any, Any, Any, Any, Any],
    version: str,
    moment: datetime,
    deployment_id: str,
) -> None:
    """Close the host's open interval at ``moment`` and open one for ``version``, unless it runs it.

    ``found`` is the host's row of :data:`FIND_FOR_RESULT` (its open interval, if any).
    """
    if found.interval_id is not None:
        if found.interval_version == version:
            return
        # Never end an interval before it began, whatever the clocks said.
        moment = max(moment, found.interval_since)
        conn.execute(CLOSE_INTERVAL, {"interval_id": found.interval_id, "moment": moment})
    conn.execute(
        OPEN_INTERVAL,
        {
            "host_id": found.host_id,
            "app": found.app,
            "environment": found.environment,
            "version": version,
            "since": moment,
            "until": None,
            "deployment_id": deployment_id,
        },
    )


def aware(moment: datetime) -> datetime:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"naive datetime {moment.isoformat()} given to the store; pass an aware one")
    return moment.astimezone(UTC)


def chunks(items: Sequence[str], size: int = CHUNK) -> Iterator[Sequence[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
