"""Shared pytest setup: fleets and stores are plugins, each started once per session."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

pytest_plugins: list[str] = ["tests.plugins.sshd_fleet", "tests.plugins.stores", "tests.plugins.lab_fleet"]


@pytest.fixture(autouse=True, scope="session")
def private_state_and_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Give the run a state store and an artifact cache of its own (``deploy`` and its children).

    A test that runs ``deploy`` without ``--db`` would otherwise read and migrate the
    user's own store in ``~/.local/state`` (a newer deployer's store there makes it
    fail), and pack into the user's ``~/.cache``, shared with any other run.
    """
    saved = {name: os.environ.get(name) for name in ("XDG_STATE_HOME", "XDG_CACHE_HOME")}
    os.environ["XDG_STATE_HOME"] = str(tmp_path_factory.mktemp("state-home"))
    os.environ["XDG_CACHE_HOME"] = str(tmp_path_factory.mktemp("cache-home"))
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
