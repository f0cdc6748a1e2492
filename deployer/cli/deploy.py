"""``deploy plan``, ``deploy push`` and ``deploy rollback``: the main job."""

from __future__ import annotations

import asyncio
import signal
import sys
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from deployer.cli.completion import (
    complete_app,
    complete_deployment_id,
    complete_environment,
    spec_argument,
)
from deployer.cli.options import db_option, echo_json, json_option
from deployer.cli.plan_view import plan_json, plan_text
from deployer.core.errors import LeftRunning, PatternError
from deployer.core.exitcodes import ExitCode, exit_code_for
from deployer.core.results import HostStatus
from deployer.core.terminal_text import escape_controls
from deployer.core.wording import count_of
from deployer.inventory.limit import read_limit_files

if TYPE_CHECKING:
    from deployer.core.events import Event, EventSink
    from deployer.core.rollout import GracefulStop, RolloutOutcome
    from deployer.hosts.runner_thread import EarlyRunner
    from deployer.operations.plan import Prepared
    from deployer.operations.reconcile import Reconciled
    from deployer.store import Store
    from deployer.views.live_progress import LiveProgress

    Start = Callable[[EventSink, GracefulStop], Coroutine[Any, Any, RolloutOutcome]]

# Imported inside the commands, so that `deploy plan --help` loads neither asyncssh nor
# SQLAlchemy; a run imports them up front all the same (deployer.cli.load_command).
RUNTIME_IMPORTS = (
    "deployer.operations.push",
    "deployer.operations.resume",
    "deployer.store",
    "deployer.views.render",
    "deployer.cli.query",
)
# A push imports only what reads its spec and connects first, and the rest while its
# first hosts answer (deployer.operations.early).
FIRST_IMPORTS = {"push": ("deployer.operations.early",)}

version_option = click.option(
    "--version", "version", metavar="V", help="Deploy this version (overrides the spec)."
)
env_option = click.option(
    "--env",
    "environment",
    metavar="E",
    shell_complete=complete_environment,
    help="Pick one of the spec's environments.",
)


def _limit_with_files(_context: click.Context, _parameter: click.Parameter, value: str | None) -> str | None:
    """``--limit`` with its ``@FILE`` elements read now, so a deployment records the hosts themselves."""
    return None if value is None else read_limit_files(value, _read_limit_file)


def _read_limit_file(name: str) -> str:
    try:
        return Path(name).expanduser().read_text(encoding="utf-8")
    except OSError as error:
        raise PatternError(f"--limit @{name}: cannot read the file: {error.strerror or error}") from None
    except UnicodeDecodeError:
        raise PatternError(f"--limit @{name}: not a UTF-8 text file") from None


def _seconds(_context: click.Context, _parameter: click.Parameter, value: str | None) -> float | None:
    """``--timeout 30m`` in seconds (None when not given); more than zero."""
    if value is None:
        return None
    from deployer.core.quantities import parse_duration

    try:
        seconds = parse_duration(value)
    except ValueError as error:
        raise click.BadParameter(str(error)) from None
    if seconds <= 0:
        raise click.BadParameter(f"{value!r}: the deadline must be more than zero")
    return seconds


timeout_option = click.option(
    "--timeout",
    "deadline",
    metavar="DURATION",
    callback=_seconds,
    help="An overall deadline (30m, 1h, 90s): when it passes, no new host starts, the hosts in "
    "flight finish, and the deployment ends aborted (exit 124).",
)

limit_option = click.option(
    "--limit",
    metavar="PATTERN",
    callback=_limit_with_files,
    help="Only these hosts: Ansible's host patterns (groups, globs, ~regex, !exclude, &intersect, "
    "@FILE) and tag:NAME, dc:NAME, separated by , or : (see docs/cli.md).",
)


