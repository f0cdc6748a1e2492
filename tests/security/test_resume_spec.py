"""`deploy resume` of a dead controller's deployment reads the spec again: it must be the
file the deployment started with (its sha256, recorded then), unless --spec-changed-ok."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy

from deployer.core.results import DeploymentStatus, HostStatus
from deployer.store import DeploymentView, open_store
from tests.e2e.support import App, E2EFleet, kill_push_once, make_app, running


@pytest.fixture(scope="module")
def lab3(lab_factory):  # type: ignore[no-untyped-def]
    return lab_factory(hosts=3, datacenters=3)


@pytest.fixture
def app(lab3, tmp_path: Path) -> Iterator[App]:  # type: ignore[no-untyped-def]
    fleet = E2EFleet("lab", tuple(lab3.hosts), lab3.inventory_path, lab3.home)
    made = make_app(
        tmp_path, fleet, f"sqlite:///{tmp_path / 'state.db'}", f"r{tmp_path.name[-6:]}", batch="1"
    )
    yield made
    made.clear_faults()


def killed_mid_flight(app: App) -> DeploymentView:
    """A push whose controller is SIGKILLed while its first host is in its slow start hook."""
    return kill_push_once(app, lambda view: any(h.status is HostStatus.RUNNING for h in view.hosts))


def test_an_edited_spec_is_refused_until_told_it_is_ok(app: App) -> None:
    view = killed_mid_flight(app)
    app.spec.write_text(app.spec.read_text().replace("scripts/hook.sh validate", "scripts/hook.sh validate2"))
    refused = app.deploy("resume", view.id)
    assert refused.returncode == 2, refused.stderr
    assert "is not the one deployment" in refused.stderr and "--spec-changed-ok" in refused.stderr
    assert "Traceback" not in refused.stderr
    still = running(app)
    assert still is not None and still.pid == view.pid  # not taken over
    resumed = app.deploy_json("resume", view.id, "--spec-changed-ok", check=0)
    assert resumed["status"] == "succeeded"


def test_a_spec_path_rewritten_in_the_store_is_refused(app: App, tmp_path: Path) -> None:
    view = killed_mid_flight(app)
    other = tmp_path / "other" / "spec.yaml"
    other.parent.mkdir()
    (other.parent / "app").symlink_to(app.spec.parent / "app")
    other.write_text(
        app.spec.read_text().replace("hooks:", "hooks:\n  before_install: touch /tmp/owned\n", 1)
    )
    engine = sqlalchemy.create_engine(app.db_url)
    with engine.begin() as connection:
        row = connection.execute(
            sqlalchemy.text("SELECT run_options FROM deployments WHERE id = :id"), {"id": view.id}
        ).one()
        options = json.loads(row[0])
        options["spec_path"] = str(other)
        connection.execute(
            sqlalchemy.text("UPDATE deployments SET run_options = :o WHERE id = :id"),
            {"o": json.dumps(options), "id": view.id},
        )
    engine.dispose()
    refused = app.deploy("resume", view.id)
    assert refused.returncode == 2 and str(other) in refused.stderr, refused.stderr
    with open_store(app.db_url) as store:
        assert store.deployment(view.id).status is DeploymentStatus.RUNNING
