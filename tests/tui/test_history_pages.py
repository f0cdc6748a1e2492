"""The history screen reaches every deployment: the newest page first, older ones on demand.

It used to stop at the newest 200 and call them "200 deployments" when there were 210.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from textual.pilot import Pilot
from textual.widgets import DataTable

from deployer.core.results import DeploymentStatus
from deployer.store import Store
from tests.tui import scenario
from tests.tui.conftest import SIZE, screen_text, wait_for
from tui.app import DeployerApp, ShowHistory
from tui.context import Context
from tui.screens.deployments import HISTORY_PAGE, HistoryScreen

DEPLOYMENT_COUNT = HISTORY_PAGE + 10


@pytest.fixture
def long_history(tui_store: Store) -> list[str]:
    """210 finished pushes of ``long`` in ``prod``, one host each, a minute apart; ids oldest first."""
    host = scenario.fleet(1, prefix="long")
    ids = []
    for index in range(DEPLOYMENT_COUNT):
        start = scenario.T0 - timedelta(days=1) + timedelta(minutes=index)
        deployment_id = scenario.begin(
            tui_store, host, version=f"1.{index}", previous=None, now=start, app="long"
        )
        tui_store.finish_deployment(deployment_id, DeploymentStatus.SUCCEEDED, start + timedelta(seconds=30))
        ids.append(deployment_id)
    return ids


def history_screen(app: DeployerApp) -> HistoryScreen:
    assert isinstance(app.screen, HistoryScreen)
    return app.screen


async def until_loaded(pilot: Pilot[None], app: DeployerApp) -> None:
    await wait_for(pilot, lambda: isinstance(app.screen, HistoryScreen) and app.screen.loaded)


def row_count(app: DeployerApp) -> int:
    return history_screen(app).query_one("#deployments", DataTable).row_count


async def test_the_heading_counts_them_all_and_m_loads_older_ones(
    ctx: Context, long_history: list[str]
) -> None:
    app = DeployerApp(ctx, ShowHistory("long", "prod"))
    async with app.run_test(size=SIZE) as pilot:
        await until_loaded(pilot, app)
        text = screen_text(app)
        assert f"the newest {HISTORY_PAGE} of {DEPLOYMENT_COUNT} deployments" in text
        assert row_count(app) == HISTORY_PAGE
        assert " m Older " in text

        await pilot.press("m")
        await wait_for(pilot, lambda: row_count(app) == DEPLOYMENT_COUNT)
        text = screen_text(app)
        assert f"{DEPLOYMENT_COUNT} deployments, newest first" in text and "the newest" not in text
        assert " m Older " not in text  # nothing older to load
        assert history_screen(app).views[-1].id == long_history[0]  # the very first deployment


async def test_reaching_the_last_row_loads_older_ones_and_keeps_the_cursor(
    ctx: Context, long_history: list[str]
) -> None:
    app = DeployerApp(ctx, ShowHistory("long", "prod"))
    async with app.run_test(size=SIZE) as pilot:
        await until_loaded(pilot, app)
        await pilot.press("ctrl+end")  # the last row of the first page
        await wait_for(pilot, lambda: row_count(app) == DEPLOYMENT_COUNT)
        screen = history_screen(app)
        highlighted = screen.highlighted()
        assert highlighted is not None and highlighted.id == long_history[DEPLOYMENT_COUNT - HISTORY_PAGE]
        await pilot.press("ctrl+end")
        await pilot.pause()
        last = history_screen(app).highlighted()
        assert last is not None and last.id == long_history[0]
