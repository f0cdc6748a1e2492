"""The asyncssh runner end to end, on the lab and on OpenSSH hosts (see conftest.py)."""

from __future__ import annotations

import asyncio
import base64
import random
import threading
import time
import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncssh
import pytest

from deployer.core.results import DeploymentKind, HostStatus, Step
from deployer.core.targets import Host
from deployer.hosts.conversation import ARTIFACT_CHUNK
from deployer.hosts.ssh import SshRunner
from tests.ssh.support import (
    AppFleet,
    Recorder,
    holds_until_stopped,
    hook,
    job,
    make_artifact,
    pids_running,
    run,
    wait_until,
)

LOG_ENV = (
    'echo "$STEP|$(pwd)|$DEPLOY_APP|$DEPLOY_VERSION|$DEPLOY_PREVIOUS_VERSION|$DEPLOY_ENVIRONMENT'
    '|$DEPLOY_HOST|$DEPLOY_DATACENTER|$DEPLOY_ID|$DEPLOY_RELEASE_DIR"'
    ' >> "$DEPLOY_RELEASE_DIR/../../hooks.log"'
)


def logging_hooks() -> list:
    return [
        hook(step, f"STEP={step.value}; {LOG_ENV}")
        for step in (Step.STOP, Step.BEFORE_INSTALL, Step.AFTER_INSTALL, Step.START, Step.VALIDATE)
    ]


def test_hooks_run_in_order_with_their_environment(fleet: AppFleet) -> None:
    target, local = fleet.app()
    first = make_artifact(fleet.work, "1.0")
    second = make_artifact(fleet.work, "1.1")
    host = fleet.hosts[0]
    first_job = job(target, "1.0", first, *logging_hooks())
    # Keeping one release, the host holds more than it keeps after the second push: it
    # prunes an old release left there, so every step runs (1.0 stays all the same, as
    # the previous release).
    second_job = job(target, "1.1", second, *logging_hooks(), keep=1)
    recorder = Recorder()

    async def scenario() -> tuple:
        runner = SshRunner()
        try:
            one = await runner.deploy(fleet.target(), first_job, Recorder())
            (local / "releases" / "0.1").mkdir()
            two = await runner.deploy(fleet.target(), second_job, recorder)
            return one, two
        finally:
            await runner.aclose()

    one, two = run(scenario())
    assert one.status == HostStatus.SUCCEEDED, one.error
    assert two.status == HostStatus.SUCCEEDED, two.error
    assert (two.previous_version, two.version, two.uploaded) == ("1.0", "1.1", True)
    # Told as they happen: the wave's steps (connecting and staging come before it).
    assert [step for _, step in recorder.steps] == list(Step)[2:]
    assert [s.step for s in two.steps] == list(Step)
    assert not (local / "releases" / "0.1").exists()
    lines = (local / "hooks.log").read_text().splitlines()
    assert [line.split("|")[0] for line in lines] == [
        "before_install",
        "after_install",
        "start",
        "validate",  # the first deploy: nothing to stop
        "stop",
        "before_install",
        "after_install",
        "start",
        "validate",
    ]
    remote_release = {"1.0": None, "1.1": None}
    for line in lines[4:]:
        step, cwd, app, version, previous, environment, name, datacenter, deployment, release = line.split(
            "|"
        )
        assert (app, version, previous, environment) == ("shop", "1.1", "1.0", "prod")
        assert (name, datacenter, deployment) == (host.name, host.datacenter, second_job.deployment_id)
        assert cwd == release
        expected = "1.0" if step == "stop" else "1.1"
        assert release.endswith(f"/releases/{expected}")
        remote_release[expected] = release
    assert Path(remote_release["1.1"]).name == "1.1"
    assert (local / "current").resolve() == (local / "releases" / "1.1").resolve()
    assert (local / "current" / "VERSION").read_text() == "1.1\n"
    assert (local / "releases" / "1.1" / ".deploy-sha256").read_text().strip() == second.sha256
    revisions = (local / "revisions.log").read_text().splitlines()
    assert [line.split("\t")[1:] for line in revisions] == [
        ["1.0", first_job.deployment_id, "alice"],
        ["1.1", second_job.deployment_id, "alice"],
    ]
    switched = [datetime.strptime(line.split("\t")[0], "%Y-%m-%dT%H:%M:%S%z") for line in revisions]
    assert all(abs(datetime.now(UTC) - moment) < timedelta(minutes=5) for moment in switched)


