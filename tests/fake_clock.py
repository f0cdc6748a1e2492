"""A clock whose time moves only when a test moves it (a :class:`deployer.core.clock.Clock`).

The controller reads the time and waits through its clock; handed this one, a bake of
an hour ends the moment a test calls ``advance(3600)``, and nothing happens in between
that the test did not let happen. Tests wait for the loop to reach a point through
events, each wait bounded, never by sleeping.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

START = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)


class FakeClock:
    def __init__(self, start: datetime = START) -> None:
        self._now = start
        self._sleepers: list[tuple[datetime, asyncio.Future[None]]] = []
        self._slept = asyncio.Event()  # set whenever something begins to wait on the clock

    def now(self) -> datetime:
        return self._now

    async def wait_until(self, moment: datetime, wake: asyncio.Event | None = None) -> None:
        if moment <= self._now or (wake is not None and wake.is_set()):
            return
        sleeper = (moment, asyncio.get_running_loop().create_future())
        self._sleepers.append(sleeper)
        self._slept.set()
        waking = asyncio.ensure_future(wake.wait()) if wake is not None else None
        try:
            woken = [future for future in (sleeper[1], waking) if future is not None]
            await asyncio.wait(woken, return_when=asyncio.FIRST_COMPLETED)
        finally:
            if waking is not None:
                waking.cancel()
            self._sleepers.remove(sleeper)

    def advance(self, seconds: float) -> None:
        """Move time on by ``seconds``; whatever waits for a moment now come wakes."""
        self._now += timedelta(seconds=seconds)
        for moment, future in self._sleepers:
            if moment <= self._now and not future.done():
                future.set_result(None)

    async def sleeping(self, *, within: float = 5.0) -> None:
        """Return once something waits on the clock for a moment still to come.

        After :meth:`advance`, this says the loop woke, made its pass and waits again:
        what it did not do by then, it did not do at this time. Bounded by ``within``
        real seconds.
        """
        async with asyncio.timeout(within):
            while not any(moment > self._now for moment, _ in self._sleepers):
                self._slept.clear()
                await self._slept.wait()
