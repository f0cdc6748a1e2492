"""How times are written: each caller's shape, one table each, so none drifts into another."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest

from deployer.core.timefmt import (
    LOCAL,
    format_age,
    format_age_ticking,
    format_moment,
    format_moment_bare,
    format_span,
    format_span_no_days,
    format_span_ticking,
    format_when,
)

NOW = datetime(2026, 3, 3, 12, 0, tzinfo=UTC)

# The module docstring's table, row by row: (span, CLI, TUI, a controller's silence).
SPANS = [
    (timedelta(seconds=45), "45s", "45s", "45s"),
    (timedelta(minutes=3, seconds=5), "3m 5s", "3m 05s", "3m 5s"),
    (timedelta(hours=2), "2h", "2h 00m", "2h 0m"),
    (timedelta(days=8, hours=3), "8d", "8d 3h", "195h 0m"),
]


@pytest.mark.parametrize(("span", "cli", "tui", "silence"), SPANS)
def test_each_span_shape_as_the_module_table_says(span: timedelta, cli: str, tui: str, silence: str) -> None:
    assert (format_span(span), format_span_ticking(span), format_span_no_days(span)) == (cli, tui, silence)


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0, "0s"),
        (60, "1m"),
        (303, "5m 3s"),
        (7500, "2h 5m"),
        (3 * 86400 + 4 * 3600, "3d 4h"),
        (3 * 86400, "3d"),
        (12 * 86400 + 5 * 3600, "12d"),
        (-180, "3m"),
    ],
)
def test_format_span(seconds: float, text: str) -> None:
    assert format_span(timedelta(seconds=seconds)) == text


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0.4, "0.4s"),
        (45, "45s"),
        (192, "3m 12s"),
        (3900, "1h 05m"),
        (2 * 86400 + 3 * 3600, "2d 3h"),
        (-5, "0.0s"),
    ],
)
def test_format_span_ticking(seconds: float, text: str) -> None:
    assert format_span_ticking(seconds) == text
    assert format_span_ticking(timedelta(seconds=seconds)) == text


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0, "0s"), (59, "59s"), (60, "1m 0s"), (3600, "1h 0m"), (26 * 3600 + 180, "26h 3m"), (-5, "0s")],
)
def test_format_span_no_days(seconds: float, text: str) -> None:
    assert format_span_no_days(timedelta(seconds=seconds)) == text


@pytest.mark.parametrize(
    ("seconds", "expected"),
    [
        (0.2, "just now"),
        (45, "45s ago"),
        (60, "1m ago"),
        (303, "5m 3s ago"),
        (7200, "2h ago"),
        (7500, "2h 5m ago"),
        (3 * 86400 + 4 * 3600 + 59, "3d 4h ago"),
        (-180, "in 3m"),
    ],
)
def test_ages(seconds: float, expected: str) -> None:
    assert format_age(NOW - timedelta(seconds=seconds), NOW) == expected


@pytest.mark.parametrize(
    ("seconds", "expected"),
    [(0, "0.0s ago"), (192, "3m 12s ago"), (-0.4, "in 0.4s")],
)
def test_ticking_ages(seconds: float, expected: str) -> None:
    assert format_age_ticking(NOW - timedelta(seconds=seconds), NOW) == expected
    assert format_age_ticking(None, NOW) == "-"


def test_moments_with_and_without_the_zone() -> None:
    moment = datetime(2026, 3, 3, 10, 0, 5, tzinfo=UTC)
    assert format_moment(moment, UTC) == "2026-03-03 10:00:05 UTC"
    assert format_moment(moment, UTC, seconds=False) == "2026-03-03 10:00 UTC"
    assert format_moment_bare(moment, UTC) == "2026-03-03 10:00:05"
    assert format_moment_bare(None, UTC) == "-"
    assert format_when(moment, NOW, UTC) == "2026-03-03 10:00:05 UTC (1h 59m ago)"
    assert format_when(None, NOW, UTC) == "-"


def test_the_local_zone_follows_daylight_saving_time(monkeypatch: pytest.MonkeyPatch) -> None:
    """Summer and winter times shown in this machine's zone, whatever the season today."""
    monkeypatch.setenv("TZ", "Europe/Berlin")
    time.tzset()
    try:
        assert format_moment(datetime(2026, 7, 1, 10, 0, tzinfo=UTC), LOCAL) == "2026-07-01 12:00:00 CEST"
        assert format_moment(datetime(2026, 1, 15, 11, 0, tzinfo=UTC), LOCAL) == "2026-01-15 12:00:00 CET"
    finally:
        monkeypatch.undo()
        time.tzset()
