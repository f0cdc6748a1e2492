"""How the artifact reaches the driver: on its own channel where GNU head reads exactly.

Most tests run the driver locally (no SSH), with every answer of the controller written
to its stdin before it starts: the driver must read each answer exactly where it stands.
A head that read ahead would swallow the answers after the artifact and the run would
not succeed. The last one deploys over SSH to a lab host without GNU head.
"""

from __future__ import annotations

import asyncio
import base64
import os
import random
import sys
from pathlib import Path

import pytest

from deployer.core.results import HostResult, HostStatus, Step
from deployer.core.targets import SshOptions, resolve_ssh
from deployer.hosts.ssh import SshRunner
from tests.plugins.lab_fleet import LabFleet, start_test_lab
from tests.ssh.support import (
    Recorder,
    drive_locally,
    go_line,
    hook,
    inline_artifact,
    job,
    make_artifact,
    pids_running,
    run,
)


def test_the_artifact_comes_between_the_controllers_answers_on_one_channel(tmp_path: Path) -> None:
    artifact = make_artifact(tmp_path, "1.0", {"app.py": "print('hi')\n" * 2000})
    push = job(str(tmp_path / "app"), "1.0", artifact)
    # the artifact, then the wave's go; no prune: the host holds fewer releases than it keeps
    lines = drive_locally(push, inline_artifact(artifact) + go_line())
    file = tmp_path / "app" / ".deploy" / f"{push.deployment_id}.artifact.tar.gz"
    assert f"@@need-artifact {file} stdin" in lines
    assert lines[-2:] == ["@@done succeeded", "@@current 1.0"]
    current = tmp_path / "app" / "current"
    assert (current / "VERSION").read_text() == "1.0\n"
    assert (current / "app.py").read_text() == "print('hi')\n" * 2000
    assert file.stat().st_size == 0  # unpacked, it takes no room on the host
    # The go message dates the switch: the driver needs no date(1) of its own.
    (line,) = (tmp_path / "app" / "revisions.log").read_text().splitlines()
    assert line.startswith("2026-12-06T12:00:00Z\t1.0\t")


def _without_gnu_head(tmp_path: Path) -> Path:
    """A directory whose ``head`` is laid out as busybox's: a symbolic link to a
    multi-call binary (here GNU's own head: the driver must not run it to find out)."""
    shims = tmp_path / "shims"
    shims.mkdir()
    (shims / "head").symlink_to("/usr/bin/head")
    return shims


def test_without_gnu_head_the_controller_writes_the_file_itself(tmp_path: Path) -> None:
    shims = _without_gnu_head(tmp_path)
    artifact = make_artifact(tmp_path, "1.0")
    push = job(str(tmp_path / "app"), "1.0", artifact)
    records = tmp_path / "app" / ".deploy"
    records.mkdir(parents=True)
    file = records / f"{push.deployment_id}.artifact.tar.gz"
    file.write_bytes(Path(artifact.path).read_bytes())  # what the second channel would write
    env = {"PATH": f"{shims}:/usr/bin:/bin", "HOME": str(tmp_path)}
    lines = drive_locally(push, b"sent\n" + go_line(), env)
    assert f"@@need-artifact {file} file" in lines
    assert lines[-2:] == ["@@done succeeded", "@@current 1.0"]
    assert ((tmp_path / "app" / "current") / "VERSION").read_text() == "1.0\n"


def test_a_controller_gone_half_way_through_the_artifact_leaves_the_host_as_it_was(
    tmp_path: Path,
) -> None:
    app = tmp_path / "app"
    (app / "releases" / "0.9").mkdir(parents=True)
    (app / "current").symlink_to("releases/0.9")
    artifact = make_artifact(tmp_path, "1.0", {"app.py": "x = 1\n" * 5000})
    push = job(str(app), "1.0", artifact)
    lines = drive_locally(push, inline_artifact(artifact, cut=100))
    assert not any(line.startswith("@@done") for line in lines)
    assert (app / "current").readlink() == Path("releases/0.9")
    assert sorted(p.name for p in (app / "releases").iterdir()) == ["0.9"]
    assert list((app / ".deploy").iterdir()) == []


