"""What ``deploy push``, ``rollback`` and ``resume`` do, apart from how they are shown.

The CLI and the TUI call these; they tie the spec, the fleet, the planner, the
store and the controller together. Nothing here prints: progress goes to the
event sink, results come back as values.
"""

from __future__ import annotations

import asyncio
import contextlib
import getpass
import logging
import os
import socket
from collections import Counter
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Any

from deployer.artifact import prepare_artifact
from deployer.controller import Controller, Discover, Joining, Rollout, RolloutOutcome, utcnow
from deployer.errors import ControlError, DeployerError
from deployer.events import DeploymentStarted, EventSink
from deployer.fleet import Fleet, Host, SshTarget, limit_hosts, resolve_ssh
from deployer.inventory import is_inventory_script, load_fleet
from deployer.kept_artifacts import keep_artifact, kept_artifact
from deployer.planner import Plan, plan_waves
from deployer.policy import failure_budget
from deployer.release import Outcome, parse_outcome
from deployer.results import DeploymentKind, DeploymentStatus, HostResult, HostStatus
from deployer.runner import Artifact, HostRunner, ReleaseJob
from deployer.spec import OnHalt, Spec, Stripe, load_spec
from deployer.ssh import SshRunner
from deployer.store import DeploymentView, Store

log = logging.getLogger(__name__)


class NothingToRollBack(DeployerError):
    """No earlier good version is recorded to roll back to."""


@dataclass(frozen=True, slots=True)
class PushOptions:
    """What the operator asked for on the command line."""

    spec_path: str
    version: str | None = None
    environment: str | None = None
    limit: str | None = None
    only_hosts: frozenset[str] | None = None  # exactly these hosts (a rollback of the touched ones)
    force: bool = False
    ignore_stop_failures: bool = False
    kind: DeploymentKind = DeploymentKind.PUSH
    promoted_from: str | None = None  # a promotion: the environment the version proved itself in


@dataclass(frozen=True, slots=True)
class Prepared:
    """A deployment worked out but not started: the spec, the hosts and the waves."""

    options: PushOptions
    spec: Spec
    fleet: Fleet
    hosts: tuple[Host, ...]
    plan: Plan
    previous_version: str | None
    current_versions: Mapping[str, str]
    failed_before: frozenset[str]

    @property
    def kind(self) -> DeploymentKind:
        return self.options.kind

    @property
    def failure_budget(self) -> int:
        return failure_budget(self.spec.strategy.max_failures, self.plan.host_count)


def prepare(options: PushOptions, store: Store) -> Prepared:
    """Load the spec and the fleet, read what the hosts run, and plan the waves."""
    spec = load_spec(options.spec_path, version=options.version, environment=options.environment)
    return plan_deployment(options, spec, load_fleet(spec), store)


def plan_deployment(options: PushOptions, spec: Spec, fleet: Fleet, store: Store) -> Prepared:
    """:func:`prepare` for a spec and fleet already loaded: what the hosts run, and the waves."""
    hosts = limit_hosts(fleet.hosts, options.limit)
    if options.only_hosts is not None:
        hosts = tuple(h for h in hosts if h.name in options.only_hosts)
    if not hosts:
        raise DeployerError(
            f"--limit {options.limit} matches no host of the fleet ({len(fleet.hosts)} hosts)"
        )
    current = store.current_versions(spec.app, spec.environment)
    failed = frozenset(store.failed_hosts_of_last_deployment(spec.app, spec.environment))
    plan = plan_for(spec, hosts, version=spec.version, current=current, failed=failed, force=options.force)
    # What this deployment replaces: the version most of the hosts it changes run now (for a
    # rollback, the version being rolled back), or of the whole selection when it changes none.
    changed = plan.hosts or hosts
    return Prepared(options, spec, fleet, hosts, plan, _most_common(current, changed), current, failed)


def plan_for(
    spec: Spec,
    hosts: Sequence[Host],
    *,
    version: str,
    current: Mapping[str, str],
    failed: frozenset[str],
    force: bool,
) -> Plan:
    """The waves of ``hosts`` to ``version`` by the spec's strategy (every kind of deployment)."""
    return plan_waves(
        hosts,
        batch=spec.strategy.batch,
        stripe=spec.strategy.stripe is Stripe.DATACENTER,
        version=version,
        current_versions=current,
        failed_hosts=failed,
        force=force,
    )


