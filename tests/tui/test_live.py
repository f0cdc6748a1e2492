"""The live screen against a real store: what another process writes shows up; controls write requests."""

from __future__ import annotations

import threading
from dataclasses import replace
from datetime import timedelta

import pytest
from textual.widgets import Log

from deployer.core.results import ControlAction, DeploymentStatus, HostStatus, Step
from deployer.store import Store, open_store
from tests.tui import scenario
from tests.tui.conftest import SIZE, screen_text, wait_for, wait_in_thread
from tui.app import DeployerApp, ShowDeployment, watch_opening
from tui.context import Context
from tui.screens.dialogs import ConfirmScreen, HelpScreen
from tui.screens.host import HostScreen
from tui.screens.live import LiveScreen
from tui.widgets.datacenter import DatacenterPanel
from tui.widgets.host_list import HostList


def live(app: DeployerApp) -> LiveScreen:
    screen = app.screen
    assert isinstance(screen, LiveScreen), f"expected the live screen, got {screen!r}"
    return screen


def row_of(text: str, host: str) -> str:
    """The host list's line for ``host`` as shown."""
    lines = [line for line in text.splitlines() if f" {host} " in line and "wave" not in line]
    assert lines, f"{host} is not on the screen:\n{text}"
    return lines[-1]


async def test_attached_screen_follows_what_another_writer_records(
    ctx: Context, story: scenario.Scenario, store_path: str
) -> None:
    app = DeployerApp(ctx, ShowDeployment(story.running_id))
    finished = threading.Event()

    def controller() -> None:
        # Another connection pool, as another process would have: wave 3 moves on.
        with open_store(store_path) as writer:
            writer.record_host_result(
                story.running_id,
                scenario.host_result("web-13", "1.2", "1.1", scenario.NOW - timedelta(minutes=1)),
            )
            writer.record_step(story.running_id, "web-18", Step.CONNECT, scenario.NOW)
        finished.set()

    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: live(app).polls_received > 0)
        before = screen_text(app)
        assert "2 running" in row_of(before, "web-13")
        assert "· pending" in row_of(before, "web-18")
        assert "wave 3 of 5" in before

        writer = threading.Thread(target=controller)
        writer.start()
        writer.join(timeout=10)
        assert finished.is_set()

        def shows_new_states() -> bool:
            text = screen_text(app)
            return "✓ succeeded" in row_of(text, "web-13") and "1 running" in row_of(text, "web-18")

        await wait_for(pilot, shows_new_states)
        text = screen_text(app)
        assert "✓12 succeeded" in text  # the summary's counts moved too
        assert "wave 3 of 5" in text  # web-18 is in wave 4, but wave 3 still has hosts in flight


async def test_pause_and_resume_write_requests_the_controller_obeys(
    ctx: Context, story: scenario.Scenario, tui_store: Store
) -> None:
    app = DeployerApp(ctx, ShowDeployment(story.running_id))
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: live(app).polls_received > 0)
        await pilot.press("p")
        await wait_in_thread(lambda: tui_store.control_state(story.running_id).wants_pause)
        state = tui_store.control_state(story.running_id)
        assert state.requested_by == "tester@console"
        await wait_for(pilot, lambda: "pause requested by tester@console" in screen_text(app))

        # The controller takes the pause: the screen says so, and offers resume.
        tui_store.set_status(story.running_id, DeploymentStatus.PAUSED, scenario.NOW)
        await wait_for(pilot, lambda: "‖ PAUSED" in screen_text(app))
        assert live(app).check_action("resume", ()) is True
        assert live(app).check_action("pause", ()) is None

        await pilot.press("r")
        await wait_in_thread(
            lambda: tui_store.control_state(story.running_id).requested is ControlAction.RESUME
        )


async def test_abort_asks_first_and_only_yes_writes_it(
    ctx: Context, story: scenario.Scenario, tui_store: Store
) -> None:
    app = DeployerApp(ctx, ShowDeployment(story.running_id))
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: live(app).polls_received > 0)
        await pilot.press("a")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        question = screen_text(app)
        assert "Abort deployment d-20261127-1800-0004" in question
        assert "The 5 hosts in flight finish; the 12 pending hosts never start" in question
        await pilot.press("n")
        await wait_for(pilot, lambda: isinstance(app.screen, LiveScreen))
        assert tui_store.control_state(story.running_id).requested is None

        await pilot.press("a")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await pilot.press("y")
        await wait_in_thread(lambda: tui_store.control_state(story.running_id).wants_abort)
        await wait_for(pilot, lambda: "abort requested by tester@console" in screen_text(app))
        # Nothing else can be asked of a deployment being aborted.
        assert live(app).check_action("pause", ()) is None


