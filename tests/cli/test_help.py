"""Help and error text: each main command's help has examples, and the examples parse."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from pathlib import Path

import click
import pytest

from deployer.cli import cli

ROOT = Path(__file__).resolve().parents[2]
EXAMPLED = ["push", "plan", "rollback", "hosts", "versions", "history", "check"]


def examples_of(help_text: str) -> list[str]:
    """The command lines under the help's "Examples:" heading."""
    lines = help_text.splitlines()
    start = lines.index("  Examples:") + 1
    found = []
    for line in lines[start:]:
        if not line.startswith("    deploy "):
            break
        found.append(line.strip())
    return found


@pytest.mark.parametrize("name", EXAMPLED)
def test_help_shows_examples_that_the_command_accepts(name: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "deployer", name, "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    examples = examples_of(done.stdout)
    assert len(examples) >= 3, done.stdout
    command = cli.get_command(click.Context(cli), name)
    assert command is not None
    for example in examples:
        words = shlex.split(example.split(" | ")[0].split("  #")[0])
        assert words[:2] == ["deploy", name]
        # parsing checks every option and argument, without running the command
        with command.make_context(name, words[2:]) as context:
            assert context.params


@pytest.mark.parametrize("timeout", ["0", "soon", "-5m"])
def test_a_bad_timeout_is_refused_with_exit_2(timeout: str, tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "deployer", "push", "specs/webapp.yaml", "--yes", "--timeout", timeout],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**os.environ, "DEPLOYER_DB": f"sqlite:///{tmp_path / 's.db'}"},
        cwd=ROOT,
    )
    assert done.returncode == 2
    assert "--timeout" in done.stderr and "Traceback" not in done.stderr
