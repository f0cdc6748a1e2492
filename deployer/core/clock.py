"""The one place the shell reads the time and waits for it.

The core never reads the clock (``now`` is an argument). The controller does, and
waits: between polls, for a bake to end, for a host to finish. It does both through
a :class:`Clock`, so a test can hand it a clock whose time only moves when the test
says so (``tests/fake_clock.py``) and drive a bake of an hour in no time at all.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Protocol


def utcnow() -> datetime:
    """The present moment, in UTC: what every recorded time is."""
    return datetime.now(UTC)


class Clock(Protocol):
    def now(self) -> datetime:
        """The present moment (aware, UTC)."""
        ...

    async def wait_until(self, moment: datetime, wake: asyncio.Event | None = None) -> None:
        """Return once ``moment`` has come, or earlier once ``wake`` is set (at once if it is)."""
        ...


class SystemClock:
    """The wall clock, and asyncio's timers to wait on it."""

    def now(self) -> datetime:
        return utcnow()

    async def wait_until(self, moment: datetime, wake: asyncio.Event | None = None) -> None:
        seconds = max(0.0, (moment - utcnow()).total_seconds())
        if wake is None:
            await asyncio.sleep(seconds)
            return
        try:
            async with asyncio.timeout(seconds):
                await wake.wait()
        except TimeoutError:
            pass


SYSTEM_CLOCK = SystemClock()
