"""Packing a release directory, taking a .tar.gz as it is, and the packing cache."""

from __future__ import annotations

import hashlib
import io
import os
import tarfile
from pathlib import Path

import pytest

from deployer.core.errors import ArtifactError
from deployer.hosts.artifact import prepare_artifact


def make_tree(root: Path) -> Path:
    (root / "bin").mkdir(parents=True)
    (root / "VERSION").write_text("1.0\n")
    (root / "bin" / "start.sh").write_text("#!/bin/sh\nexec sleep 1\n")
    (root / "bin" / "start.sh").chmod(0o755)
    (root / "link").symlink_to("VERSION")
    return root


def test_a_directory_is_packed_once_and_reproducibly(tmp_path: Path) -> None:
    tree = make_tree(tmp_path / "app")
    first = prepare_artifact(tree, tmp_path / "cache")
    assert first.sha256 == hashlib.sha256(Path(first.path).read_bytes()).hexdigest()
    assert first.size == Path(first.path).stat().st_size
    with tarfile.open(first.path) as archive:
        members = {m.name: m for m in archive.getmembers()}
    assert sorted(members) == ["VERSION", "bin", "bin/start.sh", "link"]
    assert members["bin/start.sh"].mode & 0o111
    assert members["link"].issym() and members["link"].linkname == "VERSION"
    assert {m.uid for m in members.values()} == {0}

    packed_at = Path(first.path).stat().st_mtime_ns
    again = prepare_artifact(tree, tmp_path / "cache")
    assert again == first  # from the cache, not packed again
    assert Path(again.path).stat().st_mtime_ns >= packed_at

    # Packing the same tree into another cache gives the same bytes.
    elsewhere = prepare_artifact(tree, tmp_path / "cache2")
    assert elsewhere.sha256 == first.sha256 and elsewhere.path != first.path


def test_a_copy_of_a_deployed_release_is_packed_without_the_hosts_records_of_it(tmp_path: Path) -> None:
    # They say on a host that a release is whole: unpacked early, they would say so of a
    # half-unpacked one (the driver writes its own once the release is whole).
    tree = make_tree(tmp_path / "app")
    (tree / ".deploy-sha256").write_text("0" * 64 + "\n")
    (tree / ".deploy-version").write_text("0.9\n")
    (tree / "bin" / ".deploy-version").write_text("an app's own file, deeper down\n")
    with tarfile.open(prepare_artifact(tree, tmp_path / "cache").path) as archive:
        names = sorted(archive.getnames())
    assert names == ["VERSION", "bin", "bin/.deploy-version", "bin/start.sh", "link"]


def test_a_changed_tree_is_packed_anew(tmp_path: Path) -> None:
    tree = make_tree(tmp_path / "app")
    first = prepare_artifact(tree, tmp_path / "cache")
    (tree / "VERSION").write_text("1.1\n")
    second = prepare_artifact(tree, tmp_path / "cache")
    assert second.sha256 != first.sha256


def test_a_tar_gz_is_taken_as_it_is(tmp_path: Path) -> None:
    tree = make_tree(tmp_path / "app")
    given = tmp_path / "release.tar.gz"
    with tarfile.open(given, "w:gz") as archive:
        archive.add(tree, arcname=".")
    artifact = prepare_artifact(given)
    assert (artifact.path, artifact.size) == (str(given), given.stat().st_size)
    assert artifact.sha256 == hashlib.sha256(given.read_bytes()).hexdigest()


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("missing", None, "does not exist"),
        ("notes.txt", b"hello", "is neither a directory nor a .tar.gz file"),
        ("fake.tar.gz", b"plain text", "is not a gzip file"),
    ],
)
def test_bad_artifacts_are_clear_errors(
    tmp_path: Path, name: str, content: bytes | None, message: str
) -> None:
    path = tmp_path / name
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(ArtifactError, match=message):
        prepare_artifact(path, tmp_path / "cache")


def test_a_special_file_in_the_tree_is_refused(tmp_path: Path) -> None:
    tree = make_tree(tmp_path / "app")
    os.mkfifo(tree / "pipe")
    with pytest.raises(ArtifactError, match="neither a file, a directory nor a link"):
        prepare_artifact(tree, tmp_path / "cache")


