"""``deploy sync``, ``deploy promote`` and ``deploy restart``: keeping a changing fleet right."""

from __future__ import annotations

import asyncio
import json
import signal
import sys
from typing import TYPE_CHECKING

import click

from deployer.cli.completion import complete_environment, spec_argument
from deployer.cli.deploy import (
    confirm_and_run,
    env_option,
    limit_option,
    nothing_to_do,
)
from deployer.cli.options import db_option, echo_json, json_option
from deployer.core.clock import utcnow
from deployer.core.decide import StopCause
from deployer.core.quantities import parse_duration
from deployer.core.results import DeploymentKind
from deployer.core.rollout import GracefulStop
from deployer.core.wording import count_of
from deployer.operations.options import PushOptions

if TYPE_CHECKING:
    from deployer.operations.plan import Prepared
    from deployer.operations.sync import Round, Unchanged
    from deployer.store import Store

# Imported inside the commands, so that `deploy sync --help` loads neither asyncssh nor
# SQLAlchemy; a run imports them up front all the same (deployer.cli.load_command).
RUNTIME_IMPORTS = (
    "deployer.operations.sync",
    "deployer.operations.reconcile",
    "deployer.store.repository",
    "deployer.views.progress",
)

yes_option = click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")


def _unchanged(result: Unchanged, as_json: bool, retired: list[str]) -> None:
    """Say there is nothing to do (exit 0)."""
    if as_json:
        echo_json(
            {
                "app": result.app,
                "environment": result.environment,
                "version": result.version,
                "kind": result.kind.value,
                "previous_version": None,
                "failure_budget": 0,
                "waves": [],
                "skipped": [],
                "status": "unchanged",
                "id": None,
                "reason": result.reason,
                "retired": retired,
            }
        )
        return
    click.echo(f"nothing to do: {result.reason}")
    if retired:
        click.echo(f"retired (gone from the inventory): {', '.join(retired)}")


def _run(prepared: Prepared, store: Store, as_json: bool, yes: bool, question: str) -> None:
    """Warn of a missing kept artifact, then confirm and run as ``deploy push`` does."""
    from deployer.operations.sync import missing_artifact

    warning = missing_artifact(prepared)
    if warning:
        click.echo(f"warning: {warning}", err=True)
    confirm_and_run(prepared, store, as_json=as_json, yes=yes, question=question)


@click.command()
@spec_argument
@env_option
@limit_option
@click.option("--watch", is_flag=True, help="Keep syncing as the inventory changes, until Ctrl-C or SIGTERM.")
@click.option(
    "--interval",
    default="30s",
    show_default=True,
    metavar="DURATION",
    help="With --watch: the wait between rounds (30s, 5m).",
)
@click.option("--rounds", "max_rounds", type=click.IntRange(min=1), hidden=True)  # bounds --watch in tests
@yes_option
@json_option
@db_option
def sync(
    spec: str,
    environment: str | None,
    limit: str | None,
    watch: bool,
    interval: str,
    max_rounds: int | None,
    yes: bool,
    as_json: bool,
    db_url: str | None,
) -> None:
    """Bring the hosts of SPEC's fleet that are behind onto the latest good version.

    Behind: a host runs no version, or any version other than that of the
    environment's latest successful deployment. With --watch, do that every
    interval as the inventory changes, never asking for confirmation.
    """
    from deployer.operations.plan import retire_departed
    from deployer.operations.reconcile import settle_unknown_hosts
    from deployer.operations.sync import Unchanged, load, prepare_sync
    from deployer.store import open_store

    options = PushOptions(spec, None, environment, limit, kind=DeploymentKind.SYNC)
    if watch:
        try:
            seconds = parse_duration(interval)
        except ValueError as error:
            raise click.BadParameter(str(error), param_hint="--interval") from None
        if seconds <= 0:
            raise click.BadParameter("must be more than 0", param_hint="--interval")
        with open_store(db_url) as store:
            _watch(options, store, seconds, max_rounds, as_json)
        return
    with open_store(db_url) as store:
        loaded = load(options)
        settle_unknown_hosts(store, loaded.spec.app, loaded.spec.environment)
        prepared = prepare_sync(options, store, loaded)
        if isinstance(prepared, Unchanged):
            spec_ = loaded.spec
            retired = retire_departed(store, spec_.app, spec_.environment, loaded.fleet, utcnow())
            _unchanged(prepared, as_json, retired)
            return
        question = f"sync {count_of(prepared.plan.host_count, 'host')} to {prepared.spec.version}?"
        _run(prepared, store, as_json, yes, question)