@click.command()
@spec_argument
@version_option
@env_option
@limit_option
@click.option("--force", is_flag=True, help="Include hosts that already run the version.")
@json_option
@db_option
def plan(
    spec: str,
    version: str | None,
    environment: str | None,
    limit: str | None,
    force: bool,
    as_json: bool,
    db_url: str | None,
) -> None:
    """Show the waves a push of SPEC would run, without touching any host.

    \b
    Examples:
      deploy plan specs/webapp.yaml
      deploy plan specs/webapp.yaml --version 2.5.0 --env staging
      deploy plan specs/webapp.yaml --limit 'dc:fra,!web-fra-3'
      deploy plan specs/webapp.yaml --json | jq '.waves | length'
    """

    from deployer.operations.options import PushOptions
    from deployer.operations.plan import prepare
    from deployer.store import open_store

    with open_store(db_url) as store:
        prepared = prepare(PushOptions(spec, version, environment, limit, force=force), store)
    # A push packs the artifact only once it runs: a missing one is told here instead.
    from deployer.hosts.artifact import artifact_problem

    problem = artifact_problem(prepared.spec.artifact) if prepared.plan.waves else None
    if as_json:
        echo_json({**plan_json(prepared), "artifact_problem": problem})
    else:
        click.echo(plan_text(prepared))
    if problem is not None:
        click.echo(f"error: {escape_controls(problem)}; a push would fail", err=True)
        sys.exit(ExitCode.BAD_INPUT)


def nothing_to_do(prepared: Prepared, as_json: bool) -> None:
    """Say that no host needs the version (exit 0): the plan object with status "unchanged"."""
    if as_json:
        echo_json({**plan_json(prepared), "status": "unchanged", "id": None})
    else:
        click.echo(f"nothing to do: every selected host already runs {prepared.spec.version}")


def confirm_and_run(
    prepared: Prepared,
    store: Store,
    *,
    as_json: bool,
    yes: bool,
    tui: bool = False,
    question: str | None = None,
    deadline: float | None = None,
    early: EarlyRunner | None = None,
) -> None:
    """Show the plan, confirm (on a terminal, unless ``yes``), run, report; exit 0 only on success.

    ``early``: the runner already connecting to the first hosts, and the loop to run on.
    """
    if not yes:
        if not sys.stdin.isatty():
            raise click.UsageError("not a terminal: pass --yes to go ahead without confirmation")
        # With --json, stdout holds exactly one JSON object: the plan and the question go to stderr.
        click.echo(plan_text(prepared), err=as_json)
        question = (
            question or f"deploy {prepared.spec.version} to {count_of(prepared.plan.host_count, 'host')}?"
        )
        click.confirm(question, abort=True, err=True)
    elif not as_json:
        click.echo(plan_text(prepared))
    from deployer.operations.plan import targets_for
    from deployer.operations.push import execute

    if early is not None:
        targets = targets_for(prepared)
        early.expect([targets[host.name] for wave in prepared.plan.waves for host in wave.hosts])
    run_and_report(
        store,
        lambda sink, stop: execute(
            prepared, store, sink, stop=stop, runner=early.runner if early is not None else None
        ),
        as_json=as_json,
        tui=tui,
        deadline=deadline,
        early=early,
    )


def _run(
    prepared: Prepared,
    store: Store,
    as_json: bool,
    yes: bool,
    tui: bool = False,
    deadline: float | None = None,
    preflight: bool = False,
    early: EarlyRunner | None = None,
) -> None:
    if not prepared.plan.waves:
        nothing_to_do(prepared, as_json)
        return
    if preflight or prepared.spec.strategy.preflight:
        run_preflight(prepared, as_json)
    confirm_and_run(prepared, store, as_json=as_json, yes=yes, tui=tui, deadline=deadline, early=early)


