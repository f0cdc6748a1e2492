"""The operators' questions and requests: ``status``, ``hosts``, ``versions``, ``history``,
``pause``, ``resume`` and ``abort``.

Each command opens the store, asks it one or two things, and hands the views to
:mod:`deployer.views.render`. ``pause``, ``resume`` and ``abort`` only record the
request in the store; the deployment's controller polls it and acts.
"""

from __future__ import annotations

import getpass
import socket
import sys
from datetime import datetime
from typing import TYPE_CHECKING

import click

# The store's SQLAlchemy part loads at the first stores.open_store(), not for --help.
import deployer.store as stores
from deployer.cli.completion import complete_app, complete_deployment_id, complete_environment, complete_host
from deployer.cli.options import TIME, db_option, echo_json, json_option
from deployer.core.clock import utcnow
from deployer.core.errors import ControlError, NotFound
from deployer.core.policy import rollback_due
from deployer.core.results import ControlAction, HostStatus
from deployer.core.terminal_text import escape_controls
from deployer.core.timefmt import LOCAL
from deployer.store import DeploymentView, Liveness
from deployer.views.render import (
    RollbackSummary,
    control_json,
    control_lines,
    deployment_json,
    deployment_lines,
    deployments_json,
    deployments_lines,
    host_history_json,
    host_history_lines,
    hosts_json,
    hosts_lines,
    rollback_summary,
    versions_json,
    versions_lines,
)

if TYPE_CHECKING:
    from deployer.store import Store

# Imported before a command runs, as load_command does with the collector off (not for --help).
RUNTIME_IMPORTS = ("deployer.store.repository",)

AT_HELP = "The moment to ask about: ISO 8601 (local time unless zoned), `3h ago`, `2d`, `yesterday 18:30`."


def _echo_lines(lines: list[str]) -> None:
    # Lines may hold what hosts sent (errors, reasons): shown with controls escaped.
    for line in lines:
        click.echo(escape_controls(line))


def needs_retry(status: HostStatus) -> bool:
    """Whether a host of a deployment should be tried again: it failed, could not be reached,
    or its outcome is unknown (all count as failures)."""
    return status.is_failure


@click.command("status", short_help="Show a deployment, or the latest of each app.")
@click.argument("deployment_id", metavar="[ID]", required=False, shell_complete=complete_deployment_id)
@click.option(
    "--failed",
    "failed_only",
    is_flag=True,
    help="Only the names of the hosts to retry (failed, unreachable or unknown), one a line, "
    "for --limit @FILE.",
)
@db_option
@json_option
def status(deployment_id: str | None, failed_only: bool, db_url: str | None, as_json: bool) -> None:
    """One deployment with its hosts, or the latest deployment of each app and environment."""
    if failed_only and (deployment_id is None or as_json):
        raise click.UsageError("--failed needs a deployment ID, and prints names, not --json")
    now = utcnow()
    with stores.open_store(db_url) as store:
        if deployment_id is None:
            views = store.latest_deployments()
            controllers = {view.id: store.liveness(view, now) for view in views if not view.is_finished}
            if as_json:
                echo_json(deployments_json(views, controllers=controllers))
            else:
                _echo_lines(deployments_lines(views, now=now, tz=LOCAL, controllers=controllers))
            return
        view = store.deployment(deployment_id)
        controller = None if view.is_finished else store.liveness(view, now)
        rollback = automatic_rollback(store, view)
    if failed_only:
        _echo_lines([host.name for host in view.hosts if needs_retry(host.status)])
    elif as_json:
        echo_json(deployment_json(view, with_hosts=True, controller=controller, rollback=rollback))
    else:
        _echo_lines(deployment_lines(view, now=now, tz=LOCAL, controller=controller, rollback=rollback))


def automatic_rollback(store: Store, view: DeploymentView) -> RollbackSummary | None:
    """What the automatic rollbacks of ``view`` (with hosts) restored; None if none was due."""
    due = rollback_due(view.status, view.kind, store.run_options(view.id))
    return rollback_summary(view, store.rollbacks_of(view.id), due=due)


@click.command("hosts", short_help="Which hosts run a version, and since when.")
@click.option("--app", required=True, shell_complete=complete_app, help="The application.")
@click.option(
    "--env", "environment", required=True, shell_complete=complete_environment, help="The environment."
)
@click.option("--version", help="Only the hosts running this version (default: any version).")
@click.option("--at", type=TIME, help=AT_HELP)
@db_option
@json_option
def hosts(
    app: str, environment: str, version: str | None, at: datetime | None, db_url: str | None, as_json: bool
) -> None:
    """Which hosts run a version, now or at a moment, and since when.

    \b
    Examples:
      deploy hosts --app webapp --env production
      deploy hosts --app webapp --env production --version 2.4.1
      deploy hosts --app webapp --env production --at "3h ago"
      deploy hosts --app webapp --env production --json | jq -r '.hosts[].name'
    """
    now = utcnow()
    with stores.open_store(db_url) as store:
        running = store.hosts_running(app, environment, version, at)
        retired = store.retired_hosts(app, environment)
    if as_json:
        echo_json(
            hosts_json(app, environment, at=at or now, version=version, running=running, retired=retired)
        )
    else:
        _echo_lines(
            hosts_lines(
                app, environment, at=at, now=now, tz=LOCAL, version=version, running=running, retired=retired
            )
        )


