"""``deploy watch`` and ``deploy tui``: the terminal UI (the :mod:`tui` package), read from the store."""

from __future__ import annotations

import sys

import click

from deployer.cli.completion import complete_deployment_id
from deployer.cli.options import db_option


def _need_terminal(command: str) -> None:
    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        raise click.UsageError(f"`deploy {command}` needs a terminal; for scripts use `deploy status --json`")


@click.command()
@click.argument("deployment_id", metavar="[ID]", required=False, shell_complete=complete_deployment_id)
@click.option(
    "--interval",
    type=click.FloatRange(min=0.1),
    default=0.5,
    show_default=True,
    help="Seconds between reads of the store.",
)
@db_option
def watch(deployment_id: str | None, interval: float, db_url: str | None) -> None:
    """Watch a deployment live (the latest one when no ID is given).

    Works for a deployment run from any terminal or machine sharing the store.
    p pauses, r resumes, a aborts (after asking); quitting never stops the deployment.
    """
    _need_terminal("watch")
    from tui.app import run_watch

    run_watch(deployment_id, store_url=db_url, poll_interval=interval)


@click.command()
@db_option
def tui(db_url: str | None) -> None:
    """Browse apps and environments: live deployments, history, and versions across the fleet."""
    _need_terminal("tui")
    from tui.app import run_browser

    run_browser(store_url=db_url)


commands = [watch, tui]
