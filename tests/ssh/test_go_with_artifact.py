"""A host staged in its own wave gets its go right behind the artifact (``sent go``).

Run locally (no SSH), on the driver itself: what the controller sends is written to its
stdin as the controller would. The go no longer waits for the driver's ``@@staged``, so
what must hold is that the driver takes the go before it unpacks and hands its input to
the listener then: an abort that comes during the unpack, however long, is noted and
honoured before the first step. A ``tar`` on the driver's PATH holds the unpack until
the test lets it go.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from deployer.core.results import Step
from deployer.core.runner import Artifact
from deployer.hosts.protocol import ARTIFACT_SENT, ARTIFACT_SENT_GO, Stop, driver_command, encode
from tests.ssh.support import (
    LOCAL_HOST,
    drive_locally,
    go_line,
    hook,
    inline_artifact,
    job,
    make_artifact,
    wait_until,
)

HELD_TAR = """#!/bin/sh
: >"{started}"
read _ <"{gate}"
exec /bin/tar "$@"
"""


def _with_go(artifact: Artifact, previous: str) -> bytes:
    """The artifact, then ``sent go`` and the go, as the controller sends them in one write."""
    sent = inline_artifact(artifact)
    assert sent.endswith(ARTIFACT_SENT)
    return sent[: -len(ARTIFACT_SENT)] + ARTIFACT_SENT_GO + go_line(previous)


def _first_release(tmp_path: Path, app: Path, ran: Path) -> None:
    one = make_artifact(tmp_path, "1.0")
    first = job(str(app), "1.0", one, hook(Step.STOP, f"echo stop >>{ran}"))
    lines = drive_locally(first, inline_artifact(one) + go_line(""), {"PATH": "/usr/bin:/bin"})
    assert lines[-2:] == ["@@done succeeded", "@@current 1.0"]


def test_the_go_that_came_with_the_artifact_runs_the_wave_without_another_word(tmp_path: Path) -> None:
    app, ran = tmp_path / "app", tmp_path / "ran.log"
    _first_release(tmp_path, app, ran)
    two = make_artifact(tmp_path, "2.0")
    push = job(str(app), "2.0", two, hook(Step.STOP, f"echo stop >>{ran}"))
    # Nothing after the go: a driver that waited for one more would read EOF and leave.
    lines = drive_locally(push, _with_go(two, previous="1.0"), {"PATH": "/usr/bin:/bin"})
    assert lines[-2:] == ["@@done succeeded", "@@current 2.0"]
    assert "@@staged" in lines
    assert (app / "current").readlink() == Path("releases/2.0")
    assert ran.read_text() == "stop\n"  # 2.0 stopped 1.0


def test_an_abort_during_the_unpack_is_honoured_before_the_first_step(tmp_path: Path) -> None:
    app, ran = tmp_path / "app", tmp_path / "ran.log"
    _first_release(tmp_path, app, ran)
    shims, started, gate = tmp_path / "shims", tmp_path / "tar-started", tmp_path / "gate"
    shims.mkdir()
    (shims / "tar").write_text(HELD_TAR.format(started=started, gate=gate))
    (shims / "tar").chmod(0o755)
    os.mkfifo(gate)
    two = make_artifact(tmp_path, "2.0")
    push = job(str(app), "2.0", two, hook(Step.STOP, f"echo stop >>{ran}"))
    driver = subprocess.Popen(
        ["/bin/sh", "-c", driver_command(push, LOCAL_HOST)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env={"PATH": f"{shims}:/usr/bin:/bin"},
    )
    try:
        assert driver.stdin is not None
        driver.stdin.write(_with_go(two, previous="1.0"))
        driver.stdin.flush()
        assert wait_until(started.exists, timeout=30), "the unpack did not begin"
        driver.stdin.write(encode(Stop()))  # the operator's abort, while the unpack is held
        driver.stdin.flush()
        stop_note = app / ".deploy" / f"{push.deployment_id}.stop"
        assert wait_until(stop_note.exists, timeout=30), "the listener did not note the abort"
        with gate.open("w") as release_the_unpack:
            release_the_unpack.write("go on\n")
        out, _ = driver.communicate(timeout=60)
    finally:
        if driver.poll() is None:
            driver.kill()
            driver.wait(timeout=10)
    lines = out.decode().splitlines()
    assert lines[-2:] == ["@@done aborted:stop", "@@current 1.0"]
    assert (app / "current").readlink() == Path("releases/1.0")
    assert not ran.exists()  # no hook ran: 1.0 was never stopped
    assert (app / "releases" / "2.0" / "VERSION").read_text() == "2.0\n"  # staged, not live
    assert not stop_note.exists()  # the driver's notes go as it leaves
