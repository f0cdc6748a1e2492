"""The lab's plan: names, addresses, datacenters, and the files' text. Pure, no processes."""

from __future__ import annotations

import pytest
import yaml

from deployer.core.errors import LabError
from deployer.core.targets import Host
from deployer.lab.host import session_environment
from deployer.lab.plan import (
    FaultMode,
    LabConfig,
    datacenter_sizes,
    host_names,
    plan_hosts,
    render_inventory,
    render_known_hosts,
)


@pytest.mark.parametrize(
    ("hosts", "datacenters", "sizes"),
    [(12, 3, [4, 4, 4]), (10, 3, [4, 3, 3]), (1, 1, [1]), (5, 5, [1, 1, 1, 1, 1]), (100, 4, [25] * 4)],
)
def test_datacenters_take_contiguous_blocks_the_first_ones_larger(
    hosts: int, datacenters: int, sizes: list[int]
) -> None:
    assert datacenter_sizes(hosts, datacenters) == sizes
    planned = plan_hosts(hosts, datacenters)
    expected = [f"dc{index + 1}" for index, size in enumerate(sizes) for _ in range(size)]
    assert [host.datacenter for host in planned] == expected


def test_twelve_hosts_over_three_datacenters_as_the_docstring_says() -> None:
    planned = plan_hosts(12, 3, user="ann")
    assert planned[0] == Host("lab01", "127.0.20.1", "dc1", 2222, "ann")
    assert planned[4] == Host("lab05", "127.0.20.5", "dc2", 2222, "ann")
    assert planned[-1] == Host("lab12", "127.0.20.12", "dc3", 2222, "ann")


def test_names_sort_as_numbers_do_and_addresses_cross_octets() -> None:
    assert host_names(3) == ["lab01", "lab02", "lab03"]
    assert host_names(100)[0] == "lab001"
    planned = plan_hosts(300, 3, base_address="127.0.20.1")
    assert [planned[254].address, planned[255].address, planned[256].address] == [
        "127.0.20.255",
        "127.0.21.0",
        "127.0.21.1",
    ]


@pytest.mark.parametrize(
    ("hosts", "datacenters", "options", "message"),
    [
        (0, 1, {}, "--hosts must be between 1"),
        (1001, 1, {}, "--hosts must be between 1"),
        (3, 4, {}, "--datacenters must be between 1 and the number of hosts (3)"),
        (3, 0, {}, "--datacenters must be between 1"),
        (3, 1, {"port": 0}, "--port must be between 1 and 65535"),
        (3, 1, {"base_address": "10.0.0.1"}, "do not fit in the loopback range"),
        (3, 1, {"base_address": "127.255.255.253"}, "do not fit in the loopback range"),
        (3, 1, {"base_address": "lab"}, "is not an IPv4 address"),
    ],
)
def test_numbers_that_make_no_lab_are_refused_clearly(
    hosts: int, datacenters: int, options: dict[str, object], message: str
) -> None:
    with pytest.raises(LabError, match=message.replace("(", r"\(").replace(")", r"\)")):
        plan_hosts(hosts, datacenters, **options)  # type: ignore[arg-type]


def test_the_inventory_text_reads_back_as_the_hosts_it_was_made_from() -> None:
    hosts = plan_hosts(4, 2, user="o'neil: #1")
    text = render_inventory(
        hosts,
        identity_file="/l a b/client_key",
        known_hosts="/l a b/known_hosts",
        stop_hint="deploy lab down",
    )
    data = yaml.safe_load(text)
    assert data["ssh"] == {
        "identity_file": "/l a b/client_key",
        "known_hosts": "/l a b/known_hosts",
        "host_key_policy": "strict",
    }
    assert [Host(**entry) for entry in data["hosts"]] == list(hosts)


def test_known_hosts_names_a_non_default_port_in_brackets() -> None:
    hosts = [Host("a", "127.0.0.2", "dc1", 2222), Host("b", "127.0.0.3", "dc1", 22)]
    text = render_known_hosts(hosts, {"a": "ssh-ed25519 AAAA1", "b": "ssh-ed25519 AAAA2"})
    assert text == "[127.0.0.2]:2222 ssh-ed25519 AAAA1\n127.0.0.3 ssh-ed25519 AAAA2\n"


def test_the_config_round_trips_and_a_broken_one_is_a_lab_error() -> None:
    config = LabConfig(hosts=plan_hosts(3, 1, user="ann"), user="ann")
    assert LabConfig.from_json(config.to_json(), "lab.json") == config
    with pytest.raises(LabError, match=r"lab\.json is not a lab configuration"):
        LabConfig.from_json('{"hosts": []}', "lab.json")


def test_an_unknown_fault_mode_names_the_known_ones() -> None:
    assert FaultMode.parse("fail-hook") is FaultMode.FAIL_HOOK
    with pytest.raises(LabError, match="expected one of ok, down, hang, fail-hook"):
        FaultMode.parse("slow")


def test_a_session_environment_is_clean_and_the_client_cannot_fake_who_or_how_healthy() -> None:
    env = session_environment(
        client_env={"FOO": "bar", "HOME": "/elsewhere", "DEPLOY_LAB_UNHEALTHY": "0"},
        home="/lab/hosts/lab01",
        user="ann",
        host_name="lab01",
        unhealthy=False,
        path="/usr/bin:/bin",
    )
    assert env == {
        "PATH": "/usr/bin:/bin",
        "LANG": "C.UTF-8",
        "FOO": "bar",
        "HOME": "/lab/hosts/lab01",
        "USER": "ann",
        "LOGNAME": "ann",
        "SHELL": "/bin/sh",
        "DEPLOY_LAB_HOST": "lab01",
    }
    unhealthy = session_environment(
        client_env={}, home="/h", user="ann", host_name="lab01", unhealthy=True, path="/bin"
    )
    assert unhealthy["DEPLOY_LAB_UNHEALTHY"] == "1"
