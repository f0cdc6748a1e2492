"""The live screen's summary shows each gate's last verdict; a failing one with what it saw."""

from __future__ import annotations

from datetime import UTC

from deployer.core.results import DeploymentStatus
from deployer.store import Store
from tests.store.builders import at, begin, hosts
from tui.model import live_snapshot
from tui.widgets.summary import summary_lines


def test_the_summary_shows_the_gates_and_what_a_failing_one_saw(store: Store) -> None:
    deployment_id = begin(store, "2.0", hosts("web-a", "web-b"), at(0))
    store.record_gate_check(deployment_id, "synthetic", passed=True, message="HTTP 200", at=at(1))
    store.record_gate_check(
        deployment_id, "error-rate", passed=False, message="data.value 0.034 > max 0.01", at=at(2)
    )
    reason = "gate error-rate: data.value 0.034 > max 0.01; 2 hosts were not touched and keep their version"
    store.finish_deployment(deployment_id, DeploymentStatus.HALTED, at(3), reason=reason)
    snapshot = live_snapshot(store.deployment_progress(deployment_id), budget=0, liveness=None)
    _head, counts, _who, note = (line.plain for line in summary_lines(snapshot, at(4), UTC))
    assert counts.endswith("gates: error-rate ✗ data.value 0.034 > max 0.01 synthetic ✓")
    assert note == reason
