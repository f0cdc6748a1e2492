"""The head of the live screen: what is deployed where, how far along, and failures against the budget."""

from __future__ import annotations

from datetime import UTC, datetime, tzinfo

from rich.console import Group
from rich.text import Text
from textual.widget import Widget

from deployer.core.results import HostStatus
from deployer.core.terminal_text import escape_controls
from deployer.core.timefmt import format_moment_bare, format_span_ticking
from tui.budget import BUDGET_STYLES, BudgetState, budget_meter
from tui.glyphs import DEPLOYMENT_GLYPHS, HOST_GLYPHS, RUNNING_STYLE, step_legend
from tui.model import LiveSnapshot, control_note, elapsed


def summary_lines(snapshot: LiveSnapshot, now: datetime, tz: tzinfo) -> list[Text]:
    """Four lines: the deployment, its counts and budget, who runs it, and what is pending or why it ended."""
    view = snapshot.view
    glyph = DEPLOYMENT_GLYPHS[view.status]
    head = Text(no_wrap=True, overflow="ellipsis")
    head.append(f" {glyph.symbol} {glyph.label.upper()} ", style=f"{glyph.style} reverse")
    head.append("  ")
    head.append(view.app, style="bold")
    head.append(f"  {view.previous_version or '(new)'} → ")
    head.append(view.version, style="bold")
    head.append("  in ")
    head.append(view.environment, style="bold")
    head.append(f"  {view.kind.value}  ")
    head.append(snapshot.wave.describe(), style="bold")
    head.append(f"  {'took' if view.is_finished else 'elapsed'} {format_span_ticking(elapsed(view, now))}")

    counts = Text(no_wrap=True, overflow="ellipsis")
    budget = snapshot.budget
    counts.append("failures ", style="bold")
    for symbol, style in budget_meter(budget):
        counts.append(symbol, style=style)
    counts.append(" ")
    marker = "!! " if budget.state in (BudgetState.AT_LIMIT, BudgetState.EXCEEDED) else ""
    counts.append(marker + budget.describe(), style=BUDGET_STYLES[budget.state])
    counts.append(f"    {view.host_count} hosts:")
    for status in HostStatus:
        count = view.counts.get(status, 0)
        if count:
            host_glyph = HOST_GLYPHS[status]
            style = RUNNING_STYLE if status is HostStatus.RUNNING else host_glyph.style
            counts.append(" ")
            counts.append(f"{host_glyph.symbol}{count}", style=style)
            counts.append(f" {host_glyph.label}")
    if view.gates:
        counts.append("    gates:")
    for gate in view.gates:  # a failing one halts the deployment: it stands out
        counts.append(" ")
        mark, style = ("✓", "green") if gate.passed else ("✗ ", "bold red")
        counts.append(f"{escape_controls(gate.name, one_line=True)} {mark}", style=style)
        if not gate.passed:
            counts.append(escape_controls(gate.message, one_line=True), style="red")

    who = Text(no_wrap=True, overflow="ellipsis", style="dim")
    who.append(
        f"{view.id}  started by {view.started_by} on {view.started_from} (pid {view.pid}) "
        f"at {format_moment_bare(view.started_at, tz)}"
    )
    if snapshot.liveness is not None:
        if snapshot.liveness.alive:
            who.append(f"  controller: {snapshot.liveness.reason}")
        else:
            who.append(
                f"  controller looks dead ({snapshot.liveness.reason}): "
                f"`deploy resume {view.id}` takes it over",
                style="bold yellow",
            )
    elif view.finished_at is not None:
        who.append(f"  finished at {format_moment_bare(view.finished_at, tz)}")

    note = Text(no_wrap=True, overflow="ellipsis")
    pending = control_note(view, tz)
    if pending is not None:
        note.append(pending, style="bold yellow")
    elif view.is_finished:
        note.append(escape_controls(view.reason or view.status.value, one_line=True), style=glyph.style)
    else:
        note.append("a running host shows its step: " + step_legend(), style="dim")
    return [head, counts, who, note]


class DeploymentSummary(Widget):
    """Shows a :class:`~tui.model.LiveSnapshot`; the owner sets ``snapshot`` and ``now``."""

    DEFAULT_CSS = """
    DeploymentSummary {
        height: 4;
        padding: 0 1;
        background: $boost;
    }
    """

    def __init__(self, *, tz: tzinfo = UTC, id: str | None = None) -> None:
        super().__init__(id=id)
        self.tz = tz
        self._snapshot: LiveSnapshot | None = None
        self._now: datetime | None = None

    def show(self, snapshot: LiveSnapshot, now: datetime) -> None:
        self._snapshot = snapshot
        self._now = now
        self.refresh()

    def tick(self, now: datetime) -> None:
        """The clock moved: only the elapsed time changes."""
        self._now = now
        self.refresh()

    def render(self) -> Group | Text:
        if self._snapshot is None or self._now is None:
            return Text("reading the deployment from the store…", style="italic")
        return Group(*summary_lines(self._snapshot, self._now, self.tz))
