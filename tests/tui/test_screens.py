"""Overview, history and versions against a real store."""

from __future__ import annotations

import pytest
from textual.widgets import DataTable

from deployer.core.errors import NotFound
from deployer.store import Store
from tests.tui import scenario
from tests.tui.conftest import SIZE, screen_text, wait_for
from tui.app import DeployerApp, ShowOverview, ShowVersions, resolve_watch_target
from tui.context import Context
from tui.screens.deployments import HistoryScreen, OverviewScreen
from tui.screens.live import LiveScreen
from tui.screens.versions import VersionsScreen


def lines_with(text: str, needle: str) -> list[str]:
    return [line for line in text.splitlines() if needle in line]


async def test_overview_then_history_newest_first_then_a_frozen_deployment(
    ctx: Context, story: scenario.Scenario
) -> None:
    app = DeployerApp(ctx, ShowOverview())
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, OverviewScreen) and app.screen.loaded)
        text = screen_text(app)
        assert "! halted" in lines_with(text, "staging")[0]
        assert "▶ running" in lines_with(text, "shop")[0]

        await pilot.press("down", "h")
        await wait_for(pilot, lambda: isinstance(app.screen, HistoryScreen) and app.screen.loaded)
        text = screen_text(app)
        assert "History of shop in prod  3 deployments" in text
        rows = [line for line in text.splitlines() if line.startswith(" 2026-")]
        assert [row.split()[4:7] for row in rows] == [
            ["1.1", "→", "1.2"],
            ["1.0", "→", "1.1"],
            ["(new)", "→", "1.0"],
        ]
        assert "bob" in rows[1] and "✓ succeeded" in rows[1] and "✓30" in rows[1]

        await pilot.press("down", "enter")
        await wait_for(pilot, lambda: isinstance(app.screen, LiveScreen) and app.screen.polls_received > 0)
        screen = app.screen
        assert isinstance(screen, LiveScreen)
        assert screen.deployment_id == story.previous_ids[1]
        text = screen_text(app)
        assert "✓ SUCCEEDED" in text and "1.0 → 1.1" in text and "wave 5 of 5" in text
        assert "Pause" not in text and "Abort" not in text  # frozen: no controls offered

        await pilot.press("escape")
        await wait_for(pilot, lambda: isinstance(app.screen, HistoryScreen))
        await pilot.press("escape")
        await wait_for(pilot, lambda: isinstance(app.screen, OverviewScreen))
        await pilot.press("escape")  # the first screen stays
        await pilot.pause()
        assert isinstance(app.screen, OverviewScreen)


async def test_versions_now_and_at_moments_typed_by_the_user(ctx: Context, story: scenario.Scenario) -> None:
    app = DeployerApp(ctx, ShowVersions("shop", "prod"))

    def screen() -> VersionsScreen:
        assert isinstance(app.screen, VersionsScreen)
        return app.screen

    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: screen().loaded and screen().version is not None)
        text = screen_text(app)
        assert "now (2026-11-27 18:12:34)  30 hosts with a known version" in text
        assert [share.version for share in screen().shares] == ["1.1", "1.2"]
        assert [share.host_count for share in screen().shares] == [18, 12]
        await wait_for(pilot, lambda: "18 hosts run 1.1 now" in screen_text(app))

        await pilot.press("down")  # the hosts of the version under the cursor
        await wait_for(pilot, lambda: "12 hosts run 1.2 now" in screen_text(app))
        assert "web-07" in screen_text(app)  # failed its validate after the switch: it runs 1.2

        await pilot.press("t", "3", "d", "enter")
        await wait_for(pilot, lambda: "30 hosts run 1.0 at 2026-11-24 18:12:34" in screen_text(app))
        assert "(3d 0h ago)" in screen_text(app)

        await pilot.press("t", *"2026-11-25 18:05", "enter")
        await wait_for(pilot, lambda: getattr(screen().at, "day", None) == 25)
        counts = {share.version: share.host_count for share in screen().shares}
        # Host i of the 1.1 push started at 18:00:00 + 20i s and switched 24 s later (its
        # sixth 4 s step): 20i + 24 <= 300 for i = 0..13, so 14 hosts ran 1.1 at 18:05.
        assert counts == {"1.0": 16, "1.1": 14}

        await pilot.press("t", *"3 months", "enter")
        await wait_for(pilot, lambda: "months and years vary in length" in screen_text(app))
        moment = screen().at
        assert moment is not None and moment.day == 25  # the last good moment stays


async def test_versions_of_an_unknown_app_say_there_is_nothing(
    ctx: Context, story: scenario.Scenario
) -> None:
    app = DeployerApp(ctx, ShowVersions("nope", "prod"))
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, VersionsScreen) and app.screen.loaded)
        assert "no host ran a recorded version at that moment" in screen_text(app)
        assert app.screen.query_one("#versions", DataTable).row_count == 0


def test_watch_without_an_id_attaches_to_the_running_deployment(
    tui_store: Store, story: scenario.Scenario
) -> None:
    assert resolve_watch_target(tui_store, None) == story.running_id
    assert resolve_watch_target(tui_store, story.api_id) == story.api_id
    with pytest.raises(NotFound, match="no deployment d-nope"):
        resolve_watch_target(tui_store, "d-nope")


def test_watch_with_an_empty_store_says_so(tui_store: Store) -> None:
    with pytest.raises(NotFound, match=r"no deployments recorded in sqlite:///state\.db"):
        resolve_watch_target(tui_store, None)