def _watch(
    options: PushOptions, store: Store, interval: float, max_rounds: int | None, as_json: bool
) -> None:
    """Run the rounds; one line each on stdout, the deployments' progress on stderr."""
    from deployer.operations.sync import round_json, round_line, watch_sync
    from deployer.views.progress import PlainProgress

    def report(entry: Round) -> None:
        click.echo(json.dumps(round_json(entry)) if as_json else round_line(entry))
        sys.stdout.flush()

    async def main() -> None:
        loop = asyncio.get_running_loop()
        stop = GracefulStop()
        signals = (signal.SIGINT, signal.SIGTERM)

        def on_signal(name: str) -> None:
            # The first signal stops gently; the handlers go, so a second one stops at once.
            for number in signals:
                loop.remove_signal_handler(number)
            click.echo(f"{name}: stopping; hosts in flight finish, no new host starts", err=True)
            stop.request(StopCause(name))

        for number in signals:
            loop.add_signal_handler(number, on_signal, number.name)
        try:
            await watch_sync(
                options,
                store,
                interval=interval,
                stop=stop,
                report=report,
                sink=PlainProgress(),
                max_rounds=max_rounds,
            )
        finally:
            for number in signals:
                loop.remove_signal_handler(number)

    asyncio.run(main())


@click.command()
@spec_argument
@click.option(
    "--from",
    "source",
    required=True,
    metavar="E",
    shell_complete=complete_environment,
    help="The environment the version proved itself in.",
)
@click.option(
    "--to",
    "environment",
    required=True,
    metavar="E",
    shell_complete=complete_environment,
    help="The environment to deploy it to.",
)
@limit_option
@yes_option
@json_option
@db_option
def promote(
    spec: str,
    source: str,
    environment: str,
    limit: str | None,
    yes: bool,
    as_json: bool,
    db_url: str | None,
) -> None:
    """Deploy to --to the version that last succeeded in full in --from.

    In full: --from's latest deployment (restarts aside) succeeded with no failed
    host. Anything else is refused, saying why (exit 1).
    """
    from deployer.operations.sync import prepare_promote
    from deployer.store import open_store

    options = PushOptions(spec, None, environment, limit)
    with open_store(db_url) as store:
        prepared = prepare_promote(options, store, source)
        if not prepared.plan.waves:
            nothing_to_do(prepared, as_json)
            return
        question = (
            f"promote {prepared.spec.version} from {source} to {count_of(prepared.plan.host_count, 'host')} "
            f"of {prepared.spec.environment}?"
        )
        _run(prepared, store, as_json, yes, question)


@click.command()
@spec_argument
@env_option
@limit_option
@yes_option
@json_option
@db_option
def restart(
    spec: str,
    environment: str | None,
    limit: str | None,
    yes: bool,
    as_json: bool,
    db_url: str | None,
) -> None:
    """Run the stop, start and validate hooks on every host, wave by wave; install nothing."""
    from deployer.operations.sync import Unchanged, prepare_restart
    from deployer.store import open_store

    options = PushOptions(spec, None, environment, limit)
    with open_store(db_url) as store:
        prepared = prepare_restart(options, store)
        if isinstance(prepared, Unchanged):
            _unchanged(prepared, as_json, [])
            return
        question = f"restart {prepared.spec.app} on {count_of(prepared.plan.host_count, 'host')}?"
        _run(prepared, store, as_json, yes, question)


commands = [sync, promote, restart]
