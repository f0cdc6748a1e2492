"""A disk that fills while a host receives the artifact: the step ends cleanly with the
real cause, and the driver stays in step with the controller (it once read the rest of
the artifact as the controller's replies). On the OpenSSH fleet, with a small tmpfs
mounted under the target inside the host's own mount namespace."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from deployer.artifact import prepare_artifact
from deployer.fleet import SshOptions, resolve_ssh
from deployer.results import HostResult, HostStatus, Step
from deployer.ssh import SshRunner
from tests.plugins.sshd_fleet import FleetFactory, SshdFleet
from tests.ssh.support import Recorder, job, run

pytestmark = pytest.mark.openssh


@pytest.fixture(scope="module")
def fleet(sshd_fleet_factory: FleetFactory) -> Iterator[SshdFleet]:
    with sshd_fleet_factory(count=1, datacenters=1) as made:
        yield made


@pytest.fixture
def small_disk(fleet: SshdFleet) -> Iterator[str]:
    """A 1 MiB tmpfs at a fresh target on h01 (seen only inside the host's namespace)."""
    target = f"/srv/apps/full-{uuid.uuid4().hex[:8]}"
    fleet.run("h01", f"mkdir -p {target} && mount -t tmpfs -o size=1m tmpfs {target}", check=True)
    try:
        yield target
    finally:
        fleet.run("h01", f"umount {target}")


def test_a_full_disk_while_receiving_ends_the_upload_with_the_real_cause(
    fleet: SshdFleet, small_disk: str, tmp_path: Path
) -> None:
    source = tmp_path / "release"
    source.mkdir()
    (source / "blob").write_bytes(os.urandom(3 << 20))  # incompressible: about 3 MB packed
    artifact = prepare_artifact(source, tmp_path / "cache")
    target = resolve_ssh(fleet.host("h01"), fleet.ssh_options, SshOptions())

    async def scenario() -> HostResult:
        runner = SshRunner()
        try:
            return await runner.deploy(target, job(small_disk, "1.0", artifact), Recorder())
        finally:
            await runner.aclose()

    result = run(scenario())
    assert isinstance(result, HostResult)
    assert result.status is HostStatus.FAILED
    assert result.steps[-1].step is Step.UPLOAD
    tenths = (artifact.size * 10 + (1 << 19)) >> 20  # rounded as the driver does
    size = f"{tenths // 10}.{tenths % 10}"
    assert result.error == f"no space left on h01 under {small_disk} while receiving the artifact ({size} MB)"
    # Nothing of the artifact came back as text, and the host holds no release.
    listing = fleet.run("h01", f"ls -A {small_disk}/releases; cat {small_disk}/current 2>&1", check=False)
    assert listing.stdout.split() == [] or "No such file" in listing.stdout
