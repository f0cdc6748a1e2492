"""How fast hostile specs and inventories are refused (the fuzz test checks only that they are).

Run: .venv/bin/python bench/hostile_input.py [--rounds 5]

Each case is the kind that once ran for seconds or exhausted memory: a 5,000-digit
number, a 20,000-character path, an INI range of 99,999,999 hosts (25 s and 7 GB before
it was counted first), four letter ranges, a 63+ character label. It prints the median
time to the clean error and the peak memory traced while reading. Target: each well
under 50 ms and 1 MiB above the parser's own needs.
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import tempfile
import time
import tracemalloc
from functools import partial
from pathlib import Path

from deployer.core.errors import DeployerError
from deployer.inventory.load import load_inventory
from deployer.operations.reading import check_fabric_task
from deployer.spec.load import load_spec

BASE = 'app: shop\nversion: "1"\nartifact: build/\ntarget: /srv/shop\n'
INLINE = "fleet: {hosts: [{name: s1, datacenter: dc1}]}\n"
CASES = {
    "5,000-digit keep_releases": ("spec.yaml", BASE + INLINE + "keep_releases: " + "9" * 5000 + "\n"),
    "20,000-character fleet path": ("spec.yaml", BASE + "fleet: " + "a" * 20_000 + "\n"),
    "64-character label": (
        "spec.yaml",
        BASE + "fleet: {hosts: [{name: " + "a" * 64 + ".x, datacenter: d}]}\n",
    ),
    "INI range of 99,999,999": ("hosts.ini", "[web]\nweb-[01:99999999].x datacenter=dc1\n"),
    "YAML letter ranges": ("hosts.yml", "web:\n  hosts:\n    db[a:z][a:z][a:z][a:z]:\n"),
}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=5)
    rounds = parser.parse_args().rounds
    with tempfile.TemporaryDirectory() as work:
        for label, (name, text) in CASES.items():
            path = Path(work) / name
            path.write_text(text)
            read = partial(load_spec, check_task=check_fabric_task) if name == "spec.yaml" else load_inventory
            times, peak = [], 0
            for _ in range(rounds):
                tracemalloc.start()
                started = time.perf_counter()
                with contextlib.suppress(DeployerError):
                    read(path)
                times.append(time.perf_counter() - started)
                peak = max(peak, tracemalloc.get_traced_memory()[1])
                tracemalloc.stop()
            print(f"{label:32} {statistics.median(times) * 1000:8.1f} ms  peak {peak / 1024:8.0f} KiB")


if __name__ == "__main__":
    main()
