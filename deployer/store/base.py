"""What every part of the :class:`~deployer.store.repository.Store` stands on.

One connection pool, one transaction per call (writes queued in order on SQLite),
the check that an SQLite file was not removed under us, and whether a deployment's
controller looks alive, which decides the lock.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from datetime import datetime, timedelta
from pathlib import Path
from typing import Self

from sqlalchemy import Connection, Engine
from sqlalchemy.exc import OperationalError

from deployer.core.errors import DeploymentLocked, StoreLost
from deployer.core.timefmt import format_span_no_days
from deployer.store.engine import display_url, one_line, writer
from deployer.store.queries import unfinished
from deployer.store.views import Liveness

# A running deployment whose controller has not written a heartbeat for this long is
# taken for dead (whatever machine it ran on). Controllers heartbeat every few seconds.
DEFAULT_STALE_AFTER = timedelta(seconds=60)


class StoreBase:
    """The pool and the transactions; the parts of :class:`~deployer.store.repository.Store` add the calls."""

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

    def close(self) -> None:
        """Release the connections. Using the store afterwards raises RuntimeError."""
        if not self._closed:
            self._closed = True
            self._engine.dispose()

    def __enter__(self) -> Self:
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
        A stat per write transaction is cheap next to the transaction.
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
