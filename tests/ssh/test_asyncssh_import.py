"""Importing asyncssh through deployer.hosts.asyncssh_import starts no process, and finds what
the real library search would."""

from __future__ import annotations

import ctypes.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

from deployer.hosts.asyncssh_import import cached_sonames, linker_cache

PROGRAM = """
import sys
started = []
SPAWNING = ("subprocess.Popen", "os.posix_spawn", "os.exec", "os.fork")
sys.addaudithook(lambda event, args: started.append(event) if event in SPAWNING else None)
import deployer.hosts.ssh
import asyncssh
print(len(started), asyncssh.__name__)
"""


def _processes_started_by_the_import(env: dict[str, str]) -> int:
    done = subprocess.run(
        [sys.executable, "-W", "ignore", "-c", PROGRAM], capture_output=True, text=True, timeout=60, env=env
    )
    assert done.returncode == 0, done.stderr
    count, name = done.stdout.split()
    assert name == "asyncssh"
    return int(count)


CACHE = linker_cache()


@pytest.mark.skipif(CACHE is None, reason="no linker cache here")
def test_no_linker_search_runs_while_asyncssh_is_imported() -> None:
    env = {key: value for key, value in os.environ.items() if key != "LD_LIBRARY_PATH"}
    assert _processes_started_by_the_import(env) == 0


def test_with_ld_library_path_set_the_real_search_runs(tmp_path: Path) -> None:
    # LD_LIBRARY_PATH may hold a liboqs the cache does not know: only the real search can tell.
    env = {**os.environ, "LD_LIBRARY_PATH": str(tmp_path)}
    assert _processes_started_by_the_import(env) > 0


@pytest.mark.skipif(CACHE is None, reason="no linker cache here")
@pytest.mark.parametrize("name", ["nettle", "libnettle-6", "oqs", "liboqs", "c", "z", "ssl", "ffi"])
def test_the_linker_cache_answers_as_the_real_search_does(name: str) -> None:
    assert CACHE is not None
    found = cached_sonames(CACHE, name)
    if len(found) <= 1:  # several: the cache cannot tell, and the real search is asked
        assert (found.pop() if found else None) == ctypes.util.find_library(name)
