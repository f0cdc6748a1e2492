"""What ``deploy push --tui`` shows until the deployment is recorded and has an id."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.screen import Screen
from textual.widgets import Log, Static

from tui.widgets.key_bar import KeyBar


class StartingScreen(Screen[None]):
    """A line per event until the live screen takes over; the owner calls :meth:`say`."""

    def __init__(self, what: str = "starting the deployment") -> None:
        super().__init__()
        self.what = what

    def compose(self) -> ComposeResult:
        yield Static(Text(f"{self.what}…", style="bold"), id="starting-title")
        yield Log(id="starting-log", highlight=False)
        yield KeyBar()

    def on_mount(self) -> None:
        self.title = self.what

    def say(self, line: str) -> None:
        self.query_one(Log).write_line(line)
