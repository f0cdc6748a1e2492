"""The lab's SSH keys: one client key, one host key per host, all ed25519.

Keys already in the lab directory are kept, so a lab stopped and started again
keeps its known_hosts valid for the hosts it had.
"""

from __future__ import annotations

import os
from pathlib import Path

import asyncssh

from deployer.core.errors import LabError


def ensure_key(path: Path, comment: str) -> asyncssh.SSHKey:
    """The ed25519 key at ``path`` (with ``path.pub`` beside it), generated if missing."""
    if path.exists():
        return load_key(path)
    key = asyncssh.generate_private_key("ssh-ed25519", comment=comment)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    # OpenSSH refuses a private key that others can read: create it 0600 from the start.
    descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "wb") as file:
        file.write(key.export_private_key())
    os.replace(partial, path)
    path.with_name(path.name + ".pub").write_bytes(key.export_public_key())
    return key


def load_key(path: Path) -> asyncssh.SSHKey:
    try:
        return asyncssh.read_private_key(path)
    except (OSError, asyncssh.KeyImportError) as error:
        raise LabError(f"cannot read the lab key {path}: {error}") from None


def public_key_line(key: asyncssh.SSHKey) -> str:
    """``ssh-ed25519 AAAA...`` without a comment, as known_hosts wants it."""
    algorithm, data, *_ = key.export_public_key().decode("ascii").split()
    return f"{algorithm} {data}"
