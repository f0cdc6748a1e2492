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

The cache is shared by every process of the user, so any of them may trim it while
another is packing or sending. Temporaries are dot-files, which trimming never looks
at; a process holds a shared ``flock`` on each cached file it uses until it exits
(:func:`hold`), and a file is removed only under an exclusive one (:func:`remove_unless_in_use`).
"""

from __future__ import annotations

import atexit
import contextlib
import fcntl
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

from deployer.core.errors import ArtifactError
from deployer.core.runner import Artifact

CACHE_KEEP_COUNT = 20  # packed artifacts kept in the cache, newest first (unless in use)
_ATTEMPTS = 3  # packs of one key before giving up on a cache that other processes keep changing
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
# The driver's own record of a release, at its top: whether it is whole, and its version
# (deployer/hosts/remote/driver.sh). An artifact must not bring its own: a half-unpacked
# release would look whole. A directory packed is packed without them (a copy of a
# deployed release has them); a given .tar.gz holding them is refused.
RELEASE_RECORDS = frozenset({".deploy-sha256", ".deploy-version"})


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
    if name in RELEASE_RECORDS:
        return "the host keeps its own record of a release under that name; leave it out of the archive"
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
        if directory == os.fspath(root):
            filenames = [name for name in filenames if name not in RELEASE_RECORDS]
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
    """The artifact cached under ``key``, made with ``write`` when not there yet; held
    (see :func:`hold`) so that no process trims it while this one sends it."""
    packed = cache_dir / f"{key}.tar.gz"
    recorded = cache_dir / f"{key}.sha256"
    for _ in range(_ATTEMPTS):
        with contextlib.suppress(OSError, ValueError):
            sha256 = recorded.read_text().strip()
            if len(sha256) == 64 and hold(packed):
                os.utime(packed)  # newest use first when the cache is trimmed
                return Artifact(path=str(packed), sha256=sha256, size=packed.stat().st_size)
        cache_dir.mkdir(parents=True, exist_ok=True)
        made = _pack(cache_dir, packed, write)
        if not hold(packed):
            continue  # trimmed between the link and the lock: pack again
        # Another process's pack got there first: the same input packs to the same bytes.
        sha256 = made if made is not None else sha256_of(packed)
        _replace_text(recorded, sha256 + "\n")
        _trim_cache(cache_dir)
        return Artifact(path=str(packed), sha256=sha256, size=packed.stat().st_size)
    raise ArtifactError(f"the artifact cache {cache_dir} keeps losing {packed.name}; is it being cleaned?")


def _pack(cache_dir: Path, packed: Path, write: Callable[[BinaryIO], None]) -> str | None:
    """Make ``packed`` through a temporary dot-file (which trims never touch): its sha256,
    or None when another process made it meanwhile.

    Linked, not renamed, into place: a rename would replace the file another process
    holds and sends with one nobody holds, which a trim could then remove.
    """
    descriptor, temporary = tempfile.mkstemp(dir=cache_dir, prefix=".packing-", suffix=".tar.gz")
    try:
        with os.fdopen(descriptor, "wb") as raw:
            write(raw)
        sha256 = sha256_of(Path(temporary))
        try:
            os.link(temporary, packed)
        except FileExistsError:
            return None
        except OSError:  # a file system without hard links: renamed into place instead
            os.replace(temporary, packed)
        return sha256
    finally:
        with contextlib.suppress(OSError):
            os.unlink(temporary)


def _replace_text(path: Path, text: str) -> None:
    """Write ``path`` whole or not at all: a reader never sees half a sha256."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}")
    temporary.write_text(text)
    os.replace(temporary, path)


# The cached files this process uses, open with a shared lock until it exits.
_held: dict[Path, BinaryIO] = {}


@atexit.register
def _release_held() -> None:
    """Close the held files as the process ends (their locks go with them either way), so
    the interpreter does not warn about files it closes itself."""
    for file in _held.values():
        file.close()
    _held.clear()


def hold(path: Path) -> bool:
    """Keep ``path`` from being removed by any process's trim until this one exits.

    False when it is not there (any more): removed before the lock was had.
    """
    if path in _held:
        return True
    try:
        file = path.open("rb")
    except FileNotFoundError:
        return False
    fcntl.flock(file, fcntl.LOCK_SH)  # waits out a removal under way
    if not _is_still(path, file):
        file.close()
        return False
    _held[path] = file
    return True


def remove_unless_in_use(path: Path, *companions: Path) -> bool:
    """Remove ``path`` (and its ``companions``) unless some process holds it; whether removed."""
    try:
        file = path.open("rb")
    except FileNotFoundError:
        return False
    with file:
        try:
            fcntl.flock(file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False  # in use (by this process too: flock knows open files, not processes)
        if not _is_still(path, file):
            return False
        for doomed in (path, *companions):
            with contextlib.suppress(FileNotFoundError):
                doomed.unlink()
    return True


def _is_still(path: Path, file: BinaryIO) -> bool:
    """Whether ``path`` still names the file ``file`` has open (not removed nor replaced)."""
    try:
        return os.stat(path).st_ino == os.fstat(file.fileno()).st_ino
    except FileNotFoundError:
        return False


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
    """Remove all but the newest :data:`CACHE_KEEP_COUNT` packed artifacts, sparing those in use.

    Other processes pack, use and trim at the same moment: their temporaries (dot-files)
    are not looked at, and a file that vanishes while this looks is passed over.
    """
    found: list[tuple[float, Path]] = []
    for path in cache_dir.glob("*.tar.gz"):
        if path.name.startswith("."):
            continue
        with contextlib.suppress(FileNotFoundError):
            found.append((path.stat().st_mtime, path))
    found.sort(reverse=True)
    for _, old in found[CACHE_KEEP_COUNT:]:
        with contextlib.suppress(OSError):
            remove_unless_in_use(old, old.with_name(old.name.removesuffix(".tar.gz") + ".sha256"))
