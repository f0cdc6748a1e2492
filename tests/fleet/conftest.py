"""Fleets that change under a test: our own inventory file over a lab (or OpenSSH fleet) that has more hosts.

A lab of 18 hosts (lab01-06 in dc1, lab07-12 in dc2, lab13-18 in dc3) runs once per
module; each test's inventory lists the first four hosts of each datacenter (12), and
the test adds the other six ("extras") or takes hosts away by rewriting it. The
OpenSSH fleet has 12 hosts: 9 listed, 3 extras.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest

from deployer.lab import LabFleet
from tests.e2e.conftest import store_of
from tests.fleet.support import ChangingFleet


@pytest.fixture(scope="module")
def lab18(lab_factory) -> LabFleet:  # type: ignore[no-untyped-def]
    return lab_factory(hosts=18, datacenters=3)


@pytest.fixture(autouse=True)
def _own_artifact_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Kept artifacts in the test's own cache (the CLI runs with this environment), to delete at will."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))


def lab_changing(request: pytest.FixtureRequest, tmp_path: Path) -> ChangingFleet:
    lab: LabFleet = request.getfixturevalue("lab18")
    return ChangingFleet.over(
        "lab", lab.hosts, lab.inventory_path, lab.home, tmp_path / "inventory.yaml", listed_per_dc=4
    )


def openssh_changing(request: pytest.FixtureRequest, tmp_path: Path) -> ChangingFleet:
    sshd = request.getfixturevalue("sshd_fleet")
    return ChangingFleet.over(
        "openssh",
        sshd.hosts,
        sshd.inventory_path,
        sshd.host_home,
        tmp_path / "inventory.yaml",
        listed_per_dc=3,
    )


@pytest.fixture
def lab_app(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ChangingFleet]:
    """A fresh app on the lab, its inventory listing 12 of the 18 hosts; SQLite store."""
    changing = lab_changing(request, tmp_path)
    changing.make_app(tmp_path, store_of(request, "sqlite", tmp_path), f"app{secrets.token_hex(3)}")
    yield changing
    changing.app.clear_faults()


@pytest.fixture(
    params=[
        pytest.param(("lab", "sqlite"), id="lab-sqlite"),
        pytest.param(("openssh", "postgresql"), id="openssh-postgresql", marks=pytest.mark.openssh),
    ]
)
def any_app(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ChangingFleet]:
    """The same on the lab with SQLite, and on the OpenSSH fleet with PostgreSQL."""
    fleet_kind, store_kind = request.param
    make = lab_changing if fleet_kind == "lab" else openssh_changing
    changing = make(request, tmp_path)
    changing.make_app(tmp_path, store_of(request, store_kind, tmp_path), f"app{secrets.token_hex(3)}")
    yield changing
    changing.app.clear_faults()
