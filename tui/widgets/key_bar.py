"""The key bar at the foot of every screen: what the keys do now, drawn as one line.

Textual's Footer is a widget per key, and it builds them all anew after every change
of focus or bindings, with a new layout of the screen each time. The live screen's
keys change as a deployment goes (pause gives way to resume, and all three controls
go when it ends), and that rebuild would be most of the refresh that shows it.
This bar is one widget drawn as one line: a change repaints that line, and nothing
at all when the keys shown, their labels and whether they can be used stay the same.
"""

from __future__ import annotations

from typing import Any, ClassVar, NamedTuple

from rich.segment import Segment
from rich.style import Style
from textual import events
from textual.screen import Screen
from textual.strip import Strip
from textual.widget import Widget


class ShownKey(NamedTuple):
    key: str  # what pressing it means, as Textual names keys
    display: str  # how the key is written on the bar
    description: str
    enabled: bool  # False: shown dimmed, it cannot be used now


class KeyBar(Widget, can_focus=False):
    """The screen's active bindings marked ``show``, each as `` key description`` (one per
    action, as Textual's Footer does); a click on one presses its key."""

    DEFAULT_CSS = """
    KeyBar {
        dock: bottom;
        height: 1;
        background: $footer-background;
        color: $footer-foreground;
        & > .key-bar--key {
            color: $footer-key-foreground;
            background: $footer-key-background;
            text-style: bold;
        }
        & > .key-bar--description {
            color: $footer-description-foreground;
            background: $footer-description-background;
        }
        & > .key-bar--disabled { text-style: dim; }
    }
    """

    COMPONENT_CLASSES: ClassVar[set[str]] = {"key-bar--key", "key-bar--description", "key-bar--disabled"}

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.keys: tuple[ShownKey, ...] = ()
        self._spans: list[tuple[int, int, ShownKey]] = []  # where each key is drawn: [start, end)

    def on_mount(self) -> None:
        self.screen.bindings_updated_signal.subscribe(self, self._bindings_changed)
        self._bindings_changed(self.screen)

    def on_unmount(self) -> None:
        self.screen.bindings_updated_signal.unsubscribe(self)

    def _bindings_changed(self, screen: Screen[Any]) -> None:
        by_action: dict[str, ShownKey] = {}  # several keys for one action: the first says it
        for _node, binding, enabled, _tooltip in screen.active_bindings.values():
            if binding.show and binding.action not in by_action:
                by_action[binding.action] = ShownKey(
                    binding.key, self.app.get_key_display(binding), binding.description, enabled
                )
        keys = tuple(by_action.values())
        if keys != self.keys:
            self.keys = keys
            self.refresh()

    def render_line(self, y: int) -> Strip:
        width = self.size.width
        base = self.rich_style
        if y != 0:
            return Strip.blank(width, base)
        key_style = base + self.get_component_rich_style("key-bar--key")
        description_style = base + self.get_component_rich_style("key-bar--description")
        disabled = self.get_component_rich_style("key-bar--disabled")
        segments: list[Segment] = []
        self._spans = []
        x = 0
        for shown in self.keys:
            dim = disabled if not shown.enabled else Style()
            start = x
            parts = ((f" {shown.display} ", key_style), (f"{shown.description} ", description_style))
            for text, style in parts:
                segment = Segment(text, style + dim)
                segments.append(segment)
                x += segment.cell_length
            self._spans.append((start, x, shown))
        return Strip(segments, x).adjust_cell_length(width, base)

    def on_mouse_down(self, event: events.MouseDown) -> None:
        for start, end, shown in self._spans:
            if start <= event.x < end:
                if shown.enabled:
                    self.app.simulate_key(shown.key)
                else:
                    self.app.bell()
                return
