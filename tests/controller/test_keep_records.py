"""A push tells every host which deployments' records to keep: the app's deployments
whose outcome on some host the store does not know (``deploy reconcile`` reads them)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from deployer.core.results import DeploymentStatus, HostResult, HostStatus
from deployer.core.runner import HostEvents, ReleaseJob
from deployer.core.targets import SshTarget
from deployer.operations.options import PushOptions
from deployer.operations.plan import prepare
from deployer.operations.push import execute
from deployer.store import Store
from tests.controller.fake_runner import FakeRunner
from tests.store.builders import at, begin, hosts, result


class JobRecorder(FakeRunner):
    jobs: list[ReleaseJob]

    async def deploy(self, target: SshTarget, job: ReleaseJob, events: HostEvents) -> HostResult:
        self.jobs = [*getattr(self, "jobs", []), job]
        return await super().deploy(target, job, events)


def test_a_push_passes_the_unknown_outcome_deployments_to_the_driver(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    (tmp_path / "app").mkdir()
    (tmp_path / "app" / "VERSION").write_text("2.0\n")
    spec = tmp_path / "spec.yaml"
    spec.write_text(
        "app: web\nversion: '2.0'\nenvironment: prod\nartifact: app/\ntarget: /srv/web\n"
        "fleet: {hosts: [{name: a, datacenter: dc1}, {name: b, datacenter: dc1}]}\n"
    )
    fleet = hosts("a", "b")
    lost = begin(store, "1.0", fleet, at(0), environment="prod")
    store.record_host_result(lost, result("a", "1.0", at(1)))
    store.record_host_result(lost, result("b", None, at(1), status=HostStatus.UNKNOWN))
    store.finish_deployment(lost, DeploymentStatus.FAILED, at(2))
    runner = JobRecorder()
    prepared = prepare(PushOptions(str(spec)), store)
    asyncio.run(execute(prepared, store, lambda event: None, runner=runner))
    assert {job.keep_records for job in runner.jobs} == {(lost,)}
