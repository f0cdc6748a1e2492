"""The wave planner: the docstrings' worked examples as tables, then properties over random fleets."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from fractions import Fraction
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from deployer.core.errors import FleetError
from deployer.core.planner import (
    Plan,
    Skip,
    Wave,
    apportion,
    order_failed_first,
    plan_waves,
    skip_current,
    wave_sizes,
)
from deployer.core.quantities import Count
from deployer.core.targets import Host

PROPERTY_SETTINGS = settings(max_examples=150, deadline=None)


def make_hosts(names: str) -> tuple[Host, ...]:
    """Hosts from "iad1 iad2 sfo1": the datacenter is the name without its trailing digits."""
    return tuple(
        Host(name=name, address=f"10.0.0.{i}", datacenter=name.rstrip("0123456789"))
        for i, name in enumerate(names.split(), start=1)
    )


def counts(*entries: str | int) -> list[Count]:
    return [Count.parse(entry) for entry in entries]


def names_by_wave(plan: Plan) -> list[str]:
    return [" ".join(host.name for host in wave.hosts) for wave in plan.waves]


def plan(hosts: Sequence[Host], batch: list[Count], **kwargs: Any) -> Plan:
    options: dict[str, Any] = {
        "stripe": True,
        "version": "2.4.1",
        "current_versions": {},
        "failed_hosts": frozenset(),
    }
    options.update(kwargs)
    return plan_waves(hosts, batch=batch, **options)


# Rule 1: wave sizes ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("batch", "total", "expected"),
    [
        (counts(1, "10%", "25%"), 40, (1, 4, 10, 10, 10, 5)),  # the docstring's example
        (counts("10%"), 25, (3,) * 8 + (1,)),  # 10% of 25 = 2.5, rounded up to 3
        (counts(1, "50%"), 6, (1, 3, 2)),
        (counts("100%"), 7, (7,)),
        (counts(50), 10, (10,)),  # a count larger than the fleet: one wave
        (counts("0%"), 3, (1, 1, 1)),  # never below 1
        (counts(0), 2, (1, 1)),
        (counts("1%"), 5, (1,) * 5),  # 1% of 5 = 0.05, rounded up to 1
        (counts(2, 1), 4, (2, 1, 1)),  # the ramp may go down; the last entry still repeats
        (counts(5), 0, ()),
    ],
)
def test_wave_sizes(batch: list[Count], total: int, expected: tuple[int, ...]) -> None:
    assert wave_sizes(batch, total) == expected


def test_wave_sizes_needs_a_batch() -> None:
    with pytest.raises(ValueError, match="at least one wave size"):
        wave_sizes([], 10)


# Rule 2: apportioning one wave over the datacenters ------------------------------


@pytest.mark.parametrize(
    ("size", "remaining", "expected"),
    [
        (4, [6, 5, 3], [2, 2, 0]),  # the docstring's example: 1.71, 1.43, 0.86
        (5, [3, 0, 2], [3, 0, 2]),  # a wave as large as what is left takes everything
        (10, [50, 30, 20], [5, 3, 2]),  # whole shares, nothing left over
        (1, [7, 5, 3], [1, 0, 0]),  # a canary comes from the largest datacenter
        (4, [2, 2, 2], [2, 1, 1]),  # a full tie goes to inventory order
        (3, [1, 1, 60], [0, 0, 3]),  # small datacenters keep their only host for later
        (2, [5, 5, 0], [1, 1, 0]),
        (0, [3, 4], [0, 0]),
    ],
)
def test_apportion(size: int, remaining: list[int], expected: list[int]) -> None:
    assert apportion(size, remaining) == expected


def apportion_as_documented(size: int, remaining: list[int]) -> list[int]:
    """The rule of apportion's docstring, written plainly with exact fractions."""
    total = sum(remaining)
    if size >= total:
        return list(remaining)
    exact = [Fraction(size * left, total) for left in remaining]
    shares = [math.floor(share) for share in exact]
    missing = size - sum(shares)
    not_whole = [i for i, share in enumerate(exact) if share != shares[i]]
    not_whole.sort(key=lambda i: (-remaining[i], -(exact[i] - shares[i]), i))
    for i in not_whole[:missing]:
        shares[i] += 1
    return shares


@PROPERTY_SETTINGS
@given(st.lists(st.integers(0, 400), min_size=1, max_size=8), st.data())
def test_apportion_follows_its_documented_rule(remaining: list[int], data: st.DataObject) -> None:
    size = data.draw(st.integers(0, sum(remaining) + 2))
    shares = apportion(size, remaining)
    assert shares == apportion_as_documented(size, remaining)
    assert sum(shares) == min(size, sum(remaining))
    if size < sum(remaining):  # within one host of the exact share: rounded down or up
        total = sum(remaining)
        assert all(
            abs(share * total - size * left) < total for share, left in zip(shares, remaining, strict=True)
        )


