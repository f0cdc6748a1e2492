"""TIME expressions: ISO 8601, spans ago, yesterday, now — against a fixed `now`."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from deployer.core.errors import DeployerError, TimeExpressionError
from deployer.core.timeexpr import parse_time

NOW = datetime(2026, 11, 27, 18, 30, 15, tzinfo=UTC)
NEW_YORK = timezone(timedelta(hours=-5))


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("now", NOW),
        ("  NOW ", NOW),
        # ISO 8601
        ("2026-11-27T18:30:00Z", utc(2026, 11, 27, 18, 30)),
        ("2026-11-27T18:30:00z", utc(2026, 11, 27, 18, 30)),
        ("2026-11-27T18:30", utc(2026, 11, 27, 18, 30)),
        ("2026-11-27 18:30", utc(2026, 11, 27, 18, 30)),
        ("2026-11-27T18:30:00.250+02:00", datetime(2026, 11, 27, 16, 30, 0, 250000, tzinfo=UTC)),
        ("2026-11-27", utc(2026, 11, 27)),
        ("20261127T183000Z", utc(2026, 11, 27, 18, 30)),
        ("@0", utc(1970, 1, 1)),
        ("@1795804200", datetime.fromtimestamp(1795804200, UTC)),
        # spans before now
        ("7d", NOW - timedelta(days=7)),
        ("7d ago", NOW - timedelta(days=7)),
        ("3h ago", NOW - timedelta(hours=3)),
        ("3 hours ago", NOW - timedelta(hours=3)),
        ("90m", NOW - timedelta(minutes=90)),
        ("45s", NOW - timedelta(seconds=45)),
        ("2w", NOW - timedelta(weeks=2)),
        ("1h30m", NOW - timedelta(minutes=90)),
        ("1d 2h ago", NOW - timedelta(hours=26)),
        ("1.5h", NOW - timedelta(minutes=90)),
        ("2 days ago", NOW - timedelta(days=2)),
        ("0s", NOW),
        # day words
        ("yesterday", NOW - timedelta(days=1)),
        ("Yesterday 09:00", utc(2026, 11, 26, 9)),
        ("yesterday 9:05:30", utc(2026, 11, 26, 9, 5, 30)),
        ("today 09:00", utc(2026, 11, 27, 9)),
    ],
)
def test_accepted_forms_in_utc(text: str, expected: datetime) -> None:
    parsed = parse_time(text, NOW)
    assert parsed == expected
    assert parsed.tzinfo is UTC


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-11-27 18:30", utc(2026, 11, 27, 23, 30)),  # no zone: read in tz
        ("2026-11-27T18:30Z", utc(2026, 11, 27, 18, 30)),  # a zone given wins
        ("today 09:00", utc(2026, 11, 27, 14)),
        # 18:30 UTC is 13:30 in New York: still the 27th there, so yesterday is the 26th.
        ("yesterday 23:00", utc(2026, 11, 27, 4)),
        ("3h", NOW - timedelta(hours=3)),  # spans do not depend on the zone
    ],
)
def test_times_without_a_zone_are_read_in_tz(text: str, expected: datetime) -> None:
    assert parse_time(text, NOW, tz=NEW_YORK) == expected


def test_a_now_in_another_zone_gives_utc() -> None:
    assert parse_time("1h", NOW.astimezone(NEW_YORK)) == NOW - timedelta(hours=1)
    assert parse_time("1h", NOW.astimezone(NEW_YORK)).tzinfo is UTC


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "an empty time"),
        ("   ", "an empty time"),
        ("soon", "'soon' is not a time; expected ISO 8601"),
        ("7", "'7' is not a time"),
        ("ago", "'ago' is not a time"),
        ("3 fortnights ago", "unknown unit 'fortnights'; use ms, s, m, h, d or w"),
        ("2mo", "months and years vary in length; use days or weeks"),
        ("1 year ago", "months and years vary in length"),
        ("2026-13-01", "'2026-13-01' is not a time"),
        ("yesterday 25:00", "'25:00' is not a time of day"),
        ("today", "say `now`, or a time of day such as `today 09:00`"),
        ("@lots", "is not seconds since the epoch"),
        ("-3h", "'-3h' is not a time"),
    ],
)
def test_refused_forms_say_what_is_accepted(text: str, message: str) -> None:
    with pytest.raises(TimeExpressionError, match=message.replace("(", r"\(").replace("`", "`")) as error:
        parse_time(text, NOW)
    assert isinstance(error.value, DeployerError)


def test_a_naive_now_is_a_bug() -> None:
    with pytest.raises(RuntimeError, match="aware"):
        parse_time("now", datetime(2026, 1, 1))
