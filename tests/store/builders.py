"""Small builders for store tests: hosts, results, and whole deployments at fixed times."""

from __future__ import annotations

import os
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from deployer.core.results import DeploymentKind, DeploymentStatus, HostResult, HostStatus, Step, StepResult
from deployer.core.targets import Host
from deployer.store import NewDeployment, Store

T0 = datetime(2026, 11, 27, 18, 0, tzinfo=UTC)
SHA = "0" * 64


def at(minutes: float) -> datetime:
    """``minutes`` after T0."""
    return T0 + timedelta(minutes=minutes)


def hosts(*names: str, datacenters: Sequence[str] = ("iad", "sfo")) -> list[Host]:
    return [
        Host(name, f"10.0.0.{index + 1}", datacenters[index % len(datacenters)])
        for index, name in enumerate(names)
    ]


def begin(
    store: Store,
    version: str,
    fleet: Sequence[Host],
    now: datetime,
    *,
    app: str = "web",
    environment: str = "prod",
    kind: DeploymentKind = DeploymentKind.PUSH,
    user: str = "alice",
    machine: str = "build-1",
    pid: int | None = None,
    skipped: Sequence[tuple[Host, str]] = (),
) -> str:
    return store.begin_deployment(
        NewDeployment(
            app=app,
            environment=environment,
            version=version,
            previous_version=None,
            kind=kind,
            started_by=user,
            started_from=machine,
            pid=os.getpid() if pid is None else pid,
            spec_sha256=SHA,
            hosts=[(host, index // 2) for index, host in enumerate(fleet)],
            skipped=skipped,
        ),
        now=now,
    )


def result(
    host: str,
    version: str | None,
    switched_at: datetime,
    *,
    status: HostStatus = HostStatus.SUCCEEDED,
    previous: str | None = None,
    error: str | None = None,
) -> HostResult:
    """A host's result whose SWITCH step ended exactly at ``switched_at`` (started 1 s before)."""
    switch = StepResult(Step.SWITCH, 0, switched_at - timedelta(seconds=1), 1.0, "switched\n")
    return HostResult(
        host=host,
        status=status,
        started_at=switched_at - timedelta(seconds=30),
        finished_at=switched_at + timedelta(seconds=30),
        step=Step.VALIDATE if status is HostStatus.FAILED else Step.PRUNE,
        exit_status=7 if status is HostStatus.FAILED else 0,
        error=error,
        output_tail="last line" if error else "",
        steps=(switch,),
        version=version,
        previous_version=previous,
    )


def deploy(
    store: Store,
    version: str,
    fleet: Sequence[Host],
    start: datetime,
    *,
    app: str = "web",
    environment: str = "prod",
    failed: Sequence[str] = (),
    kind: DeploymentKind = DeploymentKind.PUSH,
) -> str:
    """A whole deployment: host i switches at start + i minutes; failed hosts keep their version."""
    deployment_id = begin(store, version, fleet, start, app=app, environment=environment, kind=kind)
    for index, host in enumerate(fleet):
        moment = start + timedelta(minutes=index)
        if host.name in failed:
            store.record_host_result(
                deployment_id,
                result(host.name, None, moment, status=HostStatus.FAILED, error="validate exited 7"),
            )
        else:
            store.record_host_result(deployment_id, result(host.name, version, moment))
    end = start + timedelta(minutes=len(fleet))
    status = DeploymentStatus.FAILED if failed else DeploymentStatus.SUCCEEDED
    store.finish_deployment(deployment_id, status, end)
    return deployment_id
