"""Helpers for the runner tests: one face for both test fleets (see conftest.py).

``fleet`` is parametrized over the lab (asyncssh hosts, a per-host ``~``) and the
OpenSSH fleet (real sshd, a per-host ``/srv``). Each test gets a fresh app directory on
the fleet's first hosts, reachable both as the runner sees it (a remote path, ``~/...``
on the lab) and as the test reads it (a local path into the host's files).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path

import pytest

from deployer.core.results import DeploymentKind, Step
from deployer.core.runner import Artifact, HookCommand, ReleaseJob, StepStarted
from deployer.core.targets import Host, SshOptions, SshTarget, resolve_ssh
from deployer.hosts.artifact import prepare_artifact
from deployer.hosts.protocol import Go, driver_command, encode

FLEETS = ["lab", pytest.param("openssh", marks=pytest.mark.openssh)]


@dataclass
class AppFleet:
    """A fleet as the runner tests use it."""

    kind: str
    hosts: tuple[Host, ...]
    ssh: SshOptions
    remote_base: str  # where apps go on a host, as the runner writes it
    local_base: Callable[[str], Path]  # that place, seen from the test, per host name
    work: Path
    hang: Callable[[str], None]  # the host (by name) stops answering; healed after the test
    markers: list[str] = field(default_factory=list)

    def target(self, index: int = 0, **changes: object) -> SshTarget:
        return replace(resolve_ssh(self.hosts[index], self.ssh, SshOptions()), **changes)  # type: ignore[arg-type]

    def app(self, index: int = 0, name: str | None = None) -> tuple[str, Path]:
        """A fresh app directory: (the target the runner gets, the same place seen locally)."""
        name = name or f"app-{uuid.uuid4().hex[:8]}"
        host = self.hosts[index].name
        return f"{self.remote_base}/{name}", self.local_base(host) / name

    def marker(self) -> str:
        """A unique number to put in a command line (`sleep <marker>`), killed at teardown."""
        value = f"{300 + len(self.markers)}.{uuid.uuid4().int % 10**6:06d}"
        self.markers.append(value)
        return value


def pids_running(marker: str, *, word: str = "sleep") -> list[int]:
    """Processes on this machine (both fleets' hosts run here) whose command line has ``marker``
    and ``word``."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        with contextlib.suppress(OSError):
            cmdline = (
                Path(f"/proc/{entry}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            )
            if marker in cmdline and word in cmdline:
                found.append(int(entry))
    return found


def kill_marked(marker: str) -> None:
    for pid in pids_running(marker):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def make_artifact(work: Path, version: str, files: dict[str, str] | None = None) -> Artifact:
    """A release directory with a VERSION file (and ``files``), packed."""
    source = work / "src" / uuid.uuid4().hex[:8]
    source.mkdir(parents=True)
    (source / "VERSION").write_text(f"{version}\n")
    for name, text in (files or {}).items():
        path = source / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        if name.endswith(".sh"):
            path.chmod(0o755)
    return prepare_artifact(source, work / "cache")


def hook(step: Step, command: str, timeout: float = 20.0, **options: object) -> HookCommand:
    return HookCommand(step=step, command=command, timeout=timeout, **options)  # type: ignore[arg-type]


def job(
    target: str,
    version: str,
    artifact: Artifact | None,
    *hooks: HookCommand,
    kind: str = DeploymentKind.PUSH,
    keep: int = 5,
    deployment_id: str | None = None,
    **options: object,
) -> ReleaseJob:
    return ReleaseJob(
        deployment_id=deployment_id or f"d-{uuid.uuid4().hex[:10]}",
        app="shop",
        environment="prod",
        version=version,
        kind=kind,
        target=target,
        keep_releases=keep,
        artifact=artifact,
        hooks={h.step: h for h in hooks},
        started_by="alice",
        **options,  # type: ignore[arg-type]
    )


class Recorder:
    """A host event sink that records the steps it is told about; ``on_step`` runs an
    action when a step starts (say, ``runner.stop``)."""

    def __init__(self) -> None:
        self.steps: list[tuple[str, Step]] = []
        self.on_step: dict[Step, Callable[[], None]] = {}

    def __call__(self, event: StepStarted) -> None:
        self.steps.append((event.host, event.step))
        action = self.on_step.get(event.step)
        if action is not None:
            action()


def holds_until_stopped(step: Step) -> HookCommand:
    """A hook that waits until the driver's listener took the controller's ``stop`` (its
    note appears in the records), bounded at 10 s: so the stop surely lands mid-way."""
    return hook(
        step,
        'n=0; while [ ! -e "../../.deploy/$DEPLOY_ID.stop" ] && [ $n -lt 200 ]; do '
        "sleep 0.05; n=$((n + 1)); done",
    )


def run(coroutine: Awaitable[object]) -> object:
    return asyncio.run(asyncio.wait_for(coroutine, timeout=120))  # type: ignore[arg-type]


def wait_until(predicate: Callable[[], bool], timeout: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()


SWITCH_AT = datetime(2026, 12, 6, 12, 0, 0, tzinfo=UTC)
LOCAL_HOST = Host(name="local", address="127.0.0.1", datacenter="dc1")


def drive_locally(push: ReleaseJob, answers: bytes, env: dict[str, str] | None = None) -> list[str]:
    """Run the driver with ``answers`` on stdin; its stdout lines."""
    done = subprocess.run(
        ["/bin/sh", "-c", driver_command(push, LOCAL_HOST)],
        input=answers,
        capture_output=True,
        timeout=60,
        env=env,
        check=True,
    )
    return done.stdout.decode().splitlines()


def go_line(previous: str = "", prune: tuple[int, ...] = (), at: datetime = SWITCH_AT) -> bytes:
    """The wave's one message, as the controller sends it."""
    return encode(Go(at, previous, prune))


def inline_artifact(artifact: Artifact, *, cut: int | None = None) -> bytes:
    """``data <n>``, the artifact's bytes (only the first ``cut`` of them if given), ``sent``."""
    data = Path(artifact.path).read_bytes()
    if cut is not None:
        return f"data {len(data)}\n".encode() + data[:cut]
    return f"data {len(data)}\n".encode() + data + b"sent\n"
