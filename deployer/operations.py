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
from deployer.clock import utcnow
from deployer.controller import (
    Controller,
    Discover,
    GracefulStop,
    Joining,
    Rollout,
    RolloutOutcome,
)
from deployer.errors import ControlError, DeployerError, FleetError, NothingToRollBack, SpecError, StoreError
from deployer.events import DeploymentStarted, EventSink
from deployer.fleet import Fleet, Host, SshTarget, resolve_ssh
from deployer.inventory.load import is_inventory_script
from deployer.kept_artifacts import keep_artifact, kept_artifact, prune_kept
from deployer.limit import limit_hosts
from deployer.notify import notifying
from deployer.planner import Plan, plan_waves
from deployer.policy import failure_budget, rollback_due, rollback_groups, rolls_back_on_halt
from deployer.preflight import HostCheck, check_hosts, needed_bytes
from deployer.probing import probe_deadline, record_verdicts, settle_hosts
from deployer.results import DeploymentKind, DeploymentStatus, HostStatus
from deployer.runner import Artifact, HostRunner, ReleaseJob
from deployer.settle import Verdict, settle_host
from deployer.spec.hooks import hook_commands
from deployer.spec.load import load_fleet, load_spec
from deployer.spec.values import Gate, Spec, Stripe
from deployer.ssh import SshRunner
from deployer.store import DeploymentView, HostDeploymentView, Store

log = logging.getLogger(__name__)


def check_fabric_task(reference: str, args: Mapping[str, Any]) -> str | None:
    """Why a spec's Fabric task cannot be called, or None: the check :func:`load_spec` is given.

    Fabric is imported here, only for a spec that names a task.
    """
    from deployer.fabric_hooks import task_problem

    return task_problem(reference, args)


def read_spec(path: str, version: str | None, environment: str | None) -> Spec:
    """The spec at ``path`` for ``version`` and ``environment``, its Fabric tasks checked."""
    return load_spec(path, check_task=check_fabric_task, version=version, environment=environment)


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
    rollback_of: str | None = None  # an automatic rollback (on_halt): the deployment it undoes
    # Hosts that failed the deployment being rolled back: they go first, and their failing
    # again does not count against the rollback's budget (see RolloutState.budget_exempt).
    known_bad: frozenset[str] = frozenset()


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
    unknown: tuple[str, ...] = ()  # hosts of the app+environment whose last outcome is UNKNOWN

    @property
    def kind(self) -> DeploymentKind:
        return self.options.kind

    @property
    def failure_budget(self) -> int:
        counted = [h.name for w in self.plan.waves for h in w.hosts if h.name not in self.options.known_bad]
        return failure_budget(self.spec.strategy.max_failures, len(counted))


def prepare(options: PushOptions, store: Store, *, settle_unknown: bool = False) -> Prepared:
    """Load the spec and the fleet, read what the hosts run, and plan the waves.

    With ``settle_unknown`` (push, rollback: not plan, which touches no host), the app's
    hosts whose outcome is UNKNOWN are probed first, so the plan starts from the truth.
    """
    spec = read_spec(options.spec_path, options.version, options.environment)
    if settle_unknown:
        settle_unknown_hosts(store, spec.app, spec.environment)
    return plan_deployment(options, spec, load_fleet(spec), store)


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
    async with _runner_scope(runner) as runner:
        for found_id, names in by_deployment.items():
            view = store.deployment(found_id)
            if not view.is_finished:
                continue
            options = _options_from_json(store.run_options(found_id))
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


def one_line_of(error: BaseException) -> str:
    """An error's message on one line (a spec error may hold several)."""
    return "; ".join(str(error).splitlines())


def settle_unknown_hosts(store: Store, app: str, environment: str) -> list[Reconciled]:
    """:func:`reconcile` the app+environment's UNKNOWN hosts, if it has any; outside any event loop."""
    if not store.unknown_hosts(app, environment):
        return []
    return asyncio.run(reconcile(store, app=app, environment=environment))


