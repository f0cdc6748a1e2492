"""Hostile artifacts and targets through the real CLI: refused before any host is touched."""

from __future__ import annotations

import os
import tarfile
from pathlib import Path

import pytest

from tests.e2e.support import App, E2EFleet, make_app


@pytest.fixture(scope="module")
def lab3(lab_factory):  # type: ignore[no-untyped-def]
    return lab_factory(hosts=3, datacenters=3)


@pytest.fixture
def app(lab3, tmp_path: Path) -> App:  # type: ignore[no-untyped-def]
    fleet = E2EFleet("lab", tuple(lab3.hosts), lab3.inventory_path, lab3.home)
    return make_app(
        tmp_path, fleet, f"sqlite:///{tmp_path / 'state.db'}", f"app{os.getpid()}{tmp_path.name[-3:]}"
    )


def test_a_tarball_with_a_fifo_is_refused_by_member_before_any_host(app: App, tmp_path: Path) -> None:
    given = tmp_path / "release.tar.gz"
    with tarfile.open(given, "w:gz") as archive:
        archive.add(tmp_path / "app", arcname=".")
        fifo = tarfile.TarInfo("./run/queue")
        fifo.type = tarfile.FIFOTYPE
        archive.addfile(fifo)
    app.spec.write_text(app.spec.read_text().replace("artifact: app/", f"artifact: {given}"))
    done = app.deploy("push", str(app.spec), "--yes", check=2)
    assert "member './run/queue' is refused" in done.stderr
    assert "Traceback" not in done.stderr
    assert all(not app.target(host.name).exists() for host in app.fleet.hosts)


@pytest.mark.parametrize("target", ["/./", "~/.", "~/./", "/srv//x", "/etc"])
def test_a_target_that_means_root_or_home_is_refused_with_file_line_field(app: App, target: str) -> None:
    text = app.spec.read_text()
    app.spec.write_text(text.replace(f"target: ~/apps/{app.name}", f'target: "{target}"'))
    line = text.splitlines().index(f"target: ~/apps/{app.name}") + 1
    done = app.deploy("push", str(app.spec), "--yes", check=2)
    assert f"{app.spec}:{line}: target: " in done.stderr
    assert "Traceback" not in done.stderr
    for host in app.fleet.hosts:
        assert not (app.fleet.home(host.name) / ".deploy").exists()
