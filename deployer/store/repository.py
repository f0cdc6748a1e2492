"""The :class:`Store`: repository functions over the tables, each call one committed transaction.

Writes come from the controller (one per app+environment at a time, by the lock),
and from operators' pause/resume/abort requests in other processes. Races between
processes are settled by the database, not by reading first: the lock is a partial
unique index, a takeover and a heartbeat are conditional UPDATEs, a request locks
its row (``SELECT ... FOR UPDATE`` on PostgreSQL; on SQLite every write transaction
holds the write lock from its BEGIN).
"""

from __future__ import annotations

import json
import os
import secrets
import socket
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import (
    Connection,
    Engine,
    bindparam,
    case,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError

from deployer.errors import ControlError, DeploymentLocked, StoreError, StoreLost
from deployer.fleet import Host
from deployer.results import (
    ControlAction,
    DeploymentKind,
    DeploymentStatus,
    HostResult,
    HostStatus,
    Step,
    cap_output,
)
from deployer.store import migrate
from deployer.store.engine import build_engine, display_url, one_line, parse_url, writer
from deployer.store.models import dropped_notifications, gate_checks
from deployer.store.queries import (
    FIND_FOR_RESULT,
    FORGET_STEPS,
    HD,
    MARK_STAGED,
    RECORD_RESULT,
    RECORD_STEP,
    RECORD_STEPS,
    VI,
    D,
    H,
    aware,
    chunks,
    control_state_view,
    covering_intervals,
    datacenter_sizes,
    deployment_row,
    full_view,
    interval_columns,
    interval_view,
    move_host_to_version,
    next_revision,
    one_host_view,
    pending_row,
    progress_view,
    skipped_row,
    summary_views,
    unfinished,
    upsert_hosts,
)
from deployer.store.views import (
    ControlState,
    DeploymentProgress,
    DeploymentView,
    DroppedNotification,
    HostRecord,
    Liveness,
    VersionInterval,
)
from deployer.timefmt import format_span_no_days

# A running deployment whose controller has not written a heartbeat for this long is
# taken for dead (whatever machine it ran on). Controllers heartbeat every few seconds.
DEFAULT_STALE_AFTER = timedelta(seconds=60)

_ID_ATTEMPTS = 8  # tries at a fresh deployment id before giving up (a clash needs the same minute)


def default_url() -> str:
    """``sqlite:///$XDG_STATE_HOME/deployer/state.db`` (``~/.local/state/deployer/state.db``)."""
    state_home = os.environ.get("XDG_STATE_HOME") or os.path.join(os.path.expanduser("~"), ".local", "state")
    return "sqlite:///" + os.path.join(os.path.abspath(state_home), "deployer", "state.db")


def resolve_url(url: str | None) -> str:
    """``url`` if given, else ``$DEPLOYER_DB`` if set, else :func:`default_url`."""
    return url or os.environ.get("DEPLOYER_DB") or default_url()


def new_deployment_id(now: datetime) -> str:
    """A short readable unique id: ``d-20261127-1830-ab12`` (UTC minute and 4 random hex)."""
    return f"d-{aware(now).astimezone(UTC):%Y%m%d-%H%M}-{secrets.token_hex(2)}"


def open_store(
    url: str | None = None,
    *,
    stale_after: timedelta = DEFAULT_STALE_AFTER,
    hostname: str | None = None,
) -> Store:
    """Open (and create, and migrate to head) the store at ``url`` (see :func:`resolve_url`).

    ``hostname`` is this machine's name for telling whether a controller's pid is ours
    to check (default: ``socket.gethostname()``). Raises StoreError when the database
    cannot be reached or migrated.
    """
    parsed = parse_url(resolve_url(url))
    engine = build_engine(parsed)
    try:
        migrate.upgrade(engine)
    except DBAPIError as error:  # unreachable, refused, no such database, no right to create tables
        engine.dispose()
        reason = one_line(error.orig)
        raise StoreError(f"cannot open the state store at {display_url(parsed)}: {reason}") from None
    except BaseException:
        engine.dispose()
        raise
    return Store(engine, stale_after=stale_after, hostname=hostname or socket.gethostname())


class Store:
    """One connection pool to the state store. Thread-safe; use one per process.

    Made by :func:`open_store`; the constructor takes an engine already migrated.
    """

    def __init__(self, engine: Engine, *, stale_after: timedelta, hostname: str) -> None:
        self._engine = engine
        self._writer = writer(engine)
        self._url = display_url(engine.url)
        self._dialect: str = engine.dialect.name
        # SQLite has one writer at a time. Threads of this process queue here for it, in
        # order, rather than in SQLite's busy handler, which polls with sleeps of up to
        # 100 ms. Other processes still wait in the busy handler.
        self._serialize_writes: AbstractContextManager[object] = (
            threading.Lock() if self._dialect == "sqlite" else nullcontext()
        )
        self._closed = False
        self.stale_after = stale_after
        self.hostname = hostname
        # The SQLite file this store opened, and its identity then (see _ensure_not_lost).
        self._file = _sqlite_file(engine)
        self._file_identity = _identity(self._file)

    @property
    def url(self) -> str:
        """The database URL, password hidden."""
        return self._url

    # ---- writes (the controller) -------------------------------------------------

    def begin_deployment(
        self,
        *,
        app: str,
        environment: str,
        version: str,
        previous_version: str | None,
        kind: DeploymentKind,
        started_by: str,
        started_from: str,
        pid: int,
        spec_sha256: str,
        hosts: Sequence[tuple[Host, int]],
        skipped: Sequence[tuple[Host, str]] = (),
        run_options: Mapping[str, Any] | None = None,
        failure_budget: int | None = None,
        rollback_of: str | None = None,
        previous_versions: Mapping[str, str] | None = None,
        now: datetime,
    ) -> str:
        """Take the app+environment's lock and record a new RUNNING deployment; its id.

        ``hosts`` are (host, wave) pairs, recorded PENDING; ``skipped`` are (host, reason)
        pairs, recorded SKIPPED with the reason as their error. Hosts are added to (or
        updated in, and un-retired from) the app+environment's host list. ``run_options``
        (JSON-ready) is kept for :meth:`run_options`: what a resumed controller needs.
        ``rollback_of`` names the deployment an automatic rollback undoes.
        ``previous_versions`` (host name -> the version it runs now, as recorded) go in the
        hosts' rows at once: a host whose outcome is later learnt by a probe still says
        what it ran before, and a rollback can send it back there.

        Raises DeploymentLocked, naming the holder's id, user, machine and pid, when
        another deployment of the app+environment is unfinished, even one whose
        controller is dead (only :meth:`takeover` may continue that one).
        """
        now = aware(now)
        _refuse_duplicates([host.name for host, _ in hosts] + [host.name for host, _ in skipped])
        for _ in range(_ID_ATTEMPTS):
            deployment_id = new_deployment_id(now)
            try:
                with self._write() as conn:
                    self._refuse_if_locked(conn, app, environment, now)
                    conn.execute(
                        insert(D).values(
                            id=deployment_id,
                            app=app,
                            environment=environment,
                            version=version,
                            previous_version=previous_version,
                            kind=DeploymentKind(kind).value,
                            status=DeploymentStatus.RUNNING.value,
                            started_by=started_by,
                            started_from=started_from,
                            pid=pid,
                            started_at=now,
                            heartbeat_at=now,
                            spec_sha256=spec_sha256,
                            run_options=None if run_options is None else json.dumps(dict(run_options)),
                            failure_budget=failure_budget,
                            rollback_of=rollback_of,
                        )
                    )
                    ids = upsert_hosts(conn, app, environment, [h for h, _ in [*hosts, *skipped]], now)
                    before = previous_versions or {}
                    rows = [
                        pending_row(deployment_id, ids[host.name], wave, before.get(host.name))
                        for host, wave in hosts
                    ]
                    rows += [skipped_row(deployment_id, ids[host.name], reason) for host, reason in skipped]
                    if rows:
                        conn.execute(insert(HD), rows)
                return deployment_id
            except IntegrityError:
                # Either another process took the lock between our check and our insert
                # (then say who), or the id clashed with one made in the same minute.
                with self._read() as conn:
                    self._refuse_if_locked(conn, app, environment, now)
        raise StoreError(f"could not find an unused deployment id after {_ID_ATTEMPTS} tries")

    def takeover(self, deployment_id: str, *, pid: int, started_from: str, now: datetime) -> DeploymentView:
        """Make this controller (``started_from``, ``pid``) the owner of a dead controller's deployment.

        For ``deploy resume``. Sets the status back to RUNNING and clears any pending
        pause/abort request (the resume is the operator's latest word). Raises
        DeploymentLocked when its controller still looks alive (see :meth:`liveness`)
        or another process took it over first; ControlError when it has finished;
        NotFound when there is no such deployment.
        """
        now = aware(now)
        with self._write() as conn:
            row = deployment_row(conn, deployment_id, for_update=True)
            if row.finished_at is not None:
                raise ControlError(
                    f"deployment {deployment_id} has finished ({row.status}); there is nothing to resume"
                )
            liveness = self._liveness(row.started_from, row.pid, row.heartbeat_at, now)
            if liveness.alive:
                raise DeploymentLocked(
                    f"deployment {deployment_id} is still run by pid {row.pid} on {row.started_from} "
                    f"({liveness.reason}); it can be taken over only once that controller is dead"
                )
            takeover_values: dict[str, Any] = {
                "pid": pid,
                "started_from": started_from,
                "heartbeat_at": now,
                "status": DeploymentStatus.RUNNING.value,
            }
            # The resume is the operator's latest word, except over an abort: an abort asked of
            # a dead controller must end the deployment, not be forgotten by its resume.
            if row.requested_control != ControlAction.ABORT.value:
                takeover_values |= {
                    "requested_control": None,
                    "control_requested_at": None,
                    "control_requested_by": None,
                }
            taken = conn.execute(
                update(D)
                .where(
                    D.c.id == deployment_id,
                    D.c.finished_at.is_(None),
                    D.c.pid == row.pid,
                    D.c.started_from == row.started_from,
                    D.c.heartbeat_at == row.heartbeat_at,
                )
                .values(**takeover_values)
            )
            if taken.rowcount != 1:
                raise DeploymentLocked(f"deployment {deployment_id} was taken over by another process first")
        return self.deployment(deployment_id)

    def heartbeat(self, deployment_id: str, *, pid: int, started_from: str, now: datetime) -> None:
        """Record that the controller (``started_from``, ``pid``) is alive.

        Raises DeploymentLocked when this controller no longer owns the deployment
        (another process took it over, or it was finished elsewhere): stop at once.
        """
        now = aware(now)
        with self._write() as conn:
            beat = conn.execute(
                update(D)
                .where(
                    D.c.id == deployment_id,
                    D.c.pid == pid,
                    D.c.started_from == started_from,
                    D.c.finished_at.is_(None),
                )
                .values(heartbeat_at=now)
            )
            if beat.rowcount == 1:
                return
            row = deployment_row(conn, deployment_id)
        if row.finished_at is not None:
            raise DeploymentLocked(f"deployment {deployment_id} was finished elsewhere ({row.status})")
        raise DeploymentLocked(
            f"deployment {deployment_id} was taken over by pid {row.pid} on {row.started_from}"
        )

    def set_status(self, deployment_id: str, status: DeploymentStatus, now: datetime) -> None:
        """Record that a pause (PAUSED) or a resume (RUNNING) took effect; also a heartbeat.

        Only RUNNING and PAUSED are accepted here (RuntimeError otherwise; final
        statuses go through :meth:`finish_deployment`). ControlError if it finished.
        """
        if status.is_final:
            raise RuntimeError(f"set_status takes running or paused, not {status}; use finish_deployment")
        now = aware(now)
        with self._write() as conn:
            changed = conn.execute(
                update(D)
                .where(D.c.id == deployment_id, D.c.finished_at.is_(None))
                .values(status=status.value, heartbeat_at=now)
            )
            if changed.rowcount == 1:
                return
            row = deployment_row(conn, deployment_id)
        raise ControlError(f"deployment {deployment_id} has already finished ({row.status})")

    def record_step(self, deployment_id: str, host: str, step: Step, now: datetime) -> None:
        """``host`` is RUNNING at ``step`` (its ``started_at`` is set on its first step)."""
        params = {
            "of_deployment": deployment_id,
            "host": host,
            "new_step": Step(step).value,
            "now": aware(now),
        }
        with self._write() as conn:
            if conn.execute(RECORD_STEP, params).rowcount != 1:
                raise RuntimeError(f"host {host} is not part of deployment {deployment_id}")

    def record_steps(self, deployment_id: str, steps: Sequence[tuple[str, Step, datetime]]) -> None:
        """Each (host, step, when): the host is RUNNING at that step, in one transaction."""
        with self._write() as conn:
            for host, step, now in steps:
                params = {"of_deployment": deployment_id, "host": host, "new_step": Step(step).value}
                if conn.execute(RECORD_STEP, {**params, "now": aware(now)}).rowcount != 1:
                    raise RuntimeError(f"host {host} is not part of deployment {deployment_id}")

    def mark_staged(self, deployment_id: str, hosts: Sequence[str], now: datetime) -> None:
        """``hosts`` (still pending) have their release staged ahead of their wave."""
        with self._write() as conn:
            for host in hosts:
                conn.execute(MARK_STAGED, {"of_deployment": deployment_id, "host": host, "now": aware(now)})

    def record_host_result(self, deployment_id: str, result: HostResult) -> None:
        """A host's final status, error, output tail and steps (replacing an earlier attempt's).

        When ``result.version`` differs from the version the host is recorded as
        running, its open interval is closed and a new one opened at the moment of the
        switch (the end of the SWITCH step when the result has one, else
        ``result.finished_at``), attributed to this deployment.
        """
        params = {"of_deployment": deployment_id, "host": result.host}
        with self._write() as conn:
            found = conn.execute(FIND_FOR_RESULT, params).one_or_none()
            if found is None:
                raise RuntimeError(f"host {result.host} is not part of deployment {deployment_id}")
            conn.execute(
                RECORD_RESULT,
                {
                    "of_deployment": deployment_id,
                    "result_id": found.id,
                    "new_status": HostStatus(result.status).value,
                    "new_step": None if result.step is None else Step(result.step).value,
                    "new_started_at": aware(result.started_at),
                    "new_finished_at": aware(result.finished_at),
                    "new_error": result.error,
                    "new_exit_status": result.exit_status,
                    "new_output_tail": cap_output(result.output_tail),
                    "new_version": result.version,
                    "new_previous_version": result.previous_version,
                },
            )
            conn.execute(FORGET_STEPS, {"result_id": found.id})
            if result.steps:
                conn.execute(
                    RECORD_STEPS,
                    [
                        {
                            "host_deployment_id": found.id,
                            "position": position,
                            "step": Step(step.step).value,
                            "started_at": aware(step.started_at),
                            "duration": step.duration,
                            "exit_status": step.exit_status,
                            "output": cap_output(step.output),
                            "attempts": step.attempts,
                        }
                        for position, step in enumerate(result.steps)
                    ],
                )
            if result.version is not None:
                move_host_to_version(conn, found, result.version, _switch_moment(result), deployment_id)

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

    def add_hosts(self, deployment_id: str, hosts: Sequence[tuple[Host, int]], now: datetime) -> None:
        """Add PENDING (host, wave) pairs to a running deployment; hosts already in it are left."""
        now = aware(now)
        _refuse_duplicates([host.name for host, _ in hosts])
        with self._write() as conn:
            row = deployment_row(conn, deployment_id)
            if row.finished_at is not None:
                raise RuntimeError(f"deployment {deployment_id} has finished; no host can join it")
            ids = upsert_hosts(conn, row.app, row.environment, [host for host, _ in hosts], now)
            present = set(conn.scalars(select(HD.c.host_id).where(HD.c.deployment_id == deployment_id)))
            # Past the rows already there: a screen that has read them reads these next.
            revision = conn.scalar(select(next_revision(deployment_id)))
            rows = [
                {**pending_row(deployment_id, ids[h.name], wave), "revision": revision}
                for h, wave in hosts
                if ids[h.name] not in present
            ]
            if rows:
                conn.execute(insert(HD), rows)

    def record_gate_check(
        self, deployment_id: str, name: str, *, passed: bool, message: str, at: datetime
    ) -> None:
        """One more check of the deployment's gate ``name``, and what it said.

        Only the deployment's controller writes its gates (the lock), so an update
        followed, on no row, by an insert cannot race.
        """
        values = {"passed": passed, "message": message, "checked_at": aware(at)}
        with self._write() as conn:
            changed = conn.execute(
                update(gate_checks)
                .where(gate_checks.c.deployment_id == deployment_id, gate_checks.c.name == name)
                .values(check_count=gate_checks.c.check_count + 1, **values)
            )
            if changed.rowcount == 0:
                conn.execute(
                    insert(gate_checks).values(
                        deployment_id=deployment_id, name=name, check_count=1, **values
                    )
                )

    def record_dropped_notification(
        self, deployment_id: str, *, sink: str, event: str, event_at: datetime, error: str, now: datetime
    ) -> None:
        """A notification of ``event`` that ``sink`` never took, after every retry."""
        with self._write() as conn:
            conn.execute(
                insert(dropped_notifications).values(
                    deployment_id=deployment_id,
                    sink=sink,
                    event=event,
                    event_at=aware(event_at),
                    dropped_at=aware(now),
                    error=error,
                )
            )

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

    def finish_deployment(
        self, deployment_id: str, status: DeploymentStatus, now: datetime, *, reason: str | None = None
    ) -> None:
        """Record the final ``status`` (and why) and release the lock.

        Hosts still PENDING are marked NOT_STARTED: the deployment never reached them.
        Hosts still RUNNING are marked ABORTED: a resumed deployment's hosts whose driver
        never started (once the loop has ended, no host is in flight). RuntimeError for a
        non-final status; ControlError if it had already finished; NotFound if no such id.
        """
        if not status.is_final:
            raise RuntimeError(f"finish_deployment takes a final status, not {status}")
        now = aware(now)
        with self._write() as conn:
            finished = conn.execute(
                update(D)
                .where(D.c.id == deployment_id, D.c.finished_at.is_(None))
                .values(status=status.value, finished_at=now, reason=reason)
            )
            if finished.rowcount != 1:
                row = deployment_row(conn, deployment_id)
                raise ControlError(f"deployment {deployment_id} has already finished ({row.status})")
            for left, final in (
                (HostStatus.PENDING, HostStatus.NOT_STARTED),
                (HostStatus.RUNNING, HostStatus.ABORTED),
            ):
                conn.execute(
                    update(HD)
                    .where(HD.c.deployment_id == deployment_id, HD.c.status == left.value)
                    .values(status=final.value, revision=next_revision(deployment_id))
                )

    def request_control(
        self, deployment_id: str, action: ControlAction, *, requested_by: str, now: datetime
    ) -> ControlState:
        """Ask the deployment's controller to pause, resume or abort; the resulting state.

        Asking again what is already asked is a no-op. Raises ControlError when the
        deployment has finished, when RESUME is asked of one that is neither paused nor
        asked to pause, or when anything but ABORT follows an ABORT. NotFound if no such id.
        """
        action = ControlAction(action)
        now = aware(now)
        with self._write() as conn:
            row = deployment_row(conn, deployment_id, for_update=True)
            if row.finished_at is not None:
                raise ControlError(f"deployment {deployment_id} has already finished ({row.status})")
            requested = None if row.requested_control is None else ControlAction(row.requested_control)
            if requested is not action:
                if requested is ControlAction.ABORT:
                    raise ControlError(
                        f"deployment {deployment_id} is being aborted (asked by {row.control_requested_by})"
                    )
                if (
                    action is ControlAction.RESUME
                    and requested is not ControlAction.PAUSE
                    and row.status != DeploymentStatus.PAUSED.value
                ):
                    raise ControlError(f"deployment {deployment_id} is not paused")
                conn.execute(
                    update(D)
                    .where(D.c.id == deployment_id)
                    .values(
                        requested_control=action.value,
                        control_requested_at=now,
                        control_requested_by=requested_by,
                    )
                )
            return control_state_view(deployment_row(conn, deployment_id))

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

    # ---- reads (CLI, TUI, planner input) -----------------------------------------

    def control_state(self, deployment_id: str) -> ControlState:
        """The deployment's status and the latest operator request (NotFound if no such id)."""
        with self._read() as conn:
            return control_state_view(deployment_row(conn, deployment_id))

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

    def close(self) -> None:
        """Release the connections. Using the store afterwards raises RuntimeError."""
        if not self._closed:
            self._closed = True
            self._engine.dispose()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # ---- plumbing ----------------------------------------------------------------

    @contextmanager
    def _write(self) -> Iterator[Connection]:
        """One write transaction, committed on leaving the block (rolled back on an error)."""
        if self._closed:
            raise RuntimeError("the store is closed")
        self._ensure_not_lost()
        try:
            with self._serialize_writes, self._writer.begin() as conn:
                yield conn
        except OperationalError as error:
            raise StoreLost(f"the state store at {self._url} failed: {one_line(error.orig)}") from None

    @contextmanager
    def _read(self) -> Iterator[Connection]:
        if self._closed:
            raise RuntimeError("the store is closed")
        try:
            with self._engine.connect() as conn:
                yield conn
        except OperationalError as error:
            raise StoreLost(f"the state store at {self._url} failed: {one_line(error.orig)}") from None

    def _ensure_not_lost(self) -> None:
        """Raise StoreLost if the SQLite file was removed or replaced since this store opened it.

        SQLite goes on writing to a file that was unlinked (or renamed over): without this
        check a push whose store was deleted reported success and its records went nowhere.
        A stat per write transaction costs about a microsecond.
        """
        if self._file is None or _identity(self._file) == self._file_identity:
            return
        raise StoreLost(
            f"the state store {self._file} was removed or replaced while this command ran, so what it "
            "does next could not be recorded; no new host starts. Each host's own records "
            "(<target>/revisions.log and <target>/.deploy/) still hold what happened there."
        )

    def _liveness(self, started_from: str, pid: int, heartbeat_at: datetime, now: datetime) -> Liveness:
        silence = now - heartbeat_at
        if started_from == self.hostname and not _pid_exists(pid):
            return Liveness(False, f"pid {pid} is gone on {started_from}")
        if silence > self.stale_after:
            return Liveness(False, f"no heartbeat for {format_span_no_days(silence)}")
        return Liveness(True, f"heartbeat {format_span_no_days(silence)} ago")

    def _refuse_if_locked(self, conn: Connection, app: str, environment: str, now: datetime) -> None:
        holder = conn.execute(unfinished(app, environment)).one_or_none()
        if holder is None:
            return
        liveness = self._liveness(holder.started_from, holder.pid, holder.heartbeat_at, now)
        message = (
            f"{app}/{environment} is locked by deployment {holder.id} ({holder.kind} of {holder.version}, "
            f"{holder.status}), started by {holder.started_by} on {holder.started_from} "
            f"(pid {holder.pid}) at {holder.started_at:%Y-%m-%d %H:%M:%S}Z"
        )
        if liveness.alive:
            message += f"; wait for it to finish, or abort it ({liveness.reason})"
        else:
            message += (
                f"; its controller looks dead ({liveness.reason}): `deploy resume {holder.id}` takes it over"
            )
        raise DeploymentLocked(message)


# ---- pure helpers ------------------------------------------------------------------


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


def _sqlite_file(engine: Engine) -> Path | None:
    """The file of an SQLite store (None for another database, or SQLite in memory)."""
    database = engine.url.database
    if engine.dialect.name != "sqlite" or database in (None, "", ":memory:"):
        return None
    return Path(database).resolve()


def _identity(path: Path | None) -> tuple[int, int] | None:
    """(device, inode) of ``path``; None when there is no such file."""
    if path is None:
        return None
    try:
        info = os.stat(path)
    except FileNotFoundError:
        return None
    return info.st_dev, info.st_ino


def _pid_exists(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: it exists
        return True
    return True


def _refuse_duplicates(names: Sequence[str]) -> None:
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise RuntimeError(f"host {name} is listed twice for one deployment")
        seen.add(name)


def _switch_moment(result: HostResult) -> datetime:
    """When the host's ``current`` changed: the end of its SWITCH step, else when it finished."""
    for step in result.steps:
        if step.step is Step.SWITCH:
            return aware(step.started_at) + timedelta(seconds=step.duration)
    return aware(result.finished_at)


def _by_host(interval: VersionInterval) -> str:
    return interval.host
