"""``deploy plan`` and ``deploy schema`` through the real CLI: the plan's shape, and bad specs."""

from __future__ import annotations

import gzip
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def deploy(*args: str, db: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DEPLOYER_DB": f"sqlite:///{db}"}
    return subprocess.run(
        [sys.executable, "-m", "deployer", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def example_spec(folder: Path) -> Path:
    """A copy of specs/webapp.yaml and its fleets, with its artifact directory built."""
    shutil.copytree(ROOT / "specs" / "fleets", folder / "specs" / "fleets")
    shutil.copy(ROOT / "specs" / "webapp.yaml", folder / "specs" / "webapp.yaml")
    (folder / "specs" / "build" / "webapp").mkdir(parents=True)
    return folder / "specs" / "webapp.yaml"


def test_plan_json_stripes_the_example_fleet(tmp_path: Path) -> None:
    done = deploy("plan", str(example_spec(tmp_path)), "--json", db=tmp_path / "s.db")
    assert done.returncode == 0, done.stderr
    plan = json.loads(done.stdout)
    assert (plan["app"], plan["environment"], plan["version"]) == ("webapp", "production", "2.4.1")
    waves = plan["waves"]
    assert [w["index"] for w in waves] == list(range(1, len(waves) + 1))
    assert len(waves[0]["hosts"]) == 1  # batch [1, 10%, 25%]: a canary first
    names = [h["name"] for w in waves for h in w["hosts"]]
    assert len(names) == len(set(names)) == 11
    assert set(waves[-1]["hosts"][0]) == {"name", "datacenter", "address"}
    assert plan["skipped"] == []
    assert plan["artifact_problem"] is None


def test_plan_reports_a_missing_artifact_and_exits_2_as_push_would(tmp_path: Path) -> None:
    spec = example_spec(tmp_path)
    shutil.rmtree(spec.parent / "build")
    missing = spec.parent / "build" / "webapp"
    done = deploy("plan", str(spec), db=tmp_path / "s.db")
    assert done.returncode == 2
    assert done.stdout.startswith("push webapp (new) -> 2.4.1 in production: 11 hosts")  # the plan is shown
    assert done.stderr == f"error: artifact {missing} does not exist; a push would fail\n"
    done = deploy("plan", str(spec), "--json", db=tmp_path / "s.db")
    assert done.returncode == 2
    assert json.loads(done.stdout)["artifact_problem"] == f"artifact {missing} does not exist"
    (spec.parent / "build").mkdir()
    (spec.parent / "build" / "webapp.tar.gz").write_text("not gzip")
    spec.write_text(spec.read_text().replace("./build/webapp/", "./build/webapp.tar.gz"))
    done = deploy("plan", str(spec), "--json", db=tmp_path / "s.db")
    assert done.returncode == 2
    assert json.loads(done.stdout)["artifact_problem"] == f"artifact {missing}.tar.gz is not a gzip file"


def test_plan_text_and_limit(tmp_path: Path) -> None:
    done = deploy("plan", str(example_spec(tmp_path)), "--limit", "dc:fra", db=tmp_path / "s.db")
    assert done.returncode == 0, done.stderr
    assert "3 hosts" in done.stdout.splitlines()[0]
    assert "web-iad" not in done.stdout and "web-fra-1" in done.stdout


def test_a_malformed_spec_names_file_line_and_field_and_exits_2(tmp_path: Path) -> None:
    spec = ROOT / "tests" / "spec" / "invalid" / "specs" / "bad-choices.yaml"
    done = deploy("plan", str(spec), db=tmp_path / "s.db")
    assert done.returncode == 2
    assert "Traceback" not in done.stderr and done.stdout == ""
    lines = done.stderr.splitlines()
    assert f"error: {spec}:9: ssh.host_key_policy: expected 'strict' or 'accept-new' (got 'maybe')" in lines
    assert any(
        line.startswith(f"error: {spec}:13: strategy.on_halt:") for line in lines
    )  # all errors at once


def test_an_injection_version_is_refused(tmp_path: Path) -> None:
    done = deploy(
        "plan", str(ROOT / "specs" / "webapp.yaml"), "--version", "1.0;touch /tmp/pwned", db=tmp_path / "s.db"
    )
    assert done.returncode == 2
    assert "version" in done.stderr and "Traceback" not in done.stderr


def test_schema_is_json_schema_for_editors(tmp_path: Path) -> None:
    done = deploy("schema", db=tmp_path / "s.db")
    assert done.returncode == 0
    schema = json.loads(done.stdout)
    assert schema["type"] == "object"
    assert {"app", "fleet", "artifact", "target", "strategy", "hooks"} <= set(schema["properties"])


def limit_spec(folder: Path, fleet: Path) -> Path:
    spec = folder / "spec.yaml"
    spec.write_text(
        f"app: shop\nversion: '1.0.0'\nartifact: build/shop.tar.gz\ntarget: /srv/shop\nfleet: {fleet}\n"
    )
    (folder / "build").mkdir()
    (folder / "build" / "shop.tar.gz").write_bytes(gzip.compress(b""))
    return spec


def planned_hosts(done: subprocess.CompletedProcess[str]) -> list[str]:
    assert done.returncode == 0, done.stderr
    return sorted(host["name"] for wave in json.loads(done.stdout)["waves"] for host in wave["hosts"])


def test_limit_takes_ansible_patterns_and_a_file_of_hosts(tmp_path: Path) -> None:
    inventories = ROOT / "tests" / "inventories"
    spec = limit_spec(tmp_path, inventories / "limit" / "inventory.ini")
    (tmp_path / "failed.txt").write_text("web-1\ndb-1\n")
    done = deploy(
        "plan", str(spec), "--json", "--limit", f"@{tmp_path / 'failed.txt'}:lone", db=tmp_path / "s.db"
    )
    assert planned_hosts(done) == ["db-1", "lone", "web-1"]
    done = deploy("plan", str(spec), "--json", "--limit", "prod:!east:tag:web_canary", db=tmp_path / "s.db")
    assert planned_hosts(done) == ["web-2", "web-3"]


@pytest.mark.parametrize(
    ("limit", "message"),
    [
        (
            "@{tmp}/missing.txt",
            "error: --limit @{tmp}/missing.txt: cannot read the file: No such file or directory",
        ),
        ("@{tmp}/empty.txt", "error: --limit @{tmp}/empty.txt: the file lists no hosts"),
        (
            "~(web",
            "error: --limit ~(web: '~(web' is not a regular expression: missing ), unterminated subpattern",
        ),
        ("web[0]", "error: --limit web[0]: 'web[0]' is an Ansible subscript"),
    ],
)
def test_a_bad_limit_is_one_line_and_exit_2(tmp_path: Path, limit: str, message: str) -> None:
    spec = limit_spec(tmp_path, ROOT / "tests" / "inventories" / "limit" / "inventory.ini")
    (tmp_path / "empty.txt").write_text("\n")
    done = deploy("plan", str(spec), "--limit", limit.format(tmp=tmp_path), db=tmp_path / "s.db")
    assert done.returncode == 2
    assert done.stdout == "" and "Traceback" not in done.stderr
    assert done.stderr.startswith(message.format(tmp=tmp_path))
    assert len(done.stderr.splitlines()) == 1


def test_a_spec_fleet_may_be_an_inventory_folder(tmp_path: Path) -> None:
    spec = limit_spec(tmp_path, ROOT / "tests" / "inventories" / "folder" / "inventory")
    done = deploy("plan", str(spec), "--json", "--limit", "web:&edge", db=tmp_path / "s.db")
    assert planned_hosts(done) == ["2001:db8::7", "web-1", "web-2", "web-3"]