def run_preflight(prepared: Prepared, as_json: bool) -> None:
    """``deploy check`` on the hosts the plan changes; exit 1 before any host is touched if one fails.

    Nothing is recorded then: no deployment, so no failure budget spent. With ``--json``
    the one object on stdout is the plan with ``"status": "preflight_failed"``.
    """
    from deployer.hosts.preflight import checks_json, checks_text, needed_bytes
    from deployer.operations.push import preflight
    from deployer.operations.rollout import artifact_for

    spec = prepared.spec
    artifact = artifact_for(prepared.kind, spec, kept=prepared.options.promoted_from is not None)
    hosts = [host for wave in prepared.plan.waves for host in wave.hosts]
    checks = asyncio.run(preflight(spec, prepared.fleet, hosts, artifact))
    failed = [check for check in checks if not check.is_ok]
    if not failed:
        click.echo(f"preflight: {count_of(len(checks), 'host')} ok", err=as_json)
        return
    if as_json:
        report = checks_json(checks, app=spec.app, environment=spec.environment, need=needed_bytes(artifact))
        echo_json({**plan_json(prepared), "status": "preflight_failed", "id": None, "preflight": report})
    else:
        click.echo(escape_controls(checks_text(checks)))
    click.echo(
        f"error: preflight failed on {count_of(len(failed), 'host')}: nothing was started, "
        "no deployment was recorded",
        err=True,
    )
    sys.exit(ExitCode.FAILED)


def run_and_report(
    store: Store,
    start: Start,
    *,
    as_json: bool,
    tui: bool = False,
    running: str | None = None,
    deadline: float | None = None,
    early: EarlyRunner | None = None,
) -> None:
    """Run a deployment with a progress view (or the terminal UI), then print its result.

    Exits as docs/cli.md's table says: 0 only if the deployment succeeded; 130 or 143
    when Ctrl-C or SIGTERM stopped it (:func:`run_stoppable`); 124 when ``deadline``
    seconds passed first (:func:`within_deadline`). With ``early``, it runs on that
    runner's loop, where its first hosts are being connected to already.
    """
    from deployer.cli.query import automatic_rollback
    from deployer.core.rollout import GracefulStop
    from deployer.views.render import deployment_json, rollback_sentence

    stop = GracefulStop()
    if tui:
        from tui import run_push_ui  # only here: Textual is slow to import

        outcome = run_push_ui(
            lambda sink: within_deadline(deadline, stop, start(sink, stop), say=False), store=store, stop=stop
        )
    else:
        from deployer.views.progress import PlainProgress

        progress: LiveProgress | PlainProgress
        if sys.stderr.isatty() and not as_json:
            from deployer.views.live_progress import LiveProgress  # rich: only when shown

            progress = LiveProgress()
        else:
            progress = PlainProgress()
        try:
            outcome = (early.run if early is not None else asyncio.run)(
                run_stoppable(
                    lambda sink, stop: within_deadline(deadline, stop, start(sink, stop)),
                    progress,
                    stop,
                    running,
                )
            )
        finally:
            progress.close()
    view = store.deployment(outcome.deployment_id)
    rollback = automatic_rollback(store, view)
    if as_json:
        echo_json(deployment_json(view, with_hosts=True, rollback=rollback))
    else:
        line = escape_controls(f"{view.id}: {view.status.value}: {view.reason or ''}")
        # host names in the rollback sentence are host text too: escaped like the rest
        click.echo(line if rollback is None else escape_controls(f"{line}; {rollback_sentence(rollback)}"))
    sys.exit(exit_code_for(outcome.status, stop.cause))


async def within_deadline(
    deadline: float | None,
    stop: GracefulStop,
    run: Coroutine[Any, Any, RolloutOutcome],
    *,
    say: bool = True,
) -> RolloutOutcome:
    """Await ``run``, asking ``stop`` for a graceful stop once ``deadline`` seconds have passed.

    The deadline stops a deployment as Ctrl-C does (Kubernetes' progressDeadlineSeconds
    for a rollout): no new host starts, the hosts in flight finish, and it ends
    ``aborted``, "the deadline passed", exit 124. It counts from the deployment's start.
    """
    if deadline is None:
        return await run
    from deployer.core.decide import StopCause

    def passed() -> None:
        if stop.cause is None and say:
            click.echo(
                f"the deadline of {deadline:g}s passed: stopping: no new host starts, hosts in flight finish",
                err=True,
            )
        stop.request(StopCause.DEADLINE)

    timer = asyncio.get_running_loop().call_later(deadline, passed)
    try:
        return await run
    finally:
        timer.cancel()