def test_without_gnu_head_the_runner_sends_the_artifact_on_a_second_channel(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", f"{_without_gnu_head(tmp_path)}:{os.environ['PATH']}")  # the lab's hosts' PATH
    artifact = make_artifact(tmp_path, "1.0")
    push = job("~/app", "1.0", artifact)

    async def deploy() -> HostResult:
        runner = SshRunner()
        try:
            return await runner.deploy(
                resolve_ssh(lab.hosts[0], lab.ssh_options, SshOptions()), push, Recorder()
            )
        finally:
            await runner.aclose()

    with start_test_lab(tmp_path / "lab", 1, 1) as lab:
        result = run(deploy())
        assert isinstance(result, HostResult)
        # The driver asked for the file (it takes `data` only after asking for stdin), and
        # the runner wrote it through a second channel before saying `sent`.
        assert (result.status, result.version, result.uploaded) == (HostStatus.SUCCEEDED, "1.0", True)
        assert (lab.home(lab.hosts[0].name) / "app" / "current" / "VERSION").read_text() == "1.0\n"


@pytest.mark.parametrize("answer", [b"", b"stop\n", b"go sideways\n"], ids=["gone", "stop", "garbled"])
def test_a_host_staged_but_never_given_its_go_keeps_the_release_and_nothing_else(
    tmp_path: Path, answer: bytes
) -> None:
    app = tmp_path / "app"
    (app / "releases" / "0.9").mkdir(parents=True)
    (app / "current").symlink_to("releases/0.9")
    artifact = make_artifact(tmp_path, "1.0")
    push = job(str(app), "1.0", artifact, hook(Step.START, "touch ../../started"))
    lines = drive_locally(push, inline_artifact(artifact) + answer)
    assert lines[-1] == "@@staged"
    assert (app / "current").readlink() == Path("releases/0.9")
    assert (app / "releases" / "1.0" / "VERSION").read_text() == "1.0\n"  # ready for a later run
    assert list((app / ".deploy").glob(f"{push.deployment_id}*")) == []  # as if it never began
    assert not (app / "started").exists()


def test_a_release_left_half_unpacked_is_unpacked_again_whole(tmp_path: Path) -> None:
    """A driver killed while unpacking leaves releases/1.0 without its .deploy-sha256 (the
    release unpacks straight into its own directory, and that file is written last): the
    next deployment of 1.0 must not take it for the release."""
    app = tmp_path / "app"
    half = app / "releases" / "1.0"
    half.mkdir(parents=True)
    (half / "VERSION").write_text("1.")
    (half / "stray.partial").write_text("")
    artifact = make_artifact(tmp_path, "1.0", {"app.py": "x = 1\n"})
    lines = drive_locally(job(str(app), "1.0", artifact), inline_artifact(artifact) + go_line())
    assert lines[-2:] == ["@@done succeeded", "@@current 1.0"]
    whole = [".deploy-sha256", ".deploy-version", "VERSION", "app.py"]
    assert sorted(p.name for p in half.iterdir()) == whole
    assert (app / "current" / "VERSION").read_text() == "1.0\n"
    assert sorted(p.name for p in (app / "releases").iterdir()) == ["1.0"]  # no .tmp- or .old- left


SLOW_CAT = """#!/bin/sh
# cat at 3 MB/s, noting the bytes it took when its input ends
exec {python} -c '
import sys, time
taken = 0
while chunk := sys.stdin.buffer.read1(65536):
    sys.stdout.buffer.write(chunk)
    taken += len(chunk)
    time.sleep(0.02)
open(sys.argv[1], "w").write(str(taken))
' {taken}
"""


def test_a_staging_cancelled_mid_upload_on_the_second_channel_stops_sending(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    shims = _without_gnu_head(tmp_path)
    taken = tmp_path / "taken"
    (shims / "cat").write_text(SLOW_CAT.format(python=sys.executable, taken=taken))
    (shims / "cat").chmod(0o755)
    monkeypatch.setenv("PATH", f"{shims}:{os.environ['PATH']}")  # the lab's hosts' PATH
    noise = base64.b64encode(random.Random(13).randbytes(9 * 1024 * 1024)).decode()
    artifact = make_artifact(tmp_path, "1.0", {"noise.txt": noise})  # about 9.5 MB packed
    push = job("~/app", "1.0", artifact)

    async def scenario(lab: LabFleet) -> None:
        runner = SshRunner()
        try:
            target = resolve_ssh(lab.hosts[0], lab.ssh_options, SshOptions())
            asking = asyncio.create_task(runner.stage(target, push))
            async with asyncio.timeout(60):  # the upload has begun
                while not pids_running(push.deployment_id, word="cat"):
                    await asyncio.sleep(0.01)
            asking.cancel()
            await asyncio.gather(asking, return_exceptions=True)
            await runner.unstage(push.deployment_id)
            async with asyncio.timeout(60):  # the runner still open
                while not taken.exists():
                    await asyncio.sleep(0.05)
        finally:
            await runner.aclose()

    with start_test_lab(tmp_path / "lab", 1, 1) as lab:
        run(scenario(lab))
    assert 0 < int(taken.read_text()) < artifact.size // 2