def test_apportion_rejects_negative_sizes() -> None:
    with pytest.raises(ValueError, match="negative"):
        apportion(-1, [3])


# Rule 3 and 4: failed hosts first, current hosts skipped ----------------------------


def test_order_failed_first_example() -> None:
    hosts = make_hosts("web1 web2 web3 web4 web5 web6")
    failed, rest = order_failed_first(hosts, {"web5", "web2", "gone9"})
    assert [h.name for h in failed] == ["web2", "web5"]
    assert [h.name for h in rest] == ["web1", "web3", "web4", "web6"]


def test_skip_current_example() -> None:
    hosts = make_hosts("web1 web2 web3 web4")
    versions = {"web1": "2.4.0", "web2": "2.4.1", "web3": "2.4.1"}
    to_update, skipped = skip_current(
        hosts, version="2.4.1", current_versions=versions, failed_hosts={"web3"}
    )
    assert [h.name for h in to_update] == ["web1", "web3", "web4"]
    assert skipped == (Skip(hosts[1], "already runs 2.4.1"),)

    forced, none_skipped = skip_current(
        hosts, version="2.4.1", current_versions=versions, failed_hosts={"web3"}, force=True
    )
    assert forced == hosts
    assert none_skipped == ()


# Whole plans --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("inventory", "batch", "failed", "stripe", "expected"),
    [
        pytest.param(  # plan_waves' docstring example
            "iad1 iad2 iad3 iad4 sfo1 sfo2",
            counts(1, "50%"),
            {"iad3"},
            True,
            ["iad3", "iad1 iad2 sfo1", "iad4 sfo2"],
            id="docstring",
        ),
        pytest.param(  # iad 7, sfo 5, ams 3; takes per wave [1,0,0] [2,2,0] [2,1,1] [2,1,1] [0,1,1]
            "iad1 iad2 iad3 iad4 iad5 iad6 iad7 sfo1 sfo2 sfo3 sfo4 sfo5 ams1 ams2 ams3",
            counts(1, 4),
            set(),
            True,
            ["iad1", "iad2 iad3 sfo1 sfo2", "iad4 iad5 sfo3 ams1", "iad6 iad7 sfo4 ams2", "sfo5 ams3"],
            id="uneven-datacenters",
        ),
        pytest.param(  # the inventory interleaves datacenters; waves keep inventory order
            "sfo1 iad1 sfo2 iad2 iad3 iad4",
            counts(3),
            set(),
            True,
            ["sfo1 iad1 iad2", "sfo2 iad3 iad4"],
            id="interleaved-inventory",
        ),
        pytest.param(
            "iad1 iad2 iad3 iad4 sfo1 sfo2",
            counts(1, "50%"),
            {"sfo2"},
            False,
            ["sfo2", "iad1 iad2 iad3", "iad4 sfo1"],
            id="no-striping",
        ),
        pytest.param(  # wave 2 mixes the last failed host and 2 healthy ones striped (iad 3, sfo 1 left)
            "iad1 iad2 iad3 iad4 sfo1 sfo2 sfo3",
            counts(2, 3),
            {"sfo1", "iad2", "sfo3"},
            True,
            ["sfo1 sfo3", "iad2 iad1 iad3", "iad4 sfo2"],
            id="mixed-wave",
        ),
        pytest.param(  # a wave of 1 can hold only one datacenter: they finish one after another
            "iad1 sfo1 ams1",
            counts(1),
            set(),
            True,
            ["iad1", "sfo1", "ams1"],
            id="waves-smaller-than-datacenters",
        ),
    ],
)
def test_plan_examples(
    inventory: str, batch: list[Count], failed: set[str], stripe: bool, expected: list[str]
) -> None:
    result = plan(make_hosts(inventory), batch, failed_hosts=failed, stripe=stripe)
    assert names_by_wave(result) == expected
    assert [wave.index for wave in result.waves] == list(range(1, len(expected) + 1))


def test_plan_skips_hosts_already_on_the_version() -> None:
    hosts = make_hosts("iad1 iad2 sfo1 sfo2")
    result = plan(hosts, counts("50%"), current_versions={"iad1": "2.4.1", "sfo2": "2.4.0"})
    assert result.skipped == (Skip(hosts[0], "already runs 2.4.1"),)
    # 50% of the 3 hosts left (not of 4) is 1.5, rounded up to 2; sfo has the most left.
    assert names_by_wave(result) == ["sfo1 sfo2", "iad2"]
    assert (result.host_count, result.wave_count, result.skipped_count) == (3, 2, 1)
    assert [h.name for h in result.hosts] == ["sfo1", "sfo2", "iad2"]


