"""Run store code in other Python processes, started together, for cross-process races."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Sequence

PRELUDE = """
import os, socket, sys, time
from datetime import UTC, datetime
from deployer.store import NewDeployment, open_store
from deployer.core.targets import Host
from deployer.core.results import DeploymentKind
from deployer.core.errors import DeployerError

url, go_at = sys.argv[1], float(sys.argv[2])

def wait_for_the_start() -> None:
    while time.time() < go_at:
        time.sleep(0.001)

def stay_alive_until_all_are_done() -> None:
    time.sleep(max(0.0, go_at + 2.0 - time.time()))
"""

TIMEOUT = 60.0


def run_together(code: str, url: str, count: int = 2, *, head_start: float = 3.0) -> list[str]:
    """Run ``code`` (after PRELUDE) in ``count`` processes that call ``wait_for_the_start()``
    to line up on the same instant; each one's stdout, in start order.

    Every process is waited for (and killed if it overruns), also when the test fails.
    """
    go_at = time.time() + head_start
    script = PRELUDE + code
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", script, url, str(go_at)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
        )
        for _ in range(count)
    ]
    outputs: list[str] = []
    try:
        for process in processes:
            stdout, stderr = process.communicate(timeout=TIMEOUT)
            if process.returncode != 0:
                raise AssertionError(f"a store process failed ({process.returncode}):\n{stderr}")
            outputs.append(stdout.strip())
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.wait()
    return outputs


def run_once(code: str, url: str) -> str:
    """Run ``code`` (after PRELUDE) in one process, at once; its stdout."""
    return run_together(code, url, 1, head_start=0.0)[0]


def lines_starting(outputs: Sequence[str], prefix: str) -> list[str]:
    return [line for line in outputs if line.startswith(prefix)]
