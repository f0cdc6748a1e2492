"""``deploy check``: could a deployment run on each host? Asked before any host is touched.

For every selected host: can we connect (its host key known, our key accepted), can the
app's target directory be made or written, is there room for the artifact, and does the
host have the commands the driver runs. A host answers by ``deployer/hosts/remote/check.sh``,
which only looks: the check changes nothing on a host and records no deployment.

Room for the artifact: while a release is unpacked the host holds both the uploaded
.tar.gz and the files it unpacks to, so a host needs the artifact's size plus its
unpacked size free (a .tar.gz says the latter in its last four bytes, modulo 4 GiB).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from deployer.core.runner import Artifact, CheckAnswer
from deployer.core.targets import SshTarget
from deployer.core.wording import count_of, format_table
from deployer.hosts.protocol import remote_command, remote_script, split_marker

CHECK_CONCURRENCY = 64  # hosts checked at once


class Checker(Protocol):
    """Runs the check command on a host (:class:`deployer.hosts.ssh.SshRunner`)."""

    async def check(self, target: SshTarget, command: str) -> CheckAnswer: ...


@dataclass(frozen=True, slots=True)
class HostCheck:
    """One host's verdict: ``status`` is ``ok``, ``failed`` or ``unreachable``."""

    name: str
    address: str
    status: str
    problems: tuple[str, ...]
    free_bytes: int | None = None

    @property
    def is_ok(self) -> bool:
        return self.status == "ok"


def check_command(app_target: str) -> str:
    """The exec command that runs check.sh on a host (:func:`remote_command`)."""
    return remote_command(remote_script("check.sh"), "check", app_target)


def needed_bytes(artifact: Artifact | None) -> int:
    """Free space a host needs for ``artifact``: the .tar.gz plus what it unpacks to.

    A 30 MB .tar.gz of a 100 MB tree needs 130 MB. The unpacked size is the gzip
    trailer's (ISIZE, the size modulo 4 GiB); an unreadable one counts as nothing.
    """
    if artifact is None:
        return 0
    try:
        with Path(artifact.path).open("rb") as file:
            file.seek(-4, 2)
            unpacked = int.from_bytes(file.read(4), "little")
    except OSError:
        unpacked = 0
    return artifact.size + unpacked


def parse_check(name: str, address: str, answer: CheckAnswer, need: int) -> HostCheck:
    """A host's :class:`CheckAnswer` (``check.sh``'s lines) as its verdict."""
    if answer.output is None:
        status = "unreachable" if answer.unreachable else "failed"
        return HostCheck(name, address, status, (answer.error or "the check did not run",))
    problems: list[str] = []
    missing: list[str] = []
    free: int | None = None
    where = ""
    for line in answer.output.splitlines():
        marker = split_marker(line)
        if marker is None:
            continue
        word, rest = marker
        if word == "missing":
            missing.append(rest)
        elif word == "problem":
            problems.append(rest)
        elif word == "free":
            kilobytes, _, where = rest.partition(" ")
            free = int(kilobytes) * 1024 if kilobytes.isdigit() else None
    if missing:
        problems.insert(0, f"missing commands the driver needs: {', '.join(missing)}")
    if free is not None and free < need:
        problems.append(f"only {human_bytes(free)} free in {where}; the artifact needs {human_bytes(need)}")
    return HostCheck(name, address, "failed" if problems else "ok", tuple(problems), free)


def human_bytes(count: int) -> str:
    """``1536`` → ``1.5 KiB``; whole bytes below a KiB."""
    size = float(count)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if size < 1024 or unit == "TiB":
            return f"{count} B" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    raise AssertionError("unreachable")


async def check_hosts(
    checker: Checker,
    targets: Sequence[SshTarget],
    app_target: str,
    need: int,
    *,
    concurrency: int = CHECK_CONCURRENCY,
) -> list[HostCheck]:
    """Every target's verdict, in the targets' order, at most ``concurrency`` at once."""
    command = check_command(app_target)
    slots = asyncio.Semaphore(concurrency)

    async def one(target: SshTarget) -> HostCheck:
        async with slots:
            answer = await checker.check(target, command)
        host = target.host
        return parse_check(host.name, f"{host.address}:{host.port}", answer, need)

    return list(await asyncio.gather(*(one(target) for target in targets)))


def checks_json(checks: Sequence[HostCheck], *, app: str, environment: str, need: int) -> dict[str, Any]:
    return {
        "app": app,
        "environment": environment,
        "ok": all(check.is_ok for check in checks),
        "needed_bytes": need,
        "hosts": [
            {
                "name": check.name,
                "address": check.address,
                "status": check.status,
                "free_bytes": check.free_bytes,
                "problems": list(check.problems),
            }
            for check in checks
        ],
    }


def checks_text(checks: Sequence[HostCheck]) -> str:
    """One table, a host a line, then a count: ``3 hosts checked: 2 ok, 1 failed``."""
    rows = [
        (
            check.name,
            check.address,
            check.status,
            "-" if check.free_bytes is None else human_bytes(check.free_bytes),
            "; ".join(check.problems),
        )
        for check in checks
    ]
    lines = format_table(("host", "address", "result", "free", "problem"), rows)
    counts: dict[str, int] = {}
    for check in checks:
        counts[check.status] = counts.get(check.status, 0) + 1
    tally = ", ".join(f"{number} {status}" for status, number in counts.items())
    lines.append(f"{count_of(len(checks), 'host')} checked: {tally}")
    return "\n".join(lines)
