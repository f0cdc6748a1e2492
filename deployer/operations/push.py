"""``deploy push`` (rollback, sync, promote, restart): run a prepared deployment, and roll it
back when it halts with ``on_halt: rollback``; and ``deploy check``.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from deployer.core.clock import utcnow
from deployer.core.errors import StoreError
from deployer.core.events import EventSink
from deployer.core.rollout import GracefulStop, RolloutOutcome
from deployer.core.runner import Artifact, HostRunner
from deployer.core.spec import Spec
from deployer.core.targets import Fleet, Host, resolve_ssh
from deployer.hosts.kept_artifacts import prune_kept
from deployer.hosts.preflight import HostCheck, check_hosts, needed_bytes
from deployer.hosts.ssh import SshRunner
from deployer.operations.context import Identity, runner_scope
from deployer.operations.plan import Prepared
from deployer.operations.rollback import complete_automatic_rollback
from deployer.operations.rollout import run_new
from deployer.rollout.notify import notifying
from deployer.store import Store

log = logging.getLogger(__name__)


async def execute(
    prepared: Prepared,
    store: Store,
    sink: EventSink,
    *,
    identity: Identity | None = None,
    runner: HostRunner | None = None,
    stop: GracefulStop | None = None,
) -> RolloutOutcome:
    """Record the deployment, run its waves, and (with ``on_halt: rollback``) undo a halted one.

    Once ``stop`` is set, no new host starts, the hosts in flight finish, and the
    deployment ends ``aborted`` (``deploy sync --watch`` on SIGTERM).
    """
    identity = identity or Identity.here()
    async with (
        runner_scope(runner) as runner,
        notifying(prepared.spec.notify, store, sink, utcnow) as sink,
    ):
        outcome = await run_new(prepared, store, sink, identity, runner, stop)
        if outcome.rollback:
            await complete_automatic_rollback(outcome.deployment_id, store, sink, identity, runner, stop)
    try:
        prune_kept_artifacts(store, prepared.spec.app)
    except StoreError as error:  # the deployment is over and recorded: housekeeping waits for the next
        log.warning("warning: the kept artifacts were not pruned: %s", error)
    return outcome


def prune_kept_artifacts(store: Store, app: str) -> list[str]:
    """Remove the app's kept artifacts of no more use; the versions removed.

    Of use: every version some environment's hosts run, and each environment's latest
    good version (what a rollback, sync or promotion sends to a host that lacks it).
    """
    environments = {view.environment for view in store.latest_deployments() if view.app == app}
    keep: set[str] = set()
    for environment in environments:
        keep.update(store.current_versions(app, environment).values())
        good = store.last_good_version(app, environment)
        if good is not None:
            keep.add(good)
    return prune_kept(app, keep)


async def preflight(
    spec: Spec, fleet: Fleet, hosts: Sequence[Host], artifact: Artifact | None
) -> list[HostCheck]:
    """``deploy check``: each host's verdict on whether ``artifact`` could be deployed there.

    Connects to every host (bounded, see :func:`check_hosts`) and only looks: no host
    is changed and no deployment recorded.
    """
    targets = [resolve_ssh(host, fleet.ssh, spec.ssh) for host in hosts]
    runner = SshRunner()
    try:
        return await check_hosts(runner, targets, spec.target, needed_bytes(artifact))
    finally:
        await runner.aclose()
