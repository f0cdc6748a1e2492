"""A connection authenticates with one request, not three (deployer.hosts.quick_auth).

Counted by a real sshd at LogLevel DEBUG1, which logs each authentication request a
client makes. asyncssh left as it is makes three: `none`, the question whether the key
would do, and the signed request.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import asyncssh
import pytest

from deployer.core.results import HostStatus, Step
from deployer.core.targets import SshOptions, SshTarget, resolve_ssh
from deployer.hosts.ssh import SshRunner
from tests.plugins.sshd_fleet import FleetFactory, SshdFleet
from tests.ssh.support import hook, job, make_artifact, run, wait_until

pytestmark = pytest.mark.openssh

REQUEST = "userauth-request for user"
# Logged once the client is in: every request before it was logged by then (sshd's
# monitor drains what its pre-authentication process said before the session starts).
SESSION = "Starting session:"


@pytest.fixture(scope="module")
def verbose_fleet(sshd_fleet_factory: FleetFactory) -> Iterator[SshdFleet]:
    with sshd_fleet_factory(count=1, datacenters=1, log_level="DEBUG1") as fleet:
        yield fleet


def _counts(fleet: SshdFleet) -> tuple[int, int]:
    """How many authentication requests and sessions the host's sshd logged so far."""
    log = fleet.sshd_log(fleet.hosts[0].name).read_text()
    return log.count(REQUEST), log.count(SESSION)


def _requests_since(fleet: SshdFleet, before: tuple[int, int]) -> int:
    """The requests made since ``before`` (of _counts), once a session began since."""
    assert wait_until(lambda: _counts(fleet)[1] > before[1], timeout=10), "no session began"
    return _counts(fleet)[0] - before[0]


def _target(fleet: SshdFleet, identity_file: str | None = "") -> SshTarget:
    """The fleet's host, with the fleet's key (or ``identity_file``: None for none)."""
    key = str(fleet.client_key) if identity_file == "" else identity_file
    options = SshOptions(known_hosts=str(fleet.known_hosts), identity_file=key)
    return resolve_ssh(fleet.hosts[0], options, SshOptions())


def _deploy(fleet: SshdFleet, tmp_path: Path, target: SshTarget) -> HostStatus:
    app = f"/srv/quick-auth-{tmp_path.name}"
    pushed = job(app, "1.0", make_artifact(tmp_path, "1.0"), hook(Step.START, "true"))

    async def scenario() -> HostStatus:
        runner = SshRunner()
        try:
            return (await runner.deploy(target, pushed, _no_events)).status
        finally:
            await runner.aclose()

    return run(scenario())


def _no_events(_event: object) -> None:
    pass


def test_a_key_from_a_file_signs_in_with_one_request(verbose_fleet: SshdFleet, tmp_path: Path) -> None:
    before = _counts(verbose_fleet)
    assert _deploy(verbose_fleet, tmp_path, _target(verbose_fleet)) == HostStatus.SUCCEEDED
    assert _requests_since(verbose_fleet, before) == 1


def test_asyncssh_left_as_it_is_makes_three(verbose_fleet: SshdFleet) -> None:
    # What the one request saves, seen on the same server: a plain asyncssh client.
    host = verbose_fleet.hosts[0]
    before = _counts(verbose_fleet)

    async def plain() -> None:
        async with asyncssh.connect(
            host.address,
            port=host.port,
            known_hosts=str(verbose_fleet.known_hosts),
            client_keys=[str(verbose_fleet.client_key)],
            username="root",
            agent_path=None,
        ) as connection:
            await connection.run("true", check=True)

    run(plain())
    assert _requests_since(verbose_fleet, before) == 3


def test_a_key_held_by_an_agent_is_still_asked_about_first(
    verbose_fleet: SshdFleet, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # An agent may stop to ask its owner before it signs: no signature for a key the host
    # may refuse. Only `none` is skipped: two requests.
    socket_path = tmp_path / "agent.sock"
    agent = subprocess.Popen(["ssh-agent", "-D", "-a", str(socket_path)], stdout=subprocess.DEVNULL)
    try:
        assert wait_until(socket_path.exists, timeout=10), "ssh-agent did not start"
        env = {**os.environ, "SSH_AUTH_SOCK": str(socket_path)}
        subprocess.run(["ssh-add", "-q", str(verbose_fleet.client_key)], env=env, check=True, timeout=10)
        monkeypatch.setenv("SSH_AUTH_SOCK", str(socket_path))
        monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.ssh keys of the machine's own
        before = _counts(verbose_fleet)
        through_the_agent = _target(verbose_fleet, identity_file=None)
        assert _deploy(verbose_fleet, tmp_path, through_the_agent) == HostStatus.SUCCEEDED
        assert _requests_since(verbose_fleet, before) == 2
    finally:
        agent.terminate()
        agent.wait(timeout=10)
