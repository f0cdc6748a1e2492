"""The ``deploy`` command.

Each sub-command lives in its own module here and is registered below. The CLI
catches only :class:`~deployer.errors.DeployerError`: one clear line, then the
error's exit status. Anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import importlib
import sys

import click

from deployer.errors import DeployerError

# Modules of deployer.cli that each export ``commands``: a list of click commands.
COMMAND_MODULES: tuple[str, ...] = ()


class DeployGroup(click.Group):
    """A click group that turns our own errors into one line and an exit status."""

    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except DeployerError as error:
            for line in str(error).splitlines() or [type(error).__name__]:
                click.echo(f"error: {line}", err=True)
            sys.exit(error.exit_code)


@click.group(cls=DeployGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="deployer")
def cli() -> None:
    """Rolling deployments across a fleet, striped over datacenters."""


for _name in COMMAND_MODULES:
    for _command in importlib.import_module(f"deployer.cli.{_name}").commands:
        cli.add_command(_command)


def main() -> None:
    cli(prog_name="deploy")
