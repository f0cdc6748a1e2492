"""Connecting to the first hosts while the rest of the controller is still being imported.

A push imports for about 0.3 s (SQLAlchemy, the store, the views) and opens its store
before its first host is even connected to; an SSH handshake is a few round trips per
host, 80 ms each across regions. :class:`EarlyRunner` starts an event loop in a thread
of its own as soon as the hosts are known, and the runner connects to the first wave's
there (:meth:`deployer.hosts.ssh.SshRunner.prepare`: connecting changes nothing on a
host). The main thread meanwhile imports, opens the store and plans, then takes the loop
over and runs the deployment on it (:meth:`EarlyRunner.run`): the connections opened
so far, and those still opening, are the runner's. Imports hold the interpreter's lock,
but a handshake mostly waits on the network: the two overlap.

The thread only ever runs the loop before the main thread does; they never run it at
once. Nothing opened early is left behind: :meth:`EarlyRunner.close` (or the end of
``run``) closes the runner, and the connections to hosts the plan left out are closed as
the run starts (:meth:`EarlyRunner.expect`).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import threading
from collections.abc import Coroutine, Sequence
from typing import Any, TypeVar

from deployer.core.targets import SshTarget
from deployer.hosts.ssh import SshRunner

T = TypeVar("T")
CLOSE_TIMEOUT = 30.0  # seconds to close the connections opened early, when no run came

log = logging.getLogger(__name__)


class EarlyRunner:
    """An :class:`SshRunner` whose loop runs in a thread until the main thread takes it."""

    def __init__(self) -> None:
        self.runner = SshRunner()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="connect-early", daemon=True)
        self._stopping = False  # the stop was sent to the thread's loop
        self._planned: list[SshTarget] | None = None
        self._thread.start()

    def connect(self, targets: Sequence[SshTarget]) -> None:
        """Start connecting to ``targets`` in the loop's thread; returns at once."""
        self._loop.call_soon_threadsafe(functools.partial(self.runner.prepare, list(targets), tentative=True))

    def expect(self, targets: Sequence[SshTarget]) -> None:
        """The hosts the deployment turned out to have (its plan): when it runs, the early
        connections to others are let go. (An early attempt that failed is not the host's
        fate either way: its turn tries again, see SshRunner.prepare.)"""
        self._planned = list(targets)

    def run(self, main: Coroutine[Any, Any, T]) -> T:
        """Run ``main`` to its end in this (the main) thread, on the loop the connections
        were opened in, then close the runner."""

        async def then_close() -> T:
            try:
                if self._planned is not None:
                    self.runner.keep_ahead(self._planned)
                return await main
            finally:
                await self.runner.aclose()

        try:
            loop = self._take()
        except BaseException:  # (Ctrl-C while the thread stops): close() tidies up
            main.close()
            raise
        with asyncio.Runner(loop_factory=lambda: loop) as runner:
            return runner.run(then_close())

    def close(self) -> None:
        """Close what was opened early, when the deployment did not run here (an error
        before it, a plan with nothing to do): in this thread, once the loop is its."""
        if self._loop.is_closed():
            return
        loop = self._take()
        try:
            loop.run_until_complete(asyncio.wait_for(self.runner.aclose(), CLOSE_TIMEOUT))
        except TimeoutError:  # the push's own outcome (an error, say) matters more
            log.warning("warning: the connections opened early did not close within %gs", CLOSE_TIMEOUT)
        finally:
            loop.close()

    def _take(self) -> asyncio.AbstractEventLoop:
        """Stop the loop in its thread (once) and wait for the thread to end; the loop is
        the caller's from then on."""
        if not self._stopping:
            self._stopping = True
            self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join()
        return self._loop
