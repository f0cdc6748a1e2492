"""Counts in sentences: ``1 host``, ``2 hosts``. Pure; shared by the CLI, the events and the TUI."""

from __future__ import annotations


def count_of(count: int, noun: str, plural: str | None = None) -> str:
    """``count`` and ``noun`` in the right number: ``count_of(1, "host") == "1 host"``.

    ``plural`` for nouns that do not just take an ``s``: ``count_of(2, "was", "were")``.
    """
    return f"{count} {noun if count == 1 else plural or noun + 's'}"