def test_an_artifact_of_several_chunks_arrives_whole(fleet: AppFleet) -> None:
    target, local = fleet.app()
    noise = base64.b64encode(random.Random(7).randbytes(3 * ARTIFACT_CHUNK)).decode()
    artifact = make_artifact(fleet.work, "1.0", {"noise.txt": noise})
    assert artifact.size > 2 * ARTIFACT_CHUNK  # sent as three writes at least

    async def scenario():
        runner = SshRunner()
        try:
            return await runner.deploy(fleet.target(), job(target, "1.0", artifact), Recorder())
        finally:
            await runner.aclose()

    result = run(scenario())
    assert result.status == HostStatus.SUCCEEDED, result.error
    assert (local / "current" / "noise.txt").read_text() == noise


def test_a_daemon_started_in_the_background_does_not_hold_the_start_hook(fleet: AppFleet) -> None:
    quiet, noisy = fleet.marker(), fleet.marker()
    target, _local = fleet.app()
    artifact = make_artifact(fleet.work, "1.0")
    start = hook(Step.START, f"sleep {quiet} > /dev/null 2>&1 & sleep {noisy} & echo started", timeout=30)

    async def scenario():
        runner = SshRunner()
        try:
            return await runner.deploy(fleet.target(), job(target, "1.0", artifact, start), Recorder())
        finally:
            await runner.aclose()

    began = time.monotonic()
    result = run(scenario())
    assert result.status == HostStatus.SUCCEEDED, result.error
    assert time.monotonic() - began < 10  # bounded: the hook's process exited, its children live on
    assert "started" in next(s.output for s in result.steps if s.step == Step.START)
    assert pids_running(quiet) and pids_running(noisy)  # the daemons do run (killed at teardown)


def test_a_hooks_output_comes_back_as_printed_and_its_last_64_kib_only(fleet: AppFleet) -> None:
    target, _local = fleet.app()
    artifact = make_artifact(fleet.work, "1.0")
    # Lines that look like the driver's own, and no newline at the end.
    tricky = hook(Step.START, "printf 'one\\n@@step start end 9 9\\n@@output-end x\\n\\nno newline'")
    # 70,000 characters, the last line ending in "end".
    long = hook(
        Step.VALIDATE, "i=0; while [ $i -lt 1000 ]; do printf '%069d\\n' $i; i=$((i+1)); done; echo end"
    )

    async def scenario():
        runner = SshRunner()
        try:
            return await runner.deploy(fleet.target(), job(target, "1.0", artifact, tricky, long), Recorder())
        finally:
            await runner.aclose()

    result = run(scenario())
    assert result.status == HostStatus.SUCCEEDED, result.error
    outputs = {s.step: s.output for s in result.steps}
    assert outputs[Step.START] == "one\n@@step start end 9 9\n@@output-end x\n\nno newline"
    assert len(outputs[Step.VALIDATE]) == 65536
    assert outputs[Step.VALIDATE].endswith(
        "\n000000000000000000000000000000000000000000000000000000000000000000999\nend\n"
    )


def test_a_failing_hook_before_the_switch_leaves_current_alone(fleet: AppFleet) -> None:
    target, local = fleet.app()
    good, bad = make_artifact(fleet.work, "1.0"), make_artifact(fleet.work, "1.1")
    failing = hook(Step.AFTER_INSTALL, "echo checking; echo 'no database' >&2; exit 3")

    async def scenario():
        runner = SshRunner()
        try:
            await runner.deploy(fleet.target(), job(target, "1.0", good), Recorder())
            return await runner.deploy(fleet.target(), job(target, "1.1", bad, failing), Recorder())
        finally:
            await runner.aclose()

    result = run(scenario())
    assert result.status == HostStatus.FAILED
    assert (result.step, result.exit_status, result.error) == (
        Step.AFTER_INSTALL,
        3,
        "after_install exited 3",
    )
    assert "no database" in result.output_tail
    assert (result.version, result.previous_version) == ("1.0", "1.0")
    assert (local / "current" / "VERSION").read_text() == "1.0\n"
    assert [s.step for s in result.steps][-1] == Step.AFTER_INSTALL


def test_a_hook_past_its_timeout_is_killed_with_its_children(fleet: AppFleet) -> None:
    marker = fleet.marker()
    target, local = fleet.app()
    artifact = make_artifact(fleet.work, "1.0")
    # A child in the background, a grandchild, and the hook's own foreground sleep.
    slow = hook(
        Step.BEFORE_INSTALL,
        f"sleep {marker} & sh -c 'sleep {marker}; true' & trap '' TERM; sleep {marker}",
        timeout=1,
    )

    async def scenario():
        runner = SshRunner()
        try:
            return await runner.deploy(fleet.target(), job(target, "1.0", artifact, slow), Recorder())
        finally:
            await runner.aclose()

    began = time.monotonic()
    result = run(scenario())
    assert time.monotonic() - began < 15
    assert result.status == HostStatus.FAILED
    assert result.step == Step.BEFORE_INSTALL
    assert result.error == "before_install timed out after 1s and was killed with its children"
    assert pids_running(marker) == []
    assert not (local / "current").exists()


