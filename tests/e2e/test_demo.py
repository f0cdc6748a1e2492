"""``deploy demo`` as a new user runs it: from any directory, with nothing but the package.

The demo's spec and app ship inside the package (deployer/demo/), so the run starts
in an empty temporary directory: a lab, two pushes, a halt, a rollback.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from fnmatch import fnmatch
from pathlib import Path

from deployer.lab import stop_lab
from tests.plugins.lab_fleet import free_base_address

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "deployer"


def test_the_demo_runs_start_to_end_outside_a_clone(tmp_path: Path) -> None:
    env = {**os.environ}
    env.pop("DEPLOYER_DB", None)
    work = tmp_path / "deploy-demo"
    try:
        done = subprocess.run(
            [sys.executable, "-m", "deployer", "demo", "--address", free_base_address(12)],
            cwd=tmp_path,  # no specs/ here: the old demo stopped with "cannot read the demo spec"
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
        assert (work / "demo.yaml").is_file() and (work / "app" / "bin" / "app").is_file()
        for host in (work / "lab" / "hosts").iterdir():
            current = host / "apps" / "demo" / "current"
            assert Path(os.readlink(current)).name == "1.1"
        assert "deploy lab down --dir" in out
    finally:
        stop_lab(work / "lab")


def test_every_demo_file_is_package_data() -> None:
    """A file pyproject does not list would be missing from a wheel, and the demo with it."""
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    patterns = pyproject["tool"]["setuptools"]["package-data"]["deployer"]
    demo_files = [path for path in (PACKAGE / "demo").rglob("*") if path.is_file()]
    assert {path.name for path in demo_files} >= {"demo.yaml", "app", "health.sh"}
    for path in demo_files:
        relative = path.relative_to(PACKAGE).as_posix()
        assert any(fnmatch(relative, pattern) for pattern in patterns), relative
