"""``on_halt: rollback``: the automatic rollbacks of a halted deployment."""

from __future__ import annotations

import logging
from dataclasses import replace

from deployer.core.errors import DeployerError
from deployer.core.events import EventSink
from deployer.core.policy import rollback_due, rollback_groups
from deployer.core.results import DeploymentKind
from deployer.core.rollout import GracefulStop
from deployer.core.runner import HostRunner
from deployer.operations.context import Identity
from deployer.operations.options import options_from_json
from deployer.operations.plan import prepare
from deployer.operations.rollout import run_new
from deployer.store import Store

log = logging.getLogger(__name__)


async def complete_automatic_rollback(
    deployment_id: str,
    store: Store,
    sink: EventSink,
    identity: Identity,
    runner: HostRunner,
    stop: GracefulStop | None = None,
) -> None:
    """``on_halt: rollback``: put every host a halted deployment switched back on what it ran.

    One rollback deployment per version the hosts ran before (:func:`rollback_groups`),
    in sequence, each recorded with ``rollback_of`` naming the halted deployment. In each,
    the hosts that failed the halted deployment go first (they are out of service
    already) and their failing again does not count against the rollback's budget, so a
    known-bad host cannot stop the healthy ones from being restored. A host whose first
    deployment this was has nothing to go back to and is left as it is.

    Worked out from the store each time, so it completes what is left: after a push
    halts, and again after ``deploy resume`` of the push or of one of its rollbacks (a
    controller killed midway). Hosts a finished rollback of it already took are not
    taken again; nothing is done while one of its rollbacks is unfinished. A graceful stop
    (Ctrl-C, SIGTERM) stops the rollback in flight as any deployment and starts no other.
    """
    view = store.deployment(deployment_id)
    saved = store.run_options(deployment_id)
    if not rollback_due(view.status, view.kind, saved):
        return
    rollbacks = store.rollbacks_of(deployment_id)
    if any(not rollback.is_finished for rollback in rollbacks):
        return  # its own resume completes it, then comes back here
    taken = {host.name for rollback in rollbacks for host in rollback.hosts}
    groups = rollback_groups(
        {h.name: (h.version, h.previous_version) for h in view.hosts if h.name not in taken}
    )
    failed = {h.name for h in view.hosts if h.status.is_failure}
    options = options_from_json(saved)
    for version, names in groups.by_version.items():
        grouped = replace(
            options,
            version=version,
            kind=DeploymentKind.ROLLBACK,
            only_hosts=frozenset(names),
            force=False,
            rollback_of=deployment_id,
            known_bad=frozenset(name for name in names if name in failed),
        )
        if stop is not None and stop.is_set():
            return
        try:
            rollback = prepare(grouped, store)
        except DeployerError as error:  # e.g. the group's hosts all left the inventory meanwhile
            log.warning("cannot roll back %s to %s: %s", ", ".join(names), version, error)
            continue  # they show as not restored; the next groups still go
        if rollback.plan.waves:
            await run_new(rollback, store, sink, identity, runner, stop)
