"""The host's CPU for one deployment: the driver's own processes, the hooks' work aside.

Run: .venv/bin/python bench/host_cpu.py [--runs 30]

The driver (deployer/hosts/remote/driver.sh, protocol v2) runs here under /bin/sh, as sshd
would start it, with the controller's messages written to its stdin: the artifact, then
the wave's go. Each deployment is a new version into the same target, so after the first
few the host holds more releases than it keeps and the driver lists and prunes them: the
steady state. The CPU is the user + sys time of the driver and every process it starts
(``getrusage(RUSAGE_CHILDREN)`` around it); sshd's own share is not in it.

Two specs: no hooks at all (the driver alone), and one ``start: true`` hook (what each
hook adds: its timeout wrapper and shell). Figures: milliseconds of CPU per deployment,
the median and the worst of ``--runs``, and the median in units of starting /bin/true
(measured in the same run: a busy machine slows both alike, so that ratio holds where
the milliseconds wander). Issue 21's target: ≤ 12 ms for the driver alone.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from deployer.core.results import DeploymentKind

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from deployer.core.results import Step  # noqa: E402
from deployer.core.runner import HookCommand, ReleaseJob  # noqa: E402
from deployer.core.targets import Host  # noqa: E402
from deployer.hosts.artifact import prepare_artifact  # noqa: E402  (the repository's root first)
from deployer.hosts.protocol import Go, artifact_header, driver_command, encode  # noqa: E402

TARGET_MS = 12.0
HOST = Host(name="bench", address="127.0.0.1", datacenter="dc1")


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def one_deployment(work: Path, number: int, hooks: dict[Step, HookCommand]) -> float:
    """Deploy version ``number`` into ``work/app``; the CPU it took, in seconds."""
    source = work / f"src-{number}"
    source.mkdir()
    (source / "VERSION").write_text(f"{number}\n")
    (source / "app.py").write_text("print('hello')\n" * 200)
    artifact = prepare_artifact(str(source), work / "cache")
    job = ReleaseJob(
        deployment_id=f"d-bench-{number:04d}",
        app="bench",
        environment="bench",
        version=str(number),
        kind=DeploymentKind.PUSH,
        target=str(work / "app"),
        keep_releases=3,
        artifact=artifact,
        hooks=hooks,
        started_by="bench",
    )
    data = Path(artifact.path).read_bytes()
    previous = str(number - 1) if number > 1 else ""
    # Prune what staging would list: the controller's choice for a host holding more than
    # three releases is the oldest one, at the end of the list.
    doomed = (4,) if number > 3 else ()
    answers = artifact_header(len(data)) + data + b"sent\n" + encode(Go(datetime.now(UTC), previous, doomed))
    before = children_cpu()
    done = subprocess.run(
        ["/bin/sh", "-c", driver_command(job, HOST)],
        input=answers,
        capture_output=True,
        timeout=60,
        check=True,
    )
    spent = children_cpu() - before
    if not done.stdout.decode().splitlines()[-2] == "@@done succeeded":
        raise SystemExit(f"deployment {number} did not succeed: {done.stdout.decode()[-500:]}")
    return spent


def measure(runs: int, hooks: dict[Step, HookCommand]) -> list[float]:
    with tempfile.TemporaryDirectory(prefix="hostcpu-") as temporary:
        work = Path(temporary)
        one_deployment(work, 1, hooks)  # the first one makes the layout: not the steady state
        return [one_deployment(work, number, hooks) * 1000 for number in range(2, runs + 2)]


def true_cost(runs: int = 200) -> float:
    """The CPU of starting /bin/true here and now, in ms: the unit a busy machine inflates
    as much as the driver's own processes, so that the ratio holds from run to run."""
    before = children_cpu()
    for _ in range(runs):
        subprocess.run(["/bin/true"], check=True)
    return (children_cpu() - before) / runs * 1000


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--runs", type=int, default=30)
    args = parser.parse_args(argv)
    start = HookCommand(step=Step.START, command="true", timeout=30)
    unit = true_cost()
    alone = measure(args.runs, {})
    hooked = measure(args.runs, {Step.START: start})
    unit = (unit + true_cost()) / 2
    print(f"host CPU per deployment, {args.runs} deployments each (ms: median, worst; median ÷ /bin/true)")
    for name, figures in (("driver alone", alone), ("with a `true` hook", hooked)):
        median = statistics.median(figures)
        print(f"  {name:20}  {median:5.1f}  {max(figures):5.1f}   {median / unit:4.1f} x")
    print(f"  (starting /bin/true here: {unit:.2f} ms, measured before and after)")
    met = statistics.median(alone) <= TARGET_MS
    print(f"target: the driver alone ≤ {TARGET_MS:g} ms (median): " + ("met" if met else "NOT met"))
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
