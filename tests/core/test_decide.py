"""The decide step, by tables: how a deployment ends, and whose failures count."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from deployer.decide import Control, Decision, RolloutState, decide
from deployer.results import DeploymentStatus, HostStatus

NOW = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)
HALT = Decision(outcome=DeploymentStatus.HALTED, halting=True)
DONE = Decision(outcome=DeploymentStatus.SUCCEEDED)
S, F, P, R, U = (
    HostStatus.SUCCEEDED,
    HostStatus.FAILED,
    HostStatus.PENDING,
    HostStatus.RUNNING,
    HostStatus.UNREACHABLE,
)


def state(
    waves: list[list[str]],
    statuses: dict[str, HostStatus],
    budget: int,
    *,
    exempt: frozenset[str] = frozenset(),
    control: Control = Control.RUN,
) -> RolloutState:
    return RolloutState(
        waves=tuple(tuple(w) for w in waves),
        statuses=statuses,
        failure_budget=budget,
        bake=0,
        control=control,
        budget_exempt=exempt,
    )


@pytest.mark.parametrize(
    ("statuses", "budget", "outcome"),
    [
        # Every host done, one succeeded: a success, failures within the budget reported.
        ({"a": S, "b": F}, 5, DeploymentStatus.SUCCEEDED),
        # The repro: 2 hosts, budget 5, both failed: no success, so FAILED.
        ({"a": F, "b": F}, 5, DeploymentStatus.FAILED),
        ({"a": U, "b": F}, 2, DeploymentStatus.FAILED),
        ({"a": S, "b": S}, 0, DeploymentStatus.SUCCEEDED),
        # Over the budget with nothing in flight: halted, success or not.
        ({"a": F, "b": F}, 1, DeploymentStatus.HALTED),
        ({"a": S, "b": F}, 0, DeploymentStatus.HALTED),
    ],
)
def test_how_a_deployment_ends(
    statuses: dict[str, HostStatus], budget: int, outcome: DeploymentStatus
) -> None:
    assert decide(state([list(statuses)], statuses, budget), NOW).outcome is outcome


def test_the_docstring_example_halts_before_wave_three() -> None:
    # 12 hosts in 3 waves of 4, budget 2: wave 1 ends with 1 failure, wave 2 loses 2 more.
    waves = [[f"h{w}{i}" for i in range(4)] for w in (1, 2, 3)]
    statuses = {name: S for name in waves[0] + waves[1]} | {name: P for name in waves[2]}
    statuses |= {"h10": F, "h20": F, "h21": F}
    decision = decide(state(waves, statuses, 2), NOW)
    assert decision == HALT
    statuses["h22"] = R  # one still in flight: nothing starts, nothing ends yet
    assert decide(state(waves, statuses, 2), NOW) == Decision(halting=True)


@pytest.mark.parametrize(
    ("statuses", "exempt", "expected"),
    [
        # A rollback: a and b failed the deployment it undoes; their failing again is not counted.
        ({"a": F, "b": F, "c": S, "d": P}, frozenset({"a", "b"}), Decision(start=("d",), wave=1)),
        (
            {"a": F, "b": F, "c": S, "d": S},
            frozenset({"a", "b"}),
            Decision(outcome=DeploymentStatus.SUCCEEDED),
        ),
        # A healthy host failing still counts: budget 0, c fails, so the rollback halts.
        (
            {"a": F, "b": S, "c": F, "d": P},
            frozenset({"a"}),
            Decision(outcome=DeploymentStatus.HALTED, halting=True),
        ),
        # Without the exemption the same failures halt it.
        (
            {"a": F, "b": F, "c": S, "d": P},
            frozenset(),
            Decision(outcome=DeploymentStatus.HALTED, halting=True),
        ),
    ],
)
def test_known_bad_hosts_do_not_spend_the_budget(
    statuses: dict[str, HostStatus], exempt: frozenset[str], expected: Decision
) -> None:
    assert decide(state([list(statuses)], statuses, 0, exempt=exempt), NOW) == expected


def test_an_abort_with_no_host_in_flight_ends_aborted_whatever_succeeded() -> None:
    statuses = {"a": S, "b": P}
    decision = decide(state([["a"], ["b"]], statuses, 1, control=Control.ABORT), NOW)
    assert decision == Decision(outcome=DeploymentStatus.ABORTED, halting=True)
