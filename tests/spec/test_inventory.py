"""Inventories in every format: what hosts, in what order, with what settings."""

from __future__ import annotations

import re
import sys
import textwrap
import time
from pathlib import Path

import pytest

from deployer.core.errors import FleetError, SpecError
from deployer.core.targets import Host, endpoint
from deployer.inventory.load import is_inventory_script, load_inventory
from deployer.inventory.patterns import expand_host_pattern, split_host_port

VALID = Path(__file__).parent / "valid"
INVENTORIES = VALID / "inventories"
EXAMPLES = Path(__file__).parent.parent.parent / "specs" / "fleets"


def summary(hosts: tuple[Host, ...]) -> list[tuple[str, str, str, int, str | None]]:
    return [(host.name, host.address, host.datacenter, host.port, host.user) for host in hosts]


def test_our_yaml_keeps_file_order_and_resolves_ssh_paths_against_the_inventory() -> None:
    fleet = load_inventory(VALID / "fleets" / "two-dcs.yaml")
    assert summary(fleet.hosts) == [
        ("app-1", "127.0.0.11", "east", None, None),
        ("app-2", "127.0.0.12", "west", 2202, None),
        ("app-3", "127.0.0.13", "east", None, "admin"),
        ("app-4", "app-4", "west", None, None),  # no address: the name is the address
    ]
    assert fleet.hosts[2].tags == {"canary", "web"}
    assert fleet.hosts[3].tags == {"web"}  # a single tag may be written without a list
    assert fleet.ssh.user == "ops"
    assert fleet.ssh.identity_file == str((VALID / "fleets" / "keys" / "ops_ed25519").absolute())
    assert fleet.datacenters() == ["east", "west"]


def test_ansible_ini_ranges_ports_children_and_variable_precedence() -> None:
    fleet = load_inventory(INVENTORIES / "ranges.ini")
    assert summary(fleet.hosts) == [
        ("ungrouped-1", "ungrouped-1", "east", 2200, None),  # [all:vars] reaches ungrouped hosts
        ("web01.example.test", "web01.example.test", "east", 2200, "deploy"),  # zero-padded range
        ("web02.example.test", "web02.example.test", "east", 2200, "deploy"),
        ("web03.example.test", "web03.example.test", "east", 2200, "deploy"),
        ("web-a", "10.0.1.1", "east", 2200, "webadmin"),  # letter range with a step of 2
        ("web-c", "10.0.1.1", "east", 2200, "webadmin"),
        # in web and web_west (both depth 2): web_west sorts later and wins; host:port wins over all
        ("web-z", "10.0.1.9", "west", 2222, "deploy"),
        ("web-y", "web-y", "north", 2200, None),  # a host's own variable beats its groups'
    ]
    assert fleet.hosts[0].tags == frozenset()  # `all` and `ungrouped` are not tags
    assert fleet.hosts[6].tags == {"web", "web_west", "frontend"}  # groups, parents included


def test_an_ini_inventory_without_extension_is_recognised_with_old_ssh_variable_names() -> None:
    fleet = load_inventory(INVENTORIES / "hosts")
    assert summary(fleet.hosts) == [
        ("db-1", "10.0.2.1", "east", None, None),
        ("db-2", "10.0.2.2", "west", 2022, "legacy"),
    ]


def test_ansible_yaml_nested_children_inherit_by_depth() -> None:
    fleet = load_inventory(INVENTORIES / "groups.yml")
    assert summary(fleet.hosts) == [
        ("lone-1", "lone-1", "default-dc", None, "deploy"),
        ("web-1", "web-1", "east", 2201, "deploy"),  # east (depth 1) beats all; east_web's port
        ("web-2", "web-2", "east", 2201, "deploy"),
        ("web-3", "10.0.3.3", "west", None, "admin"),
    ]
    assert fleet.hosts[1].tags == {"east", "east_web", "canary", "first"}  # groups and `tags`


def test_group_vars_and_host_vars_folders_next_to_the_inventory() -> None:
    fleet = load_inventory(INVENTORIES / "with-vars-dirs" / "inventory.ini")
    assert summary(fleet.hosts) == [
        ("web-1", "web-1", "from-group-vars", 2203, "deploy"),  # group_vars/ over [web:vars]
        ("web-2", "10.9.9.2", "from-host-vars", 2203, "deploy"),  # host_vars/ over both
        ("web-3", "web-3", "inline", 2203, "deploy"),  # a host's own line over group_vars/
    ]


def test_an_error_in_a_group_vars_file_names_that_file(tmp_path: Path) -> None:
    (tmp_path / "group_vars").mkdir()
    (tmp_path / "group_vars" / "web.yml").write_text("datacenter: east\nansible_port: none\n")
    (tmp_path / "inventory.ini").write_text("[web]\nweb-1\n")
    with pytest.raises(SpecError) as caught:
        load_inventory(tmp_path / "inventory.ini")
    (issue,) = caught.value.issues
    assert (issue.file, issue.line, issue.field) == (
        str(tmp_path / "group_vars" / "web.yml"),
        2,
        "ansible_port",
    )
    assert "expected a port number" in issue.message