def test_validate_is_retried_and_reports_its_attempts(fleet: AppFleet) -> None:
    target, _local = fleet.app()
    artifact = make_artifact(fleet.work, "1.0")
    validate = hook(Step.VALIDATE, "echo probing; exit 7", retries=2, interval=0.1)

    async def scenario():
        runner = SshRunner()
        try:
            return await runner.deploy(fleet.target(), job(target, "1.0", artifact, validate), Recorder())
        finally:
            await runner.aclose()

    result = run(scenario())
    assert result.status == HostStatus.FAILED
    assert (result.step, result.exit_status) == (Step.VALIDATE, 7)
    assert result.error == "validate exited 7 after 3 attempts"
    assert result.steps[-1].attempts == 3
    assert result.output_tail.count("probing") == 3
    assert result.version == "1.0"  # validate runs after the switch: the host is left switched


def test_an_unknown_host_key_is_refused(fleet: AppFleet) -> None:
    empty = fleet.work / "known_hosts"
    empty.write_text("")
    target, local = fleet.app()
    host = fleet.hosts[0]

    async def scenario():
        runner = SshRunner()
        try:
            return await runner.deploy(
                fleet.target(known_hosts=str(empty)),
                job(target, "1.0", make_artifact(fleet.work, "1.0")),
                Recorder(),
            )
        finally:
            await runner.aclose()

    result = run(scenario())
    assert result.status == HostStatus.FAILED
    assert result.step == Step.CONNECT
    assert result.error == (
        f"host key for {host.address}:{host.port} is not in {empty}; to trust it, check its fingerprint "
        f"and run `ssh-keyscan -p {host.port} {host.address} >> {empty}`, or set "
        "ssh.host_key_policy: accept-new in the spec to record keys on first use"
    )
    assert not local.exists()
    assert empty.read_text() == ""


def test_accept_new_records_an_unknown_key_and_refuses_a_changed_one(fleet: AppFleet) -> None:
    known = fleet.work / "known_hosts"
    known.write_text("")
    target, _local = fleet.app()
    artifact = make_artifact(fleet.work, "1.0")
    host = fleet.hosts[0]
    other_key = asyncssh.generate_private_key("ssh-ed25519").export_public_key().decode().split()[:2]

    async def deploy(policy: str):
        runner = SshRunner()
        try:
            chosen = fleet.target(known_hosts=str(known), host_key_policy=policy)
            return await runner.deploy(chosen, job(target, "1.0", artifact), Recorder())
        finally:
            await runner.aclose()

    accepted = run(deploy("accept-new"))
    assert accepted.status == HostStatus.SUCCEEDED, accepted.error
    recorded = known.read_text().splitlines()
    assert len(recorded) == 1 and recorded[0].startswith(f"[{host.address}]:{host.port} ")
    assert run(deploy("strict")).status == HostStatus.SUCCEEDED  # now it is known

    known.write_text(f"[{host.address}]:{host.port} {' '.join(other_key)}\n")
    changed = run(deploy("accept-new"))
    assert changed.status == HostStatus.FAILED
    assert changed.step == Step.CONNECT
    assert changed.error is not None
    assert changed.error.startswith(f"host key CHANGED for {host.address}:{host.port}")
    assert known.read_text().splitlines() == [f"[{host.address}]:{host.port} {' '.join(other_key)}"]


def test_a_reader_never_sees_current_missing_or_mixed_during_switches(fleet: AppFleet) -> None:
    target, local = fleet.app()
    bodies = {v: (v + "\n") * 20000 for v in ("1.0", "1.1")}
    artifacts = {v: make_artifact(fleet.work, v, {"BODY": bodies[v]}) for v in bodies}
    seen: list[str] = []
    problems: list[str] = []
    stop = threading.Event()

    def read_forever() -> None:
        while not stop.is_set():
            try:
                body = (local / "current" / "BODY").read_text()
            except OSError as error:
                problems.append(f"{type(error).__name__}: {error}")
                continue
            if body not in bodies.values():
                problems.append(f"mixed content of {len(body)} characters")
            seen.append(body[:3])

    async def scenario():
        runner = SshRunner()
        try:
            first = await runner.deploy(fleet.target(), job(target, "1.0", artifacts["1.0"]), Recorder())
            assert first.status == HostStatus.SUCCEEDED, first.error
            reader.start()
            for version in ["1.1", "1.0"] * 5:
                result = await runner.deploy(
                    fleet.target(), job(target, version, artifacts[version]), Recorder()
                )
                assert result.status == HostStatus.SUCCEEDED, result.error
        finally:
            await runner.aclose()

    reader = threading.Thread(target=read_forever)
    try:
        run(scenario())
    finally:
        stop.set()
        if reader.is_alive():
            reader.join(timeout=10)
    assert problems == []
    assert {"1.0", "1.1"} <= set(seen)


