"""The driver's own hook timeout where GNU ``timeout`` is missing (busybox-like hosts).

Run locally (no SSH): the driver gets a PATH with the usual tools but no ``timeout``,
so it falls back to ``setsid`` and a sleeping watchdog, which must kill a hook and its
children just as well.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
import uuid
from pathlib import Path

import pytest

from deployer.core.results import DeploymentKind, Step
from deployer.core.targets import Host
from deployer.hosts.protocol import driver_command
from tests.ssh.support import go_line, hook, job, kill_marked, pids_running

TOOLS = ("sh", "setsid", "sleep", "mkdir", "tail", "wc", "cat", "rm", "sed", "ls", "kill")


@pytest.mark.skipif(
    shutil.which("setsid") is None, reason="the fallback needs setsid (util-linux or busybox)"
)
def test_without_gnu_timeout_a_slow_hook_is_killed_with_its_children(tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in TOOLS:
        found = shutil.which(tool)
        if found:
            (bin_dir / tool).symlink_to(found)
    app = tmp_path / "app"
    (app / "releases" / "1.0").mkdir(parents=True)
    (app / "current").symlink_to("releases/1.0")
    marker = f"{400 + os.getpid() % 100}.{uuid.uuid4().int % 10**6:06d}"
    slow = hook(Step.START, f"sleep {marker} & trap '' TERM; sleep {marker}", timeout=1)
    fast = hook(Step.VALIDATE, "echo fine")
    restart = job(str(app), "1.0", None, slow, fast, kind=DeploymentKind.RESTART)
    command = driver_command(restart, Host(name="local", address="127.0.0.1", datacenter="dc1"))
    began = time.monotonic()
    try:
        done = subprocess.run(
            ["/bin/sh", "-c", command],
            input=go_line().decode(),
            capture_output=True,
            text=True,
            timeout=30,
            env={"PATH": str(bin_dir), "HOME": str(tmp_path)},
        )
        assert time.monotonic() - began < 15
        assert pids_running(marker) == []
    finally:
        kill_marked(marker)
    lines = done.stdout.splitlines()
    assert "@@step start end 137 1 timeout" in lines or "@@step start end 143 1 timeout" in lines, done.stdout
    assert lines[-2] in ("@@done failed:start:137", "@@done failed:start:143")
    assert lines[-1] == "@@current 1.0"
    assert "timed out after 1s" in (app / ".deploy" / f"{restart.deployment_id}.start.log").read_text()
