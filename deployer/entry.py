"""The ``deploy`` command's entry point: Ctrl-C at any moment, start-up included, is no traceback.

Importing the CLI (click, then a command's libraries) takes a fraction of a second, and
a KeyboardInterrupt raised meanwhile would print a traceback. Until the CLI is loaded,
SIGINT ends the process quietly with 130; from then on the CLI handles it
(:meth:`deployer.cli.DeployGroup.invoke`, and a running deployment's own handlers).
"""

from __future__ import annotations

import signal
import sys
from types import FrameType


def _interrupted(signum: int, frame: FrameType | None) -> None:
    sys.stderr.write("interrupted (Ctrl-C) while starting; nothing was done\n")
    raise SystemExit(130)


def main() -> None:
    previous = signal.signal(signal.SIGINT, _interrupted)
    from deployer.cli import prepare_command, run_command

    prepare_command()
    signal.signal(signal.SIGINT, previous)
    run_command()