def test_pruning_keeps_the_newest_releases_and_never_current_nor_previous(fleet: AppFleet) -> None:
    target, local = fleet.app()
    versions = ["1", "2", "3", "4", "5"]
    artifacts = {v: make_artifact(fleet.work, v) for v in versions}

    async def scenario():
        runner = SshRunner()
        pruned = []
        try:
            for version in versions:
                result = await runner.deploy(
                    fleet.target(), job(target, version, artifacts[version], keep=3), Recorder()
                )
                assert result.status == HostStatus.SUCCEEDED, result.error
                pruned.append(Step.PRUNE in [s.step for s in result.steps])
            after_pushes = sorted(p.name for p in (local / "releases").iterdir())
            # Roll back to 3 keeping one release: 3 is current, 5 was before it; 4 goes.
            back = await runner.deploy(
                fleet.target(), job(target, "3", None, kind=DeploymentKind.ROLLBACK, keep=1), Recorder()
            )
            probe = await runner.probe(fleet.target(), target, None)
            return pruned, after_pushes, back, probe
        finally:
            await runner.aclose()

    pruned, after_pushes, back, probe = run(scenario())
    # Holding no more releases than it keeps, a host has nothing to prune: no such step.
    assert pruned == [False, False, False, True, True]
    assert after_pushes == ["3", "4", "5"]
    assert back.status == HostStatus.SUCCEEDED, back.error
    assert (back.version, back.previous_version, back.uploaded) == ("3", "5", False)
    assert sorted(p.name for p in (local / "releases").iterdir()) == ["3", "5"]
    assert (probe.current_version, probe.releases) == ("3", ("3", "5"))


def test_a_release_already_on_the_host_is_not_uploaded_again(fleet: AppFleet) -> None:
    target, local = fleet.app()
    one, two = make_artifact(fleet.work, "1.0"), make_artifact(fleet.work, "2.0")

    async def scenario():
        runner = SshRunner()
        try:
            return [
                await runner.deploy(fleet.target(), job(target, version, artifact), Recorder())
                for version, artifact in (("1.0", one), ("2.0", two), ("1.0", one))
            ]
        finally:
            await runner.aclose()

    results = run(scenario())
    assert [(r.status, r.version, r.uploaded) for r in results] == [
        (HostStatus.SUCCEEDED, "1.0", True),
        (HostStatus.SUCCEEDED, "2.0", True),
        (HostStatus.SUCCEEDED, "1.0", False),
    ]
    assert (local / "current" / "VERSION").read_text() == "1.0\n"


def test_injection_strings_are_data(fleet: AppFleet) -> None:
    token = uuid.uuid4().hex[:8]
    witnesses = [Path(f"/tmp/pwned-{token}"), Path(f"/tmp/pwned2-{token}"), Path(f"/tmp/pwned3-{token}")]
    versions = [f"1.0;touch {witnesses[0]}", f"$(touch {witnesses[1]})"]
    name = f"odd dir 'it''s' \"q\" `touch {witnesses[2]}` {token}"
    target, local = fleet.app(name=name)
    hooks = [hook(Step.START, 'printf "%s" "$DEPLOY_VERSION" > "$DEPLOY_RELEASE_DIR/../../seen"')]

    async def scenario():
        runner = SshRunner()
        try:
            results = []
            for version in versions:
                artifact = make_artifact(fleet.work, version)
                pushed = job(
                    target, version, artifact, *hooks, deployment_id=f"d;$(touch pwned3-{token})`id`"
                )
                results.append(
                    await runner.deploy(
                        fleet.target(), replace(pushed, started_by=f"`touch {witnesses[2]}`"), Recorder()
                    )
                )
            return results
        finally:
            await runner.aclose()

    try:
        results = run(scenario())
        assert [r.status for r in results] == [HostStatus.SUCCEEDED] * 2, [r.error for r in results]
        assert [w for w in witnesses if w.exists()] == []
        assert sorted(p.name for p in (local / "releases").iterdir()) == sorted(
            [f"1.0;touch %2Ftmp%2Fpwned-{token}", f"$(touch %2Ftmp%2Fpwned2-{token})"]
        )
        assert list(local.parent.parent.rglob(f"pwned3-{token}")) == []
        assert (local / "seen").read_text() == versions[1]
        assert (local / "current" / "VERSION").read_text() == versions[1] + "\n"
        assert [
            line.split("\t")[1] for line in (local / "revisions.log").read_text().splitlines()
        ] == versions
    finally:
        for witness in witnesses:
            witness.unlink(missing_ok=True)


