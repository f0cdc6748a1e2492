"""What ``deploy push``, ``rollback`` and ``resume`` do, apart from how they are shown.

The CLI and the TUI call these; they tie the spec, the fleet, the planner, the
store and the controller together. Nothing here prints: progress goes to the
event sink, results come back as values.
"""

from __future__ import annotations

import getpass
import os
import socket
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime

from deployer.artifact import prepare_artifact
from deployer.controller import Controller, Rollout, RolloutOutcome, utcnow
from deployer.errors import ControlError, DeployerError
from deployer.events import DeploymentStarted, EventSink
from deployer.fleet import Fleet, Host, SshTarget, limit_hosts, resolve_ssh
from deployer.inventory import load_fleet
from deployer.planner import Plan, plan_waves
from deployer.policy import failure_budget
from deployer.results import DeploymentKind, DeploymentStatus, HostStatus
from deployer.runner import HostRunner, ReleaseJob
from deployer.spec import OnHalt, Spec, Stripe, load_spec
from deployer.ssh import SshRunner
from deployer.store import Store


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
    fleet = load_fleet(spec)
    hosts = limit_hosts(fleet.hosts, options.limit)
    if options.only_hosts is not None:
        hosts = tuple(h for h in hosts if h.name in options.only_hosts)
    if not hosts:
        raise DeployerError(
            f"--limit {options.limit} matches no host of the fleet ({len(fleet.hosts)} hosts)"
        )
    current = store.current_versions(spec.app, spec.environment)
    failed = frozenset(store.failed_hosts_of_last_deployment(spec.app, spec.environment))
    plan = plan_waves(
        hosts,
        batch=spec.strategy.batch,
        stripe=spec.strategy.stripe is Stripe.DATACENTER,
        version=spec.version,
        current_versions=current,
        failed_hosts=failed,
        force=options.force,
    )
    return Prepared(options, spec, fleet, hosts, plan, _most_common(current, hosts), current, failed)


def prepare_rollback(options: PushOptions, store: Store, to_version: str | None) -> Prepared:
    """A rollback: a push of the previous good version (or ``to_version``) as kind ``rollback``."""
    spec = load_spec(options.spec_path, version=options.version, environment=options.environment)
    if to_version is None:
        latest = store.history(spec.app, spec.environment, limit=1)
        before = latest[0].version if latest else None
        to_version = store.last_good_version(spec.app, spec.environment, before=before)
        if to_version is None:
            raise NothingToRollBack(
                f"no earlier good version of {spec.app} in {spec.environment} to roll back to; "
                "name one with --to"
            )
    return prepare(replace(options, version=to_version, kind=DeploymentKind.ROLLBACK), store)


def _most_common(current: Mapping[str, str], hosts: tuple[Host, ...]) -> str | None:
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
    clock: type[datetime] | None = None,
) -> RolloutOutcome:
    """Record the deployment, run its waves, and (with ``on_halt: rollback``) undo a halted one."""
    identity = identity or Identity.here()
    own_runner = runner is None
    runner = runner or SshRunner()
    try:
        outcome = await _run_new(prepared, store, sink, identity, runner)
        if outcome.status is DeploymentStatus.HALTED and prepared.spec.strategy.on_halt is OnHalt.ROLLBACK:
            await _roll_back_touched(prepared, outcome, store, sink, identity, runner)
        return outcome
    finally:
        if own_runner:
            await runner.aclose()


async def _run_new(
    prepared: Prepared, store: Store, sink: EventSink, identity: Identity, runner: HostRunner
) -> RolloutOutcome:
    spec, plan = prepared.spec, prepared.plan
    artifact = prepare_artifact(spec.artifact) if prepared.kind is not DeploymentKind.RESTART else None
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
        now=now,
    )
    job = ReleaseJob(
        deployment_id=deployment_id,
        app=spec.app,
        environment=spec.environment,
        version=spec.version,
        kind=prepared.kind.value,
        target=spec.target,
        keep_releases=spec.keep_releases,
        artifact=artifact,
        hooks=spec.hook_commands(),
        started_by=identity.user,
        ignore_stop_failures=prepared.options.ignore_stop_failures,
    )
    rollout = Rollout(
        deployment_id=deployment_id,
        job=job,
        targets=targets_for(prepared),
        waves=tuple(tuple(h.name for h in wave.hosts) for wave in plan.waves),
        failure_budget=prepared.failure_budget,
        bake=spec.strategy.bake,
        max_parallel=spec.strategy.max_parallel,
    )
    sink(
        DeploymentStarted(
            deployment_id=deployment_id,
            app=spec.app,
            environment=spec.environment,
            kind=prepared.kind.value,
            version=spec.version,
            previous_version=prepared.previous_version,
            wave_count=len(plan.waves),
            host_count=plan.host_count,
            failure_budget=rollout.failure_budget,
            datacenters={h.name: h.datacenter for wave in plan.waves for h in wave.hosts},
            at=now,
        )
    )
    controller = Controller(store, runner, sink, pid=identity.pid, machine=identity.machine)
    return await controller.run(rollout)


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


def resume_statuses(store: Store, deployment_id: str) -> dict[str, HostStatus]:
    """The recorded statuses of a deployment's hosts (for ``deploy resume``)."""
    view = store.deployment(deployment_id)
    if view.is_finished:
        raise ControlError(f"deployment {deployment_id} has finished ({view.status}); nothing to resume")
    return {h.name: h.status for h in view.hosts}
