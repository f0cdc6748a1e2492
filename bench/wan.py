"""A deployment across regions: every host behind a proxy that adds a round-trip time.

Run: .venv/bin/python bench/wan.py [--hosts 20] [--rtt 80ms] [--runs 2]

Kernel netem is not available on our machines, so a small user-space TCP proxy
(:class:`DelayProxy`, in this process) stands in front of each host of a real OpenSSH
fleet (tests/plugins/sshd_fleet.py) and delays each direction by RTT/2. The inventory and
known_hosts given to both sides name the proxies' addresses (127.X.Y.n, a free block),
so every byte between the controller and a host crosses the delay.

The spec: ``batch: 10%`` striped over 3 datacenters (10 waves), ``start: sleep 0.2``,
``bake: 0s``: the ideal is 10 x 0.2 s = 2.0 s, and the physical limit one round trip per
wave on top of it (2.8 s at 80 ms). Two ways, each its own process, taking turns:

* ours: ``python -m deployer push SPEC --yes --json`` (fresh targets and store per run);
* bare: ``python bench/wan.py --bare PLAN.json``: asyncssh that connects to every host
  first, then per wave runs ONE command per host (receive the .tar.gz on stdin, unpack
  into releases/<v>, switch ``current``, run the hook), the planner's waves in turn.

Figures, best of ``--runs``: each one's wall time ÷ the ideal, the time beyond the ideal
in round trips per wave, and ours ÷ bare. Issue 21's targets: ours ≤ ideal + 1.5 round
trips per wave, and ≤ 0.7 x bare. This bench prints where we stand; it exits 0 either way.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import re
import sys
import threading
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

# Our own `deploy` hides libraries' warnings; this process imports asyncssh itself.
warnings.filterwarnings("ignore", module=r"asyncssh(\.|$)")
REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from bench.push import (  # noqa: E402  (the repository's root must be on the path first)
    BATCH,
    DATACENTERS,
    HOOK,
    HOOK_SECONDS,
    SPEC,
    WAVE_COUNT,
    Workspace,
    _bare_push,
    _window,
    run_measured,
)

APP = "wanbench"
PROXY_PORT = 2222
PROCESS_TIMEOUT = 300.0
STAGE_AHEAD = ["1"]  # strategy.stage_ahead of our spec (--stage-ahead)


# -- the delay proxy ---------------------------------------------------------------------------


class DelayProxy:
    """Listens on ``listen`` address -> forwards to ``upstream``, each direction ``delay`` late.

    Bytes keep their order and are never held back by a slow reader beyond the delay
    (no bandwidth limit): the only cost added is latency, as between regions.
    """

    def __init__(self, routes: dict[str, tuple[str, int]], delay: float) -> None:
        self.routes = routes  # listen address -> (host address, port)
        self.delay = delay
        self.loop = asyncio.new_event_loop()
        self._servers: list[asyncio.Server] = []
        self._thread = threading.Thread(target=self.loop.run_forever, name="delay-proxy", daemon=True)

    def __enter__(self) -> DelayProxy:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._listen(), self.loop).result(timeout=30)
        return self

    def __exit__(self, *exc_info: object) -> None:
        asyncio.run_coroutine_threadsafe(self._close(), self.loop).result(timeout=30)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=30)
        if not self._thread.is_alive():  # a loop still running cannot be closed
            self.loop.close()

    async def _listen(self) -> None:
        for address, upstream in self.routes.items():
            server = await asyncio.start_server(
                lambda r, w, up=upstream: self._relay(r, w, up), address, PROXY_PORT, reuse_address=True
            )
            self._servers.append(server)

    async def _close(self) -> None:
        for server in self._servers:
            server.close()
        # Cancelled AND awaited: a relay left pending would run its cleanup when collected,
        # after the loop closed, and print "Event loop is closed" tracebacks.
        tasks = asyncio.all_tasks(self.loop) - {asyncio.current_task()}
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _relay(
        self, client: asyncio.StreamReader, to_client: asyncio.StreamWriter, upstream: tuple[str, int]
    ) -> None:
        try:
            host, to_host = await asyncio.open_connection(*upstream)
        except OSError:
            to_client.close()
            return
        try:
            await asyncio.gather(self._pump(client, to_host), self._pump(host, to_client))
        except (OSError, asyncio.IncompleteReadError):
            pass
        except asyncio.CancelledError:
            return  # the proxy closing: asyncio's server callback would print a cancelled task
        finally:
            to_client.close()
            to_host.close()

    async def _pump(self, source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
        """Copy ``source`` to ``sink``, each chunk written ``delay`` after it was read."""
        queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()

        async def deliver() -> None:
            while True:
                due, data = await queue.get()
                wait = due - self.loop.time()
                if wait > 0:
                    await asyncio.sleep(wait)
                if not data:  # end of the stream, as late as the rest
                    if sink.can_write_eof():
                        sink.write_eof()
                    return
                sink.write(data)
                await sink.drain()

        delivering = asyncio.create_task(deliver())
        try:
            while True:
                data = await source.read(65536)
                queue.put_nowait((self.loop.time() + self.delay, data))
                if not data:
                    break
            await delivering
        finally:
            delivering.cancel()


# -- the bare script: bench/push.py's, connecting every host first ------------------------------


def bare_main(plan_path: str) -> int:
    plan = {**json.loads(Path(plan_path).read_text()), "preconnect": True}
    asyncio.run(_bare_push(plan))
    print(json.dumps({"ok": True}))
    return 0


# -- a fleet behind the proxies ------------------------------------------------------------------


@contextlib.contextmanager
def fleet_behind_proxies(count: int, delay: float, work: Path) -> Iterator[tuple[Path, Any, Any]]:
    """An OpenSSH fleet, each host behind a delay proxy; (inventory, known_hosts, fleet)."""
    import yaml

    from tests.plugins.lab_fleet import free_base_address
    from tests.plugins.sshd_fleet import openssh_unavailable_reason, start_sshd_fleet

    reason = openssh_unavailable_reason()
    if reason is not None:
        raise SystemExit(f"cannot run the OpenSSH fleet here: {reason}")
    with start_sshd_fleet(count=count, datacenters=DATACENTERS) as fleet:
        prefix = free_base_address(count, port=PROXY_PORT).rsplit(".", 1)[0]
        proxy_of = {h.name: f"{prefix}.{index}" for index, h in enumerate(fleet.hosts, start=1)}
        routes = {proxy_of[h.name]: (h.address, h.port or 22) for h in fleet.hosts}
        known = fleet.ssh_options.known_hosts
        assert known is not None
        lines = []
        for line in Path(known).read_text().splitlines():
            for host in fleet.hosts:
                line = re.sub(
                    rf"^\[{re.escape(host.address)}\]:\d+ ", f"[{proxy_of[host.name]}]:{PROXY_PORT} ", line
                )
            lines.append(line)
        known_hosts = work / "known_hosts"
        known_hosts.write_text("\n".join(lines) + "\n")
        inventory = yaml.safe_load(Path(fleet.inventory_path).read_text())
        for entry in inventory["hosts"]:
            entry["address"], entry["port"] = proxy_of[entry["name"]], PROXY_PORT
        inventory.setdefault("ssh", {})["known_hosts"] = str(known_hosts)
        inventory_path = work / "inventory.yaml"
        inventory_path.write_text(yaml.safe_dump(inventory, sort_keys=False))
        with DelayProxy(routes, delay):
            yield inventory_path, known_hosts, fleet


def run_ours(inventory: Path, space: Workspace, run: str) -> tuple[float, float]:
    """Our push's wall time, and its waves' alone: from wave 1's go to the last host's end."""
    run_dir = space.dir / run
    run_dir.mkdir(exist_ok=True)
    spec = run_dir / "spec.yaml"
    spec.write_text(
        SPEC.format(
            app=APP,
            version="1.0",
            inventory=inventory,
            artifact=space.artifacts["1.0"],
            target=f"wanbench/{run}",
            batch=BATCH,
            hook=HOOK,
        ).replace("bake: 0s}", f"bake: 0s, stage_ahead: {STAGE_AHEAD[0]}}}")
    )
    argv = [sys.executable, "-m", "deployer", "push", str(spec), "--yes", "--json"]
    argv += ["--db", f"sqlite:///{run_dir / 'state.db'}"]
    finished = run_measured(argv, space.env, run_dir / "push")
    result = json.loads(finished.stdout)
    if result["status"] != "succeeded" or len({h["wave"] for h in result["hosts"]}) != WAVE_COUNT:
        raise SystemExit(f"ours: {result['status']}: {result['reason']}")
    first, last = _window(result["hosts"])
    if "--timeline" in sys.argv:
        _print_timeline(result["hosts"], first, last, finished.launched_at, finished.exited_at)
    return finished.wall, last - first


def _print_timeline(
    hosts: list[dict[str, Any]], first: float, last: float, launched_at: float, exited_at: float
) -> None:
    """Each wave's start and end, in seconds from the first host's start (for profiling);
    ``first`` and ``last``: the first start and last end, epoch seconds (see _window)."""
    from datetime import datetime

    print(
        f"    launch → wave 1's go {first - launched_at:.2f}s; last end → exit {exited_at - last:.2f}s",
        file=sys.stderr,
    )
    for wave in sorted({h["wave"] for h in hosts}):
        starts = [datetime.fromisoformat(h["started_at"]).timestamp() for h in hosts if h["wave"] == wave]
        ends = [datetime.fromisoformat(h["finished_at"]).timestamp() for h in hosts if h["wave"] == wave]
        print(
            f"    wave {wave:2}: {min(starts) - first:5.2f} → {max(ends) - first:5.2f}",
            file=sys.stderr,
        )


def run_bare(inventory: Path, known_hosts: Path, fleet: Any, space: Workspace, run: str) -> float:
    import yaml

    from deployer.core.planner import plan_waves
    from deployer.core.quantities import Count
    from deployer.core.targets import Host
    from deployer.hosts.artifact import prepare_artifact

    run_dir = space.dir / run
    run_dir.mkdir(exist_ok=True)
    entries = yaml.safe_load(inventory.read_text())["hosts"]
    hosts = [
        Host(name=e["name"], address=e["address"], datacenter=e["datacenter"], port=e["port"])
        for e in entries
    ]
    plan = plan_waves(
        hosts,
        batch=[Count.parse(BATCH)],
        stripe=True,
        version="1.0",
        current_versions={},
        failed_hosts=frozenset(),
    )
    options = fleet.ssh_options
    waves = [
        [
            {
                "address": h.address,
                "port": h.port,
                "user": options.user or "root",
                "identity": options.identity_file,
                "known_hosts": str(known_hosts),
            }
            for h in wave.hosts
        ]
        for wave in plan.waves
    ]
    artifact = prepare_artifact(space.artifacts["1.0"], space.dir / "bare-cache")
    plan_path = run_dir / "plan.json"
    plan_path.write_text(
        json.dumps(
            {
                "target": f"wanbench/{run}",
                "version": "1.0",
                "hook": HOOK,
                "artifact": str(artifact.path),
                "waves": waves,
            }
        )
    )
    argv = [sys.executable, str(Path(__file__).resolve()), "--bare", str(plan_path)]
    return run_measured(argv, space.env, run_dir / "bare").wall


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hosts", type=int, default=20)
    parser.add_argument("--rtt", default="80ms", help="the round trip added to every host (e.g. 80ms)")
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--bare", metavar="PLAN", help=argparse.SUPPRESS)
    parser.add_argument("--timeline", action="store_true", help="print when each of our waves ran")
    parser.add_argument("--stage-ahead", default="1", help="strategy.stage_ahead of our spec (default 1)")
    args = parser.parse_args(argv)
    STAGE_AHEAD[0] = args.stage_ahead
    if args.bare:
        return bare_main(args.bare)
    from deployer.core.quantities import parse_duration

    rtt = parse_duration(args.rtt)
    ideal = WAVE_COUNT * HOOK_SECONDS
    import tempfile

    with tempfile.TemporaryDirectory(prefix="wanbench-") as temporary:
        space = Workspace.make(Path(temporary))
        print(f"wan: {args.hosts} OpenSSH hosts, each behind a proxy adding {rtt * 1000:g} ms of round trip")
        ours: list[tuple[float, float]] = []  # (wall, the waves alone)
        bare: list[float] = []
        with fleet_behind_proxies(args.hosts, rtt / 2, Path(temporary)) as (inventory, known_hosts, fleet):
            for run in range(args.runs):
                order = ("ours", "bare") if run % 2 == 0 else ("bare", "ours")
                for who in order:
                    name = f"{who}-{run}"
                    if who == "ours":
                        ours.append(run_ours(inventory, space, name))
                    else:
                        bare.append(run_bare(inventory, known_hosts, fleet, space, name))
                    wall = ours[-1][0] if who == "ours" else bare[-1]
                    print(f"  run {run + 1} {who}: {wall:.2f}s", flush=True)
    (best_ours, waves), best_bare = min(ours), min(bare)

    def beyond(wall: float) -> float:
        return (wall - ideal) / rtt / WAVE_COUNT

    print(
        f"\n{WAVE_COUNT} waves of a {HOOK_SECONDS:g}s hook: ideal {ideal:.1f}s, "
        f"physical limit {ideal + WAVE_COUNT * rtt:.1f}s (one round trip per wave); best of {args.runs}"
    )
    print("            wall   ÷ideal  round trips per wave beyond the ideal")
    print(f"  ours    {best_ours:6.2f}s  {best_ours / ideal:5.2f}   {beyond(best_ours):5.1f}")
    print(
        f"  bare    {best_bare:6.2f}s  {best_bare / ideal:5.2f}   {beyond(best_bare):5.1f}  (pre-connected)"
    )
    print(f"  ours ÷ bare: {best_ours / best_bare:.2f}   (targets: ≤ 1.5 round trips per wave beyond, ≤ 0.7)")
    # Where ours' time goes: its waves, and before them start-up (imports), the SSH
    # handshake (about 4 round trips: TCP, version, key exchange, then the service and
    # the one auth request together: deployer.hosts.quick_auth) and staging wave 1 (a
    # channel, the exec, the artifact, the go).
    print(
        f"  ours' waves alone {waves:.2f}s = ideal + {beyond(waves):.2f} round trips per wave;"
        f" before wave 1: {best_ours - waves:.2f}s = {(best_ours - waves) / rtt:.1f} round trips"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
