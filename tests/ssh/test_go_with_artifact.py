"""A host staged in its own wave gets its go right behind the artifact (``sent go``).

The go no longer waits for the driver's ``@@staged``, so what must hold is that the
driver takes the go before it unpacks and hands its input to the listener then: an
abort that comes during the unpack, however long, is noted and honoured before the
first step. A ``tar`` early on the driver's PATH holds the unpack until the test lets
it go (a FIFO: nothing is timed). Once on the driver alone (the controller's lines
written by the test), once through the runner against a lab host, where the abort is
the operator's (``SshRunner.stop``).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import pytest

from deployer.core.clock import utcnow
from deployer.core.results import HostStatus, Step
from deployer.core.runner import Artifact
from deployer.core.targets import SshOptions, resolve_ssh
from deployer.hosts.protocol import ARTIFACT_SENT, ARTIFACT_SENT_GO, Go, Stop, driver_command, encode
from deployer.hosts.ssh import SshRunner
from tests.plugins.lab_fleet import LabFleet, start_test_lab
from tests.ssh.support import (
    LOCAL_HOST,
    Recorder,
    drive_locally,
    go_line,
    hook,
    inline_artifact,
    job,
    make_artifact,
    run,
    wait_until,
)

# Holds only while the FIFO `hold` exists, so the same PATH serves every other deployment.
HELD_TAR = """#!/bin/sh
if [ -p "{hold}" ]; then
    : >"{started}"
    read _ <"{hold}"
