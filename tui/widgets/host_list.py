"""The list of a deployment's hosts: state, name, datacenter, wave, step, time, exit status, error."""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from datetime import UTC, datetime

from rich.text import Text

from deployer.core.results import HostStatus
from deployer.core.terminal_text import escape_controls
from deployer.core.timefmt import format_span_ticking
from tui.glyphs import host_glyph
from tui.model import ShownHost, host_duration
from tui.widgets.virtual_table import Column, VirtualTable

HOST_COLUMNS = (
    Column("state", 14),
    Column("host", 24),
    Column("dc", 10),
    Column("wave", 4, "right"),
    Column("step", 14),
    Column("time", 7, "right"),
    Column("exit", 4, "right"),
    Column("message"),
)


def host_cells(host: ShownHost, now: datetime) -> Sequence[Text]:
    glyph = host_glyph(host.status, host.step, host.staged)
    label = "running" if host.status is HostStatus.RUNNING else glyph.label
    state = Text()
    state.append(glyph.symbol, style=glyph.style)
    state.append(f" {label}", style=glyph.style if host.status.is_failure else "")
    duration = host_duration(host, now)
    message = host.error or ""
    if not message and host.status is HostStatus.SUCCEEDED and host.version:
        message = f"now runs {host.version}"
    return (
        state,
        Text(host.name),
        Text(host.datacenter),
        Text("-" if host.wave is None else str(host.wave)),
        Text(host.step.value if host.step else "-"),
        Text("-" if duration is None else format_span_ticking(duration)),
        Text("-" if host.exit_status is None else str(host.exit_status)),
        Text(
            escape_controls(message.splitlines()[0]) if message else "",
            style="red" if host.status.is_failure else "dim",
        ),
    )


class HostList(VirtualTable[ShownHost]):
    """Hosts as rows; the owner sets ``rows`` (already filtered) and ``now`` (for running times)."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(
            HOST_COLUMNS,
            self._cells,
            lambda host: host.name,
            drawn_as=self._drawn_as,
            empty_text="no host matches the filter",
            id=id,
        )
        self.now = datetime.now(UTC)

    def _drawn_as(self, host: ShownHost) -> Hashable:
        # Only a running host's line shows the time now (how long it has been running).
        return (host, self.now) if host.status is HostStatus.RUNNING else host

    def _cells(self, host: ShownHost) -> Sequence[Text]:
        return host_cells(host, self.now)
