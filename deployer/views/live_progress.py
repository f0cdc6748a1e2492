"""The live view of a deployment on a terminal (rich): the wave, a bar per datacenter,
counts per status, failures against the budget. Plain lines are :mod:`deployer.views.progress`."""

from __future__ import annotations

from collections import Counter

from rich.console import Console, Group
from rich.live import Live
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

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
    WaveStarted,
)
from deployer.core.results import HostStatus
from deployer.core.terminal_text import escape_controls
from deployer.views.progress import describe

STATUS_STYLE = {
    HostStatus.PENDING: "dim",
    HostStatus.RUNNING: "cyan",
    HostStatus.SUCCEEDED: "green",
    HostStatus.FAILED: "bold red",
    HostStatus.UNREACHABLE: "bold magenta",
    HostStatus.SKIPPED: "dim",
    HostStatus.ABORTED: "yellow",
    HostStatus.NOT_STARTED: "dim",
    HostStatus.UNKNOWN: "bold magenta",
}


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
            case HostStaged():
                self._step[event.host] = "staged"
            case HostFinished():
                self._status[event.result.host] = event.result.status
                if event.result.status.is_failure:
                    failure = f"{event.result.host}: {event.result.error or event.result.status}"
                    self._last_failure = escape_controls(failure, one_line=True)
            case Baking() | ControlChanged() | GateChecked() | Notice():
                self._note = escape_controls(describe(event) or "", one_line=True)
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
                Text(f"failed {sum(n for s, n in counts.items() if s.is_failure)}", style="red"),
            )
        totals = Counter(self._status.values())
        failed = sum(n for s, n in totals.items() if s.is_failure)
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
