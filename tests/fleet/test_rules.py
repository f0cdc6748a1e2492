"""Which version a sync, a promotion and a rollback take, read from a real store (SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from deployer.core.errors import PromotionRefused
from deployer.core.results import DeploymentKind, DeploymentStatus, HostResult, HostStatus
from deployer.core.targets import Host
from deployer.operations.plan import latest_release
from deployer.operations.sync import promotable_version
from deployer.store import NewDeployment, Store

T0 = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
HOSTS = [Host("h1", "127.0.0.1", "dc1"), Host("h2", "127.0.0.2", "dc2")]


class History:
    """Writes finished deployments of app ``web`` into a store, a minute apart."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.minutes = 0

    def add(
        self,
        kind: DeploymentKind,
        version: str,
        status: DeploymentStatus,
        *,
        environment: str = "staging",
        failed: int = 0,
        finish: bool = True,
    ) -> str:
        self.minutes += 1
        now = T0 + timedelta(minutes=self.minutes)
        deployment_id = self.store.begin_deployment(
            NewDeployment(
                app="web",
                environment=environment,
                version=version,
                previous_version=None,
                kind=kind,
                started_by="test",
                started_from="here",
                pid=1,
                spec_sha256="0" * 64,
                hosts=[(host, 1) for host in HOSTS],
            ),
            now=now,
        )
        for index, host in enumerate(HOSTS):
            outcome = HostStatus.FAILED if index < failed else HostStatus.SUCCEEDED
            self.store.record_host_result(
                deployment_id, HostResult(host.name, outcome, now, now, version=version)
            )
        if finish:
            self.store.finish_deployment(deployment_id, status, now + timedelta(seconds=30))
        return deployment_id


OK = DeploymentStatus.SUCCEEDED
PUSH, ROLLBACK, SYNC, RESTART = (
    DeploymentKind.PUSH,
    DeploymentKind.ROLLBACK,
    DeploymentKind.SYNC,
    DeploymentKind.RESTART,
)


def test_a_restart_makes_no_version_good_nor_latest(store: Store) -> None:
    history = History(store)
    history.add(PUSH, "1.0", OK)
    history.add(PUSH, "1.1", OK)
    history.add(RESTART, "1.0", OK)  # e.g. --limit over hosts still on 1.0
    assert store.last_good_version("web", "staging") == "1.1"  # what a sync deploys
    latest = latest_release(store, "web", "staging")
    assert latest is not None and latest.version == "1.1"
    assert store.last_good_version("web", "staging", before="1.1") == "1.0"  # what a rollback takes
    assert promotable_version(store, "web", "staging") == "1.1"


@pytest.mark.parametrize(
    ("deployments", "expected"),
    [
        ([(PUSH, "1.0", OK, 0)], "1.0"),
        ([(PUSH, "1.0", OK, 0), (ROLLBACK, "0.9", OK, 0)], "0.9"),
        ([(PUSH, "1.0", OK, 0), (SYNC, "1.0", OK, 0), (RESTART, "1.0", DeploymentStatus.HALTED, 2)], "1.0"),
        ([(PUSH, "1.0", OK, 0), (PUSH, "1.1", DeploymentStatus.HALTED, 2)], "halted"),
        ([(PUSH, "1.0", OK, 0), (PUSH, "1.1", DeploymentStatus.ABORTED, 0)], "aborted"),
        ([(PUSH, "1.0", OK, 0), (PUSH, "1.1", OK, 1)], "succeeded but 1 of its hosts failed"),
    ],
)
def test_what_promotes(store: Store, deployments: list[tuple], expected: str) -> None:  # type: ignore[type-arg]
    history = History(store)
    for kind, version, status, failed in deployments:
        history.add(kind, version, status, failed=failed)
    history.add(PUSH, "9.9", OK, environment="production")  # another environment is not looked at
    if expected[0].isdigit():
        assert promotable_version(store, "web", "staging") == expected
        return
    with pytest.raises(PromotionRefused) as refused:
        promotable_version(store, "web", "staging")
    message = str(refused.value)
    assert expected in message and "\n" not in message and message.startswith("staging's latest deployment")


def test_nothing_to_promote_from_an_environment_never_deployed_or_still_running(store: Store) -> None:
    with pytest.raises(PromotionRefused, match="nothing of web has been deployed to staging"):
        promotable_version(store, "web", "staging")
    History(store).add(PUSH, "1.0", OK, finish=False)
    with pytest.raises(PromotionRefused, match=r"\(push of 1.0\) is still running"):
        promotable_version(store, "web", "staging")
