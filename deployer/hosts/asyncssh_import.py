"""asyncssh, imported without running the dynamic linker's search tools.

On import, asyncssh asks ``ctypes.util.find_library`` for liboqs (sntrup761 key exchange)
and libnettle (UMAC). On Linux each question runs ``ldconfig -p``, and ``gcc`` and ``ld``
when that finds nothing, as subprocesses, a noticeable part of the wall time of
every start of ``deploy``. During that import only, the questions are answered from the
linker's cache file (/etc/ld.so.cache), which is what ``ldconfig -p`` prints: a library
it names once is found, one it does not name is not. Where that cannot be told (no
cache, several versions named, LD_LIBRARY_PATH set: the real search also looks there),
the real search runs. Import asyncssh through this module
(``from deployer.hosts.asyncssh_import import asyncssh``) in the modules imported first.
"""

from __future__ import annotations

import contextlib
import ctypes.util
import os
import re
import sys
from collections.abc import Callable, Iterator

LINKER_CACHE = "/etc/ld.so.cache"


def linker_cache() -> bytes | None:
    """The linker cache's bytes, when its answers can stand for the real search's."""
    if os.environ.get("LD_LIBRARY_PATH") or not sys.platform.startswith("linux"):
        return None
    try:
        with open(LINKER_CACHE, "rb") as cache:
            return cache.read()
    except OSError:
        return None


def cached_sonames(cache: bytes, name: str) -> set[str]:
    """The ``lib<name>.so.N`` the cache names (its paths end so): none, one, or several
    versions, among which only the real search chooses."""
    pattern = rb"/(lib" + re.escape(name.encode()) + rb"\.so(?:\.[0-9]+)*)\x00"
    found = {soname.decode() for soname in re.findall(pattern, cache)}
    versioned = found - {f"lib{name}.so"}
    return versioned or found  # ldconfig -p lists lib<name>.so.N before a dev link lib<name>.so


@contextlib.contextmanager
def _answered_from(cache: bytes) -> Iterator[None]:
    real: Callable[[str], str | None] = ctypes.util.find_library

    def find_library(name: str) -> str | None:
        found = cached_sonames(cache, name)
        if len(found) > 1:
            return real(name)
        return found.pop() if found else None

    setattr(ctypes.util, "find_library", find_library)  # noqa: B010  (a module's function, for a while)
    try:
        yield
    finally:
        setattr(ctypes.util, "find_library", real)  # noqa: B010


_cache = linker_cache() if "asyncssh" not in sys.modules else None
if _cache is not None:
    with _answered_from(_cache):
        import asyncssh
else:
    import asyncssh

__all__ = ["asyncssh"]
