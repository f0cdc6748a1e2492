"""Reading deployments back: one with its hosts, a screen's polled progress, the history,
the lock holder, and whether its controller looks alive.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from sqlalchemy import func, select

from deployer.store.base import StoreBase
from deployer.store.models import dropped_notifications
from deployer.store.queries import D, aware, deployment_row, unfinished
from deployer.store.view_queries import (
    datacenter_sizes,
    full_view,
    one_host_view,
    progress_view,
    summary_views,
)
from deployer.store.views import DeploymentProgress, DeploymentView, DroppedNotification, Liveness


class DeploymentReads(StoreBase):
    """Deployments as views (the CLI, the TUI, ``deploy resume``)."""

    def liveness(self, view: DeploymentView, now: datetime) -> Liveness:
        """Whether an unfinished deployment's controller looks alive.

        Dead when its heartbeat is older than ``stale_after``, or when it runs on this
        machine and its pid is gone. A finished deployment has no controller: not alive.
        """
        if view.finished_at is not None:
            return Liveness(False, f"finished ({view.status})")
        return self._liveness(view.started_from, view.pid, view.heartbeat_at, aware(now))

    def deployment(self, deployment_id: str, *, steps: bool = False) -> DeploymentView:
        """One deployment with its hosts (and their steps when ``steps``); NotFound if no such id."""
        with self._read() as conn:
            row = deployment_row(conn, deployment_id)
            return full_view(conn, row, steps=steps)

    def datacenters(self, deployment_id: str) -> tuple[tuple[str, int], ...]:
        """The datacenters of a deployment's hosts as (name, number of hosts), sorted by name:
        a screen lays them out before its first read of the hosts."""
        with self._read() as conn:
            return tuple((name, count) for name, count in conn.execute(datacenter_sizes(deployment_id)))

    def deployment_progress(
        self, deployment_id: str, *, since: DeploymentProgress | None = None
    ) -> DeploymentProgress:
        """One deployment and its hosts' progress, for a screen that polls it; NotFound if no such id.

        Lighter than :meth:`deployment`: no output, no steps. Pass the previous read as
        ``since``: only the hosts whose row changed are built anew (see
        :func:`~deployer.store.queries.progress_view`).
        """
        with self._read() as conn:
            return progress_view(conn, deployment_row(conn, deployment_id), since)

    def deployment_with_host(self, deployment_id: str, host: str, *, steps: bool = True) -> DeploymentView:
        """One deployment with only ``host`` in ``hosts`` (with its steps when ``steps``); no host when
        it is not part of the deployment. ``counts`` counts all its hosts. NotFound if no such id."""
        with self._read() as conn:
            return one_host_view(conn, deployment_row(conn, deployment_id), host, steps=steps)

    def run_options(self, deployment_id: str) -> dict[str, Any]:
        """The options a deployment was started with (empty when none were kept); NotFound if no such id."""
        with self._read() as conn:
            row = deployment_row(conn, deployment_id)
            text_value: str | None = row.run_options
        return dict(json.loads(text_value)) if text_value else {}

    def rollbacks_of(self, deployment_id: str) -> list[DeploymentView]:
        """The automatic rollbacks of a deployment (``on_halt: rollback``), with hosts, oldest first."""
        statement = select(D.c.id).where(D.c.rollback_of == deployment_id).order_by(D.c.started_at, D.c.id)
        with self._read() as conn:
            ids = list(conn.scalars(statement))
        return [self.deployment(rollback_id) for rollback_id in ids]

    def running_deployment(self, app: str, environment: str) -> DeploymentView | None:
        """The unfinished deployment of the app+environment (the lock holder), with hosts; or None."""
        with self._read() as conn:
            row = conn.execute(unfinished(app, environment)).one_or_none()
            return None if row is None else full_view(conn, row, steps=False)

    def latest_deployments(self) -> list[DeploymentView]:
        """The latest deployment of each app+environment, by app then environment (no hosts)."""
        ranked = select(
            D.c.id,
            func.row_number()
            .over(partition_by=(D.c.app, D.c.environment), order_by=(D.c.started_at.desc(), D.c.id.desc()))
            .label("rank"),
        ).subquery()
        statement = select(D).join(ranked, ranked.c.id == D.c.id).where(ranked.c.rank == 1)
        with self._read() as conn:
            views = summary_views(conn, list(conn.execute(statement)))
        return sorted(views, key=lambda view: (view.app, view.environment))

    def history(self, app: str, environment: str | None = None, *, limit: int = 20) -> list[DeploymentView]:
        """Deployments of ``app`` (in ``environment`` if given), newest first (no hosts)."""
        statement = select(D).where(D.c.app == app)
        if environment is not None:
            statement = statement.where(D.c.environment == environment)
        statement = statement.order_by(D.c.started_at.desc(), D.c.id.desc()).limit(limit)
        with self._read() as conn:
            return summary_views(conn, list(conn.execute(statement)))

    def history_count(self, app: str, environment: str | None = None) -> int:
        """How many deployments :meth:`history` would list with no limit."""
        statement = select(func.count()).select_from(D).where(D.c.app == app)
        if environment is not None:
            statement = statement.where(D.c.environment == environment)
        with self._read() as conn:
            return int(conn.execute(statement).scalar_one())

    def dropped_notifications(self, deployment_id: str) -> list[DroppedNotification]:
        """The deployment's notifications given up, oldest first."""
        table = dropped_notifications
        with self._read() as conn:
            rows = conn.execute(
                select(table).where(table.c.deployment_id == deployment_id).order_by(table.c.id)
            )
            return [
                DroppedNotification(row.sink, row.event, row.event_at, row.dropped_at, row.error)
                for row in rows
            ]
