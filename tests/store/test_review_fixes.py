"""Rules found in review: a second rollback goes further back, an abort survives a takeover,
and a finished deployment leaves no host RUNNING."""

from __future__ import annotations

from deployer.core.results import ControlAction, DeploymentKind, DeploymentStatus, HostStatus, Step
from deployer.store import Store
from tests.store.builders import at, begin, deploy, hosts

FLEET = hosts("a1", "a2")


def test_a_second_rollback_goes_further_back_not_forward_again(store: Store) -> None:
    deploy(store, "1.0", FLEET, at(0))
    deploy(store, "1.1", FLEET, at(10))
    deploy(store, "1.2", FLEET, at(20))  # succeeded, but bad in production
    assert store.last_good_version("web", "prod", before="1.2") == "1.1"
    deploy(store, "1.1", FLEET, at(30), kind=DeploymentKind.ROLLBACK)
    # The rollback to 1.1 is not where 1.1 came from: the next rollback is 1.0, not 1.2 again.
    assert store.last_good_version("web", "prod", before="1.1") == "1.0"


def test_an_abort_asked_of_a_dead_controller_survives_its_takeover(store: Store) -> None:
    deployment_id = begin(store, "2.0", FLEET, at(0), pid=2**22 + 12345)  # no such process here
    store.request_control(deployment_id, ControlAction.ABORT, requested_by="op", now=at(1))
    store.takeover(deployment_id, pid=1, started_from="build-1", now=at(2))
    assert store.control_state(deployment_id).requested is ControlAction.ABORT


def test_a_pause_is_cleared_by_the_takeover(store: Store) -> None:
    deployment_id = begin(store, "2.0", FLEET, at(0), pid=2**22 + 12345)
    store.request_control(deployment_id, ControlAction.PAUSE, requested_by="op", now=at(1))
    store.takeover(deployment_id, pid=1, started_from="build-1", now=at(2))
    assert store.control_state(deployment_id).requested is None


def test_finishing_leaves_no_host_running(store: Store) -> None:
    deployment_id = begin(store, "2.0", FLEET, at(0))
    store.record_step(deployment_id, "a1", Step.CONNECT, at(1))  # its driver never started
    store.finish_deployment(deployment_id, DeploymentStatus.HALTED, at(2), reason="test")
    statuses = {h.name: h.status for h in store.deployment(deployment_id).hosts}
    assert statuses == {"a1": HostStatus.ABORTED, "a2": HostStatus.NOT_STARTED}
