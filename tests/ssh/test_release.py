"""The on-host layout's pure parts: pruning, names, the first step."""

from __future__ import annotations

import pytest

from deployer.core.results import DeploymentKind, Step
from deployer.core.runner import HookCommand
from deployer.hosts.release import (
    first_step,
    job_problem,
    name_problem,
    release_dir_name,
    releases_to_prune,
    shell_number,
    version_of_dir,
)
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
    assert job_problem(job("~/app", "", None, kind=DeploymentKind.RESTART)) == (
        Step.STOP,
        "the version is empty",
    )


@pytest.mark.parametrize(("seconds", "text"), [(30, "30"), (0.25, "0.25"), (1e6, "1000000"), (1.5, "1.5")])
def test_shell_numbers(seconds: float, text: str) -> None:
    assert shell_number(seconds) == text


def test_the_first_step_is_known_before_the_driver_starts() -> None:
    assert first_step(job("~/a", "1", None)) == Step.UPLOAD
    assert first_step(job("~/a", "1", None, hook(Step.START, "x"), kind=DeploymentKind.RESTART)) == Step.START
    validate_only = job("~/a", "1", None, hook(Step.VALIDATE, "x"), kind=DeploymentKind.RESTART)
    assert first_step(validate_only) == Step.VALIDATE
    both = job("~/a", "1", None, hook(Step.START, "x"), hook(Step.STOP, "y"), kind=DeploymentKind.RESTART)
    assert first_step(both) == Step.STOP