async def test_filter_by_state_datacenter_and_name(ctx: Context, story: scenario.Scenario) -> None:
    app = DeployerApp(ctx, ShowDeployment(story.running_id))
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: live(app).polls_received > 0)
        await pilot.press("slash", *"failures")
        await wait_for(pilot, lambda: len(live(app).shown_hosts()) == 2)
        assert {host.name for host in live(app).shown_hosts()} == {"web-07", "web-12"}
        assert "2 of 30 hosts: failed or unknown or unreachable" in screen_text(app)

        await pilot.press("ctrl+a", "ctrl+k", *"running dc:fra")
        await wait_for(pilot, lambda: {h.name for h in live(app).shown_hosts()} == {"web-14", "web-17"})

        await pilot.press("ctrl+a", "ctrl+k", *"web-2*")
        await wait_for(pilot, lambda: len(live(app).shown_hosts()) == 10)

        await pilot.press("ctrl+a", "ctrl+k", *"state:unr")  # a state by the start of its name
        await wait_for(pilot, lambda: [h.name for h in live(app).shown_hosts()] == ["web-12"])

        await pilot.press("x")
        await wait_for(pilot, lambda: "unknown state 'unrx'" in screen_text(app))
        await pilot.pause(0.2)  # later reads of the store keep both the message and the last good filter
        assert "unknown state 'unrx'" in screen_text(app)
        assert [h.name for h in live(app).shown_hosts()] == ["web-12"]


async def test_opening_a_host_shows_its_steps_and_the_failing_output(
    ctx: Context, story: scenario.Scenario
) -> None:
    app = DeployerApp(ctx, ShowDeployment(story.running_id))
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: live(app).polls_received > 0)
        await pilot.press("slash", *"web-07", "enter")
        await wait_for(pilot, lambda: [h.name for h in live(app).shown_hosts()] == ["web-07"])
        assert app.screen.focused is app.screen.query_one(HostList)
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, HostScreen) and app.screen.host is not None)
        text = screen_text(app)
        assert "✗ FAILED" in text and "web-07" in text
        assert "validate exited 7: unhealthy" in text
        assert "8  validate        ✗ 7   4.0s" in text  # the step, its exit status and duration
        assert "output of validate (exit 7)" in text
        assert "HTTP 503" in text

        # Another step's output, then back to the live screen.
        await pilot.press("up")
        await wait_for(pilot, lambda: "output of start (exit 0)" in screen_text(app))
        assert "start on web-07: ok" in screen_text(app)
        await pilot.press("escape")
        await wait_for(pilot, lambda: isinstance(app.screen, LiveScreen))


async def test_a_running_host_shows_its_step_then_its_result(
    ctx: Context, story: scenario.Scenario, tui_store: Store
) -> None:
    app = DeployerApp(ctx, ShowDeployment(story.running_id))
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: live(app).polls_received > 0)
        await pilot.press("slash", *"web-16", "enter", "enter")
        await wait_for(pilot, lambda: isinstance(app.screen, HostScreen) and app.screen.host is not None)
        assert "now at step 5: after_install" in screen_text(app)
        tui_store.record_host_result(
            story.running_id,
            scenario.host_result(
                "web-16", "1.2", "1.1", scenario.NOW - timedelta(minutes=1), fail_at=Step.START
            ),
        )
        await wait_for(pilot, lambda: "output of start (exit 7)" in screen_text(app))
        assert "start exited 7: unhealthy" in screen_text(app)


async def test_help_and_quit_leave_the_deployment_alone(
    ctx: Context, story: scenario.Scenario, tui_store: Store
) -> None:
    app = DeployerApp(ctx, ShowDeployment(story.running_id))
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: live(app).polls_received > 0)
        await pilot.press("question_mark")
        await wait_for(pilot, lambda: isinstance(app.screen, HelpScreen))
        assert "abort: asks first" in screen_text(app)
        await pilot.press("escape")
        await wait_for(pilot, lambda: isinstance(app.screen, LiveScreen))
        await pilot.press("q")
        await wait_for(pilot, lambda: not app.is_running)
    state = tui_store.control_state(story.running_id)
    assert state.status is DeploymentStatus.RUNNING and state.requested is None


async def test_a_finished_deployment_is_frozen_without_controls(
    ctx: Context, story: scenario.Scenario, tui_store: Store
) -> None:
    first = story.previous_ids[0]
    app = DeployerApp(ctx, ShowDeployment(first))
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: live(app).polls_received > 0)
        screen = live(app)
        assert screen.snapshot is not None and screen.snapshot.is_finished
        assert [screen.check_action(a, ()) for a in ("pause", "resume", "abort")] == [False, False, False]
        text = screen_text(app)
        assert "✓ SUCCEEDED" in text and "took 10m 40s" in text
        assert "30 hosts updated" in text
        polls = screen.polls_received
        await pilot.pause(0.3)
        assert screen.polls_received == polls  # no more reads once it has finished
        await pilot.press("p")  # not bound while frozen: nothing is written
    assert tui_store.control_state(first).requested is None


