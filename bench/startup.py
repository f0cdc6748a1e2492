"""CPU time and memory of ``deploy --help`` and ``deploy plan --help``, each in a fresh process.

Listing the commands must not import any command's module (asyncssh, SQLAlchemy,
pydantic): the target is under 0.15 s of CPU. Each figure is the best of a few runs,
as the machine may be busy.
"""

from __future__ import annotations

import json
import subprocess
import sys

RUNS = 5
TARGET_SECONDS = 0.15
COMMANDS = (["--help"], ["plan", "--help"], ["status", "--help"])
HEAVY = ("asyncssh", "sqlalchemy", "pydantic", "textual")

# Runs the real entry point, then reports what it cost and which heavy libraries it loaded.
PROBE = """
import json, resource, sys
heavy = json.loads(sys.argv[2])
sys.argv = ["deploy", *json.loads(sys.argv[1])]
from deployer.entry import main
try:
    main()
except SystemExit:
    pass
usage = resource.getrusage(resource.RUSAGE_SELF)
sys.stdout = sys.__stdout__
print(json.dumps({
    "cpu": usage.ru_utime + usage.ru_stime,
    "rss_mb": usage.ru_maxrss / 1024,
    "loaded": sorted(name for name in heavy if name in sys.modules),
}))
"""


def measure(args: list[str]) -> dict[str, object]:
    """The probe's report for ``deploy ARGS`` (help text discarded), run in a new interpreter."""
    done = subprocess.run(
        [sys.executable, "-c", PROBE, json.dumps(args), json.dumps(HEAVY)],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    report: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    return report


def main() -> None:
    for args in COMMANDS:
        reports = [measure(args) for _ in range(RUNS)]
        best = min(reports, key=lambda report: float(report["cpu"]))  # type: ignore[arg-type]
        print(
            f"deploy {' '.join(args)}: {best['cpu']:.3f} s CPU, {best['rss_mb']:.0f} MB,"
            f" loads {', '.join(best['loaded']) or 'none of ' + ', '.join(HEAVY)}"  # type: ignore[arg-type]
            f" (target < {TARGET_SECONDS} s)"
        )


if __name__ == "__main__":
    main()
