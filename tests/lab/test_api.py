"""The lab's Python API and its hosts' SSH behaviour, through the pytest plugin's fixtures."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import asyncssh
import pytest

from deployer.core.errors import LabError
from deployer.lab import FaultMode, LabFleet
from tests.lab.clients import connect, run
from tests.plugins.lab_fleet import LabFactory


async def wait_for_file(path: Path, timeout: float = 5.0) -> str:
    deadline = time.monotonic() + timeout
    while not path.exists() or not path.read_text().endswith("\n"):
        assert time.monotonic() < deadline, f"{path} never appeared"
        await asyncio.sleep(0.05)
    return path.read_text()


def test_a_command_outlives_its_dropped_connection_with_stdin_at_eof(lab_fleet: LabFleet) -> None:
    host = lab_fleet.hosts[0]
    survivor = lab_fleet.home(host.name) / "survivor"
    late = lab_fleet.home(host.name) / "late"
    survivor.unlink(missing_ok=True)
    late.unlink(missing_ok=True)

    async def scenario() -> tuple[str, str]:
        conn = await connect(host, lab_fleet.dir)
        # `cat` waits for EOF on stdin, which only the connection's end brings.
        await conn.create_process("cat > /dev/null; echo survived > ~/survivor")
        # Like sshd, the lab closes a gone channel's output pipes: a later write fails.
        await conn.create_process(
            "trap '' PIPE; cat > /dev/null; sleep 0.3; echo late; echo \"echo status $?\" > ~/late"
        )
        await asyncio.sleep(0.2)
        conn.abort()
        await conn.wait_closed()
        return await wait_for_file(survivor), await wait_for_file(late)

    assert asyncio.run(scenario()) == ("survived\n", "echo status 1\n")


def test_sftp_paths_start_at_the_host_home(lab_fleet: LabFleet, tmp_path: Path) -> None:
    host = lab_fleet.hosts[1]
    local = tmp_path / "release.tar.gz"
    local.write_bytes(b"\x1f\x8b" + bytes(range(256)) * 64)

    async def scenario() -> str:
        async with await connect(host, lab_fleet.dir) as conn, conn.start_sftp_client() as sftp:
            await sftp.makedirs("uploads", exist_ok=True)
            await sftp.put(str(local), "uploads/release.tar.gz")
            home = str(await sftp.realpath("."))
        return home

    assert asyncio.run(scenario()) == str(lab_fleet.home(host.name))
    uploaded = lab_fleet.home(host.name) / "uploads" / "release.tar.gz"
    assert uploaded.read_bytes() == local.read_bytes()


def test_sessions_get_the_clients_environment_but_not_the_labs(lab_fleet: LabFleet) -> None:
    host = lab_fleet.hosts[2]

    async def scenario() -> asyncssh.SSHCompletedProcess:
        async with await connect(host, lab_fleet.dir) as conn:
            result = await conn.run(
                'echo "$RELEASE $HOME"; printenv PYTEST_CURRENT_TEST',
                env={"RELEASE": "v7", "HOME": "/somewhere/else"},
                timeout=10,
            )
        return result

    result = asyncio.run(scenario())
    # The lab was started from this pytest process: nothing of its environment leaks in.
    assert (result.stdout, result.exit_status) == (f"v7 {lab_fleet.home(host.name)}\n", 1)


def test_signals_from_the_client_reach_the_command(lab_fleet: LabFleet) -> None:
    async def scenario() -> tuple[str, bool, str, str] | None:
        async with await connect(lab_fleet.hosts[3], lab_fleet.dir) as conn:
            process = await conn.create_process("echo started; exec sleep 30")
            assert await process.stdout.readline() == "started\n"
            process.send_signal("INT")
            completed = await asyncio.wait_for(process.wait(), 5)
        return completed.exit_signal

    exit_signal = asyncio.run(scenario())
    assert exit_signal is not None and exit_signal[0] == "INT"


def test_down_cuts_open_connections_and_fix_brings_the_host_back(lab_fleet: LabFleet) -> None:
    host = lab_fleet.hosts[4]

    async def scenario() -> str:
        async with await connect(host, lab_fleet.dir) as conn:
            lab_fleet.break_host(host.name, FaultMode.DOWN)
            await asyncio.wait_for(conn.wait_closed(), 5)
        assert lab_fleet.status().mode_of(host.name) is FaultMode.DOWN
        with pytest.raises(ConnectionRefusedError):
            await connect(host, lab_fleet.dir)
        lab_fleet.fix(host.name)
        return str((await run(host, lab_fleet.dir, "echo back")).stdout)

    assert asyncio.run(scenario()) == "back\n"
    assert lab_fleet.status().mode_of(host.name) is FaultMode.OK


def test_unknown_hosts_and_modes_are_lab_errors(lab_fleet: LabFleet) -> None:
    with pytest.raises(LabError, match="no lab host named lab99"):
        lab_fleet.break_host("lab99", "down")
    with pytest.raises(LabError, match="unknown fault mode 'slow'"):
        lab_fleet.break_host(lab_fleet.hosts[0].name, "slow")
    with pytest.raises(LabError, match="no lab host named lab99"):
        lab_fleet.home("lab99")


def test_a_hundred_hosts_each_answer_as_themselves(lab_factory: LabFactory) -> None:
    lab = lab_factory(hosts=100, datacenters=4)

    async def ask(index: int) -> str:
        host = lab.hosts[index]
        async with await connect(host, lab.dir, timeout=20) as conn:
            results = await asyncio.gather(*(conn.run("echo $DEPLOY_LAB_HOST", timeout=20) for _ in range(3)))
        return "".join(str(result.stdout) for result in results)

    async def ask_all() -> list[str]:
        limit = asyncio.Semaphore(50)

        async def bounded(index: int) -> str:
            async with limit:
                return await ask(index)

        return await asyncio.gather(*(bounded(index) for index in range(len(lab.hosts))))

    try:
        answers = asyncio.run(ask_all())
        assert answers == [f"{host.name}\n" * 3 for host in lab.hosts]
        assert [host.name for host in lab.hosts][::33] == ["lab001", "lab034", "lab067", "lab100"]
        assert {host.datacenter for host in lab.hosts} == {"dc1", "dc2", "dc3", "dc4"}
    finally:
        lab.stop()
    assert not lab.is_running()
