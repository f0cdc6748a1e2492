"""Record a prepared deployment and run its waves in the controller loop.

Shared by every kind of deployment: a push, a rollback, a resumed one.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Any

from deployer.core.clock import utcnow
from deployer.core.errors import DeployerError
from deployer.core.events import DeploymentStarted, EventSink
from deployer.core.policy import failure_budget, rolls_back_on_halt
from deployer.core.results import DeploymentKind
from deployer.core.rollout import Discover, GracefulStop, Joining, Rollout, RolloutOutcome
from deployer.core.runner import Artifact, HostRunner, ReleaseJob
from deployer.core.spec import Gate, Spec
from deployer.core.targets import SshTarget, resolve_ssh
from deployer.hosts.artifact import prepare_artifact
from deployer.hosts.kept_artifacts import keep_artifact, kept_artifact
from deployer.inventory.limit import limit_hosts
from deployer.inventory.load import is_inventory_script
from deployer.operations.context import Identity
from deployer.operations.options import PushOptions, options_json
from deployer.operations.plan import Prepared, retire_departed, targets_for
from deployer.rollout.controller import Controller
from deployer.spec.hooks import hook_commands
from deployer.spec.load import load_fleet
from deployer.store import NewDeployment, Store

log = logging.getLogger(__name__)


async def run_new(
    prepared: Prepared,
    store: Store,
    sink: EventSink,
    identity: Identity,
    runner: HostRunner,
    stop: GracefulStop | None = None,
) -> RolloutOutcome:
    spec, plan = prepared.spec, prepared.plan
    artifact = artifact_for(prepared.kind, spec, kept=prepared.options.promoted_from is not None)
    # Everything that can fail on bad input is worked out before the lock is taken, so an
    # error here leaves no deployment holding it.
    unnumbered = release_job(spec, "", prepared.kind, artifact, identity, prepared.options)
    targets = targets_for(prepared)
    if plan.waves:
        # Connecting changes nothing on a host: wave 1's handshakes begin while the
        # deployment is recorded, instead of after.
        runner.prepare([targets[host.name] for host in plan.waves[0].hosts])
        await asyncio.sleep(0)
    now = utcnow()
    # on_halt is kept beside the options so a halted push's views can tell a rollback was due.
    run_options = {**options_json(prepared.options), "on_halt": spec.strategy.on_halt.value}
    deployment_id = store.begin_deployment(
        NewDeployment(
            app=spec.app,
            environment=spec.environment,
            version=spec.version,
            previous_version=prepared.previous_version,
            kind=prepared.kind,
            started_by=identity.user,
            started_from=identity.machine,
            pid=identity.pid,
            spec_sha256=spec.sha256,
            hosts=[(host, wave.index) for wave in plan.waves for host in wave.hosts],
            skipped=[(skip.host, skip.reason) for skip in plan.skipped],
            run_options=run_options,
            failure_budget=prepared.failure_budget,
            rollback_of=prepared.options.rollback_of,
            previous_versions=prepared.current_versions,
        ),
        now=now,
    )
    retire_departed(store, spec.app, spec.environment, prepared.fleet, now)
    rollout = rollout_for(
        spec,
        prepared.options,
        run_options,
        job=replace(
            unnumbered,
            deployment_id=deployment_id,
            keep_records=tuple(dict.fromkeys(known for known, _ in store.unknown_hosts(spec.app))),
        ),
        targets=targets,
        waves=tuple(tuple(h.name for h in wave.hosts) for wave in plan.waves),
        failure_budget=prepared.failure_budget,
        discover=_joiners(prepared),
    )
    hosts = {h.name: h.datacenter for wave in plan.waves for h in wave.hosts}
    sink(started_event(rollout, prepared.previous_version, hosts, now))
    controller = Controller(store, runner, sink, pid=identity.pid, machine=identity.machine, stop=stop)
    return await controller.run(rollout)


def rollout_for(
    spec: Spec,
    options: PushOptions,
    run_options: Mapping[str, Any],
    *,
    job: ReleaseJob,
    targets: Mapping[str, SshTarget],
    waves: tuple[tuple[str, ...], ...],
    failure_budget: int,
    discover: Discover | None = None,
) -> Rollout:
    """What the controller runs for ``job`` (numbered): the given hosts and budget, and
    what the spec and options say of the strategy, for a new deployment as for a resumed one."""
    return Rollout(
        deployment_id=job.deployment_id,
        job=job,
        targets=targets,
        waves=waves,
        failure_budget=failure_budget,
        bake=spec.strategy.bake,
        max_parallel=spec.strategy.max_parallel,
        stage_ahead=spec.strategy.stage_ahead,
        discover=discover,
        budget_exempt=options.known_bad,
        gates=gates_for(spec, options),
        rollback_on_halt=rolls_back_on_halt(options.kind, run_options),
    )


def gates_for(spec: Spec, options: PushOptions) -> tuple[Gate, ...]:
    """The spec's gates, except for an automatic rollback (``on_halt``): it must run whatever
    the signals say, since they turned bad under the version it takes away."""
    return () if options.rollback_of is not None else spec.strategy.gates


def _joiners(prepared: Prepared) -> Discover | None:
    """Between waves, the hosts that joined the inventory since the deployment was planned.

    For a push, sync or rollback of the whole fleet (or its ``--limit``): not for a
    restart (a new host has nothing to restart) nor a rollback of named hosts. The
    inventory is read again as at the start (an executable one is run again); hosts it
    newly lists that match ``--limit`` join, unless the store says they run the version
    already. An inventory that cannot be read now is passed over with a warning: the
    deployment goes on with the hosts it has.

    Hosts come from the inventory file alone (group_vars and host_vars only add
    variables), so an inventory file unchanged since the last look (same size, mtime
    and inode) is not read again: parsing it between every two waves costs CPU for
    nothing. An inline fleet never changes; a script is always run again.
    """
    options, spec = prepared.options, prepared.spec
    if prepared.kind is DeploymentKind.RESTART or options.only_hosts is not None:
        return None
    if spec.fleet.path is None:
        return None  # inline hosts: the spec, read once, is all there is
    inventory = spec.fleet.path
    known = {host.name for host in prepared.fleet.hosts}
    host_count = prepared.plan.host_count
    looked_at: tuple[int, int, int] | None = None  # the file's signature at the last read

    async def discover() -> Joining | None:
        nonlocal host_count, looked_at
        signature = _file_signature(inventory)
        if signature is not None and signature == looked_at:
            return None
        looked_at = signature  # taken before the read: a change during it is seen next time
        try:
            fleet = await asyncio.to_thread(load_fleet, spec)
        except DeployerError as error:
            log.warning("cannot read the inventory again between waves; going on without it: %s", error)
            return None
        new = [host for host in limit_hosts(fleet.hosts, options.limit) if host.name not in known]
        known.update(host.name for host in new)
        for host in new:
            if host.refusal is not None:
                log.warning("a host that joined the inventory is left out: %s", host.refusal)
        new = [host for host in new if host.refusal is None]
        if not options.force:
            new = [host for host in new if prepared.current_versions.get(host.name) != spec.version]
        if not new:
            return None
        host_count += len(new)
        return Joining(
            tuple(resolve_ssh(host, fleet.ssh, spec.ssh) for host in new),
            failure_budget(spec.strategy.max_failures, host_count),
        )

    return discover


def _file_signature(path: Path) -> tuple[int, int, int] | None:
    """(size, mtime, inode) of an inventory file, or None for a script or a file not there."""
    try:
        if is_inventory_script(path):
            return None
        info = path.stat()
    except OSError:
        return None
    return info.st_size, info.st_mtime_ns, info.st_ino


def artifact_for(kind: DeploymentKind, spec: Spec, *, kept: bool = False) -> Artifact | None:
    """What a deployment sends to hosts that lack the release.

    A push packs the spec's artifact and keeps it as that version's; a rollback or a
    sync (or a push with ``kept``: a promotion) sends the artifact the version was
    deployed from, when this machine kept it (hosts that kept the release need none);
    a restart installs nothing.
    """
    if kind is DeploymentKind.RESTART:
        return None
    if kind in (DeploymentKind.ROLLBACK, DeploymentKind.SYNC) or kept:
        return kept_artifact(spec.app, spec.version)
    artifact = prepare_artifact(spec.artifact)
    keep_artifact(spec.app, spec.version, artifact)
    return artifact


def release_job(
    spec: Spec,
    deployment_id: str,
    kind: DeploymentKind,
    artifact: Artifact | None,
    identity: Identity,
    options: PushOptions,
) -> ReleaseJob:
    return ReleaseJob(
        deployment_id=deployment_id,
        app=spec.app,
        environment=spec.environment,
        version=spec.version,
        kind=kind,
        target=spec.target,
        keep_releases=spec.keep_releases,
        artifact=artifact,
        hooks=hook_commands(spec),
        started_by=identity.user,
        ignore_stop_failures=options.ignore_stop_failures,
    )


def started_event(
    rollout: Rollout, previous_version: str | None, datacenters: dict[str, str], now: datetime
) -> DeploymentStarted:
    job = rollout.job
    return DeploymentStarted(
        deployment_id=rollout.deployment_id,
        app=job.app,
        environment=job.environment,
        kind=job.kind,
        version=job.version,
        previous_version=previous_version,
        wave_count=len(rollout.waves),
        host_count=len(datacenters),
        failure_budget=rollout.failure_budget,
        datacenters=datacenters,
        at=now,
    )
