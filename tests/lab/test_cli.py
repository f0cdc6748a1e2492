"""``deploy lab`` through the real CLI, checked with real SSH clients."""

from __future__ import annotations

import asyncio
import errno
import json
import os
import pwd
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import asyncssh
import pytest
import yaml

from deployer.core.targets import Host
from deployer.lab import FaultMode, break_hosts, stop_lab
from tests.lab.clients import connect, openssh, run
from tests.plugins.lab_fleet import free_base_address

USER = pwd.getpwuid(os.getuid()).pw_name


def deploy_command(*args: str) -> list[str]:
    script = Path(sys.executable).with_name("deploy")
    if script.exists():
        return [str(script), *args]
    return [sys.executable, "-c", "from deployer.cli import main; main()", *args]


def deploy(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        deploy_command(*args), capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL
    )


async def deploy_async(*args: str) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        *deploy_command(*args),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    stdout, stderr = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode is not None
    return process.returncode, stdout.decode(), stderr.decode()


@dataclass(frozen=True)
class CliLab:
    dir: Path
    up_output: str
    hosts: list[Host]

    def host(self, name: str) -> Host:
        return next(host for host in self.hosts if host.name == name)


def hosts_in_inventory(path: Path) -> list[Host]:
    return [Host(**entry) for entry in yaml.safe_load(path.read_text())["hosts"]]


@pytest.fixture(scope="module")
def cli_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CliLab]:
    directory = tmp_path_factory.mktemp("cli") / "lab"
    base = free_base_address(4)
    try:
        up = deploy(
            "lab", "up", "--hosts", "4", "--datacenters", "2", "--base-address", base, "--dir", str(directory)
        )
        assert up.returncode == 0, up.stderr
        yield CliLab(directory, up.stdout, hosts_in_inventory(directory / "inventory.yaml"))
    finally:
        deploy("lab", "down", "--dir", str(directory))
        stop_lab(directory)  # a no-op after a successful down; stops the lab if down failed


def test_up_writes_an_inventory_of_hosts_spread_over_datacenters(cli_lab: CliLab) -> None:
    inventory = yaml.safe_load((cli_lab.dir / "inventory.yaml").read_text())
    assert inventory["ssh"] == {
        "identity_file": str(cli_lab.dir / "client_key"),
        "known_hosts": str(cli_lab.dir / "known_hosts"),
        "host_key_policy": "strict",
    }
    first = cli_lab.hosts[0].address.rsplit(".", 1)[0]
    assert cli_lab.hosts == [
        Host("lab01", f"{first}.1", "dc1", 2222, USER),
        Host("lab02", f"{first}.2", "dc1", 2222, USER),
        Host("lab03", f"{first}.3", "dc2", 2222, USER),
        Host("lab04", f"{first}.4", "dc2", 2222, USER),
    ]
    assert f"inventory: {cli_lab.dir / 'inventory.yaml'}" in cli_lab.up_output
    assert f"deploy lab down --dir {cli_lab.dir}" in cli_lab.up_output
    # Each host has its own host key.
    keys = [line.split()[2] for line in (cli_lab.dir / "known_hosts").read_text().splitlines()]
    assert len(keys) == 4 and len(set(keys)) == 4


def test_each_host_answers_on_its_own_address_as_itself(cli_lab: CliLab) -> None:
    async def ask_all() -> list[asyncssh.SSHCompletedProcess]:
        return await asyncio.gather(
            *(run(host, cli_lab.dir, 'echo "$DEPLOY_LAB_HOST"; pwd; echo "$HOME"') for host in cli_lab.hosts)
        )

    for host, result in zip(cli_lab.hosts, asyncio.run(ask_all()), strict=True):
        home = str(cli_lab.dir / "hosts" / host.name)
        assert result.exit_status == 0, result.stderr
        assert result.stdout == f"{host.name}\n{home}\n{home}\n"


def test_a_file_under_home_on_one_host_is_not_on_another(cli_lab: CliLab) -> None:
    lab01, lab02 = cli_lab.host("lab01"), cli_lab.host("lab02")

    async def scenario() -> tuple[int | None, int | None, str]:
        written = await run(lab01, cli_lab.dir, "mkdir -p ~/apps/hello && echo v1 > ~/apps/hello/VERSION")
        elsewhere = await run(lab02, cli_lab.dir, "test -e ~/apps/hello/VERSION")
        again = await run(lab01, cli_lab.dir, "cat ~/apps/hello/VERSION")
        return written.exit_status, elsewhere.exit_status, str(again.stdout)

    assert asyncio.run(scenario()) == (0, 1, "v1\n")
    assert (cli_lab.dir / "hosts" / "lab01" / "apps" / "hello" / "VERSION").read_text() == "v1\n"
    assert not (cli_lab.dir / "hosts" / "lab02" / "apps").exists()


def test_exit_statuses_signals_and_stdin_pass_through(cli_lab: CliLab) -> None:
    host = cli_lab.host("lab03")

    async def scenario() -> None:
        async with await connect(host, cli_lab.dir) as conn:
            failed = await conn.run("echo out; echo err >&2; exit 3", timeout=10)
            assert (failed.exit_status, failed.stdout, failed.stderr) == (3, "out\n", "err\n")
            killed = await conn.run("kill -TERM $$", timeout=10)
            assert killed.exit_signal is not None and killed.exit_signal[0] == "TERM"
            counted = await conn.run("wc -c", input="twelve bytes", timeout=10)
            assert str(counted.stdout).strip() == "12"

    asyncio.run(scenario())