_SIGNALS = (signal.SIGINT, signal.SIGTERM)


async def run_stoppable(
    start: Start, sink: EventSink, stop: GracefulStop, running: str | None = None
) -> RolloutOutcome:
    """Run ``start`` with Ctrl-C and SIGTERM stopping it gracefully, and a second Ctrl-C at once.

    The first signal asks for a graceful stop: no new host starts, the hosts in flight
    finish, and the deployment ends ``aborted`` saying which signal. A second signal
    leaves at once (:class:`LeftRunning`): the hosts' drivers finish on their own, and
    the deployment stays ``running`` in the store for ``deploy resume`` or ``abort``.
    The message names the deployment left running (``running`` when it is known before
    its events come, as for a resume), which may be an automatic rollback of the push.
    """
    from deployer.core.decide import StopCause

    loop = asyncio.get_running_loop()
    task = asyncio.current_task()
    assert task is not None
    seen: dict[str, str] = {}  # the signal that left
    unfinished = [running] if running else []  # deployments begun and not yet finished, in order

    from deployer.core.events import DeploymentFinished, DeploymentStarted  # events import the spec models

    def watch(event: Event) -> None:
        if isinstance(event, DeploymentStarted) and event.deployment_id not in unfinished:
            unfinished.append(event.deployment_id)
        elif isinstance(event, DeploymentFinished) and event.deployment_id in unfinished:
            unfinished.remove(event.deployment_id)
        sink(event)

    def on_signal(number: signal.Signals) -> None:
        if stop.cause is None:
            stop.request(StopCause(number.name))
            click.echo(
                f"{number.name}: stopping: no new host starts, hosts in flight finish "
                "(press Ctrl-C again to leave at once)",
                err=True,
            )
        else:
            seen["left"] = number.name
            task.cancel()

    for number in _SIGNALS:
        loop.add_signal_handler(number, on_signal, number)
    try:
        return await start(watch, stop)
    except asyncio.CancelledError:
        if "left" not in seen:
            raise
        raise LeftRunning(seen["left"], unfinished[-1] if unfinished else None) from None
    finally:
        for number in _SIGNALS:
            loop.remove_signal_handler(number)


@click.command()
@spec_argument
@version_option
@env_option
@limit_option
@click.option("--force", is_flag=True, help="Also redeploy hosts that already run the version.")
@click.option("--ignore-stop-failures", is_flag=True, help="Go on when the old release's stop hook fails.")
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
@click.option("--tui", is_flag=True, help="Watch it in the terminal UI.")
@click.option(
    "--preflight",
    is_flag=True,
    help="Run `deploy check` on the hosts first; a failing host stops the push before any host is "
    "touched (as strategy.preflight: true).",
)
@timeout_option
@json_option
@db_option
def push(
    spec: str,
    version: str | None,
    environment: str | None,
    limit: str | None,
    force: bool,
    ignore_stop_failures: bool,
    yes: bool,
    tui: bool,
    preflight: bool,
    deadline: float | None,
    as_json: bool,
    db_url: str | None,
) -> None:
    """Roll SPEC's version out to its fleet, wave by wave.

    \b
    Examples:
      deploy push specs/webapp.yaml
      deploy push specs/webapp.yaml --version 2.5.0 --yes
      deploy push specs/webapp.yaml --limit dc:fra --tui
      deploy push specs/webapp.yaml --yes --json --timeout 30m   # in CI
    """

    from deployer.cli import import_later
    from deployer.operations.early import start_early
    from deployer.operations.options import PushOptions

    options = PushOptions(
        spec, version, environment, limit, force=force, ignore_stop_failures=ignore_stop_failures
    )
    # Not for the terminal UI (its own loop), nor for a push that asks first or runs a preflight.
    early = start_early(options, connect=yes and not tui and not preflight)
    try:
        import_later()
        from deployer.operations.plan import prepare
        from deployer.store import open_store

        with open_store(db_url) as store:
            prepared = prepare(options, store, settle_unknown=True, loaded=(early.spec, early.fleet))
            _run(prepared, store, as_json, yes, tui, deadline, preflight, early=early.runner)
    finally:
        early.close()