def prepare_rollback(options: PushOptions, store: Store, to_version: str | None) -> Prepared:
    """A rollback: a push of the previous good version (or ``to_version``) as kind ``rollback``."""
    spec = load_spec(options.spec_path, version=options.version, environment=options.environment)
    if to_version is None:
        latest = latest_release(store, spec.app, spec.environment)
        before = latest.version if latest else None
        to_version = store.last_good_version(spec.app, spec.environment, before=before)
        if to_version is None:
            raise NothingToRollBack(
                f"no earlier good version of {spec.app} in {spec.environment} to roll back to; "
                "name one with --to"
            )
    return prepare(replace(options, version=to_version, kind=DeploymentKind.ROLLBACK), store)


def latest_release(store: Store, app: str, environment: str) -> DeploymentView | None:
    """The newest deployment of the app+environment that deploys a version: any kind but a restart.

    A restart runs the hooks of what each host runs already; it makes no version good
    or bad, so rollback, sync and promote look past it.
    """
    limit = 20
    while True:
        found = store.history(app, environment, limit=limit)
        for view in found:
            if view.kind is not DeploymentKind.RESTART:
                return view
        if len(found) < limit:
            return None
        limit *= 4


def retire_departed(store: Store, app: str, environment: str, fleet: Fleet, now: datetime) -> list[str]:
    """Mark retired the hosts the store knows for the app+environment that ``fleet`` no longer lists.

    Their history stays; a retired host that comes back is taken in again by its next
    deployment. The names retired, sorted.
    """
    listed = {host.name for host in fleet.hosts}
    departed = [record.name for record in store.hosts(app, environment) if record.name not in listed]
    if departed:
        store.mark_retired(app, environment, departed, now)
    return departed


def _most_common(current: Mapping[str, str], hosts: Sequence[Host]) -> str | None:
    versions = Counter(current[h.name] for h in hosts if h.name in current)
    return versions.most_common(1)[0][0] if versions else None


@dataclass(frozen=True, slots=True)
class Identity:
    """Who runs this controller, from where."""

    user: str
    machine: str
    pid: int

    @classmethod
    def here(cls) -> Identity:
        return cls(user=getpass.getuser(), machine=socket.gethostname(), pid=os.getpid())


def targets_for(prepared: Prepared) -> dict[str, SshTarget]:
    return {h.name: resolve_ssh(h, prepared.fleet.ssh, prepared.spec.ssh) for h in prepared.hosts}


async def execute(
    prepared: Prepared,
    store: Store,
    sink: EventSink,
    *,
    identity: Identity | None = None,
    runner: HostRunner | None = None,
    stop: asyncio.Event | None = None,
) -> RolloutOutcome:
    """Record the deployment, run its waves, and (with ``on_halt: rollback``) undo a halted one.

    Once ``stop`` is set, no new host starts, the hosts in flight finish, and the
    deployment ends ``aborted`` (``deploy sync --watch`` on SIGTERM).
    """
    identity = identity or Identity.here()
    async with _runner_scope(runner) as runner:
        outcome = await _run_new(prepared, store, sink, identity, runner, stop)
        if (
            outcome.status is DeploymentStatus.HALTED
            and prepared.spec.strategy.on_halt is OnHalt.ROLLBACK
            and prepared.kind is not DeploymentKind.RESTART  # a restart switched nothing
        ):
            await _roll_back_touched(prepared, outcome, store, sink, identity, runner)
        return outcome


@contextlib.asynccontextmanager
async def _runner_scope(runner: HostRunner | None) -> AsyncIterator[HostRunner]:
    """The caller's runner as it is, or an SSH runner of our own, closed when done."""
    if runner is not None:
        yield runner
        return
    own = SshRunner()
    try:
        yield own
    finally:
        await own.aclose()


async def _run_new(
    prepared: Prepared,
    store: Store,
    sink: EventSink,
    identity: Identity,
    runner: HostRunner,
    stop: asyncio.Event | None = None,
) -> RolloutOutcome:
    spec, plan = prepared.spec, prepared.plan
    artifact = artifact_for(prepared.kind, spec, kept=prepared.options.promoted_from is not None)
    # Everything that can fail on bad input is worked out before the lock is taken, so an
    # error here leaves no deployment holding it.
    unnumbered = _job(spec, "", prepared.kind, artifact, identity, prepared.options)
    targets = targets_for(prepared)
    now = utcnow()
    deployment_id = store.begin_deployment(
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
        run_options=_options_json(prepared.options),
        failure_budget=prepared.failure_budget,
        now=now,
    )
    retire_departed(store, spec.app, spec.environment, prepared.fleet, now)
    rollout = Rollout(
        deployment_id=deployment_id,
        job=replace(unnumbered, deployment_id=deployment_id),
        targets=targets,
        waves=tuple(tuple(h.name for h in wave.hosts) for wave in plan.waves),
        failure_budget=prepared.failure_budget,
        bake=spec.strategy.bake,
        max_parallel=spec.strategy.max_parallel,
        discover=_joiners(prepared),
    )
    hosts = {h.name: h.datacenter for wave in plan.waves for h in wave.hosts}
    sink(_started(rollout, prepared.previous_version, hosts, now))
    controller = Controller(store, runner, sink, pid=identity.pid, machine=identity.machine, stop=stop)
    return await controller.run(rollout)


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
    and inode) is not read again: reading 100 hosts cost ~7 ms of CPU between every two
    waves. An inline fleet never changes; a script is always run again.
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