def test_the_driver_finishes_by_itself_when_the_controller_goes_away(fleet: AppFleet) -> None:
    target, local = fleet.app()
    artifact = make_artifact(fleet.work, "1.0")
    hooks = [
        hook(Step.START, "sleep 1; echo started > ../../started"),
        hook(Step.VALIDATE, "test -f ../../started && echo validated > ../../validated"),
    ]
    pushed = job(target, "1.0", artifact, *hooks)

    async def scenario():
        runner = SshRunner()
        recorder = Recorder()

        def disconnect_soon() -> None:
            # After the START ack is sent, cut every connection: the controller is gone.
            asyncio.get_running_loop().call_later(0.3, lambda: asyncio.ensure_future(runner.aclose()))

        recorder.on_step[Step.START] = disconnect_soon
        result = await runner.deploy(fleet.target(), pushed, recorder)
        during = await _probe(fleet, target, pushed.deployment_id)
        return result, during, recorder

    result, during, recorder = run(scenario())
    assert result.status == HostStatus.UNKNOWN  # its driver went on: only a probe can tell
    assert result.step == Step.START
    assert (result.version, result.previous_version) == ("1.0", None)  # switched before the cut
    assert "lost the connection" in (result.error or "")
    assert [step for _, step in recorder.steps][-1] == Step.START
    assert during.outcome in ("running", "succeeded")

    def finished() -> bool:
        return (local / ".deploy" / f"{pushed.deployment_id}.state").read_text().splitlines()[
            -1
        ] == "succeeded"

    assert wait_until(finished)
    assert (local / "validated").read_text() == "validated\n"
    assert (local / "current" / "VERSION").read_text() == "1.0\n"
    after = run(_probe(fleet, target, pushed.deployment_id))
    assert (after.reachable, after.outcome, after.current_version) == (True, "succeeded", "1.0")


async def _probe(fleet: AppFleet, target: str, deployment_id: str):
    runner = SshRunner()
    try:
        return await runner.probe(fleet.target(), target, deployment_id)
    finally:
        await runner.aclose()


def test_restart_runs_stop_start_validate_in_the_current_release(fleet: AppFleet) -> None:
    target, local = fleet.app()
    artifact = make_artifact(fleet.work, "1.0")
    hooks = [hook(step, f"STEP={step.value}; {LOG_ENV}") for step in (Step.STOP, Step.START, Step.VALIDATE)]

    async def scenario():
        runner = SshRunner()
        try:
            await runner.deploy(fleet.target(), job(target, "1.0", artifact), Recorder())
            recorder = Recorder()
            restarted = await runner.deploy(
                fleet.target(), job(target, "1.0", None, *hooks, kind=DeploymentKind.RESTART), recorder
            )
            return restarted, recorder
        finally:
            await runner.aclose()

    result, recorder = run(scenario())
    assert result.status == HostStatus.SUCCEEDED, result.error
    assert [step for _, step in recorder.steps] == [Step.STOP, Step.START, Step.VALIDATE]
    assert [line.split("|")[0] for line in (local / "hooks.log").read_text().splitlines()] == [
        "stop",
        "start",
        "validate",
    ]
    assert len((local / "revisions.log").read_text().splitlines()) == 1  # no switch


def test_an_abort_before_the_switch_changes_nothing(fleet: AppFleet) -> None:
    target, local = fleet.app()
    one, two = make_artifact(fleet.work, "1.0"), make_artifact(fleet.work, "1.1")
    # before_install holds until the driver's listener took the controller's `stop` (its
    # note appears), bounded by the hook's own timeout: the abort lands mid-way, for sure.
    holds = holds_until_stopped(Step.BEFORE_INSTALL)

    async def scenario():
        runner = SshRunner()
        try:
            await runner.deploy(fleet.target(), job(target, "1.0", one), Recorder())
            pushed = job(target, "1.1", two, holds, hook(Step.START, "true"))
            recorder = Recorder()
            recorder.on_step[Step.BEFORE_INSTALL] = lambda: runner.stop(pushed.deployment_id)
            return await runner.deploy(fleet.target(), pushed, recorder), recorder
        finally:
            await runner.aclose()

    result, recorder = run(scenario())
    assert result.status == HostStatus.ABORTED
    assert result.step == Step.AFTER_INSTALL or result.step == Step.SWITCH
    assert [step for _, step in recorder.steps] == [Step.BEFORE_INSTALL]
    assert (local / "current" / "VERSION").read_text() == "1.0\n"
    assert (local / "releases" / "1.1" / "VERSION").read_text() == "1.1\n"  # staged, not live


