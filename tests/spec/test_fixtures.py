"""Every fixture file under invalid/ gives exactly the errors written in its header.

A fixture states each issue it must produce on a line of its own::

    # expect: LINE | FIELD | MESSAGE SUBSTRING

LINE is the 1-based line in the fixture (``-`` for none), FIELD the dotted field
exactly (``-`` for none), and the message must contain the substring. The fixture
must produce those issues and no others. Valid fixtures (and the examples in
specs/) must load, in every environment they define.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import pytest

from deployer.core.errors import SpecError
from deployer.inventory.load import load_inventory
from deployer.operations.reading import check_fabric_task
from deployer.spec.load import load_fleet, load_spec

HERE = Path(__file__).parent
REPO = HERE.parent.parent
_EXPECT = re.compile(r"^#\s*expect:\s*(\S+)\s*\|\s*(.*?)\s*\|\s*(.+?)\s*$", re.MULTILINE)


@dataclass(frozen=True)
class Expected:
    line: int | None
    field: str
    message: str


def expectations(path: Path) -> list[Expected]:
    found = [
        Expected(None if line == "-" else int(line), "" if field == "-" else field, message)
        for line, field, message in _EXPECT.findall(path.read_text(encoding="utf-8"))
    ]
    assert found, f"{path} has no '# expect:' lines"
    return found


def fixtures(folder: Path) -> list[Path]:
    return sorted(path for path in folder.iterdir() if path.is_file())


def assert_issues(error: SpecError, expected: list[Expected], file: str) -> None:
    shown = str(error)
    assert [issue.file for issue in error.issues] == [file] * len(error.issues), shown
    assert len(error.issues) == len(expected), f"expected {len(expected)} issues, got:\n{shown}"

    def order(line: int | None, field: str) -> tuple[int, str]:
        return (line or 0, field)

    issues = sorted(error.issues, key=lambda issue: order(issue.line, issue.field))
    for want, issue in zip(sorted(expected, key=lambda e: order(e.line, e.field)), issues, strict=True):
        assert (issue.line, issue.field) == (want.line, want.field), f"expected {want}, got:\n{shown}"
        assert want.message in issue.message, f"expected {want.message!r} in:\n{shown}"
        where = f"{file}:{issue.line}" if issue.line is not None else file
        assert f"{where}: " in shown


INVALID_SPECS = fixtures(HERE / "invalid" / "specs")
INVALID_INVENTORIES = fixtures(HERE / "invalid" / "inventories")


def test_there_are_enough_invalid_fixtures() -> None:
    assert len(INVALID_SPECS) + len(INVALID_INVENTORIES) >= 20


@pytest.mark.parametrize("path", INVALID_SPECS, ids=lambda path: path.name)
def test_invalid_spec_reports_the_expected_issues(path: Path) -> None:
    with pytest.raises(SpecError) as caught:
        load_spec(path, check_task=check_fabric_task)
    assert_issues(caught.value, expectations(path), str(path))


@pytest.mark.parametrize("path", INVALID_INVENTORIES, ids=lambda path: path.name)
def test_invalid_inventory_reports_the_expected_issues(path: Path) -> None:
    with pytest.raises(SpecError) as caught:
        load_inventory(path)
    assert_issues(caught.value, expectations(path), str(path))


VALID_SPECS = [*sorted((HERE / "valid").glob("*.yaml")), REPO / "specs" / "webapp.yaml"]


@pytest.mark.parametrize("path", VALID_SPECS, ids=lambda path: path.name)
def test_valid_spec_loads_in_every_environment_with_its_fleet(path: Path) -> None:
    environments = load_spec(path, check_task=check_fabric_task).environments
    for environment in environments:
        spec = load_spec(path, environment=environment, check_task=check_fabric_task)
        assert spec.environment == environment
        fleet = load_fleet(spec)
        assert fleet.hosts, f"{path} {environment}: no hosts"
        assert all(host.datacenter for host in fleet.hosts)


VALID_INVENTORIES = [
    *sorted(
        path
        for path in (HERE / "valid" / "inventories").rglob("*")
        if path.is_file() and "_vars" not in str(path)
    ),
    *sorted((REPO / "specs" / "fleets").iterdir()),
]


@pytest.mark.parametrize("path", VALID_INVENTORIES, ids=lambda path: path.name)
def test_valid_inventory_loads(path: Path) -> None:
    fleet = load_inventory(path)
    assert fleet.hosts
    assert len({host.name for host in fleet.hosts}) == len(fleet.hosts)
