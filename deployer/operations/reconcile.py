"""``deploy reconcile``: ask UNKNOWN hosts what became of them, and record it.

The verdicts are :func:`deployer.core.settle.settle_host`'s; this reads the deployments'
specs and inventories to reach their hosts.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from deployer.core.clock import utcnow
from deployer.core.errors import DeployerError
from deployer.core.results import HostStatus
from deployer.core.runner import HostRunner
from deployer.core.settle import Verdict, settle_host
from deployer.core.targets import resolve_ssh
from deployer.operations.context import one_line_of, runner_scope
from deployer.operations.options import options_from_json
from deployer.operations.reading import read_spec
from deployer.rollout.probing import probe_deadline, record_verdicts, settle_hosts
from deployer.spec.load import load_fleet
from deployer.store import Store


@dataclass(frozen=True, slots=True)
class Reconciled:
    """What ``deploy reconcile`` learnt of one host."""

    deployment_id: str
    host: str
    verdict: Verdict
    asked: bool = True  # False: it could not be asked (its spec unreadable, or it left the inventory)


async def reconcile(
    store: Store,
    *,
    deployment_id: str | None = None,
    app: str | None = None,
    environment: str | None = None,
    runner: HostRunner | None = None,
) -> list[Reconciled]:
    """Probe every UNKNOWN host (of one deployment, or of an app and environment) and record it.

    Only finished deployments: a running one's controller asks its own unknown hosts
    before it ends. Each deployment's hosts are reached as its recorded spec and inventory
    say; a deployment whose spec can no longer be read is passed over (its hosts are not
    asked, and say so). A probe corrects the host's row and version intervals, with a
    note; it never rewrites the deployment's status, nor takes for this deployment's
    version what a later deployment put on the host. Hosts that still do not answer stay
    UNKNOWN.
    """
    by_deployment: dict[str, list[str]] = {}
    for found_id, name in store.unknown_hosts(app, environment, deployment_id=deployment_id):
        by_deployment.setdefault(found_id, []).append(name)
    learnt: list[Reconciled] = []
    async with runner_scope(runner) as runner:
        for found_id, names in by_deployment.items():
            view = store.deployment(found_id)
            if not view.is_finished:
                continue
            options = options_from_json(store.run_options(found_id))
            try:
                spec = read_spec(options.spec_path, view.version, view.environment)
                fleet = load_fleet(spec)
            except DeployerError as error:
                why = f"its spec cannot be read now ({one_line_of(error)})"
                verdict = settle_host(HostStatus.UNKNOWN, True, None, not_asked=why)
                learnt += [Reconciled(found_id, n, verdict, False) for n in names]
                continue
            inventory = {h.name: h for h in fleet.hosts}
            targets = {n: resolve_ssh(inventory[n], fleet.ssh, spec.ssh) for n in names if n in inventory}
            verdicts = await settle_hosts(
                runner,
                targets,
                dict.fromkeys(names, HostStatus.UNKNOWN),
                app_target=spec.target,
                deployment_id=found_id,
                deadline=probe_deadline(targets),
                reached_since=store.touched_since(found_id, names),
            )
            record_verdicts(store, found_id, verdicts, utcnow())
            learnt += [Reconciled(found_id, n, v, n in targets) for n, v in verdicts.items()]
    return learnt


def settle_unknown_hosts(store: Store, app: str, environment: str) -> list[Reconciled]:
    """:func:`reconcile` the app+environment's UNKNOWN hosts, if it has any; outside any event loop."""
    if not store.unknown_hosts(app, environment):
        return []
    return asyncio.run(reconcile(store, app=app, environment=environment))
