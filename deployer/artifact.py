"""The artifact a deployment sends: a directory packed once into a .tar.gz, or a given one.

A given .tar.gz is checked member by member before any host is touched
(:func:`member_problem`): only regular files, directories and symbolic links that stay
inside the app's target directory. Setuid and setgid bits never reach a host: a
directory is packed without them, and a given .tar.gz that has any is repacked
without them (cached, like a packed directory).

A directory is packed reproducibly (sorted entries, owner 0, gzip header time 0), so the
same files always give the same sha256 and a host that already holds the release is not
sent it again. The packed file is cached under ``~/.cache/deployer/artifacts`` keyed by a
fingerprint of the tree (paths, modes, sizes, mtimes): packing happens once per change,
not once per deployment or per host.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import os
import posixpath
import stat
import tarfile
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

from deployer.errors import ArtifactError
from deployer.runner import Artifact

CACHE_KEEP_COUNT = 20  # packed artifacts kept in the cache, newest first
_CHUNK = 1 << 20
_GZIP_MAGIC = b"\x1f\x8b"


def default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "deployer" / "artifacts"


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        while chunk := file.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def prepare_artifact(
    source: str | os.PathLike[str], cache_dir: str | os.PathLike[str] | None = None
) -> Artifact:
    """The artifact for ``source``: a ``.tar.gz``/``.tgz`` as it is, or a directory packed.

    Raises :class:`ArtifactError` when ``source`` is missing, unreadable, or neither.
    """
    path = Path(source).expanduser()
    problem = artifact_problem(path)
    if problem is not None:
        raise ArtifactError(problem)
    cache = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    try:
        return _packed(path, cache) if path.is_dir() else _checked_tarball(path, cache)
    except OSError as error:
        raise ArtifactError(f"cannot read artifact {path}: {error.strerror or error}") from None


def artifact_problem(source: str | os.PathLike[str]) -> str | None:
    """Why ``source`` cannot be an artifact, told without packing it (``deploy plan``,
    ``deploy check``); None when it is a readable directory or a gzip file named .tar.gz/.tgz.

    A directory's files are read only when it is packed, so one of them unreadable is
    found then.
    """
    path = Path(source).expanduser()
    try:
        if path.is_dir():
            os.scandir(path).close()  # PermissionError for a directory we cannot list
            return None
        if path.is_file() and path.name.endswith((".tar.gz", ".tgz")):
            with path.open("rb") as file:
                return None if file.read(2) == _GZIP_MAGIC else f"artifact {path} is not a gzip file"
    except OSError as error:
        return f"cannot read artifact {path}: {error.strerror or error}"
    if not path.exists():
        return f"artifact {path} does not exist"
    return f"artifact {path} is neither a directory nor a .tar.gz file"


# Where a release's files sit under the app's target directory: releases/<version>/.
_RELEASE_DEPTH = 2
_SET_ID_BITS = stat.S_ISUID | stat.S_ISGID


def member_problem(member: tarfile.TarInfo, links: frozenset[str]) -> str | None:
    """Why ``member`` of a given .tar.gz may not be unpacked on a host, or None.

    Allowed: a regular file, a directory, and a symbolic link that resolves inside the
    app's target directory. The release is unpacked in ``<target>/releases/<version>/``,
    so a link may climb two levels above its own directory and no more: Capistrano's
    ``log -> ../../shared/log`` stays inside, ``etc -> ../../../etc`` does not. Its
    ``..`` must all come first, and no member may sit under a link (``links``: the
    archive's links' names), so every climb starts from a real directory of the release.
    """
    name = posixpath.normpath(member.name)
    parts = name.split("/")
    if name.startswith("/") or ".." in parts:
        return "its name leads out of the release"
    if any("/".join(parts[:end]) in links for end in range(1, len(parts))):
        return "it sits under a symbolic link of the archive"
    if member.isfile() or member.isdir():
        return None
    if not member.issym():
        kind = "a hard link" if member.islnk() else "a device, FIFO or other special file"
        return f"it is {kind}: only files, directories and symbolic links are deployed"
    return _link_problem(parts[:-1], member.linkname)


def _link_problem(directory: list[str], linkname: str) -> str | None:
    """Why a link in ``directory`` (of the release) pointing to ``linkname`` leads out of
    the target directory, or None."""
    outside = f"it is a symbolic link to {linkname!r}, outside the app's target directory"
    if not linkname or linkname.startswith("/"):
        return outside
    words = [word for word in linkname.split("/") if word not in ("", ".")]
    climbs = 0
    while climbs < len(words) and words[climbs] == "..":
        climbs += 1
    if ".." in words[climbs:] or climbs > _RELEASE_DEPTH + len(directory):
        return outside
    return None


def _checked_tarball(path: Path, cache_dir: Path) -> Artifact:
    """A given .tar.gz, every member checked; repacked without setuid/setgid bits if it has any."""
    links: set[str] = set()
    set_id = False
    try:
        with tarfile.open(path, "r:gz") as archive:
            for member in archive:
                problem = member_problem(member, frozenset(links))
                if problem is not None:
                    raise ArtifactError(f"artifact {path}: member {member.name!r} is refused: {problem}")
                if member.issym():
                    links.add(posixpath.normpath(member.name))
                set_id = set_id or bool(member.mode & _SET_ID_BITS)
    except (tarfile.TarError, EOFError, gzip.BadGzipFile) as error:
        raise ArtifactError(f"artifact {path} is not a readable .tar.gz: {error}") from None
    sha256 = sha256_of(path)
    if not set_id:
        return Artifact(path=str(path), sha256=sha256, size=path.stat().st_size)
    return _cached(cache_dir, f"{sha256}-no-set-id", lambda raw: _repack_without_set_id(path, raw))


def _repack_without_set_id(path: Path, raw: BinaryIO) -> None:
    with (
        tarfile.open(path, "r:gz") as source,
        gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=6) as zipped,
        tarfile.open(fileobj=zipped, mode="w", format=tarfile.GNU_FORMAT) as archive,
    ):
        for member in source:
            member.mode &= ~_SET_ID_BITS
            archive.addfile(member, source.extractfile(member) if member.isfile() else None)


def _entries(root: Path) -> list[tuple[str, os.stat_result]]:
    """Every path under ``root`` (relative, sorted) with its lstat; refuses special files."""
    found: list[tuple[str, os.stat_result]] = []
    for directory, dirnames, filenames in os.walk(root, onerror=_raise):
        dirnames.sort()
        for name in [*dirnames, *sorted(filenames)]:
            full = os.path.join(directory, name)
            info = os.lstat(full)
            if not (stat.S_ISREG(info.st_mode) or stat.S_ISDIR(info.st_mode) or stat.S_ISLNK(info.st_mode)):
                raise ArtifactError(
                    f"artifact {root} holds {full}, which is neither a file, a directory nor a link"
                )
            found.append((os.path.relpath(full, root), info))
    found.sort(key=lambda entry: entry[0])
    return found


def _raise(error: OSError) -> None:
    raise error


def _fingerprint(root: Path, entries: list[tuple[str, os.stat_result]]) -> str:
    digest = hashlib.sha256(b"no-set-id\n")  # packs made before set-id bits were dropped differ
    for relative, info in entries:
        link = os.readlink(root / relative) if stat.S_ISLNK(info.st_mode) else ""
        digest.update(f"{relative}\0{info.st_mode}\0{info.st_size}\0{info.st_mtime_ns}\0{link}\n".encode())
    return digest.hexdigest()


def _packed(root: Path, cache_dir: Path) -> Artifact:
    entries = _entries(root)
    return _cached(cache_dir, _fingerprint(root, entries), lambda raw: _write_tar_gz(root, entries, raw))


def _cached(cache_dir: Path, key: str, write: Callable[[BinaryIO], None]) -> Artifact:
    """The artifact cached under ``key``, made with ``write`` when not there yet."""
    packed = cache_dir / f"{key}.tar.gz"
    recorded = cache_dir / f"{key}.sha256"
    with contextlib.suppress(OSError, ValueError):
        sha256 = recorded.read_text().strip()
        if len(sha256) == 64 and packed.is_file():
            os.utime(packed)  # newest use first when the cache is trimmed
            return Artifact(path=str(packed), sha256=sha256, size=packed.stat().st_size)
    cache_dir.mkdir(parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(dir=cache_dir, prefix=".packing-", suffix=".tar.gz")
    try:
        with os.fdopen(descriptor, "wb") as raw:
            write(raw)
        sha256 = sha256_of(Path(temporary))
        os.replace(temporary, packed)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
    recorded.write_text(sha256 + "\n")
    _trim_cache(cache_dir)
    return Artifact(path=str(packed), sha256=sha256, size=packed.stat().st_size)


def _write_tar_gz(root: Path, entries: list[tuple[str, os.stat_result]], raw: BinaryIO) -> None:
    # mtime=0 and no file name in the gzip header: the same tree packs to the same bytes.
    with (
        gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=6) as zipped,
        tarfile.open(fileobj=zipped, mode="w", format=tarfile.GNU_FORMAT) as archive,
    ):
        for relative, _ in entries:
            info = archive.gettarinfo(str(root / relative), arcname=relative)
            info.uid = info.gid = 0
            info.mode &= ~_SET_ID_BITS
            info.uname = info.gname = ""
            if info.isreg():
                with (root / relative).open("rb") as file:
                    archive.addfile(info, file)
            else:
                archive.addfile(info)


def _trim_cache(cache_dir: Path) -> None:
    packed = sorted(cache_dir.glob("*.tar.gz"), key=lambda path: path.stat().st_mtime, reverse=True)
    for old in packed[CACHE_KEEP_COUNT:]:
        with contextlib.suppress(OSError):
            old.unlink()
            old.with_name(old.name.removesuffix(".tar.gz") + ".sha256").unlink()
