"""What every screen is handed from outside: the store, the clock, the zone, the poll interval, who asks."""

from __future__ import annotations

import getpass
import socket
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo

from deployer.core.clock import utcnow as utcnow  # the screens' clock: tui.app and tests import it here
from deployer.store import Store


def operator() -> str:
    """Who asks for a pause, resume or abort from this terminal: ``user@machine``."""
    return f"{getpass.getuser()}@{socket.gethostname()}"


@dataclass(frozen=True, slots=True)
class Context:
    """Handed down to each screen (attributes down); screens never reach into the app for these.

    ``clock`` is injected so tests and snapshots see a fixed moment; ``poll_interval``
    is how often a live screen re-reads the store (it backs off to twice the time a
    read takes, so a slow database is never hammered).
    """

    store: Store
    clock: Callable[[], datetime] = utcnow
    tz: tzinfo = UTC
    poll_interval: float = 0.5
    requested_by: str = "tui"
