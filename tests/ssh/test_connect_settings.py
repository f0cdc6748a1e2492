"""Connecting as OpenSSH and Ansible would: ``~/.ssh/config``, jump hosts, Ansible's variables.

The real CLI pushes to real sshd hosts (tests/plugins/sshd_fleet.py). The real
``~/.ssh/config`` is never read: every run gets an empty HOME and no agent, and a test
that wants a config file writes one and names it with ``ssh.config_file``.
"""

from __future__ import annotations

import json
import os
import secrets
import shlex
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from deployer.core.errors import SpecError
from deployer.core.targets import SshOptions
from deployer.hosts.ssh_config import endpoint_from, split_jump
from deployer.inventory.ansible import ssh_common_args
from deployer.inventory.load import load_inventory
from tests.fabric.support import write_fabfile
from tests.plugins.sshd_fleet import SshdFleet

SPEC = """app: {app}
version: "1.0"
environment: e2e
fleet: {inventory}
artifact: app/
target: ~/apps/{app}
ssh: {ssh}
strategy: {{batch: [10], stripe: none, max_failures: {max_failures}, bake: 0s}}
hooks:
  start: "true"
  after_install: {{fabric: "fabfile.py:record", args: {{note: hook}}}}
  timeout: 30s
"""


@pytest.fixture(scope="module")
def plain(sshd_fleet_factory: Any) -> Iterator[SshdFleet]:
    """Two hosts the controller reaches directly."""
    with sshd_fleet_factory(count=2, datacenters=1) as fleet:
        yield fleet


@pytest.fixture(scope="module")
def behind(sshd_fleet_factory: Any) -> Iterator[SshdFleet]:
    """Three hosts reachable only through the fleet's bastion."""
    with sshd_fleet_factory(count=3, datacenters=1, bastion=True) as fleet:
        yield fleet


