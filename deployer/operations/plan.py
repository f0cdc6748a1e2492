"""A deployment worked out but not started (:class:`Prepared`): the spec, the fleet, what the
hosts run now, and the waves; for a push and for a rollback.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime

from deployer.core.errors import DeployerError, FleetError, NothingToRollBack
from deployer.core.planner import Plan
from deployer.core.policy import failure_budget
from deployer.core.results import DeploymentKind
from deployer.core.spec import Spec
from deployer.core.targets import Fleet, Host, SshTarget, resolve_ssh
from deployer.operations.options import PushOptions
from deployer.operations.reading import read_spec
from deployer.operations.reconcile import settle_unknown_hosts
from deployer.operations.waves import limited_hosts, plan_for
from deployer.spec.load import load_fleet
from deployer.store import DeploymentView, Store

log = logging.getLogger(__name__)


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


def prepare(
    options: PushOptions,
    store: Store,
    *,
    settle_unknown: bool = False,
    loaded: tuple[Spec, Fleet] | None = None,
) -> Prepared:
    """Load the spec and the fleet (unless ``loaded`` already), read what the hosts run,
    and plan the waves.

    With ``settle_unknown`` (push, rollback: not plan, which touches no host), the app's
    hosts whose outcome is UNKNOWN are probed first, so the plan starts from the truth.
    """
    spec = loaded[0] if loaded else read_spec(options.spec_path, options.version, options.environment)
    if settle_unknown:
        settle_unknown_hosts(store, spec.app, spec.environment)
    return plan_deployment(options, spec, loaded[1] if loaded else load_fleet(spec), store)


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
    hosts = limited_hosts(fleet, limit, only)
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


def targets_for(prepared: Prepared) -> dict[str, SshTarget]:
    return {h.name: resolve_ssh(h, prepared.fleet.ssh, prepared.spec.ssh) for h in prepared.hosts}
