"""``deploy watch`` and ``deploy tui`` on the command line (the UI itself is tested with Pilot)."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from deployer.cli import cli


@pytest.mark.parametrize("command", [["watch"], ["watch", "d-20261127-1800-0001"], ["tui"]])
def test_without_a_terminal_the_tui_says_what_to_use_instead(command: list[str], store_path: str) -> None:
    result = CliRunner().invoke(cli, [*command, "--db", store_path])
    assert result.exit_code == 2
    assert "needs a terminal; for scripts use `deploy status --json`" in result.output


def test_the_commands_are_listed() -> None:
    result = CliRunner().invoke(cli, ["--help"])
    assert result.exit_code == 0
    assert "watch" in result.output and "Watch a deployment live" in result.output
    assert "Browse apps and environments" in result.output
