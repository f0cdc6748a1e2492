"""Hosts whose outcome the controller did not see: finding them, and correcting their rows
from what a probe read on the host itself (``deploy resume``, ``deploy reconcile``).

The rules that turn a probe into a verdict are :func:`deployer.core.settle.settle_host`.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update

from deployer.core.results import HostStatus, Step
from deployer.store.base import StoreBase
from deployer.store.queries import (
    FIND_FOR_RESULT,
    HD,
    D,
    H,
    aware,
    deployment_row,
    move_host_to_version,
    next_revision,
)


class Reconciling(StoreBase):
    """The UNKNOWN hosts, and their rows corrected from a probe."""

    def reconcile_host(
        self,
        deployment_id: str,
        host: str,
        *,
        status: HostStatus,
        version: str | None,
        note: str,
        now: datetime,
        step: Step | None = None,
        exit_status: int | None = None,
    ) -> None:
        """Correct a host's row from what a probe read on the host itself, with ``note`` saying how.

        For a host whose outcome the controller did not see (UNKNOWN, or RUNNING when its
        controller died). Its steps stay as recorded, and so does the deployment's status
        (a finished deployment is never rewritten). When ``version`` differs from what the
        host is recorded as running, its intervals move to it at ``now``: the moment the
        move was learnt, as the note says.
        """
        params = {"of_deployment": deployment_id, "host": host}
        values: dict[str, Any] = {
            "status": HostStatus(status).value,
            "note": note,
            "finished_at": func.coalesce(HD.c.finished_at, aware(now)),
            "revision": next_revision(deployment_id),
        }
        if version is not None:
            values["version"] = version
        if step is not None:
            values |= {"step": Step(step).value, "exit_status": exit_status}
        with self._write() as conn:
            found = conn.execute(FIND_FOR_RESULT, params).one_or_none()
            if found is None:
                raise RuntimeError(f"host {host} is not part of deployment {deployment_id}")
            conn.execute(update(HD).where(HD.c.id == found.id).values(values))
            if version is not None:
                move_host_to_version(conn, found, version, aware(now), deployment_id)

    def unknown_hosts(
        self, app: str | None = None, environment: str | None = None, *, deployment_id: str | None = None
    ) -> list[tuple[str, str]]:
        """(deployment id, host name) of every host whose outcome is UNKNOWN, oldest deployment first."""
        statement = (
            select(D.c.id, H.c.name)
            .select_from(HD.join(D, D.c.id == HD.c.deployment_id).join(H, H.c.id == HD.c.host_id))
            .where(HD.c.status == HostStatus.UNKNOWN.value)
            .order_by(D.c.started_at, D.c.id, H.c.name)
        )
        if app is not None:
            statement = statement.where(D.c.app == app)
        if environment is not None:
            statement = statement.where(D.c.environment == environment)
        if deployment_id is not None:
            statement = statement.where(D.c.id == deployment_id)
        with self._read() as conn:
            return [(row.id, row.name) for row in conn.execute(statement)]

    def touched_since(self, deployment_id: str, names: Sequence[str]) -> set[str]:
        """Those of ``names`` that a later deployment of the same app+environment reached.

        Their ``current`` is that later deployment's doing: a probe of this one must not
        take it for this deployment's result.
        """
        with self._read() as conn:
            row = deployment_row(conn, deployment_id)
            untouched = [s.value for s in (HostStatus.PENDING, HostStatus.SKIPPED, HostStatus.NOT_STARTED)]
            statement = (
                select(H.c.name)
                .select_from(HD.join(D, D.c.id == HD.c.deployment_id).join(H, H.c.id == HD.c.host_id))
                .where(
                    D.c.app == row.app,
                    D.c.environment == row.environment,
                    D.c.started_at > row.started_at,
                    H.c.name.in_(list(names)),
                    HD.c.status.not_in(untouched),
                )
            )
            return set(conn.scalars(statement))
