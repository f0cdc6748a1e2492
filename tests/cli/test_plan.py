"""``deploy plan`` and ``deploy schema`` through the real CLI: the plan's shape, and bad specs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

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


def test_plan_json_stripes_the_example_fleet(tmp_path: Path) -> None:
    done = deploy("plan", str(ROOT / "specs" / "webapp.yaml"), "--json", db=tmp_path / "s.db")
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


def test_plan_text_and_limit(tmp_path: Path) -> None:
    done = deploy("plan", str(ROOT / "specs" / "webapp.yaml"), "--limit", "dc:fra", db=tmp_path / "s.db")
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
