"""A disk that fills while a host receives the artifact: the step ends cleanly with the
real cause, and the driver stays in step with the controller (it once read the rest of
the artifact as the controller's replies). On the OpenSSH fleet, with a small tmpfs
mounted under the target inside the host's own mount namespace."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from deployer.core.results import HostResult, HostStatus, Step
from deployer.core.runner import Artifact
from deployer.core.targets import SshOptions, resolve_ssh
from deployer.hosts.artifact import prepare_artifact
from deployer.hosts.ssh import SshRunner
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


def _deploy_blob(
    fleet: SshdFleet, target_dir: str, tmp_path: Path, blob: bytes
) -> tuple[Artifact, HostResult]:
    """Deploys a release of one file, ``blob``, to h01's ``target_dir``: the artifact, the result."""
    source = tmp_path / "release"
    source.mkdir()
    (source / "blob").write_bytes(blob)
    artifact = prepare_artifact(source, tmp_path / "cache")
    target = resolve_ssh(fleet.host("h01"), fleet.ssh_options, SshOptions())

    async def scenario() -> HostResult:
        runner = SshRunner()
        try:
            return await runner.deploy(target, job(target_dir, "1.0", artifact), Recorder())
        finally:
            await runner.aclose()

    result = run(scenario())
    assert isinstance(result, HostResult)
    return artifact, result


def test_a_full_disk_while_receiving_ends_the_upload_with_the_real_cause(
    fleet: SshdFleet, small_disk: str, tmp_path: Path
) -> None:
    # Incompressible: about 3 MB packed.
    artifact, result = _deploy_blob(fleet, small_disk, tmp_path, os.urandom(3 << 20))
    assert result.status is HostStatus.FAILED
    assert result.steps[-1].step is Step.UPLOAD
    tenths = (artifact.size * 10 + (1 << 19)) >> 20  # rounded as the driver does
    size = f"{tenths // 10}.{tenths % 10}"
    assert result.error == f"no space left on h01 under {small_disk} while receiving the artifact ({size} MB)"
    # Nothing of the artifact came back as text, and the host holds no release.
    listing = fleet.run("h01", f"ls -A {small_disk}/releases; cat {small_disk}/current 2>&1", check=False)
    assert listing.stdout.split() == [] or "No such file" in listing.stdout


def test_a_full_disk_while_unpacking_leaves_no_half_release(
    fleet: SshdFleet, small_disk: str, tmp_path: Path
) -> None:
    """The .tar.gz fits, what it unpacks to does not: the release unpacks straight into
    releases/1.0, so that half-written directory must go, giving the space back."""
    artifact, result = _deploy_blob(fleet, small_disk, tmp_path, bytes(3 << 20))  # packs to a few KB
    assert artifact.size < 64 << 10
    assert result.status is HostStatus.FAILED and result.steps[-1].step is Step.UPLOAD
    assert result.error == f"no space left on h01 under {small_disk} while unpacking the artifact"
    listing = fleet.run("h01", f"ls -A {small_disk}/releases; df -k {small_disk} | tail -1", check=True)
    lines = listing.stdout.splitlines()
    assert len(lines) == 1, listing.stdout  # no release, only df's line
    assert int(lines[0].split()[2]) < 256  # KB used: the space came back


def test_check_and_preflight_find_a_disk_too_small_for_the_artifact(
    fleet: SshdFleet, small_disk: str, tmp_path: Path
) -> None:
    """``deploy check`` says the host lacks room; ``push --preflight`` stops before touching it."""
    (tmp_path / "release").mkdir()
    (tmp_path / "release" / "blob").write_bytes(os.urandom(3 << 20))
    spec = tmp_path / "spec.yaml"
    spec.write_text(
        f"app: full\nversion: '1.0'\nfleet: {fleet.inventory_path}\nartifact: release/\n"
        f"target: {small_disk}\n"
    )
    env = {**os.environ, "DEPLOYER_DB": f"sqlite:///{tmp_path / 'state.db'}"}

    def deploy(*args: str) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "deployer", *args, str(spec), "--limit", "h01", "--json"]
        return subprocess.run(command, env=env, capture_output=True, text=True, timeout=120, check=False)

    checked = deploy("check")
    assert checked.returncode == 1, checked.stderr
    report = json.loads(checked.stdout)
    (host,) = report["hosts"]
    assert host["status"] == "failed" and host["free_bytes"] <= 1 << 20
    assert report["needed_bytes"] > 6 << 20  # the .tar.gz and the files it unpacks to
    (problem,) = host["problems"]
    assert problem.startswith("only ") and f"free in {small_disk}; the artifact needs 6." in problem
    pushed = deploy("push", "--yes", "--preflight")
    assert pushed.returncode == 1
    assert json.loads(pushed.stdout)["status"] == "preflight_failed"
    assert fleet.run("h01", f"ls -A {small_disk}", check=True).stdout == ""  # nothing was touched
