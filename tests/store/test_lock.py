"""One deployment at a time per app+environment, across processes; taking over a dead controller."""

from __future__ import annotations

import os
import socket
from datetime import timedelta

import pytest
from sqlalchemy import create_engine, insert
from sqlalchemy.exc import IntegrityError

from deployer.core.errors import ControlError, DeploymentLocked, NotFound
from deployer.core.results import ControlAction, DeploymentStatus
from deployer.store import Store
from deployer.store.queries import D
from tests.plugins.stores import StoreFactory
from tests.store.builders import SHA, at, begin, hosts
from tests.store.processes import lines_starting, run_once, run_together

FLEET = hosts("web-a", "web-b")
MINUTE = timedelta(minutes=1)


def test_a_second_deployment_is_refused_from_another_connection(store_factory: StoreFactory) -> None:
    controller, other = store_factory(), store_factory()
    running = begin(controller, "1.0", FLEET, at(0), user="alice", machine="build-1", pid=os.getpid())
    with pytest.raises(DeploymentLocked) as refused:
        begin(other, "1.1", FLEET, at(0.5), user="bob", machine="laptop")
    message = str(refused.value)
    assert message.startswith(f"web/prod is locked by deployment {running} (push of 1.0, running)")
    assert "started by alice on build-1" in message and f"(pid {os.getpid()})" in message
    assert refused.value.exit_code == 1
    # Other apps and environments are not locked.
    begin(other, "1.1", FLEET, at(0.5), environment="staging")
    begin(other, "1.1", FLEET, at(0.5), app="api")


def test_the_lock_is_released_by_finishing(store_factory: StoreFactory) -> None:
    controller, other = store_factory(), store_factory()
    running = begin(controller, "1.0", FLEET, at(0))
    controller.finish_deployment(running, DeploymentStatus.SUCCEEDED, at(1))
    assert begin(other, "1.1", FLEET, at(2)) != running


def test_the_database_itself_refuses_two_unfinished_deployments(store_url: str, store: Store) -> None:
    begin(store, "1.0", FLEET, at(0))
    row = {
        "id": "d-sneaky",
        "app": "web",
        "environment": "prod",
        "version": "2.0",
        "kind": "push",
        "status": "running",
        "started_by": "mallory",
        "started_from": "x",
        "pid": 1,
        "started_at": at(1),
        "heartbeat_at": at(1),
        "spec_sha256": SHA,
    }
    engine = create_engine(store_url)
    try:
        with pytest.raises(IntegrityError), engine.begin() as conn:
            conn.execute(insert(D).values(**row))
        with engine.begin() as conn:  # a finished one is fine
            conn.execute(insert(D).values(**row, finished_at=at(2)))
    finally:
        engine.dispose()


RACE_BEGIN = """
store = open_store(url)
wait_for_the_start()
try:
    deployment_id = store.begin_deployment(NewDeployment(
        app="web", environment="prod", version="1.0", previous_version=None,
        kind=DeploymentKind.PUSH, started_by=f"user{os.getpid()}", started_from=socket.gethostname(),
        pid=os.getpid(), spec_sha256="0" * 64,
        hosts=[(Host(f"h{i}", "10.0.0.1", "iad"), 0) for i in range(50)]), now=datetime.now(UTC))
    print("won", deployment_id)
except DeployerError as error:
    print("refused", type(error).__name__, error)
store.close()
"""


def test_two_processes_racing_for_the_lock_get_one_deployment(store_url: str, store: Store) -> None:
    outputs = run_together(RACE_BEGIN, store_url, count=3)
    winners = lines_starting(outputs, "won")
    refused = lines_starting(outputs, "refused")
    assert len(winners) == 1, outputs
    assert len(refused) == 2 and all("DeploymentLocked" in line for line in refused), outputs
    deployment_id = winners[0].split()[1]
    assert all(deployment_id in line for line in refused)
    running = store.running_deployment("web", "prod")
    assert running is not None and running.id == deployment_id and running.host_count == 50


BEGIN_AND_DIE = """
deployment_id = open_store(url).begin_deployment(NewDeployment(
    app="web", environment="prod", version="1.0", previous_version=None, kind=DeploymentKind.PUSH,
    started_by="alice", started_from=socket.gethostname(), pid=os.getpid(), spec_sha256="0" * 64,
    hosts=[(Host("h1", "10.0.0.1", "iad"), 0)]), now=datetime.now(UTC))
print(deployment_id, os.getpid())
"""


