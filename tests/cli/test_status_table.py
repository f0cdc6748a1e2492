"""docs/cli.md's table of statuses and exit codes says what the code does, row by row."""

from __future__ import annotations

from pathlib import Path

import pytest

from deployer.core.errors import (
    DeployerError,
    DeploymentLocked,
    NotFound,
    PromotionRefused,
    SpecError,
    StoreLost,
)
from deployer.core.exitcodes import ExitCode, exit_code_for
from deployer.core.results import DeploymentStatus, HostStatus
from deployer.store.host_history import pick_last_good_version

DOC = Path(__file__).resolve().parents[2] / "docs" / "cli.md"


def tables() -> list[list[list[str]]]:
    """The tables of the section "Statuses and exit codes", each a list of rows of cells."""
    text = DOC.read_text()
    section = text[text.index("## Statuses and exit codes") :]
    section = section[: section.index("\n## ", 1)]
    found: list[list[list[str]]] = []
    current: list[list[str]] = []
    for line in section.splitlines():
        if line.startswith("|"):
            current.append([cell.strip().strip("`") for cell in line.strip("|").split("|")])
        elif current:
            found.append(current[2:])  # without the header and its rule
            current = []
    if current:
        found.append(current[2:])
    return found


def test_the_section_has_its_three_tables() -> None:
    assert len(tables()) == 3


def test_every_deployment_status_is_in_the_table_as_the_code_has_it() -> None:
    rows = {row[0]: row for row in tables()[0]}
    assert set(rows) == {status.value for status in DeploymentStatus}
    for status in DeploymentStatus:
        _, final, good, _meaning = rows[status.value]
        assert (final == "yes") is status.is_final, status
        # Good is what a rollback goes back to: the one status last_good_version picks.
        assert (good == "yes") is (pick_last_good_version([("1.0", status)], None) == "1.0"), status


def test_every_host_status_is_in_the_table_as_the_code_has_it() -> None:
    rows = {row[0]: row for row in tables()[1]}
    assert set(rows) == {status.value for status in HostStatus}
    for status in HostStatus:
        assert (rows[status.value][1] == "yes") is status.is_final, status


def test_every_exit_code_is_in_the_table_and_nothing_else() -> None:
    assert {int(row[0]) for row in tables()[2]} == {int(code) for code in ExitCode}


@pytest.mark.parametrize("status", [s for s in DeploymentStatus if s.is_final])
def test_a_finished_deployment_exits_as_the_table_says(status: DeploymentStatus) -> None:
    meaning = {int(row[0]): row[1] for row in tables()[2]}
    code = exit_code_for(status)
    assert status.value in meaning[code] or (code == 0 and status is DeploymentStatus.SUCCEEDED)


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (SpecError.single("spec.yaml", 3, "version", "must be a string"), ExitCode.BAD_INPUT),
        (NotFound("no deployment d-1"), ExitCode.BAD_INPUT),
        (DeployerError("--from nope: no such environment"), ExitCode.BAD_INPUT),
        (DeploymentLocked("web/prod is locked"), ExitCode.FAILED),
        (PromotionRefused("staging's last deployment halted"), ExitCode.FAILED),
        (StoreLost("the state store failed"), ExitCode.STORE_LOST),
    ],
)
def test_errors_exit_with_their_row(error: DeployerError, code: ExitCode) -> None:
    assert error.exit_code == code
