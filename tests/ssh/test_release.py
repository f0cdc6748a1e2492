"""The on-host layout's pure parts: pruning, names, commands and the driver's lines."""

from __future__ import annotations

import shlex
import subprocess
from dataclasses import replace

import pytest

from deployer.fleet import Host
from deployer.release import (
    Outcome,
    StepEnd,
    StepStart,
    driver_command,
    failure_sentence,
    first_step,
    job_problem,
    name_problem,
    parse_outcome,
    parse_probe,
    parse_step,
    release_dir_name,
    releases_to_prune,
    remote_script,
    shell_number,
    version_of_dir,
)
from deployer.results import Step
from deployer.runner import HookCommand, JobKind
from tests.ssh.support import hook, job


@pytest.mark.parametrize(
    ("releases", "current", "previous", "keep", "doomed"),
    [
        # The docstring's example: 1.6 failed before its switch, 1.4 was current before 1.5.
        (["1.5", "1.6", "1.4", "1.3", "1.2"], "1.5", "1.4", 2, (4, 5)),
        (["5", "4", "3", "2", "1"], "5", "4", 3, (4, 5)),
        (["3", "5", "4"], "3", "5", 1, (3,)),  # a rollback to 3: 5 stays as the previous
        (["5", "4", "3"], "5", "4", 0, (3,)),  # keep 0 still keeps current and previous
        (["5", "4", "3"], "5", None, 1, (3,)),  # first deploy here: the next newest stays
        (["5", "4", "3"], "5", "5", 1, (3,)),  # the same version again: likewise
        (["5"], "5", None, 1, ()),
        (["5", "4", "3", "2"], "5", "4", 10, ()),
    ],
)
def test_releases_to_prune(
    releases: list[str], current: str, previous: str | None, keep: int, doomed: tuple[int, ...]
) -> None:
    assert releases_to_prune(releases, current, previous, keep) == doomed


@pytest.mark.parametrize(
    "version",
    ["1.0", "1.0;touch /tmp/pwned", "$(touch /tmp/pwned2)", ".hidden", "..", "%2F", "a/b/../c", "ünï"],
)
def test_any_version_names_one_visible_directory(version: str) -> None:
    name = release_dir_name(version)
    assert "/" not in name and not name.startswith(".")
    assert version_of_dir(name) == version
    assert name_problem("version", version) is None


@pytest.mark.parametrize(
    ("what", "value", "problem"),
    [
        ("version", "", "the version is empty"),
        ("version", "1.0\nx", "the version '1.0\\nx' contains a control character"),
        ("deployment id", "a/b", "the deployment id 'a/b' starts with a dot or contains a slash"),
        ("deployment id", ".x", "the deployment id '.x' starts with a dot or contains a slash"),
        ("version", "x" * 201, "the version is longer than 200 bytes"),
    ],
)
def test_name_problems(what: str, value: str, problem: str) -> None:
    assert name_problem(what, value) == problem


def test_job_problems() -> None:
    fabric = HookCommand(step=Step.AFTER_INSTALL, command="", timeout=5, fabric="/x/fabfile.py:migrate")
    assert job_problem(job("~/app", "1.0", None, hook(Step.START, "true"), fabric)) is None
    assert job_problem(job("~/app", "1.0", None)) is None
    assert job_problem(job("~/app", "", None, kind=JobKind.RESTART)) == (Step.STOP, "the version is empty")


def test_the_driver_command_is_one_quoted_argument_list() -> None:
    host = Host(name="web 1", address="127.0.0.1", datacenter="dc;1")
    pushed = job("~/my app's", "1.0;touch /tmp/x", None, hook(Step.START, "echo $HOME && true"))
    words = shlex.split(driver_command(pushed, host))
    assert words[:2] == ["sh", "-c"]
    assert words[2] == remote_script("driver.sh")
    assert words[3:8] == ["driver", "~/my app's", pushed.deployment_id, "push", "1.0;touch /tmp/x"]
    assert "web 1" in words and "dc;1" in words and "echo $HOME && true" in words
    # six words per hook (release._hook_args), then the deployments whose records to keep
    assert len(words) == 4 + 13 + 5 * 6 + 1
    assert words[-1] == ""
    kept = driver_command(replace(pushed, keep_records=("d-1", "d-2")), host)
    assert shlex.split(kept)[-1] == "d-1 d-2"


@pytest.mark.parametrize("script", ["driver.sh", "probe.sh", "check.sh"])
def test_the_remote_scripts_are_posix_sh(script: str) -> None:
    checked = subprocess.run(
        ["sh", "-n"], input=remote_script(script), text=True, capture_output=True, timeout=10
    )
    assert checked.returncode == 0, checked.stderr
    assert not any(line.lstrip().startswith("#") for line in remote_script(script).splitlines())


def test_marker_lines() -> None:
    assert parse_step("upload start") == StepStart(Step.UPLOAD)
    assert parse_step("validate end 7 3") == StepEnd(Step.VALIDATE, 7, 3, False)
    assert parse_step("start end 143 1 timeout") == StepEnd(Step.START, 143, 1, True)
    with pytest.raises(ValueError):
        parse_step("start sideways")
    assert parse_outcome("failed:validate:7") == Outcome("failed", Step.VALIDATE, 7)
    assert parse_outcome("aborted:switch") == Outcome("aborted", Step.SWITCH, None)
    assert parse_outcome("succeeded") == Outcome("succeeded")


def test_failure_sentences() -> None:
    validate = hook(Step.VALIDATE, "curl -f localhost", timeout=2.5, retries=2)
    assert (
        failure_sentence(StepEnd(Step.VALIDATE, 7, 3, False), validate)
        == "validate exited 7 after 3 attempts"
    )
    assert failure_sentence(StepEnd(Step.VALIDATE, 124, 1, True), validate) == (
        "validate timed out after 2.5s and was killed with its children"
    )
    script = hook(Step.START, "bin/start", script=True)
    assert failure_sentence(StepEnd(Step.START, 127, 1, False), script) == (
        "start hook script bin/start is missing from the release"
    )


def test_probe_output_is_read_back_into_versions() -> None:
    probe = parse_probe(
        "h1", "@@current 1.0%2Frc\n@@release 1.0%2Frc\n@@release 0.9\n@@outcome failed:start:3\n"
    )
    assert (probe.current_version, probe.releases, probe.outcome) == (
        "1.0/rc",
        ("1.0/rc", "0.9"),
        "failed:start:3",
    )
    assert parse_probe("h1", "@@current \n").current_version is None


@pytest.mark.parametrize(("seconds", "text"), [(30, "30"), (0.25, "0.25"), (1e6, "1000000"), (1.5, "1.5")])
def test_shell_numbers(seconds: float, text: str) -> None:
    assert shell_number(seconds) == text


def test_the_first_step_is_known_before_the_driver_starts() -> None:
    assert first_step(job("~/a", "1", None)) == Step.UPLOAD
    assert first_step(job("~/a", "1", None, hook(Step.START, "x"), kind=JobKind.RESTART)) == Step.START
    validate_only = job("~/a", "1", None, hook(Step.VALIDATE, "x"), kind=JobKind.RESTART)
    assert first_step(validate_only) == Step.VALIDATE
    both = job("~/a", "1", None, hook(Step.START, "x"), hook(Step.STOP, "y"), kind=JobKind.RESTART)
    assert first_step(both) == Step.STOP
