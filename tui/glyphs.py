"""How states are drawn: a symbol, a style and a word for each host and deployment status.

State is always shown by a symbol as well as a colour, so a 16-colour terminal and
a colour-blind operator read the same thing::

    ·  pending        +    staged (pending; its release is ready beside the live one)
    1-9  running, at step n (1 connect ... 9 prune)
    ✓  succeeded      ✗    failed            ?  unreachable
    -  skipped        ■    aborted (stopped before its switch; nothing changed)
    ○  not started (the deployment ended before reaching it)
    ¿  unknown (the connection dropped mid-step; ``deploy reconcile`` asks the host)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from deployer.core.results import DeploymentStatus, HostStatus, Step


@dataclass(frozen=True, slots=True)
class Glyph:
    """One state as drawn: a one-cell symbol, a Rich style, and the word for it."""

    symbol: str
    style: str
    label: str


HOST_GLYPHS: Mapping[HostStatus, Glyph] = {
    HostStatus.PENDING: Glyph("·", "dim", "pending"),
    HostStatus.RUNNING: Glyph("▶", "bold cyan", "running"),
    HostStatus.SUCCEEDED: Glyph("✓", "green", "succeeded"),
    HostStatus.FAILED: Glyph("✗", "bold red", "failed"),
    HostStatus.UNREACHABLE: Glyph("?", "bold magenta", "unreachable"),
    HostStatus.SKIPPED: Glyph("-", "dim", "skipped"),
    HostStatus.ABORTED: Glyph("■", "yellow", "aborted"),
    HostStatus.NOT_STARTED: Glyph("○", "dim", "not started"),
    HostStatus.UNKNOWN: Glyph("¿", "bold magenta", "unknown"),
}

# A running host shows the number of its step: the steps run in this order, so a
# bigger number is further along (and digits read the same in any colour).
STEP_NUMBERS: Mapping[Step, int] = {step: index for index, step in enumerate(Step, start=1)}
RUNNING_STYLE = "bold reverse cyan"

DEPLOYMENT_GLYPHS: Mapping[DeploymentStatus, Glyph] = {
    DeploymentStatus.RUNNING: Glyph("▶", "bold cyan", "running"),
    DeploymentStatus.PAUSED: Glyph("‖", "bold yellow", "paused"),
    DeploymentStatus.SUCCEEDED: Glyph("✓", "bold green", "succeeded"),
    DeploymentStatus.FAILED: Glyph("✗", "bold red", "failed"),
    DeploymentStatus.HALTED: Glyph("!", "bold red", "halted"),
    DeploymentStatus.ABORTED: Glyph("■", "bold yellow", "aborted"),
}


# A pending host whose release is staged ahead of its wave: its wave costs one message.
STAGED_GLYPH = Glyph("+", "cyan", "staged")


def host_glyph(status: HostStatus, step: Step | None, staged: bool = False) -> Glyph:
    """The glyph of one host; a running host's symbol is its step's number."""
    if status is HostStatus.RUNNING and step is not None:
        return Glyph(str(STEP_NUMBERS[step]), RUNNING_STYLE, f"running: {step.value}")
    if status is HostStatus.PENDING and staged:
        return STAGED_GLYPH
    return HOST_GLYPHS[status]


def legend() -> list[tuple[str, str, str]]:
    """(symbol, style, meaning) for the grid's legend line."""
    entries = [(HOST_GLYPHS[HostStatus.PENDING].symbol, "dim", "pending")]
    entries.append((STAGED_GLYPH.symbol, STAGED_GLYPH.style, STAGED_GLYPH.label))
    entries.append(("1-9", RUNNING_STYLE, "running"))  # the number: its step (help, key ?)
    for status in (
        HostStatus.SUCCEEDED,
        HostStatus.FAILED,
        HostStatus.UNREACHABLE,
        HostStatus.UNKNOWN,
        HostStatus.SKIPPED,
        HostStatus.ABORTED,
        HostStatus.NOT_STARTED,
    ):
        glyph = HOST_GLYPHS[status]
        entries.append((glyph.symbol, glyph.style, glyph.label))
    return entries


def step_legend() -> str:
    """``1 connect 2 upload ...``: what a running host's number means."""
    return "  ".join(f"{number} {step.value}" for step, number in STEP_NUMBERS.items())


def outcome_counts(counts: Mapping[HostStatus, int]) -> list[tuple[str, str]]:
    """(text, style) pieces such as ``✓12`` ``✗1``: the non-zero counts, with symbols."""
    pieces = []
    for status in HostStatus:
        if counts.get(status, 0):
            glyph = HOST_GLYPHS[status]
            pieces.append((f"{glyph.symbol}{counts[status]}", glyph.style))
    return pieces
