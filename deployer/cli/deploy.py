"""``deploy plan``, ``deploy push`` and ``deploy rollback``: the main job."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any

import click

from deployer.cli.options import db_option, echo_json, json_option
from deployer.controller import RolloutOutcome
from deployer.events import EventSink
from deployer.operations import Prepared, PushOptions, execute, prepare, prepare_rollback
from deployer.render import deployment_json
from deployer.results import DeploymentStatus
from deployer.store import Store, open_store
from deployer.terminal_text import escape_controls

if TYPE_CHECKING:
    from deployer.live_progress import LiveProgress

version_option = click.option(
    "--version", "version", metavar="V", help="Deploy this version (overrides the spec)."
)
env_option = click.option("--env", "environment", metavar="E", help="Pick one of the spec's environments.")
limit_option = click.option(
    "--limit",
    metavar="PATTERN",
    help="Only hosts matching: a glob on names, tag:NAME or dc:NAME (comma-separated).",
)


def plan_json(prepared: Prepared) -> dict[str, Any]:
    spec, plan = prepared.spec, prepared.plan
    return {
        "app": spec.app,
        "environment": spec.environment,
        "version": spec.version,
        "kind": prepared.kind.value,
        "previous_version": prepared.previous_version,
        "failure_budget": prepared.failure_budget,
        "waves": [
            {
                "index": wave.index,
                "hosts": [
                    {"name": h.name, "datacenter": h.datacenter, "address": h.address} for h in wave.hosts
                ],
            }
            for wave in plan.waves
        ],
        "skipped": [{"name": skip.host.name, "reason": skip.reason} for skip in plan.skipped],
    }


def plan_text(prepared: Prepared) -> str:
    spec, plan = prepared.spec, prepared.plan
    datacenters = list(dict.fromkeys(h.datacenter for wave in plan.waves for h in wave.hosts))
    lines = [
        f"{prepared.kind.value} {spec.app} {prepared.previous_version or '(new)'} -> {spec.version} "
        f"in {spec.environment}: {plan.host_count} hosts in {len(plan.waves)} waves, "
        f"{prepared.failure_budget} failures allowed"
        + (f", {len(plan.skipped)} skipped" if plan.skipped else "")
    ]
    if plan.waves:
        header = ["wave", "hosts", *datacenters, "names"]
        rows = []
        for wave in plan.waves:
            per_dc = {dc: sum(1 for h in wave.hosts if h.datacenter == dc) for dc in datacenters}
            names = _names(wave_names=[h.name for h in wave.hosts])
            rows.append(
                [
                    str(wave.index),
                    str(len(wave.hosts)),
                    *(str(per_dc[dc] or "-") for dc in datacenters),
                    names,
                ]
            )
        widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header) - 1)]
        for row in [header, *rows]:
            cells = [cell.ljust(width) for cell, width in zip(row, widths, strict=False)]
            lines.append("  ".join([*cells, row[-1]]).rstrip())
    for skip in plan.skipped:
        lines.append(f"skipped {skip.host.name}: {skip.reason}")
    return "\n".join(lines)


def _names(wave_names: list[str], most: int = 8) -> str:
    if len(wave_names) <= most:
        return " ".join(wave_names)
    return " ".join(wave_names[:most]) + f" ... (+{len(wave_names) - most})"


@click.command()
@click.argument("spec", type=click.Path(dir_okay=False))
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
    """Show the waves a push of SPEC would run, without touching any host."""
    with open_store(db_url) as store:
        prepared = prepare(PushOptions(spec, version, environment, limit, force=force), store)
    if as_json:
        echo_json(plan_json(prepared))
    else:
        click.echo(plan_text(prepared))


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
) -> None:
    """Show the plan, confirm (on a terminal, unless ``yes``), run, report; exit 0 only on success."""
    if not yes:
        if not sys.stdin.isatty():
            raise click.UsageError("not a terminal: pass --yes to go ahead without confirmation")
        # With --json, stdout holds exactly one JSON object: the plan and the question go to stderr.
        click.echo(plan_text(prepared), err=as_json)
        question = question or f"deploy {prepared.spec.version} to {prepared.plan.host_count} hosts?"
        click.confirm(question, abort=True, err=True)
    elif not as_json:
        click.echo(plan_text(prepared))
    run_and_report(store, lambda sink: execute(prepared, store, sink), as_json=as_json, tui=tui)


def _run(prepared: Prepared, store: Store, as_json: bool, yes: bool, tui: bool = False) -> None:
    if not prepared.plan.waves:
        nothing_to_do(prepared, as_json)
        return
    confirm_and_run(prepared, store, as_json=as_json, yes=yes, tui=tui)


def run_and_report(
    store: Store,
    start: Callable[[EventSink], Coroutine[Any, Any, RolloutOutcome]],
    *,
    as_json: bool,
    tui: bool = False,
) -> None:
    """Run a deployment with a progress view (or the terminal UI), then print its result.

    Exits 0 only if the deployment succeeded.
    """
    if tui:
        from tui import run_push_ui  # only here: Textual is slow to import

        outcome = run_push_ui(start, store=store)
    else:
        from deployer.progress import PlainProgress

        progress: LiveProgress | PlainProgress
        if sys.stderr.isatty() and not as_json:
            from deployer.live_progress import LiveProgress  # rich: only when shown

            progress = LiveProgress()
        else:
            progress = PlainProgress()
        try:
            outcome = asyncio.run(start(progress))
        finally:
            progress.close()
    view = store.deployment(outcome.deployment_id)
    if as_json:
        echo_json(deployment_json(view, with_hosts=True))
    else:
        click.echo(escape_controls(f"{view.id}: {view.status.value}: {view.reason or ''}"))
    sys.exit(0 if outcome.status is DeploymentStatus.SUCCEEDED else 1)


@click.command()
@click.argument("spec", type=click.Path(dir_okay=False))
@version_option
@env_option
@limit_option
@click.option("--force", is_flag=True, help="Also redeploy hosts that already run the version.")
@click.option("--ignore-stop-failures", is_flag=True, help="Go on when the old release's stop hook fails.")
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
@click.option("--tui", is_flag=True, help="Watch it in the terminal UI.")
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
    as_json: bool,
    db_url: str | None,
) -> None:
    """Roll SPEC's version out to its fleet, wave by wave."""
    options = PushOptions(
        spec, version, environment, limit, force=force, ignore_stop_failures=ignore_stop_failures
    )
    with open_store(db_url) as store:
        _run(prepare(options, store), store, as_json, yes, tui)


@click.command()
@click.argument("spec", type=click.Path(dir_okay=False))
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
    """Deploy the previous good version again, previously failed hosts first."""
    options = PushOptions(spec, None, environment, limit, ignore_stop_failures=ignore_stop_failures)
    with open_store(db_url) as store:
        _run(prepare_rollback(options, store, to_version), store, as_json, yes)


commands = [plan, push, rollback]
