"""Lab fleets (:mod:`deployer.lab`) for tests: real asyncssh hosts in one background process.

Started by the same code as ``deploy lab up``, each in its own temporary directory and
on a random free 127.X.Y.0/24 block (X from 100 to 199, port 2222), so labs of
concurrent test runs, the sshd fleet (127.0.10.0 and up) and a person's own
``./lab`` (127.0.20.1) never meet.

Fixtures:

* ``lab_factory`` (session): ``lab_factory(hosts=6, datacenters=3) -> LabFleet``;
  every lab it started is stopped when the session ends.
* ``lab_fleet_module`` (module): one lab of 6 hosts over 3 datacenters per test module.
* ``lab_fleet`` (function): that lab, healed after each test (every host fixed);
  files in the hosts' homes stay.

Outside pytest (benchmarks)::

    with start_lab(directory, hosts=100, datacenters=4, base_address=free_base_address(100)) as lab:
        ...  # lab.inventory_path, lab.hosts, lab.home(name), lab.break_host(name, "hang")
"""

from __future__ import annotations

import os
import random
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Protocol

import pytest

from deployer.core.errors import LabError
from deployer.lab import LabFleet, start_lab
from deployer.lab.plan import DEFAULT_PORT

_ATTEMPTS = 5


class LabFactory(Protocol):
    def __call__(self, hosts: int = 6, datacenters: int = 3) -> LabFleet: ...


def free_base_address(count: int, port: int = DEFAULT_PORT) -> str:
    """The first address of a random 127.X.Y.0/24 block whose first ``count`` addresses are free."""
    if count > 254:
        raise ValueError("a test lab fits in one /24 block: at most 254 hosts")
    for _ in range(100):
        prefix = f"127.{random.randint(100, 199)}.{random.randint(0, 255)}"
        if all(_is_free(f"{prefix}.{number}", port) for number in range(1, count + 1)):
            return f"{prefix}.1"
    raise LabError("no free 127.X.Y.0/24 block found for a test lab")


def _is_free(address: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((address, port))
        except OSError:
            return False
    return True


def start_test_lab(directory: Path, hosts: int, datacenters: int) -> LabFleet:
    """A lab on a free block; another block is tried if one is taken between probe and bind."""
    for attempt in range(_ATTEMPTS):
        try:
            return start_lab(
                directory,
                hosts,
                datacenters,
                base_address=free_base_address(hosts),
                stop_with=os.getpid(),  # a test run killed outright leaves no lab behind
            )
        except LabError as error:
            if "in use" not in str(error) or attempt == _ATTEMPTS - 1:
                raise
    raise AssertionError("unreachable")


@pytest.fixture(scope="session")
def lab_factory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabFactory]:
    started: list[LabFleet] = []

    def make(hosts: int = 6, datacenters: int = 3) -> LabFleet:
        lab = start_test_lab(tmp_path_factory.mktemp("lab"), hosts, datacenters)
        started.append(lab)
        return lab

    try:
        yield make
    finally:
        errors = []
        for lab in started:
            try:
                lab.stop()
            except LabError as error:
                errors.append(error)
        if errors:
            raise errors[0]


@pytest.fixture(scope="module")
def lab_fleet_module(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabFleet]:
    with start_test_lab(tmp_path_factory.mktemp("lab"), hosts=6, datacenters=3) as lab:
        yield lab


@pytest.fixture
def lab_fleet(lab_fleet_module: LabFleet) -> Iterator[LabFleet]:
    yield lab_fleet_module
    if lab_fleet_module.is_running():  # a test that stopped the lab has nothing to heal
        lab_fleet_module.fix_all()