def test_plan_with_force_updates_every_host() -> None:
    hosts = make_hosts("iad1 iad2")
    result = plan(hosts, counts(1), current_versions={"iad1": "2.4.1", "iad2": "2.4.1"}, force=True)
    assert names_by_wave(result) == ["iad1", "iad2"]
    assert result.skipped == ()


def test_plan_when_every_host_is_current_has_no_waves() -> None:
    hosts = make_hosts("iad1 sfo1")
    result = plan(hosts, counts(1), current_versions={"iad1": "2.4.1", "sfo1": "2.4.1"})
    assert result.waves == ()
    assert [skip.host.name for skip in result.skipped] == ["iad1", "sfo1"]


def test_plan_of_no_hosts_is_empty() -> None:
    assert plan((), counts(1)) == Plan(waves=(), skipped=())


def test_plan_rejects_duplicate_host_names() -> None:
    hosts = make_hosts("iad1 sfo1") + make_hosts("iad1")
    with pytest.raises(FleetError, match="'iad1' appears more than once"):
        plan(hosts, counts(1))


def test_wave_size_property() -> None:
    assert Wave(1, make_hosts("a1 a2")).size == 2


# Properties -----------------------------------------------------------------------------

count_entries = st.one_of(
    st.integers(0, 25).map(lambda n: Count(float(n))),
    st.integers(0, 100).map(lambda n: Count(float(n), percent=True)),
)


@st.composite
def fleets(draw: st.DrawFn, max_datacenters: int = 6, max_per_datacenter: int = 30) -> tuple[Host, ...]:
    """Hosts in 1-6 datacenters of uneven sizes, in a shuffled inventory order."""
    sizes = draw(st.lists(st.integers(1, max_per_datacenter), min_size=1, max_size=max_datacenters))
    hosts = [
        Host(name=f"dc{dc}-{i}", address=f"10.{dc}.0.{i}", datacenter=f"dc{dc}")
        for dc, size in enumerate(sizes)
        for i in range(size)
    ]
    return tuple(draw(st.permutations(hosts)))


@st.composite
def deployments(draw: st.DrawFn, *, with_failed: bool = True) -> dict[str, Any]:
    hosts = draw(fleets())
    names = [host.name for host in hosts]
    versions = draw(
        st.dictionaries(st.sampled_from(names), st.sampled_from(["2.0", "1.0"]), max_size=len(names))
    )
    failed = draw(st.frozensets(st.sampled_from(names))) if with_failed else frozenset()
    return {
        "hosts": hosts,
        "batch": draw(st.lists(count_entries, min_size=1, max_size=3)),
        "stripe": draw(st.booleans()),
        "version": "2.0",
        "current_versions": versions,
        "failed_hosts": failed,
        "force": draw(st.booleans()),
    }


def remaining_before_each_wave(
    plan_: Plan, hosts: Sequence[Host], group: frozenset[str] | None = None
) -> list[tuple[Wave, Counter[str], Counter[str]]]:
    """(wave, hosts left per datacenter before it, hosts it takes per datacenter), within ``group``."""
    in_group = [h for h in plan_.hosts if group is None or h.name in group]
    left = Counter(h.datacenter for h in in_group)
    rows = []
    for wave in plan_.waves:
        taken = Counter(h.datacenter for h in wave.hosts if group is None or h.name in group)
        rows.append((wave, +left, taken))
        left -= taken
    return rows


@PROPERTY_SETTINGS
@given(deployments())
def test_every_host_is_in_exactly_one_wave_or_skipped(case: dict[str, Any]) -> None:
    result = plan_waves(**case)
    placed = [h.name for h in result.hosts] + [s.host.name for s in result.skipped]
    assert sorted(placed) == sorted(h.name for h in case["hosts"])
    should_skip = {
        h.name
        for h in case["hosts"]
        if not case["force"]
        and case["current_versions"].get(h.name) == "2.0"
        and h.name not in case["failed_hosts"]
    }
    assert {s.host.name for s in result.skipped} == should_skip
    assert all(s.reason == "already runs 2.0" for s in result.skipped)


@PROPERTY_SETTINGS
@given(deployments())
def test_wave_sizes_follow_the_ramp(case: dict[str, Any]) -> None:
    result = plan_waves(**case)
    assert tuple(w.size for w in result.waves) == wave_sizes(case["batch"], result.host_count)
    assert [w.index for w in result.waves] == list(range(1, result.wave_count + 1))


