"""The processes a deployment costs the host: what the driver learns once per host about
its ln (whether it replaces `current` in one rename: GNU coreutils 8.27 on), and a new
release unpacked straight into its own directory, which the run claims with a mkdir.

Run locally (no SSH). The driver's PATH starts with shims that write each call to a log
and then run the real tool: a shim is a script (a file, as GNU's tools are), whose
``--version`` says what the test gives it.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from deployer.core.runner import Artifact, ReleaseJob
from tests.ssh.support import drive_locally, go_line, inline_artifact, job, make_artifact

SHIM = """#!/bin/sh
printf '{tool} %s\\n' "$*" >>"{log}"
[ "$1" = --version ] && {{ printf '%s\\nCopyright\\n' "{says}"; exit 0; }}
exec /bin/{tool} "$@"
"""


def _shim(directory: Path, tool: str, log: Path, says: str) -> None:
    (directory / tool).write_text(SHIM.format(tool=tool, log=log, says=says))
    (directory / tool).chmod(0o755)


def _shims(tmp_path: Path, ln_release: str | None) -> tuple[dict[str, str], Path]:
    """A PATH whose ln says it is GNU coreutils ``ln_release`` (None: a symbolic link, as
    busybox's is) and whose mv, mkdir and tar log their calls too; and the log."""
    shims, log = tmp_path / "shims", tmp_path / "calls.log"
    shims.mkdir()
    if ln_release is None:
        (shims / "ln").symlink_to("/bin/ln")
    else:
        _shim(shims, "ln", log, f"ln (GNU coreutils) {ln_release}")
    for tool in ("mv", "mkdir", "tar"):
        _shim(shims, tool, log, f"{tool} (GNU coreutils) 9.1")
    return {"PATH": f"{shims}:/usr/bin:/bin", "HOME": str(tmp_path)}, log


def _calls(log: Path, tool: str) -> list[str]:
    return [line for line in log.read_text().splitlines() if line.startswith(f"{tool} ")]


def _deploy(
    tmp_path: Path, version: str, env: dict[str, str], previous: str = "", artifact: Artifact | None = None
) -> ReleaseJob:
    artifact = artifact or make_artifact(tmp_path, version)
    push = job(str(tmp_path / "app"), version, artifact)
    lines = drive_locally(push, inline_artifact(artifact) + go_line(previous), env)
    assert lines[-2:] == ["@@done succeeded", f"@@current {version}"]
    assert (tmp_path / "app" / "current").readlink() == Path(f"releases/{version}")
    assert (tmp_path / "app" / "current" / "VERSION").read_text() == f"{version}\n"
    return push


@pytest.mark.parametrize("release", ["8.27", "9.1", "10.0"])
def test_gnu_ln_from_coreutils_8_27_switches_by_itself_asked_its_version_once_per_host(
    tmp_path: Path, release: str
) -> None:
    env, log = _shims(tmp_path, release)
    _deploy(tmp_path, "1.0", env)
    _deploy(tmp_path, "2.0", env, previous="1.0")
    app = tmp_path / "app"
    assert [line for line in log.read_text().splitlines() if line.startswith("ln ")] == [
        "ln --version",
        f"ln -sfT releases/1.0 {app}/current",
        f"ln -sfT releases/2.0 {app}/current",
    ]
    assert (app / ".deploy" / ".tool-ln").read_text() == f"yes {tmp_path}/shims/ln\n"
    assert not [p.name for p in app.iterdir() if p.name.startswith(".current-")]


@pytest.mark.parametrize("release", [None, "8.26", "8.4"], ids=["busybox-like", "8.26", "8.4"])
def test_any_other_ln_makes_a_new_link_that_mv_renames_over_current(
    tmp_path: Path, release: str | None
) -> None:
    env, log = _shims(tmp_path, release)
    first = _deploy(tmp_path, "1.0", env)
    second = _deploy(tmp_path, "2.0", env, previous="1.0")
    app = tmp_path / "app"
    calls = log.read_text().splitlines()
    switches = [line for line in calls if line.startswith("mv -T")]
    assert switches == [
        f"mv -T {app}/.current-{first.deployment_id} {app}/current",
        f"mv -T {app}/.current-{second.deployment_id} {app}/current",
    ]
    assert not any("-sfT" in line for line in calls)
    if release is None:  # told by the link alone: never run, nothing noted
        assert _calls(log, "ln") == []
        assert not (app / ".deploy" / ".tool-ln").exists()
    else:
        assert calls.count("ln --version") == 1
        assert (app / ".deploy" / ".tool-ln").read_text() == f"no {tmp_path}/shims/ln\n"


def test_another_ln_on_the_path_is_asked_again(tmp_path: Path) -> None:
    env, log = _shims(tmp_path, "8.26")
    _deploy(tmp_path, "1.0", env)
    newer = tmp_path / "newer"
    newer.mkdir()
    _shim(newer, "ln", log, "ln (GNU coreutils) 9.4")
    _deploy(tmp_path, "2.0", {**env, "PATH": f"{newer}:{env['PATH']}"}, previous="1.0")
    assert log.read_text().splitlines().count("ln --version") == 2
    assert (tmp_path / "app" / ".deploy" / ".tool-ln").read_text() == f"yes {newer}/ln\n"


def test_a_failing_ln_is_asked_its_version_again_next_time(tmp_path: Path) -> None:
    # Another ln put at the same path since (a failed call is the only sign): noted no more.
    env, log = _shims(tmp_path, "9.1")
    _deploy(tmp_path, "1.0", env)
    shim = tmp_path / "shims" / "ln"
    shim.write_text(
        f'#!/bin/sh\nprintf "ln %s\\n" "$*" >>"{log}"\n'
        '[ "$1" = --version ] && { echo "ln (GNU coreutils) 8.4"; exit 0; }\n'
        'case "$1" in -sfT) echo "ln: invalid option" >&2; exit 1 ;; esac\n'
        'exec /bin/ln "$@"\n'
    )
    app = tmp_path / "app"
    artifact = make_artifact(tmp_path, "2.0")
    failed = drive_locally(job(str(app), "2.0", artifact), inline_artifact(artifact) + go_line("1.0"), env)
    assert failed[-2:] == ["@@done failed:switch:1", "@@current 1.0"]
    assert (app / "current").readlink() == Path("releases/1.0")
    _deploy(tmp_path, "3.0", env, "1.0")  # asked again: 8.4, so ln -s and mv -T
    assert _calls(log, "ln").count("ln --version") == 2
    assert (app / ".deploy" / ".tool-ln").read_text() == f"no {shim}\n"


def test_a_new_release_is_unpacked_into_the_directory_its_run_made_nothing_renamed(tmp_path: Path) -> None:
    env, log = _shims(tmp_path, "9.1")
    _deploy(tmp_path, "1.0", env)
    _deploy(tmp_path, "2.0", env, "1.0")
    releases = tmp_path / "app" / "releases"
    assert _calls(log, "mkdir")[1:] == [f"mkdir {releases}/1.0", f"mkdir {releases}/2.0"]
    assert [call.rsplit(" ", 1)[-1] for call in _calls(log, "tar") if " -x " in call] == [
        f"{releases}/1.0",
        f"{releases}/2.0",
    ]
    assert _calls(log, "mv") == []  # the switch is ln's alone
    assert (releases / "2.0" / ".deploy-sha256").read_text().strip() != ""
    assert sorted(p.name for p in releases.iterdir()) == ["1.0", "2.0"]


def _tar_then_another_run(tmp_path: Path, before: str, after: str) -> None:
    """A tar that runs ``before``, then puts another run's whole 2.0 (content "other", a
    sha256 of its own) at releases/2.0, then runs ``after``."""
    rel = tmp_path / "app" / "releases" / "2.0"
    (tmp_path / "shims" / "tar").write_text(
        f'#!/bin/sh\nrel="{rel}"\n{before}\n'
        'mkdir "$rel" && echo other >"$rel/VERSION" && echo 2.0 >"$rel/.deploy-version"\n'
        f'echo 0123abcd >"$rel/.deploy-sha256"\n{after}\n'
    )


def _push_2_0_failing(tmp_path: Path, env: dict[str, str]) -> list[str]:
    """Push 2.0 over 1.0, which must fail at its upload and leave 1.0 live: the lines."""
    artifact = make_artifact(tmp_path, "2.0")
    app = tmp_path / "app"
    failed = drive_locally(job(str(app), "2.0", artifact), inline_artifact(artifact) + go_line("1.0"), env)
    assert failed[-2:] == ["@@done failed:upload:1", "@@current 1.0"]
    return failed


def test_a_run_that_fails_removes_its_half_release_but_never_one_that_is_no_longer_its_own(
    tmp_path: Path,
) -> None:
    # While this run's tar unpacks, another run puts a whole 2.0 in its place (it found the
    # directory half-made and rebuilt it beside it). This run's tar then fails: its
    # cleanup must leave the other run's release alone.
    app, env = tmp_path / "app", _shims(tmp_path, "9.1")[0]
    _deploy(tmp_path, "1.0", env)
    releases = app / "releases"
    _tar_then_another_run(tmp_path, 'rm -rf "$rel"', 'echo "tar: damaged" >&2; exit 2')
    _push_2_0_failing(tmp_path, env)
    assert (releases / "2.0" / "VERSION").read_text() == "other\n"
    # Without another run, the same failure takes its half release away.
    (tmp_path / "shims" / "tar").write_text('#!/bin/sh\necho "tar: damaged" >&2; exit 2\n')
    artifact = make_artifact(tmp_path, "3.0")
    failed = drive_locally(job(str(app), "3.0", artifact), inline_artifact(artifact) + go_line("1.0"), env)
    assert failed[-2:] == ["@@done failed:upload:1", "@@current 1.0"]
    assert sorted(p.name for p in releases.iterdir()) == ["1.0", "2.0"]


def test_a_half_unpacked_release_is_not_taken_when_no_artifact_comes(tmp_path: Path) -> None:
    # A push killed while unpacking 2.0; then a rollback to 2.0 from a controller that kept
    # no artifact of it: the host must not switch to the half tree.
    env, _ = _shims(tmp_path, "9.1")
    _deploy(tmp_path, "1.0", env)
    app = tmp_path / "app"
    half = app / "releases" / "2.0"
    half.mkdir()
    (half / ".deploy-sha256").write_text("unpacking d-killed 4242\n")
    (half / "VERSION").write_text("2.")
    lines = drive_locally(job(str(app), "2.0", None), go_line("1.0"), env)
    assert lines[-2:] == ["@@done failed:upload:1", "@@current 1.0"]
    assert (
        "@@error release 2.0 is on the host only half-unpacked (no .deploy-version) and no artifact was given"
        in lines
    )
    assert (app / "current").readlink() == Path("releases/1.0")


def test_a_run_whose_release_another_run_replaced_meanwhile_fails_and_leaves_it(tmp_path: Path) -> None:
    # Another run of 2.0, with other content, found this run's 2.0 half-made and renamed its
    # own over it while this run's tar went on (into the directory renamed away).
    app, env = tmp_path / "app", _shims(tmp_path, "9.1")[0]
    _deploy(tmp_path, "1.0", env)
    releases = app / "releases"
    _tar_then_another_run(tmp_path, '/bin/tar "$@" || exit; mv "$rel" "$rel.gone"', "exit 0")
    failed = _push_2_0_failing(tmp_path, env)
    assert f"@@error another deployment replaced {releases}/2.0 while this one unpacked it" in failed
    assert (releases / "2.0" / "VERSION").read_text() == "other\n"
    assert (releases / "2.0" / ".deploy-sha256").read_text() == "0123abcd\n"  # not labelled as this run's


def test_a_release_current_points_to_but_missing_appears_whole_at_once(tmp_path: Path) -> None:
    env, log = _shims(tmp_path, "9.1")
    app = tmp_path / "app"
    (app / "releases").mkdir(parents=True)
    (app / "current").symlink_to("releases/2.0")  # dangling: someone removed the release
    _deploy(tmp_path, "2.0", env)
    (move,) = _calls(log, "mv")  # built beside it, then one rename
    assert move.startswith(f"mv {app}/releases/.tmp-") and move.endswith(f" {app}/releases/2.0")
