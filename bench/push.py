"""End to end: ``deploy push`` of 100 hosts in 10 waves, against a bare asyncssh script.

Run: /work/venv/bin/python bench/push.py [--hosts 100] [--fleet lab|openssh|both] [--runs 2]
                                         [--profile DIR]

On each fleet (a lab, then real OpenSSH hosts) the spec is: ``batch: 10%`` striped over 3
datacenters (10 waves of 10), one hook, ``start: sleep 0.2``, ``bake: 0s``,
``max_failures: 0``, and an artifact directory of a few small files. Every run deploys
into fresh target directories with a fresh SQLite store, twice each way:

* first push (1.0): the target does not exist yet, so every host gets the artifact;
* second push (2.0, a changed file): the steady state, an upload over a live release.

Two ways, each its own process, so both pay for their interpreter's start-up:

* ours: ``python -m deployer push SPEC --yes --json --db sqlite:///...``, the real CLI;
* bare: ``python bench/push.py --bare PLAN.json``, the least an asyncssh script can do
  for the same on-host result: per host, one connection and ONE channel that receives the
  same .tar.gz on stdin, unpacks it into ``releases/<v>``, switches ``current`` atomically
  (a new link renamed over it) and runs ``sleep 0.2`` in the release; the same waves (the
  planner's, computed here), one wave after another. It imports asyncssh and nothing else.
  Two of them: ``bare`` connects to each host in its wave, ``bare-pre`` connects to every
  host first and then runs one command per host per wave (each plays to its strength).

Figures: wall time ÷ the ideal (10 waves of 0.2 s = 2 s) and ours ÷ the faster bare; the controller's
CPU per host (user + sys of the child, from ``wait4``: the same as the difference of
``getrusage(RUSAGE_CHILDREN)`` around it) and its peak RSS. The wall time is split into
"before" (launch to the first host's start: interpreter, imports, store, spec, plan), "in
loop" (first host's start to last host's end: from ``--json`` for ours, from the bare
script's own clock) and "after" (to the exit: result, JSON, closing, interpreter teardown).
The times are the fastest of ``--runs`` runs, the CPU the least and the RSS the largest;
ours and bare take turns going first. The CPU of importing what each side imports, as it
imports it (``python -c``, see STARTUP), is printed once: the fixed start-up cost spread
over the hosts; "beyond start-up" is the CPU less that, per host: what one more host
costs.
Targets (issue 21): ours ÷ the faster bare ≤ 1.05, the controller's CPU beyond start-up
≤ 5 ms per host, start-up ≤ 0.35 s of CPU; exits 1 when missed. The OpenSSH test fleet
holds at most 254 hosts (one /24 of 127.0.0.0/8): the large figure is taken at 250.

The package's bytecode is written first, as an install would have it (see
compile_bytecode).

``--profile DIR`` then runs one more pair of pushes under cProfile (``DIR/<fleet>-<v>.prof``)
and prints the functions found to matter and the top of the profile.
"""

from __future__ import annotations

# Only the standard library at module level: with --bare this file IS the baseline, whose
# start-up must cost what a bare asyncssh script's does. The rest is imported where used.
import argparse
import asyncio
import contextlib
import json
import os
import resource
import select
import shlex
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

_IMPORT_CLOCK = time.perf_counter()  # for the bare script: time spent importing asyncssh

