"""Starting and stopping a lab: ``down`` stops exactly what ``up`` started, and nothing else."""

from __future__ import annotations

import asyncio
import fcntl
import os
import subprocess
import time
from pathlib import Path

import pytest
import yaml

from deployer.core.errors import LabError
from deployer.core.targets import Host
from deployer.lab import lab_status, process_is_alive, stop_lab
from tests.lab.clients import run
from tests.lab.test_cli import deploy
from tests.plugins.lab_fleet import free_base_address


def test_down_stops_exactly_the_process_up_started_and_what_its_hosts_run(tmp_path: Path) -> None:
    directory = tmp_path / "lab"
    try:
        up = deploy(
            "lab", "up", "--hosts", "1", "--base-address", free_base_address(1), "--dir", str(directory)
        )
        assert up.returncode == 0, up.stderr
        pid = int((directory / "lab.pid").read_text())
        assert f"pid {pid}" in up.stdout
        command_line = (Path("/proc") / str(pid) / "cmdline").read_bytes().split(b"\0")
        assert b"deployer.lab.server" in command_line and str(directory).encode() in command_line
        host = Host(**yaml.safe_load((directory / "inventory.yaml").read_text())["hosts"][0])
        # Commands left running on the host, one of them daemonized into its own session:
        # stopping the lab stops them too, as a power-off would.
        started = asyncio.run(
            run(
                host,
                directory,
                "sleep 300 >/dev/null 2>&1 & echo $!; setsid sleep 301 </dev/null >/dev/null 2>&1 & echo $!",
            )
        )
        leftovers = [int(pid) for pid in str(started.stdout).split()]
        assert len(leftovers) == 2 and all(process_is_alive(pid) for pid in leftovers)

        down = deploy("lab", "down", "--dir", str(directory))
        assert down.returncode == 0, down.stderr
        assert down.stdout == f"lab in {directory} stopped (pid {pid})\n"
        assert not process_is_alive(pid)
        assert not any(process_is_alive(pid) for pid in leftovers)
        assert not (directory / "lab.pid").exists()
        with pytest.raises(LabError, match=r"no lab is running in .*; start one with: deploy lab up --dir"):
            lab_status(directory)
        assert stop_lab(directory) is None  # down again: nothing to stop
    finally:
        stop_lab(directory)


def test_stop_never_signals_a_process_that_is_not_the_lab(tmp_path: Path) -> None:
    bystander = subprocess.Popen(["sleep", "60"])
    try:
        directory = tmp_path / "lab"
        directory.mkdir()
        (directory / "lab.pid").write_text(f"{bystander.pid}\n")
        # A stale pid file (no lab holds the lock): cleaned up, the pid left alone.
        assert stop_lab(directory) is None
        assert not (directory / "lab.pid").exists()
        # The lock held by something that is not a lab server: refused, nothing signalled.
        (directory / "lab.pid").write_text(f"{bystander.pid}\n")
        with open(directory / "lab.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            started = time.monotonic()
            with pytest.raises(LabError, match="does not name a lab process"):
                stop_lab(directory)
            assert time.monotonic() - started < 2
        assert bystander.poll() is None
        assert process_is_alive(bystander.pid)
    finally:
        bystander.kill()
        bystander.wait()
    assert os.path.exists(directory / "lab.pid")  # not ours to remove while someone held the lock
