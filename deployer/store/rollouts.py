"""The deployment's own writes: from its start and its lock, through each host's steps
and results, to its end; and the operator's pause, resume and abort requests.

The controller's loop makes these calls through :class:`deployer.core.rollout_log.RolloutLog`;
``deploy resume`` takes a dead controller's deployment over here.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, insert, select, update
from sqlalchemy.exc import IntegrityError

from deployer.core.errors import ControlError, DeploymentLocked, StoreError
from deployer.core.results import (
    ControlAction,
    DeploymentKind,
    DeploymentStatus,
    HostResult,
    HostStatus,
    Step,
    cap_output,
)
from deployer.core.rollout_log import ControlState
from deployer.core.targets import Host
from deployer.store.base import StoreBase
from deployer.store.models import dropped_notifications, gate_checks
from deployer.store.queries import (
    FIND_FOR_RESULT,
    FORGET_STEPS,
    HD,
    MARK_STAGED,
    RECORD_RESULT,
    RECORD_STEP,
    RECORD_STEPS,
    D,
    aware,
    deployment_row,
    move_host_to_version,
    next_revision,
    pending_row,
    skipped_row,
    upsert_hosts,
)
from deployer.store.view_queries import control_state_view, full_view
from deployer.store.views import DeploymentView

_ID_ATTEMPTS = 8  # tries at a fresh deployment id before giving up (a clash needs the same minute)


@dataclass(frozen=True, slots=True)
class NewDeployment:
    """What :meth:`RolloutWrites.begin_deployment` records of a deployment about to start.

    ``hosts`` are (host, wave) pairs and ``skipped`` (host, reason) pairs. ``run_options``
    (JSON-ready) is what a resumed controller needs; ``rollback_of`` names the deployment
    an automatic rollback undoes; ``previous_versions`` maps a host's name to the version
    it runs now, as recorded.
    """

    app: str
    environment: str
    version: str
    previous_version: str | None
    kind: DeploymentKind
    started_by: str
    started_from: str
    pid: int
    spec_sha256: str
    hosts: Sequence[tuple[Host, int]]
    skipped: Sequence[tuple[Host, str]] = ()
    run_options: Mapping[str, Any] | None = None
    failure_budget: int | None = None
    rollback_of: str | None = None
    previous_versions: Mapping[str, str] | None = None


def new_deployment_id(now: datetime) -> str:
    """A short readable unique id: ``d-20261127-1830-ab12`` (UTC minute and 4 random hex)."""
    return f"d-{aware(now).astimezone(UTC):%Y%m%d-%H%M}-{secrets.token_hex(2)}"


class RolloutWrites(StoreBase):
    """The writes of one deployment's life, and the operator's requests to its controller."""

    def begin_deployment(self, new: NewDeployment, *, now: datetime) -> str:
        """Take the app+environment's lock and record a new RUNNING deployment; its id.

        Its ``hosts`` are recorded PENDING, its ``skipped`` ones SKIPPED with the reason as
        their error. Hosts are added to (or updated in, and un-retired from) the
        app+environment's host list. ``run_options`` are kept for :meth:`run_options`.
        ``previous_versions`` go in the hosts' rows at once: a host whose outcome is later
        learnt by a probe still says what it ran before, and a rollback can send it back there.

        Raises DeploymentLocked, naming the holder's id, user, machine and pid, when
        another deployment of the app+environment is unfinished, even one whose
        controller is dead (only :meth:`takeover` may continue that one).
        """
        now = aware(now)
        hosts, skipped = new.hosts, new.skipped
        _refuse_duplicates([host.name for host, _ in hosts] + [host.name for host, _ in skipped])
        for _ in range(_ID_ATTEMPTS):
            deployment_id = new_deployment_id(now)
            try:
                with self._write() as conn:
                    self._refuse_if_locked(conn, new.app, new.environment, now)
                    conn.execute(
                        insert(D).values(
                            id=deployment_id,
                            app=new.app,
                            environment=new.environment,
                            version=new.version,
                            previous_version=new.previous_version,
                            kind=DeploymentKind(new.kind).value,
                            status=DeploymentStatus.RUNNING.value,
                            started_by=new.started_by,
                            started_from=new.started_from,
                            pid=new.pid,
                            started_at=now,
                            heartbeat_at=now,
                            spec_sha256=new.spec_sha256,
                            run_options=None
                            if new.run_options is None
                            else json.dumps(dict(new.run_options)),
                            failure_budget=new.failure_budget,
                            rollback_of=new.rollback_of,
                        )
                    )
                    ids = upsert_hosts(
                        conn, new.app, new.environment, [h for h, _ in [*hosts, *skipped]], now
                    )
                    before = new.previous_versions or {}
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
                    self._refuse_if_locked(conn, new.app, new.environment, now)
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
        with self._read() as conn:
            return full_view(conn, deployment_row(conn, deployment_id), steps=False)

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
        """One host's result: :meth:`record_host_results` of one."""
        self.record_host_results(deployment_id, [result])

    def record_host_results(self, deployment_id: str, results: Sequence[HostResult]) -> None:
        """Hosts' final status, error, output tail and steps (replacing an earlier attempt's),
        in one transaction: the hosts of a wave end together, and one commit costs more than
        the rows it writes.

        When a result's ``version`` differs from the version the host is recorded as
        running, its open interval is closed and a new one opened at the moment of the
        switch (the end of the SWITCH step when the result has one, else
        ``result.finished_at``), attributed to this deployment.
        """
        with self._write() as conn:
            for result in results:
                _record_result(conn, deployment_id, result)

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

    def control_state(self, deployment_id: str) -> ControlState:
        """The deployment's status and the latest operator request (NotFound if no such id)."""
        with self._read() as conn:
            return control_state_view(deployment_row(conn, deployment_id))


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


def _record_result(conn: Connection, deployment_id: str, result: HostResult) -> None:
    params = {"of_deployment": deployment_id, "host": result.host}
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