def test_an_abort_while_a_host_is_staged_at_its_wave_keeps_it_on_its_old_version(fleet: AppFleet) -> None:
    # A host not staged ahead is staged at its wave, its go right behind the artifact: an
    # abort that comes while the artifact is on its way keeps that go from being sent at
    # all. (One that comes during the unpack: tests/ssh/test_go_with_artifact.py.)
    target, local = fleet.app()
    one = make_artifact(fleet.work, "1.0")
    noise = base64.b64encode(random.Random(11).randbytes(12 * 1024 * 1024)).decode()
    big = make_artifact(fleet.work, "1.1", {"noise.txt": noise})  # takes many writes to send
    pushed = job(target, "1.1", big, hook(Step.STOP, "true"), hook(Step.START, "true"))
    arriving = local / ".deploy" / f"{pushed.deployment_id}.artifact.tar.gz"

    async def scenario():
        runner = SshRunner()
        try:
            await runner.deploy(fleet.target(), job(target, "1.0", one), Recorder())
            deploying = asyncio.create_task(runner.deploy(fleet.target(), pushed, Recorder()))
            async with asyncio.timeout(60):
                while not (arriving.exists() and arriving.stat().st_size > 0):  # the bytes are coming
                    await asyncio.sleep(0.001)
            runner.stop(pushed.deployment_id)
            return await deploying
        finally:
            await runner.aclose()

    result = run(scenario())
    assert result.status == HostStatus.ABORTED, result.error
    assert result.error == "aborted before its first step; the host still runs what it ran before"
    assert (local / "current" / "VERSION").read_text() == "1.0\n"


def test_an_identity_file_that_holds_no_key_fails_the_host_with_a_sentence(fleet: AppFleet) -> None:
    identity = fleet.work / "not-a-key"
    identity.write_text("this is not a private key\n")
    target, _ = fleet.app()

    async def scenario():
        runner = SshRunner()
        try:
            return await runner.deploy(
                fleet.target(identity_file=str(identity)), job(target, "1.0", None), Recorder()
            )
        finally:
            await runner.aclose()

    result = run(scenario())
    assert (result.status, result.step) == (HostStatus.FAILED, Step.CONNECT)
    assert result.error is not None and result.error.startswith(f"cannot load the identity {identity} for ")


def test_a_host_nobody_answers_on_is_unreachable(fleet: AppFleet) -> None:
    silent = Host(name="nobody", address="127.0.0.1", datacenter="dc1", port=1)

    async def scenario():
        runner = SshRunner()
        try:
            target = replace(fleet.target(), host=silent)
            return await runner.deploy(target, job("~/x", "1.0", None), Recorder()), await runner.probe(
                target, "~/x", None
            )
        finally:
            await runner.aclose()

    result, probe = run(scenario())
    assert result.status == HostStatus.UNREACHABLE
    assert result.step == Step.CONNECT
    assert result.error == "cannot connect to 127.0.0.1:1: Connection refused"  # no Python tuple
    assert not probe.reachable and probe.error == result.error


def test_a_host_that_hangs_is_given_up_within_the_connect_timeout(fleet: AppFleet) -> None:
    target, _local = fleet.app(index=1)
    fleet.hang(fleet.hosts[1].name)

    async def scenario():
        runner = SshRunner()
        try:
            chosen = fleet.target(1, connect_timeout=1.0)
            return await runner.deploy(
                chosen, job(target, "1.0", make_artifact(fleet.work, "1.0")), Recorder()
            )
        finally:
            await runner.aclose()

    began = time.monotonic()
    result = run(scenario())
    assert time.monotonic() - began < 10
    host = fleet.hosts[1]
    assert (result.status, result.step) == (HostStatus.UNREACHABLE, Step.CONNECT)
    assert result.error == f"no SSH answer from {host.address}:{host.port} within 1s"


