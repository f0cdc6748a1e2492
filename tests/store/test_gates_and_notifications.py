"""Gate checks and dropped notifications in the store, read back with the deployment."""

from __future__ import annotations

from deployer.core.results import DeploymentStatus
from deployer.store import DroppedNotification, GateView, Store
from tests.store.builders import at, begin, hosts

FLEET = hosts("web-a", "web-b")


def test_each_gate_keeps_its_check_count_and_last_verdict(store: Store) -> None:
    deployment_id = begin(store, "1.0", FLEET, at(0))
    store.record_gate_check(deployment_id, "error-rate", passed=True, message="data.value 0.001", at=at(1))
    store.record_gate_check(deployment_id, "synthetic", passed=True, message="HTTP 200", at=at(1))
    store.record_gate_check(
        deployment_id, "error-rate", passed=False, message="data.value 0.034 > max 0.01", at=at(2)
    )
    store.finish_deployment(deployment_id, DeploymentStatus.HALTED, at(3), reason="gate error-rate: ...")
    expected = (
        GateView("error-rate", 2, False, "data.value 0.034 > max 0.01", at(2)),
        GateView("synthetic", 1, True, "HTTP 200", at(1)),
    )
    assert store.deployment(deployment_id).gates == expected
    assert store.history("web")[0].gates == expected  # lists of deployments carry them too
    other = begin(store, "1.1", FLEET, at(4))
    assert store.deployment(other).gates == ()


def test_dropped_notifications_are_recorded_in_order(store: Store) -> None:
    deployment_id = begin(store, "1.0", FLEET, at(0))
    for event in ("started", "succeeded"):
        store.record_dropped_notification(
            deployment_id,
            sink="notify[0] webhook chat.example.com",
            event=event,
            event_at=at(1),
            error="HTTP 500",
            now=at(2),
        )
    assert store.dropped_notifications(deployment_id) == [
        DroppedNotification("notify[0] webhook chat.example.com", event, at(1), at(2), "HTTP 500")
        for event in ("started", "succeeded")
    ]
