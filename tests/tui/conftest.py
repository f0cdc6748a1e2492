"""Fixtures for the TUI tests: a real SQLite store per test, the scenario in it, and helpers to drive apps."""

from __future__ import annotations

import asyncio
import inspect
import itertools
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from textual.app import App
from textual.pilot import Pilot

from deployer.store import Store, open_store
from deployer.store import rollouts as store_rollouts
from tests.tui import scenario
from tui.context import Context

SIZE = (120, 40)
ASYNC_TEST_TIMEOUT = 60.0  # seconds for one Pilot test, the app and its workers included


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function) -> bool | None:
    """Run ``async def`` tests here on a fresh event loop (no asyncio plugin is installed), time-bounded."""
    if not inspect.iscoroutinefunction(pyfuncitem.obj):
        return None
    arguments = {name: pyfuncitem.funcargs[name] for name in pyfuncitem._fixtureinfo.argnames}
    asyncio.run(asyncio.wait_for(pyfuncitem.obj(**arguments), ASYNC_TEST_TIMEOUT))
    return True


@pytest.fixture
def predictable_ids(monkeypatch: pytest.MonkeyPatch) -> None:
    """Deployment ids without their random part, so snapshots are stable: d-<minute>-0001, -0002..."""
    counter = itertools.count(1)

    def new_id(now: datetime) -> str:
        return f"d-{now.astimezone(UTC):%Y%m%d-%H%M}-{next(counter):04d}"

    monkeypatch.setattr(store_rollouts, "new_deployment_id", new_id)


@pytest.fixture
def store_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A relative SQLite URL (the working directory is the test's tmp dir): the same text in every run."""
    monkeypatch.chdir(tmp_path)
    return "sqlite:///state.db"


@pytest.fixture
def tui_store(store_path: str) -> Iterator[Store]:
    with open_store(store_path) as store:
        yield store


@pytest.fixture
def story(tui_store: Store, predictable_ids: None) -> scenario.Scenario:
    return scenario.build(tui_store)


@pytest.fixture
def ctx(tui_store: Store) -> Context:
    return Context(
        store=tui_store,
        clock=scenario.fixed_clock,
        tz=UTC,
        poll_interval=0.1,
        requested_by="tester@console",
    )


def screen_text(app: App[Any]) -> str:
    """What the terminal shows, as plain text (symbols included, colours dropped)."""
    strips = app.screen._compositor.render_strips()
    return "\n".join("".join(segment.text for segment in strip).rstrip() for strip in strips)


async def wait_for(pilot: Pilot[Any], condition: Callable[[], bool], *, timeout: float = 10.0) -> None:
    """Let the app run until ``condition()`` holds; fail the test after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for the app\n{screen_text(pilot.app)}")
        await pilot.pause(0.02)
    await pilot.pause()


async def wait_in_thread(predicate: Callable[[], bool], *, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not await asyncio.to_thread(predicate):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s")
        await asyncio.sleep(0.02)
