"""A connection authenticates with one request, not three, sent without waiting for the
service to be accepted (deployer.hosts.quick_auth).

The requests are counted by a real sshd at LogLevel DEBUG1, which logs each
authentication request a client makes. asyncssh left as it is makes three: `none`, the
question whether the key would do, and the signed request. The order of the packets
comes from asyncssh's own packet log, on the client.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import asyncssh
import pytest

from deployer.core.results import HostResult, HostStatus, Step
from deployer.core.targets import SshOptions, SshTarget, resolve_ssh
from deployer.hosts.ssh import SshRunner
from tests.plugins.lab_fleet import LabFleet
from tests.plugins.sshd_fleet import FleetFactory, SshdFleet
from tests.ssh.support import hook, job, make_artifact, run, wait_until

pytestmark = pytest.mark.openssh

REQUEST = "userauth-request for user"
# Logged once the client is in: every request before it was logged by then (sshd's
# monitor drains what its pre-authentication process said before the session starts).
SESSION = "Starting session:"


@pytest.fixture(autouse=True)
def no_agent_of_the_machine(monkeypatch: pytest.MonkeyPatch) -> None:
    # An ssh-agent of the user running the tests would be asked for its keys too: more
    # requests, and a wait before the first one. The agent's test starts its own.
    monkeypatch.delenv("SSH_AUTH_SOCK", raising=False)


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


@contextlib.contextmanager
def _packets(caplog: pytest.LogCaptureFixture) -> Iterator[list[str]]:
    """asyncssh's log of the packets sent and received meanwhile, in order (once done)."""
    asyncssh.set_debug_level(3)
    messages: list[str] = []
    try:
        with caplog.at_level(logging.DEBUG, logger="asyncssh"):
            caplog.clear()
            yield messages
            messages.extend(record.getMessage() for record in caplog.records)
    finally:
        asyncssh.set_debug_level(1)


def _first(messages: list[str], pattern: str) -> int:
    return next(i for i, message in enumerate(messages) if re.search(pattern, message))


def _plain_session(fleet: SshdFleet) -> None:
    """One command through a plain asyncssh client, with the fleet's key."""
    host = fleet.hosts[0]

    async def plain() -> None:
        async with asyncssh.connect(
            host.address,
            port=host.port,
            known_hosts=str(fleet.known_hosts),
            client_keys=[str(fleet.client_key)],
            username="root",
            agent_path=None,
        ) as connection:
            await connection.run("true", check=True)

    run(plain())


SENT_USERAUTH_REQUEST = r"\bSent \S+ \(50\)"  # the message numbers of RFC 4250
RECEIVED_SERVICE_ACCEPT = r"\bReceived \S+ \(6\)"
EARLY = "Beginning auth before the service accept"  # quick_auth's own line


def test_a_key_from_a_file_signs_in_with_one_request(verbose_fleet: SshdFleet, tmp_path: Path) -> None:
    before = _counts(verbose_fleet)
    assert _deploy(verbose_fleet, tmp_path, _target(verbose_fleet)) == HostStatus.SUCCEEDED
    assert _requests_since(verbose_fleet, before) == 1


def test_asyncssh_left_as_it_is_makes_three(verbose_fleet: SshdFleet) -> None:
    # What the one request saves, seen on the same server: a plain asyncssh client.
    before = _counts(verbose_fleet)
    _plain_session(verbose_fleet)
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


def test_the_signed_request_goes_before_the_service_is_accepted(
    verbose_fleet: SshdFleet, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # One round trip fewer: the request rides behind the service request, and sshd takes
    # it once it accepted the service. The deployment goes as usual, with one request.
    before = _counts(verbose_fleet)
    with _packets(caplog) as packets:
        assert _deploy(verbose_fleet, tmp_path, _target(verbose_fleet)) == HostStatus.SUCCEEDED
    assert _requests_since(verbose_fleet, before) == 1
    assert sum(EARLY in message for message in packets) == 1
    assert _first(packets, SENT_USERAUTH_REQUEST) < _first(packets, RECEIVED_SERVICE_ACCEPT)


def test_asyncssh_left_as_it_is_waits_for_the_accept(
    verbose_fleet: SshdFleet, caplog: pytest.LogCaptureFixture
) -> None:
    with _packets(caplog) as packets:
        _plain_session(verbose_fleet)
    assert not any(EARLY in message for message in packets)


def test_a_key_the_host_refuses_ends_in_a_clear_refusal(
    verbose_fleet: SshdFleet, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # The signed request went early, and sshd refused it: asyncssh goes on as it would
    # have (the methods the server named, none of which we have), and says so.
    stranger = tmp_path / "stranger"
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(stranger)], check=True, timeout=30
    )
    app = f"/srv/quick-auth-{tmp_path.name}"
    pushed = job(app, "1.0", make_artifact(tmp_path, "1.0"), hook(Step.START, "true"))

    async def scenario() -> HostResult:
        runner = SshRunner()
        try:
            return await runner.deploy(_target(verbose_fleet, str(stranger)), pushed, _no_events)
        finally:
            await runner.aclose()

    with _packets(caplog) as packets:
        result = run(scenario())
    assert _first(packets, SENT_USERAUTH_REQUEST) < _first(packets, RECEIVED_SERVICE_ACCEPT)
    assert (result.status, result.step) == (HostStatus.FAILED, Step.CONNECT)
    assert result.error is not None and "Permission denied for user root" in result.error


def test_a_server_other_than_openssh_is_answered_first(
    lab_fleet_module: LabFleet, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # The lab's hosts are asyncssh servers: the request waits for the accept, as it did.
    # (The order of the packets cannot tell: the lab sends its extension info late, with
    # the accept.)
    host = lab_fleet_module.hosts[0]
    app = f"~/apps/quick-auth-{tmp_path.name}"
    pushed = job(app, "1.0", make_artifact(tmp_path, "1.0"), hook(Step.START, "true"))

    async def scenario() -> HostResult:
        runner = SshRunner()
        try:
            return await runner.deploy(
                resolve_ssh(host, lab_fleet_module.ssh_options, SshOptions()), pushed, _no_events
            )
        finally:
            await runner.aclose()

    with _packets(caplog) as packets:
        result = run(scenario())
    assert result.status == HostStatus.SUCCEEDED
    assert not any(EARLY in message for message in packets)