def plan_deployment(options: PushOptions, spec: Spec, fleet: Fleet, store: Store) -> Prepared:
    """:func:`prepare` for a spec and fleet already loaded: what the hosts run, and the waves."""
    hosts = select_hosts(fleet, options.limit, options.only_hosts)
    current = store.current_versions(spec.app, spec.environment)
    if options.rollback_of is not None:  # the failures that count are the rolled-back deployment's
        failed = options.known_bad
    else:
        failed = frozenset(store.failed_hosts_of_last_deployment(spec.app, spec.environment))
    plan = plan_for(spec, hosts, version=spec.version, current=current, failed=failed, force=options.force)
    # What this deployment replaces: the version most of the hosts it changes run now (for a
    # rollback, the version being rolled back), or of the whole selection when it changes none.
    changed = plan.hosts or hosts
    unknown = tuple(sorted({name for _, name in store.unknown_hosts(spec.app, spec.environment)}))
    previous = most_common_version(current, changed)
    return Prepared(options, spec, fleet, hosts, plan, previous, current, failed, unknown)


def select_hosts(fleet: Fleet, limit: str | None, only: frozenset[str] | None = None) -> tuple[Host, ...]:
    """The fleet's hosts that ``--limit`` (and ``only``, when given) select; at least one."""
    hosts = limit_hosts(fleet.hosts, limit)
    if only is not None:
        hosts = tuple(h for h in hosts if h.name in only)
    if not hosts:
        raise DeployerError(f"--limit {limit} matches no host of the fleet ({len(fleet.hosts)} hosts)")
    check_selected(fleet, hosts)
    return tuple(hosts)


_told: set[str] = set()  # fleet warnings already given by this process


def check_selected(fleet: Fleet, hosts: Sequence[Host]) -> None:
    """Refuse hosts deployer cannot reach (an ``ansible_connection`` it does not speak) among
    those a deployment selects, and tell the fleet's warnings, each once per process."""
    refusals = [host.refusal for host in hosts if host.refusal is not None]
    if refusals:
        more = f"; and {len(refusals) - 3} more hosts" if len(refusals) > 3 else ""
        raise FleetError("; ".join(refusals[:3]) + more)
    for warning in fleet.warnings:
        if warning not in _told:
            _told.add(warning)
            log.warning("warning: %s", warning)


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


def prepare_rollback(
    options: PushOptions, store: Store, to_version: str | None, *, settle_unknown: bool = False
) -> Prepared:
    """A rollback: a push of the previous good version (or ``to_version``) as kind ``rollback``."""
    spec = read_spec(options.spec_path, options.version, options.environment)
    if to_version is not None:
        ran = store.versions_ever_run(spec.app, spec.environment)
        if to_version not in ran:  # no host keeps its release, and it never proved itself here
            raise NothingToRollBack(
                f"--to {to_version}: no host of {spec.app} in {spec.environment} ever ran it "
                f"(versions that ran: {', '.join(ran) or 'none'}); deploy it with `deploy push --version`"
            )
    else:
        latest = latest_release(store, spec.app, spec.environment)
        before = latest.version if latest else None
        to_version = store.last_good_version(spec.app, spec.environment, before=before)
        if to_version is None:
            raise NothingToRollBack(
                f"no earlier good version of {spec.app} in {spec.environment} to roll back to; "
                "name one with --to"
            )
    rollback = replace(options, version=to_version, kind=DeploymentKind.ROLLBACK)
    return prepare(rollback, store, settle_unknown=settle_unknown)


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


def most_common_version(current: Mapping[str, str], hosts: Sequence[Host]) -> str | None:
    """The version most of ``hosts`` run (ties: the first met in inventory order)."""
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


