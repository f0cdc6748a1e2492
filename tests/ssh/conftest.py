"""The ``fleet`` fixture: every end-to-end runner test runs on the lab and on OpenSSH.

``fleet`` is parametrized over the lab (asyncssh hosts, a per-host ``~``) and the
OpenSSH fleet (real sshd, a per-host ``/srv``); see :class:`tests.ssh.support.AppFleet`.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.ssh.support import FLEETS, AppFleet, kill_marked


@pytest.fixture(params=FLEETS)
def fleet(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[AppFleet]:
    if request.param == "lab":
        lab = request.getfixturevalue("lab_fleet")
        made = AppFleet(
            kind="lab",
            hosts=lab.hosts,
            ssh=lab.ssh_options,
            remote_base="~/apps",
            local_base=lambda name: lab.home(name) / "apps",
            work=tmp_path,
            hang=lambda name: lab.break_host(name, "hang"),
        )
    else:
        sshd = request.getfixturevalue("sshd_fleet")
        made = AppFleet(
            kind="openssh",
            hosts=tuple(sshd.hosts),
            ssh=sshd.ssh_options,
            remote_base="/srv/apps",
            local_base=lambda name: sshd.host_root(name) / "apps",
            work=tmp_path,
            hang=sshd.freeze,
        )
    try:
        yield made
    finally:
        for marker in made.markers:
            kill_marked(marker)
