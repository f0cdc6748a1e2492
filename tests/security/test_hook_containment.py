"""hooks.contain: a hook's child that leaves its process group (setsid) survives the
hook's timeout, unless the hook runs in a cgroup of its own, killed whole at the timeout.
On the OpenSSH fleet (cgroup v2 writable by root there); and a clear error where the
host does not allow it."""

from __future__ import annotations

import os
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from deployer.core.results import HostResult, HostStatus, Step
from deployer.core.targets import SshOptions, resolve_ssh
from deployer.hosts.protocol import driver_command
from deployer.hosts.ssh import SshRunner
from deployer.operations.reading import check_fabric_task
from deployer.spec.hooks import hook_commands
from deployer.spec.load import load_spec
from tests.plugins.sshd_fleet import FleetFactory, SshdFleet
from tests.ssh.support import (
    LOCAL_HOST,
    Recorder,
    go_line,
    hook,
    inline_artifact,
    job,
    kill_marked,
    make_artifact,
    pids_running,
    run,
    wait_until,
)


@pytest.fixture(scope="module")
def fleet(sshd_fleet_factory: FleetFactory) -> Iterator[SshdFleet]:
    with sshd_fleet_factory(count=1, datacenters=1) as made:
        yield made


def escaping_hook(marker: str, *, contain: bool) -> object:
    """A start hook whose child leaves the process group, then outlives a 1 s timeout."""
    return hook(Step.START, f"setsid sleep {marker} & sleep 30", timeout=1, contain=contain)


@pytest.mark.openssh
@pytest.mark.parametrize("contain", [False, True], ids=["plain", "contained"])
def test_a_setsid_child_dies_at_the_timeout_only_when_contained(
    fleet: SshdFleet, tmp_path: Path, contain: bool
) -> None:
    marker = f"307.{uuid.uuid4().int % 10**6:06d}"
    target = resolve_ssh(fleet.host("h01"), fleet.ssh_options, SshOptions())
    pushed = job(
        f"/srv/apps/contain-{uuid.uuid4().hex[:8]}",
        "1.0",
        make_artifact(tmp_path, "1.0"),
        escaping_hook(marker, contain=contain),  # type: ignore[arg-type]
    )

    async def scenario() -> HostResult:
        runner = SshRunner()
        try:
            return await runner.deploy(target, pushed, Recorder())
        finally:
            await runner.aclose()

    try:
        result = run(scenario())
        assert isinstance(result, HostResult)
        assert result.status is HostStatus.FAILED and result.step is Step.START
        assert "timed out after 1s" in (result.error or ""), result.error
        if contain:
            assert wait_until(lambda: not pids_running(marker), timeout=10)
        else:
            assert pids_running(marker)  # the escape the issue reports: still running
    finally:
        kill_marked(marker)


def test_contain_where_the_host_does_not_allow_it_is_a_clear_error(tmp_path: Path) -> None:
    """As an unprivileged user, the machine's cgroup v2 is not writable: the driver says so
    before any step, and runs nothing."""
    artifact = make_artifact(tmp_path, "1.0")
    with tempfile.TemporaryDirectory(prefix="contain-") as shared:  # tmp_path is root's alone
        os.chmod(shared, 0o777)
        app = Path(shared) / "app"
        pushed = job(str(app), "1.0", artifact, hook(Step.START, "touch started", contain=True))
        as_nobody = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "/bin/sh", "-c"]
        done = subprocess.run(
            [*as_nobody, driver_command(pushed, LOCAL_HOST)],
            input=inline_artifact(artifact) + go_line(),
            capture_output=True,
            timeout=60,
            env={"PATH": os.environ["PATH"], "HOME": shared, "USER": "nobody"},
            check=True,
        )
        assert not (app / "current").exists()
    lines = done.stdout.decode().splitlines()
    assert "@@done failed:upload:125" in lines
    error = next(line for line in lines if line.startswith("@@error"))
    assert "hooks.contain is not available on this host" in error
    assert "not writable by nobody" in error or "no cgroup v2" in error


def test_the_spec_sets_contain_on_every_hook(tmp_path: Path) -> None:
    (tmp_path / "build").mkdir()
    spec = tmp_path / "spec.yaml"
    spec.write_text(
        'app: shop\nversion: "1"\nartifact: build/\ntarget: /srv/shop\n'
        "fleet: {hosts: [{name: s1, datacenter: dc1}]}\n"
        "hooks: {start: 'true', validate: {command: 'true', retries: 2}, contain: true}\n"
    )
    commands = hook_commands(load_spec(spec, check_task=check_fabric_task))
    assert {step: command.contain for step, command in commands.items()} == {
        Step.START: True,
        Step.VALIDATE: True,
    }
    spec.write_text(spec.read_text().replace("contain: true", "contain: yes please"))
    with pytest.raises(Exception, match="contain"):
        load_spec(spec, check_task=check_fabric_task)