@click.command()
@spec_argument
@click.option(
    "--to", "to_version", metavar="V", help="Roll back to this version (default: the previous good one)."
)
@env_option
@limit_option
@click.option("--ignore-stop-failures", is_flag=True, help="Go on when the broken release's stop hook fails.")
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
@json_option
@db_option
def rollback(
    spec: str,
    to_version: str | None,
    environment: str | None,
    limit: str | None,
    ignore_stop_failures: bool,
    yes: bool,
    as_json: bool,
    db_url: str | None,
) -> None:
    """Deploy the previous good version again, previously failed hosts first.

    \b
    Examples:
      deploy rollback specs/webapp.yaml
      deploy rollback specs/webapp.yaml --to 2.3.0 --yes
      deploy rollback specs/webapp.yaml --limit web-fra-1,web-fra-2
    """

    from deployer.operations.options import PushOptions
    from deployer.operations.plan import prepare_rollback
    from deployer.store import open_store

    options = PushOptions(spec, None, environment, limit, ignore_stop_failures=ignore_stop_failures)
    with open_store(db_url) as store:
        _run(prepare_rollback(options, store, to_version, settle_unknown=True), store, as_json, yes)


@click.command("reconcile")
@click.argument("deployment_id", required=False, shell_complete=complete_deployment_id)
@click.option(
    "--app",
    shell_complete=complete_app,
    help="Every host of this app whose outcome is unknown (with --env: of that environment).",
)
@click.option(
    "--env", "environment", shell_complete=complete_environment, help="The environment, with --app."
)
@json_option
@db_option
def reconcile_command(
    deployment_id: str | None, app: str | None, environment: str | None, as_json: bool, db_url: str | None
) -> None:
    """Ask the hosts whose outcome is unknown how they ended, and record it.

    A host's outcome is unknown when the connection dropped mid-step: its driver went
    on by itself and recorded how it ended on the host. Exits 1 while some host still
    does not answer.
    """
    if deployment_id is None and app is None:
        raise click.UsageError("name a deployment ID, or --app (and --env)")
    from deployer.operations.reconcile import reconcile
    from deployer.store import open_store

    with open_store(db_url) as store:
        if deployment_id is not None:
            store.deployment(deployment_id)  # NotFound: exit 2
        learnt = asyncio.run(reconcile(store, deployment_id=deployment_id, app=app, environment=environment))
    if as_json:
        echo_json({"hosts": [reconciled_json(entry) for entry in learnt]})
    elif not learnt:
        click.echo("no host's outcome is unknown")
    for entry in [] if as_json else learnt:
        runs = f", runs {entry.verdict.version}" if entry.verdict.version else ""
        click.echo(
            f"{entry.deployment_id}: {entry.host}: {entry.verdict.status}{runs} ({entry.verdict.note})"
        )
    still = any(entry.verdict.status is HostStatus.UNKNOWN and entry.asked for entry in learnt)
    sys.exit(ExitCode.FAILED if still else ExitCode.SUCCEEDED)


def reconciled_json(entry: Reconciled) -> dict[str, Any]:
    verdict = entry.verdict
    return {
        "deployment": entry.deployment_id,
        "host": entry.host,
        "status": str(verdict.status),
        "version": verdict.version,
        "note": verdict.note,
    }


commands = [plan, push, rollback, reconcile_command]