@pytest.mark.parametrize(
    ("port", "expected"),
    [
        ("2222", 2222),
        ("002222", 2222),  # leading zeros, as int() reads them
        ("0", None),
        ("65536", None),
        ("9" * 4301, None),  # past Python's int() limit: refused, not a traceback
        ("\u00b2", None),  # a Unicode digit that int() refuses
        ("22a", None),
    ],
)
def test_an_ansible_port_is_a_number_from_1_to_65535(tmp_path: Path, port: str, expected: int | None) -> None:
    (tmp_path / "inventory.ini").write_text(f"[web]\nweb-1 ansible_port={port} datacenter=east\n")
    if expected is not None:
        assert load_inventory(tmp_path / "inventory.ini").hosts[0].port == expected
        return
    with pytest.raises(SpecError) as caught:
        load_inventory(tmp_path / "inventory.ini")
    (issue,) = caught.value.issues
    assert (issue.line, issue.field) == (2, "web-1.ansible_port")
    assert "expected a port number from 1 to 65535" in issue.message


@pytest.mark.parametrize(
    ("pattern", "names"),
    [
        ("web", ["web"]),
        ("web[1:3]", ["web1", "web2", "web3"]),
        ("web[08:10].dc", ["web08.dc", "web09.dc", "web10.dc"]),
        ("db-[a:e:2]", ["db-a", "db-c", "db-e"]),
        ("r[1:2]-n[1:2]", ["r1-n1", "r1-n2", "r2-n1", "r2-n2"]),
        ("mail[:2].x", ["mail0.x", "mail1.x", "mail2.x"]),  # no start: from 0, as in Ansible
        ("db-[y:B]", ["db-y", "db-z", "db-A", "db-B"]),  # letters run a-z then A-Z
    ],
)
def test_host_ranges_expand_as_in_ansible(pattern: str, names: list[str]) -> None:
    assert expand_host_pattern(pattern) == names


@pytest.mark.parametrize(
    "pattern", ["web[3:1]", "web[a:3]", "web[1:3:0]", "web[0:999999]", "web[01:100]", "web[Z:a]"]
)
def test_bad_host_ranges_are_refused(pattern: str) -> None:
    with pytest.raises(ValueError, match=re.escape(pattern)):
        expand_host_pattern(pattern)


@pytest.mark.parametrize(
    ("pattern", "host", "port"),
    [
        ("web:2222", "web", 2222),
        ("[2001:db8::11]:2222", "2001:db8::11", 2222),
        ("[10.0.0.5]:2205", "10.0.0.5", 2205),
        ("2001:db8::12", "2001:db8::12", None),
        ("web[1:3]", "web[1:3]", None),  # a range, not a port
        ("[2001:db8::13]", "[2001:db8::13]", None),  # Ansible too wants the port in this form
    ],
)
def test_a_host_and_its_port(pattern: str, host: str, port: int | None) -> None:
    assert split_host_port(pattern) == (host, port)


def test_an_ipv6_endpoint_is_written_in_brackets() -> None:
    assert endpoint("2001:db8::11", 2222) == "[2001:db8::11]:2222"  # as in errors about the host
    assert endpoint("10.0.0.5", 22) == "10.0.0.5:22"


def test_an_error_in_a_folder_names_the_file_and_line(tmp_path: Path) -> None:
    (tmp_path / "a.ini").write_text("[web]\nweb-1\n")
    (tmp_path / "b.yml").write_text("hosts:\n  - {name: x, datacenter: east}\n")
    with pytest.raises(SpecError) as caught:
        load_inventory(tmp_path)
    issues = [(Path(issue.file).name, issue.line, issue.message) for issue in caught.value.issues]
    assert issues == [
        (
            "a.ini",
            2,
            "host 'web-1' has no datacenter: set the variable datacenter on the host"
            " or on one of its groups (web)",
        ),
        ("b.yml", 1, "our hosts: format stands alone; an inventory folder holds Ansible inventories"),
    ]


def test_missing_file_and_empty_folder_are_fleet_errors(tmp_path: Path) -> None:
    with pytest.raises(FleetError, match="no inventory file at"):
        load_inventory(tmp_path / "nowhere.yaml")
    with pytest.raises(FleetError, match="holds no inventory file"):
        load_inventory(tmp_path)


def test_an_executable_yaml_file_is_read_not_run(tmp_path: Path) -> None:
    inventory = tmp_path / "fleet.yaml"
    inventory.write_text("hosts: [{name: a, datacenter: east}]\n")
    inventory.chmod(0o755)
    assert not is_inventory_script(inventory)
    assert [host.name for host in load_inventory(inventory).hosts] == ["a"]


# --- dynamic inventory scripts --------------------------------------------------------------


