"""Host keys against the OpenSSH test fleet: ``@revoked`` and ``@cert-authority`` lines,
a host certificate signed by a test CA, and a known_hosts that knows another key type;
through the runner's asyncssh connections and through Fabric hooks (paramiko) alike."""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from deployer.core.results import Step
from deployer.core.runner import HookCommand, HookOutcome, HostProbe
from deployer.core.targets import SshOptions, SshTarget, resolve_ssh
from deployer.hosts.fabric_connection import HookVariables
from deployer.hosts.fabric_hooks import FabricHooks
from deployer.hosts.ssh import SshRunner
from tests.fabric.support import write_fabfile
from tests.plugins.sshd_fleet import FleetFactory, SshdFleet

pytestmark = pytest.mark.openssh

POLICIES = ["strict", "accept-new"]


@pytest.fixture(scope="module")
def fleet(sshd_fleet_factory: FleetFactory) -> Iterator[SshdFleet]:
    with sshd_fleet_factory(count=3, datacenters=1) as made:
        yield made


def keygen(path: Path, kind: str = "ed25519") -> Path:
    subprocess.run(
        ["ssh-keygen", "-q", "-t", kind, "-N", "", "-C", path.name, "-f", str(path)],
        check=True,
        capture_output=True,
        timeout=30,
    )
    return path


def public(path: Path) -> str:
    """``type base64`` of a key file's public half."""
    kind, blob, *_ = path.with_name(path.name + ".pub").read_text().split()
    return f"{kind} {blob}"


def host_key(fleet: SshdFleet, name: str) -> str:
    """The host's own public key as ``type base64``."""
    line = next(
        line for line in fleet.known_hosts.read_text().splitlines() if f"[{fleet.host(name).address}]" in line
    )
    return " ".join(line.split()[1:3])


def label(fleet: SshdFleet, name: str) -> str:
    host = fleet.host(name)
    return f"[{host.address}]:{host.port}"


def target(fleet: SshdFleet, name: str, known_hosts: Path, policy: str) -> SshTarget:
    plain = resolve_ssh(fleet.host(name), fleet.ssh_options, SshOptions())
    return replace(plain, known_hosts=str(known_hosts), host_key_policy=policy)


def probe(chosen: SshTarget) -> HostProbe:
    async def scenario() -> HostProbe:
        runner = SshRunner()
        try:
            return await runner.probe(chosen, "/srv/none", None)
        finally:
            await runner.aclose()

    return asyncio.run(asyncio.wait_for(scenario(), 60))


def hello(chosen: SshTarget, folder: Path) -> HookOutcome:
    """A Fabric task hook that only says hello, run through the Fabric path."""
    fabfile = write_fabfile(folder)
    hook = HookCommand(step=Step.AFTER_INSTALL, command="", timeout=15, fabric=f"{fabfile}:hello")
    host = chosen.host
    variables = HookVariables("shop", "1.0", "", "prod", host.name, host.datacenter, "d-1", "/srv")
    return asyncio.run(asyncio.wait_for(FabricHooks().run(chosen, hook, variables), 60))


@pytest.mark.parametrize("policy", POLICIES)
def test_a_revoked_key_is_refused_and_never_recorded(fleet: SshdFleet, tmp_path: Path, policy: str) -> None:
    known_hosts = tmp_path / "known_hosts"
    known_hosts.write_text(f"@revoked {label(fleet, 'h01')} {host_key(fleet, 'h01')}\n")
    before = known_hosts.read_text()
    chosen = target(fleet, "h01", known_hosts, policy)
    refused = probe(chosen)
    assert not refused.reachable
    assert refused.error is not None and "REVOKED" in refused.error, refused.error
    assert str(known_hosts) in refused.error
    by_fabric = hello(chosen, tmp_path)
    assert by_fabric.exit_status == 255
    assert by_fabric.error is not None and "REVOKED" in by_fabric.error, by_fabric.error
    assert known_hosts.read_text() == before  # never recorded as trusted


@pytest.mark.parametrize("policy", POLICIES)
def test_a_revoked_key_is_refused_even_beside_a_trusting_line(
    fleet: SshdFleet, tmp_path: Path, policy: str
) -> None:
    known_hosts = tmp_path / "known_hosts"
    key = host_key(fleet, "h01")
    known_hosts.write_text(f"{label(fleet, 'h01')} {key}\n@revoked * {key}\n")
    chosen = target(fleet, "h01", known_hosts, policy)
    refused = probe(chosen)
    assert not refused.reachable and "REVOKED" in (refused.error or ""), refused.error
    by_fabric = hello(chosen, tmp_path)
    assert by_fabric.exit_status == 255 and "REVOKED" in (by_fabric.error or ""), by_fabric.error