def targets_for(prepared: Prepared) -> dict[str, SshTarget]:
    return {h.name: resolve_ssh(h, prepared.fleet.ssh, prepared.spec.ssh) for h in prepared.hosts}


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
        _runner_scope(runner) as runner,
        notifying(prepared.spec.notify, store, sink, utcnow) as sink,
    ):
        outcome = await _run_new(prepared, store, sink, identity, runner, stop)
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
    stop: GracefulStop | None = None,
) -> RolloutOutcome:
    spec, plan = prepared.spec, prepared.plan
    artifact = artifact_for(prepared.kind, spec, kept=prepared.options.promoted_from is not None)
    # Everything that can fail on bad input is worked out before the lock is taken, so an
    # error here leaves no deployment holding it.
    unnumbered = _job(spec, "", prepared.kind, artifact, identity, prepared.options)
    targets = targets_for(prepared)
    now = utcnow()
    # on_halt is kept beside the options so a halted push's views can tell a rollback was due.
    run_options = {**_options_json(prepared.options), "on_halt": spec.strategy.on_halt.value}
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
        run_options=run_options,
        failure_budget=prepared.failure_budget,
        rollback_of=prepared.options.rollback_of,
        previous_versions=prepared.current_versions,
        now=now,
    )
    retire_departed(store, spec.app, spec.environment, prepared.fleet, now)
    rollout = Rollout(
        deployment_id=deployment_id,
        job=replace(
            unnumbered,
            deployment_id=deployment_id,
            keep_records=tuple(dict.fromkeys(known for known, _ in store.unknown_hosts(spec.app))),
        ),
        targets=targets,
        waves=tuple(tuple(h.name for h in wave.hosts) for wave in plan.waves),
        failure_budget=prepared.failure_budget,
        bake=spec.strategy.bake,
        max_parallel=spec.strategy.max_parallel,
        stage_ahead=spec.strategy.stage_ahead,
        discover=_joiners(prepared),
        budget_exempt=prepared.options.known_bad,
        gates=gates_for(spec, prepared.options),
        rollback_on_halt=rolls_back_on_halt(prepared.kind, run_options),
    )
    hosts = {h.name: h.datacenter for wave in plan.waves for h in wave.hosts}
    sink(_started(rollout, prepared.previous_version, hosts, now))
    controller = Controller(store, runner, sink, pid=identity.pid, machine=identity.machine, stop=stop)
    return await controller.run(rollout)


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
        hooks=hook_commands(spec),
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
        "rollback_of": options.rollback_of,
        "known_bad": sorted(options.known_bad),
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
        rollback_of=data.get("rollback_of"),
        known_bad=frozenset(data.get("known_bad") or ()),
    )


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
    options = _options_from_json(saved)
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
            await _run_new(rollback, store, sink, identity, runner, stop)


async def settle_in_flight(
    store: Store,
    runner: HostRunner,
    deployment_id: str,
    app_target: str,
    planned: Sequence[HostDeploymentView],
    settled: Mapping[str, HostStatus],
    targets: Mapping[str, SshTarget],
) -> dict[str, HostStatus]:
    """The hosts of ``planned`` not in ``settled``, asked (all at once) how they ended; recorded.

    PENDING for a host whose driver never started: nothing ran there, it may start over.
    """
    lost_sight = {h.name: h.status for h in planned if h.name not in settled}
    if not lost_sight:
        return {}
    asked = {name: targets[name] for name in lost_sight if name in targets}
    verdicts = await settle_hosts(
        runner,
        asked,
        lost_sight,
        app_target=app_target,
        deployment_id=deployment_id,
        deadline=probe_deadline(asked),
    )
    record_verdicts(store, deployment_id, verdicts, utcnow())
    return {name: verdict.status for name, verdict in verdicts.items()}


@dataclass(frozen=True, slots=True)
class TakenOver:
    """A dead controller's deployment, taken over, with its in-flight hosts settled."""

    view: DeploymentView
    options: PushOptions
    spec: Spec
    planned: tuple[HostDeploymentView, ...]
    targets: Mapping[str, SshTarget]
    statuses: Mapping[str, HostStatus]  # every planned host's status now (PENDING: may start)


