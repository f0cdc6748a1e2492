"""``deploy --help`` and a command's ``--help`` start fast: no command module's heavy libraries.

Listing the commands reads their one-line helps from deployer.cli.SUMMARIES; the test
below keeps that table equal to the commands' own docstrings.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import click
import click.testing
import pytest

from deployer.cli import COMMANDS, SUMMARIES, cli

REPO = Path(__file__).resolve().parents[2]


def bench_startup() -> ModuleType:
    """bench/startup.py, whose probe runs the real entry point in a fresh interpreter."""
    location = importlib.util.spec_from_file_location("bench_startup", REPO / "bench" / "startup.py")
    assert location is not None and location.loader is not None
    module = importlib.util.module_from_spec(location)
    location.loader.exec_module(module)
    return module


@pytest.mark.parametrize(
    "args",
    [
        ["--help"],
        *(
            [name, "--help"]
            for name in ("plan", "push", "status", "abort", "check", "sync", "promote", "restart")
        ),
    ],
)
def test_help_imports_neither_asyncssh_nor_sqlalchemy(args: list[str]) -> None:
    report = bench_startup().measure(args)
    assert "asyncssh" not in report["loaded"]
    assert "sqlalchemy" not in report["loaded"]
    assert "pydantic" not in report["loaded"]  # the spec's models: a plan's help needs none of them


def test_a_run_still_imports_its_libraries_up_front() -> None:
    # Without --help the entry point loads what the command will use with the collector off.
    report = bench_startup().measure(["plan", "/nonexistent/spec.yaml"])
    assert {"asyncssh", "sqlalchemy"} <= set(report["loaded"])  # type: ignore[arg-type]
    report = bench_startup().measure(["status", "--db", "sqlite:////nonexistent/dir/state.db"])
    assert "sqlalchemy" in report["loaded"]  # type: ignore[operator]
    report = bench_startup().measure(["sync", "/nonexistent/spec.yaml"])
    assert {"asyncssh", "sqlalchemy", "pydantic"} <= set(report["loaded"])  # type: ignore[arg-type]
    report = bench_startup().measure(["check", "/nonexistent/spec.yaml"])
    assert {"asyncssh", "pydantic"} <= set(report["loaded"])  # type: ignore[arg-type]


def test_summaries_are_the_commands_own_helps() -> None:
    assert list(SUMMARIES) == list(COMMANDS)
    context = click.Context(cli)
    for name in COMMANDS:
        command = cli.get_command(context, name)
        assert command is not None
        for limit in (45, 60, 1000):
            listed = click.Command(name, help=SUMMARIES[name]).get_short_help_str(limit)
            assert listed == command.get_short_help_str(limit), name


def test_help_lists_every_command_with_its_summary() -> None:
    result = click.testing.CliRunner().invoke(cli, ["--help"], terminal_width=200)
    assert result.exit_code == 0
    for name, summary in SUMMARIES.items():
        assert f"  {name} " in result.output and summary in result.output