REPO = Path(__file__).resolve().parents[1]
# Issue 21's targets: ours ÷ the faster bare loop, the controller's CPU per host beyond
# start-up, and the CPU of start-up itself (importing what push imports).
RATIO_TARGET = 1.05
CPU_BEYOND_TARGET_MS = 5.0
STARTUP_TARGET_S = 0.35
BARES = ("bare", "bare-pre")  # connecting in each wave; every host connected first
DATACENTERS = 3
BATCH = "10%"
HOOK = "sleep 0.2"
HOOK_SECONDS = 0.2
WAVE_COUNT = 10  # what BATCH makes of any multiple of 10 hosts
VERSIONS = ("1.0", "2.0")
APP = "pushbench"
# What `deploy push` and the bare script import, each as it does: deploy's entry point
# imports a command's modules with the collector off (deployer.cli.load_command).
STARTUP = {
    "ours": (
        "deployer.cli.deploy",
        # a push imports the rest once its first hosts are being connected to (import_later)
        "from deployer.cli import import_later, load_command; load_command('push'); import_later()",
    ),
    "bare": ("asyncssh", "import asyncssh"),
}
PROCESS_TIMEOUT = 300.0  # seconds any one push may take before it is killed (about 3 is normal)
ARTIFACT_FILES = {
    "index.html": "<h1>push bench</h1>\n" * 20,
    "app.py": "def main() -> None:\n    print('hello')\n" * 40,
    "config.json": json.dumps({"workers": 4, "port": 8080, "features": list(range(50))}) + "\n",
    "static/style.css": "body { margin: 0; font-family: sans-serif; }\n" * 30,
}
SPEC = """app: {app}
version: "{version}"
environment: bench
fleet: {inventory}
artifact: {artifact}
target: ~/{target}
keep_releases: 3
strategy: {{batch: {batch}, stripe: datacenter, max_failures: 0, bake: 0s}}
hooks:
  start: {hook}
  timeout: 30s
"""


# -- the bare script (its own process) -------------------------------------------------------


def _bare_command(target: str, version: str, hook: str) -> str:
    """One channel's shell command: unpack stdin into releases/<v>, switch, run the hook there."""
    app = f'"$HOME"/{shlex.quote(target)}'
    release = f"{app}/releases/{shlex.quote(version)}"
    link = f"{app}/.current-new"
    return (
        f"mkdir -p {release} && tar -x -o -z -f - -C {release}"
        f" && ln -sfn {shlex.quote('releases/' + version)} {link} && mv -T {link} {app}/current"
        f" && cd {release} && {hook}"
    )


async def bare_connect(host: dict[str, Any]) -> Any:
    """An asyncssh connection to one host of a bare plan (address, port, user, identity, known_hosts)."""
    import asyncssh

    return await asyncssh.connect(
        host["address"],
        port=host["port"],
        username=host["user"],
        client_keys=[host["identity"]],
        known_hosts=host["known_hosts"],
        config=[],
    )


async def _bare_push(plan: dict[str, Any]) -> list[float]:
    """Every wave of ``plan`` in turn, its hosts at once; the seconds each wave took.

    ``plan["preconnect"]``: connect to every host first (not counted in any wave), then
    run one command per host per wave on those connections; else each host connects in
    its own wave.
    """
    import asyncssh

    command = _bare_command(plan["target"], plan["version"], plan["hook"])
    artifact = Path(plan["artifact"]).read_bytes()
    hosts = [host for wave in plan["waves"] for host in wave]
    opened: dict[str, asyncssh.SSHClientConnection] = {}
    if plan.get("preconnect"):
        connected = await asyncio.gather(*map(bare_connect, hosts))
        opened = {host["address"]: connection for host, connection in zip(hosts, connected, strict=True)}

    async def one(host: dict[str, Any]) -> None:
        connection = opened.get(host["address"]) or await bare_connect(host)
        async with connection:
            result = await connection.run(command, input=artifact, check=False, encoding=None)
            if result.exit_status != 0:
                raise RuntimeError(f"{host['address']}: exit {result.exit_status}: {result.stderr!r}")

    durations = []
    for wave in plan["waves"]:
        started = time.perf_counter()
        outcomes = await asyncio.gather(*(one(host) for host in wave), return_exceptions=True)
        durations.append(time.perf_counter() - started)
        failures = [o for o in outcomes if isinstance(o, BaseException)]
        if failures:
            raise SystemExit(f"bare push failed on {len(failures)} hosts, e.g. {failures[0]!r}")
    return durations