def _job(
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
        kind=kind.value,
        target=spec.target,
        keep_releases=spec.keep_releases,
        artifact=artifact,
        hooks=spec.hook_commands(),
        started_by=identity.user,
        ignore_stop_failures=options.ignore_stop_failures,
    )


def _started(
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


def _options_json(options: PushOptions) -> dict[str, Any]:
    return {
        "spec_path": str(Path(options.spec_path).resolve()),
        "environment": options.environment,
        "limit": options.limit,
        "only_hosts": sorted(options.only_hosts) if options.only_hosts is not None else None,
        "force": options.force,
        "ignore_stop_failures": options.ignore_stop_failures,
        "kind": options.kind.value,
        "promoted_from": options.promoted_from,
    }


def _options_from_json(data: Mapping[str, Any]) -> PushOptions:
    only = data.get("only_hosts")
    return PushOptions(
        spec_path=data["spec_path"],
        environment=data.get("environment"),
        limit=data.get("limit"),
        only_hosts=frozenset(only) if only is not None else None,
        force=bool(data.get("force")),
        ignore_stop_failures=bool(data.get("ignore_stop_failures")),
        kind=DeploymentKind(data.get("kind", "push")),
        promoted_from=data.get("promoted_from"),
    )


async def _roll_back_touched(
    prepared: Prepared,
    outcome: RolloutOutcome,
    store: Store,
    sink: EventSink,
    identity: Identity,
    runner: HostRunner,
) -> RolloutOutcome | None:
    """``on_halt: rollback``: put the hosts the halted deployment changed back on their old version."""
    touched = {
        name
        for name, result in outcome.results.items()
        if result.version is not None and result.version != result.previous_version
    }
    if not touched or prepared.previous_version is None:
        return None
    options = replace(
        prepared.options,
        version=prepared.previous_version,
        kind=DeploymentKind.ROLLBACK,
        only_hosts=frozenset(touched),
        force=False,
    )
    rollback = prepare(options, store)
    if not rollback.plan.waves:
        return None
    return await _run_new(rollback, store, sink, identity, runner)


PROBE_INTERVAL = 0.5  # seconds between looks at a host whose driver still runs on its own


async def resume_deployment(
    deployment_id: str,
    store: Store,
    sink: EventSink,
    *,
    identity: Identity | None = None,
    runner: HostRunner | None = None,
    spec_changed_ok: bool = False,
) -> RolloutOutcome:
    """Carry on a deployment whose controller died (``deploy resume`` on a dead controller).

    The spec is read again from the path the store recorded; unless ``spec_changed_ok``,
    it must be the very file the deployment started with (its sha256, recorded then), so
    neither an edited spec nor a path rewritten in the store brings other hooks in.

    Takes the deployment over (refused while its controller looks alive), learns from
    each host that was in flight what really happened there (its driver finished on its
    own and left its outcome in a state file), records that, and runs the rest. A host
    that finished is never deployed again and no hook runs twice: a host whose driver
    never started is the only one that starts over.
    """
    identity = identity or Identity.here()
    view = store.deployment(deployment_id)
    if view.is_finished:
        raise ControlError(f"deployment {deployment_id} has finished ({view.status}); nothing to resume")
    saved = store.run_options(deployment_id)
    if not saved:
        raise ControlError(f"deployment {deployment_id} kept no options to resume it with")
    options = _options_from_json(saved)
    spec = load_spec(options.spec_path, version=view.version, environment=view.environment)
    if spec.sha256 != view.spec_sha256 and not spec_changed_ok:
        raise ControlError(
            f"the spec {options.spec_path} is not the one deployment {deployment_id} started with "
            f"(sha256 {view.spec_sha256[:12]}... then, {spec.sha256[:12]}... now): it was changed, or the "
            "store points elsewhere; check it, then resume with --spec-changed-ok to run it as it is now"
        )
    fleet = load_fleet(spec)
    view = store.takeover(deployment_id, pid=identity.pid, started_from=identity.machine, now=utcnow())
    async with _runner_scope(runner) as runner:
        inventory = {h.name: h for h in fleet.hosts}
        planned = [h for h in view.hosts if h.wave is not None]
        waves: dict[int, list[str]] = {}
        for host in planned:
            waves.setdefault(host.wave or 0, []).append(host.name)
        targets = {
            h.name: resolve_ssh(inventory[h.name], fleet.ssh, spec.ssh)
            for h in planned
            if h.name in inventory
        }
        statuses: dict[str, HostStatus] = {}
        for host in planned:
            if host.status.is_final or (host.status is HostStatus.PENDING and host.name in targets):
                statuses[host.name] = host.status
            elif host.name not in targets:
                # Left the inventory while no controller ran: one that never started is not
                # deployed (and is no failure); one in flight can no longer be asked.
                result = _lost(host.name, "the host left the inventory while its controller was down")
                if host.status is HostStatus.PENDING:
                    result = replace(
                        result, status=HostStatus.ABORTED, error="left the inventory; not deployed"
                    )
                store.record_host_result(deployment_id, result)
                statuses[host.name] = result.status
            else:  # RUNNING when its controller died
                statuses[host.name] = await _settle(store, runner, targets[host.name], spec, deployment_id)
        artifact = None
        if HostStatus.PENDING in statuses.values():
            # What the hosts before the crash got, not whatever the build folder holds now.
            artifact = kept_artifact(spec.app, spec.version) if options.kind is DeploymentKind.PUSH else None
            artifact = artifact or artifact_for(options.kind, spec, kept=options.promoted_from is not None)
        rollout = Rollout(
            deployment_id=deployment_id,
            job=_job(spec, deployment_id, options.kind, artifact, identity, options),
            targets=targets,
            waves=tuple(tuple(waves[index]) for index in sorted(waves)),
            failure_budget=failure_budget(spec.strategy.max_failures, len(planned)),
            bake=spec.strategy.bake,
            max_parallel=spec.strategy.max_parallel,
        )
        datacenters = {h.name: h.datacenter for h in planned}
        sink(_started(rollout, view.previous_version, datacenters, utcnow()))
        controller = Controller(store, runner, sink, pid=identity.pid, machine=identity.machine)
        return await controller.run(rollout, statuses)


async def _settle(
    store: Store, runner: HostRunner, target: SshTarget, spec: Spec, deployment_id: str
) -> HostStatus:
    """What became of a host that was in flight when its controller died; recorded when final.

    PENDING when its driver never started (nothing ran there, so it may start over).
    """
    name = target.host.name
    while True:
        probe = await runner.probe(target, spec.target, deployment_id)
        if not probe.reachable:
            result = _lost(name, f"unreachable while resuming, its outcome is unknown: {probe.error}")
            result = replace(result, status=HostStatus.UNREACHABLE)
        elif probe.outcome is None:
            return HostStatus.PENDING
        elif probe.outcome == "running":
            await asyncio.sleep(PROBE_INTERVAL)
            continue
        else:
            result = _from_outcome(name, parse_outcome(probe.outcome), probe.current_version)
        store.record_host_result(deployment_id, result)
        return result.status


_OUTCOME_STATUS = {
    "succeeded": HostStatus.SUCCEEDED,
    "aborted": HostStatus.ABORTED,  # stopped before its switch: it runs what it ran before
}


def _from_outcome(name: str, outcome: Outcome, version: str | None) -> HostResult:
    """A host's result from the outcome its driver recorded while no controller listened."""
    now = utcnow()
    status = _OUTCOME_STATUS.get(outcome.status, HostStatus.FAILED)
    error = None
    if status is HostStatus.FAILED:
        step = outcome.step.value if outcome.step else "a step"
        how = "was interrupted" if outcome.status == "interrupted" else f"exited {outcome.exit_status}"
        error = f"{step} {how} while the controller was down"
    return HostResult(
        name,
        status,
        now,
        now,
        step=outcome.step,
        exit_status=outcome.exit_status,
        error=error,
        version=version,
    )


def _lost(name: str, error: str) -> HostResult:
    now = utcnow()
    return HostResult(name, HostStatus.FAILED, now, now, error=error)
