"""A push connects to its first hosts in a thread while it still imports and plans
(deployer.hosts.runner_thread), then runs on that same loop over those connections.

Seen from a real sshd: the connection is made (its login logged) before the main thread
runs any event loop; the deployment then goes over it (one login in all); and when no
deployment comes, what was opened early is closed (sshd's process for it ends).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from deployer.core.results import HostStatus, Step
from deployer.core.targets import SshOptions, SshTarget, resolve_ssh
from deployer.hosts.runner_thread import EarlyRunner
from tests.plugins.sshd_fleet import FleetFactory, SshdFleet
from tests.ssh.support import Recorder, hook, job, make_artifact, wait_until

pytestmark = pytest.mark.openssh

LOGIN = "Accepted publickey for root"


@pytest.fixture(scope="module")
def one_host(sshd_fleet_factory: FleetFactory) -> Iterator[SshdFleet]:
    with sshd_fleet_factory(count=1, datacenters=1) as fleet:
        yield fleet


def _target(fleet: SshdFleet) -> SshTarget:
    options = SshOptions(known_hosts=str(fleet.known_hosts), identity_file=str(fleet.client_key))
    return resolve_ssh(fleet.hosts[0], options, SshOptions())


def _log(fleet: SshdFleet) -> str:
    return fleet.sshd_log(fleet.hosts[0].name).read_text()


def _connections(fleet: SshdFleet) -> int:
    """The connections the host's sshd serves now: the processes it forked, one each."""
    listener = str(fleet.sshd_pid(fleet.hosts[0].name))
    count = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:  # gone meanwhile
            continue
        count += fields[1] == listener  # the parent's pid, after the state
    return count


def _early_threads() -> list[threading.Thread]:
    return [thread for thread in threading.enumerate() if thread.name == "connect-early"]


def test_the_deployment_goes_over_the_connection_opened_early(one_host: SshdFleet, tmp_path: Path) -> None:
    before = _log(one_host).count(LOGIN)
    early = EarlyRunner()
    try:
        early.connect([_target(one_host)])
        # No event loop runs in this thread: the login is the early thread's doing.
        assert wait_until(lambda: _log(one_host).count(LOGIN) > before, timeout=30), "no early login"
        pushed = job(
            f"/srv/early-{tmp_path.name}", "1.0", make_artifact(tmp_path, "1.0"), hook(Step.START, "true")
        )
        result = early.run(early.runner.deploy(_target(one_host), pushed, Recorder()))
    finally:
        early.close()
    assert result.status == HostStatus.SUCCEEDED, result.error
    on_host = one_host.host_root(one_host.hosts[0].name) / f"early-{tmp_path.name}"
    assert (on_host / "current" / "VERSION").read_text() == "1.0\n"
    assert _log(one_host).count(LOGIN) == before + 1  # one login: the early one, used
    assert wait_until(lambda: _connections(one_host) == 0, timeout=30)  # closed after the run
    assert not _early_threads()


def test_what_was_opened_early_is_closed_when_no_deployment_comes(one_host: SshdFleet) -> None:
    # A plan with nothing to do, a question answered no, an error in the store...
    logins = _log(one_host).count(LOGIN)
    early = EarlyRunner()
    early.connect([_target(one_host)])
    assert wait_until(lambda: _log(one_host).count(LOGIN) > logins, timeout=30), "no early login"
    assert _connections(one_host) >= 1
    early.close()
    assert not _early_threads()
    assert wait_until(lambda: _connections(one_host) == 0, timeout=30), "the early connection stayed"
    early.close()  # twice is harmless


def test_a_host_that_failed_early_is_tried_again_at_its_turn(one_host: SshdFleet, tmp_path: Path) -> None:
    # Early is before the store is open and the plan made, maybe long before the host's
    # wave: a failure then (sshd down a moment) is not the host's fate, whether it came
    # before the deployment began or while it ran.
    name = one_host.hosts[0].name
    one_host.stop(name)
    early = EarlyRunner()
    try:
        early.connect([_target(one_host)])  # refused: nothing listens
        one_host.start(name)
        early.expect([_target(one_host)])
        pushed = job(f"/srv/early-{tmp_path.name}", "1.0", make_artifact(tmp_path, "1.0"))
        result = early.run(early.runner.deploy(_target(one_host), pushed, Recorder()))
    finally:
        early.close()
    assert result.status == HostStatus.SUCCEEDED, result.error


def test_a_host_the_plan_left_out_is_let_go_as_the_deployment_starts(one_host: SshdFleet) -> None:
    # Connected early (the first wave by the spec alone) but already on the version, say.
    logins = _log(one_host).count(LOGIN)
    early = EarlyRunner()
    try:
        early.connect([_target(one_host)])
        assert wait_until(lambda: _log(one_host).count(LOGIN) > logins, timeout=30), "no early login"
        assert _connections(one_host) >= 1
        early.expect([])

        async def deployment() -> bool:
            async with asyncio.timeout(30):
                while _connections(one_host):  # let go while the deployment runs
                    await asyncio.sleep(0.01)
            return True

        assert early.run(deployment())
    finally:
        early.close()
