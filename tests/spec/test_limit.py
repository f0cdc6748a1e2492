"""``--limit`` patterns: Ansible's own answers for the same inventory, then ours.

tests/inventories/limit/patterns.json holds, for each pattern, the hosts
``ansible all -i inventory.ini --list-hosts --limit PATTERN`` listed (ansible-core 2.19).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from deployer.core.errors import PatternError
from deployer.core.targets import Host
from deployer.inventory.limit import limit_hosts, read_limit_files, split_pattern
from deployer.inventory.load import load_inventory

LIMIT = Path(__file__).resolve().parents[1] / "inventories" / "limit"
ANSIBLE_SAYS: dict[str, list[str]] = json.loads((LIMIT / "patterns.json").read_text())
FLEET = load_inventory(LIMIT / "inventory.ini")


def read_beside_inventory(name: str) -> str:
    return (LIMIT / name).read_text()


def selected(pattern: str, hosts: tuple[Host, ...] = FLEET.hosts) -> list[str]:
    return sorted(host.name for host in limit_hosts(hosts, read_limit_files(pattern, read_beside_inventory)))


# Where we part from Ansible's answer on purpose, and what we answer instead.
OURS_ON_PURPOSE = {
    # Ansible splits an IPv6 address among `:`-separated elements (its own code says it
    # "mishandles IPv6 addresses"); issue 18 keeps the address whole.
    "lone:2001:db8::5": ["2001:db8::5", "lone"],
}


@pytest.mark.parametrize(("pattern", "hosts"), ANSIBLE_SAYS.items(), ids=list(ANSIBLE_SAYS))
def test_a_pattern_selects_what_ansible_selects(pattern: str, hosts: list[str]) -> None:
    if pattern in OURS_ON_PURPOSE:
        assert OURS_ON_PURPOSE[pattern] != hosts
        hosts = OURS_ON_PURPOSE[pattern]
    assert selected(pattern) == hosts


@pytest.mark.parametrize(
    ("pattern", "hosts"),
    [
        ("tag:web", ["web-1", "web-2", "web-3"]),  # an Ansible inventory's groups are tags too
        ("tag:web*", ["web-1", "web-2", "web-3"]),
        ("dc:dc-east", ["db-1", "web-1"]),
        ("dc:dc*:!dc:dc-east", ["2001:db8::5", "cache", "redis-1", "web-2", "web-3"]),
        ("tag:web:&dc:dc-east", ["web-1"]),  # the `:` after tag and dc separates nothing
        ("!tag:prod,lone", ["lone"]),
        ("web:&tag:east:!dc:solo", ["web-1"]),
        ("~^web-[12]$", ["web-1", "web-2"]),  # [...] keeps its `:`-free content whole
        ("2001:db8::5:lone", ["2001:db8::5", "lone"]),  # an IPv6 address keeps its `:`
    ],
)
def test_our_tag_and_dc_elements_mix_with_ansible_ones(pattern: str, hosts: list[str]) -> None:
    assert selected(pattern) == hosts


@pytest.mark.parametrize(
    ("pattern", "elements"),
    [
        ("tag:web:!dc:iad", ["tag:web", "!dc:iad"]),
        ("web[1:3],2001:db8::5", ["web[1:3]", "2001:db8::5"]),
        ("a, b ,,c:d", ["a", "b", "c", "d"]),
        ("&dc:x:!2001:db8::5", ["&dc:x", "!2001:db8::5"]),
        ("!2001:db8::5", ["!2001:db8::5"]),
        ("web:!2001:db8::5:lone", ["web", "!2001:db8::5", "lone"]),  # the longest address
        ("web:2001:db8::5:db", ["web", "2001:db8::5:db"]),  # db is hexadecimal: say 2001:db8::5,db
        ("web:::1", ["web", "::1"]),
        ("web,!", ["web", "!"]),
    ],
)
def test_split_pattern(pattern: str, elements: list[str]) -> None:
    assert split_pattern(pattern) == elements


def test_where_ansible_and_we_differ_on_purpose() -> None:
    # Ansible reads `web-1:db` as one name once a `,` is present; `:` always separates here.
    assert ANSIBLE_SAYS.get("web,!web-1:db") is None  # not in the recorded table
    assert selected("web,!web-1:db") == ["db-1", "web-2", "web-3"]
    # Ansible takes every host for an empty @FILE, or a regex that does not compile.
    with pytest.raises(PatternError, match="lists no hosts"):
        read_limit_files("@empty", lambda _: "\n \n")
    with pytest.raises(PatternError, match="'~\\[' is not a regular expression"):
        limit_hosts(FLEET.hosts, "~[")
    # Ansible's subscripts are refused, not read as globs with another meaning.
    for subscript in ("web[0]", "web[1:2]", "web-[12]", "web[-1]"):
        with pytest.raises(PatternError, match="subscript"):
            limit_hosts(FLEET.hosts, subscript)


def test_patterns_that_cannot_mean_anything_are_errors() -> None:
    with pytest.raises(PatternError, match="'!' needs a pattern"):
        limit_hosts(FLEET.hosts, "web,!")
    with pytest.raises(PatternError, match="read by the command line"):
        limit_hosts(FLEET.hosts, "@failed.txt")


def test_no_pattern_or_only_separators_is_every_host() -> None:
    assert limit_hosts(FLEET.hosts, None) == FLEET.hosts
    assert limit_hosts(FLEET.hosts, " , : ") == FLEET.hosts


def test_hosts_keep_inventory_order() -> None:
    names = [host.name for host in FLEET.hosts]
    chosen = [host.name for host in limit_hosts(FLEET.hosts, "db:web")]
    assert chosen == [name for name in names if name in chosen]


def test_our_yaml_hosts_are_in_no_group_but_all() -> None:
    hosts = (
        Host("a", "a", "east", tags=frozenset({"web"})),
        Host("b", "b", "west"),
    )
    assert selected("all", hosts) == ["a", "b"]
    assert selected("web", hosts) == []  # a tag is no group: say tag:web
    assert selected("tag:web", hosts) == ["a"]
    assert selected("!a", hosts) == ["b"]
