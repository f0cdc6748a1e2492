"""Ansible is the judge: each inventory of tests/inventories/ reads as ansible-inventory read it.

Every case folder holds an inventory (a file, a script or a folder) and what
``ansible-inventory --list`` (ansible-core 2.19) printed for it, ``expected.json``, or
the error Ansible gave, ``expected-error.txt``; tests/inventories/README.md says how
they were recorded. We compare name, address, port, user, datacenter and groups.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from deployer.core.errors import SpecError
from deployer.core.targets import Host
from deployer.inventory.load import load_inventory

CORPUS = Path(__file__).resolve().parents[1] / "inventories"
CASES = sorted(
    path
    for path in CORPUS.iterdir()
    if path.is_dir() and path.name != "limit" and not path.name.startswith("_")
)

Summary = dict[str, tuple[str, int, str | None, str | None, list[str]]]


def inventory_of(case: Path) -> Path:
    (found,) = [path for path in case.iterdir() if path.name.startswith("inventory")]
    return found


def ansible_summary(listed: dict[str, Any]) -> Summary:
    """Each host of ``ansible-inventory --list``: address, port, user, datacenter, groups."""
    parents: dict[str, set[str]] = {}
    direct: dict[str, set[str]] = {}
    for group, body in listed.items():
        if group == "_meta":
            continue
        for child in body.get("children", []):
            parents.setdefault(child, set()).add(group)
        for host in body.get("hosts", []):
            direct.setdefault(host, set()).add(group)

    def above(group: str) -> set[str]:
        found = {group}
        for parent in parents.get(group, ()):
            found |= above(parent)
        return found

    hostvars = listed["_meta"]["hostvars"]
    summary: Summary = {}
    for host, groups in direct.items():
        variables = hostvars.get(host, {})
        member = set().union(*(above(group) for group in groups)) - {"all"}
        summary[host] = (
            variables.get("ansible_host", variables.get("ansible_ssh_host", host)),
            _port(variables.get("ansible_port", variables.get("ansible_ssh_port"))),
            variables.get("ansible_user", variables.get("ansible_ssh_user")),
            variables.get("datacenter"),
            sorted(member),
        )
    return summary


def _port(value: Any) -> int | None:
    """A port the inventory sets; None when it sets none (~/.ssh/config or 22 then decide)."""
    return None if value is None else int(value)


def our_summary(hosts: tuple[Host, ...]) -> Summary:
    return {
        host.name: (host.address, host.port, host.user, host.datacenter, sorted(host.groups))
        for host in hosts
    }


@pytest.mark.parametrize("case", [c for c in CASES if (c / "expected.json").exists()], ids=lambda c: c.name)
def test_hosts_read_as_ansible_reads_them(case: Path) -> None:
    expected = ansible_summary(json.loads((case / "expected.json").read_text()))
    assert our_summary(load_inventory(inventory_of(case)).hosts) == expected


@pytest.mark.parametrize(
    "case", [c for c in CASES if (c / "expected-error.txt").exists()], ids=lambda c: c.name
)
def test_inventories_ansible_refuses_are_refused(case: Path) -> None:
    said = (case / "expected-error.txt").read_text()
    match = re.fullmatch(r"Section \[([^\]]+)\] .*group '([^']+)'\.\n", said)
    assert match is not None, f"a new kind of refusal: {said}"
    section, group = match.groups()
    with pytest.raises(SpecError) as caught:
        load_inventory(inventory_of(case))
    (issue,) = caught.value.issues
    assert issue.field == f"[{section}]"
    assert f"group {group!r}" in issue.message
    assert issue.line is not None
    assert Path(issue.file).read_text().splitlines()[issue.line - 1].strip() in (f"[{section}]", group)


def test_the_corpus_covers_every_form_of_issue_18() -> None:
    """The forms Ansible read and we did not, in INI, YAML and script form, and a folder."""
    names = {case.name for case in CASES}
    assert {"ranges-ini", "ranges-yaml", "ranges-script", "folder"} <= names
    assert {"undefined-child-ini", "undefined-child-yaml", "undefined-child-script"} <= names
    assert {"kubespray-sample", "ansible-docs-ini", "ansible-docs-yaml", "geerlingguy-orchestration"} <= names
    ranges = ansible_summary(json.loads((CORPUS / "ranges-ini" / "expected.json").read_text()))
    assert {f"mail{n}.example.com" for n in range(6)} <= set(ranges)
    assert ranges["2001:db8::11"][:2] == ("2001:db8::11", 2222)
