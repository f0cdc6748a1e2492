"""The artifact each version was deployed from, kept on the controller for rollbacks.

A rollback deploys an older version, but the spec's ``artifact:`` now holds the
newest build. Hosts that kept the old release switch back without any upload; a
host that lacks it (pruned, or new) needs the old artifact itself, so every push
keeps a hard link (or a copy) of what it sent under
``$XDG_CACHE_HOME/deployer/versions/<app>/<version>.tar.gz``.

After each deployment the app's kept artifacts are pruned (:func:`prune_kept`) to the
versions still of use: every version some environment's hosts run, and each
environment's latest good version. A file another process is sending is spared
(:func:`deployer.hosts.artifact.hold`).
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Collection
from pathlib import Path

from deployer.core.runner import Artifact
from deployer.hosts.artifact import default_cache_dir, hold, remove_unless_in_use, sha256_of


def versions_dir() -> Path:
    return default_cache_dir().parent / "versions"


def _path(app: str, version: str) -> Path:
    # app and version are validated names (no slashes), so they are safe as file names
    return versions_dir() / app / f"{version}.tar.gz"


def keep_artifact(app: str, version: str, artifact: Artifact) -> None:
    """Remember ``artifact`` as what ``version`` of ``app`` was deployed from."""
    path = _path(app, version)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}")
    with contextlib.suppress(FileNotFoundError):
        temporary.unlink()
    try:
        os.link(artifact.path, temporary)
    except OSError:  # another file system, or links not allowed: copy instead
        shutil.copyfile(artifact.path, temporary)
    os.replace(temporary, path)


def kept_artifact(app: str, version: str) -> Artifact | None:
    """The artifact ``version`` of ``app`` was last deployed from, if this machine kept it."""
    path = _path(app, version)
    if not path.is_file() or not hold(path):
        return None
    return Artifact(path=str(path), sha256=sha256_of(path), size=path.stat().st_size)


def prune_kept(app: str, keep: Collection[str]) -> list[str]:
    """Remove the kept artifacts of ``app`` whose version is not in ``keep``; the versions removed.

    Temporaries (dot-files) and files in use by some process are left alone.
    """
    removed = []
    folder = versions_dir() / app
    for path in sorted(folder.glob("*.tar.gz")) if folder.is_dir() else []:
        version = path.name.removesuffix(".tar.gz")
        if path.name.startswith(".") or version in keep:
            continue
        with contextlib.suppress(OSError):
            if remove_unless_in_use(path):
                removed.append(version)
    return removed
