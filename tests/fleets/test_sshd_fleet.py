"""The OpenSSH test fleet does what the other suites rely on, seen through a real SSH client."""

from __future__ import annotations

import asyncio
import os
import select
import socket
import subprocess
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import asyncssh
import pytest
import yaml

from tests.plugins.sshd_fleet import (
    OpenSshUnavailable,
    SshdFleet,
    SshdFleetError,
    datacenter_sizes,
    hook_fault_check,
    plan_hosts,
    start_sshd_fleet,
)

pytestmark = pytest.mark.openssh


def ssh(
    fleet: SshdFleet, name: str, command: str, *, connect_timeout: float = 5.0
) -> subprocess.CompletedProcess[str]:
    """Run ``command`` on a host with the real OpenSSH client, host keys checked strictly."""
    return subprocess.run(
        fleet.ssh_argv(name, command, connect_timeout=connect_timeout),
        capture_output=True,
        text=True,
        timeout=connect_timeout + 10,
        stdin=subprocess.DEVNULL,
    )


@contextmanager
def ssh_session(fleet: SshdFleet, name: str, command: str) -> Iterator[subprocess.Popen[str]]:
    """A running ``ssh`` client process, killed and reaped when the block ends."""
    process = subprocess.Popen(
        fleet.ssh_argv(name, command),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        yield process
    finally:
        if process.poll() is None:
            process.kill()
        process.communicate(timeout=10)


def read_line(process: subprocess.Popen[str], timeout: float) -> str:
    assert process.stdout is not None
    ready, _, _ = select.select([process.stdout], [], [], timeout)
    assert ready, f"no output within {timeout}s"
    return process.stdout.readline().strip()


def is_alive_in(pid: int, namespace: str) -> bool:
    """Whether ``pid`` is still a live process of that mount namespace (not a reused pid)."""
    try:
        return os.readlink(f"/proc/{pid}/ns/mnt") == namespace
    except OSError:
        return False


@contextmanager
def small_fleet(count: int, datacenters: int = 1) -> Iterator[SshdFleet]:
    try:
        with start_sshd_fleet(count, datacenters) as fleet:
            yield fleet
    except OpenSshUnavailable as error:
        pytest.skip(str(error))


def test_each_host_answers_on_its_own_address(sshd_fleet: SshdFleet) -> None:
    sessions = {
        host.name: subprocess.Popen(
            sshd_fleet.ssh_argv(host.name, 'echo "$SSH_CONNECTION"'),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for host in sshd_fleet.hosts
    }
    answers: dict[str, tuple[str, int]] = {}
    try:
        for name, process in sessions.items():
            out, err = process.communicate(timeout=15)
            assert process.returncode == 0, err
            _, _, server_address, server_port = out.split()
            answers[name] = (server_address, int(server_port))
    finally:
        for process in sessions.values():
            if process.poll() is None:
                process.kill()
                process.communicate()

    assert answers == {host.name: (host.address, host.port) for host in sshd_fleet.hosts}
    assert len({host.address for host in sshd_fleet.hosts}) == 12


def test_inventory_and_known_hosts_describe_the_fleet(sshd_fleet: SshdFleet) -> None:
    inventory = yaml.safe_load(sshd_fleet.inventory_path.read_text())

    assert inventory["ssh"] == {
        "user": "root",
        "identity_file": str(sshd_fleet.client_key),
        "known_hosts": str(sshd_fleet.known_hosts),
    }
    assert Path(inventory["ssh"]["identity_file"]).is_absolute()
    assert [entry["name"] for entry in inventory["hosts"]] == [f"h{n:02d}" for n in range(1, 13)]
    assert [entry["datacenter"] for entry in inventory["hosts"][:5]] == ["dc1"] * 4 + ["dc2"]
    assert Counter(entry["datacenter"] for entry in inventory["hosts"]) == {
        "dc1": 4,
        "dc2": 4,
        "dc3": 4,
    }
    assert inventory["hosts"] == [
        {"name": h.name, "address": h.address, "port": h.port, "datacenter": h.datacenter}
        for h in sshd_fleet.hosts
    ]
    known = [line.split()[0] for line in sshd_fleet.known_hosts.read_text().splitlines()]
    assert known == [f"[{host.address}]:{host.port}" for host in sshd_fleet.hosts]
    assert sshd_fleet.as_fleet().datacenters() == ["dc1", "dc2", "dc3"]


def test_asyncssh_connects_with_the_inventory_settings(sshd_fleet: SshdFleet) -> None:
    """The deployer's own client library accepts the fleet's key and known_hosts files."""
    one_per_datacenter = [sshd_fleet.host(name) for name in ("h01", "h05", "h09")]

    async def server_address(address: str, port: int) -> str:
        async with asyncssh.connect(
            address,
            port,
            username="root",
            client_keys=[str(sshd_fleet.client_key)],
            known_hosts=str(sshd_fleet.known_hosts),
            config=None,
        ) as connection:
            result = await connection.run('echo "$SSH_CONNECTION"', check=True)
            return str(result.stdout).split()[2]

    async def reach_all() -> list[str]:
        return await asyncio.wait_for(
            asyncio.gather(*(server_address(h.address, h.port) for h in one_per_datacenter)),
            timeout=15,
        )

    assert asyncio.run(reach_all()) == [host.address for host in one_per_datacenter]


def test_srv_is_private_to_each_host(sshd_fleet: SshdFleet) -> None:
    probe = f"probe-{uuid.uuid4().hex}"
    written = ssh(sshd_fleet, "h01", f"echo on-h01 > /srv/{probe}")
    assert written.returncode == 0, written.stderr
    try:
        assert (sshd_fleet.host_root("h01") / probe).read_text() == "on-h01\n"
        assert sshd_fleet.run("h01", f"cat /srv/{probe}").stdout == "on-h01\n"

        on_h02 = ssh(sshd_fleet, "h02", f"cat /srv/{probe}")
        assert on_h02.returncode == 1
        assert "No such file" in on_h02.stderr
        assert not (sshd_fleet.host_root("h02") / probe).exists()
        assert sshd_fleet.run("h02", f"test -e /srv/{probe}").returncode == 1
        assert not (Path("/srv") / probe).exists()  # the controller's own /srv is untouched
    finally:
        (sshd_fleet.host_root("h01") / probe).unlink()


def test_home_is_private_to_each_host(sshd_fleet: SshdFleet) -> None:
    """Sessions get a fresh, empty ``/root`` per host, not the controller's home and rc files."""
    probe = f"probe-{uuid.uuid4().hex}"
    written = ssh(sshd_fleet, "h01", f'echo "$HOME" > ~/{probe}; ls -A ~')
    assert (written.returncode, written.stdout) == (0, f"{probe}\n"), written.stderr
    try:
        assert (sshd_fleet.host_home("h01") / probe).read_text() == "/root\n"
        assert ssh(sshd_fleet, "h02", f"test -e ~/{probe}").returncode == 1
        assert not (Path("/root") / probe).exists()
    finally:
        (sshd_fleet.host_home("h01") / probe).unlink()


def test_stopped_host_refuses_connections_and_started_host_recovers(
    sshd_fleet: SshdFleet,
) -> None:
    host = sshd_fleet.host("h03")
    kept = ssh(sshd_fleet, "h03", "echo before-stop > /srv/kept-across-restart")
    assert kept.returncode == 0, kept.stderr

    with ssh_session(sshd_fleet, "h03", "echo ready; sleep 30") as session:
        assert read_line(session, timeout=10) == "ready"
        sshd_fleet.stop("h03")
        session.wait(timeout=5)
        assert session.returncode == 255  # the open session was cut, not left running

    assert sshd_fleet.sshd_pid("h03") is None
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection((host.address, host.port), timeout=2).close()
    refused = ssh(sshd_fleet, "h03", "true")
    assert refused.returncode == 255
    assert "Connection refused" in refused.stderr
    assert ssh(sshd_fleet, "h04", "true").returncode == 0  # only h03 is down

    sshd_fleet.start("h03")
    back = ssh(sshd_fleet, "h03", "cat /srv/kept-across-restart")
    assert (back.returncode, back.stdout) == (0, "before-stop\n")
    (sshd_fleet.host_root("h03") / "kept-across-restart").unlink()


def test_frozen_host_times_out_and_thawed_host_recovers(sshd_fleet: SshdFleet) -> None:
    sshd_fleet.freeze("h04")
    started = time.monotonic()
    hung = ssh(sshd_fleet, "h04", "true", connect_timeout=1)
    elapsed = time.monotonic() - started

    assert hung.returncode == 255
    assert "timed out" in hung.stderr
    assert elapsed < 5

    sshd_fleet.thaw("h04")
    assert ssh(sshd_fleet, "h04", "true").returncode == 0


def test_rotated_host_key_is_refused_by_strict_checking(sshd_fleet: SshdFleet, tmp_path: Path) -> None:
    host = sshd_fleet.host("h05")
    new_key = sshd_fleet.rotate_host_key("h05")

    refused = ssh(sshd_fleet, "h05", "true")
    assert refused.returncode == 255
    assert "Host key verification failed" in refused.stderr

    # The host is up and it is the key that is refused: trusting the new key gets in.
    key_type, key_data, *_ = new_key.split()
    trusting = tmp_path / "known_hosts"
    trusting.write_text(f"[{host.address}]:{host.port} {key_type} {key_data}\n")
    argv = sshd_fleet.ssh_argv("h05", "true")
    argv[argv.index(f"UserKnownHostsFile={sshd_fleet.known_hosts}")] = f"UserKnownHostsFile={trusting}"
    accepted = subprocess.run(argv, capture_output=True, text=True, timeout=15, stdin=subprocess.DEVNULL)
    assert accepted.returncode == 0, accepted.stderr

    sshd_fleet.reset()
    assert ssh(sshd_fleet, "h05", "true").returncode == 0


def test_fail_hook_trips_only_the_chosen_host(sshd_fleet: SshdFleet) -> None:
    check = hook_fault_check("validate")
    assert check == "test ! -e /srv/.faults/validate"

    sshd_fleet.fail_hook("h06", "validate")
    assert ssh(sshd_fleet, "h06", check).returncode == 1
    assert ssh(sshd_fleet, "h07", check).returncode == 0
    assert ssh(sshd_fleet, "h06", hook_fault_check("start")).returncode == 0

    sshd_fleet.clear_faults()
    assert ssh(sshd_fleet, "h06", check).returncode == 0

    with pytest.raises(SshdFleetError, match="plain file name"):
        sshd_fleet.fail_hook("h06", "../etc")


def test_reset_heals_every_kind_of_fault(sshd_fleet: SshdFleet) -> None:
    sshd_fleet.stop("h08")
    sshd_fleet.freeze("h09")
    sshd_fleet.fail_hook("h10", "validate")
    sshd_fleet.rotate_host_key("h11")

    sshd_fleet.reset()

    for name in ("h08", "h09", "h10", "h11"):
        healed = ssh(sshd_fleet, name, hook_fault_check("validate"))
        assert healed.returncode == 0, f"{name}: {healed.stderr}"


def test_teardown_kills_every_process_the_fleet_started(sshd_fleet: SshdFleet) -> None:
    with small_fleet(2) as fleet:
        assert fleet.hosts[0].address != sshd_fleet.hosts[0].address  # a block of its own
        session = ssh(fleet, "h01", "nohup sleep 300 >/dev/null 2>&1 </dev/null & echo $!")
        assert session.returncode == 0, session.stderr
        namespaces = {name: fleet.namespace(name) for name in ("h01", "h02")}
        started = {
            (int(session.stdout), namespaces["h01"]),
            (fleet.sshd_pid("h01"), namespaces["h01"]),
            (fleet.sshd_pid("h02"), namespaces["h02"]),
        }
        assert all(is_alive_in(pid, ns) for pid, ns in started if pid and ns)
        base_dir = fleet.base_dir
        address = fleet.hosts[0].address

    assert all(pid and ns for pid, ns in started)
    assert [pid for pid, ns in started if pid and ns and is_alive_in(pid, ns)] == []
    assert not base_dir.exists()
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection((address, 2222), timeout=2).close()
    assert ssh(sshd_fleet, "h01", "true").returncode == 0  # the other fleet is untouched


def test_teardown_also_runs_when_the_block_fails() -> None:
    started: list[tuple[int | None, str | None]] = []
    with pytest.raises(ZeroDivisionError), small_fleet(1) as fleet:
        started.append((fleet.sshd_pid("h01"), fleet.namespace("h01")))
        _ = 1 / 0

    [(pid, namespace)] = started
    assert pid is not None and namespace is not None
    assert not is_alive_in(pid, namespace)


def test_fleet_shape_is_checked_and_striped_into_contiguous_datacenters() -> None:
    assert datacenter_sizes(12, 3) == [4, 4, 4]
    assert datacenter_sizes(10, 3) == [4, 3, 3]
    hosts = plan_hosts("127.0.10", 10, 3)
    assert [(h.name, h.address, h.datacenter) for h in hosts[3:5]] == [
        ("h04", "127.0.10.4", "dc1"),
        ("h05", "127.0.10.5", "dc2"),
    ]
    assert plan_hosts("127.0.10", 100, 4)[-1].name == "h100"
    for count, datacenters in ((0, 1), (255, 3), (2, 3), (4, 0)):
        with pytest.raises(SshdFleetError):
            plan_hosts("127.0.10", count, datacenters)
