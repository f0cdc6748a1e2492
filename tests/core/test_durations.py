"""One duration grammar: a spec's durations, ``sync --interval`` and the spans of ``--at``.

Before, the spec refused ``1h30m`` and ``30 secs`` while ``--at`` took them, and
``--at`` refused the ``250ms`` a spec takes.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from deployer.core.errors import SpecError, TimeExpressionError
from deployer.core.quantities import DURATION_PATTERN, UNIT_SECONDS, parse_duration
from deployer.core.timeexpr import parse_time
from deployer.operations.reading import check_fabric_task
from deployer.spec.load import load_spec

NOW = datetime(2026, 11, 27, 18, 30, tzinfo=UTC)

# text -> seconds; every form either parser took before, and the ones only the other took
FORMS = {
    "90": 90.0,
    "2.5": 2.5,
    "90s": 90.0,
    "250ms": 0.25,
    "5m": 300.0,
    "1h": 3600.0,
    "1d": 86400.0,
    " 30s ": 30.0,
    "1.5h": 5400.0,
    "1h30m": 5400.0,
    "1d 2h": 93600.0,
    "30 secs": 30.0,
    "2 days": 172800.0,
    "3 hours": 10800.0,
    "10 mins": 600.0,
    "2w": 1209600.0,
    "1 week": 604800.0,
    "500 msecs": 0.5,
}


@pytest.mark.parametrize(("text", "seconds"), FORMS.items())
def test_every_form_reads_the_same_everywhere(text: str, seconds: float, tmp_path: Path) -> None:
    assert parse_duration(text) == pytest.approx(seconds)
    assert re.fullmatch(DURATION_PATTERN, text)  # what docs/spec.schema.json says
    spec = tmp_path / "spec.yaml"
    spec.write_text(
        "app: a\nversion: '1'\nfleet: {hosts: [{name: h, datacenter: d}]}\nartifact: .\n"
        f"target: /srv/a\nstrategy: {{bake: '{text}'}}\n"
    )
    assert load_spec(spec, check_task=check_fabric_task).strategy.bake == pytest.approx(seconds)
    if not text.strip().replace(".", "").isdigit():  # a TIME's span needs its unit
        assert parse_time(f"{text} ago", NOW) == NOW - timedelta(seconds=seconds)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("soon", "'soon' is not a duration"),
        ("-2s", "'-2s' is not a duration"),
        ("1h30", "'1h30' is not a duration"),
        ("2mo", "months and years vary in length"),
        ("1 year", "months and years vary in length"),
        ("3 fortnights", "unknown unit 'fortnights'"),
        ("٣s", "is not a duration"),  # digits other than ASCII, which JSON Schema's \d refuses too
    ],
)
def test_refused_everywhere(text: str, message: str, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=message):
        parse_duration(text)
    assert re.fullmatch(DURATION_PATTERN, text) is None
    spec = tmp_path / "spec.yaml"
    spec.write_text(
        "app: a\nversion: '1'\nfleet: {hosts: [{name: h, datacenter: d}]}\nartifact: .\n"
        f"target: /srv/a\nstrategy: {{bake: '{text}'}}\n"
    )
    with pytest.raises(SpecError, match=message):
        load_spec(spec, check_task=check_fabric_task)


def test_a_time_span_needs_a_unit() -> None:
    with pytest.raises(TimeExpressionError, match="'7' is not a time"):
        parse_time("7", NOW)


@given(
    st.lists(
        st.tuples(st.integers(min_value=0, max_value=10_000), st.sampled_from(sorted(UNIT_SECONDS))),
        min_size=1,
        max_size=4,
    ),
    st.sampled_from(["", " "]),
)
def test_parts_add_up_and_the_pattern_agrees(parts: list[tuple[int, str]], gap: str) -> None:
    text = gap.join(f"{number}{gap}{unit}" for number, unit in parts)
    assert re.fullmatch(DURATION_PATTERN, text)
    assert parse_duration(text) == pytest.approx(sum(n * UNIT_SECONDS[u] for n, u in parts))