def bare_main(plan_path: str) -> int:
    import asyncssh  # noqa: F401  (imported here so that its cost is reported as such)

    imported = time.perf_counter() - _IMPORT_CLOCK
    plan = json.loads(Path(plan_path).read_text())
    first_start = time.time()
    waves = asyncio.run(_bare_push(plan))
    last_end = time.time()
    print(json.dumps({"import": imported, "first_start": first_start, "last_end": last_end, "waves": waves}))
    return 0


# -- measuring one process ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ProcessCost:
    """What one push process cost, and where its wall time went."""

    wall: float
    cpu: float  # user + sys seconds, the process and the children it waited for
    peak_rss_mb: float
    before: float  # from launch to the first host's start: start-up, imports, planning
    in_loop: float  # from the first host's start to the last host's end
    after: float  # from the last host's end to the process's exit: reporting, closing


@dataclass(frozen=True, slots=True)
class _Finished:
    stdout: str
    wall: float
    cpu: float
    peak_rss_mb: float
    launched_at: float  # epoch seconds
    exited_at: float

    def cost(self, first_start: float, last_end: float) -> ProcessCost:
        """The cost, given when the first host started and the last one ended (epoch seconds)."""
        return ProcessCost(
            self.wall,
            self.cpu,
            self.peak_rss_mb,
            first_start - self.launched_at,
            last_end - first_start,
            self.exited_at - last_end,
        )


def run_measured(argv: Sequence[str], env: dict[str, str], log_stem: Path) -> _Finished:
    """Run ``argv`` to its end (killed past PROCESS_TIMEOUT); exits if it fails.

    ``wait4`` gives exactly this child's rusage (the difference ``getrusage(RUSAGE_CHILDREN)``
    would show around it), including its own peak RSS, which the cumulative
    ``RUSAGE_CHILDREN`` cannot tell apart from earlier children's.
    """
    out_path = log_stem.parent / f"{log_stem.name}.out"
    err_path = log_stem.parent / f"{log_stem.name}.err"
    with out_path.open("wb") as out, err_path.open("wb") as err:
        launched_at, started = time.time(), time.perf_counter()
        process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=err, env=env)
        exited = os.pidfd_open(process.pid)
        try:
            ready, _, _ = select.select([exited], [], [], PROCESS_TIMEOUT)
            if not ready:
                process.kill()
            _, status, usage = os.wait4(process.pid, 0)
        finally:
            os.close(exited)
        wall, exited_at = time.perf_counter() - started, time.time()
    process.returncode = os.waitstatus_to_exitcode(status)  # reaped here: Popen must not wait
    stdout = out_path.read_text()
    if process.returncode != 0:
        stderr = err_path.read_text().strip().splitlines()[-5:]
        command = shlex.join(argv)
        raise SystemExit(f"{command} exited {process.returncode} after {wall:.1f}s: {stdout[-500:]} {stderr}")
    cpu = usage.ru_utime + usage.ru_stime
    return _Finished(stdout, wall, cpu, usage.ru_maxrss / 1024, launched_at, exited_at)


def compile_bytecode() -> None:
    """Write the package's bytecode, as installing it does (pip compiles what it installs).

    An editable checkout has none, and with PYTHONDONTWRITEBYTECODE set (as on our
    machines) every push would compile its 30 modules again: 70 ms of CPU that no
    installed ``deploy`` spends. py_compile writes whatever that variable says.
    """
    import compileall

    compileall.compile_dir(REPO / "deployer", quiet=1)