def _member(
    name: str, kind: bytes = tarfile.REGTYPE, *, linkname: str = "", mode: int = 0o644
) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.linkname, info.mode = kind, linkname, mode
    return info


def write_tarball(path: Path, *members: tarfile.TarInfo) -> Path:
    with tarfile.open(path, "w:gz") as archive:
        for member in members:
            archive.addfile(member, io.BytesIO(b"") if member.isfile() else None)
    return path


@pytest.mark.parametrize(
    ("member", "reason"),
    [
        (_member("dev/null", tarfile.CHRTYPE), "special file"),
        (_member("disk", tarfile.BLKTYPE), "special file"),
        (_member("pipe", tarfile.FIFOTYPE), "special file"),
        (_member("hard", tarfile.LNKTYPE, linkname="VERSION"), "hard link"),
        (_member("etc", tarfile.SYMTYPE, linkname="../../../etc"), "outside the app's target"),
        (_member("a/b/up", tarfile.SYMTYPE, linkname="../../../../../x"), "outside the app's target"),
        (_member("root", tarfile.SYMTYPE, linkname="/etc/passwd"), "outside the app's target"),
        (_member("zigzag", tarfile.SYMTYPE, linkname="shared/../../../.."), "outside the app's target"),
        (_member(".deploy-version"), "the host keeps its own record of a release under that name"),
        (_member("./.deploy-sha256"), "the host keeps its own record of a release under that name"),
        (_member("../escape"), "leads out of the release"),
        (_member("/abs"), "leads out of the release"),
    ],
    ids=lambda value: value.name if isinstance(value, tarfile.TarInfo) else "",
)
def test_a_tarball_member_that_is_not_plain_is_refused_by_name(
    tmp_path: Path, member: tarfile.TarInfo, reason: str
) -> None:
    given = write_tarball(tmp_path / "release.tar.gz", _member("VERSION"), member)
    with pytest.raises(ArtifactError) as caught:
        prepare_artifact(given, tmp_path / "cache")
    assert f"member {member.name!r} is refused" in str(caught.value)
    assert reason in str(caught.value)


def test_a_member_under_a_link_of_the_archive_is_refused(tmp_path: Path) -> None:
    given = write_tarball(
        tmp_path / "release.tar.gz",
        _member("shared", tarfile.SYMTYPE, linkname="../../shared"),
        _member("shared/x", tarfile.SYMTYPE, linkname="../../../../../etc"),
    )
    with pytest.raises(ArtifactError, match="'shared/x' is refused: it sits under a symbolic link"):
        prepare_artifact(given, tmp_path / "cache")


def test_links_that_stay_inside_the_target_are_taken_as_they_are(tmp_path: Path) -> None:
    given = write_tarball(
        tmp_path / "release.tar.gz",
        _member("./VERSION"),
        _member("./log", tarfile.SYMTYPE, linkname="../../shared/log"),
        _member("./a/b/cfg", tarfile.SYMTYPE, linkname="../../../../shared/cfg"),
        _member("./latest", tarfile.SYMTYPE, linkname="./VERSION"),
    )
    artifact = prepare_artifact(given, tmp_path / "cache")
    assert artifact.path == str(given)


def test_setuid_and_setgid_bits_are_dropped_from_both_kinds(tmp_path: Path) -> None:
    tree = make_tree(tmp_path / "app")
    (tree / "bin" / "start.sh").chmod(0o6755)
    packed = prepare_artifact(tree, tmp_path / "cache")
    given = write_tarball(tmp_path / "release.tar.gz", _member("VERSION"), _member("su", mode=0o4755))
    repacked = prepare_artifact(given, tmp_path / "cache")
    assert repacked.path != str(given)  # a copy without the bits; the given file is left alone
    for artifact, name in ((packed, "bin/start.sh"), (repacked, "su")):
        with tarfile.open(artifact.path) as archive:
            assert archive.getmember(name).mode == 0o755
        assert artifact.sha256 == hashlib.sha256(Path(artifact.path).read_bytes()).hexdigest()
    assert prepare_artifact(given, tmp_path / "cache") == repacked  # repacked once
