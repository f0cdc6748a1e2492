"""The ``deploy`` command.

Each sub-command lives in a module here that exports ``commands``, a list of click
commands, and is named in :data:`COMMANDS`. Modules are imported only when one of
their commands runs, so ``deploy status`` does not pay for asyncssh or Textual, and
``deploy --help`` (and completing a command's name) imports none of them: it reads
each command's one-line help from :data:`SUMMARIES`, which a test keeps equal to the
commands' own. A module whose commands need heavy libraries imports them inside the
commands and names them in ``RUNTIME_IMPORTS``, so ``deploy CMD --help`` stays light
while a run still imports them up front (:func:`load_command`).

The CLI catches only :class:`~deployer.core.errors.DeployerError`: one clear line, then
the error's exit status. Anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import contextlib
import gc
import importlib
import json
import os
import sys
import warnings
from collections.abc import Iterator, Mapping, Sequence
from types import ModuleType
from typing import Any, NoReturn

import click
from click.shell_completion import CompletionItem

from deployer.core.errors import DeployerError, SpecError
from deployer.core.terminal_text import escape_controls

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

# Command name -> its one-line help, as ``deploy --help`` lists it (tests/cli/test_startup.py
# compares each with the command's own docstring).
SUMMARIES: dict[str, str] = {
    "plan": "Show the waves a push of SPEC would run, without touching any host.",
    "check": "Check that SPEC could be deployed to each host, changing nothing.",
    "push": "Roll SPEC's version out to its fleet, wave by wave.",
    "rollback": "Deploy the previous good version again, previously failed hosts first.",
    "reconcile": "Ask the hosts whose outcome is unknown how they ended, and record it.",
    "sync": "Bring the hosts of SPEC's fleet that are behind onto the latest good version.",
    "promote": "Deploy to --to the version that last succeeded in full in --from.",
    "restart": "Run the stop, start and validate hooks on every host, wave by wave; install nothing.",
    "demo": "Start a lab fleet and show pushes, a halt and a rollback on it.",
    "status": "Show a deployment, or the latest of each app.",
    "hosts": "Which hosts run a version, and since when.",
    "versions": "How many hosts run each version.",
    "history": "Past deployments, or one host's versions.",
    "pause": "Ask a deployment to start no new host.",
    "resume": "Let a paused deployment go on.",
    "abort": "Ask a deployment to stop for good.",
    "watch": "Watch a deployment live (the latest one when no ID is given).",
    "tui": "Browse apps and environments: live deployments, history, and versions across the fleet.",
    "lab": "Real SSH servers on loopback addresses, to deploy to without any machines.",
    "schema": "Print the JSON Schema of a spec file (or of an inventory file).",
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

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """The commands and their one-line helps, from :data:`SUMMARIES`: no command module is imported."""
        if not COMMANDS:
            return
        limit = formatter.width - 6 - max(len(name) for name in COMMANDS)
        # a bare Command shortens a help exactly as the real one would
        rows = [
            (name, click.Command(name, help=SUMMARIES[name]).get_short_help_str(limit)) for name in COMMANDS
        ]
        with formatter.section("Commands"):
            formatter.write_dl(rows)

    def shell_complete(self, ctx: click.Context, incomplete: str) -> list[CompletionItem]:
        """Command names (from :data:`SUMMARIES`, importing nothing) and the group's own options."""
        names = [
            CompletionItem(name, help=SUMMARIES[name]) for name in COMMANDS if name.startswith(incomplete)
        ]
        return names + click.Command.shell_complete(self, ctx, incomplete)

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        ctx.meta[_ERRORS_AS_JSON] = asks_for_json(args)
        try:
            return super().parse_args(ctx, args)
        except click.ClickException as error:  # a bad option of `deploy` itself
            _echo_json_error(ctx, error_json(error))
            raise

    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except DeployerError as error:
            _echo_json_error(ctx, error_json(error))
            for line in str(error).splitlines() or [type(error).__name__]:
                click.echo(f"error: {escape_controls(line)}", err=True)
            sys.exit(error.exit_code)
        except click.ClickException as error:  # usage errors: click prints them, exit 2
            _echo_json_error(ctx, error_json(error))
            raise
        except KeyboardInterrupt:
            _interrupted()
        except click.Abort as abort:  # click's prompts turn Ctrl-C into Abort
            if isinstance(abort.__context__, KeyboardInterrupt):
                _interrupted()
            raise


_ERRORS_AS_JSON = "deployer.errors_as_json"


def asks_for_json(args: Sequence[str]) -> bool:
    """Whether the command line asks for ``--json`` (before any ``--``): errors then come as JSON too."""
    options = args[: args.index("--")] if "--" in args else args
    return "--json" in options


