"""Store contents for the TUI tests, built through the real Store API at fixed times.

The fleet: app ``shop`` in ``prod``, 30 hosts in three datacenters (iad, sfo, fra),
planned in 5 waves of 6. History: 1.0 everywhere a week before T0, 1.1 everywhere
two days before, then 1.2 started at T0 and half-way through when the clock reads
NOW: waves 1-2 done (one host failed in wave 2), wave 3 running (hosts at different
steps, one unreachable), waves 4-5 pending. Also ``api`` in ``staging``, halted.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from deployer.core.results import DeploymentKind, DeploymentStatus, HostResult, HostStatus, Step, StepResult
from deployer.core.targets import Host
from deployer.store import NewDeployment, Store

T0 = datetime(2026, 11, 27, 18, 0, tzinfo=UTC)
NOW = T0 + timedelta(minutes=12, seconds=34)
SHA = "0" * 64
MACHINE = "build-1"  # not this machine: liveness goes by the heartbeat alone
DATACENTERS = ("iad", "sfo", "fra")
WAVE_SIZE = 6
STEPS = tuple(Step)


def fixed_clock() -> datetime:
    return NOW


def fleet(count: int = 30, prefix: str = "web") -> list[Host]:
    return [
        Host(f"{prefix}-{index:02d}", f"10.0.{index // 250}.{index % 250 + 1}", DATACENTERS[index % 3])
        for index in range(count)
    ]


def begin(
    store: Store,
    hosts: list[Host],
    *,
    version: str,
    previous: str | None,
    now: datetime,
    app: str = "shop",
    environment: str = "prod",
    user: str = "alice",
    kind: DeploymentKind = DeploymentKind.PUSH,
    wave_size: int = WAVE_SIZE,
) -> str:
    return store.begin_deployment(
        NewDeployment(
            app=app,
            environment=environment,
            version=version,
            previous_version=previous,
            kind=kind,
            started_by=user,
            started_from=MACHINE,
            pid=4242,
            spec_sha256=SHA,
            hosts=[(host, index // wave_size + 1) for index, host in enumerate(hosts)],
        ),
        now=now,
    )


def host_result(
    name: str,
    version: str,
    previous: str | None,
    started: datetime,
    *,
    fail_at: Step | None = None,
    unreachable: bool = False,
    step_seconds: float = 4.0,
) -> HostResult:
    """A host that ran every step (``step_seconds`` each), or stopped at ``fail_at`` (exit 7)."""
    steps = []
    moment = started
    if unreachable:
        steps.append(
            StepResult(Step.CONNECT, None, moment, 10.0, f"ssh: connect to host {name} port 22: timed out\n")
        )
        return HostResult(
            host=name,
            status=HostStatus.UNREACHABLE,
            started_at=started,
            finished_at=started + timedelta(seconds=10),
            step=Step.CONNECT,
            error="could not connect: timed out after 10s",
            output_tail=steps[0].output,
            steps=tuple(steps),
            version=previous,
            previous_version=previous,
        )
    for step in STEPS:
        failed = step is fail_at
        output = f"{step.value} on {name}: ok\n"
        if failed:
            output = f"{step.value} on {name}\nchecking http://localhost:8080/health\nHTTP 503\nunhealthy\n"
        steps.append(StepResult(step, 7 if failed else 0, moment, step_seconds, output))
        moment += timedelta(seconds=step_seconds)
        if failed:
            break
    switched = fail_at is None or STEPS.index(fail_at) > STEPS.index(Step.SWITCH)
    return HostResult(
        host=name,
        status=HostStatus.FAILED if fail_at else HostStatus.SUCCEEDED,
        started_at=started,
        finished_at=moment,
        step=fail_at or Step.PRUNE,
        exit_status=7 if fail_at else 0,
        error=f"{fail_at.value} exited 7: unhealthy" if fail_at else None,
        output_tail="HTTP 503\nunhealthy" if fail_at else "",
        steps=tuple(steps),
        version=version if switched else previous,
        previous_version=previous,
    )


def finished_deployment(
    store: Store,
    hosts: list[Host],
    *,
    version: str,
    previous: str | None,
    start: datetime,
    app: str = "shop",
    environment: str = "prod",
    user: str = "alice",
    failed: tuple[str, ...] = (),
    status: DeploymentStatus = DeploymentStatus.SUCCEEDED,
    kind: DeploymentKind = DeploymentKind.PUSH,
) -> str:
    deployment_id = begin(
        store,
        hosts,
        version=version,
        previous=previous,
        now=start,
        app=app,
        environment=environment,
        user=user,
        kind=kind,
    )
    for index, host in enumerate(hosts):
        started = start + timedelta(seconds=20 * index)
        fail = Step.VALIDATE if host.name in failed else None
        store.record_host_result(
            deployment_id, host_result(host.name, version, previous, started, fail_at=fail)
        )
    end = start + timedelta(seconds=20 * len(hosts) + 40)
    reason = f"{len(hosts) - len(failed)} hosts updated"
    if status is DeploymentStatus.HALTED:
        reason = f"{len(failed)} hosts failed, more than the {len(failed) - 1} allowed"
    store.finish_deployment(deployment_id, status, end, reason=reason)
    return deployment_id


@dataclass(frozen=True, slots=True)
class Scenario:
    running_id: str
    previous_ids: tuple[str, ...]
    api_id: str
    hosts: tuple[Host, ...]


def build(store: Store) -> Scenario:
    """The story told in the module docstring."""
    hosts = fleet()
    first = finished_deployment(store, hosts, version="1.0", previous=None, start=T0 - timedelta(days=7))
    second = finished_deployment(
        store, hosts, version="1.1", previous="1.0", start=T0 - timedelta(days=2), user="bob"
    )
    api_hosts = fleet(8, prefix="api")
    api = finished_deployment(
        store,
        api_hosts,
        version="3.4",
        previous=None,
        start=T0 - timedelta(hours=5),
        app="api",
        environment="staging",
        failed=("api-01", "api-02"),
        status=DeploymentStatus.HALTED,
    )
    running = begin(store, hosts, version="1.2", previous="1.1", now=T0)
    write_progress(store, running, hosts)
    store.heartbeat(running, pid=4242, started_from=MACHINE, now=NOW - timedelta(seconds=2))
    return Scenario(running, (first, second), api, tuple(hosts))


def write_progress(store: Store, deployment_id: str, hosts: list[Host]) -> None:
    """Waves 1-2 done (web-07 failed validate), wave 3 in flight, waves 4-5 pending."""
    for index, host in enumerate(hosts[: 2 * WAVE_SIZE]):
        started = T0 + timedelta(seconds=40 * index)
        fail = Step.VALIDATE if host.name == "web-07" else None
        store.record_host_result(deployment_id, host_result(host.name, "1.2", "1.1", started, fail_at=fail))
    wave3 = hosts[2 * WAVE_SIZE : 3 * WAVE_SIZE]
    store.record_host_result(
        deployment_id, host_result(wave3[0].name, "1.2", "1.1", NOW - timedelta(minutes=1), unreachable=True)
    )
    for offset, host in enumerate(wave3[1:], start=1):
        store.record_step(deployment_id, host.name, STEPS[offset], NOW - timedelta(seconds=30 + offset))
