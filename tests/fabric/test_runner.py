"""Fabric-task hooks through the SSH runner, on the OpenSSH fleet: what a task is told,
where its output goes, a restart that starts with one, a controller that goes away during
one, and host keys checked as strictly as the runner's own."""

from __future__ import annotations

import asyncio
import shutil
import uuid
from dataclasses import replace
from pathlib import Path

import pytest

from deployer.core.results import DeploymentKind, HostResult, HostStatus, Step
from deployer.core.runner import HookCommand, HookOutcome
from deployer.core.targets import SshOptions, SshTarget, resolve_ssh
from deployer.hosts.fabric_connection import HookVariables
from deployer.hosts.fabric_hooks import FabricHooks
from deployer.hosts.ssh import SshRunner
from tests.fabric.support import write_fabfile
from tests.plugins.sshd_fleet import SshdFleet
from tests.ssh.support import Recorder, hook, job, kill_marked, make_artifact, pids_running, run, wait_until

pytestmark = pytest.mark.openssh


def fabric(step: Step, fabfile: Path, task: str, timeout: float = 20.0, **args: object) -> HookCommand:
    return HookCommand(
        step=step, command="", timeout=timeout, fabric=f"{fabfile}:{task}", fabric_args=dict(args)
    )


def target_of(sshd_fleet: SshdFleet, name: str, **changes: object) -> SshTarget:
    plain = resolve_ssh(sshd_fleet.host(name), sshd_fleet.ssh_options, SshOptions())
    return replace(plain, **changes)  # type: ignore[arg-type]


def test_a_task_is_told_the_deployment_and_its_output_is_the_step_s(
    sshd_fleet: SshdFleet, tmp_path: Path
) -> None:
    fabfile = write_fabfile(tmp_path)
    app = f"app-{uuid.uuid4().hex[:8]}"
    remote, local = f"/srv/apps/{app}", sshd_fleet.host_root("h02") / "apps" / app
    target = target_of(sshd_fleet, "h02")
    pushes = [
        job(
            remote,
            version,
            make_artifact(tmp_path, version),
            fabric(Step.AFTER_INSTALL, fabfile, "record", note=version),
        )
        for version in ("1.0", "1.1")
    ]
    restart = job(
        remote,
        "1.1",
        None,
        fabric(Step.STOP, fabfile, "record", note="stop"),  # the first step: not answered in advance
        hook(Step.START, "true"),
        kind=DeploymentKind.RESTART,
    )
    recorder = Recorder()

    async def scenario() -> list[HostResult]:
        runner = SshRunner()
        try:
            results = [await runner.deploy(target, pushed, Recorder()) for pushed in pushes]
            return [*results, await runner.deploy(target, restart, recorder)]
        finally:
            await runner.aclose()

    results = run(scenario())
    assert isinstance(results, list)
    assert [r.status for r in results] == [HostStatus.SUCCEEDED] * 3, [r.error for r in results]
    release = f"{remote}/releases/1.1"
    told = f"shop|1.1|1.0|prod|h02|dc1|{pushes[1].deployment_id}|{release}"
    for suffix in ("config", "env"):
        assert (local / "releases" / "1.1" / f"fabric-1.1.{suffix}").read_text() == told + "\n"
    after_install = next(s for s in results[1].steps if s.step == Step.AFTER_INSTALL)
    assert after_install.exit_status == 0 and after_install.attempts == 1
    assert "recorded 1.1 on h02\n" in after_install.output and "a word on stderr\n" in after_install.output
    # A restart runs in the current release and names it as its version.
    assert [step for _, step in recorder.steps] == [Step.STOP, Step.START]  # the wave's steps, as they happen
    restarted = (local / "releases" / "1.1" / "fabric-stop.env").read_text()
    assert restarted == f"shop|1.1|1.1|prod|h02|dc1|{restart.deployment_id}|{release}\n"


