"""How many hosts the controller may hold a connection to at once: the open-file limit.

Every host in flight, and every host staged ahead of its wave, holds one SSH connection,
that is one file descriptor; past the process's soft limit even reading /etc/passwd
fails, and hosts would fail with errors about that instead of a word about the limit.
``deploy`` raises the soft limit to the hard one as it starts (see
:func:`raise_open_file_limit`); what is left bounds how many hosts run and stage at once,
and a wave larger than that runs in parts, said once, instead of failing hosts.
"""

from __future__ import annotations

import contextlib
import resource

MAX_OPEN_FILES = 65536  # what deploy raises its soft open-file limit to, at most
# Descriptors kept for everything but hosts' connections: the store, logs, pipes of gate
# and inventory commands, a ProxyCommand's pipes, the TUI.
RESERVED_FILES = 128


def raise_open_file_limit() -> None:
    """Raise the soft limit on open files to the hard one (at most MAX_OPEN_FILES).

    A user's shell usually allows 1,024 files: a 2,000-host push at 50% with the next
    wave staged needs more.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    # Capped: the limit is passed on to every command we start (inventory scripts, gates,
    # ProxyCommand), and some of those walk every possible descriptor when they begin.
    wanted = min(hard, MAX_OPEN_FILES) if hard != resource.RLIM_INFINITY else MAX_OPEN_FILES
    if soft < wanted:
        with contextlib.suppress(ValueError, OSError):  # a hard limit the kernel will not grant
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))


def connection_capacity(soft_limit: int) -> int:
    """Hosts that may hold a connection at once under ``soft_limit`` open files (at least 1)."""
    return max(1, soft_limit - RESERVED_FILES)


def current_connection_capacity() -> int:
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    return connection_capacity(MAX_OPEN_FILES if soft == resource.RLIM_INFINITY else soft)


def capacity_note(largest_wave: int, capacity: int) -> str | None:
    """The sentence for an operator whose waves do not fit, or None when they do."""
    if largest_wave <= capacity:
        return None
    return (
        f"the open-file limit lets {capacity} hosts hold a connection at once, fewer than the "
        f"{largest_wave} of the largest wave: each wave runs in parts of at most {capacity} "
        f"(raise it with `ulimit -n` to run a wave at once)"
    )
