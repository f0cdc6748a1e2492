"""Running a local command (a gate's check, a notification sink) with a hard time limit.

The command runs under ``/bin/sh -c`` in a session of its own, so at its timeout (or
when the caller is cancelled) the whole process group is killed, children included:
a ``curl`` that hangs cannot outlive the deployment.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import Mapping
from dataclasses import dataclass

OUTPUT_KEPT = 4096  # bytes of output kept: the end, where the reason usually is


@dataclass(frozen=True, slots=True)
class CommandResult:
    exit_status: int
    output: str  # stdout and stderr together, the last OUTPUT_KEPT bytes


async def run_local(
    command: str, *, env: Mapping[str, str], timeout: float, stdin: bytes = b""
) -> CommandResult:
    """Run ``command`` with ``stdin`` fed to it; TimeoutError (its group killed) after ``timeout``.

    OSError when it cannot start at all.
    """
    process = await asyncio.create_subprocess_exec(
        "/bin/sh",
        "-c",
        command,
        env=dict(env),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        async with asyncio.timeout(timeout):
            output = await _feed_and_read(process, stdin)
            exit_status = await process.wait()
    except BaseException:
        _kill_group(process.pid)
        with contextlib.suppress(ProcessLookupError):
            await asyncio.shield(process.wait())
        raise
    return CommandResult(exit_status, output.decode("utf-8", "replace"))


async def _feed_and_read(process: asyncio.subprocess.Process, stdin: bytes) -> bytes:
    assert process.stdin is not None and process.stdout is not None

    async def feed() -> None:
        assert process.stdin is not None
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):  # it need not read it all
            process.stdin.write(stdin)
            await process.stdin.drain()
        process.stdin.close()

    feeding = asyncio.create_task(feed())
    kept = b""
    try:
        while chunk := await process.stdout.read(65536):
            kept = (kept + chunk)[-OUTPUT_KEPT:]
    finally:
        feeding.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await feeding
    return kept


def _kill_group(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)
