"""Real SSH clients against a lab: asyncssh, and OpenSSH's ``ssh`` binary."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import asyncssh

from deployer.core.targets import Host


async def connect(
    host: Host, lab_dir: Path, *, timeout: float = 5.0, key: asyncssh.SSHKey | None = None
) -> asyncssh.SSHClientConnection:
    """A connection as the deployer makes one: the lab's key, strict known_hosts."""
    return await asyncssh.connect(
        host.address,
        port=host.port,
        username=host.user,
        client_keys=[key if key is not None else str(lab_dir / "client_key")],
        known_hosts=str(lab_dir / "known_hosts"),
        agent_path=None,
        config=[],
        connect_timeout=timeout,
    )


async def run(host: Host, lab_dir: Path, command: str) -> asyncssh.SSHCompletedProcess:
    async with await connect(host, lab_dir) as conn:
        result = await conn.run(command, timeout=10)
    return result


def openssh(
    host: Host, lab_dir: Path, command: str, *, key: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """``ssh`` as a person would type it, with the lab's files and nothing from ~/.ssh."""
    binary = shutil.which("ssh")
    assert binary is not None, "OpenSSH's ssh client is not installed"
    return subprocess.run(
        [
            binary,
            "-F",
            "/dev/null",
            "-i",
            str(key if key is not None else lab_dir / "client_key"),
            "-o",
            f"UserKnownHostsFile={lab_dir / 'known_hosts'}",
            "-o",
            "StrictHostKeyChecking=yes",
            "-o",
            "IdentitiesOnly=yes",
            "-o",
            "BatchMode=yes",
            "-o",
            "ConnectTimeout=5",
            "-p",
            str(host.port),
            f"{host.user}@{host.address}",
            command,
        ],
        capture_output=True,
        text=True,
        timeout=20,
        stdin=subprocess.DEVNULL,
    )