@click.command("versions", short_help="How many hosts run each version.")
@click.option("--app", required=True, shell_complete=complete_app, help="The application.")
@click.option(
    "--env", "environment", required=True, shell_complete=complete_environment, help="The environment."
)
@click.option("--at", type=TIME, help=AT_HELP)
@db_option
@json_option
def versions(app: str, environment: str, at: datetime | None, db_url: str | None, as_json: bool) -> None:
    """Each version of an app in an environment and how many hosts ran it, now or at a moment.

    \b
    Examples:
      deploy versions --app webapp --env production
      deploy versions --app webapp --env production --at 2026-07-01T09:00
      deploy versions --app webapp --env production --at yesterday --json
    """
    now = utcnow()
    with stores.open_store(db_url) as store:
        counts = store.versions_at(app, environment, at)
    if as_json:
        echo_json(versions_json(app, environment, at=at or now, versions=counts))
    else:
        _echo_lines(versions_lines(app, environment, at=at, tz=LOCAL, versions=counts))


@click.command("history", short_help="Past deployments, or one host's versions.")
@click.option("--app", required=True, shell_complete=complete_app, help="The application.")
@click.option(
    "--env",
    "environment",
    shell_complete=complete_environment,
    help="Only this environment (needed with --host).",
)
@click.option(
    "--host", shell_complete=complete_host, help="The versions this host ran, instead of the deployments."
)
@click.option("--limit", type=click.IntRange(min=1), default=20, show_default=True, help="At most this many.")
@db_option
@json_option
def history(
    app: str,
    environment: str | None,
    host: str | None,
    limit: int,
    db_url: str | None,
    as_json: bool,
) -> None:
    """Deployments newest first (who, when, what, how it ended), or the versions one host ran.

    \b
    Examples:
      deploy history --app webapp
      deploy history --app webapp --env production --limit 50
      deploy history --app webapp --env production --host web-fra-1
      deploy history --app webapp --json | jq -r '.deployments[0].id'
    """
    now = utcnow()
    if host is not None and environment is None:
        raise click.UsageError("--host needs --env: a host's versions are recorded per environment")
    with stores.open_store(db_url) as store:
        if host is None:
            views = store.history(app, environment, limit=limit)
            if as_json:
                echo_json(deployments_json(views))
            else:
                where = f" in {environment}" if environment else ""
                _echo_lines(
                    deployments_lines(views, now=now, tz=LOCAL, empty=f"no deployments of {app}{where}")
                )
            return
        assert environment is not None  # refused above otherwise
        known = {record.name: record for record in store.hosts(app, environment, include_retired=True)}
        if host not in known:
            raise NotFound(f"no host {host} is recorded for {app} in {environment}")
        intervals = store.host_history(app, environment, host)[:limit]
    retired_at = known[host].retired_at
    if as_json:
        echo_json(host_history_json(app, environment, host, intervals, retired_at=retired_at))
    else:
        _echo_lines(
            host_history_lines(app, environment, host, intervals, now=now, tz=LOCAL, retired_at=retired_at)
        )


# ---- requests to a running deployment ---------------------------------------------


@click.command("pause", short_help="Ask a deployment to start no new host.")
@click.argument("deployment_id", metavar="ID", shell_complete=complete_deployment_id)
@db_option
@json_option
def pause(deployment_id: str, db_url: str | None, as_json: bool) -> None:
    """Ask a running deployment to start no new host until it is resumed."""
    with stores.open_store(db_url) as store:
        _request(store, deployment_id, ControlAction.PAUSE, as_json=as_json)


@click.command("resume", short_help="Let a paused deployment go on.")
@click.argument("deployment_id", metavar="ID", shell_complete=complete_deployment_id)
@click.option(
    "--spec-changed-ok",
    is_flag=True,
    help="Take over even if the spec file is not the one the deployment started with.",
)
@db_option
@json_option
def resume(deployment_id: str, spec_changed_ok: bool, db_url: str | None, as_json: bool) -> None:
    """Let a paused deployment go on; take over one whose controller died.

    Taking over reads the spec again and refuses one that is not the file the deployment
    started with (by its sha256), unless --spec-changed-ok. A halted deployment whose
    automatic rollback (on_halt: rollback) did not run in full runs the rest of it.
    """
    now = utcnow()
    with stores.open_store(db_url) as store:
        finished = store.deployment(deployment_id)
        rollback = automatic_rollback(store, finished) if finished.is_finished else None
        if rollback is not None and rollback.untried:
            _resume_rollback(store, finished.id, as_json=as_json)
            return
        view = _unfinished(store, deployment_id)
        liveness = store.liveness(view, now)
        if not liveness.alive:
            take_over(store, view, liveness, as_json=as_json, spec_changed_ok=spec_changed_ok)
            return
        _request(store, deployment_id, ControlAction.RESUME, as_json=as_json, view=view)


