"""A deployment whose controller died: take it over, settle its hosts in flight, then carry
it on (``deploy resume``) or end it (``deploy abort``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from deployer.core.clock import utcnow
from deployer.core.errors import ControlError, SpecError
from deployer.core.events import EventSink
from deployer.core.policy import failure_budget
from deployer.core.results import DeploymentKind, DeploymentStatus, HostStatus
from deployer.core.rollout import GracefulStop, RolloutOutcome
from deployer.core.runner import HostRunner
from deployer.core.settle import settle_host
from deployer.core.spec import Spec
from deployer.core.targets import SshTarget, resolve_ssh
from deployer.hosts.kept_artifacts import kept_artifact
from deployer.operations.context import Identity, one_line_of, runner_scope
from deployer.operations.options import PushOptions, options_from_json
from deployer.operations.reading import read_spec
from deployer.operations.rollback import complete_automatic_rollback
from deployer.operations.rollout import artifact_for, release_job, rollout_for, started_event
from deployer.rollout.controller import Controller
from deployer.rollout.notify import notifying
from deployer.rollout.probing import probe_deadline, record_verdicts, settle_hosts
from deployer.spec.load import load_fleet
from deployer.store import DeploymentView, HostDeploymentView, Store


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
    options = options_from_json(saved)
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
    async with runner_scope(runner) as runner:
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
        rollout = rollout_for(
            spec,
            options,
            store.run_options(deployment_id),
            job=release_job(spec, deployment_id, options.kind, artifact, identity, options),
            targets=taken.targets,
            waves=tuple(tuple(waves[index]) for index in sorted(waves)),
            failure_budget=failure_budget(
                spec.strategy.max_failures, sum(1 for h in planned if h.name not in options.known_bad)
            ),
        )
        datacenters = {h.name: h.datacenter for h in planned}
        async with notifying(spec.notify, store, sink, utcnow) as sink:
            sink(started_event(rollout, taken.view.previous_version, datacenters, utcnow()))
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
    async with runner_scope(runner) as runner:
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
    async with runner_scope(runner) as runner:
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