class Push:
    """One test's app: a spec in its own folder, run by the real CLI without HOME or agent."""

    def __init__(self, work: Path, inventory: Path | str, ssh: str = "{}", max_failures: int = 0) -> None:
        self.work = work
        self.name = f"cs{secrets.token_hex(3)}"
        (work / "app").mkdir(exist_ok=True)
        (work / "app" / "index.html").write_text("<h1>hi</h1>\n")
        write_fabfile(work)
        self.spec = work / "spec.yaml"
        self.spec.write_text(
            SPEC.format(app=self.name, inventory=inventory, ssh=ssh, max_failures=max_failures)
        )
        self.home = work / "home"
        self.home.mkdir(exist_ok=True)

    def run(self, *args: str, check: int | None = None) -> subprocess.CompletedProcess[str]:
        env = {k: v for k, v in os.environ.items() if k != "SSH_AUTH_SOCK"}
        env.update(HOME=str(self.home), DEPLOYER_DB=f"sqlite:///{self.work / 'state.db'}")
        done = subprocess.run(
            [sys.executable, "-m", "deployer", *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        if check is not None:
            assert done.returncode == check, (done.returncode, done.stdout, done.stderr)
        return done

    def push(self, *args: str, check: int = 0) -> Any:
        return json.loads(self.run("push", str(self.spec), "--yes", "--json", *args, check=check).stdout)

    def hosts(self, result: Any) -> dict[str, tuple[str, str | None]]:
        return {host["name"]: (host["status"], host["error"]) for host in result["hosts"]}

    def deployed(self, fleet: SshdFleet, name: str) -> bool:
        """The host runs 1.0 and its Fabric hook reached it (the driver and Fabric alike)."""
        release = fleet.host_home(name) / "apps" / self.name / "releases" / "1.0"
        current = fleet.host_home(name) / "apps" / self.name / "current"
        return current.resolve() == release and (release / "fabric-hook.config").is_file()


def accepted(fleet: SshdFleet, name: str) -> int:
    """How many connections the host's sshd has let in so far."""
    return fleet.sshd_log(name).read_text().count("Accepted publickey")


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def without_jump(fleet: SshdFleet, path: Path) -> Path:
    """The fleet's hosts in our format, with no proxy_jump: the test says how to get there."""
    hosts = [
        f"  - {{name: {h.name}, address: {h.address}, port: {h.port}, datacenter: {h.datacenter}}}"
        for h in fleet.hosts
    ]
    return write(
        path,
        f"ssh: {{user: root, identity_file: {fleet.client_key}, known_hosts: {fleet.known_hosts}}}\n"
        "hosts:\n" + "\n".join(hosts) + "\n",
    )


# --- ~/.ssh/config ---------------------------------------------------------------------------


def test_an_ssh_config_alias_gives_the_address_port_user_and_key(plain: SshdFleet, tmp_path: Path) -> None:
    h01, h02 = plain.hosts
    config = write(
        tmp_path / "ssh_config",
        f"""# web1 is all the inventory says; the config knows the rest
Host web1
  HostName {h01.address}
  Port {h01.port}
  User root
  IdentityFile {plain.client_key}
  IdentitiesOnly yes
  UserKnownHostsFile {plain.known_hosts}
  StrictHostKeyChecking yes
  ConnectTimeout 5
# web2: what the inventory says wins over what the config says
Host web2
  HostName {h02.address}
  Port 1
  User nobody
  IdentityFile /nonexistent/key
  UserKnownHostsFile /nonexistent/known_hosts
Host *
  Port 22
""",
    )
    own = f"user: root, identity_file: {plain.client_key}, known_hosts: {plain.known_hosts}"
    inventory = write(
        tmp_path / "inventory.yml",
        f"""hosts:
  - {{name: web1, datacenter: dc1}}
  - {{name: web2, datacenter: dc1, port: {h02.port}, ssh: {{{own}}}}}
""",
    )
    push = Push(tmp_path, inventory, ssh=f"{{config_file: {config}}}")
    result = push.push()
    assert result["status"] == "succeeded", push.hosts(result)
    assert push.deployed(plain, "h01") and push.deployed(plain, "h02")


def test_the_config_s_known_hosts_file_and_its_strict_host_key_checking(
    plain: SshdFleet, tmp_path: Path
) -> None:
    h01 = plain.hosts[0]
    learned = tmp_path / "learned_hosts"
    config = write(
        tmp_path / "ssh_config",
        f"""Host new1
  HostName {h01.address}
  Port {h01.port}
  User root
  IdentityFile {plain.client_key}
  UserKnownHostsFile {learned}
  StrictHostKeyChecking accept-new
""",
    )
    inventory = write(tmp_path / "inventory.yml", "hosts:\n  - {name: new1, datacenter: dc1}\n")
    push = Push(tmp_path, inventory, ssh=f"{{config_file: {config}}}")
    result = push.push()
    assert result["status"] == "succeeded", push.hosts(result)
    (line,) = learned.read_text().splitlines()
    assert line.startswith(f"[{h01.address}]:{h01.port} ssh-ed25519 ")


def test_without_the_config_the_port_is_22(plain: SshdFleet, tmp_path: Path) -> None:
    inventory = write(
        tmp_path / "inventory.yml",
        f"""ssh: {{user: root, identity_file: {plain.client_key}, known_hosts: {plain.known_hosts}}}
hosts:
  - {{name: {plain.hosts[0].address}, datacenter: dc1}}
""",
    )
    push = Push(tmp_path, inventory, ssh="{use_ssh_config: false, connect_timeout: 3s}")
    result = push.push(check=1)
    ((status, error),) = push.hosts(result).values()
    assert status == "unreachable" and f"{plain.hosts[0].address}:22" in (error or "")


def test_a_config_file_that_is_not_there_is_a_clear_failure(plain: SshdFleet, tmp_path: Path) -> None:
    push = Push(tmp_path, plain.inventory_path, ssh=f"{{config_file: {tmp_path / 'nope'}}}")
    result = push.push("--limit", "h01", check=1)
    assert push.hosts(result)["h01"] == (
        "failed",
        f"the SSH config file {tmp_path / 'nope'} (ssh.config_file) does not exist",
    )


# --- bastions ------------------------------------------------------------------------------------


def test_hosts_behind_a_bastion_share_one_connection_to_it(behind: SshdFleet, tmp_path: Path) -> None:
    """The fleet's inventory says proxy_jump; a Fabric hook goes through the bastion too."""
    before = accepted(behind, "bastion")
    push = Push(tmp_path, behind.inventory_path)
    result = push.push()
    assert result["status"] == "succeeded", push.hosts(result)
    assert all(push.deployed(behind, host.name) for host in behind.hosts)
    # The driver's connections share one to the bastion; each Fabric hook opens its own.
    assert accepted(behind, "bastion") - before == 1 + len(behind.hosts)


def test_hosts_behind_a_bastion_cannot_be_reached_without_it(behind: SshdFleet, tmp_path: Path) -> None:
    push = Push(tmp_path, behind.inventory_path, ssh="{proxy_jump: none, connect_timeout: 3s}")
    result = push.push("--limit", "h01", check=1)
    status, error = push.hosts(result)["h01"]
    assert status == "unreachable" and (error or "").startswith("cannot connect to h01.internal:2222")


def test_the_bastion_s_host_key_and_each_host_s_are_checked(behind: SshdFleet, tmp_path: Path) -> None:
    bastion = behind.bastion
    assert bastion is not None
    behind.rotate_host_key("bastion")
    (tmp_path / "a").mkdir()
    push = Push(tmp_path / "a", behind.inventory_path)
    result = push.push(check=1)
    jump = f"{bastion.address}:{bastion.port}"
    for status, error in push.hosts(result).values():
        assert status == "failed"
        assert (error or "").startswith(f"jump host {bastion.address}: host key CHANGED for {jump}: ")
    behind.reset()
    behind.rotate_host_key("h02")
    (tmp_path / "b").mkdir()
    push = Push(tmp_path / "b", behind.inventory_path, max_failures=1)
    result = push.push(check=0)
    status, error = push.hosts(result)["h02"]
    assert status == "failed" and (error or "").startswith("host key CHANGED for h02.internal:2222: ")
    assert push.deployed(behind, "h01") and push.deployed(behind, "h03")


def test_a_bastion_that_does_not_answer_fails_each_host_behind_it(behind: SshdFleet, tmp_path: Path) -> None:
    bastion = behind.bastion
    assert bastion is not None
    behind.freeze("bastion")
    push = Push(tmp_path, behind.inventory_path, ssh="{connect_timeout: 2s}")
    started = time.monotonic()
    result = push.push(check=1)
    assert time.monotonic() - started < 30  # bounded: the connect timeout applies to the bastion too
    jump = f"{bastion.address}:{bastion.port}"
    assert push.hosts(result) == {
        host.name: ("unreachable", f"jump host {bastion.address}: no SSH answer from {jump} within 2s")
        for host in behind.hosts
    }


def test_a_bastion_from_the_ssh_config_and_per_host(behind: SshdFleet, tmp_path: Path) -> None:
    bastion = behind.bastion
    assert bastion is not None
    config = write(
        tmp_path / "ssh_config", f"Host *.internal\n  ProxyJump root@{bastion.address}:{bastion.port}\n"
    )
    h01, h02, h03 = behind.hosts
    inventory = write(
        tmp_path / "inventory.yml",
        f"""ssh: {{user: root, identity_file: {behind.client_key}, known_hosts: {behind.known_hosts}}}
hosts:
  - {{name: h01, address: {h01.address}, port: 2222, datacenter: dc1}}
  - {{name: h02, address: {h02.address}, port: 2222, datacenter: dc1}}
  - {{name: h03, address: h03-alias, port: 2222, datacenter: dc1,
      ssh: {{proxy_jump: "{bastion.address}:{bastion.port}"}}}}
""",
    )
    # h03-alias is named by the host's own proxy_jump: the config's ProxyJump does not match it.
    config.write_text(config.read_text() + f"Host h03-alias\n  HostName {h03.address}\n")
    push = Push(tmp_path, inventory, ssh=f"{{config_file: {config}}}")
    result = push.push()
    assert result["status"] == "succeeded", push.hosts(result)
    assert all(push.deployed(behind, host.name) for host in behind.hosts)


def test_a_proxy_command_from_the_ssh_config(behind: SshdFleet, tmp_path: Path) -> None:
    """The real OpenSSH client as the ProxyCommand, for the driver and the Fabric hook alike."""
    bastion = behind.bastion
    assert bastion is not None
    proxy = shlex.join(
        [
            *behind.ssh_argv("bastion", "")[:-2],  # ssh and its options, less user@host and command
            "-W",
            "%h:%p",
            f"root@{bastion.address}",
        ]
    )
    config = write(tmp_path / "ssh_config", f"Host *.internal\n  ProxyCommand {proxy}\n")
    push = Push(tmp_path, without_jump(behind, tmp_path / "inventory.yml"), ssh=f"{{config_file: {config}}}")
    result = push.push()
    assert result["status"] == "succeeded", push.hosts(result)
    assert all(push.deployed(behind, host.name) for host in behind.hosts)


def test_a_bastion_and_a_key_file_from_ansible_variables(behind: SshdFleet, tmp_path: Path) -> None:
    bastion = behind.bastion
    assert bastion is not None
    keys = tmp_path / "keys"
    keys.mkdir()
    (keys / "id").write_bytes(behind.client_key.read_bytes())
    (keys / "id").chmod(0o600)
    lines = "\n".join(f"{h.name} ansible_host={h.address} ansible_port={h.port}" for h in behind.hosts)
    inventory = write(
        tmp_path / "hosts.ini",
        f"""[web]
{lines}

[web:vars]
datacenter=dc1
ansible_user=root
ansible_ssh_private_key_file=keys/id
ansible_ssh_common_args='-o ProxyJump=root@{bastion.address}:{bastion.port}'
""",
    )
    push = Push(tmp_path, inventory, ssh=f"{{known_hosts: {behind.known_hosts}}}")
    result = push.push()
    assert result["status"] == "succeeded", push.hosts(result)
    assert all(push.deployed(behind, host.name) for host in behind.hosts)


# --- Ansible variables ---------------------------------------------------------------------------


def test_an_ini_inventory_s_private_key_file_without_an_agent(plain: SshdFleet, tmp_path: Path) -> None:
    h01 = plain.hosts[0]
    inventory = write(
        tmp_path / "hosts.ini",
        f"""web1 ansible_host={h01.address} ansible_port={h01.port} ansible_user=root datacenter=dc1 \
ansible_ssh_private_key_file={plain.client_key}
""",
    )
    push = Push(tmp_path, inventory, ssh=f"{{known_hosts: {plain.known_hosts}}}")
    result = push.push()
    assert result["status"] == "succeeded", push.hosts(result)
    assert push.deployed(plain, "h01")


def test_other_connections_are_refused_for_selected_hosts_and_become_is_ignored(
    plain: SshdFleet, tmp_path: Path
) -> None:
    h01 = plain.hosts[0]
    inventory = write(
        tmp_path / "hosts.ini",
        f"""[web]
web1 ansible_host={h01.address} ansible_port={h01.port}
box ansible_connection=docker
local1 ansible_connection=local

[web:vars]
datacenter=dc1
ansible_user=root
ansible_become=true
ansible_become_user=app
ansible_ssh_private_key_file={plain.client_key}
""",
    )
    push = Push(tmp_path, inventory, ssh=f"{{known_hosts: {plain.known_hosts}}}")
    refused = push.run("plan", str(push.spec), check=2)
    assert refused.stderr.count("error:") == 1
    assert f"host box: {inventory}:3: box.ansible_connection: ansible_connection=docker" in refused.stderr
    assert f"host local1: {inventory}:4: local1.ansible_connection" in refused.stderr
    assert "Traceback" not in refused.stderr
    restart = push.run("restart", str(push.spec), "--yes", check=2)  # a path of its own to the hosts
    assert "host box: " in restart.stderr and "Traceback" not in restart.stderr
    done = push.run("push", str(push.spec), "--yes", "--json", "--limit", "web1", check=0)
    warned = [line for line in done.stderr.splitlines() if "ansible_become" in line]
    assert warned == [
        f"warning: {inventory}: [web:vars].ansible_become: ansible_become* variables are ignored: "
        "hooks run as the SSH user and use sudo themselves when they need it"
    ]
    assert push.deployed(plain, "h01")


def test_ssh_common_args_honour_four_options_and_refuse_the_rest(tmp_path: Path) -> None:
    assert ssh_common_args("-o ProxyJump=a@b:2 -o 'Port 2200' -oUser=ops -o IdentityFile=k -J x") == {
        "ProxyJump": "a@b:2",
        "Port": "2200",
        "User": "ops",
        "IdentityFile": "k",
    }
    inventory = write(
        tmp_path / "hosts.ini",
        "web1 datacenter=dc1 ansible_ssh_common_args='-o ForwardAgent=yes'\n",
    )
    with pytest.raises(SpecError) as raised:
        load_inventory(inventory)
    (issue,) = raised.value.issues
    assert issue.line == 1 and "-o ForwardAgent is not supported" in issue.message
    assert "-o ProxyJump, -o Port, -o User, -o IdentityFile" in issue.message


# --- the precedence, as data ---------------------------------------------------------------------

CONFIG = {
    "Hostname": "10.0.0.5",
    "Port": 2200,
    "User": "ops",
    "IdentityFile": ["/keys/ops"],
    "UserKnownHostsFile": ["/kh/config", "/kh/other"],
    "StrictHostKeyChecking": "accept-new",
    "ConnectTimeout": 4,
    "ServerAliveInterval": 0,
    "ProxyCommand": "nc %h %p",
}


@pytest.mark.parametrize(
    ("explicit", "port", "config", "expected"),
    [
        # nothing set anywhere: the built-in defaults
        (SshOptions(), None, {}, ("web1", 22, None, (), "~/.ssh/known_hosts", "strict", 10.0, 15.0)),
        # the config over the defaults (keepalive 0 stays 0: off)
        (
            SshOptions(),
            None,
            CONFIG,
            ("10.0.0.5", 2200, "ops", ("/keys/ops",), "/kh/config", "accept-new", 4.0, 0.0),
        ),
        # inventory/spec/host settings over the config
        (
            SshOptions(
                user="deploy",
                identity_file="/keys/mine",
                known_hosts="/kh/mine",
                host_key_policy="strict",
                connect_timeout=2.0,
                keepalive=5.0,
            ),
            2222,
            CONFIG,
            ("10.0.0.5", 2222, "deploy", ("/keys/mine",), "/kh/mine", "strict", 2.0, 5.0),
        ),
    ],
)
def test_settings_are_laid_over_the_config_over_the_defaults(
    explicit: SshOptions, port: int | None, config: dict[str, object], expected: tuple[object, ...]
) -> None:
    endpoint = endpoint_from("web1", explicit, port, config, None)
    got = (
        endpoint.address,
        endpoint.port,
        endpoint.user,
        endpoint.identity_files,
        endpoint.known_hosts,
        endpoint.host_key_policy,
        endpoint.connect_timeout,
        endpoint.keepalive,
    )
    assert got == tuple(
        os.path.expanduser(v) if isinstance(v, str) and v.startswith("~") else v for v in expected
    )


def test_a_proxy_jump_in_the_settings_replaces_the_config_s_proxy_command() -> None:
    assert endpoint_from("web1", SshOptions(), None, CONFIG, None).proxy_command == "nc 10.0.0.5 2200"
    assert endpoint_from("web1", SshOptions(proxy_jump="none"), None, CONFIG, None).proxy_command is None


@pytest.mark.parametrize(
    ("hop", "parts"),
    [("bastion", (None, "bastion", None)), ("ops@10.0.0.1:2222", ("ops", "10.0.0.1", 2222))],
)
def test_a_jump_is_user_host_port(hop: str, parts: tuple[object, ...]) -> None:
    assert split_jump(hop) == parts
