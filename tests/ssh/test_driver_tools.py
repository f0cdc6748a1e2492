"""What the driver learns once per host about its tools, to spare a process each time:
whether ln replaces `current` in one rename (GNU coreutils 8.27 on), whether tar can make
the release's directory itself (GNU tar).

Run locally (no SSH). The driver's PATH starts with shims that write each call to a log
and then run the real tool: a shim is a script (a file, as GNU's tools are), whose
``--version`` says what the test gives it.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from deployer.core.runner import Artifact, ReleaseJob
from deployer.hosts.artifact import prepare_artifact
from tests.ssh.support import drive_locally, go_line, inline_artifact, job, make_artifact

SHIM = """#!/bin/sh
printf '{tool} %s\\n' "$*" >>"{log}"
[ "$1" = --version ] && {{ printf '%s\\nCopyright\\n' "{says}"; exit 0; }}
exec /bin/{tool} "$@"
"""


def _shim(directory: Path, tool: str, log: Path, says: str) -> None:
    (directory / tool).write_text(SHIM.format(tool=tool, log=log, says=says))
    (directory / tool).chmod(0o755)


def _shims(
    tmp_path: Path, ln_release: str | None, tar_says: str | None = "tar (GNU tar) 1.34"
) -> tuple[dict[str, str], Path]:
    """A PATH whose ln says it is GNU coreutils ``ln_release`` and whose tar says
    ``tar_says`` (None: a symbolic link, as busybox's are), and the log of the calls."""
    shims, log = tmp_path / "shims", tmp_path / "calls.log"
    shims.mkdir()
    for tool, says in (("ln", ln_release and f"ln (GNU coreutils) {ln_release}"), ("tar", tar_says)):
        if says is None:
            (shims / tool).symlink_to(f"/bin/{tool}")
        else:
            _shim(shims, tool, log, says)
    _shim(shims, "mv", log, "mv (GNU coreutils) 9.1")
    _shim(shims, "mkdir", log, "mkdir (GNU coreutils) 9.1")
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


def test_gnu_tar_makes_the_release_directory_itself_links_and_all(tmp_path: Path) -> None:
    env, log = _shims(tmp_path, "9.1")
    _deploy(tmp_path, "1.0", env)  # the first deployment makes its directories in one mkdir
    source = tmp_path / "linked"
    (source / "lib").mkdir(parents=True)
    (source / "VERSION").write_text("2.0\n")
    (source / "lib" / "data").write_text("shared\n")
    (source / "hard").hardlink_to(source / "lib" / "data")
    (source / "soft").symlink_to("lib/data")
    _deploy(tmp_path, "2.0", env, "1.0", prepare_artifact(source, tmp_path / "cache"))
    _deploy(tmp_path, "3.0", env, "2.0")
    app = tmp_path / "app"
    assert len(_calls(log, "mkdir")) == 1
    tars = _calls(log, "tar")
    assert tars[0].endswith(f"-C {app}/releases/1.0")
    assert tars[1] == "tar --version"
    assert tars[2].endswith(f"-C {app}/releases --transform s|^|2.0/|S")
    assert tars[3].endswith(f"-C {app}/releases --transform s|^|3.0/|S") and len(tars) == 4
    assert (app / ".deploy" / ".tool-tar").read_text() == f"yes {tmp_path}/shims/tar\n"
    two = app / "releases" / "2.0"
    assert (two / "hard").read_text() == "shared\n" and (two / "hard").stat().st_ino == (
        two / "lib" / "data"
    ).stat().st_ino
    assert (two / "soft").readlink() == Path("lib/data")
    assert oct((two).stat().st_mode & 0o777) == oct((app / "releases" / "1.0").stat().st_mode & 0o777)


@pytest.mark.parametrize(
    "tar_says", [None, "bsdtar 3.7.2 - libarchive 3.7.2"], ids=["busybox-like", "bsdtar"]
)
def test_another_tar_unpacks_into_a_directory_made_by_mkdir(tmp_path: Path, tar_says: str | None) -> None:
    env, log = _shims(tmp_path, "9.1", tar_says)
    _deploy(tmp_path, "1.0", env)
    _deploy(tmp_path, "2.0", env, "1.0")
    _deploy(tmp_path, "3.0", env, "2.0")
    app = tmp_path / "app"
    assert _calls(log, "mkdir")[1:] == [f"mkdir {app}/releases/2.0", f"mkdir {app}/releases/3.0"]
    assert not any("--transform" in line for line in log.read_text().splitlines())
    assert (app / "releases" / "3.0" / "VERSION").read_text() == "3.0\n"


def test_a_version_sed_could_misread_is_unpacked_into_a_directory_made_by_mkdir(tmp_path: Path) -> None:
    env, log = _shims(tmp_path, "9.1")
    _deploy(tmp_path, "1.0", env)
    _deploy(tmp_path, "2.0|&x", env, "1.0")
    app = tmp_path / "app"
    assert _calls(log, "mkdir")[1:] == [f"mkdir {app}/releases/2.0|&x"]
    assert (app / "releases" / "2.0|&x" / "VERSION").read_text() == "2.0|&x\n"


def test_a_tool_replaced_since_it_was_asked_is_asked_again_after_it_fails(tmp_path: Path) -> None:
    env, log = _shims(tmp_path, "9.1")
    _deploy(tmp_path, "1.0", env)
    _deploy(tmp_path, "2.0", env, "1.0")  # GNU tar noted at its path
    shim = tmp_path / "shims" / "tar"
    shim.write_text(
        f'#!/bin/sh\nprintf "tar %s\\n" "$*" >>"{log}"\n'
        '[ "$1" = --version ] && { echo "bsdtar 3.7.2 - libarchive 3.7.2"; exit 0; }\n'
        'case "$*" in *--transform*) echo "tar: Option --transform is not supported" >&2; exit 1 ;; esac\n'
        'exec /bin/tar "$@"\n'
    )
    app = tmp_path / "app"
    artifact = make_artifact(tmp_path, "3.0")
    failed = drive_locally(job(str(app), "3.0", artifact), inline_artifact(artifact) + go_line("2.0"), env)
    assert failed[-2:] == ["@@done failed:upload:1", "@@current 2.0"]
    assert f"@@error cannot unpack the artifact into {app}/releases/3.0" in failed
    assert not (app / "releases" / "3.0").exists()
    _deploy(tmp_path, "3.0", env, "2.0")  # asked again: not GNU, so mkdir and tar -C
    assert _calls(log, "tar").count("tar --version") == 2
    assert (app / ".deploy" / ".tool-tar").read_text() == f"no {shim}\n"