@PROPERTY_SETTINGS
@given(deployments())
def test_failed_hosts_come_first_and_each_datacenter_keeps_inventory_order(
    case: dict[str, Any],
) -> None:
    result = plan_waves(**case)
    is_failed = [h.name in case["failed_hosts"] for h in result.hosts]
    assert is_failed == sorted(is_failed, reverse=True)  # every True before every False
    inventory = {h.name: i for i, h in enumerate(case["hosts"])}
    for failed in (True, False):
        group = [h for h, f in zip(result.hosts, is_failed, strict=True) if f is failed]
        for dc in {h.datacenter for h in group}:
            order = [inventory[h.name] for h in group if h.datacenter == dc]
            assert order == sorted(order)
    if not case["stripe"]:
        # Without striping: failed hosts, then the rest, each in inventory order.
        assert [inventory[h.name] for h in result.hosts[: sum(is_failed)]] == sorted(
            inventory[h.name] for h in result.hosts[: sum(is_failed)]
        )
        assert [inventory[h.name] for h in result.hosts[sum(is_failed) :]] == sorted(
            inventory[h.name] for h in result.hosts[sum(is_failed) :]
        )


@PROPERTY_SETTINGS
@given(deployments())
def test_each_datacenter_gives_within_one_host_of_its_share(case: dict[str, Any]) -> None:
    """Striped: in every wave each datacenter gives its exact share rounded down or up.

    The share of a wave's hosts from a group (failed hosts, or the rest) is
    size_from_group * dc_left / group_left. Without failed hosts the group is the
    whole plan; with them, each group is checked on its own.
    """
    case["stripe"] = True
    result = plan_waves(**case)
    planned = frozenset(h.name for h in result.hosts)
    failed = planned & case["failed_hosts"]
    for group in (failed, planned - failed):
        for _wave, left, taken in remaining_before_each_wave(result, case["hosts"], group):
            size, total_left = sum(taken.values()), sum(left.values())
            for dc in left.keys() | taken.keys():
                # |taken - size*left/total| < 1, in integers.
                assert abs(taken[dc] * total_left - size * left[dc]) < total_left


@st.composite
def growing_ramps_over_roomy_datacenters(draw: st.DrawFn) -> dict[str, Any]:
    """A ramp that never shrinks (canaries, then growing percents), over datacenters that
    each have at least as many hosts as there are waves, and no failed hosts."""
    percents = sorted(draw(st.lists(st.integers(10, 50), min_size=1, max_size=2)))
    # At most 2 canary waves, one wave per percent but the last, which repeats.
    most_waves = 2 + len(percents) - 1 + -(-100 // percents[-1])
    sizes = draw(st.lists(st.integers(most_waves, most_waves + 60), min_size=1, max_size=6))
    first_percent_wave = Count(float(percents[0]), percent=True).of(sum(sizes))
    canaries = sorted(draw(st.lists(st.integers(1, min(3, first_percent_wave)), max_size=2)))
    batch = [Count(float(n)) for n in canaries] + [Count(float(p), percent=True) for p in percents]
    hosts = tuple(
        Host(name=f"dc{dc}-{i}", address="10.0.0.1", datacenter=f"dc{dc}")
        for dc, size in enumerate(sizes)
        for i in range(size)
    )
    return {"hosts": hosts, "batch": batch}


@PROPERTY_SETTINGS
@given(growing_ramps_over_roomy_datacenters())
def test_datacenters_finish_within_one_wave_of_each_other(case: dict[str, Any]) -> None:
    """Datacenters finish together when they can: the ramp does not shrink and each datacenter
    has a host for every wave. (Without that it cannot hold: see the
    waves-smaller-than-datacenters example, where a wave of 1 host serves one datacenter.)"""
    result = plan(case["hosts"], case["batch"])
    body = [w.size for w in result.waves][:-1]
    assert body == sorted(body)  # the precondition, made by the strategy
    assert all(n >= result.wave_count for n in Counter(h.datacenter for h in case["hosts"]).values())
    finished_in = {h.datacenter: wave.index for wave in result.waves for h in wave.hosts}
    assert max(finished_in.values()) - min(finished_in.values()) <= 1


@PROPERTY_SETTINGS
@given(deployments(), st.randoms(use_true_random=False))
def test_same_input_same_plan(case: dict[str, Any], random: Any) -> None:
    first = plan_waves(**case)
    assert plan_waves(**case) == first
    # The same sets and mappings built in another order give the same plan.
    failed = list(case["failed_hosts"])
    random.shuffle(failed)
    versions = list(case["current_versions"].items())
    random.shuffle(versions)
    reordered = dict(case, failed_hosts=set(failed), current_versions=dict(versions))
    assert plan_waves(**reordered) == first
