"""Recording a deployment and reading it back: views, steps, counts, and the planner's inputs."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta, timezone

import pytest

from deployer.core.errors import ControlError, NotFound
from deployer.core.results import (
    OUTPUT_CAP,
    DeploymentKind,
    DeploymentStatus,
    HostResult,
    HostStatus,
    Step,
    StepResult,
)
from deployer.store import Store
from deployer.store.host_history import pick_last_good_version
from tests.store.builders import SHA, T0, at, begin, deploy, hosts, result

FLEET = hosts("web-a", "web-b", "web-c", "web-d")


def test_a_new_deployment_is_running_with_pending_and_skipped_hosts(store: Store) -> None:
    skipped = hosts("web-z")[0]
    deployment_id = begin(store, "1.0", FLEET, at(0), skipped=[(skipped, "already runs 1.0")])
    assert deployment_id.startswith("d-20261127-1800-")
    view = store.deployment(deployment_id)
    assert (view.app, view.environment, view.version, view.kind, view.status) == (
        "web",
        "prod",
        "1.0",
        DeploymentKind.PUSH,
        DeploymentStatus.RUNNING,
    )
    assert (view.started_by, view.started_from, view.started_at, view.heartbeat_at, view.spec_sha256) == (
        "alice",
        "build-1",
        at(0),
        at(0),
        SHA,
    )
    assert view.finished_at is None and not view.is_finished
    assert view.counts[HostStatus.PENDING] == 4 and view.counts[HostStatus.SKIPPED] == 1
    assert view.host_count == 5
    assert [(h.name, h.datacenter, h.wave, h.status) for h in view.hosts] == [
        ("web-a", "iad", 0, HostStatus.PENDING),
        ("web-b", "sfo", 0, HostStatus.PENDING),
        ("web-c", "iad", 1, HostStatus.PENDING),
        ("web-d", "sfo", 1, HostStatus.PENDING),
        ("web-z", "iad", None, HostStatus.SKIPPED),
    ]
    assert view.hosts[-1].error == "already runs 1.0"
    assert store.running_deployment("web", "prod") == view


def test_steps_and_results_are_recorded_as_they_happen(store: Store) -> None:
    deployment_id = begin(store, "1.0", FLEET, at(0))
    store.record_step(deployment_id, "web-a", Step.CONNECT, at(1))
    store.record_step(deployment_id, "web-a", Step.UPLOAD, at(2))
    running = {h.name: h for h in store.deployment(deployment_id).hosts}["web-a"]
    assert (running.status, running.step, running.started_at) == (HostStatus.RUNNING, Step.UPLOAD, at(1))

    steps = (
        StepResult(Step.CONNECT, None, at(1), 0.2),
        StepResult(Step.VALIDATE, 7, at(3), 30.5, "boom\n" * 5, attempts=3),
    )
    store.record_host_result(
        deployment_id,
        HostResult(
            host="web-a",
            status=HostStatus.FAILED,
            started_at=at(1),
            finished_at=at(4),
            step=Step.VALIDATE,
            exit_status=7,
            error="validate exited 7 after 3 attempts",
            output_tail="boom",
            steps=steps,
            version="1.0",
            previous_version="0.9",
        ),
    )
    view = store.deployment(deployment_id, steps=True)
    host = view.hosts[0]
    assert (host.status, host.step, host.exit_status, host.error, host.output_tail) == (
        HostStatus.FAILED,
        Step.VALIDATE,
        7,
        "validate exited 7 after 3 attempts",
        "boom",
    )
    assert (host.started_at, host.finished_at) == (at(1), at(4))
    assert (host.version, host.previous_version) == ("1.0", "0.9")
    assert host.steps == steps
    assert store.deployment(deployment_id).hosts[0].steps == ()
    assert view.counts[HostStatus.FAILED] == 1 and view.counts[HostStatus.PENDING] == 3


def test_a_retried_host_replaces_its_earlier_steps(store: Store) -> None:
    deployment_id = begin(store, "1.0", FLEET, at(0))
    store.record_host_result(deployment_id, result("web-a", None, at(1), status=HostStatus.UNREACHABLE))
    store.record_host_result(deployment_id, result("web-a", "1.0", at(5)))
    host = store.deployment(deployment_id, steps=True).hosts[0]
    assert host.status is HostStatus.SUCCEEDED
    assert [s.started_at for s in host.steps] == [at(5) - timedelta(seconds=1)]


def test_hosts_that_ended_together_are_recorded_together_or_not_at_all(store: Store) -> None:
    deployment_id = begin(store, "1.0", FLEET, at(0))
    ended = [result("web-a", "1.0", at(2)), result("web-b", None, at(3), status=HostStatus.FAILED)]
    store.record_host_results(deployment_id, ended)
    statuses = {h.name: h.status for h in store.deployment(deployment_id).hosts}
    assert (statuses["web-a"], statuses["web-b"]) == (HostStatus.SUCCEEDED, HostStatus.FAILED)
    assert store.current_versions("web", "prod") == {"web-a": "1.0"}
    # One write: a batch naming a host outside the deployment leaves its other hosts as they were.
    with pytest.raises(RuntimeError, match="host web-x is not part of deployment"):
        store.record_host_results(
            deployment_id, [result("web-c", "1.0", at(4)), result("web-x", "1.0", at(4))]
        )
    assert {h.name: h.status for h in store.deployment(deployment_id).hosts}["web-c"] is HostStatus.PENDING
    assert store.current_versions("web", "prod") == {"web-a": "1.0"}


def test_output_is_capped(store: Store) -> None:
    deployment_id = begin(store, "1.0", FLEET, at(0))
    huge = "x" * (OUTPUT_CAP + 10)
    step = StepResult(Step.START, 1, at(1), 1.0, huge)
    store.record_host_result(
        deployment_id,
        HostResult("web-a", HostStatus.FAILED, at(1), at(2), Step.START, 1, "start exited 1", huge, (step,)),
    )
    host = store.deployment(deployment_id, steps=True).hosts[0]
    assert host.steps[0].output.startswith("[... 10 characters cut ...]\n")
    assert host.output_tail.endswith("x" * OUTPUT_CAP)


def test_hosts_that_join_mid_push_are_added_once(store: Store) -> None:
    deployment_id = begin(store, "1.0", FLEET[:2], at(0))
    joined = hosts("web-a", "web-b", "web-new")
    store.add_hosts(deployment_id, [(joined[0], 0), (joined[2], 3)], at(5))
    view = store.deployment(deployment_id)
    assert [(h.name, h.wave) for h in view.hosts] == [("web-a", 0), ("web-b", 0), ("web-new", 3)]
    assert "web-new" in [h.name for h in store.hosts("web", "prod")]


def test_finishing_releases_the_lock_and_marks_hosts_that_never_started(store: Store) -> None:
    deployment_id = begin(store, "1.0", FLEET, at(0))
    store.record_host_result(deployment_id, result("web-a", "1.0", at(1)))
    store.finish_deployment(deployment_id, DeploymentStatus.HALTED, at(2), reason="1 of 4 hosts failed")
    view = store.deployment(deployment_id)
    assert (view.status, view.finished_at) == (DeploymentStatus.HALTED, at(2))
    assert view.reason == "1 of 4 hosts failed"
    assert view.counts[HostStatus.SUCCEEDED] == 1 and view.counts[HostStatus.NOT_STARTED] == 3
    assert store.running_deployment("web", "prod") is None
    with pytest.raises(ControlError, match=r"has already finished \(halted\)"):
        store.finish_deployment(deployment_id, DeploymentStatus.SUCCEEDED, at(3))
    begin(store, "1.1", FLEET, at(3))  # the lock is free again


def test_pause_and_resume_take_effect_through_set_status(store: Store) -> None:
    deployment_id = begin(store, "1.0", FLEET, at(0))
    store.set_status(deployment_id, DeploymentStatus.PAUSED, at(1))
    view = store.deployment(deployment_id)
    assert (view.status, view.heartbeat_at) == (DeploymentStatus.PAUSED, at(1))
    assert store.running_deployment("web", "prod") is not None  # a paused deployment keeps the lock
    with pytest.raises(RuntimeError, match="use finish_deployment"):
        store.set_status(deployment_id, DeploymentStatus.SUCCEEDED, at(2))
    store.finish_deployment(deployment_id, DeploymentStatus.ABORTED, at(2))
    with pytest.raises(ControlError):
        store.set_status(deployment_id, DeploymentStatus.RUNNING, at(3))


def test_history_and_latest(store: Store) -> None:
    first = deploy(store, "1.0", FLEET, at(0))
    second = deploy(store, "1.1", FLEET, at(60), failed=["web-b"])
    staging = deploy(store, "2.0", FLEET, at(30), environment="staging")
    api = deploy(store, "5.0", FLEET[:1], at(10), app="api")

    assert [v.id for v in store.history("web")] == [second, staging, first]
    assert [v.id for v in store.history("web", "prod")] == [second, first]
    assert [v.id for v in store.history("web", "prod", limit=1)] == [second]
    newest = store.history("web", "prod")[0]
    assert newest.hosts == ()
    assert (newest.counts[HostStatus.SUCCEEDED], newest.counts[HostStatus.FAILED]) == (3, 1)
    assert [(v.app, v.environment, v.id) for v in store.latest_deployments()] == [
        ("api", "prod", api),
        ("web", "prod", second),
        ("web", "staging", staging),
    ]
    assert store.history("nothing") == []


def test_failed_hosts_of_the_last_deployment(store: Store) -> None:
    assert store.failed_hosts_of_last_deployment("web", "prod") == set()
    deploy(store, "1.1", FLEET, at(0), failed=["web-b", "web-d"])
    assert store.failed_hosts_of_last_deployment("web", "prod") == {"web-b", "web-d"}
    deployment_id = begin(store, "1.2", FLEET, at(60))
    store.record_host_result(deployment_id, result("web-c", None, at(61), status=HostStatus.UNREACHABLE))
    assert store.failed_hosts_of_last_deployment("web", "prod") == {"web-c"}


def test_last_good_version_for_a_rollback(store: Store) -> None:
    assert store.last_good_version("web", "prod") is None
    deploy(store, "1.0", FLEET, at(0))
    deploy(store, "1.1", FLEET, at(10))
    deploy(store, "1.2", FLEET, at(20), failed=["web-a"])
    assert store.last_good_version("web", "prod") == "1.1"
    assert store.last_good_version("web", "prod", before="1.2") == "1.1"
    assert store.last_good_version("web", "prod", before="1.1") == "1.0"
    assert store.last_good_version("web", "prod", before="1.0") is None
    assert store.last_good_version("web", "staging") is None


def test_a_success_on_no_host_is_no_good_version_even_in_an_older_store(store: Store) -> None:
    deploy(store, "1.0", FLEET, at(0))
    # As deployers before 0004 recorded it: every host failed within the budget, status SUCCEEDED.
    deployment_id = begin(store, "1.1", FLEET, at(10))
    for host in FLEET:
        failed = result(host.name, None, at(11), status=HostStatus.FAILED, error="after_install timed out")
        store.record_host_result(deployment_id, failed)
    store.finish_deployment(deployment_id, DeploymentStatus.SUCCEEDED, at(12))
    assert store.last_good_version("web", "prod") == "1.0"
    assert store.last_good_version("web", "prod", before="1.1") == "1.0"


def test_versions_ever_run(store: Store) -> None:
    assert store.versions_ever_run("web", "prod") == []
    deploy(store, "1.0", FLEET, at(0))
    deploy(store, "1.1", FLEET, at(10), failed=["web-a", "web-b", "web-c", "web-d"])  # ran nowhere
    deploy(store, "1.2", FLEET[:1], at(20))
    assert store.versions_ever_run("web", "prod") == ["1.0", "1.2"]
    assert store.versions_ever_run("web", "staging") == []


S, F, H = DeploymentStatus.SUCCEEDED, DeploymentStatus.FAILED, DeploymentStatus.HALTED


@pytest.mark.parametrize(
    ("newest_first", "before", "expected"),
    [
        ([], None, None),
        ([("1.2", H), ("1.1", S), ("1.0", S)], None, "1.1"),
        ([("1.2", H), ("1.1", S), ("1.0", S)], "1.2", "1.1"),
        ([("1.2", S), ("1.1", S)], "1.2", "1.1"),
        # 1.1 was deployed twice: skip back past its latest deployment only.
        ([("1.1", S), ("1.0", S), ("1.1", S), ("0.9", S)], "1.1", "1.0"),
        ([("1.1", S), ("1.0", F), ("0.9", S)], "1.1", "0.9"),
        ([("2.0", S), ("1.0", S)], "9.9", "2.0"),  # never deployed: the latest other success
        ([("1.0", S)], "1.0", None),
    ],
)
def test_pick_last_good_version(
    newest_first: list[tuple[str, DeploymentStatus]], before: str | None, expected: str | None
) -> None:
    assert pick_last_good_version(newest_first, before) == expected


def test_timestamps_come_back_aware_utc_whatever_zone_went_in(store: Store) -> None:
    tokyo = timezone(timedelta(hours=9))
    deployment_id = begin(store, "1.0", FLEET, T0.astimezone(tokyo))
    view = store.deployment(deployment_id)
    assert view.started_at == T0 and view.started_at.tzinfo is UTC
    assert store.latest_deployments()[0].started_at.tzinfo is UTC


def test_naive_timestamps_are_refused(store: Store) -> None:
    with pytest.raises(ValueError, match="naive datetime"):
        begin(store, "1.0", FLEET, datetime(2026, 1, 1))
    with pytest.raises(ValueError, match="naive datetime"):
        store.versions_at("web", "prod", datetime(2026, 1, 1))


def test_unknown_ids_and_hosts(store: Store) -> None:
    with pytest.raises(NotFound, match="no deployment d-nope"):
        store.deployment("d-nope")
    with pytest.raises(NotFound):
        store.control_state("d-nope")
    deployment_id = begin(store, "1.0", FLEET, at(0))
    with pytest.raises(RuntimeError, match="host web-x is not part of deployment"):
        store.record_step(deployment_id, "web-x", Step.CONNECT, at(1))
    with pytest.raises(RuntimeError, match="host web-x is not part of deployment"):
        store.record_host_result(deployment_id, result("web-x", "1.0", at(1)))
    with pytest.raises(RuntimeError, match="listed twice"):
        begin(store, "1.0", [FLEET[0], FLEET[0]], at(0), environment="qa")


def test_a_closed_store_says_so(store: Store) -> None:
    store.close()
    with pytest.raises(RuntimeError, match="the store is closed"):
        store.history("web")
    store.close()  # closing twice is harmless


def test_views_serialise_for_json(store: Store) -> None:
    deployment_id = deploy(store, "1.0", FLEET[:1], at(0))
    data = store.deployment(deployment_id, steps=True).to_json()
    assert data["status"] == "succeeded" and data["kind"] == "push"
    assert data["started_at"] == "2026-11-27T18:00:00+00:00"
    assert data["counts"]["succeeded"] == 1 and data["host_count"] == 1
    assert data["hosts"][0]["steps"][0]["step"] == "switch"
    assert store.hosts_running("web", "prod")[0].to_json()["since"] == "2026-11-27T18:00:00+00:00"


def test_writes_from_many_threads_at_once_all_land(store: Store) -> None:
    fleet = hosts(*(f"web-{index:02d}" for index in range(40)))
    deployment_id = begin(store, "1.0", fleet, at(0))

    def run_host(index: int) -> None:
        name = fleet[index].name
        for step in (Step.CONNECT, Step.UPLOAD, Step.SWITCH):
            store.record_step(deployment_id, name, step, at(1))
        store.record_host_result(deployment_id, result(name, "1.0", at(2) + timedelta(seconds=index)))

    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(run_host, range(len(fleet))))
    view = store.deployment(deployment_id)
    assert view.counts[HostStatus.SUCCEEDED] == 40
    assert store.versions_at("web", "prod") == [("1.0", 40)]
