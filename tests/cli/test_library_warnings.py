"""``deploy`` shows no library's warnings unless asked: ``-W``, ``PYTHONWARNINGS`` or ``DEPLOYER_DEBUG=1``.

The libraries we lock warn about themselves (cryptography deprecates DSA as asyncssh
imports it). That is for us to act on: an operator's ``--help`` or push output stays clean.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

from deployer.cli import COMMANDS, quiet_library_warnings
from deployer.cli.lab import lab
from deployer.lab import LabFleet
from tests.e2e.support import E2EFleet, make_app


def quiet_env() -> dict[str, str]:
    """This process's environment without anything that asks for warnings."""
    return {k: v for k, v in os.environ.items() if k not in {"PYTHONWARNINGS", "DEPLOYER_DEBUG"}}


async def _run(args: list[str]) -> tuple[list[str], int, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "deployer",
        *args,
        env=quiet_env(),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    _, stderr = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode is not None
    return args, process.returncode, stderr.decode()


async def _run_all(commands: list[list[str]]) -> list[tuple[list[str], int, str]]:
    return list(await asyncio.gather(*(_run(args) for args in commands)))


def help_commands() -> list[list[str]]:
    commands = [["--help"]] + [[name, "--help"] for name in COMMANDS]
    commands += [["lab", name, "--help"] for name in lab.commands]
    return commands


def test_every_help_writes_nothing_on_stderr() -> None:
    commands = help_commands()
    assert ["lab", "break", "--help"] in commands and ["push", "--help"] in commands
    for args, returncode, stderr in asyncio.run(_run_all(commands)):
        assert (returncode, stderr) == (0, ""), args


def test_a_lab_push_writes_no_warning(lab_fleet: LabFleet, tmp_path: Path) -> None:
    fleet = E2EFleet("lab", tuple(lab_fleet.hosts), lab_fleet.inventory_path, lab_fleet.home)
    app = make_app(tmp_path, fleet, f"sqlite:///{tmp_path / 'state.db'}", "quietapp")
    done = subprocess.run(
        [sys.executable, "-m", "deployer", "push", str(app.spec), "--yes", "--json"],
        env={**quiet_env(), "DEPLOYER_DB": app.db_url},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["status"] == "succeeded"
    assert [line for line in done.stderr.splitlines() if "Warning" in line] == []


def _shown(module: str, environ: dict[str, str], warnoptions: list[str]) -> list[str]:
    """The messages of a warning attributed to ``module`` that get through, after quieting."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")  # what -W always or PYTHONWARNINGS=always would leave
        quiet_library_warnings(environ, warnoptions)
        warnings.warn_explicit("a warning", UserWarning, "x.py", 1, module=module, registry={})
    return [str(w.message) for w in caught]


@pytest.mark.parametrize(
    ("module", "environ", "warnoptions", "shown"),
    [
        ("asyncssh.crypto.misc", {}, [], False),  # a library's own warning: hidden
        ("paramiko", {}, [], False),
        ("deployer.hosts.ssh", {}, [], True),  # ours: always shown
        ("tui.app", {}, [], True),
        ("deployer_plugin", {}, [], False),  # a name that only starts like ours is not ours
        ("asyncssh.crypto.misc", {}, ["always"], True),  # -W or PYTHONWARNINGS: left as asked
        ("asyncssh.crypto.misc", {"DEPLOYER_DEBUG": "1"}, [], True),
        ("asyncssh.crypto.misc", {"DEPLOYER_DEBUG": "0"}, [], False),
    ],
)
def test_which_warnings_reach_the_user(
    module: str, environ: dict[str, str], warnoptions: list[str], shown: bool
) -> None:
    assert _shown(module, environ, warnoptions) == (["a warning"] if shown else [])
