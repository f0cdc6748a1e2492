"""The :class:`Store`: repository functions over the tables, each call one committed transaction.

Writes come from the controller (one per app+environment at a time, by the lock),
and from operators' pause/resume/abort requests in other processes. Races between
processes are settled by the database, not by reading first: the lock is a partial
unique index, a takeover and a heartbeat are conditional UPDATEs, a request locks
its row (``SELECT ... FOR UPDATE`` on PostgreSQL; on SQLite every write transaction
holds the write lock from its BEGIN).
"""

from __future__ import annotations

import os
import socket
from datetime import timedelta

from sqlalchemy.exc import DBAPIError

from deployer.core.errors import StoreError
from deployer.store import migrate
from deployer.store.base import DEFAULT_STALE_AFTER
from deployer.store.deployment_reads import DeploymentReads
from deployer.store.engine import build_engine, display_url, one_line, parse_url
from deployer.store.host_history import HostHistory
from deployer.store.reconcile import Reconciling
from deployer.store.rollouts import RolloutWrites


def default_url() -> str:
    """``sqlite:///$XDG_STATE_HOME/deployer/state.db`` (``~/.local/state/deployer/state.db``)."""
    state_home = os.environ.get("XDG_STATE_HOME") or os.path.join(os.path.expanduser("~"), ".local", "state")
    return "sqlite:///" + os.path.join(os.path.abspath(state_home), "deployer", "state.db")


def resolve_url(url: str | None) -> str:
    """``url`` if given, else ``$DEPLOYER_DB`` if set, else :func:`default_url`."""
    return url or os.environ.get("DEPLOYER_DB") or default_url()


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


class Store(RolloutWrites, Reconciling, DeploymentReads, HostHistory):
    """One connection pool to the state store. Thread-safe; use one per process.

    Made by :func:`open_store`; the constructor takes an engine already migrated. Its
    calls come in parts, one module each: the deployment's own writes and the
    operator's requests (:mod:`~deployer.store.rollouts`), hosts whose outcome is
    learnt by a probe (:mod:`~deployer.store.reconcile`), deployments read back
    (:mod:`~deployer.store.deployment_reads`), and which version ran where
    (:mod:`~deployer.store.host_history`); the pool and the transactions are
    :mod:`~deployer.store.base`. The controller's loop sees it as a
    :class:`~deployer.core.rollout_log.RolloutLog`.
    """
