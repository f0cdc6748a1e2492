"""Small modal screens: a yes/no question, and the help."""

from __future__ import annotations

from typing import ClassVar

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Static

from tui.filter import FILTER_HELP
from tui.glyphs import legend, step_legend
from tui.widgets.key_bar import KeyBar


class ConfirmScreen(ModalScreen[bool]):
    """Asks one question; dismissed with True (y) or False (n, Escape)."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("y", "answer(True)", "Yes"),
        Binding("n", "answer(False)", "No"),
        Binding("escape", "answer(False)", "No", show=False),
    ]

    def __init__(self, question: str, detail: str = "", *, yes: str = "Yes", no: str = "No") -> None:
        super().__init__()
        self.question = question
        self.detail = detail
        self.yes_label = yes
        self.no_label = no

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Static(Text(self.question, style="bold"), id="question")
            if self.detail:
                yield Static(self.detail, id="detail")
            with Horizontal(id="buttons"):
                yield Button(f"{self.yes_label} [y]", variant="error", id="yes")
                yield Button(f"{self.no_label} [n]", variant="primary", id="no")
        yield KeyBar()

    def on_mount(self) -> None:
        self.query_one("#no", Button).focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "yes")

    def action_answer(self, answer: bool) -> None:
        self.dismiss(answer)


KEYS = (
    ("Live deployment", ""),
    ("p", "pause: no new host starts (hosts in flight finish)"),
    ("r", "resume a paused deployment"),
    ("a", "abort: asks first; hosts in flight finish, no new host starts"),
    ("/", "filter the host list: " + FILTER_HELP),
    ("enter", "open the host under the cursor: its steps, exit statuses and output"),
    ("h", "history of this app and environment"),
    ("v", "versions across the fleet, now or at a moment"),
    ("Everywhere", ""),
    ("escape", "back to the previous screen"),
    ("?", "this help"),
    ("q", "quit (a deployment started elsewhere keeps running)"),
)


class HelpScreen(ModalScreen[None]):
    """The keys, and what the symbols mean."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,q,question_mark", "close", "Close"),
    ]

    def compose(self) -> ComposeResult:
        keys = Table.grid(padding=(0, 2))
        keys.add_column(style="bold cyan", no_wrap=True)
        keys.add_column()
        for key, meaning in KEYS:
            if meaning:
                keys.add_row(key, meaning)
            else:
                keys.add_row(Text(key, style="bold underline"), "")
        symbols = Text()
        for symbol, style, meaning in legend():
            symbols.append(symbol, style=style)
            symbols.append(f" {meaning}   ")
        with Vertical(id="dialog"):
            yield Static(Text("Keys", style="bold"))
            yield Static(keys)
            yield Static(Text("\nHost symbols", style="bold"))
            yield Static(symbols)
            yield Static(Text("A running host shows its step: " + step_legend(), style="dim"))
        yield KeyBar()

    def action_close(self) -> None:
        self.dismiss(None)
