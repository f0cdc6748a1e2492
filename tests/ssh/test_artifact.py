"""Packing a release directory, taking a .tar.gz as it is, and the packing cache."""

from __future__ import annotations

import hashlib
import os
import tarfile
from pathlib import Path

import pytest

from deployer.artifact import prepare_artifact
from deployer.errors import ArtifactError


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
