"""Gates judged and decided, by tables: what an answer means, and what decide does with it."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from deployer.core.decide import Decision, GatePlan, RolloutState, StopReason, decide
from deployer.core.gates import field_value, judge_command, judge_http
from deployer.core.results import DeploymentStatus, HostStatus
from deployer.core.spec import Gate, GateWhen

NOW = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)
S, P, R = HostStatus.SUCCEEDED, HostStatus.PENDING, HostStatus.RUNNING
PROMETHEUS = {"status": "success", "data": {"resultType": "vector", "result": [{"value": [1717, "0.034"]}]}}


def http_gate(**fields: Any) -> Gate:
    return Gate(name="error-rate", type="http", when=GateWhen.AFTER_WAVE, timeout=5, interval=30, **fields)


@pytest.mark.parametrize(
    ("document", "path", "value"),
    [
        (PROMETHEUS, "data.result.0.value.1", "0.034"),
        ({"data": {"value": 0.5}}, "data.value", 0.5),
        ({"a": [[1, 2], [3, 4]]}, "a.1.0", 3),
        ({"1": {"x": True}}, "1.x", True),  # a numeric string is a key of an object
    ],
)
def test_field_paths_read_keys_indexes_and_numeric_keys(document: Any, path: str, value: Any) -> None:
    assert field_value(document, path) == value


@pytest.mark.parametrize(
    ("document", "path", "message"),
    [
        (
            {"data": {"result": []}},
            "data.result.0.value.1",
            "data.result is empty: the query returned no result",
        ),
        ({"data": {}}, "data.value", "data has no key 'value'"),
        ({"a": [1]}, "a.3", "a has 1 items, no index 3"),
        ({"a": [1]}, "a.x", "a is a list; 'x' is not an index"),
        ({"a": 1}, "a.b", "a is 1, it has no 'b'"),
        ({"a": None}, "a", "a is empty"),
    ],
)
def test_a_field_path_that_finds_nothing_says_where_it_stopped(
    document: Any, path: str, message: str
) -> None:
    with pytest.raises(LookupError, match=message):
        field_value(document, path)


@pytest.mark.parametrize(
    ("gate", "status", "body", "verdict"),
    [
        (http_gate(), 200, b"", (True, "HTTP 200")),
        (http_gate(), 503, b"", (False, "HTTP 503, expected 200")),
        (http_gate(status=204), 204, b"", (True, "HTTP 204")),
        (
            http_gate(field="data.result.0.value.1", max=0.01),
            200,
            json.dumps(PROMETHEUS).encode(),
            (False, "data.result.0.value.1 0.034 > max 0.01"),
        ),
        (
            http_gate(field="data.result.0.value.1", max=0.05),
            200,
            json.dumps(PROMETHEUS).encode(),
            (True, "data.result.0.value.1 0.034"),
        ),
        (http_gate(field="up", min=1), 200, b'{"up": 0}', (False, "up 0 < min 1")),
        (http_gate(field="up", min=1), 200, b'{"up": "yes"}', (False, 'up is "yes", not a number')),
        (http_gate(field="up", min=1), 200, b"<html>", (False, "the answer is not JSON: '<html>'")),
        (
            http_gate(field="data.result.0.value.1", max=1),
            200,
            b'{"data": {"result": []}}',
            (False, "data.result is empty: the query returned no result"),
        ),
    ],
)
def test_what_an_http_answer_means(gate: Gate, status: int, body: bytes, verdict: tuple[bool, str]) -> None:
    assert judge_http(gate, status, body) == verdict


def test_a_command_gate_fails_on_a_non_zero_exit_with_its_last_line() -> None:
    assert judge_command(0, "") == (True, "exit 0")
    assert judge_command(2, "checking\nerror budget spent\n\n") == (False, "exit 2: error budget spent")


def gated(
    statuses: dict[str, HostStatus],
    *,
    gates: GatePlan,
    gated: frozenset[int] = frozenset(),
    failure: str | None = None,
    bake: float = 0,
    finished: dict[int, datetime] | None = None,
) -> RolloutState:
    return RolloutState(
        waves=(("a",), ("b",)),
        statuses=statuses,
        failure_budget=0,
        bake=bake,
        wave_finished_at=finished or {},
        gates=gates,
        gated=gated,
        gate_failure=failure,
    )


AFTER = GatePlan(after_wave=True)
BAKE = GatePlan(bake=True)


@pytest.mark.parametrize(
    ("state", "decision"),
    [
        # before gates are checked before wave 1 starts, and then it starts
        (gated({"a": P, "b": P}, gates=GatePlan(before=True)), Decision(wave=1, check_gates=0)),
        (
            gated({"a": P, "b": P}, gates=GatePlan(before=True), gated=frozenset({0})),
            Decision(start=("a",), wave=1),
        ),
        # after wave 1: its gates before wave 2
        (gated({"a": S, "b": P}, gates=AFTER), Decision(wave=2, check_gates=1)),
        (gated({"a": S, "b": P}, gates=AFTER, gated=frozenset({1})), Decision(start=("b",), wave=2)),
        # ... after its bake
        (
            gated({"a": S, "b": P}, gates=AFTER, bake=60, finished={1: NOW - timedelta(seconds=10)}),
            Decision(wave=2, wait_until=NOW + timedelta(seconds=50)),
        ),
        # after the last wave too (its bake first), before the deployment ends
        (gated({"a": S, "b": S}, gates=AFTER, gated=frozenset({1})), Decision(wave=3, check_gates=2)),
        (
            gated({"a": S, "b": S}, gates=AFTER, gated=frozenset({1}), bake=60, finished={2: NOW}),
            Decision(wave=3, wait_until=NOW + timedelta(seconds=60)),
        ),
        (
            gated({"a": S, "b": S}, gates=BAKE, bake=60, finished={2: NOW}),
            Decision(wave=3, wait_until=NOW + timedelta(seconds=60)),
        ),
        (
            gated({"a": S, "b": S}, gates=AFTER, gated=frozenset({1, 2})),
            Decision(outcome=DeploymentStatus.SUCCEEDED, description="2 hosts updated"),
        ),
        # a failing gate halts: nothing starts; once nothing runs, halted
        (
            gated({"a": S, "b": P}, gates=AFTER, failure="gate x: HTTP 500"),
            Decision(
                outcome=DeploymentStatus.HALTED,
                stop=StopReason.GATE,
                description="gate x: HTTP 500; 1 host was not touched and keeps its version",
            ),
        ),
        (
            gated({"a": R, "b": P}, gates=BAKE, failure="gate x: HTTP 500"),
            Decision(outcome=None, stop=StopReason.GATE, description="gate x: HTTP 500"),
        ),
        # no gates: as before
        (
            gated({"a": S, "b": S}, gates=GatePlan()),
            Decision(outcome=DeploymentStatus.SUCCEEDED, description="2 hosts updated"),
        ),
    ],
)
def test_decide_waits_for_gates_and_halts_on_a_failing_one(state: RolloutState, decision: Decision) -> None:
    assert decide(state, NOW) == decision
