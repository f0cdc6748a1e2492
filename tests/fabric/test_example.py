"""specs/fabric/ runs as written, on a lab fleet (asyncssh hosts) instead of ./lab."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from deployer.lab import LabFleet

EXAMPLE = Path(__file__).resolve().parents[2] / "specs" / "fabric"


def test_the_fabric_example_deploys_to_a_lab(lab_fleet: LabFleet, tmp_path: Path) -> None:
    copy = tmp_path / "fabric"
    shutil.copytree(EXAMPLE, copy, ignore=shutil.ignore_patterns("__pycache__"))
    spec = copy / "site.yaml"
    text = spec.read_text()
    assert "fleet: ../../lab/inventory.yaml\n" in text
    spec.write_text(text.replace("../../lab/inventory.yaml", str(lab_fleet.inventory_path)))
    done = subprocess.run(
        [sys.executable, "-m", "deployer", "push", str(spec), "--yes", "--json"],
        env={**os.environ, "DEPLOYER_DB": f"sqlite:///{tmp_path / 'state.db'}"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["status"] == "succeeded" and result["counts"]["succeeded"] == len(lab_fleet.hosts)
    for host in lab_fleet.hosts:
        app = lab_fleet.home(host.name) / "apps" / "fabric-demo"
        assert (app / "shared" / "schema").read_text() == "1.0\n"  # after_install: migrate
        assert (app / "current" / "published-at").is_file()  # start: publish (validate: check)