@click.command("abort", short_help="Ask a deployment to stop for good.")
@click.argument("deployment_id", metavar="ID", shell_complete=complete_deployment_id)
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
@db_option
@json_option
def abort(deployment_id: str, yes: bool, db_url: str | None, as_json: bool) -> None:
    """Ask a running deployment to stop for good (asks first on a terminal, unless --yes).

    When its controller is dead, abort takes the deployment over, asks the hosts that
    were in flight how they ended (as resume does), and ends it aborted itself.
    """
    with stores.open_store(db_url) as store:
        view = _unfinished(store, deployment_id)
        if not yes and sys.stdin.isatty():
            waiting = view.counts.get(HostStatus.PENDING, 0) + view.counts.get(HostStatus.SKIPPED, 0)
            click.confirm(
                f"Abort {view.id}, the {view.kind} of {view.app} {view.version} to {view.environment} "
                f"({view.host_count - waiting} of {view.host_count} hosts started)?",
                abort=True,
                err=True,
            )
        liveness = store.liveness(view, utcnow())
        if not liveness.alive:
            _abort_orphan(store, view, liveness, as_json=as_json)
            return
        _request(store, deployment_id, ControlAction.ABORT, as_json=as_json, view=view)


def _abort_orphan(store: Store, view: DeploymentView, liveness: Liveness, *, as_json: bool) -> None:
    import asyncio

    from deployer.operations.resume import abort_orphan  # only here: it imports asyncssh

    if not as_json:
        click.echo(f"the controller of {view.id} is gone ({liveness.reason}); aborting from here", err=True)
    ended = asyncio.run(abort_orphan(view.id, store, requested_by=_operator(), why_dead=liveness.reason))
    if as_json:
        echo_json(deployment_json(ended, with_hosts=True, rollback=automatic_rollback(store, ended)))
    else:
        click.echo(escape_controls(f"{ended.id}: {ended.status}: {ended.reason or ''}"))


def _resume_rollback(store: Store, deployment_id: str, *, as_json: bool) -> None:
    from deployer.cli.deploy import run_and_report  # only here: it imports asyncssh
    from deployer.operations.resume import resume_automatic_rollback

    if not as_json:
        click.echo(f"{deployment_id} halted before its rollback ran in full; running the rest", err=True)
    run_and_report(
        store,
        lambda sink, stop: resume_automatic_rollback(deployment_id, store, sink, stop=stop),
        as_json=as_json,
    )


def take_over(
    store: Store,
    view: DeploymentView,
    liveness: Liveness,
    *,
    as_json: bool,
    spec_changed_ok: bool = False,
) -> None:
    """``deploy resume`` of a deployment whose controller is dead: run it on from here.

    :func:`deployer.operations.resume.resume_deployment` takes the deployment over, learns
    from the hosts that were in flight what became of them, and runs the rest.
    """
    from deployer.cli.deploy import run_and_report  # only here: it imports asyncssh
    from deployer.operations.resume import resume_deployment

    if not as_json:
        click.echo(f"the controller of {view.id} is gone ({liveness.reason}); taking it over", err=True)
    run_and_report(
        store,
        lambda sink, stop: resume_deployment(
            view.id, store, sink, stop=stop, spec_changed_ok=spec_changed_ok
        ),
        as_json=as_json,
        running=view.id,
    )


def _request(
    store: Store,
    deployment_id: str,
    action: ControlAction,
    *,
    as_json: bool,
    view: DeploymentView | None = None,
) -> None:
    """Record ``action`` for the deployment's controller to see, and say what was asked."""
    now = utcnow()
    view = view or _unfinished(store, deployment_id)
    state = store.request_control(deployment_id, action, requested_by=_operator(), now=now)
    if as_json:
        echo_json(control_json(state))
    else:
        _echo_lines(control_lines(state, now=now, tz=LOCAL))
    liveness = store.liveness(view, now)
    if not liveness.alive:
        click.echo(
            f"warning: the controller of {deployment_id} looks dead ({liveness.reason}); nothing acts on "
            f"this until `deploy resume {deployment_id}` takes it over",
            err=True,
        )


def _unfinished(store: Store, deployment_id: str) -> DeploymentView:
    """The deployment, if it can still take a request: NotFound or ControlError otherwise."""
    view = store.deployment(deployment_id)
    if view.is_finished:
        raise ControlError(f"deployment {deployment_id} has already finished ({view.status})")
    return view


def _operator() -> str:
    """Who asks, for the record: ``user@machine``."""
    try:
        user = getpass.getuser()
    except (OSError, KeyError):  # no login name in the environment and none in the password database
        user = "unknown"
    return f"{user}@{socket.gethostname()}"


commands = [status, hosts, versions, history, pause, resume, abort]
