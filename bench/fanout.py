"""One command on every host at once: our runner against a bare asyncssh loop.

Run: /work/venv/bin/python bench/fanout.py [--hosts 100] [--fleet lab|openssh|both] [--rounds 3]

On the same hosts (a lab fleet, then an OpenSSH fleet) it runs (a) a trivial hook
(``true``) and (b) ``sleep 0.2`` on all hosts at once, twice each way:

* ours: a restart-kind :class:`~deployer.core.runner.ReleaseJob` whose only hook is ``start``,
  through :class:`deployer.hosts.ssh.SshRunner` (a fresh runner per round, so connecting counts);
  the driver script, its step acknowledgement and its state file all included;
* bare: ``asyncssh.connect`` + ``conn.run(command)`` per host, the least a script can do.

It prints the wall time, the controller's CPU per host (``getrusage`` of this process:
the hosts run in other processes) and ours ÷ bare. Targets: ratio ≤ 1.2 (wall), and at
most 10 ms of controller CPU per host. Each figure is the median of ``--rounds`` rounds.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import resource
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import asyncssh

from deployer.core.results import DeploymentKind, HostStatus, Step
from deployer.core.runner import HookCommand, ReleaseJob
from deployer.core.targets import Host, SshOptions, SshTarget, resolve_ssh
from deployer.hosts.artifact import prepare_artifact
from deployer.hosts.ssh import SshRunner

# The fleets live in the test plugins (tests.plugins.*): make the repository importable.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

RATIO_TARGET = 1.2
CPU_TARGET_MS = 10.0
TARGET_DIR = "~/bench-app"
COMMANDS = {"true": "true", "sleep 0.2": "sleep 0.2"}


@dataclass(frozen=True, slots=True)
class Figure:
    wall: float
    cpu_per_host_ms: float


@dataclass(frozen=True, slots=True)
class BenchFleet:
    name: str
    hosts: tuple[Host, ...]
    ssh: SshOptions

    def targets(self) -> list[SshTarget]:
        return [resolve_ssh(host, self.ssh, SshOptions()) for host in self.hosts]


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def _measure(host_count: int, work: Callable[[], Awaitable[None]]) -> Figure:
    cpu, wall = _cpu_seconds(), time.perf_counter()
    await work()
    return Figure(time.perf_counter() - wall, (_cpu_seconds() - cpu) * 1000 / host_count)


async def _allow(_host: str, _step: Step) -> bool:
    return True


def _job(deployment_id: str, kind: str, version: str, **hooks: HookCommand) -> ReleaseJob:
    return ReleaseJob(
        deployment_id=deployment_id,
        app="bench",
        environment="bench",
        version=version,
        kind=kind,
        target=TARGET_DIR,
        keep_releases=3,
        artifact=None,
        hooks={Step(step): hook for step, hook in hooks.items()},
        started_by="bench",
    )


async def _prepare(fleet: BenchFleet, work_dir: Path) -> None:
    """Put a release on every host, so a restart has a `current` to run in."""
    source = work_dir / "release"
    source.mkdir(exist_ok=True)
    (source / "VERSION").write_text("1.0\n")
    artifact = prepare_artifact(source, work_dir / "cache")
    job = _job("bench-setup", DeploymentKind.PUSH, "1.0")
    await _run_everywhere(fleet, dataclasses.replace(job, artifact=artifact), "setup")


async def _ours(fleet: BenchFleet, command: str, round_number: int) -> None:
    start = HookCommand(step=Step.START, command=command, timeout=30)
    job = _job(f"bench-{round_number}-{time.monotonic_ns()}", DeploymentKind.RESTART, "1.0", start=start)
    await _run_everywhere(fleet, job, "ours")


async def _run_everywhere(fleet: BenchFleet, job: ReleaseJob, what: str) -> None:
    """``job`` on every host at once with our runner; exits unless every host succeeded."""
    runner = SshRunner()
    try:
        results = await asyncio.gather(*(runner.deploy(t, job, _allow) for t in fleet.targets()))
    finally:
        await runner.aclose()
    failed = [r for r in results if r.status != HostStatus.SUCCEEDED]
    if failed:
        raise SystemExit(f"{what} failed on {len(failed)} hosts, e.g. {failed[0].host}: {failed[0].error}")


async def _bare(fleet: BenchFleet, command: str) -> None:
    async def one(target: SshTarget) -> int | None:
        async with asyncssh.connect(
            target.host.address,
            port=target.host.port,
            username=target.user,
            client_keys=[target.identity_file] if target.identity_file else (),
            known_hosts=target.known_hosts,
            config=[],
        ) as connection:
            result = await connection.run(command)
            return result.exit_status

    statuses = await asyncio.gather(*(one(t) for t in fleet.targets()), return_exceptions=True)
    bad = [s for s in statuses if s != 0]
    if bad:
        raise SystemExit(f"bare failed on {len(bad)} hosts, e.g. {bad[0]!r}")


async def _bench_fleet(fleet: BenchFleet, rounds: int, work_dir: Path) -> list[tuple[str, Figure, Figure]]:
    await _prepare(fleet, work_dir)
    host_count = len(fleet.hosts)
    rows = []
    for label, command in COMMANDS.items():
        ours: list[Figure] = []
        bare: list[Figure] = []
        for round_number in range(rounds):
            measure_ours = _measure(host_count, partial(_ours, fleet, command, round_number))
            measure_bare = _measure(host_count, partial(_bare, fleet, command))
            # Alternate the order so neither side always runs on a warmer machine.
            if round_number % 2 == 0:
                bare.append(await measure_bare)
                ours.append(await measure_ours)
            else:
                ours.append(await measure_ours)
                bare.append(await measure_bare)
        rows.append((label, _median(ours), _median(bare)))
    return rows


def _median(figures: Sequence[Figure]) -> Figure:
    return Figure(
        statistics.median(f.wall for f in figures), statistics.median(f.cpu_per_host_ms for f in figures)
    )


@contextlib.contextmanager
def _lab(count: int, work_dir: Path) -> Iterator[BenchFleet]:
    from tests.plugins.lab_fleet import start_test_lab  # the test plugin picks a free address block

    with start_test_lab(work_dir / "lab", count, 4) as lab:
        yield BenchFleet("lab", lab.hosts, lab.ssh_options)


@contextlib.contextmanager
def _openssh(count: int) -> Iterator[BenchFleet]:
    from tests.plugins.sshd_fleet import openssh_unavailable_reason, start_sshd_fleet

    reason = openssh_unavailable_reason()
    if reason is not None:
        raise SystemExit(f"cannot run the OpenSSH fleet here: {reason}")
    with start_sshd_fleet(count=count, datacenters=4) as fleet:
        # /root is each host's private, empty home: the release goes there.
        yield BenchFleet("openssh", tuple(fleet.hosts), fleet.ssh_options)


def _print(fleet: str, host_count: int, rows: list[tuple[str, Figure, Figure]]) -> bool:
    print(f"\n{fleet}: {host_count} hosts at once (median of rounds)")
    heads = ("ours wall", "bare wall", "ratio", "ours CPU/host", "bare CPU/host")
    print(f"  {'command':<10} {heads[0]:>10} {heads[1]:>10} {heads[2]:>6} {heads[3]:>14} {heads[4]:>14}")
    within = True
    for label, ours, bare in rows:
        ratio = ours.wall / bare.wall
        within &= ratio <= RATIO_TARGET and ours.cpu_per_host_ms <= CPU_TARGET_MS
        print(
            f"  {label:<10} {ours.wall:>9.3f}s {bare.wall:>9.3f}s {ratio:>6.2f}"
            f" {ours.cpu_per_host_ms:>11.2f} ms {bare.cpu_per_host_ms:>11.2f} ms"
        )
    return within


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--hosts", type=int, default=100)
    parser.add_argument("--fleet", choices=("lab", "openssh", "both"), default="both")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    kinds = ("lab", "openssh") if args.fleet == "both" else (args.fleet,)
    within = True
    with tempfile.TemporaryDirectory(prefix="fanout-") as temporary:
        work_dir = Path(temporary)
        for kind in kinds:
            manager = _lab(args.hosts, work_dir) if kind == "lab" else _openssh(args.hosts)
            with manager as fleet:
                rows = asyncio.run(_bench_fleet(fleet, args.rounds, work_dir))
            within &= _print(kind, args.hosts, rows)
    print(
        f"\ntargets: ours ÷ bare ≤ {RATIO_TARGET}, controller CPU ≤ {CPU_TARGET_MS:g} ms per host: "
        + ("met" if within else "NOT met")
    )
    return 0 if within else 1


if __name__ == "__main__":
    sys.exit(main())
