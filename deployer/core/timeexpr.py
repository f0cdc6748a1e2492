"""TIME as people type it on the command line, turned into an aware UTC datetime.

Pure: the present moment is an argument, never read from the clock. Accepted:

==========================  ===================================================
``now``                     ``now``
``2026-11-27T18:30:00Z``    ISO 8601; a time without a zone is read in ``tz``
``2026-11-27 18:30``        the same, a space for the ``T``
``2026-11-27``              midnight at the start of that day, in ``tz``
``@1795804200``             seconds since the Unix epoch
``7d``, ``3h ago``          a span before ``now``: a duration as a spec writes
``1h30m``, ``2 days ago``   it (:func:`deployer.core.quantities.parse_duration`), a unit
                            required
``yesterday``               24 hours before ``now`` (as GNU ``date -d`` reads it)
``yesterday 18:30``         that time of day, yesterday, in ``tz``
``today 09:00``             that time of day, today, in ``tz``
==========================  ===================================================

Months and years are refused: their length depends on the calendar, and a
deployment history wants a moment nobody has to guess.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, time, timedelta, tzinfo

from deployer.core.errors import TimeExpressionError
from deployer.core.quantities import SPAN_SHAPE, parse_duration

_DAY_WORD = re.compile(r"^(yesterday|today)(?:\s+(\d{1,2}:\d{2}(?::\d{2})?))?$")

FORMS = "ISO 8601 (2026-11-27T18:30Z), a span ago (7d, 3h ago, 1h30m), yesterday [HH:MM], today HH:MM, or now"


def parse_time(text: str, now: datetime, *, tz: tzinfo = UTC) -> datetime:
    """The moment ``text`` names, relative to ``now``, as an aware UTC datetime.

    ``tz`` is the zone for times written without one (ISO times, ``today 09:00``).
    Raises TimeExpressionError naming the accepted forms.

    >>> now = datetime(2026, 11, 27, 18, 30, tzinfo=UTC)
    >>> parse_time("3h ago", now).isoformat()
    '2026-11-27T15:30:00+00:00'
    >>> parse_time("yesterday 09:00", now).isoformat()
    '2026-11-26T09:00:00+00:00'
    """
    if now.tzinfo is None or now.utcoffset() is None:
        raise RuntimeError("parse_time needs an aware `now`")
    cleaned = " ".join(text.strip().lower().split())
    if not cleaned:
        raise TimeExpressionError(f"an empty time; expected {FORMS}")
    if cleaned == "now":
        return now.astimezone(UTC)
    if cleaned.startswith("@"):
        return _epoch(text, cleaned[1:])
    day_word = _DAY_WORD.match(cleaned)
    if day_word is not None:
        return _day_word(text, day_word.group(1), day_word.group(2), now, tz)
    moment = _iso(text, tz)
    if moment is not None:
        return moment
    span_text = cleaned.removesuffix(" ago").removesuffix("ago").strip()
    if span_text and span_text[0].isdigit() and SPAN_SHAPE.match(span_text):
        return now.astimezone(UTC) - _span(text, span_text)
    raise TimeExpressionError(f"{text!r} is not a time; expected {FORMS}")


def _span(original: str, text: str) -> timedelta:
    try:
        return timedelta(seconds=parse_duration(text, bare_seconds=False))
    except ValueError as error:
        raise TimeExpressionError(f"{original!r}: {error}") from None


def _epoch(original: str, digits: str) -> datetime:
    try:
        return datetime.fromtimestamp(float(digits), UTC)
    except (ValueError, OverflowError, OSError):
        raise TimeExpressionError(f"{original!r} is not seconds since the epoch (e.g. @1795804200)") from None


def _day_word(original: str, word: str, clock: str | None, now: datetime, tz: tzinfo) -> datetime:
    if clock is None:
        if word == "today":
            raise TimeExpressionError(f"{original!r}: say `now`, or a time of day such as `today 09:00`")
        return now.astimezone(UTC) - timedelta(days=1)
    try:
        time_of_day = time.fromisoformat(clock if len(clock.split(":")[0]) == 2 else "0" + clock)
    except ValueError:
        raise TimeExpressionError(
            f"{original!r}: {clock!r} is not a time of day (HH:MM or HH:MM:SS)"
        ) from None
    day = now.astimezone(tz).date() - timedelta(days=1 if word == "yesterday" else 0)
    return datetime.combine(day, time_of_day, tzinfo=tz).astimezone(UTC)


def _iso(original: str, tz: tzinfo) -> datetime | None:
    """The ISO 8601 moment in ``original``, or None when it is not one."""
    candidate = original.strip()
    if candidate.endswith(("z", "Z")):
        candidate = candidate[:-1] + "+00:00"
    try:
        moment = datetime.fromisoformat(candidate)
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=tz)
    return moment.astimezone(UTC)
