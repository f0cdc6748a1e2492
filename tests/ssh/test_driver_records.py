"""What the driver leaves on a host: bounded records (``<target>/.deploy``), and the
releases listed newest first (by the probe as by the driver).

Run locally (no SSH): the driver's answers are written to its stdin before it starts.
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import replace
from pathlib import Path

import pytest

from deployer.core.runner import HostProbe
from deployer.hosts.protocol import parse_probe, probe_command
from tests.ssh.support import drive_locally, go_line, inline_artifact, job, make_artifact


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


def _ids_left(records: Path) -> set[str]:
    """The deployments with records left (dot files are the host's notes: .tool-ln, .tool-tar)."""
    return {path.name.split(".")[0] for path in records.iterdir() if not path.name.startswith(".")}


@pytest.mark.parametrize(("earlier", "kept"), [(29, 29), (30, 19)])
def test_past_30_deployments_only_the_newest_20_keep_their_records(
    tmp_path: Path, earlier: int, kept: int
) -> None:
    app = tmp_path / "app"
    ids = _old_records(app / ".deploy", earlier)
    artifact = make_artifact(tmp_path, "1.0")
    push = job(str(app), "1.0", artifact)
    lines = drive_locally(push, inline_artifact(artifact) + go_line())
    assert lines[-2:] == ["@@done succeeded", "@@current 1.0"]
    left = _ids_left(app / ".deploy")
    # This run's records stay, with the newest of the earlier ones: state and logs alike.
    assert left == {push.deployment_id, *ids[earlier - kept :]}


def test_records_of_unfinished_and_unknown_outcome_deployments_are_kept_however_old(tmp_path: Path) -> None:
    app = tmp_path / "app"
    ids = _old_records(app / ".deploy", 40)  # oldest first
    # The oldest three never finished: one still going (this test's own pid), one whose
    # driver died mid-step (an outcome only `deploy reconcile` can settle), one that had
    # just begun (an empty state). The fourth finished, but its controller lost the
    # connection: the store holds its outcome as unknown, and the job says so.
    (app / ".deploy" / f"{ids[0]}.state").write_text(f"running {os.getpid()} start\n")
    (app / ".deploy" / f"{ids[1]}.state").write_text("running 999999999 upload\n")
    (app / ".deploy" / f"{ids[2]}.state").write_text("")
    for deployment_id in ids[:3]:
        os.utime(app / ".deploy" / f"{deployment_id}.state", (1_600_000_000, 1_600_000_000))
    artifact = make_artifact(tmp_path, "1.0")
    push = replace(job(str(app), "1.0", artifact), keep_records=(ids[3], "d-not-here"))
    lines = drive_locally(push, inline_artifact(artifact) + go_line())
    assert lines[-2:] == ["@@done succeeded", "@@current 1.0"]
    left = _ids_left(app / ".deploy")
    # The newest 20 finished (this one counted), and the four the controller may still ask about.
    assert left == {push.deployment_id, *ids[-19:], *ids[:4]}
    assert (app / ".deploy" / f"{ids[0]}.upload.log").exists()  # a record is kept whole


def test_releases_are_listed_by_their_last_unpack_or_switch_and_foreign_ones_last(tmp_path: Path) -> None:
    app = tmp_path / "app"
    artifact = make_artifact(tmp_path, "1.0")
    # 1.0 is unpacked and switched to now; 0.8 and 0.9 are older releases, 0.9 the newer;
    # "manual" is a directory the driver did not make.
    drive_locally(job(str(app), "1.0", artifact), inline_artifact(artifact) + go_line())
    for age, name in ((60, "0.9"), (120, "0.8")):
        (app / "releases" / name).mkdir()
        version_file = app / "releases" / name / ".deploy-version"
        version_file.write_text(f"{name}\n")
        os.utime(version_file, (1_700_000_000 - age, 1_700_000_000 - age))
    (app / "releases" / "manual").mkdir()
    assert _probe(app).releases == ("1.0", "0.9", "0.8", "manual")


def _probe(app: Path, deployment_id: str | None = None) -> HostProbe:
    """What the probe reads of ``app`` here (and of ``deployment_id``'s journal)."""
    probed = subprocess.run(
        ["/bin/sh", "-c", probe_command(str(app), deployment_id)],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    return parse_probe("local", probed.stdout)


# Up to 16 releases are ordered by the shell's own -nt, more by one ls -t: both orders agree.
@pytest.mark.parametrize("count", [7, 16, 17, 40])
def test_releases_unpacked_in_the_same_instant_are_listed_by_name_as_ls_would(
    tmp_path: Path, count: int
) -> None:
    app = tmp_path / "app"
    mtimes = {}
    for number in range(count):
        name = f"{number % 5}.{number}"
        (app / "releases" / name).mkdir(parents=True)
        version_file = app / "releases" / name / ".deploy-version"
        version_file.write_text(f"{name}\n")
        # Three instants, so most releases tie with others; nanoseconds apart at the end.
        mtimes[name] = 1_700_000_000_000_000_000 + (number % 3) * 60_000_000_000 + (number == 1)
        os.utime(version_file, ns=(mtimes[name], mtimes[name]))
    newest_first = sorted(mtimes, key=lambda name: (-mtimes[name], name))
    assert _probe(app).releases == tuple(newest_first)


def test_a_target_that_cannot_be_made_fails_with_one_line_naming_it(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("not a directory\n")
    artifact = make_artifact(tmp_path, "1.0")
    lines = drive_locally(job(str(tmp_path / "file" / "app"), "1.0", artifact), b"")
    errors = [line for line in lines if line.startswith("@@error")]
    assert len(errors) == 1
    assert not any(line.startswith("mkdir") for line in lines)  # one reason, not one per directory
    assert str(tmp_path / "file") in errors[0]
    assert "Not a directory" in errors[0]
    assert "@@done failed:upload:1" in lines


@pytest.mark.parametrize("target", ["~/.", "{home}/./", "{link}"])
def test_the_driver_refuses_to_work_in_the_home_itself(tmp_path: Path, target: str) -> None:
    """A second line of defence behind the spec: `~/.` or a link to the home is refused."""
    home = tmp_path / "home"
    home.mkdir()
    (tmp_path / "link").symlink_to(home)
    artifact = make_artifact(tmp_path, "1.0")
    push = job(target.format(home=home, link=tmp_path / "link"), "1.0", artifact)
    env = {"HOME": str(home), "PATH": os.environ["PATH"]}
    lines = drive_locally(push, inline_artifact(artifact) + go_line(), env=env)
    assert "@@done failed:upload:2" in lines
    assert any(line.startswith("@@error") and "home directory" in line for line in lines)
    assert list(home.iterdir()) == []  # no .deploy, releases or current


def _outcome_of(app: Path, journal: str) -> str | None:
    """What the probe reads of deployment d-journal, whose journal on the host is ``journal``."""
    (app / ".deploy").mkdir(parents=True)
    (app / ".deploy" / "d-journal.state").write_text(journal)
    return _probe(app, "d-journal").outcome


@pytest.mark.parametrize(
    ("journal", "outcome"),
    [
        # Written by protocol v1's driver, before the upgrade: the same lines, no `ended`.
        ("running 999999999 upload\nrunning 999999999 start\n", "interrupted:start"),
        ("running 999999999 upload\nrunning 999999999 start\nsucceeded\n", "succeeded"),
        ("running 999999999 upload\nfailed:validate:3\n", "failed:validate:3"),
        ("running 999999999 upload\naborted:switch\n", "aborted:switch"),
        # Protocol v2: a step's end, then nothing (the host stopped between two steps).
        ("running 999999999 stop\nended 999999999 stop 0\n", "interrupted:stop"),
        # Staged only, its driver gone: nothing live changed, as if it never began.
        ("running 999999999 upload\nended 999999999 upload 0\nstaged 999999999\n", None),
        ("", "running"),  # the driver is writing its first line
    ],
)
def test_the_probe_reads_journals_of_both_protocols(
    tmp_path: Path, journal: str, outcome: str | None
) -> None:
    assert _outcome_of(tmp_path / "app", journal) == outcome


def test_a_running_driver_reads_as_running_between_its_steps_too(tmp_path: Path) -> None:
    journal = f"running {os.getpid()} start\nended {os.getpid()} start 0\n"
    assert _outcome_of(tmp_path / "app", journal) == "running"