def test_a_host_connected_to_ahead_gives_its_job_that_connection_or_why_there_is_none(
    fleet: AppFleet,
) -> None:
    good_dir, good_local = fleet.app(index=0)
    hung_dir, _ = fleet.app(index=1)
    fleet.hang(fleet.hosts[1].name)

    async def scenario():
        runner = SshRunner()
        try:
            good, hung = fleet.target(0), fleet.target(1, connect_timeout=1.0)
            runner.prepare([good, hung])  # as the controller does for the next wave
            attempts = [task for task in asyncio.all_tasks() if task.get_name().startswith("connect ")]
            _, unfinished = await asyncio.wait(attempts, timeout=10)
            assert len(attempts) == 2 and not unfinished  # both are over: one connected, one timed out
            began = time.monotonic()
            hung_result = await runner.deploy(hung, job(hung_dir, "1.0", None), Recorder())
            waited = time.monotonic() - began
            artifact = make_artifact(fleet.work, "1.0")
            good_result = await runner.deploy(good, job(good_dir, "1.0", artifact), Recorder())
            return hung_result, waited, good_result
        finally:
            await runner.aclose()

    hung_result, waited, good_result = run(scenario())
    host = fleet.hosts[1]
    assert (hung_result.status, hung_result.step) == (HostStatus.UNREACHABLE, Step.CONNECT)
    assert hung_result.error == f"no SSH answer from {host.address}:{host.port} within 1s"
    assert waited < 0.5  # the attempt made ahead is the answer: the hung host is not waited for twice
    assert good_result.status is HostStatus.SUCCEEDED
    assert (good_local / "current").resolve().name == "1.0"


def test_a_failing_stop_hook_can_be_ignored_and_script_hooks_run_from_the_release(fleet: AppFleet) -> None:
    target, local = fleet.app()
    script = {"bin/start.sh": 'echo "script in $(pwd)" > ../../script.out\n'}
    one, two = make_artifact(fleet.work, "1.0", script), make_artifact(fleet.work, "1.1", script)
    stop = hook(Step.STOP, "echo cannot stop; exit 5")
    start = hook(Step.START, "bin/start.sh", script=True)
    missing = hook(Step.START, "bin/nothing.sh", script=True)

    async def scenario():
        runner = SshRunner()
        try:
            first = await runner.deploy(fleet.target(), job(target, "1.0", one, start), Recorder())
            ignored = await runner.deploy(
                fleet.target(), job(target, "1.1", two, stop, start, ignore_stop_failures=True), Recorder()
            )
            strict = await runner.deploy(fleet.target(), job(target, "1.0", one, stop), Recorder())
            lost = await runner.deploy(fleet.target(), job(target, "1.0", one, missing), Recorder())
            return first, ignored, strict, lost
        finally:
            await runner.aclose()

    first, ignored, strict, lost = run(scenario())
    assert first.status == HostStatus.SUCCEEDED, first.error
    assert ignored.status == HostStatus.SUCCEEDED, ignored.error
    assert [(s.step, s.exit_status) for s in ignored.steps if s.step == Step.STOP] == [(Step.STOP, 5)]
    assert (local / "script.out").read_text().strip().endswith("/releases/1.1")
    assert (strict.status, strict.step, strict.error, strict.version) == (
        HostStatus.FAILED,
        Step.STOP,
        "stop exited 5",
        "1.1",
    )
    assert (lost.status, lost.step, lost.exit_status) == (HostStatus.FAILED, Step.START, 127)
    assert lost.error == "start hook script bin/nothing.sh is missing from the release"


def test_a_controller_that_fails_mid_wave_leaves_the_host_to_finish_by_itself(fleet: AppFleet) -> None:
    target, local = fleet.app()
    one, two = make_artifact(fleet.work, "1.0"), make_artifact(fleet.work, "1.1")
    second = job(target, "1.1", two, hook(Step.BEFORE_INSTALL, "true"), hook(Step.START, "true"))

    def store_down() -> None:
        raise RuntimeError("the store is down")

    async def scenario():
        runner = SshRunner()
        try:
            await runner.deploy(fleet.target(), job(target, "1.0", one), Recorder())
            recorder = Recorder()
            recorder.on_step[Step.BEFORE_INSTALL] = store_down
            with pytest.raises(RuntimeError, match="the store is down"):
                await runner.deploy(fleet.target(), second, recorder)
        finally:
            await runner.aclose()

    run(scenario())

    # Only an operator's abort stops a host in flight: this one finishes, and its journal
    # is what `deploy resume` reads.
    def settled() -> bool:
        state = local / ".deploy" / f"{second.deployment_id}.state"
        return state.exists() and state.read_text().splitlines()[-1] == "succeeded"

    assert wait_until(settled)
    assert (local / "current" / "VERSION").read_text() == "1.1\n"


