"""``deploy check``: a preflight of every selected host, changing nothing
(see :mod:`deployer.hosts.preflight`)."""

from __future__ import annotations

import asyncio
import sys

import click

from deployer.cli.deploy import env_option, limit_option, version_option
from deployer.cli.options import echo_json, json_option
from deployer.core.exitcodes import ExitCode
from deployer.core.terminal_text import escape_controls

# Imported inside the command, so that `deploy check --help` loads neither asyncssh nor
# SQLAlchemy; a run imports them up front all the same (deployer.cli.load_command).
RUNTIME_IMPORTS = ("deployer.operations.push", "deployer.operations.reading", "deployer.hosts.preflight")


@click.command("check")
@click.argument("spec", type=click.Path(dir_okay=False))
@version_option
@env_option
@limit_option
@json_option
def check(spec: str, version: str | None, environment: str | None, limit: str | None, as_json: bool) -> None:
    """Check that SPEC could be deployed to each host, changing nothing.

    Connects to every selected host and checks its host key and our login, that the
    target directory exists or can be made and is writable, that it has room for the
    artifact, and that the host has the commands the driver runs. Exits 1 if any
    host fails. Records no deployment.

    \b
    Examples:
      deploy check specs/webapp.yaml
      deploy check specs/webapp.yaml --env staging --limit dc:fra
      deploy check specs/webapp.yaml --json | jq -r '.hosts[] | select(.status != "ok") | .name'
    """
    from deployer.hosts.artifact import prepare_artifact
    from deployer.hosts.preflight import checks_json, checks_text, needed_bytes
    from deployer.operations.plan import select_hosts
    from deployer.operations.push import preflight
    from deployer.operations.reading import read_spec
    from deployer.spec.load import load_fleet

    loaded = read_spec(spec, version, environment)
    fleet = load_fleet(loaded)
    hosts = select_hosts(fleet, limit)
    artifact = prepare_artifact(loaded.artifact)
    checks = asyncio.run(preflight(loaded, fleet, hosts, artifact))
    if as_json:
        echo_json(
            checks_json(checks, app=loaded.app, environment=loaded.environment, need=needed_bytes(artifact))
        )
    else:
        click.echo(escape_controls(checks_text(checks)))
    sys.exit(ExitCode.SUCCEEDED if all(check.is_ok for check in checks) else ExitCode.FAILED)


commands = [check]