def test_a_dead_controller_on_this_machine_is_taken_over_only_explicitly(
    store_url: str, store_factory: StoreFactory
) -> None:
    deployment_id, dead_pid = run_once(BEGIN_AND_DIE, store_url).split()
    store = store_factory()
    view = store.deployment(deployment_id)
    now = view.heartbeat_at + timedelta(seconds=5)  # fresh heartbeat, but the process is gone
    liveness = store.liveness(view, now)
    assert not liveness.alive and liveness.reason == f"pid {dead_pid} is gone on {socket.gethostname()}"

    dead = rf"looks dead \(pid {dead_pid} is gone.*deploy resume {deployment_id}"
    with pytest.raises(DeploymentLocked, match=dead):
        begin(store, "1.1", FLEET, now)

    taken = store.takeover(deployment_id, pid=os.getpid(), started_from=socket.gethostname(), now=now)
    assert (taken.pid, taken.status, taken.heartbeat_at) == (os.getpid(), DeploymentStatus.RUNNING, now)
    assert store.liveness(taken, now).alive
    # Now it is alive again: nobody else may take it over, and a push is still refused.
    other = store_factory()
    with pytest.raises(DeploymentLocked, match="is still run by"):
        other.takeover(deployment_id, pid=1, started_from="laptop", now=now)
    with pytest.raises(DeploymentLocked, match="wait for it to finish"):
        begin(other, "1.1", FLEET, now)


def test_a_silent_controller_elsewhere_is_dead_after_the_threshold(store_factory: StoreFactory) -> None:
    store = store_factory(stale_after=MINUTE)
    deployment_id = begin(store, "1.0", FLEET, at(0), machine="far-away", pid=4242)
    view = store.deployment(deployment_id)
    assert store.liveness(view, at(0.5)).alive
    with pytest.raises(DeploymentLocked, match=r"still run by pid 4242 on far-away \(heartbeat 30s ago\)"):
        store.takeover(deployment_id, pid=os.getpid(), started_from="here", now=at(0.5))

    store.heartbeat(deployment_id, pid=4242, started_from="far-away", now=at(5))
    assert store.liveness(store.deployment(deployment_id), at(5.5)).alive
    liveness = store.liveness(store.deployment(deployment_id), at(8))
    assert not liveness.alive and liveness.reason == "no heartbeat for 3m 0s"

    store.takeover(deployment_id, pid=os.getpid(), started_from="here", now=at(8))
    # The old controller learns it lost the deployment at its next heartbeat.
    with pytest.raises(DeploymentLocked, match=f"taken over by pid {os.getpid()} on here"):
        store.heartbeat(deployment_id, pid=4242, started_from="far-away", now=at(8.1))
    store.heartbeat(deployment_id, pid=os.getpid(), started_from="here", now=at(8.2))


def test_takeover_clears_requests_and_resumes_a_paused_deployment(store: Store) -> None:
    deployment_id = begin(store, "1.0", FLEET, at(0), machine="far-away", pid=4242)
    store.request_control(deployment_id, ControlAction.PAUSE, requested_by="bob", now=at(1))
    store.set_status(deployment_id, DeploymentStatus.PAUSED, at(1))
    store.takeover(deployment_id, pid=os.getpid(), started_from="here", now=at(10))
    state = store.control_state(deployment_id)
    assert (state.status, state.requested, state.requested_by) == (DeploymentStatus.RUNNING, None, None)


def test_takeover_of_a_finished_or_unknown_deployment(store: Store) -> None:
    deployment_id = begin(store, "1.0", FLEET, at(0), machine="far-away", pid=4242)
    store.finish_deployment(deployment_id, DeploymentStatus.ABORTED, at(1))
    with pytest.raises(ControlError, match=r"has finished \(aborted\); there is nothing to resume"):
        store.takeover(deployment_id, pid=1, started_from="here", now=at(10))
    with pytest.raises(DeploymentLocked, match=r"finished elsewhere \(aborted\)"):
        store.heartbeat(deployment_id, pid=4242, started_from="far-away", now=at(10))
    with pytest.raises(NotFound):
        store.takeover("d-nope", pid=1, started_from="here", now=at(10))


RACE_TAKEOVER = """
store = open_store(url)
deployment_id = store.running_deployment("web", "prod").id
wait_for_the_start()
try:
    store.takeover(deployment_id, pid=os.getpid(), started_from=socket.gethostname(), now=datetime.now(UTC))
    print("won", os.getpid())
except DeployerError as error:
    print("refused", type(error).__name__, error)
store.close()
stay_alive_until_all_are_done()  # the winner's pid must exist while the loser judges its liveness
"""


def test_two_processes_racing_to_take_over_get_one_owner(store_url: str, store: Store) -> None:
    deployment_id = begin(store, "1.0", FLEET, at(0), machine="far-away", pid=4242)  # silent for long
    outputs = run_together(RACE_TAKEOVER, store_url, count=2)
    winners, refused = lines_starting(outputs, "won"), lines_starting(outputs, "refused")
    assert len(winners) == 1 and len(refused) == 1, outputs
    assert "DeploymentLocked" in refused[0]
    assert store.deployment(deployment_id).pid == int(winners[0].split()[1])
