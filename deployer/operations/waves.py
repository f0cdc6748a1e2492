"""The hosts a deployment selects and its waves by the spec's strategy; light enough for a
push to plan its first wave before the store is even imported (deployer.operations.early)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from deployer.core.planner import Plan, plan_waves
from deployer.core.spec import Spec, Stripe
from deployer.core.targets import Fleet, Host
from deployer.inventory.limit import limit_hosts


def limited_hosts(fleet: Fleet, limit: str | None, only: frozenset[str] | None = None) -> tuple[Host, ...]:
    """The fleet's hosts that ``--limit`` (and ``only``, when given) select: maybe none."""
    hosts = limit_hosts(fleet.hosts, limit)
    return hosts if only is None else tuple(h for h in hosts if h.name in only)


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
