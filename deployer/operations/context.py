"""Who runs an operation (:class:`Identity`), the runner it uses, and errors told on one line."""

from __future__ import annotations

import contextlib
import getpass
import os
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass

from deployer.core.runner import HostRunner
from deployer.hosts.ssh import SshRunner


@dataclass(frozen=True, slots=True)
class Identity:
    """Who runs this controller, from where."""

    user: str
    machine: str
    pid: int

    @classmethod
    def here(cls) -> Identity:
        return cls(user=getpass.getuser(), machine=socket.gethostname(), pid=os.getpid())


@contextlib.asynccontextmanager
async def runner_scope(runner: HostRunner | None) -> AsyncIterator[HostRunner]:
    """The caller's runner as it is, or an SSH runner of our own, closed when done."""
    if runner is not None:
        yield runner
        return
    own = SshRunner()
    try:
        yield own
    finally:
        await own.aclose()


def one_line_of(error: BaseException) -> str:
    """An error's message on one line (a spec error may hold several)."""
    return "; ".join(str(error).splitlines())