@pytest.mark.parametrize("status", [HostStatus.FAILED, HostStatus.UNREACHABLE])
async def test_failures_against_the_budget_from_a_push(
    ctx: Context, story: scenario.Scenario, status: HostStatus
) -> None:
    """With the budget known (as ``deploy push --tui`` knows it), the limit shows before it is reached."""
    app = DeployerApp(ctx, ShowDeployment(story.running_id, failure_budget=2))
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: live(app).polls_received > 0)
        assert "2 failed of 2 allowed: one more halts" in screen_text(app)
        ctx.store.record_host_result(
            story.running_id,
            scenario.host_result(
                "web-14",
                "1.2",
                "1.1",
                scenario.NOW,
                fail_at=Step.VALIDATE if status is HostStatus.FAILED else None,
                unreachable=status is HostStatus.UNREACHABLE,
            ),
        )
        await wait_for(pilot, lambda: "3 failed, more than the 2 allowed: halting" in screen_text(app))


async def test_a_deployment_that_is_not_there_is_reported_once_and_not_read_again(
    ctx: Context, story: scenario.Scenario
) -> None:
    app = DeployerApp(ctx, ShowDeployment("d-nope"))
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await wait_for(pilot, lambda: "no deployment d-nope" in screen_text(app))
        screen = live(app)
        assert screen.snapshot is None
        await pilot.pause(0.3)
        assert screen_text(app).count("no deployment d-nope") == 1


async def test_running_hosts_times_move_with_the_clock_and_the_others_stay(
    story: scenario.Scenario, tui_store: Store
) -> None:
    """The host list keeps lines once drawn; a running host's line must still follow the clock."""
    now = [scenario.NOW]
    ctx = Context(store=tui_store, clock=lambda: now[0], poll_interval=0.1, requested_by="tester@console")
    app = DeployerApp(ctx, ShowDeployment(story.running_id))
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: live(app).polls_received > 0)
        running, done = row_of(screen_text(app), "web-13"), row_of(screen_text(app), "web-12")
        now[0] = scenario.NOW + timedelta(minutes=5)

        await wait_for(pilot, lambda: row_of(screen_text(app), "web-13") != running)  # the 1 s tick
        assert "5m" in row_of(screen_text(app), "web-13")
        assert row_of(screen_text(app), "web-12") == done


async def test_deploy_watch_lays_out_the_datacenters_and_keys_before_the_first_read(
    ctx: Context, story: scenario.Scenario
) -> None:
    opening = watch_opening(ctx.store, story.running_id)
    assert opening.datacenters == (("fra", 10), ("iad", 10), ("sfo", 10))
    assert opening.control == (DeploymentStatus.RUNNING, None)
    app = DeployerApp(ctx, opening)
    async with app.run_test(size=SIZE):
        screen = live(app)
        # Composed with the screen, whether or not its first read has come yet.
        assert [panel.datacenter for panel in screen.query(DatacenterPanel)] == ["fra", "iad", "sfo"]
        assert screen.check_action("pause", ()) is True
        assert screen.check_action("resume", ()) is None


async def test_a_host_s_output_and_error_are_shown_with_controls_escaped(
    ctx: Context, story: scenario.Scenario, tui_store: Store
) -> None:
    hostile = "\x1b]0;owned\x07\x1b[2Jboom\u202e"
    failed = scenario.host_result(
        "web-16", "1.2", "1.1", scenario.NOW - timedelta(minutes=1), fail_at=Step.START
    )
    steps = (*failed.steps[:-1], replace(failed.steps[-1], output=f"said {hostile}\nbye\n"))
    tui_store.record_host_result(story.running_id, replace(failed, error=f"start: {hostile}", steps=steps))
    app = DeployerApp(ctx, ShowDeployment(story.running_id))
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: live(app).polls_received > 0)
        await pilot.press("slash", *"web-16", "enter", "enter")
        await wait_for(pilot, lambda: isinstance(app.screen, HostScreen) and app.screen.host is not None)
        await wait_for(pilot, lambda: "output of start (exit 7)" in screen_text(app))
        lines = list(app.screen.query_one("#output", Log).lines)
        assert lines == ["said \\x1b]0;owned\\x07\\x1b[2Jboom\\u202e", "bye"]
        text = screen_text(app)
        assert "start: \\x1b]0;owned\\x07" in text and "\x1b" not in text and "\x07" not in text
