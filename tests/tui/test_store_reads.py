"""The store's reads made for the screens, on SQLite and PostgreSQL: a poll's light read, one host's read.

``Store.deployment_progress`` must show what ``Store.deployment`` shows (state, order,
counts) while building objects only for hosts whose row changed; ``Store.deployment_with_host``
must give one host with its steps, and the counts of all.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import fields
from datetime import timedelta
from operator import attrgetter

import pytest

from deployer.core.errors import NotFound
from deployer.core.results import DeploymentStatus, HostStatus, Step
from deployer.store import Store
from deployer.store.views import HostProgress
from tests.store.builders import at, begin, hosts, result
from tui.model import ShownHost

# Names out of order on purpose: the plan order is (wave, name), not the order given.
FLEET = hosts("web-d", "web-a", "web-c", "web-b", "web-f", "web-e", datacenters=("iad", "sfo", "fra"))


# What a live screen shows of a host: HostProgress's fields (HostDeploymentView has them and more).
SHOWN = attrgetter(*(field.name for field in fields(HostProgress)))


def shown(hosts: Sequence[ShownHost]) -> list[tuple[object, ...]]:
    return [SHOWN(host) for host in hosts]


def test_progress_shows_what_the_full_read_shows(store: Store) -> None:
    skipped = hosts("web-z")[0]
    deployment_id = begin(store, "1.0", FLEET, at(0), skipped=[(skipped, "already runs 1.0")])
    store.record_host_result(deployment_id, result("web-a", "1.0", at(1)))
    store.record_host_result(
        deployment_id, result("web-d", None, at(2), status=HostStatus.FAILED, error="validate exited 7")
    )
    store.record_step(deployment_id, "web-b", Step.UPLOAD, at(3))

    progress = store.deployment_progress(deployment_id)
    full = store.deployment(deployment_id)

    assert shown(progress.hosts) == shown(full.hosts)
    assert [h.name for h in progress.hosts][-1] == "web-z"  # skipped hosts (no wave) last
    assert progress.view.counts == full.counts
    assert progress.view.hosts == ()
    assert (progress.view.id, progress.view.status, progress.view.version) == (
        deployment_id,
        DeploymentStatus.RUNNING,
        "1.0",
    )


def test_a_read_builds_only_the_hosts_that_changed(store: Store) -> None:
    deployment_id = begin(store, "1.0", FLEET, at(0))
    first = store.deployment_progress(deployment_id)

    again = store.deployment_progress(deployment_id, since=first)
    assert again.hosts is first.hosts  # nothing changed: the very same tuple

    store.record_step(deployment_id, "web-c", Step.CONNECT, at(1))
    store.record_host_result(deployment_id, result("web-a", "1.0", at(2)))
    later = store.deployment_progress(deployment_id, since=again)

    assert shown(later.hosts) == shown(store.deployment(deployment_id).hosts)
    before = {h.name: h for h in again.hosts}
    changed = {h.name for h in later.hosts if h is not before[h.name]}
    assert changed == {"web-a", "web-c"}
    assert later.view.counts[HostStatus.RUNNING] == 1
    assert later.view.counts[HostStatus.SUCCEEDED] == 1


def test_a_host_that_joins_is_read_with_its_name_and_in_plan_order(store: Store) -> None:
    deployment_id = begin(store, "1.0", FLEET[:3], at(0))
    first = store.deployment_progress(deployment_id)
    late = hosts("web-0", datacenters=("ams",))[0]
    store.add_hosts(deployment_id, [(late, 0)], at(1))

    later = store.deployment_progress(deployment_id, since=first)

    assert shown(later.hosts) == shown(store.deployment(deployment_id).hosts)
    assert later.hosts[0].name == "web-0" and later.hosts[0].datacenter == "ams"


def test_the_last_read_sees_the_hosts_a_finish_left_not_started(store: Store) -> None:
    deployment_id = begin(store, "1.0", FLEET, at(0))
    first = store.deployment_progress(deployment_id)
    store.finish_deployment(deployment_id, DeploymentStatus.ABORTED, at(1), reason="asked to")

    last = store.deployment_progress(deployment_id, since=first)

    assert last.view.is_finished
    assert {h.status for h in last.hosts} == {HostStatus.NOT_STARTED}
    assert last.view.counts[HostStatus.NOT_STARTED] == len(FLEET)


def test_progress_of_an_unknown_deployment_is_not_found(store: Store) -> None:
    with pytest.raises(NotFound):
        store.deployment_progress("d-nope")


def test_one_host_is_read_with_its_steps_and_the_counts_of_all(store: Store) -> None:
    deployment_id = begin(store, "1.0", FLEET, at(0))
    store.record_host_result(deployment_id, result("web-a", "1.0", at(1)))
    store.record_host_result(
        deployment_id, result("web-b", None, at(2), status=HostStatus.FAILED, error="validate exited 7")
    )

    view = store.deployment_with_host(deployment_id, "web-b")

    full = store.deployment(deployment_id, steps=True)
    assert view.hosts == tuple(h for h in full.hosts if h.name == "web-b")
    assert view.hosts[0].steps and view.hosts[0].steps[0].step is Step.SWITCH
    assert view.counts == full.counts
    assert view.hosts[0].started_at == at(2) - timedelta(seconds=30)


def test_a_host_not_in_the_deployment_reads_as_none(store: Store) -> None:
    deployment_id = begin(store, "1.0", FLEET, at(0))
    assert store.deployment_with_host(deployment_id, "web-nope").hosts == ()
    with pytest.raises(NotFound):
        store.deployment_with_host("d-nope", "web-a")
