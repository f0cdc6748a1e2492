"""Click options shared by the ``deploy`` sub-commands: the store, ``--json``, and TIME arguments."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any, TypeVar

import click

from deployer.errors import TimeExpressionError
from deployer.timeexpr import FORMS, parse_time

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

    Indenting takes json's pure-Python encoder: for the 10,000 hosts of ``deploy hosts``
    (2 MB) about ten times as long as the C one that writes it on one line.
    """
    if sys.stdout.isatty():
        click.echo(json.dumps(document, indent=2))
    else:
        click.echo(json.dumps(document, separators=(",", ":")))


class LocalZone(tzinfo):
    """This machine's time zone, with its daylight-saving rules (as ``time.localtime`` knows them).

    ``datetime.now().astimezone().tzinfo`` would be a fixed offset: right today, an
    hour off for ``--at 2026-07-01T09:00`` read in winter. This asks the C library for
    each moment instead.
    """

    def utcoffset(self, dt: datetime | None) -> timedelta:
        return _system_local(dt).utcoffset() or timedelta(0)

    def dst(self, dt: datetime | None) -> timedelta | None:
        return _system_local(dt).dst()

    def tzname(self, dt: datetime | None) -> str:
        return _system_local(dt).tzname() or "local"

    def fromutc(self, dt: datetime) -> datetime:
        return dt.replace(tzinfo=UTC).astimezone().replace(tzinfo=self)

    def __repr__(self) -> str:
        return "LocalZone()"


def _system_local(dt: datetime | None) -> datetime:
    """``dt``'s wall-clock reading as an aware local datetime (its own tzinfo dropped first)."""
    naive = (dt or datetime.now()).replace(tzinfo=None)
    return naive.astimezone()


LOCAL = LocalZone()


class TimeParam(click.ParamType[datetime, Any]):
    """A TIME on the command line (see :mod:`deployer.timeexpr`): an aware UTC datetime.

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