def test_a_controller_gone_during_a_task_leaves_the_host_failed_at_that_step(
    sshd_fleet: SshdFleet, tmp_path: Path
) -> None:
    fabfile = write_fabfile(tmp_path)
    app = f"app-{uuid.uuid4().hex[:8]}"
    remote, local = f"/srv/apps/{app}", sshd_fleet.host_root("h03") / "apps" / app
    target = target_of(sshd_fleet, "h03")
    marker = f"301.{uuid.uuid4().int % 10**6:06d}"
    pushed = job(
        remote,
        "1.0",
        make_artifact(tmp_path, "1.0"),
        fabric(Step.AFTER_INSTALL, fabfile, "hang", timeout=3, marker=marker),
    )

    async def scenario() -> str | None:
        runner = SshRunner()
        deploying = asyncio.create_task(runner.deploy(target, pushed, Recorder()))
        try:
            while not pids_running(marker):
                await asyncio.sleep(0.05)
            deploying.cancel()  # the controller dies while the task runs
            await asyncio.gather(deploying, return_exceptions=True)
        finally:
            await runner.aclose()
        prober = SshRunner()
        try:
            for _ in range(100):
                probe = await prober.probe(target, remote, pushed.deployment_id)
                if probe.outcome != "running":
                    return probe.outcome
                await asyncio.sleep(0.1)
            return probe.outcome
        finally:
            await prober.aclose()

    try:
        assert run(scenario()) == "failed:after_install:1"
        assert not (local / "current").exists()
        log = (local / ".deploy" / f"{pushed.deployment_id}.after_install.log").read_text()
        assert "the controller went away before telling how its hook ended" in log
        assert wait_until(lambda: not pids_running(marker), timeout=15)  # its time bound ended it
    finally:
        kill_marked(marker)


def hello(target: SshTarget, fabfile: Path) -> HookOutcome:
    hook = fabric(Step.AFTER_INSTALL, fabfile, "hello", timeout=15)
    host = target.host
    variables = HookVariables("shop", "1.0", "", "prod", host.name, host.datacenter, "d-1", "/srv")
    outcome = asyncio.run(asyncio.wait_for(FabricHooks().run(target, hook, variables), 60))
    assert isinstance(outcome, HookOutcome)
    return outcome


def test_a_changed_host_key_is_refused_under_both_policies(sshd_fleet: SshdFleet, tmp_path: Path) -> None:
    fabfile = write_fabfile(tmp_path)
    known_hosts = tmp_path / "known_hosts"
    shutil.copy(sshd_fleet.known_hosts, known_hosts)
    target = target_of(sshd_fleet, "h12", known_hosts=str(known_hosts))
    assert hello(target, fabfile).output == "hello from h12\n"
    sshd_fleet.rotate_host_key("h12")
    where = f"{target.host.address}:{target.host.port}"
    before = known_hosts.read_text()
    for policy in ("strict", "accept-new"):
        refused = hello(replace(target, host_key_policy=policy), fabfile)
        assert refused.exit_status == 255 and refused.output == ""
        assert refused.error is not None
        assert refused.error.startswith(
            f"after_install Fabric task fabfile.py:hello could not connect: host key CHANGED for {where}: "
            "it offers ssh-ed25519 SHA256:"
        )
        # The runner's own sentence: one verdict for both paths (deployer.hosts.host_keys).
        assert f"which is not the key recorded in {known_hosts}; if the change is expected" in refused.error
    assert known_hosts.read_text() == before


def test_an_unknown_host_key_is_refused_when_strict_and_recorded_when_accept_new(
    sshd_fleet: SshdFleet, tmp_path: Path
) -> None:
    fabfile = write_fabfile(tmp_path)
    known_hosts = tmp_path / "new" / "known_hosts"
    target = target_of(sshd_fleet, "h11", known_hosts=str(known_hosts))
    label = f"[{target.host.address}]:{target.host.port}"
    refused = hello(target, fabfile)
    assert refused.error == (
        "after_install Fabric task fabfile.py:hello could not connect: "
        f"host key for {target.host.address}:{target.host.port} is not in {known_hosts}"
        " (the file does not exist); to trust it, check its fingerprint and run "
        f"`ssh-keyscan -p {target.host.port} {target.host.address} >> {known_hosts}`, "
        "or set ssh.host_key_policy: accept-new in the spec to record keys on first use"
    )
    learned = hello(replace(target, host_key_policy="accept-new"), fabfile)
    assert learned.exit_status == 0, learned.error
    lines = known_hosts.read_text().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"{label} ssh-ed25519 ")
    assert hello(target, fabfile).exit_status == 0  # strict now knows it