def import_cpu(code: str, env: dict[str, str], tries: int = 3) -> float:
    """CPU seconds of ``python -c CODE`` (the best of a few): start-up's fixed cost."""
    best = float("inf")
    for _ in range(tries):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        subprocess.run([sys.executable, "-c", code], env=env, check=True, timeout=60)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        best = min(best, after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
    return best


# -- fleets ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PushFleet:
    name: str
    inventory: Path
    bench: Any  # bench.fanout.BenchFleet: the hosts and their SSH options
    home: Callable[[str], Path]  # a host's home directory, seen from here


@contextlib.contextmanager
def lab_fleet(count: int, work_dir: Path) -> Iterator[PushFleet]:
    from bench.fanout import BenchFleet
    from tests.plugins.lab_fleet import start_test_lab  # picks a free address block

    with start_test_lab(work_dir / "lab", count, DATACENTERS) as lab:
        yield PushFleet("lab", lab.inventory_path, BenchFleet("lab", lab.hosts, lab.ssh_options), lab.home)


@contextlib.contextmanager
def openssh_fleet(count: int) -> Iterator[PushFleet]:
    from bench.fanout import BenchFleet
    from tests.plugins.sshd_fleet import openssh_unavailable_reason, start_sshd_fleet

    reason = openssh_unavailable_reason()
    if reason is not None:
        raise SystemExit(f"cannot run the OpenSSH fleet here: {reason}")
    with start_sshd_fleet(count=count, datacenters=DATACENTERS) as fleet:
        bench = BenchFleet("openssh", tuple(fleet.hosts), fleet.ssh_options)
        yield PushFleet("openssh", fleet.inventory_path, bench, fleet.host_home)


# -- one benchmark ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Workspace:
    """Files shared by every run on one fleet."""

    dir: Path
    env: dict[str, str]  # for the child processes
    artifacts: dict[str, Path]  # version -> its directory

    @classmethod
    def make(cls, work_dir: Path) -> Workspace:
        artifacts = {}
        for version in VERSIONS:
            source = work_dir / f"artifact-{version}"
            for name, text in ARTIFACT_FILES.items():
                (source / name).parent.mkdir(parents=True, exist_ok=True)
                (source / name).write_text(text)
            (source / "VERSION").write_text(f"{version}\n")
            artifacts[version] = source
        return cls(work_dir, cls.child_env(work_dir), artifacts)

    @staticmethod
    def child_env(work_dir: Path) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("DEPLOYER_")}
        env["XDG_CACHE_HOME"] = str(work_dir / "cache")  # packed and kept artifacts stay in here
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))
        return env


def _check_hosts(fleet: PushFleet, target: str, version: str) -> None:
    """Every host runs ``version`` from ``~/target/current``: the push really happened."""
    wrong = []
    for host in fleet.bench.hosts:
        current = fleet.home(host.name) / target / "current"
        if not current.is_symlink() or (current / "VERSION").read_text() != f"{version}\n":
            wrong.append(host.name)
    if wrong:
        raise SystemExit(f"{len(wrong)} hosts do not run {version} in ~/{target}, e.g. {wrong[0]}")


def _window(hosts: list[dict[str, Any]]) -> tuple[float, float]:
    """When the first host started and the last one ended, in epoch seconds."""
    first = min(datetime.fromisoformat(h["started_at"]) for h in hosts)
    last = max(datetime.fromisoformat(h["finished_at"]) for h in hosts)
    return first.timestamp(), last.timestamp()


def push_ours(
    fleet: PushFleet, space: Workspace, run: str, version: str, profile: Path | None = None
) -> ProcessCost:
    run_dir = space.dir / run
    run_dir.mkdir(exist_ok=True)
    target = f"pushbench/{run}"
    spec = run_dir / f"spec-{version}.yaml"
    spec.write_text(
        SPEC.format(
            app=APP,
            version=version,
            inventory=fleet.inventory,
            artifact=space.artifacts[version],
            target=target,
            batch=BATCH,
            hook=HOOK,
        )
    )
    tracing = ["-m", "cProfile", "-o", str(profile)] if profile is not None else []
    argv = [sys.executable, *tracing, "-m", "deployer", "push", str(spec), "--yes", "--json"]
    argv += ["--db", f"sqlite:///{run_dir / 'state.db'}"]
    finished = run_measured(argv, space.env, run_dir / f"push-{version}")
    result = json.loads(finished.stdout)
    waves = {h["wave"] for h in result["hosts"]}
    host_count = len(fleet.bench.hosts)
    if result["status"] != "succeeded" or result["counts"]["succeeded"] != host_count:
        raise SystemExit(f"ours: {result['status']}: {result['reason']} ({result['counts']})")
    if len(waves) != WAVE_COUNT:
        raise SystemExit(f"ours ran {len(waves)} waves, not {WAVE_COUNT}")
    _check_hosts(fleet, target, version)
    return finished.cost(*_window(result["hosts"]))


