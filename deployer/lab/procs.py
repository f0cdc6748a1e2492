"""Facts about processes, read from /proc, and the one prctl the lab needs.

Linux only, as the lab is: it reads ``/proc/PID/stat`` and ``/proc/PID/cmdline``.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

_PR_SET_CHILD_SUBREAPER = 36  # from <linux/prctl.h>


@dataclass(frozen=True, slots=True)
class ProcessEntry:
    pid: int
    parent: int
    state: str  # "R", "S", "Z" (a zombie: dead, not yet reaped), ...

    @property
    def is_zombie(self) -> bool:
        return self.state == "Z"


def _entry(pid: int) -> ProcessEntry | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # "pid (comm) state ppid ...": comm may hold spaces and parentheses; the state follows the last ")".
    state, parent, *_ = stat[stat.rindex(")") + 2 :].split()
    return ProcessEntry(pid, int(parent), state)


def process_is_alive(pid: int) -> bool:
    """Whether ``pid`` is a live process (a zombie, dead but not yet reaped, is not)."""
    entry = _entry(pid)
    return entry is not None and not entry.is_zombie


def process_argv(pid: int) -> list[bytes]:
    """The command line of ``pid``, empty when it is gone or unreadable."""
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return []


def process_table() -> dict[int, ProcessEntry]:
    """Every process on the machine, by pid, as /proc shows it right now."""
    table = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            entry = _entry(int(name))
            if entry is not None:
                table[entry.pid] = entry
    return table


def live_descendants(root: int, table: Mapping[int, ProcessEntry]) -> list[int]:
    """The pids below ``root`` in ``table`` that are not zombies (``root`` itself excluded)."""
    children: dict[int, list[int]] = {}
    for entry in table.values():
        children.setdefault(entry.parent, []).append(entry.pid)
    found, queue = [], list(children.get(root, []))
    while queue:
        pid = queue.pop()
        queue.extend(children.get(pid, []))
        if not table[pid].is_zombie:
            found.append(pid)
    return found


def become_subreaper() -> bool:
    """Make orphaned descendants of this process its children (not init's); False if refused.

    With it, a command that daemonizes itself (``setsid``, a double fork) stays below
    the lab process, so stopping the lab can find and stop it.
    """
    libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
    return int(libc.prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)) == 0