def test_the_openssh_client_works_with_the_generated_key_and_known_hosts(cli_lab: CliLab) -> None:
    result = openssh(cli_lab.host("lab02"), cli_lab.dir, 'echo "$DEPLOY_LAB_HOST"; exit 7')
    assert (result.returncode, result.stdout) == (7, "lab02\n"), result.stderr


def test_an_unknown_client_key_is_refused(cli_lab: CliLab, tmp_path: Path) -> None:
    stranger = asyncssh.generate_private_key("ssh-ed25519")
    stranger_file = tmp_path / "stranger"
    stranger.write_private_key(str(stranger_file))
    stranger_file.chmod(0o600)

    async def attempt() -> None:
        await connect(cli_lab.host("lab01"), cli_lab.dir, key=stranger)

    with pytest.raises(asyncssh.PermissionDenied):
        asyncio.run(attempt())
    refused = openssh(cli_lab.host("lab01"), cli_lab.dir, "true", key=stranger_file)
    assert refused.returncode == 255
    assert "Permission denied" in refused.stderr


def test_break_and_fix_hosts_through_the_cli(cli_lab: CliLab) -> None:
    lab_dir = str(cli_lab.dir)
    down, hung, unhealthy, healthy = (cli_lab.host(name) for name in ("lab01", "lab02", "lab03", "lab04"))

    async def scenario() -> None:
        held = await connect(hung, cli_lab.dir)  # open before the hang: its sessions freeze
        try:
            outcomes = await asyncio.gather(
                deploy_async("lab", "break", "lab01", "--mode", "down", "--dir", lab_dir),
                deploy_async("lab", "break", "lab02", "--mode", "hang", "--dir", lab_dir),
                deploy_async("lab", "break", "lab03", "--mode", "fail-hook", "--dir", lab_dir),
            )
            assert [code for code, _, _ in outcomes] == [0, 0, 0], outcomes
            assert outcomes[0][1] == "lab01: down (refuses connections)\n"

            # Ask for the status while the clients below wait out their timeouts.
            status = asyncio.ensure_future(deploy_async("lab", "status", "--json", "--dir", lab_dir))
            frozen = asyncio.ensure_future(held.run("echo thawed", timeout=20))

            with pytest.raises(OSError) as refused:
                await connect(down, cli_lab.dir)
            assert refused.value.errno == errno.ECONNREFUSED

            started = time.monotonic()
            with pytest.raises(TimeoutError):
                await connect(hung, cli_lab.dir, timeout=2.0)
            assert 1.5 < time.monotonic() - started < 10.0
            assert not frozen.done(), "a command on a hung host's open connection finished"

            sick = await run(unhealthy, cli_lab.dir, 'echo "$DEPLOY_LAB_UNHEALTHY"; test -e ~/.lab/unhealthy')
            assert (sick.stdout, sick.exit_status) == ("1\n", 0)
            fine = await run(healthy, cli_lab.dir, 'echo "[$DEPLOY_LAB_UNHEALTHY]"; test -e ~/.lab/unhealthy')
            assert (fine.stdout, fine.exit_status) == ("[]\n", 1)

            code, stdout, stderr = await status
            assert code == 0, stderr
            states = {entry["name"]: entry["state"] for entry in json.loads(stdout)["hosts"]}
            assert states == {"lab01": "down", "lab02": "hang", "lab03": "fail-hook", "lab04": "ok"}
            code, stdout, stderr = await deploy_async(
                "lab", "fix", "lab01", "lab02", "lab03", "--dir", lab_dir
            )
            assert code == 0, stderr
            assert stdout == "lab01: up\nlab02: up\nlab03: up\n"

            thawed = await asyncio.wait_for(frozen, 5.0)
            assert thawed.stdout == "thawed\n"
            again = await asyncio.gather(
                *(run(host, cli_lab.dir, "echo $DEPLOY_LAB_UNHEALTHY") for host in cli_lab.hosts)
            )
            assert [result.stdout for result in again] == ["\n"] * 4
            assert not (cli_lab.dir / "hosts" / "lab03" / ".lab" / "unhealthy").exists()
        finally:
            held.close()
            await held.wait_closed()

    try:
        asyncio.run(scenario())
    finally:
        break_hosts(cli_lab.dir, ["lab01", "lab02", "lab03"], FaultMode.OK)  # heal for the next test


def test_a_second_up_on_a_running_lab_is_refused(cli_lab: CliLab) -> None:
    pid = int((cli_lab.dir / "lab.pid").read_text())
    again = deploy("lab", "up", "--hosts", "2", "--dir", str(cli_lab.dir))
    assert again.returncode == 2
    assert again.stderr == (
        f"error: a lab is already running in {cli_lab.dir} (pid {pid}); "
        f"stop it first with: deploy lab down --dir {cli_lab.dir}\n"
    )
    status = deploy("lab", "status", "--dir", str(cli_lab.dir))
    assert status.returncode == 0, status.stderr
    lines = status.stdout.splitlines()
    assert (
        lines[0] == f"lab in {cli_lab.dir}: running, pid {pid}, 4 hosts in 2 datacenters, 0 commands running"
    )
    assert lines[1] == f"inventory: {cli_lab.dir / 'inventory.yaml'}"
    assert lines[2].split() == ["HOST", "ADDRESS", "PORT", "DC", "STATE"]
    lab01 = cli_lab.host("lab01")
    assert lines[3].split() == ["lab01", lab01.address, "2222", "dc1", "up"]
    assert len(lines) == 7
