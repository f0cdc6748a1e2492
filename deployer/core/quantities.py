"""Durations (``30s``, ``1h30m``) and counts (``3``, ``10%``) as people write them.

Pure parsing, no I/O: both the spec validator and the CLI use these.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

# One grammar for every duration a person writes: a spec's timeouts and pauses,
# `sync --interval`, and the spans of `--at 3h ago` (deployer.core.timeexpr). A duration is
# one or more parts, each a number and a unit, which add up (`1h30m`, `1d 2h`,
# `30 secs`); a bare number is seconds where the caller allows it. `m` is minutes:
# months and years are refused, as their length depends on the calendar.
_UNIT_NAMES: tuple[tuple[tuple[str, ...], float], ...] = (
    (("ms", "msec", "msecs", "millisecond", "milliseconds"), 0.001),
    (("s", "sec", "secs", "second", "seconds"), 1.0),
    (("m", "min", "mins", "minute", "minutes"), 60.0),
    (("h", "hr", "hrs", "hour", "hours"), 3600.0),
    (("d", "day", "days"), 86400.0),
    (("w", "wk", "wks", "week", "weeks"), 7 * 86400.0),
)
UNIT_SECONDS: dict[str, float] = {name: seconds for names, seconds in _UNIT_NAMES for name in names}
_CALENDAR_UNITS = frozenset(["mo", "mon", "month", "months", "y", "yr", "yrs", "year", "years"])

_NUMBER = r"[0-9]+(?:\.[0-9]+)?"  # ASCII digits, as \d means in JSON Schema's regular expressions
# Longest names first, so that `ms` is not read as `m` then a stray `s`.
_UNIT = "|".join(sorted(UNIT_SECONDS, key=lambda name: (-len(name), name)))
DURATION_PATTERN = rf"^\s*(?:{_NUMBER}|(?:{_NUMBER}\s*(?:{_UNIT})\s*)+)\s*$"
"""The whole grammar as one regular expression; docs/spec.schema.json carries it too."""

_DURATION = re.compile(DURATION_PATTERN)
_BARE_NUMBER = re.compile(rf"^\s*{_NUMBER}\s*$")
_PART = re.compile(rf"({_NUMBER})\s*([a-z]+)")
SPAN_SHAPE = re.compile(rf"^\s*(?:{_NUMBER}\s*[a-z]+\s*)+$")
"""Parts of a number and a word, whatever the words: a duration, or a mistake in units."""

DURATION_FORMS = "a number with a unit, e.g. 250ms, 30s, 5m, 1h30m, 2 days or 1w"
UNITS = "ms, s, m, h, d or w"


def parse_duration(text: str | int | float, *, bare_seconds: bool = True) -> float:
    """Seconds in a duration: ``90`` and ``"90s"`` are 90.0, ``"1h30m"`` 5400.0, ``"250ms"`` 0.25.

    Units (each also by its long names: ``secs``, ``minutes``, ``2 days``...): ms, s,
    m (minutes), h, d, w; parts add up. A bare number means seconds unless
    ``bare_seconds`` is False. Raises ValueError saying what is accepted.

    >>> parse_duration("1h 30m")
    5400.0
    >>> parse_duration("30 secs")
    30.0
    """
    if isinstance(text, bool):
        raise ValueError(f"expected a duration: {DURATION_FORMS}")
    if isinstance(text, int | float):
        if text < 0 or not math.isfinite(text):
            raise ValueError("a duration cannot be negative")
        return float(text)
    if _BARE_NUMBER.match(text):
        if not bare_seconds:
            raise ValueError(f"{text!r} has no unit; write {text.strip()}s, {text.strip()}m...")
        return float(text)
    if _DURATION.match(text) is None:
        if SPAN_SHAPE.match(text):
            for _number, unit in _PART.findall(text):
                if unit in _CALENDAR_UNITS:
                    raise ValueError("months and years vary in length; use days or weeks (e.g. 30d, 52w)")
                if unit not in UNIT_SECONDS:
                    raise ValueError(f"unknown unit {unit!r}; use {UNITS}")
        raise ValueError(f"{text!r} is not a duration; expected {DURATION_FORMS}")
    return sum(float(number) * UNIT_SECONDS[unit] for number, unit in _PART.findall(text))


# Counts as text, in the same words for Count.parse and the JSON Schema (ASCII digits,
# no exponent or underscores, which float() would take): a whole number, or a percent
# between 0% and 100%. A wave's size must also be above zero.
_WHOLE = re.compile("[0-9]+")
_DECIMAL = re.compile(_NUMBER)
_PERCENT_UP_TO_100 = r"0*(?:100(?:\.0+)?|[0-9]{1,2}(?:\.[0-9]+)?)\s*%"
COUNT_PATTERN = rf"^\s*(?:[0-9]+|{_PERCENT_UP_TO_100})\s*$"
POSITIVE_COUNT_PATTERN = rf"^(?!\s*0*(?:\.0*)?\s*%?\s*$){COUNT_PATTERN[1:]}"


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
            if _DECIMAL.fullmatch(number) is None:
                raise ValueError(f"{text!r} is not a percent; expected e.g. 10%")
            value = float(number)
            if not 0 <= value <= 100:
                raise ValueError(f"{text!r} is not between 0% and 100%")
            return cls(value, percent=True)
        if _WHOLE.fullmatch(stripped):
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
