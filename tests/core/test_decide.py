"""The decide step, by tables: how a deployment ends, why it stops, whether it rolls back."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest

from deployer.core.decide import Control, Decision, RolloutState, StopCause, StopReason, decide
from deployer.core.results import DeploymentStatus, HostStatus

NOW = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)
OVER_BUDGET = "3 hosts failed, more than the 2 allowed"
KEPT = "; 4 hosts were not touched and keep their version"  # the final reason's end: wave 3's hosts
HALT = Decision(outcome=DeploymentStatus.HALTED, stop=StopReason.BUDGET, description=OVER_BUDGET + KEPT)
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
    stop: StopCause | None = None,
    gate_failure: str | None = None,
    rollback_on_halt: bool = False,
    restart: bool = False,
) -> RolloutState:
    return RolloutState(
        waves=tuple(tuple(w) for w in waves),
        statuses=statuses,
        failure_budget=budget,
        bake=0,
        control=control,
        budget_exempt=exempt,
        stop=stop,
        gate_failure=gate_failure,
        rollback_on_halt=rollback_on_halt,
        restart=restart,
    )


@pytest.mark.parametrize(
    ("statuses", "budget", "outcome", "reason"),
    [
        # Every host done, one succeeded: a success, failures within the budget reported.
        ({"a": S, "b": F}, 5, DeploymentStatus.SUCCEEDED, "1 host updated, 1 failed (within the 5 allowed)"),
        # The repro: 2 hosts, budget 5, both failed: no success, so FAILED.
        ({"a": F, "b": F}, 5, DeploymentStatus.FAILED, "no host updated: 2 hosts failed"),
        ({"a": U, "b": F}, 2, DeploymentStatus.FAILED, "no host updated: 2 hosts failed"),
        ({"a": S, "b": S}, 0, DeploymentStatus.SUCCEEDED, "2 hosts updated"),
        # Over the budget with nothing in flight: halted, success or not.
        ({"a": F, "b": F}, 1, DeploymentStatus.HALTED, "2 hosts failed, more than the 1 allowed"),
        ({"a": S, "b": F}, 0, DeploymentStatus.HALTED, "1 host failed, more than the 0 allowed"),
    ],
)
def test_how_a_deployment_ends(
    statuses: dict[str, HostStatus], budget: int, outcome: DeploymentStatus, reason: str
) -> None:
    decision = decide(state([list(statuses)], statuses, budget), NOW)
    assert (decision.outcome, decision.description) == (outcome, reason)


def test_a_restart_says_its_hosts_were_restarted() -> None:
    statuses = {"a": S, "b": F}
    decision = decide(state([list(statuses)], statuses, 1, restart=True), NOW)
    assert decision.description == "1 host restarted, 1 failed (within the 1 allowed)"


# decide's docstring example: 12 hosts in 3 waves of 4, budget 2.
WAVES = [[f"h{w}{i}" for i in range(4)] for w in (1, 2, 3)]


def example(**changed: HostStatus) -> dict[str, HostStatus]:
    """The example after waves 1 (h10 failed) and 2 (all succeeded), wave 3 not started; then ``changed``."""
    statuses = {name: S for name in WAVES[0] + WAVES[1]} | {name: P for name in WAVES[2]}
    return statuses | {"h10": F} | changed


def test_the_docstring_example_halts_before_wave_three() -> None:
    # Wave 1 ends with 1 failure, wave 2 loses 2 more: 3 > 2.
    statuses = example(h20=F, h21=F)
    assert decide(state(WAVES, statuses, 2), NOW) == HALT
    statuses["h22"] = R  # one still in flight: nothing starts, nothing ends yet
    assert decide(state(WAVES, statuses, 2), NOW) == Decision(stop=StopReason.BUDGET, description=OVER_BUDGET)


GATE = "gate error-rate: 7.0 > 5"
ABORTED, HALTED, SUCCEEDED = DeploymentStatus.ABORTED, DeploymentStatus.HALTED, DeploymentStatus.SUCCEEDED


@pytest.mark.parametrize(
    ("statuses", "asked", "expected"),
    [
        # Nothing stops it: wave 3 starts.
        (example(), {}, Decision(start=tuple(WAVES[2]), wave=3)),
        # Over the budget (3 > 2): a halt, once wave 2's last host is done.
        (example(h20=F, h21=F), {}, HALT),
        (example(h20=F, h21=F, h22=R), {}, Decision(stop=StopReason.BUDGET, description=OVER_BUDGET)),
        # A failed gate halts.
        (
            example(),
            {"gate_failure": GATE},
            Decision(outcome=HALTED, stop=StopReason.GATE, description=GATE + KEPT),
        ),
        (example(h23=R), {"gate_failure": GATE}, Decision(stop=StopReason.GATE, description=GATE)),
        # The operator's abort ends it aborted, whatever succeeded.
        (
            example(),
            {"control": Control.ABORT},
            Decision(outcome=ABORTED, stop=StopReason.ABORT, description="aborted by the operator" + KEPT),
        ),
        (
            example(h22=R),
            {"control": Control.ABORT},
            Decision(stop=StopReason.ABORT, description="aborted by the operator"),
        ),
        # A graceful stop while wave 3 is left to start: an abort, with the cause's sentence.
        (
            example(),
            {"stop": StopCause.SIGINT},
            Decision(
                outcome=ABORTED, stop=StopReason.SIGNAL, description="interrupted by Ctrl-C (SIGINT)" + KEPT
            ),
        ),
        (
            example(h30=R, h31=R),
            {"stop": StopCause.SIGTERM},
            Decision(stop=StopReason.SIGNAL, description="stopped by SIGTERM"),
        ),
        (
            example(),
            {"stop": StopCause.DEADLINE},
            Decision(outcome=ABORTED, stop=StopReason.DEADLINE, description="the deadline passed" + KEPT),
        ),
        (
            example(),
            {"stop": StopCause.REQUESTED},
            Decision(
                outcome=ABORTED,
                stop=StopReason.REQUESTED,
                description="the controller was asked to stop" + KEPT,
            ),
        ),
        # ... even while paused.
        (
            example(),
            {"stop": StopCause.SIGTERM, "control": Control.PAUSE},
            Decision(outcome=ABORTED, stop=StopReason.SIGNAL, description="stopped by SIGTERM" + KEPT),
        ),
        # Every host started: nothing is left to stop, the hosts in flight run to their end.
        (example(h30=R, h31=R, h32=R, h33=R), {"stop": StopCause.SIGINT}, Decision(wave=3)),
        (
            example(h30=S, h31=S, h32=S, h33=S),
            {"stop": StopCause.SIGINT},
            Decision(outcome=SUCCEEDED, description="11 hosts updated, 1 failed (within the 2 allowed)"),
        ),
        # Precedence: the operator's abort, then the budget, then a graceful stop, then a gate.
        (
            example(h20=F, h21=F),
            {"control": Control.ABORT, "stop": StopCause.SIGINT, "gate_failure": GATE},
            Decision(outcome=ABORTED, stop=StopReason.ABORT, description="aborted by the operator" + KEPT),
        ),
        (example(h20=F, h21=F), {"stop": StopCause.SIGINT, "gate_failure": GATE}, HALT),
        (
            example(),
            {"stop": StopCause.SIGINT, "gate_failure": GATE},
            Decision(
                outcome=ABORTED, stop=StopReason.SIGNAL, description="interrupted by Ctrl-C (SIGINT)" + KEPT
            ),
        ),
        # Every host started and a gate failed meanwhile: the gate's halt.
        (
            example(h30=S, h31=S, h32=S, h33=S),
            {"stop": StopCause.SIGINT, "gate_failure": GATE},
            Decision(outcome=HALTED, stop=StopReason.GATE, description=GATE),
        ),
    ],
)
def test_why_the_docstring_example_stops(
    statuses: dict[str, HostStatus], asked: dict[str, Any], expected: Decision
) -> None:
    assert decide(state(WAVES, statuses, 2, **asked), NOW) == expected


@pytest.mark.parametrize(
    ("statuses", "asked", "rollback"),
    [
        # on_halt: rollback undoes a halt, whichever it was, in flight or over ...
        (example(h20=F, h21=F), {}, True),
        (example(h20=F, h21=F, h22=R), {}, True),
        (example(), {"gate_failure": GATE}, True),
        # ... but not an abort, a graceful stop, nor a deployment that carries on or ends otherwise.
        (example(), {"control": Control.ABORT}, False),
        (example(), {"stop": StopCause.SIGTERM}, False),
        (example(), {"stop": StopCause.DEADLINE}, False),
        (example(), {}, False),
        (example(h30=S, h31=S, h32=S, h33=S), {}, False),
        (example(h30=F, h31=S, h32=S, h33=S), {}, False),  # 2 failed: within the budget
    ],
)
def test_which_decisions_roll_back(
    statuses: dict[str, HostStatus], asked: dict[str, Any], rollback: bool
) -> None:
    with_rollback = decide(state(WAVES, statuses, 2, rollback_on_halt=True, **asked), NOW)
    assert with_rollback.rollback is rollback
    without = decide(state(WAVES, statuses, 2, **asked), NOW)
    assert not without.rollback
    assert without == replace(with_rollback, rollback=False)  # the flag changes nothing else


@pytest.mark.parametrize(
    ("statuses", "exempt", "outcome", "stop", "start"),
    [
        # A rollback: a and b failed the deployment it undoes; their failing again is not counted.
        ({"a": F, "b": F, "c": S, "d": P}, frozenset({"a", "b"}), None, None, ("d",)),
        ({"a": F, "b": F, "c": S, "d": S}, frozenset({"a", "b"}), DeploymentStatus.SUCCEEDED, None, ()),
        # A healthy host failing still counts: budget 0, c fails, so the rollback halts.
        ({"a": F, "b": S, "c": F, "d": P}, frozenset({"a"}), DeploymentStatus.HALTED, StopReason.BUDGET, ()),
        # Without the exemption the same failures halt it.
        ({"a": F, "b": F, "c": S, "d": P}, frozenset(), DeploymentStatus.HALTED, StopReason.BUDGET, ()),
    ],
)
def test_known_bad_hosts_do_not_spend_the_budget(
    statuses: dict[str, HostStatus],
    exempt: frozenset[str],
    outcome: DeploymentStatus | None,
    stop: StopReason | None,
    start: tuple[str, ...],
) -> None:
    decision = decide(state([list(statuses)], statuses, 0, exempt=exempt), NOW)
    assert (decision.outcome, decision.stop, decision.start) == (outcome, stop, start)
