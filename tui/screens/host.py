"""One host's part in a deployment: its steps with durations, exit statuses and output."""

from __future__ import annotations

import threading
from typing import ClassVar

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.message import Message
from textual.screen import Screen
from textual.widgets import DataTable, Log, Static
from textual.worker import get_current_worker

from deployer.core.errors import DeployerError
from deployer.core.results import StepResult
from deployer.core.terminal_text import escape_controls
from deployer.core.timefmt import format_moment_bare, format_span_ticking
from deployer.store.views import DeploymentView, HostDeploymentView
from tui.context import Context
from tui.glyphs import STEP_NUMBERS, host_glyph
from tui.model import host_duration
from tui.widgets.cells import fill_table
from tui.widgets.key_bar import KeyBar

STEP_COLUMNS = ("#", "step", "exit", "took", "tries", "started")


class HostRead(Message):
    def __init__(self, view: DeploymentView, host: HostDeploymentView | None) -> None:
        super().__init__()
        self.view = view
        self.host = host

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, HostRead)


class HostReadFailed(Message):
    def __init__(self, error: str) -> None:
        super().__init__()
        self.error = error


def host_header(view: DeploymentView, host: HostDeploymentView, ctx: Context) -> Text:
    glyph = host_glyph(host.status, host.step, host.staged)
    text = Text()
    text.append(f" {glyph.symbol} {glyph.label.upper()} ", style=f"{glyph.style} reverse")
    text.append("  ")
    text.append(host.name, style="bold")
    text.append(f"  in {host.datacenter}  wave {host.wave if host.wave is not None else '-'}")
    text.append(f"  {view.app} {view.version} in {view.environment} ({view.id})\n")
    duration = host_duration(host, ctx.clock())
    text.append(
        f"started {format_moment_bare(host.started_at, ctx.tz)}  "
        f"finished {format_moment_bare(host.finished_at, ctx.tz)}  "
        f"took {'-' if duration is None else format_span_ticking(duration)}  "
        f"version {host.previous_version or '-'} → {host.version or '-'}\n"
    )
    if host.error:
        text.append(escape_controls(host.error.splitlines()[0]), style="bold red")
    elif host.status.is_final:
        text.append("no error", style="dim")
    elif host.step is not None:
        text.append(f"now at step {STEP_NUMBERS[host.step]}: {host.step.value}", style="cyan")
    else:
        text.append("not started yet", style="dim")
    return text


class HostScreen(Screen[None]):
    """One host of a deployment: read alone (not the whole fleet), with its steps, until it is final."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "back", "Back"),
        Binding("o", "focus_output", "Output"),
        Binding("s", "focus_steps", "Steps"),
    ]

    def __init__(self, ctx: Context, deployment_id: str, host: str) -> None:
        super().__init__()
        self.ctx = ctx
        self.deployment_id = deployment_id
        self.host_name = host
        self.host: HostDeploymentView | None = None
        self._wake = threading.Event()

    def compose(self) -> ComposeResult:
        yield Static("reading the host's steps…", id="host-header")
        yield DataTable(id="steps", cursor_type="row", zebra_stripes=False)
        yield Static("output", id="output-title")
        yield Log(id="output", highlight=False)
        yield KeyBar()

    def on_mount(self) -> None:
        self.title = f"{self.host_name} in {self.deployment_id}"
        table = self.query_one("#steps", DataTable)
        fill_table(table, STEP_COLUMNS, [], [])
        table.focus()
        self._read()

    def on_unmount(self) -> None:
        self.workers.cancel_group(self, "read")
        self._wake.set()

    @work(thread=True, exclusive=True, group="read", exit_on_error=False)
    def _read(self) -> None:
        """Read this one host with its steps; while it runs, again every poll interval until it ends.

        Its steps are recorded with its result, in one transaction: the read that sees
        it final sees its steps.
        """
        worker = get_current_worker()
        store = self.ctx.store
        while not worker.is_cancelled:
            try:
                view = store.deployment_with_host(self.deployment_id, self.host_name)
            except DeployerError as error:
                self.post_message(HostReadFailed(str(error)))
                return
            host = next(iter(view.hosts), None)
            self.post_message(HostRead(view, host))
            if host is None or host.status.is_final:
                return
            self._wake.wait(self.ctx.poll_interval)

    @on(HostRead)
    def _show(self, message: HostRead) -> None:
        header = self.query_one("#host-header", Static)
        if message.host is None:
            header.update(Text(f"{self.host_name} is not part of {self.deployment_id}", style="bold red"))
            return
        previous = self.host
        self.host = message.host
        header.update(host_header(message.view, message.host, self.ctx))
        if previous is not None and previous.steps == message.host.steps and message.host.steps:
            return
        table = self.query_one("#steps", DataTable)
        steps = message.host.steps
        fill_table(
            table,
            STEP_COLUMNS,
            [_step_cells(s, self.ctx) for s in steps],
            [str(i) for i in range(len(steps))],
        )
        if message.host.steps:
            # Start on the step that failed (the last one run), where the answer usually is.
            table.move_cursor(row=len(message.host.steps) - 1)
            self._show_output(len(message.host.steps) - 1)
        else:
            self._show_host_output(message.host)

    @on(HostReadFailed)
    def _failed(self, message: HostReadFailed) -> None:
        self.query_one("#host-header", Static).update(Text(message.error, style="bold red"))

    @on(DataTable.RowHighlighted, "#steps")
    def _step_highlighted(self, event: DataTable.RowHighlighted) -> None:
        if event.row_key.value is not None:
            self._show_output(int(event.row_key.value))

    def _show_output(self, index: int) -> None:
        if self.host is None or not 0 <= index < len(self.host.steps):
            return
        step = self.host.steps[index]
        title = f"output of {step.step.value}"
        if step.exit_status is not None:
            title += f" (exit {step.exit_status})"
        self.query_one("#output-title", Static).update(Text(title, style="bold"))
        self._write_output(step.output or "(no output)")

    def _show_host_output(self, host: HostDeploymentView) -> None:
        self.query_one("#output-title", Static).update(Text("last lines of output", style="bold"))
        if host.output_tail:
            self._write_output(host.output_tail)
        elif host.status.is_final:
            self._write_output("(no output recorded)")
        else:
            self._write_output("(steps and output are recorded when the host finishes)")

    def _write_output(self, text: str) -> None:
        log = self.query_one("#output", Log)
        log.clear()
        # What the host printed, controls escaped: a Log shows them to the terminal as they are.
        log.write_lines(escape_controls(line) for line in text.splitlines())
        log.scroll_end(animate=False)

    def action_back(self) -> None:
        self.dismiss(None)

    def action_focus_output(self) -> None:
        self.query_one("#output", Log).focus()

    def action_focus_steps(self) -> None:
        self.query_one("#steps", DataTable).focus()


def _step_cells(step: StepResult, ctx: Context) -> tuple[Text, ...]:
    failed = step.exit_status not in (None, 0)
    exit_text = Text("-" if step.exit_status is None else str(step.exit_status))
    if failed:
        exit_text.stylize("bold red")
        exit_text = Text("✗ ", style="bold red") + exit_text
    elif step.exit_status == 0:
        exit_text = Text("✓ ", style="green") + exit_text
    return (
        Text(str(STEP_NUMBERS[step.step])),
        Text(step.step.value, style="bold red" if failed else ""),
        exit_text,
        Text(format_span_ticking(step.duration), justify="right"),
        Text(str(step.attempts), justify="right"),
        Text(step.started_at.astimezone(ctx.tz).strftime("%H:%M:%S")),
    )