async def take_over(
    deployment_id: str,
    store: Store,
    runner: HostRunner,
    identity: Identity,
    *,
    doing: str,
    spec_changed_ok: bool = False,
) -> TakenOver:
    """Make this controller the owner of a deployment whose controller died, and settle its hosts.

    Refused while its controller looks alive. Each host that was in flight is asked what
    really happened there (its driver finished on its own and left its outcome on the
    host), concurrently and within a deadline, and that is recorded. ``doing`` names the
    command in errors ("resume", "abort").

    The spec is read again from the path the store recorded; unless ``spec_changed_ok``,
    it must be the very file the deployment started with (its sha256, recorded then), so
    neither an edited spec nor a path rewritten in the store brings other hooks in.
    """
    view = store.deployment(deployment_id)
    if view.is_finished:
        raise ControlError(f"deployment {deployment_id} has finished ({view.status}); nothing to {doing}")
    saved = store.run_options(deployment_id)
    if not saved:
        raise ControlError(f"deployment {deployment_id} kept no options to {doing} it with")
    options = _options_from_json(saved)
    spec = read_spec(options.spec_path, view.version, view.environment)
    if spec.sha256 != view.spec_sha256 and not spec_changed_ok:
        raise ControlError(
            f"the spec {options.spec_path} is not the one deployment {deployment_id} started with "
            f"(sha256 {view.spec_sha256[:12]}... then, {spec.sha256[:12]}... now): it was changed, or the "
            f"store points elsewhere; check it, then {doing} with --spec-changed-ok to run it as it is now"
        )
    fleet = load_fleet(spec)
    view = store.takeover(deployment_id, pid=identity.pid, started_from=identity.machine, now=utcnow())
    inventory = {h.name: h for h in fleet.hosts}
    planned = tuple(h for h in view.hosts if h.wave is not None)
    targets = {
        h.name: resolve_ssh(inventory[h.name], fleet.ssh, spec.ssh) for h in planned if h.name in inventory
    }
    statuses = {
        h.name: h.status
        for h in planned
        if h.status.is_final or (h.status is HostStatus.PENDING and h.name in targets)
    }
    # In flight when its controller died, or gone from the inventory meanwhile: ask.
    statuses |= await settle_in_flight(store, runner, deployment_id, spec.target, planned, statuses, targets)
    return TakenOver(view, options, spec, planned, targets, statuses)


async def resume_deployment(
    deployment_id: str,
    store: Store,
    sink: EventSink,
    *,
    identity: Identity | None = None,
    runner: HostRunner | None = None,
    stop: GracefulStop | None = None,
    spec_changed_ok: bool = False,
) -> RolloutOutcome:
    """Carry on a deployment whose controller died (``deploy resume`` on a dead controller).

    Takes the deployment over (:func:`take_over`, which refuses a spec that is not the
    one the deployment started with unless ``spec_changed_ok``) and runs the rest. A
    host that finished is never deployed again and no hook runs twice: a host whose
    driver never started is the only one that starts over.
    """
    identity = identity or Identity.here()
    async with _runner_scope(runner) as runner:
        taken = await take_over(
            deployment_id, store, runner, identity, doing="resume", spec_changed_ok=spec_changed_ok
        )
        spec, options, planned, statuses = taken.spec, taken.options, taken.planned, taken.statuses
        waves: dict[int, list[str]] = {}
        for host in planned:
            waves.setdefault(host.wave or 0, []).append(host.name)
        artifact = None
        if HostStatus.PENDING in statuses.values():
            # What the hosts before the crash got, not whatever the build folder holds now.
            artifact = kept_artifact(spec.app, spec.version) if options.kind is DeploymentKind.PUSH else None
            artifact = artifact or artifact_for(options.kind, spec, kept=options.promoted_from is not None)
        rollout = Rollout(
            deployment_id=deployment_id,
            job=_job(spec, deployment_id, options.kind, artifact, identity, options),
            targets=taken.targets,
            waves=tuple(tuple(waves[index]) for index in sorted(waves)),
            failure_budget=failure_budget(
                spec.strategy.max_failures, sum(1 for h in planned if h.name not in options.known_bad)
            ),
            bake=spec.strategy.bake,
            max_parallel=spec.strategy.max_parallel,
            stage_ahead=spec.strategy.stage_ahead,
            budget_exempt=options.known_bad,
            gates=gates_for(spec, options),
            rollback_on_halt=rolls_back_on_halt(options.kind, store.run_options(deployment_id)),
        )
        datacenters = {h.name: h.datacenter for h in planned}
        async with notifying(spec.notify, store, sink, utcnow) as sink:
            sink(_started(rollout, taken.view.previous_version, datacenters, utcnow()))
            controller = Controller(
                store, runner, sink, pid=identity.pid, machine=identity.machine, stop=stop
            )
            outcome = await controller.run(rollout, statuses)
            # A halted push's automatic rollback, or the rest of it when this was one of them.
            if options.rollback_of:
                await complete_automatic_rollback(options.rollback_of, store, sink, identity, runner, stop)
            elif outcome.rollback:
                await complete_automatic_rollback(deployment_id, store, sink, identity, runner, stop)
            return outcome


