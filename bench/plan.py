"""Plan 100,000 hosts in 20 datacenters and report time and memory against the targets.

Run: /work/venv/bin/python bench/plan.py [--batch 1,10%,25%] [--hosts 100000] [--datacenters 20]

Targets: planning takes well under 1 s and under 300 MB peak memory. The fleet
is uneven (datacenters from a few hosts to thousands), 0.5% of hosts failed in
the previous deployment and 10% already run the version (skipped). Time is the
best of a few runs without tracing; memory is measured in a separate traced run
(tracemalloc's peak while planning) and as the whole process's peak RSS.
"""

from __future__ import annotations

import argparse
import random
import resource
import sys
import time
import tracemalloc

from deployer.core.planner import Plan, plan_waves
from deployer.core.quantities import Count
from deployer.core.targets import Host

TIME_TARGET_S = 1.0
MEMORY_TARGET_MB = 300.0
VERSION = "2.4.1"


def make_fleet(
    host_count: int, datacenter_count: int, seed: int
) -> tuple[list[Host], dict[str, str], set[str]]:
    """Hosts in uneven datacenters (inventory order mixed), their versions, the failed ones."""
    rng = random.Random(seed)
    names = [f"dc{i:02d}" for i in range(datacenter_count)]
    # Three small datacenters of 3, 8 and 25 hosts; the others from hundreds to thousands.
    tiny = {name: size for name, size in zip(names, (3, 8, 25), strict=False)}
    others = names[len(tiny) :]
    weights = [rng.choice([1, 5, 20, 50, 100]) * rng.uniform(0.5, 1.5) for _ in others]
    datacenters = [name for name, size in tiny.items() for _ in range(size)]
    datacenters += rng.choices(others, weights=weights, k=host_count - len(datacenters))
    rng.shuffle(datacenters)  # inventory order mixes the datacenters
    hosts = [
        Host(name=f"host{i:06d}", address=f"10.{i >> 16}.{(i >> 8) & 255}.{i & 255}", datacenter=dc)
        for i, dc in enumerate(datacenters)
    ]
    versions = {h.name: VERSION if rng.random() < 0.10 else "2.4.0" for h in hosts}
    failed = {h.name for h in hosts if rng.random() < 0.005}
    return hosts, versions, failed


def run(hosts: list[Host], versions: dict[str, str], failed: set[str], batch: list[Count]) -> Plan:
    return plan_waves(
        hosts,
        batch=batch,
        stripe=True,
        version=VERSION,
        current_versions=versions,
        failed_hosts=failed,
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hosts", type=int, default=100_000)
    parser.add_argument("--datacenters", type=int, default=20)
    parser.add_argument("--batch", default="1,10%,25%", help="comma-separated ramp, e.g. 1,10%%,25%%")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    batch = [Count.parse(int(p) if p.strip().isdigit() else p) for p in args.batch.split(",")]

    hosts, versions, failed = make_fleet(args.hosts, args.datacenters, seed=1)
    sizes: dict[str, int] = {}
    for host in hosts:
        sizes[host.datacenter] = sizes.get(host.datacenter, 0) + 1

    times, cpu_times = [], []
    for _ in range(args.repeat):
        start, cpu_start = time.perf_counter(), time.process_time()
        plan = run(hosts, versions, failed, batch)
        times.append(time.perf_counter() - start)
        cpu_times.append(time.process_time() - cpu_start)
    seconds = min(times)

    tracemalloc.start()
    run(hosts, versions, failed, batch)
    _, traced_peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    traced_mb = traced_peak / 2**20
    # ru_maxrss is KiB on Linux, bytes on macOS.
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    rss_mb = rss / 2**20 if sys.platform == "darwin" else rss / 2**10

    print(
        f"fleet:        {len(hosts):,} hosts in {len(sizes)} datacenters "
        f"(smallest {min(sizes.values())}, largest {max(sizes.values())}), "
        f"{len(failed)} failed last time"
    )
    finished_in = {h.datacenter: w.index for w in plan.waves for h in w.hosts}
    print(f"batch:        {args.batch}")
    print(
        f"plan:         {plan.wave_count} waves, {plan.host_count:,} hosts, "
        f"{plan.skipped_count:,} skipped (already on {VERSION})"
    )
    print(
        f"striping:     datacenters finish in waves {min(finished_in.values())}..{max(finished_in.values())}"
    )
    runs = ", ".join(f"{t * 1000:.0f}" for t in times)
    print(
        f"time:         {seconds * 1000:.0f} ms (best of {args.repeat}; runs {runs} ms)"
        f"  ratio to 1 s: {seconds / TIME_TARGET_S:.2f}"
    )
    print(
        f"CPU time:     {min(cpu_times) * 1000:.0f} ms (best of {args.repeat}; "
        "wall time also counts waiting for a busy CPU)"
    )
    print(
        f"memory:       planning peak (tracemalloc) {traced_mb:.1f} MB"
        f"  ratio to 300 MB: {traced_mb / MEMORY_TARGET_MB:.2f}"
    )
    print(
        f"              process peak RSS (fleet, interpreter and plans) {rss_mb:.1f} MB"
        f"  ratio to 300 MB: {rss_mb / MEMORY_TARGET_MB:.2f}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
