"""The state store: deployments, each host's part in them, and which version ran where when.

Open it with :func:`open_store`; it runs its migrations on open (upgrade to head,
safe when several processes open it at once). SQLite by default at
``$XDG_STATE_HOME/deployer/state.db`` (WAL mode, a busy timeout, so a controller,
a ``deploy pause`` in another terminal and the TUI can share it); any SQLAlchemy
URL through ``--db`` or ``DEPLOYER_DB``, PostgreSQL included.

Every write commits before the call returns. Every timestamp going in must be
timezone-aware; every timestamp coming out is aware UTC. Reads return frozen
views (:mod:`deployer.store.views`), never ORM objects.

Writes (the controller)::

    begin_deployment(new, ...) -> id take the app+environment's lock; DeploymentLocked if held
    takeover(id, ...)                resume a dead controller's deployment (deploy resume)
    heartbeat(id, ...)               prove the controller is alive; DeploymentLocked if it lost the lock
    set_status(id, status, now)      RUNNING <-> PAUSED once a pause or resume took effect
    record_step(id, host, step, now) a host is RUNNING at ``step``
    record_host_results(id, results) hosts' final status, steps, and version-history intervals (one write)
    add_hosts(id, hosts, now)        hosts that joined mid-push
    finish_deployment(id, status, now, reason=...)   final status; releases the lock
    request_control(id, action, ...) pause/resume/abort from another process; ControlError if it cannot
    mark_retired(app, env, names, now)   hosts that left the inventory

Reads (the CLI, the TUI, the planner)::

    control_state(id)                          what the controller polls
    run_options(id)                            the options a deployment was started with (for resume)
    liveness(view, now)                        is a running deployment's controller alive?
    deployment(id, steps=False)                one deployment with its hosts; NotFound
    running_deployment(app, env)               the lock holder, or None
    latest_deployments()                       the latest per app+environment
    history(app, env=None, limit=20)           newest first
    history_count(app, env=None)               how many history would list without a limit
    current_versions(app, env)                 host -> version now
    hosts(app, env, include_retired=False)     the hosts known for an app+environment
    failed_hosts_of_last_deployment(app, env)  for "failed hosts first"
    last_good_version(app, env, before=...)    for rollback
    host_history(app, env, host)               a host's version intervals, newest first
    hosts_running(app, env, version, at)       which hosts run a version (now or at a moment)
    versions_at(app, env, at)                  version -> host count (now or at a moment)
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from deployer.core.rollout_log import ControlState
from deployer.store.views import (
    DeploymentView,
    DroppedNotification,
    GateView,
    HostDeploymentView,
    HostRecord,
    Liveness,
    VersionInterval,
)

if TYPE_CHECKING:
    from deployer.store.base import DEFAULT_STALE_AFTER
    from deployer.store.repository import Store, default_url, open_store, resolve_url
    from deployer.store.rollouts import NewDeployment, new_deployment_id

# What needs SQLAlchemy is imported on first use, not with the package: the views above
# are plain data, and a command's --help (deploy status --help) should not pay for it.
_LAZY = {
    "DEFAULT_STALE_AFTER": "deployer.store.base",
    "Store": "deployer.store.repository",
    "default_url": "deployer.store.repository",
    "open_store": "deployer.store.repository",
    "resolve_url": "deployer.store.repository",
    "NewDeployment": "deployer.store.rollouts",
    "new_deployment_id": "deployer.store.rollouts",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # once: later lookups find it like any other name
    return value


__all__ = [
    "DEFAULT_STALE_AFTER",
    "ControlState",
    "DeploymentView",
    "DroppedNotification",
    "GateView",
    "HostDeploymentView",
    "HostRecord",
    "Liveness",
    "NewDeployment",
    "Store",
    "VersionInterval",
    "default_url",
    "new_deployment_id",
    "open_store",
    "resolve_url",
]