def bare_plan(fleet: PushFleet) -> list[list[dict[str, Any]]]:
    """The waves ``deploy push`` runs for the spec (the same planner), as the bare script reads them."""
    from deployer.core.planner import plan_waves
    from deployer.core.quantities import Count

    plan = plan_waves(
        fleet.bench.hosts,
        batch=[Count.parse(BATCH)],
        stripe=True,
        version=VERSIONS[0],
        current_versions={},
        failed_hosts=frozenset(),
    )
    targets = {t.host.name: t for t in fleet.bench.targets()}
    return [
        [
            {
                "address": host.address,
                "port": host.port,
                "user": targets[host.name].user,
                "identity": targets[host.name].identity_file,
                "known_hosts": targets[host.name].known_hosts,
            }
            for host in wave.hosts
        ]
        for wave in plan.waves
    ]


def push_bare(
    fleet: PushFleet,
    space: Workspace,
    run: str,
    version: str,
    waves: list[list[dict[str, Any]]],
    *,
    preconnect: bool = False,
) -> ProcessCost:
    from deployer.hosts.artifact import prepare_artifact  # the very .tar.gz ours sends

    run_dir = space.dir / run
    run_dir.mkdir(exist_ok=True)
    target = f"pushbench/{run}"
    artifact = prepare_artifact(space.artifacts[version], space.dir / "bare-cache")
    plan = {
        "target": target,
        "version": version,
        "hook": HOOK,
        "artifact": artifact.path,
        "waves": waves,
        "preconnect": preconnect,
    }
    plan_path = run_dir / f"plan-{version}.json"
    plan_path.write_text(json.dumps(plan))
    argv = [sys.executable, str(Path(__file__).resolve()), "--bare", str(plan_path)]
    finished = run_measured(argv, space.env, run_dir / f"bare-{version}")
    _check_hosts(fleet, target, version)
    window = json.loads(finished.stdout)
    return finished.cost(window["first_start"], window["last_end"])


# -- reporting ----------------------------------------------------------------------------------


def _best(costs: Sequence[ProcessCost]) -> ProcessCost:
    """The fastest run's times, the least CPU and the largest peak RSS of all runs.

    The machine is shared: other work only ever adds time and CPU.
    """
    fastest = min(costs, key=lambda c: c.wall)
    return ProcessCost(
        fastest.wall,
        min(c.cpu for c in costs),
        max(c.peak_rss_mb for c in costs),
        fastest.before,
        fastest.in_loop,
        fastest.after,
    )


def bench_fleet(fleet: PushFleet, space: Workspace, runs: int) -> dict[tuple[str, str], ProcessCost]:
    waves = bare_plan(fleet)
    samples: dict[tuple[str, str], list[ProcessCost]] = {}
    for number in range(1, runs + 1):
        # Take turns going first, so that neither always meets a warmer machine.
        sides = ("ours", *BARES) if number % 2 else (*BARES, "ours")
        for side in sides:
            run = f"{side}-{number}"
            for version in VERSIONS:
                if side == "ours":
                    cost = push_ours(fleet, space, run, version)
                else:
                    cost = push_bare(fleet, space, run, version, waves, preconnect=side == "bare-pre")
                samples.setdefault((side, version), []).append(cost)
                print(
                    f"  run {number} {side:<4} {version}: {cost.wall:5.2f}s wall ="
                    f" {cost.before:4.2f} before + {cost.in_loop:4.2f} in loop + {cost.after:4.2f} after;"
                    f" {cost.cpu:4.2f}s CPU, {cost.peak_rss_mb:3.0f} MB",
                    flush=True,
                )
    return {key: _best(costs) for key, costs in samples.items()}


