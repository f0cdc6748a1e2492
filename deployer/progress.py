"""Showing a deployment as it goes: a live rich view on a terminal, plain lines elsewhere.

Both are :data:`~deployer.events.EventSink` callables; neither reads the store.
"""

from __future__ import annotations

import sys
from collections import Counter
from typing import TextIO

from rich.console import Console, Group
from rich.live import Live
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from deployer.events import (
    Baking,
    ControlChanged,
    DeploymentFinished,
    DeploymentStarted,
    Event,
    HostFinished,
    HostsJoined,
    HostStepStarted,
    WaveStarted,
)
from deployer.results import HostStatus

STATUS_STYLE = {
    HostStatus.PENDING: "dim",
    HostStatus.RUNNING: "cyan",
    HostStatus.SUCCEEDED: "green",
    HostStatus.FAILED: "bold red",
    HostStatus.UNREACHABLE: "bold magenta",
    HostStatus.SKIPPED: "dim",
    HostStatus.ABORTED: "yellow",
}


def describe(event: Event) -> str | None:
    """One plain line for an event (None for events too frequent to print one by one)."""
    match event:
        case DeploymentStarted():
            previous = event.previous_version or "nothing"
            return (
                f"deployment {event.deployment_id}: {event.kind} {event.app} {previous} -> {event.version} "
                f"in {event.environment}: {event.host_count} hosts in {event.wave_count} waves, "
                f"{event.failure_budget} failures allowed"
            )
        case WaveStarted():
            return (
                f"wave {event.index}/{event.wave_count}: {len(event.hosts)} hosts: {', '.join(event.hosts)}"
            )
        case Baking():
            return f"baking until {event.until:%H:%M:%S} before wave {event.next_wave}"
        case HostsJoined():
            return (
                f"{len(event.datacenters)} hosts joined the inventory, as wave {event.wave}: "
                f"{', '.join(event.datacenters)}; {event.failure_budget} failures allowed"
            )
        case HostStepStarted():
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
        case DeploymentFinished():
            counts = ", ".join(f"{n} {s.value}" for s, n in event.counts.items() if n)
            return f"deployment {event.deployment_id} {event.status}: {counts}"
    return None


class PlainProgress:
    """One line per event, for logs and pipes. Long-running work is never silent."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self._stream = stream or sys.stderr

    def __call__(self, event: Event) -> None:
        line = describe(event)
        if line is not None:
            print(line, file=self._stream, flush=True)

    def close(self) -> None:
        """Nothing to release; here so both views are used alike."""


class LiveProgress:
    """A live view on a terminal: the wave, a bar per datacenter, counts, failures vs budget."""

    def __init__(self, console: Console | None = None) -> None:
        self._console = console or Console(stderr=True)
        self._live = Live(console=self._console, refresh_per_second=8, transient=False)
        self._datacenters: dict[str, str] = {}
        self._status: dict[str, HostStatus] = {}
        self._step: dict[str, str] = {}
        self._title = ""
        self._wave = ""
        self._note = ""
        self._budget = 0
        self._last_failure = ""
        self._started = False

    def __call__(self, event: Event) -> None:
        match event:
            case DeploymentStarted():
                self._datacenters = dict(event.datacenters)
                self._status = dict.fromkeys(event.datacenters, HostStatus.PENDING)
                self._budget = event.failure_budget
                self._title = describe(event) or ""
                self._live.start()
                self._started = True
            case WaveStarted():
                self._wave = f"wave {event.index} of {event.wave_count}"
                self._note = ""
            case HostsJoined():
                self._datacenters.update(event.datacenters)
                self._status.update(dict.fromkeys(event.datacenters, HostStatus.PENDING))
                self._budget = event.failure_budget
                self._note = describe(event) or ""
            case HostStepStarted():
                self._status[event.host] = HostStatus.RUNNING
                self._step[event.host] = event.step.value
            case HostFinished():
                self._status[event.result.host] = event.result.status
                if event.result.status.is_failure:
                    self._last_failure = f"{event.result.host}: {event.result.error or event.result.status}"
            case Baking() | ControlChanged():
                self._note = describe(event) or ""
            case DeploymentFinished():
                self._note = describe(event) or ""
        if self._started:
            self._live.update(self._render())
        if isinstance(event, DeploymentFinished):
            self.close()

    def close(self) -> None:
        if self._started:
            self._live.stop()
            self._started = False

    def _render(self) -> Group:
        per_dc: dict[str, Counter[HostStatus]] = {}
        for host, dc in self._datacenters.items():
            per_dc.setdefault(dc, Counter())[self._status.get(host, HostStatus.PENDING)] += 1
        table = Table.grid(padding=(0, 2))
        for dc, counts in per_dc.items():
            total = sum(counts.values())
            done = total - counts[HostStatus.PENDING] - counts[HostStatus.RUNNING]
            table.add_row(
                Text(dc, style="bold"),
                ProgressBar(total=total, completed=done, width=30),
                Text(f"{done}/{total}"),
                Text(f"running {counts[HostStatus.RUNNING]}", style="cyan"),
                Text(f"failed {counts[HostStatus.FAILED] + counts[HostStatus.UNREACHABLE]}", style="red"),
            )
        totals = Counter(self._status.values())
        failed = totals[HostStatus.FAILED] + totals[HostStatus.UNREACHABLE]
        summary = Text("  ").join(
            Text(f"{status.value} {totals[status]}", style=STATUS_STYLE[status])
            for status in HostStatus
            if totals[status]
        )
        budget_style = "bold red" if failed > self._budget else "yellow" if failed else "green"
        lines: list[Text | Table] = [
            Text(self._title, style="bold"),
            Text(self._wave),
            table,
            summary,
            Text(f"failures {failed} of {self._budget} allowed", style=budget_style),
        ]
        if self._last_failure:
            lines.append(Text(f"latest failure: {self._last_failure}", style="red"))
        if self._note:
            lines.append(Text(self._note, style="italic"))
        return Group(*lines)
