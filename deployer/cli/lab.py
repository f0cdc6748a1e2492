"""``deploy lab``: a fleet of real SSH hosts on this machine, for the demo and for tests."""

from __future__ import annotations

import json
import shlex

import click

from deployer.lab.control import (
    START_TIMEOUT,
    LabStatus,
    break_hosts,
    lab_status,
    start_lab,
    stop_lab,
)
from deployer.lab.paths import LabPaths
from deployer.lab.plan import (
    DEFAULT_BASE_ADDRESS,
    DEFAULT_DATACENTER_COUNT,
    DEFAULT_HOST_COUNT,
    DEFAULT_PORT,
    FAULT_DESCRIPTIONS,
    FaultMode,
)

_DIR_OPTION = click.option(
    "--dir",
    "directory",
    default="lab",
    show_default=True,
    type=click.Path(file_okay=False),
    help="The lab's directory: keys, inventory, host homes, pid and log.",
)
_BREAK_MODES = [mode.value for mode in FaultMode]


@click.group()
def lab() -> None:
    """Real SSH servers on loopback addresses, to deploy to without any machines."""


@lab.command()
@click.option("--hosts", "host_count", default=DEFAULT_HOST_COUNT, show_default=True, help="How many hosts.")
@click.option(
    "--datacenters",
    "datacenter_count",
    type=int,
    default=None,
    help=f"Datacenters dc1..dcN, each taking a contiguous block of hosts "
    f"[default: {DEFAULT_DATACENTER_COUNT}, or one per host for fewer hosts]",
)
@click.option("--port", default=DEFAULT_PORT, show_default=True, help="The port every host listens on.")
@click.option(
    "--base-address",
    default=DEFAULT_BASE_ADDRESS,
    show_default=True,
    help="The first host's address; the others follow it in 127.0.0.0/8.",
)
@click.option(
    "--timeout",
    default=START_TIMEOUT,
    show_default=True,
    help="Seconds to wait until every host accepts connections.",
)
@_DIR_OPTION
def up(
    host_count: int,
    datacenter_count: int | None,
    port: int,
    base_address: str,
    timeout: float,
    directory: str,
) -> None:
    """Start the lab's hosts in one background process."""
    fleet = start_lab(
        directory,
        host_count,
        datacenter_count,
        port=port,
        base_address=base_address,
        timeout=timeout,
    )
    first, last = fleet.hosts[0], fleet.hosts[-1]
    datacenters = len({host.datacenter for host in fleet.hosts})
    dir_arg = shlex.quote(str(fleet.dir))
    try_command = " ".join(
        [
            "ssh",
            f"-i {shlex.quote(str(fleet.client_key_path))}",
            f"-o UserKnownHostsFile={shlex.quote(str(fleet.known_hosts_path))}",
            "-o IdentitiesOnly=yes",
            f"-p {first.port}",
            f"{fleet.user}@{first.address}",
            shlex.quote("echo $DEPLOY_LAB_HOST"),
        ]
    )
    click.echo(
        f"lab up: {_count(len(fleet.hosts), 'host')} in {_count(datacenters, 'datacenter')}, "
        f"{first.address}-{last.address} port {first.port}, pid {fleet.pid}"
    )
    click.echo(f"inventory: {fleet.inventory_path}")
    click.echo(f"try:       {try_command}")
    click.echo(f"break:     deploy lab break {first.name} --mode down|hang|fail-hook --dir {dir_arg}")
    click.echo(f"stop:      deploy lab down --dir {dir_arg}")


@lab.command()
@click.option("--json", "as_json", is_flag=True, help="Print the status as JSON.")
@_DIR_OPTION
def status(as_json: bool, directory: str) -> None:
    """Show the lab's hosts, addresses, states and pid."""
    current = lab_status(directory)
    if as_json:
        click.echo(json.dumps(current.to_json(), indent=2))
    else:
        click.echo(_status_table(current))


@lab.command()
@_DIR_OPTION
def down(directory: str) -> None:
    """Stop the lab that `deploy lab up` started in this directory."""
    pid = stop_lab(directory)
    where = LabPaths.of(directory).dir
    if pid is None:
        click.echo(f"no lab running in {where}; nothing to stop")
    else:
        click.echo(f"lab in {where} stopped (pid {pid})")


@lab.command("break")
@click.argument("host_names", metavar="HOST...", nargs=-1, required=True)
@click.option(
    "--mode",
    type=click.Choice(_BREAK_MODES),
    required=True,
    help="down: refuses connections, cuts open ones; hang: connects but never answers, open "
    "sessions freeze; fail-hook: ~/.lab/unhealthy exists and new sessions get "
    "DEPLOY_LAB_UNHEALTHY=1, so a health check that looks for either (the demo's validate "
    "hook) fails; ok: fixed.",
)
@_DIR_OPTION
def break_(host_names: tuple[str, ...], mode: str, directory: str) -> None:
    """Break lab hosts in a way a real fleet breaks."""
    current = break_hosts(directory, host_names, mode)
    _echo_modes(current, host_names)


@lab.command()
@click.argument("host_names", metavar="HOST...", nargs=-1, required=True)
@_DIR_OPTION
def fix(host_names: tuple[str, ...], directory: str) -> None:
    """Undo whatever `deploy lab break` did to these hosts."""
    current = break_hosts(directory, host_names, FaultMode.OK)
    _echo_modes(current, host_names)


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}" if number == 1 else f"{number} {noun}s"


def _echo_modes(current: LabStatus, names: tuple[str, ...]) -> None:
    for name in names:
        click.echo(f"{name}: {FAULT_DESCRIPTIONS[current.mode_of(name)]}")


def _status_table(current: LabStatus) -> str:
    datacenters = len({entry.host.datacenter for entry in current.hosts})
    header = (
        f"lab in {current.dir}: running, pid {current.pid}, "
        f"{_count(len(current.hosts), 'host')} in {_count(datacenters, 'datacenter')}, "
        f"{_count(current.running_commands, 'command')} running\n"
        f"inventory: {current.inventory}\n"
    )
    rows = [("HOST", "ADDRESS", "PORT", "DC", "STATE")] + [
        (
            entry.host.name,
            entry.host.address,
            str(entry.host.port),
            entry.host.datacenter,
            FAULT_DESCRIPTIONS[entry.mode],
        )
        for entry in current.hosts
    ]
    widths = [max(len(row[column]) for row in rows) for column in range(4)]
    lines = [
        "  ".join(cell.ljust(width) for cell, width in zip(row[:4], widths, strict=True)) + "  " + row[4]
        for row in rows
    ]
    return header + "\n".join(lines)


commands = [lab]
