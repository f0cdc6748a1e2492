"""One line of text that changes often: redrawn in place, never re-laid out."""

from __future__ import annotations

from rich.text import Text
from textual.widget import Widget


class TextLine(Widget):
    """Like a one-line Label, but :meth:`show` only repaints it.

    ``Label.update`` asks for a new layout of the whole screen, which on a screen
    with a 5,000-host grid costs a full redraw; this line's size never depends on
    its text, so a repaint is enough.
    """

    DEFAULT_CSS = """
    TextLine { height: 1; width: 1fr; }
    """

    def __init__(self, text: str | Text = "", *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self._text = Text(text) if isinstance(text, str) else text

    @property
    def text(self) -> Text:
        return self._text

    def show(self, text: str | Text) -> None:
        self._text = Text(text) if isinstance(text, str) else text
        self.refresh()

    def render(self) -> Text:
        return self._text
