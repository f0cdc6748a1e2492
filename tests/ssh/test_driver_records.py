"""The driver's records on a host (``<target>/.deploy``) stay bounded.

Run locally (no SSH): the driver's answers are written to its stdin before it starts.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.ssh.support import drive_locally, inline_artifact, job, make_artifact


def _old_records(records: Path, count: int) -> list[str]:
    """``count`` earlier deployments' records (a state file and a log each), oldest first."""
    records.mkdir(parents=True)
    ids = [f"d-old-{number:02d}" for number in range(count)]
    for age, deployment_id in enumerate(reversed(ids), start=1):
        for suffix in ("state", "upload.log"):
            path = records / f"{deployment_id}.{suffix}"
            path.write_text("succeeded\n")
            os.utime(path, (1_700_000_000 - age * 60, 1_700_000_000 - age * 60))
    return ids


@pytest.mark.parametrize(("earlier", "kept"), [(29, 29), (30, 19)])
def test_past_30_deployments_only_the_newest_20_keep_their_records(
    tmp_path: Path, earlier: int, kept: int
) -> None:
    app = tmp_path / "app"
    ids = _old_records(app / ".deploy", earlier)
    artifact = make_artifact(tmp_path, "1.0")
    push = job(str(app), "1.0", artifact)
    lines = drive_locally(push, b"go\n" + inline_artifact(artifact) + b"go\n")
    assert lines[-2:] == ["@@done succeeded", "@@current 1.0"]
    left = {path.name.split(".")[0] for path in (app / ".deploy").iterdir()}
    # This run's records stay, with the newest of the earlier ones: state and logs alike.
    assert left == {push.deployment_id, *ids[earlier - kept :]}