def script(folder: Path, body: str, name: str = "inventory") -> Path:
    """An executable Python script run by this interpreter."""
    path = folder / name
    path.write_text(f"#!{sys.executable}\n" + textwrap.dedent(body))
    path.chmod(0o755)
    return path


def test_the_example_dynamic_inventory_runs() -> None:
    fleet = load_inventory(EXAMPLES / "edge-inventory.py")
    assert summary(fleet.hosts) == [
        ("edge-ams-1", "10.40.1.11", "ams", None, "deploy"),
        ("edge-ams-2", "10.40.1.12", "ams", None, "deploy"),
        ("edge-sin-1", "10.50.1.11", "sin", None, "deploy"),
        ("edge-sin-2", "10.50.1.12", "sin", 2222, "deploy"),
    ]


def test_a_script_with_meta_hostvars_children_and_list_shorthand(tmp_path: Path) -> None:
    path = script(
        tmp_path,
        """
        import json, sys
        assert sys.argv[1:] == ["--list"], sys.argv
        print(json.dumps({
            "east": ["e-1", "e-2"],
            "west": {"hosts": ["w-1"], "vars": {"datacenter": "west", "ansible_port": "2022"}},
            "prod": {"children": ["east", "west"], "vars": {"ansible_user": "deploy"}},
            "_meta": {"hostvars": {"e-1": {"datacenter": "east", "ansible_host": "10.1.0.1"},
                                   "e-2": {"datacenter": "east"}}},
        }))
        """,
    )
    fleet = load_inventory(path)
    assert summary(fleet.hosts) == [
        ("e-1", "10.1.0.1", "east", None, "deploy"),
        ("e-2", "e-2", "east", None, "deploy"),
        ("w-1", "w-1", "west", 2022, "deploy"),
    ]
    assert fleet.source == str(path)


def test_a_script_without_meta_is_asked_about_each_host(tmp_path: Path) -> None:
    path = script(
        tmp_path,
        """
        import json, sys
        if sys.argv[1] == "--list":
            print(json.dumps({"web": {"hosts": ["a", "b"]}}))
        else:
            print(json.dumps({"datacenter": "dc-" + sys.argv[2]}))
        """,
    )
    assert [(host.name, host.datacenter) for host in load_inventory(path).hosts] == [
        ("a", "dc-a"),
        ("b", "dc-b"),
    ]


def test_a_failing_script_says_how_it_failed(tmp_path: Path) -> None:
    path = script(tmp_path, "import sys\nsys.exit('cloud API said no')\n")
    with pytest.raises(FleetError, match=r"--list exited 1: cloud API said no"):
        load_inventory(path)


def test_a_script_printing_something_else_than_json(tmp_path: Path) -> None:
    path = script(tmp_path, "print('web-1 web-2')\n")
    with pytest.raises(FleetError, match=r"printed something that is not JSON .*'web-1 web-2'"):
        load_inventory(path)
    path = script(tmp_path, "print('[1, 2]')\n", name="list-inventory")
    with pytest.raises(FleetError, match="printed a list, not a JSON object of groups"):
        load_inventory(path)


def test_a_script_host_without_datacenter_is_a_spec_error(tmp_path: Path) -> None:
    path = script(tmp_path, "import json\nprint(json.dumps({'web': ['a'], '_meta': {'hostvars': {}}}))\n")
    with pytest.raises(SpecError) as caught:
        load_inventory(path)
    (issue,) = caught.value.issues
    assert (issue.file, issue.line, issue.field) == (f"{path} --list", None, "a")
    assert "has no datacenter" in issue.message


def test_a_script_that_hangs_is_killed_with_everything_it_started(tmp_path: Path) -> None:
    pids = tmp_path / "pids"
    path = script(
        tmp_path,
        f"""
        import os, subprocess, time
        child = subprocess.Popen(["sleep", "60"])
        open({str(pids)!r}, "w").write(f"{{os.getpid()}} {{child.pid}}")
        time.sleep(60)
        """,
    )
    started = time.monotonic()
    with pytest.raises(FleetError, match=r"did not finish within 1.5s"):
        load_inventory(path, script_timeout=1.5)
    assert time.monotonic() - started < 10
    for pid in map(int, pids.read_text().split()):
        assert wait_gone(pid), f"process {pid} still runs"


def wait_gone(pid: int, within: float = 5.0) -> bool:
    """Whether ``pid`` is gone (or a zombie waiting for init) within ``within`` seconds."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (FileNotFoundError, ProcessLookupError):
            return True
        if state == "Z":
            return True
        time.sleep(0.05)
    return False


def test_a_script_that_cannot_run(tmp_path: Path) -> None:
    path = tmp_path / "inventory"
    path.write_text("#!/nonexistent/interpreter\n")
    path.chmod(0o755)
    with pytest.raises(FleetError, match="cannot run inventory script"):
        load_inventory(path)


def test_a_script_named_by_a_relative_path_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(EXAMPLES.parent.parent)  # it runs from its own folder, named from here
    assert len(load_inventory(Path("specs") / "fleets" / "edge-inventory.py").hosts) == 4
