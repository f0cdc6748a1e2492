"""Click options shared by the ``deploy`` sub-commands: the store, ``--json``, and TIME arguments."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from datetime import UTC, datetime, tzinfo
from typing import Any, TypeVar

import click

from deployer.core.errors import TimeExpressionError
from deployer.core.timeexpr import FORMS, parse_time
from deployer.core.timefmt import LOCAL

F = TypeVar("F", bound=Callable[..., Any])


def db_option(command: F) -> F:
    """``--db URL`` (or ``$DEPLOYER_DB``), passed as ``db_url``; None means the default store."""
    return click.option(
        "--db",
        "db_url",
        metavar="URL",
        envvar="DEPLOYER_DB",
        show_envvar=True,
        default=None,
        help="The state store's SQLAlchemy URL (default: SQLite under $XDG_STATE_HOME/deployer/).",
    )(command)


def json_option(command: F) -> F:
    """``--json``, passed as ``as_json``: print one JSON document for scripts instead of tables."""
    return click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts instead of a table.")(
        command
    )


def echo_json(document: object) -> None:
    """``document`` on stdout: indented for a person at a terminal, on one line for a script.

    Indenting takes json's pure-Python encoder, many times slower on a large fleet's
    ``deploy hosts`` than the C one that writes it on one line: scripts get the fast one.
    """
    if sys.stdout.isatty():
        click.echo(json.dumps(document, indent=2))
    else:
        click.echo(json.dumps(document, separators=(",", ":")))


class TimeParam(click.ParamType[datetime, Any]):
    """A TIME on the command line (see :mod:`deployer.core.timeexpr`): an aware UTC datetime.

    Relative forms count back from the moment the command runs; a time written
    without a zone is read in this machine's zone.
    """

    name = "TIME"

    def __init__(self, clock: Callable[[], datetime] | None = None, zone: tzinfo = LOCAL) -> None:
        self._clock = clock or (lambda: datetime.now(UTC))
        self._zone = zone

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> datetime:
        if isinstance(value, datetime):
            return value
        try:
            return parse_time(str(value), self._clock(), tz=self._zone)
        except TimeExpressionError as error:
            message = str(error)
            if FORMS not in message:  # some messages name only the part that was wrong
                message += f" (accepted: {FORMS})"
            self.fail(message, param, ctx)


TIME = TimeParam()
