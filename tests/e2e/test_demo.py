"""``deploy demo`` as the README runs it: a lab, two pushes, a halt, a rollback (in a copy of specs/)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from deployer.lab import stop_lab
from tests.plugins.lab_fleet import free_base_address

ROOT = Path(__file__).resolve().parents[2]


def test_the_demo_runs_start_to_end(tmp_path: Path) -> None:
    specs = tmp_path / "specs"
    specs.mkdir()
    shutil.copy(ROOT / "specs" / "demo.yaml", specs / "demo.yaml")
    shutil.copytree(ROOT / "specs" / "demo", specs / "demo")
    env = {**os.environ}
    env.pop("DEPLOYER_DB", None)
    try:
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "deployer",
                "demo",
                "--spec",
                str(specs / "demo.yaml"),
                "--address",
                free_base_address(12),
            ],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=240,
            check=False,
        )
        assert done.returncode == 0, done.stdout + done.stderr
        out = done.stdout
        assert "halted: 2 hosts failed, more than the 1 allowed" in out
        assert "rollback demo 1.2 -> 1.1" in out
        final = out.split("== all back on 1.1")[1]
        assert "1.1      12     100%" in final
        for host in (tmp_path / "lab" / "hosts").iterdir():
            current = host / "apps" / "demo" / "current"
            assert Path(os.readlink(current)).name == "1.1"
        assert "deploy lab down --dir" in out
    finally:
        stop_lab(tmp_path / "lab")
