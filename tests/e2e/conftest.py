"""Fleets for the end-to-end tests: a 12-host lab and the 12-host OpenSSH fleet, once per module."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.support import App, E2EFleet, make_app
from tests.plugins.stores import pg_schema_url

# Each end-to-end test runs on the lab with SQLite and on OpenSSH with PostgreSQL: both
# fleets and both stores are covered without running every test four times.
COMBOS = [
    pytest.param(("lab", "sqlite"), id="lab-sqlite"),
    pytest.param(("openssh", "postgresql"), id="openssh-postgresql", marks=pytest.mark.openssh),
]


@pytest.fixture(scope="module")
def lab12(lab_factory):  # type: ignore[no-untyped-def]
    return lab_factory(hosts=12, datacenters=3)


def fleet_of(request: pytest.FixtureRequest, kind: str) -> E2EFleet:
    if kind == "lab":
        lab = request.getfixturevalue("lab12")
        return E2EFleet("lab", tuple(lab.hosts), lab.inventory_path, lab.home)
    sshd = request.getfixturevalue("sshd_fleet")
    return E2EFleet("openssh", tuple(sshd.hosts), sshd.inventory_path, sshd.host_home)


def store_of(request: pytest.FixtureRequest, kind: str, tmp_path: Path) -> str:
    if kind == "sqlite":
        return f"sqlite:///{tmp_path / 'state.db'}"
    return pg_schema_url(request.getfixturevalue("pg_schema"))


@pytest.fixture(params=COMBOS)
def app(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[App]:
    fleet_kind, store_kind = request.param
    fleet = fleet_of(request, fleet_kind)
    made = make_app(tmp_path, fleet, store_of(request, store_kind, tmp_path), f"app{secrets.token_hex(3)}")
    yield made
    made.clear_faults()
