"""Which version ran where, when: the hosts known for an app+environment, their version
intervals, and the version a rollback goes back to.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import bindparam, case, func, select, update

from deployer.core.results import DeploymentKind, DeploymentStatus, HostStatus
from deployer.store.base import StoreBase
from deployer.store.queries import HD, VI, D, H, aware, chunks
from deployer.store.view_queries import covering_intervals, interval_columns, interval_view
from deployer.store.views import HostRecord, VersionInterval


class HostHistory(StoreBase):
    """The hosts of an app+environment and their versions over time (the planner, rollback, queries)."""

    def mark_retired(self, app: str, environment: str, host_names: Sequence[str], now: datetime) -> None:
        """Hosts that left the inventory: retired at ``now``, their open version interval closed."""
        now = aware(now)
        with self._write() as conn:
            for names in chunks(sorted(set(host_names))):
                ids = list(
                    conn.scalars(
                        select(H.c.id).where(
                            H.c.app == app,
                            H.c.environment == environment,
                            H.c.name.in_(names),
                            H.c.retired_at.is_(None),
                        )
                    )
                )
                if not ids:
                    continue
                conn.execute(update(H).where(H.c.id.in_(ids)).values(retired_at=now))
                moment = bindparam("now", now, type_=VI.c.until.type)
                conn.execute(
                    update(VI)
                    .where(VI.c.host_id.in_(ids), VI.c.until.is_(None))
                    .values(until=case((VI.c.since > moment, VI.c.since), else_=moment))
                )

    def hosts(self, app: str, environment: str, *, include_retired: bool = False) -> list[HostRecord]:
        """The hosts known for the app+environment, by name."""
        statement = select(H).where(H.c.app == app, H.c.environment == environment)
        if not include_retired:
            statement = statement.where(H.c.retired_at.is_(None))
        with self._read() as conn:
            records = [
                HostRecord(row.name, row.address, row.datacenter, row.first_seen, row.retired_at)
                for row in conn.execute(statement)
            ]
        return sorted(records, key=lambda record: record.name)

    def retired_hosts(self, app: str, environment: str) -> dict[str, datetime]:
        """Host name -> when it left the inventory, for the app+environment's retired hosts only
        (listing every host to find the few retired ones was half of ``deploy hosts``)."""
        statement = select(H.c.name, H.c.retired_at).where(
            H.c.app == app, H.c.environment == environment, H.c.retired_at.is_not(None)
        )
        with self._read() as conn:
            return {name: retired_at for name, retired_at in conn.execute(statement)}

    def current_versions(self, app: str, environment: str) -> dict[str, str]:
        """Host name -> the version it runs now, for hosts with a known version."""
        return {interval.host: interval.version for interval in self.hosts_running(app, environment)}

    def failed_hosts_of_last_deployment(self, app: str, environment: str) -> set[str]:
        """Hosts that FAILED or were UNREACHABLE in the app+environment's latest deployment."""
        latest = (
            select(D.c.id)
            .where(D.c.app == app, D.c.environment == environment)
            .order_by(D.c.started_at.desc(), D.c.id.desc())
            .limit(1)
            .scalar_subquery()
        )
        failures = [status.value for status in HostStatus if status.is_failure]
        statement = (
            select(H.c.name)
            .select_from(HD.join(H, H.c.id == HD.c.host_id))
            .where(HD.c.deployment_id == latest, HD.c.status.in_(failures))
        )
        with self._read() as conn:
            return set(conn.scalars(statement))

    def last_good_version(self, app: str, environment: str, *, before: str | None = None) -> str | None:
        """The version to roll back to: that of the latest SUCCEEDED deployment (on some host).

        With ``before`` (usually the version running now): the latest SUCCEEDED
        deployment of another version that started before the latest deployment of
        ``before``. None when there is none.

        Worked example: 1.0 succeeded, 1.1 succeeded, 1.2 halted. ``before="1.2"`` skips
        back past 1.2's deployment and gives 1.1; ``before="1.1"`` gives 1.0; without
        ``before`` the answer is 1.1, the latest success.
        """
        # Older stores hold pushes that ended SUCCEEDED with no host succeeded (the budget
        # allowed every failure): a version only becomes good on some host's success.
        some_host_succeeded = (
            select(HD.c.id)
            .where(HD.c.deployment_id == D.c.id, HD.c.status == HostStatus.SUCCEEDED.value)
            .exists()
        )
        statement = (
            select(D.c.version, D.c.status, D.c.kind, some_host_succeeded.label("some_host_succeeded"))
            # a restart deploys no version: it makes none good and is no version's latest deployment
            .where(D.c.app == app, D.c.environment == environment, D.c.kind != DeploymentKind.RESTART.value)
            .order_by(D.c.started_at.desc(), D.c.id.desc())
        )
        with self._read() as conn:
            rows = [
                (
                    row.version,
                    DeploymentStatus(row.status) if row.some_host_succeeded else DeploymentStatus.FAILED,
                )
                for row in conn.execute(statement)
                # A rollback to ``before`` is not where ``before`` came from: cutting there would
                # make a second rollback go forward again, to the version just rolled back from.
                if not (
                    before is not None and row.version == before and row.kind == DeploymentKind.ROLLBACK.value
                )
            ]
        return pick_last_good_version(rows, before)

    def versions_ever_run(self, app: str, environment: str) -> list[str]:
        """Every version some host of the app+environment ran at some time, sorted."""
        statement = (
            select(VI.c.version)
            .select_from(VI.join(H, H.c.id == VI.c.host_id))
            .where(H.c.app == app, H.c.environment == environment)
            .distinct()
        )
        with self._read() as conn:
            return sorted(conn.scalars(statement))

    def host_history(self, app: str, environment: str, host: str) -> list[VersionInterval]:
        """Every version ``host`` ran for the app+environment, newest first."""
        statement = (
            interval_columns()
            .select_from(VI.join(H, H.c.id == VI.c.host_id))
            .where(H.c.app == app, H.c.environment == environment, H.c.name == host)
            .order_by(VI.c.since.desc(), VI.c.id.desc())
        )
        with self._read() as conn:
            return [interval_view(row) for row in conn.execute(statement).all()]

    def hosts_running(
        self, app: str, environment: str, version: str | None = None, at: datetime | None = None
    ) -> list[VersionInterval]:
        """The hosts running ``version`` (any version when None) now, or at the moment ``at``.

        Each with the interval that covers the moment (``since`` is when it got there).
        By host name (code-point order, the same on every database). One indexed query
        whatever the history's length.
        """
        moment = None if at is None else aware(at)
        statement = covering_intervals(app, environment, version, moment, dialect=self._dialect)
        with self._read() as conn:
            found = [interval_view(row) for row in conn.execute(statement).all()]
        # Sorted here rather than by the database: PostgreSQL's collation would order
        # names differently from SQLite, and is slower at it.
        found.sort(key=_by_host)
        return found

    def versions_at(self, app: str, environment: str, at: datetime | None = None) -> list[tuple[str, int]]:
        """(version, host count) now or at ``at``, most hosts first, then by version."""
        moment = None if at is None else aware(at)
        covering = covering_intervals(app, environment, None, moment, dialect=self._dialect).subquery()
        statement = select(covering.c.version, func.count().label("n")).group_by(covering.c.version)
        with self._read() as conn:
            counts = [(row.version, row.n) for row in conn.execute(statement)]
        counts.sort(key=lambda pair: (-pair[1], pair[0]))
        return counts


def pick_last_good_version(
    newest_first: Sequence[tuple[str, DeploymentStatus]], before: str | None
) -> str | None:
    """See :meth:`Store.last_good_version`; ``newest_first`` is (version, status) per deployment."""
    rows = list(newest_first)
    if before is not None:
        for index, (version, _status) in enumerate(rows):
            if version == before:
                rows = rows[index + 1 :]
                break
    for version, status in rows:
        if status is DeploymentStatus.SUCCEEDED and version != before:
            return version
    return None


def _by_host(interval: VersionInterval) -> str:
    return interval.host
