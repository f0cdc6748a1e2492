"""Showing a deployment as it goes, in plain lines: for logs, pipes and ``--json`` runs.

The live view for a terminal is :mod:`deployer.views.live_progress`, which needs rich (slow
to import); this module does not, so a run that prints no live view never pays for it.
Both are :data:`~deployer.core.events.EventSink` callables; neither reads the store.
"""

from __future__ import annotations

import sys
from typing import TextIO

from deployer.core.events import (
    Baking,
    ControlChanged,
    DeploymentFinished,
    DeploymentStarted,
    Event,
    GateChecked,
    HostFinished,
    HostsJoined,
    HostStaged,
    HostStepStarted,
    Notice,
    WaveFinished,
    WaveStarted,
)
from deployer.core.terminal_text import escape_controls
from deployer.core.wording import count_of


def describe(event: Event) -> str | None:
    """One plain line for an event (None for events too frequent to print one by one)."""
    match event:
        case DeploymentStarted():
            previous = event.previous_version or "nothing"
            return (
                f"deployment {event.deployment_id}: {event.kind} {event.app} {previous} -> {event.version} "
                f"in {event.environment}: {count_of(event.host_count, 'host')} in "
                f"{count_of(event.wave_count, 'wave')}, {count_of(event.failure_budget, 'failure')} allowed"
            )
        case WaveStarted():
            return (
                f"wave {event.index}/{event.wave_count}: {count_of(len(event.hosts), 'host')}: "
                f"{', '.join(event.hosts)}"
            )
        case Baking():
            if event.final:
                return f"baking until {event.until:%H:%M:%S} before the last gate check"
            return f"baking until {event.until:%H:%M:%S} before wave {event.next_wave}"
        case GateChecked():
            verdict = event.verdict
            return f"gate {verdict.name}: {'passed' if verdict.passed else 'failed'}: {verdict.message}"
        case WaveFinished():
            return None
        case HostsJoined():
            return (
                f"{count_of(len(event.datacenters), 'host')} joined the inventory, as wave {event.wave}: "
                f"{', '.join(event.datacenters)}; {count_of(event.failure_budget, 'failure')} allowed"
            )
        case HostStepStarted() | HostStaged():
            return None
        case HostFinished():
            result = event.result
            line = f"{result.host}: {result.status.value} in {result.duration:.1f}s"
            if result.error:
                line += f": {result.error}"
            if result.status.is_failure:
                line += f" ({event.failed_count} failed of {event.failure_budget} allowed)"
            return line
        case ControlChanged():
            return f"{event.state}: {event.reason}"
        case Notice():
            return f"note: {event.text}"
        case DeploymentFinished():
            counts = ", ".join(f"{n} {s.value.replace('_', ' ')}" for s, n in event.counts.items() if n)
            return f"deployment {event.deployment_id} {event.status}: {counts}"
    return None


class PlainProgress:
    """One line per event, for logs and pipes. Long-running work is never silent."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self._stream = stream or sys.stderr

    def __call__(self, event: Event) -> None:
        line = describe(event)
        if line is not None:  # it may quote a host (an error): controls escaped
            print(escape_controls(line), file=self._stream, flush=True)

    def close(self) -> None:
        """Nothing to release; here so both views are used alike."""