@pytest.fixture
def certified(fleet: SshdFleet, tmp_path: Path) -> Path:
    """h02 offers a host certificate signed by a fresh test CA; the CA's key file."""
    ca = keygen(tmp_path / "ca")
    fleet.certify_host_key("h02", ca)
    return ca


def test_a_host_certificate_signed_by_a_trusted_ca_is_accepted(
    fleet: SshdFleet, tmp_path: Path, certified: Path
) -> None:
    known_hosts = tmp_path / "known_hosts"
    known_hosts.write_text(f"@cert-authority {label(fleet, 'h02')} {public(certified)}\n")
    before = known_hosts.read_text()
    reached = probe(target(fleet, "h02", known_hosts, "strict"))
    assert reached.reachable, reached.error
    assert known_hosts.read_text() == before  # nothing to record: the CA vouches for the host


@pytest.mark.parametrize("policy", POLICIES)
def test_a_host_certificate_of_a_revoked_ca_is_refused(
    fleet: SshdFleet, tmp_path: Path, certified: Path, policy: str
) -> None:
    known_hosts = tmp_path / "known_hosts"
    known_hosts.write_text(f"@cert-authority * {public(certified)}\n@revoked * {public(certified)}\n")
    before = known_hosts.read_text()
    refused = probe(target(fleet, "h02", known_hosts, policy))
    assert not refused.reachable and "REVOKED" in (refused.error or ""), refused.error
    assert known_hosts.read_text() == before


def test_a_host_certificate_of_an_unknown_ca_is_refused_when_strict(
    fleet: SshdFleet, tmp_path: Path, certified: Path
) -> None:
    other = keygen(tmp_path / "other-ca")
    known_hosts = tmp_path / "known_hosts"
    known_hosts.write_text(f"@cert-authority * {public(other)}\n")
    refused = probe(target(fleet, "h02", known_hosts, "strict"))
    assert not refused.reachable and refused.error is not None, refused.error
    assert "not signed by a certificate authority" in refused.error, refused.error


@pytest.mark.parametrize("policy", POLICIES)
def test_fabric_hooks_say_clearly_they_cannot_check_a_host_certificate(
    fleet: SshdFleet, tmp_path: Path, certified: Path, policy: str
) -> None:
    known_hosts = tmp_path / "known_hosts"
    known_hosts.write_text(f"@cert-authority {label(fleet, 'h02')} {public(certified)}\n")
    before = known_hosts.read_text()
    by_fabric = hello(target(fleet, "h02", known_hosts, policy), tmp_path)
    assert by_fabric.exit_status == 255
    assert by_fabric.error is not None and "a line that is no host key" not in by_fabric.error
    assert "certificate authority" in by_fabric.error and "Fabric" in by_fabric.error, by_fabric.error
    assert known_hosts.read_text() == before


def test_fabric_hooks_read_a_file_with_markers_for_other_hosts(fleet: SshdFleet, tmp_path: Path) -> None:
    """Markers for other hosts no longer break every Fabric hook."""
    other = keygen(tmp_path / "other-ca")
    known_hosts = tmp_path / "known_hosts"
    known_hosts.write_text(
        f"@cert-authority *.example.com {public(other)}\n@revoked [10.9.9.9]:22 {public(other)}\n"
        f"{label(fleet, 'h03')} {host_key(fleet, 'h03')}\n"
    )
    by_fabric = hello(target(fleet, "h03", known_hosts, "strict"), tmp_path)
    assert by_fabric.exit_status == 0, by_fabric.error
    assert by_fabric.output == "hello from h03\n"


@pytest.mark.parametrize("policy", POLICIES)
def test_a_known_key_of_another_type_is_named(fleet: SshdFleet, tmp_path: Path, policy: str) -> None:
    """The file knows an RSA key for the host; the host offers only ed25519."""
    rsa = keygen(tmp_path / "rsa", "rsa")
    known_hosts = tmp_path / "known_hosts"
    known_hosts.write_text(f"{label(fleet, 'h03')} {public(rsa)}\n")
    before = known_hosts.read_text()
    refused = probe(target(fleet, "h03", known_hosts, policy))
    assert not refused.reachable
    assert refused.error is not None and "Connection lost" not in refused.error
    assert "host key of type ssh-ed25519" in refused.error, refused.error
    assert "ssh-rsa" in refused.error and str(known_hosts) in refused.error
    assert known_hosts.read_text() == before
