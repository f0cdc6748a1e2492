"""Which events make notifications, and what their JSON holds besides the deployment."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from deployer.core.events import (
    Baking,
    ControlChanged,
    DeploymentFinished,
    DeploymentStarted,
    Event,
    WaveFinished,
    WaveStarted,
)
from deployer.core.spec import NOTIFY_EVENTS, NotifySink
from deployer.rollout.notify import event_name, notification_json, sink_label

AT = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)
STARTED = DeploymentStarted("d-1", "shop", "prod", "push", "2.0", "1.0", 3, 12, 0, {}, AT)


@pytest.mark.parametrize(
    ("event", "rollback", "name"),
    [
        (STARTED, False, "started"),
        (STARTED, True, "rollback_started"),
        (WaveStarted("d-1", 2, 3, ("a",), AT), False, "wave_started"),
        (WaveFinished("d-1", 2, 3, {}, AT), False, "wave_finished"),
        (ControlChanged("d-1", "paused", "paused by ana", AT), False, "paused"),
        (ControlChanged("d-1", "running", "resumed by ana", AT), False, "resumed"),
        (ControlChanged("d-1", "halting", "gate x: HTTP 500", AT), False, None),  # the end tells it
        (Baking("d-1", 2, AT), False, None),
        (DeploymentFinished("d-1", "halted", {}, AT), False, "halted"),
        (DeploymentFinished("d-1", "aborted", {}, AT), False, "aborted"),
        (DeploymentFinished("d-1", "succeeded", {}, AT), True, "rollback_finished"),
    ],
)
def test_which_events_are_told(event: Event, rollback: bool, name: str | None) -> None:
    assert event_name(event, rollback) == name
    assert name is None or name in NOTIFY_EVENTS


def test_wave_and_control_notifications_say_which_wave_and_why() -> None:
    deployment = {"id": "d-1"}
    wave = notification_json("wave_started", AT, deployment, WaveStarted("d-1", 2, 3, ("a",), AT))
    assert wave == {
        "event": "wave_started",
        "at": AT.isoformat(),
        "deployment": deployment,
        "wave": {"index": 2, "count": 3},
    }
    paused = ControlChanged("d-1", "paused", "paused by ana", AT)
    assert notification_json("paused", AT, deployment, paused)["reason"] == "paused by ana"


def test_a_sink_is_named_without_the_path_of_its_url_which_may_hold_a_token() -> None:
    webhook = NotifySink("webhook", "https://bot:pw@hooks.example.com/T0/B1/s3cret", {}, None, None, 5)
    assert sink_label(0, webhook) == "notify[0] webhook hooks.example.com"
    assert sink_label(1, NotifySink("command", None, {}, "curl ...", None, 5)) == "notify[1] command"
