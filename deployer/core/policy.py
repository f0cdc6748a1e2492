"""The failure policy: how many failed hosts a deployment tolerates, and how many may start now.

Pure: counts in, a number or a yes/no out. The controller asks these and acts
on the answers; no other module decides a halt or bounds concurrency.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from deployer.core.quantities import Count
from deployer.core.results import DeploymentKind, DeploymentStatus


def failure_budget(max_failures: Count, host_count: int) -> int:
    """How many hosts may fail before the deployment halts; the next failure halts it.

    The budget is for the whole deployment, across all its waves, not per wave:
    ``host_count`` is every host the deployment updates. A percent is of
    ``host_count`` rounded DOWN, so a fractional host is not tolerated: when in
    doubt, stop (a halted deployment can be resumed, a broken fleet cannot be
    unbroken by going on).

    Examples:
        5% of 100 hosts   → 5 tolerated, the 6th failure halts
        5% of 30 hosts    → 1.5, rounded down: 1 tolerated, the 2nd halts
        5% of 10 hosts    → 0.5 → 0: the first failure halts
        2 (a count)       → 2 tolerated, the 3rd halts, whatever the fleet size
        0 or 0%           → the first failure halts
    """
    if host_count < 0:
        raise ValueError(f"a deployment cannot have {host_count} hosts")
    if not max_failures.percent:
        return int(max_failures.value)
    # round() first so float noise cannot drop a whole host: 7% of 100 is 7.000000000000001.
    return math.floor(round(max_failures.value * host_count / 100, 9))


def should_halt(failed_count: int, budget: int) -> bool:
    """Whether ``failed_count`` failed hosts exceed ``budget`` (more failed than tolerated).

    With a budget of 2: 2 failed → go on; 3 failed → halt.
    """
    return failed_count > budget


def may_start_count(
    *,
    wave_size: int,
    pending_count: int,
    in_flight_count: int,
    max_parallel: int | None = None,
) -> int:
    """How many more hosts of the current wave may start now: the one concurrency bound.

    ``pending_count`` hosts of the wave have not started, ``in_flight_count``
    are running. At most ``max_parallel`` hosts run at once; by default the
    whole wave may run at once (``max_parallel`` = ``wave_size``). Hosts already
    running beyond a lowered bound are left to finish. (Whether anything may start at
    all, paused or stopping, is :func:`deployer.core.decide.decide`'s to say.)

        bound = max_parallel or wave_size
        may start = min(pending, max(0, bound - in flight))

    Example: a wave of 10 with max_parallel 3, 2 running and 6 not started:
    min(6, 3 - 2) = 1 may start. Without max_parallel: min(6, 10 - 2) = 6.
    """
    if min(wave_size, pending_count, in_flight_count) < 0:
        raise ValueError("wave sizes and host counts cannot be negative")
    if max_parallel is not None and max_parallel < 1:
        raise ValueError(f"max_parallel must be at least 1, not {max_parallel}")
    bound = wave_size if max_parallel is None else max_parallel
    return min(pending_count, max(0, bound - in_flight_count))


@dataclass(frozen=True, slots=True)
class RollbackGroups:
    """What an automatic rollback (``on_halt: rollback``) puts back, and to which version."""

    by_version: Mapping[str, tuple[str, ...]]  # the version to go back to -> the hosts going back to it
    first_deployment: tuple[str, ...]  # switched, but ran nothing before: nothing to go back to


def rollback_groups(switches: Mapping[str, tuple[str | None, str | None]]) -> RollbackGroups:
    """Group the hosts a halted deployment switched by the version each ran before it.

    ``switches`` maps each host to (the version it was left on, the one it ran before), as
    its row of the deployment records them. Only a host whose ``current`` now points
    somewhere else than before was switched;
    a host that failed before its switch still runs its old version and needs nothing.
    Each host goes back to what *it* ran, not to what most hosts ran: one rollback
    deployment per group, since a deployment keeps exactly one version. Groups come
    largest first (then by version), hosts in the order given.

    Example: a push of 1.6 switched web1 and web2 from 1.5, web3 from 1.3 and web4,
    which had nothing, then halted; web5 failed in after_install, still on 1.5:
    ``{"1.5": (web1, web2), "1.3": (web3,)}``, and web4 has nothing to go back to.
    """
    by_version: dict[str, list[str]] = {}
    first: list[str] = []
    for name, (version, previous) in switches.items():
        if version is None or version == previous:
            continue
        if previous is None:
            first.append(name)
        else:
            by_version.setdefault(previous, []).append(name)
    ordered = sorted(by_version.items(), key=lambda item: (-len(item[1]), item[0]))
    return RollbackGroups({version: tuple(names) for version, names in ordered}, tuple(first))


def rolls_back_on_halt(kind: DeploymentKind, run_options: Mapping[str, Any]) -> bool:
    """Whether a halt of this deployment is one that ``on_halt: rollback`` undoes.

    ``run_options`` are what it was started with (``on_halt`` kept beside them). Not a
    restart (it switched nothing) and not an automatic rollback itself.
    """
    return (
        run_options.get("on_halt") == "rollback"
        and kind is not DeploymentKind.RESTART
        and not run_options.get("rollback_of")
    )


def rollback_due(status: DeploymentStatus, kind: DeploymentKind, run_options: Mapping[str, Any]) -> bool:
    """Whether a recorded deployment halted and :func:`rolls_back_on_halt` (read from the store)."""
    return status is DeploymentStatus.HALTED and rolls_back_on_halt(kind, run_options)