def error_json(error: DeployerError | click.ClickException) -> dict[str, Any]:
    """The error object that ``--json`` prints on stdout (docs/cli.md, "Errors under --json").

    ``kind`` is the error's class in deployer.core.errors, or ``UsageError`` for every
    mistake on the command line that click finds; ``file``, ``line`` and ``field`` say
    where a spec's first problem is (``field`` is the option or argument of a usage
    error), null when unknown. A spec's every problem is also in ``issues``.
    """
    file: str | None = None
    line: int | None = None
    field: str | None = None
    issues: list[dict[str, Any]] | None = None
    if isinstance(error, click.ClickException):
        kind = "UsageError" if isinstance(error, click.UsageError) else type(error).__name__
        message = error.format_message()
        parameter = getattr(error, "param", None)
        if isinstance(parameter, click.Argument):
            field = parameter.human_readable_name  # SPEC, as the usage line says
        elif isinstance(parameter, click.Parameter):
            field = parameter.opts[0]
        exit_code = error.exit_code
    else:
        kind = type(error).__name__
        message = str(error) or kind
        exit_code = error.exit_code
        if isinstance(error, SpecError):
            first = error.issues[0]
            file, line, field = first.file, first.line, first.field or None
            issues = [
                {"file": i.file, "line": i.line, "field": i.field or None, "message": i.message}
                for i in error.issues
            ]
    document: dict[str, Any] = {
        "kind": kind,
        "message": message,
        "exit_code": exit_code,
        "file": file,
        "line": line,
        "field": field,
    }
    if issues is not None:
        document["issues"] = issues
    return {"error": document}


def _echo_json_error(ctx: click.Context, document: dict[str, Any]) -> None:
    """``document`` on stdout as one line, if the command line asked for ``--json``."""
    if ctx.meta.get(_ERRORS_AS_JSON):
        click.echo(json.dumps(document, separators=(",", ":")))


def _interrupted() -> NoReturn:
    """Ctrl-C before any deployment began (a running one handles it itself): nothing was done."""
    click.echo("\ninterrupted (Ctrl-C); nothing was started", err=True)
    sys.exit(130)


@click.group(cls=DeployGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="deployer")
def cli() -> None:
    """Rolling deployments across a fleet, striped over datacenters."""


_LATER: list[str] = []  # what load_command left to the command itself (import_later)


def load_command(cmd_name: str | None, *, asks_for_help: bool = False) -> None:
    """Import the modules of command ``cmd_name`` (if any) as the process's entry point does.

    That is its module, then the libraries it names in ``RUNTIME_IMPORTS`` unless
    ``asks_for_help`` (``deploy plan --help`` needs neither asyncssh nor SQLAlchemy). A
    command its module names in ``FIRST_IMPORTS`` gets only those now, and imports the
    rest itself once it started something to overlap them with (:func:`import_later`).

    A command's imports (SQLAlchemy, asyncssh, pydantic...) are a great many objects that
    live until the process ends. The collections that making them triggers free nothing,
    so the collector is off while they are made. Frozen out of its sight once imported,
    they are no longer walked by the collections a run makes, nor by the interpreter's
    exit. Only the process's own entry point does this (and bench/push.py, to measure
    it): tests that call ``cli`` in-process keep their collector as it is.
    """
    if cmd_name is not None:
        with _collector_off():
            module = command_module(cmd_name)
            if module is not None and not asks_for_help:
                names = getattr(module, "RUNTIME_IMPORTS", ())
                first = getattr(module, "FIRST_IMPORTS", {}).get(cmd_name)
                if first is not None:
                    _LATER[:] = [name for name in names if name not in first]
                    names = first
                for name in names:
                    importlib.import_module(name)
    gc.freeze()


def import_later() -> None:
    """Import what :func:`load_command` left to the running command, as it would have
    (nothing when the process did not start through it: a test calling ``cli``)."""
    if not _LATER:
        return
    with _collector_off():
        for name in _LATER:
            importlib.import_module(name)
    _LATER.clear()
    gc.freeze()


@contextlib.contextmanager
def _collector_off() -> Iterator[None]:
    """The garbage collector off meanwhile: imports make objects that live until the end."""
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


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
    """Quiet library warnings, raise the open-file limit, import the command line's command."""
    quiet_library_warnings(os.environ, sys.warnoptions)
    from deployer.hosts.file_limits import raise_open_file_limit

    raise_open_file_limit()
    args = sys.argv[1:]
    load_command(
        next((arg for arg in args if not arg.startswith("-")), None),
        asks_for_help="--help" in args or "-h" in args,
    )


def run_command() -> None:
    """Run the command line, once :func:`prepare_command` has loaded it."""
    try:
        cli(prog_name="deploy")
    finally:
        gc.freeze()


def main() -> None:
    prepare_command()
    run_command()
