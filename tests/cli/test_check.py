"""``deploy check`` and ``deploy push --preflight`` against the lab: a host down, one with
the wrong key, a target that cannot be made. The check changes nothing and records nothing;
a failed preflight stops the push before any host is touched."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import asyncssh
import pytest

from deployer.lab.control import LabFleet
from deployer.store import open_store
from tests.cli.test_plan import deploy as deploy_with
from tests.plugins.lab_fleet import LabFactory


@pytest.fixture(scope="module")
def lab(lab_factory: LabFactory) -> LabFleet:
    return lab_factory(hosts=4, datacenters=2)


@pytest.fixture
def work(lab: LabFleet, tmp_path: Path) -> Iterator[Path]:
    """A spec for app ``chk`` over the lab, lab03 logging in with a key the lab does not know."""
    wrong = tmp_path / "wrong_key"
    wrong.write_bytes(asyncssh.generate_private_key("ssh-ed25519").export_private_key())
    wrong.chmod(0o600)
    inventory = lab.inventory_path.read_text().replace(
        'name: "lab03",', f'name: "lab03", ssh: {{identity_file: "{wrong}"}},'
    )
    assert str(wrong) in inventory
    (tmp_path / "inventory.yaml").write_text(inventory)
    (tmp_path / "app").mkdir()
    (tmp_path / "app" / "index.html").write_text("hello\n")
    write_spec(tmp_path)
    yield tmp_path
    lab.fix_all()


def write_spec(folder: Path, *, target: str = "~/apps/chk", strategy: str = "") -> Path:
    spec = folder / "spec.yaml"
    spec.write_text(
        f"app: chk\nversion: '1.0'\nenvironment: lab\nfleet: inventory.yaml\nartifact: app/\n"
        f"target: {target}\nstrategy: {{batch: [2], max_failures: 3{strategy}}}\n"
    )
    return spec


def deploy(folder: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return deploy_with(*args, db=folder / "state.db")


def statuses(document: dict[str, object]) -> dict[str, tuple[str, list[str]]]:
    hosts = document["hosts"]
    assert isinstance(hosts, list)
    return {host["name"]: (host["status"], host["problems"]) for host in hosts}


def untouched(lab: LabFleet) -> bool:
    return not any((lab.home(host.name) / "apps" / "chk").exists() for host in lab.hosts)


def test_check_passes_a_healthy_fleet_and_changes_nothing(lab: LabFleet, work: Path) -> None:
    done = deploy(work, "check", str(work / "spec.yaml"), "--limit", "lab01,lab02,lab04")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].split() == ["host", "address", "result", "free", "problem"]
    hosts = [lab.host(name) for name in ("lab01", "lab02", "lab04")]
    assert [line.split()[:3] for line in lines[1:4]] == [
        [host.name, f"{host.address}:{host.port}", "ok"] for host in hosts
    ]
    assert lines[-1] == "3 hosts checked: 3 ok"
    assert untouched(lab)
    assert not (work / "state.db").exists()  # no deployment recorded: the store is not even opened


def test_check_names_the_host_that_is_down_and_the_one_with_the_wrong_key(lab: LabFleet, work: Path) -> None:
    lab.break_host("lab02", "down")
    done = deploy(work, "check", str(work / "spec.yaml"), "--json")
    assert done.returncode == 1, done.stderr
    report = json.loads(done.stdout)
    assert report["ok"] is False and report["needed_bytes"] > 0
    seen = statuses(report)
    assert seen["lab01"] == ("ok", []) and seen["lab04"] == ("ok", [])
    host = lab.host("lab02")
    refused = f"cannot connect to {host.address}:{host.port}: Connection refused"
    assert seen["lab02"] == ("unreachable", [refused])
    status, problems = seen["lab03"]
    assert status == "failed"
    assert problems[0].startswith(f"authentication as root@{lab.host('lab03').address}")
    assert untouched(lab)


def test_check_finds_a_target_that_cannot_be_made(lab: LabFleet, work: Path) -> None:
    (lab.home("lab01") / "afile").write_text("a file, not a directory\n")
    try:
        write_spec(work, target="~/afile/app")
        done = deploy(work, "check", str(work / "spec.yaml"), "--limit", "lab01", "--json")
    finally:
        (lab.home("lab01") / "afile").unlink()
    assert done.returncode == 1
    home = lab.home("lab01")
    assert statuses(json.loads(done.stdout))["lab01"] == (
        "failed",
        [f"{home}/afile is not a directory: the target {home}/afile/app cannot be made"],
    )


@pytest.mark.parametrize("how", ["--preflight", "strategy.preflight"])
def test_a_failed_preflight_stops_the_push_before_any_host_is_touched(
    lab: LabFleet, work: Path, how: str
) -> None:
    lab.break_host("lab02", "down")
    if how == "strategy.preflight":
        write_spec(work, strategy=", preflight: true")
    args = ["--preflight"] if how == "--preflight" else []
    done = deploy(work, "push", str(work / "spec.yaml"), "--yes", *args)
    assert done.returncode == 1
    assert "lab02" in done.stdout and "unreachable" in done.stdout
    said = "error: preflight failed on 2 hosts: nothing was started, no deployment was recorded"
    assert said in done.stderr
    assert untouched(lab)
    with open_store(f"sqlite:///{work / 'state.db'}") as store:
        assert store.history("chk") == []  # no deployment, so no failure budget spent
    done = deploy(work, "push", str(work / "spec.yaml"), "--yes", "--json", *args)
    assert done.returncode == 1
    result = json.loads(done.stdout)
    assert (result["status"], result["id"]) == ("preflight_failed", None)
    assert statuses(result["preflight"])["lab02"][0] == "unreachable"


def test_a_passing_preflight_lets_the_push_run(lab: LabFleet, work: Path) -> None:
    done = deploy(work, "push", str(work / "spec.yaml"), "--yes", "--preflight", "--limit", "lab01,lab04")
    assert done.returncode == 0, done.stderr
    assert "preflight: 2 hosts ok" in done.stdout
    assert all((lab.home(name) / "apps" / "chk" / "current").is_symlink() for name in ("lab01", "lab04"))
    for name in ("lab01", "lab04"):
        subprocess.run(["rm", "-rf", str(lab.home(name) / "apps" / "chk")], check=True, timeout=30)
