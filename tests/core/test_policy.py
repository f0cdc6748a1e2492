"""The failure policy: the docstrings' examples as tables."""

from __future__ import annotations

from typing import Any

import pytest

from deployer.core.policy import failure_budget, may_start_count, rollback_groups, should_halt
from deployer.core.quantities import Count


@pytest.mark.parametrize(
    ("max_failures", "host_count", "budget"),
    [
        ("5%", 100, 5),  # the 6th failure halts
        ("5%", 30, 1),  # 1.5 rounded down
        ("5%", 10, 0),  # 0.5 rounded down: the first failure halts
        ("7%", 100, 7),  # 7.000000000000001 in floats, still 7
        ("10%", 25, 2),  # 2.5 rounded down
        ("100%", 8, 8),  # never halts: every host may fail
        ("0%", 50, 0),
        (2, 1000, 2),  # a count is the same whatever the fleet size
        (2, 1, 2),
        (0, 10, 0),
        ("50%", 0, 0),
    ],
)
def test_failure_budget(max_failures: str | int, host_count: int, budget: int) -> None:
    assert failure_budget(Count.parse(max_failures), host_count) == budget


def test_failure_budget_rejects_a_negative_host_count() -> None:
    with pytest.raises(ValueError, match="cannot have -1 hosts"):
        failure_budget(Count.parse("5%"), -1)


@pytest.mark.parametrize(
    ("failed_count", "budget", "halt"),
    [(0, 0, False), (1, 0, True), (2, 2, False), (3, 2, True), (5, 5, False), (6, 5, True)],
)
def test_should_halt(failed_count: int, budget: int, halt: bool) -> None:
    assert should_halt(failed_count, budget) is halt


def test_budget_and_halt_together_across_waves() -> None:
    """5% of 100 hosts: failures add up over the whole deployment, not per wave."""
    budget = failure_budget(Count.parse("5%"), 100)
    failures_per_wave = [2, 0, 3, 1]
    failed_so_far = 0
    halted_after = None
    for wave, failures in enumerate(failures_per_wave, start=1):
        failed_so_far += failures
        if should_halt(failed_so_far, budget):
            halted_after = wave
            break
    assert halted_after == 4  # 2 + 0 + 3 = 5 is tolerated; the 6th failure, in wave 4, halts


@pytest.mark.parametrize(
    ("kwargs", "may_start"),
    [
        # The docstring's example: a wave of 10, max_parallel 3, 2 running, 6 not started.
        ({"wave_size": 10, "pending_count": 6, "in_flight_count": 2, "max_parallel": 3}, 1),
        ({"wave_size": 10, "pending_count": 6, "in_flight_count": 2}, 6),  # default: the wave
        ({"wave_size": 10, "pending_count": 10, "in_flight_count": 0}, 10),
        ({"wave_size": 10, "pending_count": 10, "in_flight_count": 0, "max_parallel": 4}, 4),
        ({"wave_size": 10, "pending_count": 2, "in_flight_count": 0, "max_parallel": 4}, 2),
        ({"wave_size": 10, "pending_count": 5, "in_flight_count": 4, "max_parallel": 4}, 0),
        # A lowered max_parallel with more already running: none start, none are stopped.
        ({"wave_size": 10, "pending_count": 5, "in_flight_count": 5, "max_parallel": 2}, 0),
        ({"wave_size": 3, "pending_count": 3, "in_flight_count": 0, "max_parallel": 8}, 3),
        ({"wave_size": 10, "pending_count": 0, "in_flight_count": 3}, 0),
    ],
)
def test_may_start_count(kwargs: dict[str, Any], may_start: int) -> None:
    assert may_start_count(**kwargs) == may_start


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"wave_size": 10, "pending_count": -1, "in_flight_count": 0}, "cannot be negative"),
        ({"wave_size": 10, "pending_count": 1, "in_flight_count": -2}, "cannot be negative"),
        ({"wave_size": 10, "pending_count": 1, "in_flight_count": 0, "max_parallel": 0}, "at least 1"),
    ],
)
def test_may_start_count_rejects_impossible_counts(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        may_start_count(**kwargs)


def test_rollback_groups_send_each_host_back_to_what_it_ran() -> None:
    # The docstring's example: a push of 1.6 that halted.
    switches = {  # host -> (the version it was left on, the one it ran before)
        "web1": ("1.6", "1.5"),
        "web2": ("1.6", "1.5"),  # failed after its switch: goes back too
        "web3": ("1.6", "1.3"),  # not to 1.5, what most hosts ran
        "web4": ("1.6", None),  # its first deployment: nothing to go back to
        "web5": ("1.5", "1.5"),  # failed before its switch: untouched
        "web6": (None, None),  # unreachable: not known to have switched
    }
    groups = rollback_groups(switches)
    assert dict(groups.by_version) == {"1.5": ("web1", "web2"), "1.3": ("web3",)}
    assert list(groups.by_version) == ["1.5", "1.3"]  # largest group first
    assert groups.first_deployment == ("web4",)
