"""Text that came from a host, made safe to show on a terminal.

Hosts send text: hook output, the driver's error lines, a command's stderr. The store
keeps it raw; wherever it is shown on a terminal (CLI lines, the live view, ``status``,
``history``, the TUI) control characters are escaped, so a host cannot move the cursor,
retitle the window, clear the screen, ring the bell or reorder text with bidirectional
marks on the operator's terminal. ``"\\x1b]0;owned\\x07"`` is shown as
``\\x1b]0;owned\\x07``. JSON output needs none of this: JSON escapes them itself.
"""

from __future__ import annotations

import re

# C0 controls but tab and newline, DEL, C1 controls, and the bidirectional marks and
# overrides that reorder what follows them.
_UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")
_UNSAFE_OR_LINE = re.compile("[\t\n]|" + _UNSAFE.pattern)


def _escaped(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def escape_controls(text: str, *, one_line: bool = False) -> str:
    """``text`` with control characters written as escapes (``\\x1b``, ``\\u202e``);
    tabs and newlines kept, unless ``one_line``."""
    return (_UNSAFE_OR_LINE if one_line else _UNSAFE).sub(_escaped, text)