async def resume_automatic_rollback(
    deployment_id: str,
    store: Store,
    sink: EventSink,
    *,
    identity: Identity | None = None,
    runner: HostRunner | None = None,
    stop: GracefulStop | None = None,
) -> RolloutOutcome:
    """``deploy resume`` of a halted deployment whose automatic rollback did not run in full
    (its controller died, or was stopped, between the halt and the rollbacks): run the rest.
    """
    identity = identity or Identity.here()
    async with _runner_scope(runner) as runner:
        await complete_automatic_rollback(deployment_id, store, sink, identity, runner, stop)
    view = store.deployment(deployment_id)
    return RolloutOutcome(view.id, view.status, view.reason or "", {h.name: h.status for h in view.hosts})


async def abort_orphan(
    deployment_id: str,
    store: Store,
    *,
    requested_by: str,
    why_dead: str,
    identity: Identity | None = None,
    runner: HostRunner | None = None,
) -> DeploymentView:
    """``deploy abort`` of a deployment whose controller died: nobody else would ever end it.

    Takes it over as ``resume`` does (its in-flight hosts settled from what they say),
    starts nothing, and ends it ``aborted``; hosts it never reached are ``not_started``.
    """
    identity = identity or Identity.here()
    reason = f"aborted by {requested_by} after its controller died ({why_dead}); no new host started"
    async with _runner_scope(runner) as runner:
        try:
            # An abort runs no hook, so an edited spec is no risk: it only names the hosts to ask.
            await take_over(deployment_id, store, runner, identity, doing="abort", spec_changed_ok=True)
        except SpecError as error:
            # Its spec is gone or broken: end it all the same, without asking its hosts. Those in
            # flight are unknown (their drivers finished by themselves): deploy reconcile asks
            # them once the spec is back, and the next push asks them before it plans.
            view = store.takeover(
                deployment_id, pid=identity.pid, started_from=identity.machine, now=utcnow()
            )
            now = utcnow()
            why = f"its spec cannot be read ({one_line_of(error)})"
            verdict = settle_host(HostStatus.RUNNING, True, None, not_asked=why)
            for host in view.hosts:
                if host.status is HostStatus.RUNNING:
                    store.reconcile_host(
                        deployment_id,
                        host.name,
                        status=verdict.status,
                        version=verdict.version,
                        note=verdict.note,
                        now=now,
                    )
            reason += f"; its spec could not be read, so the hosts in flight were not asked ({verdict.note})"
    store.finish_deployment(deployment_id, DeploymentStatus.ABORTED, utcnow(), reason=reason)
    return store.deployment(deployment_id)
