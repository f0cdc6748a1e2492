"""A fleet whose inventory a test rewrites while the deployer reads it."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from deployer.core.targets import Host
from deployer.hosts.kept_artifacts import versions_dir
from deployer.store import DeploymentView, open_store
from tests.e2e.support import App, E2EFleet, make_app


@dataclass
class ChangingFleet:
    """Every host of a running fleet, and an inventory of ours that lists some of them."""

    all_hosts: tuple[Host, ...]
    listed: list[str]  # host names the inventory lists now, in fleet order
    extras: tuple[str, ...]  # hosts of the fleet the inventory did not list at first
    source: dict[str, Any]  # the fleet's own inventory, parsed
    path: Path
    e2e: E2EFleet
    _app: App | None = field(default=None)

    @classmethod
    def over(
        cls,
        kind: str,
        hosts: Sequence[Host],
        inventory: Path,
        home: Callable[[str], Path],
        path: Path,
        *,
        listed_per_dc: int,
    ) -> ChangingFleet:
        by_dc: dict[str, list[str]] = {}
        for host in hosts:
            by_dc.setdefault(host.datacenter, []).append(host.name)
        first = {name for names in by_dc.values() for name in names[:listed_per_dc]}
        listed = [h.name for h in hosts if h.name in first]
        extras = tuple(h.name for h in hosts if h.name not in first)
        source = yaml.safe_load(inventory.read_text())
        fleet = E2EFleet(kind, tuple(h for h in hosts if h.name in first), path, home)
        changing = cls(tuple(hosts), listed, extras, source, path, fleet)
        changing.write(listed)
        return changing

    def make_app(self, work: Path, db_url: str, name: str, **options: str) -> App:
        self._app = make_app(work, self.e2e, db_url, name, **options)
        return self._app

    @property
    def app(self) -> App:
        assert self._app is not None, "make_app first"
        return self._app

    def host(self, name: str) -> Host:
        return next(h for h in self.all_hosts if h.name == name)

    def write(self, names: Iterable[str]) -> None:
        """Make the inventory list exactly ``names`` (in fleet order), atomically."""
        wanted = set(names)
        self.listed = [h.name for h in self.all_hosts if h.name in wanted]
        entries = [entry for entry in self.source["hosts"] if entry["name"] in wanted]
        self._replace(yaml.safe_dump({**self.source, "hosts": entries}, sort_keys=False))
        self.e2e.hosts = tuple(h for h in self.all_hosts if h.name in wanted)

    def write_other(self, path: Path, names: Iterable[str]) -> Path:
        """Another inventory, at ``path``, listing ``names`` of this fleet."""
        wanted = set(names)
        entries = [entry for entry in self.source["hosts"] if entry["name"] in wanted]
        path.write_text(yaml.safe_dump({**self.source, "hosts": entries}, sort_keys=False))
        return path

    def add(self, *names: str) -> None:
        self.write([*self.listed, *names])

    def remove(self, *names: str) -> None:
        self.write([n for n in self.listed if n not in names])

    def break_inventory(self) -> None:
        """Leave the inventory unreadable (bad YAML) until the next :meth:`write`."""
        self._replace("hosts: [ {name: broken\n")

    def _replace(self, text: str) -> None:
        temporary = self.path.with_name(f".{self.path.name}.tmp")
        temporary.write_text(text)
        os.replace(temporary, self.path)


def deployment(app: App, deployment_id: str) -> DeploymentView:
    with open_store(app.db_url) as store:
        return store.deployment(deployment_id)


def steps_of(app: App, host: str, deployment_id: str | None = None) -> list[str]:
    """The hooks that ran on ``host`` (in that deployment, if given), in order."""
    return [line[0] for line in app.hook_lines(host) if deployment_id is None or line[2] == deployment_id]


def forget_kept_artifacts(app: App) -> None:
    for kept in (versions_dir() / app.name).glob("*.tar.gz"):
        kept.unlink()


def json_lines(path: Path) -> list[dict[str, Any]]:
    """The JSON objects among a log's lines (the rest is progress text)."""
    found = []
    for line in path.read_text().splitlines():
        if line.startswith("{"):
            found.append(json.loads(line))
    return found
