"""The look of each screen at 120x40 with fixed data and a fixed clock (pytest-textual-snapshot).

Update after a deliberate change with ``pytest tests/tui/test_snapshots.py --snapshot-update``
and look at the report before committing the new SVGs.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from textual.pilot import Pilot
from textual.widgets import Input

from tests.tui import scenario
from tests.tui.conftest import SIZE, wait_for
from tui.app import DeployerApp, Opening, ShowDeployment, ShowHistory, ShowOverview, ShowVersions
from tui.context import Context
from tui.screens.deployments import HistoryScreen, OverviewScreen
from tui.screens.dialogs import ConfirmScreen, HelpScreen
from tui.screens.host import HostScreen
from tui.screens.live import LiveScreen
from tui.screens.versions import VersionsScreen

SnapCompare = Callable[..., bool]


def ready(condition: Callable[[DeployerApp], bool], *keys: str) -> Callable[[Pilot[Any]], Awaitable[None]]:
    """Wait for the store's data on screen, press ``keys`` (each waited for), and stop cursors blinking."""

    async def run_before(pilot: Pilot[Any]) -> None:
        app = pilot.app
        assert isinstance(app, DeployerApp)
        for key in keys:
            await wait_for(pilot, lambda: _settled(app))
            await pilot.press(key)
        await wait_for(pilot, lambda: condition(app))
        for field in app.screen.query(Input):
            field.cursor_blink = False
        await pilot.pause(0.1)

    return run_before


def _settled(app: DeployerApp) -> bool:
    screen = app.screen
    return not isinstance(screen, LiveScreen) or screen.polls_received > 0


def live_loaded(app: DeployerApp) -> bool:
    return isinstance(app.screen, LiveScreen) and app.screen.polls_received > 0


def snap(snap_compare: SnapCompare, ctx: Context, opening: Opening, run_before: Any) -> bool:
    return snap_compare(DeployerApp(ctx, opening), terminal_size=SIZE, run_before=run_before)


def test_live_deployment(snap_compare: SnapCompare, ctx: Context, story: scenario.Scenario) -> None:
    opening = ShowDeployment(story.running_id, failure_budget=3)
    assert snap(snap_compare, ctx, opening, ready(live_loaded))


def test_live_deployment_filtered_to_failures(
    snap_compare: SnapCompare, ctx: Context, story: scenario.Scenario
) -> None:
    def filtered(app: DeployerApp) -> bool:
        return live_loaded(app) and len(app.screen.shown_hosts()) == 2  # type: ignore[attr-defined]

    keys = ("slash", *"failures", "enter")
    assert snap(snap_compare, ctx, ShowDeployment(story.running_id, failure_budget=2), ready(filtered, *keys))


def test_abort_asks_first(snap_compare: SnapCompare, ctx: Context, story: scenario.Scenario) -> None:
    def asking(app: DeployerApp) -> bool:
        return isinstance(app.screen, ConfirmScreen)

    assert snap(snap_compare, ctx, ShowDeployment(story.running_id), ready(asking, "a"))


def test_finished_deployment_frozen(
    snap_compare: SnapCompare, ctx: Context, story: scenario.Scenario
) -> None:
    assert snap(snap_compare, ctx, ShowDeployment(story.api_id), ready(live_loaded))


def test_host_steps_and_output(snap_compare: SnapCompare, ctx: Context, story: scenario.Scenario) -> None:
    def host_shown(app: DeployerApp) -> bool:
        return isinstance(app.screen, HostScreen) and app.screen.host is not None

    keys = ("slash", *"web-07", "enter", "enter")
    assert snap(snap_compare, ctx, ShowDeployment(story.running_id), ready(host_shown, *keys))


def test_help(snap_compare: SnapCompare, ctx: Context, story: scenario.Scenario) -> None:
    def helping(app: DeployerApp) -> bool:
        return isinstance(app.screen, HelpScreen)

    assert snap(snap_compare, ctx, ShowDeployment(story.running_id), ready(helping, "question_mark"))


def test_overview(snap_compare: SnapCompare, ctx: Context, story: scenario.Scenario) -> None:
    def listed(app: DeployerApp) -> bool:
        return isinstance(app.screen, OverviewScreen) and app.screen.loaded

    assert snap(snap_compare, ctx, ShowOverview(), ready(listed))


def test_history(snap_compare: SnapCompare, ctx: Context, story: scenario.Scenario) -> None:
    def listed(app: DeployerApp) -> bool:
        return isinstance(app.screen, HistoryScreen) and app.screen.loaded

    assert snap(snap_compare, ctx, ShowHistory("shop", "prod"), ready(listed))


def test_versions_at_a_past_moment(snap_compare: SnapCompare, ctx: Context, story: scenario.Scenario) -> None:
    def at_moment(app: DeployerApp) -> bool:
        screen = app.screen
        return (
            isinstance(screen, VersionsScreen)
            and screen.at is not None
            and screen.version is not None
            and "hosts run" in str(screen.query_one("#hosts-title").render())
        )

    keys = ("t", *"2026-11-25 18:05", "enter")
    assert snap(snap_compare, ctx, ShowVersions("shop", "prod"), ready(at_moment, *keys))