def test_a_staged_host_let_go_before_its_wave_is_left_as_it_was(fleet: AppFleet) -> None:
    target, local = fleet.app()
    one, two = make_artifact(fleet.work, "1.0"), make_artifact(fleet.work, "1.1")
    second = job(target, "1.1", two, hook(Step.START, "touch ../../started"))

    async def scenario():
        runner = SshRunner()
        try:
            await runner.deploy(fleet.target(), job(target, "1.0", one), Recorder())
            staged = await runner.stage(fleet.target(), second)
            await runner.unstage(second.deployment_id)  # the deployment ended first (halted)
            return staged
        finally:
            await runner.aclose()

    staged = run(scenario())
    assert (staged.staged, staged.error) == (True, None)
    assert wait_until(lambda: pids_running(second.deployment_id, word="driver") == [])
    probe = run(_probe(fleet, target, second.deployment_id))
    # An ordinary non-current release: no record, nothing live changed, no hook ran.
    assert (probe.outcome, probe.current_version, set(probe.releases)) == (None, "1.0", {"1.0", "1.1"})
    assert list((local / ".deploy").glob(f"{second.deployment_id}*")) == []
    assert not (local / "started").exists()


def test_a_staging_whose_caller_gave_up_ends_with_its_deployment_not_with_the_runner(fleet: AppFleet) -> None:
    # A deployment's end (a halt, say) cancels the controller's staging tasks and unstages:
    # a staging still on its way must not leave its driver waiting for a go until the
    # runner closes, which `sync --watch` does only after many deployments.
    target, local = fleet.app()
    noise = base64.b64encode(random.Random(12).randbytes(12 * 1024 * 1024)).decode()
    pushed = job(target, "1.1", make_artifact(fleet.work, "1.1", {"noise.txt": noise}))
    arriving = local / ".deploy" / f"{pushed.deployment_id}.artifact.tar.gz"

    async def scenario() -> None:
        runner = SshRunner()
        try:
            asking = asyncio.create_task(runner.stage(fleet.target(), pushed))
            async with asyncio.timeout(60):
                while not (arriving.exists() and arriving.stat().st_size > 0):  # the bytes are coming
                    await asyncio.sleep(0.001)
            asking.cancel()
            await asyncio.gather(asking, return_exceptions=True)
            await runner.unstage(pushed.deployment_id)
            await _drivers_gone(pushed.deployment_id)
        finally:
            await runner.aclose()

    run(scenario())
    _left_as_it_was(local, pushed.deployment_id)


async def _drivers_gone(deployment_id: str) -> None:
    """Until no driver of ``deployment_id`` runs (bounded): called with the runner still open."""
    async with asyncio.timeout(30):
        while pids_running(deployment_id, word="driver"):
            await asyncio.sleep(0.05)


def _left_as_it_was(local: Path, deployment_id: str) -> None:
    """A first deployment let go before its wave: nothing live, no record left."""
    assert not (local / "current").exists()
    assert list((local / ".deploy").glob(f"{deployment_id}*")) == []


class _HeldOpen(SshRunner):
    """A runner whose conversations, once open, wait for the test before staging goes on:
    the moment a staging is cancelled with its driver started and its channel still
    opening (the exec's answer on its way)."""

    def __init__(self) -> None:
        super().__init__()
        self.opened = asyncio.Event()
        self.go_on = asyncio.Event()

    async def _converse(self, target, job):  # type: ignore[no-untyped-def]
        opened = await super()._converse(target, job)
        self.opened.set()
        await self.go_on.wait()
        return opened


def test_a_staging_cancelled_while_its_channel_opens_lets_its_driver_go(fleet: AppFleet) -> None:
    target, local = fleet.app()
    pushed = job(target, "1.1", make_artifact(fleet.work, "1.1"))

    async def scenario() -> None:
        runner = _HeldOpen()
        try:
            asking = asyncio.create_task(runner.stage(fleet.target(), pushed))
            async with asyncio.timeout(60):
                await runner.opened.wait()
            async with asyncio.timeout(30):  # sshd answers the exec as it starts the driver
                while not pids_running(pushed.deployment_id, word="driver"):
                    await asyncio.sleep(0.01)
            asking.cancel()
            await asyncio.gather(asking, return_exceptions=True)
            unstaging = asyncio.create_task(runner.unstage(pushed.deployment_id))
            await asyncio.sleep(0)
            runner.go_on.set()  # the open completes only now, its staging already cancelled
            await unstaging
            await _drivers_gone(pushed.deployment_id)
        finally:
            await runner.aclose()

    run(scenario())
    _left_as_it_was(local, pushed.deployment_id)
