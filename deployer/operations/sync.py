"""Fleets that change: ``deploy sync`` (and ``--watch``), ``deploy promote`` and ``deploy restart``.

Each works out a :class:`~deployer.operations.plan.Prepared` deployment (or says there is
nothing to do) and leaves running it to :func:`~deployer.operations.push.execute`, like a
push; nothing here prints.

    prepare_sync(options, store, loaded)      the hosts behind the environment's latest good version
    promotable_version(store, app, env)       what succeeded on every host of ``env``; PromotionRefused
    prepare_promote(options, store, source)   a push of that version with the artifact it was sent as
    prepare_restart(options, store)           stop, start and validate on every host that runs a release
    watch_sync(options, store, ...)           a sync round per interval until told to stop

What "behind" means: a host runs no recorded version of the app, or any version
other than that of the environment's latest successful deployment. Version strings
are never ordered (``1.10`` and ``1.9``, ``2024-06-01``, ``blue``): "older" is
"not the latest good one". So after a halted push the hosts it switched are behind
too, and a sync puts them back on the latest good version.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from deployer.core.clock import utcnow
from deployer.core.errors import ArtifactError, DeployerError, DeploymentLocked, PromotionRefused, SpecError
from deployer.core.events import EventSink
from deployer.core.planner import Plan, Skip
from deployer.core.results import DeploymentKind, DeploymentStatus, HostStatus, Step
from deployer.core.rollout import GracefulStop
from deployer.core.runner import HostRunner
from deployer.core.spec import Spec
from deployer.core.targets import Fleet
from deployer.core.wording import count_of
from deployer.hosts.kept_artifacts import kept_artifact, versions_dir
from deployer.operations.context import Identity
from deployer.operations.options import PushOptions
from deployer.operations.plan import (
    Prepared,
    latest_release,
    most_common_version,
    plan_deployment,
    retire_departed,
    select_hosts,
)
from deployer.operations.push import execute
from deployer.operations.reading import read_spec
from deployer.operations.waves import plan_for
from deployer.spec.load import load_fleet
from deployer.store import Store

# These commands choose the version themselves; the spec's own (or its absence) does not
# matter, so the spec is read with this one in its place and given the right one after.
_ANY_VERSION = "0"
_RESTART_STEPS = (Step.STOP, Step.START, Step.VALIDATE)


@dataclass(frozen=True, slots=True)
class Loaded:
    """A spec and its fleet as read at one moment."""

    spec: Spec
    fleet: Fleet


@dataclass(frozen=True, slots=True)
class Unchanged:
    """Nothing to deploy, and the sentence that says why."""

    app: str
    environment: str
    kind: DeploymentKind
    version: str | None
    reason: str


def load(options: PushOptions) -> Loaded:
    """Read the spec (for ``options.environment``) and its inventory now; SpecError/FleetError."""
    spec = read_spec(options.spec_path, _ANY_VERSION, options.environment)
    return Loaded(spec, load_fleet(spec))


# ---- sync ----------------------------------------------------------------------------


def prepare_sync(options: PushOptions, store: Store, loaded: Loaded) -> Prepared | Unchanged:
    """A deployment (kind ``sync``) of the latest good version to the hosts behind it.

    The latest good version is that of the environment's latest SUCCEEDED deployment
    (restarts aside). Its waves are the spec's strategy over the hosts behind only;
    hosts already on it are neither planned nor recorded. Example: 12 hosts ran 1.0
    from a successful push, 3 new hosts joined the inventory, and a push of 1.1 halted
    after switching 4 hosts: the latest good version is 1.0, and the 3 new hosts and the
    4 on 1.1 are behind it (7 hosts).
    """
    spec, fleet = loaded.spec, loaded.fleet
    hosts = select_hosts(fleet, options.limit)
    good = store.last_good_version(spec.app, spec.environment)
    if good is None:
        return Unchanged(
            spec.app,
            spec.environment,
            DeploymentKind.SYNC,
            None,
            f"no deployment of {spec.app} in {spec.environment} has succeeded yet: no version to sync to",
        )
    current = store.current_versions(spec.app, spec.environment)
    behind = tuple(host for host in hosts if current.get(host.name) != good)
    if not behind:
        return Unchanged(
            spec.app,
            spec.environment,
            DeploymentKind.SYNC,
            good,
            f"the 1 host runs {good}" if len(hosts) == 1 else f"all {len(hosts)} hosts run {good}",
        )
    failed = frozenset(store.failed_hosts_of_last_deployment(spec.app, spec.environment))
    # every host here is behind (force); a failed one is only put first
    plan = plan_for(spec, behind, version=good, current=current, failed=failed, force=True)
    return Prepared(
        replace(options, version=good, kind=DeploymentKind.SYNC),
        replace(spec, version=good),
        fleet,
        behind,
        plan,
        most_common_version(current, behind),
        current,
        failed,
    )


def missing_artifact(prepared: Prepared) -> str | None:
    """For a sync: why hosts without the release will fail (no kept artifact), or None."""
    spec = prepared.spec
    if prepared.kind is not DeploymentKind.SYNC or kept_artifact(spec.app, spec.version) is not None:
        return None
    return (
        f"no artifact of {spec.app} {spec.version} is kept on this machine "
        f"({versions_dir() / spec.app}): hosts without the release will fail"
    )


# ---- promote -------------------------------------------------------------------------


def promotable_version(store: Store, app: str, environment: str) -> str:
    """The version of ``environment``'s latest deployment, if it succeeded in full.

    "In full": the latest deployment that deploys a version (a push, rollback or sync;
    restarts aside) finished SUCCEEDED with no failed or unreachable host. A
    deployment that succeeded with failures within its budget is not promoted, nor is
    an earlier version when the latest one did not succeed: PromotionRefused says why.
    """
    latest = latest_release(store, app, environment)
    if latest is None:
        raise PromotionRefused(f"nothing of {app} has been deployed to {environment}: nothing to promote")
    what = f"{environment}'s latest deployment {latest.id} ({latest.kind} of {latest.version})"
    if not latest.is_finished:
        raise PromotionRefused(f"{what} is still {latest.status}; promote once it has succeeded")
    if latest.status is not DeploymentStatus.SUCCEEDED:
        reason = f" ({latest.reason})" if latest.reason else ""
        raise PromotionRefused(f"{what} {latest.status}{reason}; only a version that succeeded is promoted")
    failed = latest.counts.get(HostStatus.FAILED, 0) + latest.counts.get(HostStatus.UNREACHABLE, 0)
    if failed:
        raise PromotionRefused(
            f"{what} succeeded but {failed} of its hosts failed; only a version that succeeded on every "
            "host is promoted"
        )
    return latest.version


def prepare_promote(options: PushOptions, store: Store, source: str) -> Prepared:
    """A push to ``options.environment`` of the version that succeeded in full in ``source``.

    It sends the artifact that version was deployed from, kept on this machine; without
    it the promotion is refused (ArtifactError) rather than sending today's build under
    an older version's name.
    """
    loaded = load(options)
    spec = loaded.spec
    if source == spec.environment:
        raise DeployerError(f"--from and --to are both {source}: promote from one environment to another")
    if source not in spec.environments and latest_release(store, spec.app, source) is None:
        # Not a refusal but a typo: no such environment, in the spec or in the history (exit 2).
        raise DeployerError(
            f"--from {source}: the spec defines no such environment and {spec.app} was never "
            f"deployed there (the spec knows: {', '.join(spec.environments)})"
        )
    version = promotable_version(store, spec.app, source)
    options = replace(options, version=version, kind=DeploymentKind.PUSH, promoted_from=source)
    prepared = plan_deployment(options, replace(spec, version=version), loaded.fleet, store)
    if prepared.plan.waves and kept_artifact(spec.app, version) is None:
        raise ArtifactError(
            f"the artifact {spec.app} {version} was deployed from is not kept on this machine "
            f"({versions_dir() / spec.app}); promote from the machine that deployed it to {source}"
        )
    return prepared


# ---- restart -------------------------------------------------------------------------


def prepare_restart(options: PushOptions, store: Store) -> Prepared | Unchanged:
    """A deployment (kind ``restart``) that runs stop, start and validate on every host.

    Planned as a push is (striped waves, failed hosts first, the same failure budget),
    over every selected host with a recorded version; hosts with none are skipped (they
    have nothing to restart). Nothing is installed and no ``current`` changes, so the
    version history does not move. Recorded with the version most of its hosts run.
    """
    loaded = load(options)
    spec, fleet = loaded.spec, loaded.fleet
    if not any(step in spec.hooks for step in _RESTART_STEPS):
        raise SpecError.single(
            str(spec.path), None, "hooks", "no stop, start or validate hook: a restart would run nothing"
        )
    hosts = select_hosts(fleet, options.limit)
    current = store.current_versions(spec.app, spec.environment)
    running = tuple(host for host in hosts if host.name in current)
    version = most_common_version(current, running)
    if version is None:
        return Unchanged(
            spec.app,
            spec.environment,
            DeploymentKind.RESTART,
            None,
            f"no host of {spec.app} in {spec.environment} runs a recorded version: nothing to restart",
        )
    failed = frozenset(store.failed_hosts_of_last_deployment(spec.app, spec.environment))
    planned = plan_for(spec, running, version=version, current=current, failed=failed, force=True)
    skipped = tuple(
        Skip(host, f"no release of {spec.app} is recorded on it: nothing to restart")
        for host in hosts
        if host.name not in current
    )
    return Prepared(
        replace(options, version=version, kind=DeploymentKind.RESTART),
        replace(spec, version=version),
        fleet,
        running,
        Plan(planned.waves, skipped),
        version,
        current,
        failed,
    )


# ---- sync --watch --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Round:
    """One round of ``deploy sync --watch``: what it saw and did.

    ``status`` is ``unchanged`` (nobody behind), ``waiting`` (another deployment holds
    the lock), ``error`` (the round could not run; the next one tries again), or the
    final status of the sync deployment it ran.
    """

    number: int
    at: datetime
    app: str
    environment: str
    version: str | None  # the latest good version
    host_count: int  # hosts of the inventory (within --limit)
    behind: tuple[str, ...]
    retired: tuple[str, ...]  # hosts found gone from the inventory this round
    status: str
    message: str
    deployment_id: str | None = None
    note: str | None = None  # e.g. the inventory could not be read and the last good one was used


def round_line(entry: Round) -> str:
    """The one line a round is logged as."""
    line = f"{entry.at:%Y-%m-%dT%H:%M:%SZ} round {entry.number}: {count_of(entry.host_count, 'host')}"
    if entry.behind:
        shown = ", ".join(entry.behind[:5]) + (
            f" (+{len(entry.behind) - 5})" if len(entry.behind) > 5 else ""
        )
        line += f", {len(entry.behind)} behind {entry.version}: {shown}"
    if entry.retired:
        line += f", retired {', '.join(entry.retired)}"
    line += f"; {entry.message}"
    if entry.note:
        line += f" [{entry.note}]"
    return line


def round_json(entry: Round) -> dict[str, Any]:
    """A round as one JSON object (``--watch --json`` prints one per line)."""
    return {
        "round": entry.number,
        "at": entry.at.isoformat(),
        "app": entry.app,
        "environment": entry.environment,
        "version": entry.version,
        "host_count": entry.host_count,
        "behind": list(entry.behind),
        "retired": list(entry.retired),
        "status": entry.status,
        "id": entry.deployment_id,
        "message": entry.message,
        "note": entry.note,
    }


async def watch_sync(
    options: PushOptions,
    store: Store,
    *,
    interval: float,
    stop: GracefulStop,
    report: Callable[[Round], None],
    sink: EventSink,
    max_rounds: int | None = None,
    runner: HostRunner | None = None,
    identity: Identity | None = None,
) -> int:
    """Sync, then wait ``interval`` seconds, and again, until ``stop`` is set; the rounds run.

    Each round reads the spec and its inventory afresh (an executable inventory is run
    again), so a host that appears is deployed within one interval, and one that left
    is marked retired. An inventory that cannot be read is reported and the last good
    one stands (only the first round has none, and raises). Once ``stop`` is set, a
    sync in progress starts no new host, lets the hosts in flight finish, and ends
    ``aborted``; the wait between rounds ends at once. ``max_rounds`` bounds it (tests).
    """
    last: Loaded | None = None
    number = 0
    while not stop.is_set() and (max_rounds is None or number < max_rounds):
        number += 1
        at = utcnow()
        note = None
        try:
            last = await asyncio.to_thread(load, options)
        except DeployerError as error:
            if last is None:
                raise
            note = (
                f"cannot read the spec or its inventory ({_first_line(error)}); "
                f"the last good one ({count_of(len(last.fleet.hosts), 'host')}) stands"
            )
        entry = await _sync_round(options, store, last, number, at, stop, sink, runner, identity)
        report(replace(entry, note=note))
        if max_rounds is not None and number >= max_rounds:
            break
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=interval)
    return number


async def _sync_round(
    options: PushOptions,
    store: Store,
    loaded: Loaded,
    number: int,
    at: datetime,
    stop: GracefulStop,
    sink: EventSink,
    runner: HostRunner | None,
    identity: Identity | None,
) -> Round:
    spec = loaded.spec
    base = Round(number, at, spec.app, spec.environment, None, 0, (), (), "error", "")
    try:
        host_count = len(select_hosts(loaded.fleet, options.limit))
        retired = tuple(retire_departed(store, spec.app, spec.environment, loaded.fleet, at))
        base = replace(base, host_count=host_count, retired=retired)
        prepared = prepare_sync(options, store, loaded)
        if isinstance(prepared, Unchanged):
            return replace(base, version=prepared.version, status="unchanged", message=prepared.reason)
        behind = tuple(host.name for host in prepared.hosts)
        base = replace(base, version=prepared.spec.version, behind=behind)
        if stop.is_set():
            return replace(base, status="unchanged", message="stopping: not started")
        outcome = await execute(prepared, store, sink, runner=runner, identity=identity, stop=stop)
    except DeploymentLocked as error:
        return replace(base, status="waiting", message=_first_line(error))
    except DeployerError as error:  # e.g. the store briefly unreachable: the next round tries again
        return replace(base, status="error", message=_first_line(error))
    return replace(
        base,
        status=outcome.status.value,
        deployment_id=outcome.deployment_id,
        message=f"sync {outcome.deployment_id} {outcome.status.value}: {outcome.reason}",
    )


# ---- helpers -------------------------------------------------------------------------


def _first_line(error: BaseException) -> str:
    lines = str(error).splitlines()
    return lines[0] if lines else type(error).__name__
