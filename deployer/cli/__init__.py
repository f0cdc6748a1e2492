"""The ``deploy`` command.

Each sub-command lives in a module here that exports ``commands``, a list of click
commands, and is named in :data:`COMMANDS`. Modules are imported only when one of
their commands runs, so ``deploy status`` does not pay for asyncssh or Textual.

The CLI catches only :class:`~deployer.errors.DeployerError`: one clear line, then
the error's exit status. Anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import gc
import importlib
import os
import sys
import warnings
from collections.abc import Mapping, Sequence
from types import ModuleType
from typing import NoReturn

import click

from deployer.errors import DeployerError
from deployer.terminal_text import escape_controls

# Command name -> the module of deployer.cli that defines it.
COMMANDS: dict[str, str] = {
    "plan": "deploy",
    "check": "check",
    "push": "deploy",
    "rollback": "deploy",
    "reconcile": "deploy",
    "sync": "fleet",
    "promote": "fleet",
    "restart": "fleet",
    "demo": "demo",
    "status": "query",
    "hosts": "query",
    "versions": "query",
    "history": "query",
    "pause": "query",
    "resume": "query",
    "abort": "query",
    "watch": "tui",
    "tui": "tui",
    "lab": "lab",
    "schema": "schema",
}


def command_module(cmd_name: str) -> ModuleType | None:
    """The module of deployer.cli that defines command ``cmd_name``, imported; None if no such command."""
    module_name = COMMANDS.get(cmd_name)
    return None if module_name is None else importlib.import_module(f"deployer.cli.{module_name}")


class DeployGroup(click.Group):
    """Loads each command's module on first use, and turns our own errors into one line."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        module = command_module(cmd_name)
        if module is None:
            return None
        for command in module.commands:
            if command.name == cmd_name:
                return command  # type: ignore[no-any-return]
        raise RuntimeError(f"{module.__name__} does not define the command {cmd_name!r}")

    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except DeployerError as error:
            for line in str(error).splitlines() or [type(error).__name__]:
                click.echo(f"error: {escape_controls(line)}", err=True)
            sys.exit(error.exit_code)
        except KeyboardInterrupt:
            _interrupted()
        except click.Abort as abort:  # click's prompts turn Ctrl-C into Abort
            if isinstance(abort.__context__, KeyboardInterrupt):
                _interrupted()
            raise


def _interrupted() -> NoReturn:
    """Ctrl-C before any deployment began (a running one handles it itself): nothing was done."""
    click.echo("\ninterrupted (Ctrl-C); nothing was started", err=True)
    sys.exit(130)


@click.group(cls=DeployGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="deployer")
def cli() -> None:
    """Rolling deployments across a fleet, striped over datacenters."""


def load_command(cmd_name: str | None) -> None:
    """Import the modules of command ``cmd_name`` (if any) as the process's entry point does.

    A command's imports (SQLAlchemy, asyncssh, pydantic...) are some 300,000 objects that
    live until the process ends. The collections that making them triggers free nothing
    (40 ms of CPU for push), so the collector is off while they are made. Frozen out of
    its sight once imported, they are no longer walked by the collections a run makes,
    nor by the interpreter's exit, which took 0.3 s of every push without it (0.02 s
    with). Only the process's own entry point does this (and bench/push.py, to measure
    it): tests that call ``cli`` in-process keep their collector as it is.
    """
    if cmd_name is not None:
        gc.disable()
        try:
            command_module(cmd_name)
        finally:
            gc.enable()
    gc.freeze()


def quiet_library_warnings(environ: Mapping[str, str], warnoptions: Sequence[str]) -> None:
    """Hide warnings that libraries raise about themselves, unless the user asked to see them.

    A library's deprecation (cryptography deprecating DSA as asyncssh imports it, say)
    is for us to act on, not for the operator reading a push's output. Someone who
    wants them sets ``PYTHONWARNINGS`` or ``-W`` (both land in ``sys.warnoptions``) or
    ``DEPLOYER_DEBUG=1``. Warnings attributed to our own modules are still shown.
    """
    if warnoptions or environ.get("DEPLOYER_DEBUG") == "1":
        return
    warnings.filterwarnings("ignore")
    warnings.filterwarnings("default", module=r"(deployer|tui)(\.|$)")


def prepare_command() -> None:
    """Quiet library warnings and import the modules of the command named on the command line."""
    quiet_library_warnings(os.environ, sys.warnoptions)
    load_command(next((arg for arg in sys.argv[1:] if not arg.startswith("-")), None))


def run_command() -> None:
    """Run the command line, once :func:`prepare_command` has loaded it."""
    try:
        cli(prog_name="deploy")
    finally:
        gc.freeze()


def main() -> None:
    prepare_command()
    run_command()
