"""Pause, resume and abort asked from another process; what the controller polls."""

from __future__ import annotations

import pytest

from deployer.core.errors import ControlError, NotFound
from deployer.core.results import ControlAction, DeploymentStatus
from deployer.store import Store
from tests.plugins.stores import StoreFactory
from tests.store.builders import at, begin, hosts

FLEET = hosts("web-a", "web-b")


def test_a_pause_from_another_connection_reaches_the_controller(store_factory: StoreFactory) -> None:
    controller, operator = store_factory(), store_factory()
    deployment_id = begin(controller, "1.0", FLEET, at(0))
    assert controller.control_state(deployment_id).requested is None

    asked = operator.request_control(deployment_id, ControlAction.PAUSE, requested_by="bob", now=at(1))
    assert (asked.status, asked.requested, asked.requested_by, asked.requested_at) == (
        DeploymentStatus.RUNNING,
        ControlAction.PAUSE,
        "bob",
        at(1),
    )
    seen = controller.control_state(deployment_id)
    assert seen == asked and seen.wants_pause and not seen.wants_abort
    controller.set_status(deployment_id, DeploymentStatus.PAUSED, at(2))

    view = operator.deployment(deployment_id)
    assert (view.status, view.requested_control, view.control_requested_by) == (
        DeploymentStatus.PAUSED,
        ControlAction.PAUSE,
        "bob",
    )


def test_asking_again_is_a_no_op(store: Store) -> None:
    deployment_id = begin(store, "1.0", FLEET, at(0))
    store.request_control(deployment_id, ControlAction.PAUSE, requested_by="bob", now=at(1))
    again = store.request_control(deployment_id, ControlAction.PAUSE, requested_by="carol", now=at(2))
    assert (again.requested_by, again.requested_at) == ("bob", at(1))


def test_resume_needs_a_pause(store: Store) -> None:
    deployment_id = begin(store, "1.0", FLEET, at(0))
    with pytest.raises(ControlError, match=f"deployment {deployment_id} is not paused"):
        store.request_control(deployment_id, ControlAction.RESUME, requested_by="bob", now=at(1))
    # A pause asked but not yet taken can be withdrawn...
    store.request_control(deployment_id, ControlAction.PAUSE, requested_by="bob", now=at(1))
    resumed = store.request_control(deployment_id, ControlAction.RESUME, requested_by="bob", now=at(2))
    assert resumed.requested is ControlAction.RESUME and not resumed.wants_pause
    # ...and a pause taken is resumed the same way.
    store.request_control(deployment_id, ControlAction.PAUSE, requested_by="bob", now=at(3))
    store.set_status(deployment_id, DeploymentStatus.PAUSED, at(4))
    store.request_control(deployment_id, ControlAction.RESUME, requested_by="carol", now=at(5))
    store.set_status(deployment_id, DeploymentStatus.RUNNING, at(6))
    state = store.control_state(deployment_id)
    assert (state.status, state.requested, state.requested_by) == (
        DeploymentStatus.RUNNING,
        ControlAction.RESUME,
        "carol",
    )


def test_abort_is_final_until_the_controller_acts(store: Store) -> None:
    deployment_id = begin(store, "1.0", FLEET, at(0))
    store.request_control(deployment_id, ControlAction.PAUSE, requested_by="bob", now=at(1))
    aborted = store.request_control(deployment_id, ControlAction.ABORT, requested_by="carol", now=at(2))
    assert aborted.wants_abort and not aborted.wants_pause
    for action in (ControlAction.PAUSE, ControlAction.RESUME):
        with pytest.raises(ControlError, match=r"is being aborted \(asked by carol\)"):
            store.request_control(deployment_id, action, requested_by="bob", now=at(3))
    store.request_control(deployment_id, ControlAction.ABORT, requested_by="dave", now=at(3))
    store.finish_deployment(deployment_id, DeploymentStatus.ABORTED, at(4), reason="aborted by carol")
    assert store.deployment(deployment_id).reason == "aborted by carol"


@pytest.mark.parametrize("action", list(ControlAction))
def test_a_finished_deployment_takes_no_request(store: Store, action: ControlAction) -> None:
    deployment_id = begin(store, "1.0", FLEET, at(0))
    store.finish_deployment(deployment_id, DeploymentStatus.SUCCEEDED, at(1))
    with pytest.raises(ControlError, match=rf"{deployment_id} has already finished \(succeeded\)"):
        store.request_control(deployment_id, action, requested_by="bob", now=at(2))


def test_a_request_for_an_unknown_deployment(store: Store) -> None:
    with pytest.raises(NotFound, match="no deployment d-20990101-0000-ffff"):
        store.request_control("d-20990101-0000-ffff", ControlAction.PAUSE, requested_by="bob", now=at(0))
