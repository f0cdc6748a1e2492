"""Gates judged: what a check's answer means, as plain data (pure; no I/O, no clock).

The controller runs a gate's check (:mod:`deployer.rollout.gate_checks`: a local command or an
HTTP request) and hands the answer here; the verdict goes into the rollout state,
where a failing one makes :func:`~deployer.core.decide.decide` halt.

Worked example: a Prometheus query answers
``{"data": {"result": [{"value": [1717000000, "0.034"]}]}}``. The field path
``data.result.0.value.1`` reads ``"0.034"`` (keys, list indexes and numeric strings
all work); with ``max: 0.01`` the gate fails with "data.result.0.value.1 0.034 > max
0.01". An empty ``result`` list fails too, saying the query returned nothing.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from deployer.core.spec import Gate, GateWhen

_SHOWN = 200  # characters of an answer quoted in a verdict


@dataclass(frozen=True, slots=True)
class GateVerdict:
    """One check of one gate: passed or not, and what it saw, in a sentence."""

    name: str
    passed: bool
    message: str  # "HTTP 200", "data.value 0.034 > max 0.01", "timed out after 2s"
    at: datetime

    @property
    def reason(self) -> str:
        """The halt reason when it failed: ``gate error-rate: data.value 0.034 > max 0.01``."""
        return f"gate {self.name}: {self.message}"


def gates_when(gates: tuple[Gate, ...], when: GateWhen) -> tuple[Gate, ...]:
    return tuple(gate for gate in gates if gate.when is when)


def judge_command(exit_status: int, output: str) -> tuple[bool, str]:
    """A command gate passes on exit 0; otherwise its status and last output line say why."""
    if exit_status == 0:
        return True, "exit 0"
    last = next((line.strip() for line in reversed(output.splitlines()) if line.strip()), "")
    said = f": {last[:_SHOWN]}" if last else ""
    return False, f"exit {exit_status}{said}"


def judge_http(gate: Gate, status: int, body: bytes) -> tuple[bool, str]:
    """An http gate passes on its expected status and, with ``field``, a value within min/max."""
    if status != gate.status:
        return False, f"HTTP {status}, expected {gate.status}"
    if gate.field is None:
        return True, f"HTTP {status}"
    try:
        document = json.loads(body)
    except ValueError:
        return False, f"the answer is not JSON: {body[:_SHOWN].decode('utf-8', 'replace')!r}"
    try:
        found = field_value(document, gate.field)
    except LookupError as error:
        return False, str(error)
    value = _number(found)
    if value is None:
        return False, f"{gate.field} is {json.dumps(found)[:_SHOWN]}, not a number"
    if gate.max is not None and value > gate.max:
        return False, f"{gate.field} {_show(value)} > max {_show(gate.max)}"
    if gate.min is not None and value < gate.min:
        return False, f"{gate.field} {_show(value)} < min {_show(gate.min)}"
    return True, f"{gate.field} {_show(value)}"


def field_value(document: Any, path: str) -> Any:
    """The value at a dotted ``path``: keys of objects, indexes of lists (``data.result.0``).

    Raises LookupError saying where the path stopped; an empty list says the query
    returned nothing (Prometheus' answer when no series matches).
    """
    here = document
    walked: list[str] = []
    for part in path.split("."):
        if isinstance(here, dict):
            if part not in here:
                raise LookupError(f"{_where(walked)} has no key {part!r}")
            here = here[part]
        elif isinstance(here, list):
            if not here:
                raise LookupError(f"{_where(walked)} is empty: the query returned no result")
            if not part.isdigit():
                raise LookupError(f"{_where(walked)} is a list; {part!r} is not an index")
            if int(part) >= len(here):
                raise LookupError(f"{_where(walked)} has {len(here)} items, no index {part}")
            here = here[int(part)]
        else:
            raise LookupError(f"{_where(walked)} is {json.dumps(here)[:_SHOWN]}, it has no {part!r}")
        walked.append(part)
    if here is None or here == [] or here == {}:
        raise LookupError(f"{path} is empty: the query returned no result")
    return here


def _where(walked: list[str]) -> str:
    return ".".join(walked) if walked else "the answer"


def _number(value: Any) -> float | None:
    """A JSON number, or a string holding one (Prometheus writes values as strings)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        number = float(value)
    elif isinstance(value, str):
        try:
            number = float(value)
        except ValueError:
            return None
    else:
        return None
    return None if math.isnan(number) else number


def _show(value: float) -> str:
    return f"{value:g}"
