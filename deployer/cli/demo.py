"""``deploy demo``: the whole story on a lab fleet, with the commands an operator would type.

The demo spec and its app ship inside the package (deployer/demo/), so it runs
wherever deployer is installed: they are copied into a directory of their own
(``./deploy-demo`` unless ``--dir`` says otherwise). It starts a lab fleet where the
spec's ``fleet:`` points, then runs real ``deploy`` commands against it, printing
each before it runs: pushes 1.0 and 1.1, a 1.2 whose health check fails in one
datacenter so the push halts, and a rollback that updates the failed hosts first.
The lab is left running to explore.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
from importlib.resources import as_file, files
from pathlib import Path

import click
import yaml

from deployer.core.errors import DeployerError
from deployer.lab import start_lab, stop_lab


def _step(title: str, args: list[str], env: dict[str, str], expect: tuple[int, ...] = (0,)) -> None:
    click.secho(f"\n== {title}", bold=True)
    click.secho("$ deploy " + " ".join(shlex.quote(a) for a in args), fg="cyan")
    done = subprocess.run([sys.executable, "-m", "deployer", *args], env=env, check=False)
    if done.returncode not in expect:
        raise DeployerError(f"the demo stopped: 'deploy {' '.join(args)}' exited {done.returncode}")


def _lab_dir(spec_path: Path) -> Path:
    """Where the demo spec's ``fleet:`` expects the lab's inventory: the lab's directory.

    Read from the YAML as written, since the spec cannot be loaded before the lab
    exists (its fleet file is missing until then).
    """
    try:
        data = yaml.safe_load(spec_path.read_text())
    except (OSError, yaml.YAMLError) as error:
        raise DeployerError(f"cannot read the demo spec {spec_path}: {error}") from None
    fleet = data.get("fleet") if isinstance(data, dict) else None
    if not isinstance(fleet, str):
        raise DeployerError(
            f"{spec_path}: the demo needs fleet: to name the file the lab writes (inventory.yaml)"
        )
    return (spec_path.parent / fleet).parent.resolve()


DEMO_SPEC = "demo.yaml"


def unpack_demo(directory: Path) -> Path:
    """Copy the packaged demo (its spec and app/) into ``directory``; the spec's path.

    Files already there are replaced, so a demo run after an upgrade runs the new one;
    anything else in the directory (the lab, its state) is left alone.
    """
    with as_file(files("deployer") / "demo") as source:
        try:
            directory.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source / DEMO_SPEC, directory / DEMO_SPEC)
            shutil.copytree(source / "app", directory / "app", dirs_exist_ok=True)
        except OSError as error:
            raise DeployerError(
                f"cannot write the demo into {directory}: {error.strerror or error}"
            ) from None
    return directory / DEMO_SPEC


@click.command()
@click.option(
    "--dir",
    "directory",
    default="deploy-demo",
    show_default=True,
    type=click.Path(file_okay=False),
    help="Where to put the demo's spec, its app and the lab fleet.",
)
@click.option(
    "--spec",
    "own_spec",
    default=None,
    type=click.Path(dir_okay=False),
    help="Run this spec instead of the packaged one; its fleet: names the lab's inventory.",
)
@click.option("--hosts", default=12, show_default=True, type=click.IntRange(3, 200), help="Lab hosts.")
@click.option("--datacenters", default=3, show_default=True, type=click.IntRange(1, 20), help="Datacenters.")
@click.option(
    "--address",
    default="127.0.20.1",
    show_default=True,
    metavar="IP",
    help="The first lab host's loopback address; the others follow it.",
)
def demo(directory: str, own_spec: str | None, hosts: int, datacenters: int, address: str) -> None:
    """Start a lab fleet and show pushes, a halt and a rollback on it."""
    spec_path = own_spec if own_spec is not None else str(unpack_demo(Path(directory)))
    if own_spec is None:
        click.echo(f"the demo's spec and app are in {directory}/")
    lab_dir = _lab_dir(Path(spec_path))
    if stop_lab(lab_dir) is not None:
        click.echo(f"stopped the lab that was running in {lab_dir}")
    db_file = lab_dir / "state.db"
    for stale in (db_file, Path(f"{db_file}-wal"), Path(f"{db_file}-shm")):
        stale.unlink(missing_ok=True)
    lab = start_lab(lab_dir, hosts=hosts, datacenters=datacenters, base_address=address)
    from deployer.operations.reading import read_spec  # here: the demo's --help needs no asyncssh

    # only now: its fleet is the inventory the lab just wrote
    spec = read_spec(spec_path, None, None)
    click.secho(
        f"lab fleet: {len(lab.hosts)} hosts in {datacenters} datacenters, inventory {lab.inventory_path}",
        bold=True,
    )
    db_url = f"sqlite:///{db_file}"
    env = {**os.environ, "DEPLOYER_DB": db_url}
    app, environment = spec.app, spec.environment
    _step("a first release", ["push", spec_path, "--version", "1.0", "--yes"], env)
    _step(
        "the next release, wave by wave across the datacenters",
        ["push", spec_path, "--version", "1.1", "--yes"],
        env,
    )
    _step("what runs where now?", ["versions", "--app", app, "--env", environment], env)
    _step(
        "1.2 fails its health check in dc2: the push halts by itself",
        ["push", spec_path, "--version", "1.2", "--yes"],
        env,
        expect=(1,),
    )
    _step(
        "the fleet after the halt: untouched hosts kept 1.1",
        ["versions", "--app", app, "--env", environment],
        env,
    )
    _step("which hosts run 1.2?", ["hosts", "--app", app, "--env", environment, "--version", "1.2"], env)
    _step(
        "roll back to 1.1: the failed hosts go first, from the kept release (no upload)",
        ["rollback", spec_path, "--yes"],
        env,
    )
    _step("all back on 1.1", ["versions", "--app", app, "--env", environment], env)
    _step("the history", ["history", "--app", app, "--env", environment], env)
    click.secho("\nThe lab fleet is still running. Explore it:", bold=True)
    click.echo(f"  export DEPLOYER_DB={shlex.quote(db_url)}")
    click.echo(f"  deploy status; deploy history --app {app} --env {environment} --host {lab.hosts[0].name}")
    click.echo("  deploy watch       # the last deployment in the terminal UI")
    click.echo(f"Stop it with: deploy lab down --dir {shlex.quote(str(lab_dir))}")


commands = [demo]
