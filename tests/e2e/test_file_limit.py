"""A push under a low open-file limit: its waves run in parts, said plainly; no host fails."""

from __future__ import annotations

import json
import resource
import subprocess
import sys
from pathlib import Path

from deployer.hosts.file_limits import RESERVED_FILES
from deployer.lab import LabFleet
from tests.e2e.support import E2EFleet, make_app


def test_a_wave_larger_than_the_open_file_limit_allows_runs_in_parts(
    lab_fleet: LabFleet, tmp_path: Path
) -> None:
    fleet = E2EFleet("lab", tuple(lab_fleet.hosts), lab_fleet.inventory_path, lab_fleet.home)
    app = make_app(tmp_path, fleet, f"sqlite:///{tmp_path / 'state.db'}", "fdapp", batch="100%")
    capacity = 5
    limit = RESERVED_FILES + capacity

    def low_limit() -> None:  # soft and hard: deploy cannot raise it
        resource.setrlimit(resource.RLIMIT_NOFILE, (limit, limit))

    done = subprocess.run(
        [sys.executable, "-m", "deployer", "push", str(app.spec), "--yes", "--json"],
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "DEPLOYER_DB": app.db_url},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        preexec_fn=low_limit,
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["status"] == "succeeded" and result["counts"]["succeeded"] == len(lab_fleet.hosts)
    assert (
        f"note: the open-file limit lets {capacity} hosts hold a connection at once, fewer than the "
        f"{len(lab_fleet.hosts)} of the largest wave" in done.stderr
    )
    assert "Traceback" not in done.stderr
    assert all(app.current(host.name) == "1.0" for host in lab_fleet.hosts)
