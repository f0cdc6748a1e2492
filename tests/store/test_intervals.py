"""Version history as intervals: what ran where, now and at moments between deployments."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest

from deployer.core.results import DeploymentKind, DeploymentStatus, HostStatus
from deployer.store import Store
from tests.store.builders import at, begin, deploy, hosts, result

FLEET = hosts("web-a", "web-b", "web-c")  # datacenters iad, sfo, iad


@pytest.fixture
def three_deployments(store: Store) -> list[str]:
    """1.0 everywhere at T0; 1.1 at +60m (web-b fails validate, keeps 1.0); a rollback to 1.0 at +120m.

    Host i switches i minutes after its deployment starts.
    """
    first = deploy(store, "1.0", FLEET, at(0))
    second = deploy(store, "1.1", FLEET, at(60), failed=["web-b"])
    rollback = deploy(store, "1.0", FLEET, at(120), kind=DeploymentKind.ROLLBACK)
    return [first, second, rollback]


@pytest.mark.parametrize(
    ("minutes", "expected"),
    [
        (-1, []),  # before anything was deployed
        (0.5, [("1.0", 1)]),  # only web-a had switched
        (30, [("1.0", 3)]),
        (61.5, [("1.0", 2), ("1.1", 1)]),  # web-a on 1.1; web-b failed; web-c not yet
        (90, [("1.1", 2), ("1.0", 1)]),  # between the push and the rollback
        (121.5, [("1.0", 2), ("1.1", 1)]),  # the rollback half-way: web-c still on 1.1
        (500, [("1.0", 3)]),
    ],
)
def test_versions_at_moments_between_deployments(
    store: Store, three_deployments: list[str], minutes: float, expected: list[tuple[str, int]]
) -> None:
    assert store.versions_at("web", "prod", at(minutes)) == expected


def test_versions_now_after_the_rollback(store: Store, three_deployments: list[str]) -> None:
    assert store.versions_at("web", "prod") == [("1.0", 3)]
    assert store.current_versions("web", "prod") == {"web-a": "1.0", "web-b": "1.0", "web-c": "1.0"}


def test_hosts_running_a_version_at_a_moment_say_since_when(
    store: Store, three_deployments: list[str]
) -> None:
    first, second, _ = three_deployments
    running = store.hosts_running("web", "prod", "1.1", at(90))
    assert [(i.host, i.datacenter, i.since, i.until, i.deployment_id) for i in running] == [
        ("web-a", "iad", at(60), at(120), second),
        ("web-c", "iad", at(62), at(122), second),
    ]
    old = store.hosts_running("web", "prod", "1.0", at(90))
    assert [(i.host, i.since, i.deployment_id) for i in old] == [("web-b", at(1), first)]


def test_hosts_running_any_version_at_a_moment(store: Store, three_deployments: list[str]) -> None:
    running = store.hosts_running("web", "prod", None, at(61.5))
    assert [(i.host, i.version) for i in running] == [("web-a", "1.1"), ("web-b", "1.0"), ("web-c", "1.0")]
    assert all(i.covers(at(61.5)) for i in running)


def test_hosts_running_now(store: Store, three_deployments: list[str]) -> None:
    _, _, rollback = three_deployments
    running = store.hosts_running("web", "prod", "1.0")
    assert [(i.host, i.until) for i in running] == [("web-a", None), ("web-b", None), ("web-c", None)]
    # web-b never left 1.0: its interval is the first deployment's, untouched by the rollback.
    assert [i.deployment_id == rollback for i in running] == [True, False, True]
    assert store.hosts_running("web", "prod", "1.1") == []
    assert store.hosts_running("web", "prod", "9.9", at(90)) == []


def test_intervals_are_half_open_at_the_switch(store: Store, three_deployments: list[str]) -> None:
    just_before = at(60) - timedelta(microseconds=1)
    before = store.hosts_running("web", "prod", None, just_before)
    assert (before[0].host, before[0].version) == ("web-a", "1.0")
    after = store.hosts_running("web", "prod", None, at(60))
    assert (after[0].host, after[0].version) == ("web-a", "1.1")
    assert [i.host for i in store.hosts_running("web", "prod", "1.1", at(60))] == ["web-a"]
    assert [i.host for i in store.hosts_running("web", "prod", "1.1", just_before)] == []


def test_host_history_is_newest_first(store: Store, three_deployments: list[str]) -> None:
    first, second, rollback = three_deployments
    history = store.host_history("web", "prod", "web-a")
    assert [(i.version, i.since, i.until, i.deployment_id) for i in history] == [
        ("1.0", at(120), None, rollback),
        ("1.1", at(60), at(120), second),
        ("1.0", at(0), at(60), first),
    ]
    assert [(i.version, i.since, i.until) for i in store.host_history("web", "prod", "web-b")] == [
        ("1.0", at(1), None)
    ]
    assert store.host_history("web", "prod", "no-such-host") == []


def test_a_host_that_failed_after_its_switch_runs_the_new_version(store: Store) -> None:
    deploy(store, "1.0", FLEET[:1], at(0))
    deployment_id = begin(store, "1.1", FLEET[:1], at(10))
    failed = result(
        "web-a", "1.1", at(11), status=HostStatus.FAILED, previous="1.0", error="validate exited 7"
    )
    store.record_host_result(deployment_id, failed)
    assert store.current_versions("web", "prod") == {"web-a": "1.1"}
    assert store.versions_at("web", "prod", at(10.5)) == [("1.0", 1)]


def test_a_restart_on_the_same_version_opens_no_interval(store: Store) -> None:
    first = deploy(store, "1.0", FLEET, at(0))
    deploy(store, "1.0", FLEET, at(30), kind=DeploymentKind.RESTART)
    history = store.host_history("web", "prod", "web-c")
    assert [(i.since, i.deployment_id) for i in history] == [(at(2), first)]


def test_the_switch_moment_falls_back_to_the_finish_without_a_switch_step(store: Store) -> None:
    deployment_id = begin(store, "1.0", FLEET[:1], at(0))
    plain = replace(result("web-a", "1.0", at(5)), steps=())
    store.record_host_result(deployment_id, plain)
    assert [i.since for i in store.host_history("web", "prod", "web-a")] == [plain.finished_at]


def test_app_and_environment_are_kept_apart(store: Store, three_deployments: list[str]) -> None:
    deploy(store, "7.0", FLEET, at(200), app="web", environment="staging")
    deploy(store, "2.0", FLEET[:2], at(200), app="api")
    assert store.versions_at("web", "prod") == [("1.0", 3)]
    assert store.versions_at("web", "staging") == [("7.0", 3)]
    assert store.versions_at("api", "prod") == [("2.0", 2)]
    assert store.versions_at("api", "prod", at(100)) == []


def test_retired_hosts_leave_the_present_but_not_the_past(store: Store, three_deployments: list[str]) -> None:
    store.mark_retired("web", "prod", ["web-c", "not-known"], at(150))
    assert store.current_versions("web", "prod") == {"web-a": "1.0", "web-b": "1.0"}
    assert store.versions_at("web", "prod", at(140)) == [("1.0", 3)]
    assert store.versions_at("web", "prod", at(150)) == [("1.0", 2)]
    assert [h.name for h in store.hosts("web", "prod")] == ["web-a", "web-b"]
    retired = [h for h in store.hosts("web", "prod", include_retired=True) if h.is_retired]
    assert [(h.name, h.retired_at) for h in retired] == [("web-c", at(150))]
    assert store.host_history("web", "prod", "web-c")[0].until == at(150)

    # Retiring again changes nothing; coming back in a deployment un-retires it.
    store.mark_retired("web", "prod", ["web-c"], at(160))
    assert store.host_history("web", "prod", "web-c")[0].until == at(150)
    deploy(store, "1.2", FLEET, at(200))
    assert not any(h.is_retired for h in store.hosts("web", "prod", include_retired=True))
    assert store.current_versions("web", "prod") == {"web-a": "1.2", "web-b": "1.2", "web-c": "1.2"}


def test_a_host_whose_address_changed_is_updated(store: Store) -> None:
    deploy(store, "1.0", FLEET, at(0))
    moved = [replace(FLEET[0], address="192.168.9.9", datacenter="fra"), *FLEET[1:]]
    deploy(store, "1.1", moved, at(10))
    record = store.hosts("web", "prod")[0]
    assert (record.name, record.address, record.datacenter, record.first_seen) == (
        "web-a",
        "192.168.9.9",
        "fra",
        at(0),
    )
    assert store.hosts_running("web", "prod", "1.1")[0].datacenter == "fra"


def test_deployment_status_does_not_touch_intervals(store: Store) -> None:
    deployment_id = begin(store, "1.0", FLEET, at(0))
    store.finish_deployment(deployment_id, DeploymentStatus.ABORTED, at(1))
    assert store.versions_at("web", "prod") == []


def test_hosts_are_listed_in_the_same_order_on_every_database(store: Store) -> None:
    names = ["web-b", "Web-a", "web_c", "web-B", "web-10", "web-9"]
    deploy(store, "1.0", hosts(*names), at(0))
    expected = sorted(names)  # code-point order, not a database collation
    assert [i.host for i in store.hosts_running("web", "prod")] == expected
    assert [i.host for i in store.hosts_running("web", "prod", "1.0", at(30))] == expected
    assert [i.host for i in store.hosts_running("web", "prod", None, at(30))] == expected
    assert [h.name for h in store.hosts("web", "prod")] == expected
