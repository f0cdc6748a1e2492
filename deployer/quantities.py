"""Durations (``30s``, ``5m``) and counts (``3``, ``10%``) as written in specs.

Pure parsing, no I/O: both the spec validator and the CLI use these.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def parse_duration(text: str | int | float) -> float:
    """Seconds in a duration: ``90`` and ``"90s"`` are 90.0, ``"5m"`` is 300.0, ``"250ms"`` 0.25.

    A bare number means seconds. Raises ValueError with the accepted forms.
    """
    if isinstance(text, bool):
        raise ValueError("expected a duration such as 30s, 5m, 1h or 250ms")
    if isinstance(text, int | float):
        if text < 0 or not math.isfinite(text):
            raise ValueError("a duration cannot be negative")
        return float(text)
    match = _DURATION.match(text)
    if match is None:
        raise ValueError(f"{text!r} is not a duration; expected a number with ms, s, m, h or d, e.g. 30s")
    return float(match.group(1)) * _UNIT_SECONDS[match.group(2) or "s"]


@dataclass(frozen=True, slots=True)
class Count:
    """A number of hosts, either absolute (``3``) or a percent of a total (``10%``)."""

    value: float
    percent: bool = False

    @classmethod
    def parse(cls, text: str | int) -> Count:
        """``3`` → Count(3); ``"10%"`` → Count(10, percent=True). Raises ValueError."""
        if isinstance(text, bool):
            raise ValueError("expected a count such as 3 or a percent such as 10%")
        if isinstance(text, int):
            if text < 0:
                raise ValueError("a count cannot be negative")
            return cls(float(text))
        stripped = text.strip()
        if stripped.endswith("%"):
            number = stripped[:-1].strip()
            try:
                value = float(number)
            except ValueError:
                raise ValueError(f"{text!r} is not a percent; expected e.g. 10%") from None
            if not 0 <= value <= 100:
                raise ValueError(f"{text!r} is not between 0% and 100%")
            return cls(value, percent=True)
        if stripped.isdigit():
            return cls(float(int(stripped)))
        raise ValueError(
            f"{text!r} is not a count; expected a whole number such as 3 or a percent such as 10%"
        )

    def of(self, total: int) -> int:
        """This count out of ``total`` hosts, percents rounded up: 10% of 25 is 3."""
        if not self.percent:
            return int(self.value)
        # Round up, but not past the total; guard float noise (10% of 100 is exactly 10).
        return min(total, math.ceil(round(self.value * total / 100, 9)))

    def __str__(self) -> str:
        if self.percent:
            return f"{self.value:g}%"
        return str(int(self.value))