def report(
    fleet: str,
    host_count: int,
    runs: int,
    best: dict[tuple[str, str], ProcessCost],
    startup: dict[str, float],
) -> bool:
    """Print the table for one fleet; whether ours met both targets.

    ``startup`` is each side's import CPU (``ours``, ``bare``): the CPU beyond it, per
    host, is what each further host costs, whatever the size of the fleet.
    """
    ideal = WAVE_COUNT * HOOK_SECONDS
    print(
        f"\n{fleet}: {host_count} hosts, batch {BATCH} over {DATACENTERS} datacenters ({WAVE_COUNT} waves),"
        f" start hook `{HOOK}`: ideal {ideal:.1f}s; best of {runs} run(s)"
    )
    print(
        f"  {'':<21} {'wall':>6} {'÷ideal':>6} {'÷bare':>6} | {'before':>6} {'in loop':>7} {'after':>6}"
        f" | {'CPU/host':>8} {'beyond start-up':>15} {'peak RSS':>8}"
    )
    within = True
    for version, label in zip(VERSIONS, ("first push", "second push"), strict=True):
        bare = min((best[(side, version)] for side in BARES), key=lambda cost: cost.wall)
        for side in ("ours", *BARES):
            cost = best[(side, version)]
            ratio = cost.wall / bare.wall
            cpu_ms = cost.cpu * 1000 / host_count
            beyond_ms = (cost.cpu - startup["bare" if side in BARES else side]) * 1000 / host_count
            if side == "ours":
                within &= ratio <= RATIO_TARGET and beyond_ms <= CPU_BEYOND_TARGET_MS
            title = label if side == "ours" else ""
            shown_ratio = f"{ratio:6.2f}" if side == "ours" else ""
            print(
                f"  {title:<12} {side:<8} {cost.wall:5.2f}s {cost.wall / ideal:6.2f}"
                f" {shown_ratio:>6} | {cost.before:5.2f}s {cost.in_loop:6.2f}s"
                f" {cost.after:5.2f}s | {cpu_ms:5.1f} ms {beyond_ms:12.1f} ms {cost.peak_rss_mb:5.0f} MB"
            )
    return within


# Where a push's time went, by the functions found to matter: (file suffix, function) -> label.
# Times are cProfile's cumulative ones: inflated by tracing, and for coroutines only while
# they run, so they compare with each other rather than with the wall time above.
PROFILE_POINTS = {
    ("deployer/cli/deploy.py", "<module>"): "importing the push command (and all it imports)",
    ("deployer/store/repository.py", "open_store"): "opening the store (migrations on a fresh one)",
    ("deployer/operations/plan.py", "prepare"): "spec, inventory, plan",
    ("deployer/store/rollouts.py", "begin_deployment"): "store: begin_deployment",
    ("deployer/store/rollouts.py", "record_steps"): "store: record_steps (one commit per batch)",
    (
        "deployer/store/rollouts.py",
        "record_host_results",
    ): "store: record_host_results (one commit per batch)",
    (
        "deployer/hosts/conversation.py",
        "_stream_artifact",
    ): "ssh: sending the artifact on the driver's channel",
    ("deployer/hosts/conversation.py", "_send_artifact"): "ssh: the upload channel (hosts without GNU head)",
    ("deployer/hosts/ssh.py", "aclose"): "ssh: closing the connections",
    ("deployer/store/deployment_reads.py", "deployment"): "store: reading the result back",
    ("deployer/views/render.py", "deployment_json"): "rendering the JSON",
    ("~", "<method 'poll' of 'select.epoll' objects>"): "idle: waiting for the hosts",
}