fi
exec {tar} "$@"
"""


@dataclass(frozen=True)
class HeldTar:
    """A directory to put first on a PATH, whose tar waits while ``hold`` is a FIFO."""

    path: Path
    hold: Path
    started: Path  # made once a held tar began to wait

    @classmethod
    def make(cls, directory: Path) -> HeldTar:
        held = cls(directory / "shims", directory / "hold", directory / "tar-started")
        held.path.mkdir()
        tar = shutil.which("tar")
        assert tar is not None
        (held.path / "tar").write_text(HELD_TAR.format(hold=held.hold, started=held.started, tar=tar))
        (held.path / "tar").chmod(0o755)
        return held

    @contextlib.contextmanager
    def holding(self) -> Iterator[None]:
        os.mkfifo(self.hold)
        try:
            yield
        finally:
            self.hold.unlink()
            self.let_go()  # a tar still waiting (the test failed half-way) goes on

    def let_go(self) -> None:
        """Let a waiting tar go on (the FIFO has a reader); nothing when none waits."""
        try:
            fd = os.open(self.hold, os.O_WRONLY | os.O_NONBLOCK)
        except OSError:  # no reader (ENXIO), or the FIFO is gone
            return
        try:
            os.write(fd, b"go on\n")
        finally:
            os.close(fd)


def _with_go(artifact: Artifact, previous: str) -> bytes:
    """The artifact, then ``sent go`` and the go, as the controller sends them in one write
    (with no time: the unpack comes between, so the host dates the switch)."""
    sent = inline_artifact(artifact)
    assert sent.endswith(ARTIFACT_SENT)
    return sent[: -len(ARTIFACT_SENT)] + ARTIFACT_SENT_GO + encode(Go(None, previous, ()))


def _first_release(tmp_path: Path, app: Path, ran: Path) -> None:
    one = make_artifact(tmp_path, "1.0")
    first = job(str(app), "1.0", one, hook(Step.STOP, f"echo stop >>{ran}"))
    lines = drive_locally(first, inline_artifact(one) + go_line(""), {"PATH": "/usr/bin:/bin"})
    assert lines[-2:] == ["@@done succeeded", "@@current 1.0"]


def _switched_at(app: Path, version: str) -> datetime:
    """When revisions.log says ``version`` went live (its last line for it)."""
    lines = [line.split("\t") for line in (app / "revisions.log").read_text().splitlines()]
    return datetime.strptime([when for when, v, *_ in lines if v == version][-1], "%Y-%m-%dT%H:%M:%S%z")


def test_the_go_that_came_with_the_artifact_runs_the_wave_without_another_word(tmp_path: Path) -> None:
    app, ran = tmp_path / "app", tmp_path / "ran.log"
    _first_release(tmp_path, app, ran)
    two = make_artifact(tmp_path, "2.0")
    push = job(str(app), "2.0", two, hook(Step.STOP, f"echo stop >>{ran}"))
    before = utcnow().replace(microsecond=0)
    # Nothing after the go: a driver that waited for one more would read EOF and leave.
    lines = drive_locally(push, _with_go(two, previous="1.0"), {"PATH": "/usr/bin:/bin"})
    assert lines[-2:] == ["@@done succeeded", "@@current 2.0"]
    assert "@@staged" in lines
    assert (app / "current").readlink() == Path("releases/2.0")
    assert ran.read_text() == "stop\n"  # 2.0 stopped 1.0
    assert before <= _switched_at(app, "2.0") <= utcnow()  # the host's clock, at the switch


def test_an_abort_during_the_unpack_is_honoured_before_the_first_step(tmp_path: Path) -> None:
    app, ran = tmp_path / "app", tmp_path / "ran.log"
    _first_release(tmp_path, app, ran)
    held = HeldTar.make(tmp_path)
    two = make_artifact(tmp_path, "2.0")
    push = job(str(app), "2.0", two, hook(Step.STOP, f"echo stop >>{ran}"))
    stop_note = app / ".deploy" / f"{push.deployment_id}.stop"
    with held.holding():
        driver = subprocess.Popen(
            ["/bin/sh", "-c", driver_command(push, LOCAL_HOST)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env={"PATH": f"{held.path}:/usr/bin:/bin"},
            start_new_session=True,  # its own group: the held tar goes with it should the test fail
        )
        try:
            assert driver.stdin is not None
            driver.stdin.write(_with_go(two, previous="1.0"))
            driver.stdin.flush()
            assert wait_until(held.started.exists, timeout=30), "the unpack did not begin"
            driver.stdin.write(encode(Stop()))  # the operator's abort, while the unpack is held
            driver.stdin.flush()
            assert wait_until(stop_note.exists, timeout=30), "the listener did not note the abort"
            held.let_go()
            out, _ = driver.communicate(timeout=60)
        finally:
            if driver.poll() is None:
                os.killpg(driver.pid, signal.SIGKILL)
                driver.wait(timeout=10)
    lines = out.decode().splitlines()
    assert lines[-2:] == ["@@done aborted:stop", "@@current 1.0"]
    assert (app / "current").readlink() == Path("releases/1.0")
    assert not ran.exists()  # no hook ran: 1.0 was never stopped
    assert (app / "releases" / "2.0" / "VERSION").read_text() == "2.0\n"  # staged, not live
    assert not stop_note.exists()  # the driver's notes go as it leaves


@pytest.fixture(scope="module")
def held_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LabFleet, HeldTar]]:
    """A one-host lab whose commands find the held tar first on their PATH (the lab's own)."""
    held = HeldTar.make(tmp_path_factory.mktemp("held"))
    with pytest.MonkeyPatch.context() as env:
        env.setenv("PATH", f"{held.path}:{os.environ['PATH']}")
        lab = start_test_lab(tmp_path_factory.mktemp("lab"), hosts=1, datacenters=1)
    with lab:
        yield lab, held


def test_an_operators_abort_during_the_unpack_keeps_the_host_on_its_old_release(
    held_lab: tuple[LabFleet, HeldTar], tmp_path: Path
) -> None:
    lab, held = held_lab
    host = lab.hosts[0]
    target = resolve_ssh(host, lab.ssh_options, SshOptions())
    app = f"~/apps/held-{tmp_path.name}"
    local = lab.home(host.name) / "apps" / f"held-{tmp_path.name}"
    ran = tmp_path / "ran.log"
    stop_hook = hook(Step.STOP, f"echo stop >>{ran}")
    one, two = make_artifact(tmp_path, "1.0"), make_artifact(tmp_path, "1.1")
    pushed = job(app, "1.1", two, stop_hook, hook(Step.START, "true"))
    stop_note = local / ".deploy" / f"{pushed.deployment_id}.stop"

    async def until(exists: Path) -> None:
        async with asyncio.timeout(60):
            while not exists.exists():
                await asyncio.sleep(0.01)

    async def scenario() -> object:
        runner = SshRunner()
        try:
            first = await runner.deploy(target, job(app, "1.0", one, stop_hook), Recorder())
            assert first.status == HostStatus.SUCCEEDED, first.error
            with held.holding():
                # Not staged ahead: staged in its wave, the go right behind the artifact.
                deploying = asyncio.create_task(runner.deploy(target, pushed, Recorder()))
                await until(held.started)
                runner.stop(pushed.deployment_id)
                await until(stop_note)  # the driver's listener has it, the unpack still held
                held.let_go()
                return await deploying
        finally:
            await runner.aclose()

    result = run(scenario())
    assert (result.status, result.step) == (HostStatus.ABORTED, Step.STOP), result
    assert (local / "current").readlink() == Path("releases/1.0")
    assert not ran.exists()  # 1.0 was never stopped
    assert (local / "releases" / "1.1" / "VERSION").read_text() == "1.1\n"  # staged, not live
