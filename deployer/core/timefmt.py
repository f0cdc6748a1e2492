"""Moments and lengths of time as people read them, and the local zone they are read in.

Pure apart from :data:`LOCAL`, which asks the C library for the machine's zone rules:
``now`` and the zone are arguments. Each shape has its own function, named for it,
because each has readers that compare it from one run to the next (the CLI's tables,
the TUI's columns, a stale controller's lock message)::

    function                 for                     45 s    3 m 5 s    2 h 0 m    8 d 3 h
    format_span              the CLI                 45s     3m 5s      2h         8d
    format_span_ticking      the TUI's columns       45s     3m 05s     2h 00m     8d 3h
    format_span_no_days      a controller's silence  45s     3m 5s      2h 0m      195h 0m

``format_span_ticking`` also shows tenths below ten seconds (``0.4s``), since the TUI
redraws a running host's time every poll.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, tzinfo


class LocalZone(tzinfo):
    """This machine's time zone, with its daylight-saving rules (as ``time.localtime`` knows them).

    ``datetime.now().astimezone().tzinfo`` would be a fixed offset: right today, an
    hour off for ``--at 2026-07-01T09:00`` read in winter. This asks the C library for
    each moment instead.
    """

    def utcoffset(self, dt: datetime | None) -> timedelta:
        return _system_local(dt).utcoffset() or timedelta(0)

    def dst(self, dt: datetime | None) -> timedelta | None:
        return _system_local(dt).dst()

    def tzname(self, dt: datetime | None) -> str:
        return _system_local(dt).tzname() or "local"

    def fromutc(self, dt: datetime) -> datetime:
        return dt.replace(tzinfo=UTC).astimezone().replace(tzinfo=self)

    def __repr__(self) -> str:
        return "LocalZone()"


def _system_local(dt: datetime | None) -> datetime:
    """``dt``'s wall-clock reading as an aware local datetime (its own tzinfo dropped first)."""
    naive = (dt or datetime.now()).replace(tzinfo=None)
    return naive.astimezone()


LOCAL = LocalZone()


# ---- moments -------------------------------------------------------------------------


def format_moment(moment: datetime, tz: tzinfo, *, seconds: bool = True) -> str:
    """``2026-11-27 19:30:05 CET``: the moment on the wall clock of ``tz``, naming the zone (the CLI)."""
    local = moment.astimezone(tz)
    text = local.strftime("%Y-%m-%d %H:%M:%S" if seconds else "%Y-%m-%d %H:%M")
    return f"{text} {local.tzname() or local.strftime('%z')}"


def format_moment_bare(moment: datetime | None, tz: tzinfo) -> str:
    """``2026-11-27 18:30:05`` in ``tz`` (the operator's zone), without its name, or a dash (the TUI)."""
    if moment is None:
        return "-"
    return moment.astimezone(tz).strftime("%Y-%m-%d %H:%M:%S")


# ---- lengths of time --------------------------------------------------------------------


def format_span(span: timedelta) -> str:
    """A length of time in its two largest units: ``45s``, ``5m 3s``, ``2h 5m``, ``3d 4h`` (the CLI).

    From a week on, days only (``12d``): the hours no longer help. A negative span is
    written as its length.
    """
    days, hours, minutes, secs = _split(int(abs(span.total_seconds())))
    if days:
        return f"{days}d {hours}h" if hours and days < 7 else f"{days}d"
    if hours:
        return f"{hours}h {minutes}m" if minutes else f"{hours}h"
    if minutes:
        return f"{minutes}m {secs}s" if secs else f"{minutes}m"
    return f"{secs}s"


def format_span_ticking(span: timedelta | float) -> str:
    """A duration that the TUI redraws as it grows: ``0.4s``, ``45s``, ``3m 12s``, ``1h 05m``, ``2d 3h``.

    Tenths below ten seconds; the smaller unit zero-padded, so a column keeps its width
    from one second to the next. A negative span is ``0.0s``.
    """
    seconds = span.total_seconds() if isinstance(span, timedelta) else float(span)
    seconds = max(0.0, seconds)
    if seconds < 10:
        return f"{seconds:.1f}s"
    days, hours, minutes, secs = _split(int(seconds))
    if days:
        return f"{days}d {hours}h"
    return _two_units(hours, minutes, secs, pad="02")


def format_span_no_days(span: timedelta) -> str:
    """``45s``, ``5m 0s``, ``26h 3m``: hours at the most, both units always (a controller's silence).

    A negative span is ``0s``.
    """
    days, hours, minutes, secs = _split(max(0, int(span.total_seconds())))
    return _two_units(24 * days + hours, minutes, secs, pad="")


def _split(total: int) -> tuple[int, int, int, int]:
    """Whole seconds as days, hours, minutes and seconds."""
    minutes, secs = divmod(total, 60)
    hours, minutes = divmod(minutes, 60)
    days, hours = divmod(hours, 24)
    return days, hours, minutes, secs


def _two_units(hours: int, minutes: int, secs: int, *, pad: str) -> str:
    """The two largest of hours, minutes and seconds, the smaller one formatted with ``pad``."""
    if hours:
        return f"{hours}h {minutes:{pad}}m"
    if minutes:
        return f"{minutes}m {secs:{pad}}s"
    return f"{secs}s"


# ---- ages: a moment seen from now -----------------------------------------------------------


def format_age(moment: datetime, now: datetime) -> str:
    """How long ago ``moment`` was: ``just now``, ``5m 3s ago``, ``2h 5m ago``; ``in 3m`` ahead (the CLI)."""
    span = now - moment
    if abs(span) < timedelta(seconds=1):
        return "just now"
    if span < timedelta(0):
        return f"in {format_span(span)}"
    return f"{format_span(span)} ago"


def format_age_ticking(moment: datetime | None, now: datetime) -> str:
    """``3m 05s ago``, ``in 0.4s``, or a dash: :func:`format_span_ticking` seen from ``now`` (the TUI)."""
    if moment is None:
        return "-"
    span = now - moment
    if span < timedelta(0):
        return "in " + format_span_ticking(-span)
    return format_span_ticking(span) + " ago"


def format_when(moment: datetime | None, now: datetime, tz: tzinfo) -> str:
    """``2026-11-27 19:30:05 CET (2h 5m ago)``; ``-`` for no moment (the CLI)."""
    if moment is None:
        return "-"
    return f"{format_moment(moment, tz)} ({format_age(moment, now)})"