def profile_fleet(fleet: PushFleet, space: Workspace, directory: Path) -> None:
    """One more pair of pushes under cProfile; where the controller's time goes."""
    import pstats

    directory.mkdir(parents=True, exist_ok=True)
    for version in VERSIONS:
        path = directory / f"{fleet.name}-{version}.prof"
        cost = push_ours(fleet, space, "profiled", version, profile=path)
        print(f"\n{fleet.name} {version} under cProfile: {cost.wall:.2f}s wall, {cost.cpu:.2f}s CPU; {path}")
        stats = pstats.Stats(str(path))
        found: dict[str, tuple[int, float]] = {}
        for (file, _, function), (_, calls, _, cumulative, _) in stats.stats.items():  # type: ignore[attr-defined]
            points = PROFILE_POINTS.items()
            label = next((v for (f, n), v in points if file.endswith(f) and function == n), None)
            if label is not None:
                count, seconds = found.get(label, (0, 0.0))
                found[label] = (count + calls, seconds + cumulative)
        for label in PROFILE_POINTS.values():
            count, seconds = found.get(label, (0, 0.0))
            print(f"  {seconds:6.3f}s {count:6d} calls  {label}")
        stats.strip_dirs().sort_stats("tottime").print_stats(12)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--hosts", type=int, default=100)
    parser.add_argument("--fleet", choices=("lab", "openssh", "both"), default="both")
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--profile", type=Path, metavar="DIR", help="then profile one push pair into DIR")
    parser.add_argument("--bare", metavar="PLAN", help=argparse.SUPPRESS)  # the baseline's own process
    args = parser.parse_args(argv)
    if args.bare:
        return bare_main(args.bare)
    if args.hosts < 10 or args.hosts % 10:
        parser.error("--hosts must be a multiple of 10 (10 waves of equal size)")
    sys.path.insert(0, str(REPO))  # bench.fanout and the fleets in tests.plugins
    compile_bytecode()
    kinds = ("lab", "openssh") if args.fleet == "both" else (args.fleet,)
    within = True
    with tempfile.TemporaryDirectory(prefix="pushbench-") as temporary:
        env = Workspace.child_env(Path(temporary))
        startup = {side: import_cpu(code, env) for side, (_, code) in STARTUP.items()}
        for kind in kinds:
            work_dir = Path(temporary) / kind
            work_dir.mkdir()
            space = Workspace.make(work_dir)
            manager = lab_fleet(args.hosts, work_dir) if kind == "lab" else openssh_fleet(args.hosts)
            print(f"{kind}: starting {args.hosts} hosts", flush=True)
            with manager as fleet:
                best = bench_fleet(fleet, space, args.runs)
                within &= report(kind, args.hosts, args.runs, best, startup)
                if args.profile is not None:
                    profile_fleet(fleet, space, args.profile)
    (ours_name, _), (bare_name, _) = STARTUP["ours"], STARTUP["bare"]
    print(
        f"\nstart-up alone (python -c 'import ...', CPU): {ours_name} {startup['ours']:.2f}s"
        f" = {startup['ours'] * 1000 / args.hosts:.1f} ms per host; {bare_name} {startup['bare']:.2f}s"
    )
    within &= startup["ours"] <= STARTUP_TARGET_S
    print(
        f"targets: ours ÷ the faster bare ≤ {RATIO_TARGET}, controller CPU beyond start-up"
        f" ≤ {CPU_BEYOND_TARGET_MS:g} ms per host, start-up ≤ {STARTUP_TARGET_S} s of CPU: "
        + ("met" if within else "NOT met")
    )
    return 0 if within else 1


if __name__ == "__main__":
    sys.exit(main())
