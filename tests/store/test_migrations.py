"""The store migrates itself on open: empty databases, reopening, several processes at once."""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import bindparam, create_engine, inspect, text

from deployer.core.errors import StoreError
from deployer.core.results import DeploymentStatus
from deployer.store import default_url, open_store, resolve_url
from deployer.store.engine import build_engine, parse_url
from deployer.store.migrate import HEAD_REVISION, alembic_config
from deployer.store.models import UtcDateTime, add_partial_indexes, metadata
from tests.plugins.stores import StoreFactory
from tests.store.builders import at, begin, deploy, hosts
from tests.store.processes import run_together

TABLES = {"alembic_version", "deployments", "hosts", "host_deployments", "host_steps", "version_intervals"}


def _revision(url: str) -> str | None:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()
    finally:
        engine.dispose()


def test_the_head_constant_is_the_newest_script() -> None:
    assert ScriptDirectory.from_config(alembic_config()).get_heads() == [HEAD_REVISION]


def test_an_empty_database_is_migrated_to_head(store_url: str, store_factory: StoreFactory) -> None:
    store_factory()
    engine = create_engine(store_url)
    try:
        assert set(inspect(engine).get_table_names()) >= TABLES
    finally:
        engine.dispose()
    assert _revision(store_url) == HEAD_REVISION


def _schema_differences(url: str) -> list[object]:
    """What alembic's autogenerate finds between the models and the database at ``url``."""
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": True})
            add_partial_indexes()
            return list(compare_metadata(context, metadata))
    finally:
        engine.dispose()


def test_the_models_and_the_migrations_agree(store_url: str) -> None:
    """Every migration, run in turn from an empty database, makes the models' schema."""
    engine = build_engine(parse_url(store_url))
    try:
        with engine.begin() as conn:
            command.upgrade(alembic_config(conn), "head")
    finally:
        engine.dispose()
    assert _schema_differences(store_url) == []


def test_a_new_database_gets_the_models_schema_without_running_the_migrations(
    store_url: str, store_factory: StoreFactory
) -> None:
    """A new store is made from the models and stamped at head; with the test above, that is
    the schema the migrations make."""
    store_factory()
    assert _schema_differences(store_url) == []
    assert _revision(store_url) == HEAD_REVISION


def test_reopening_is_idempotent_and_keeps_what_was_recorded(store_factory: StoreFactory) -> None:
    first = store_factory()
    deployment_id = deploy(first, "1.0", hosts("web-a"), at(0))
    first.close()
    for _ in range(2):
        again = store_factory()
        assert again.deployment(deployment_id).version == "1.0"
        assert again.current_versions("web", "prod") == {"web-a": "1.0"}
        again.close()


def test_an_old_database_is_upgraded_keeping_its_rows(store_url: str, store_factory: StoreFactory) -> None:
    """Every migration after the first runs on a database that already holds a deployment."""
    engine = build_engine(parse_url(store_url))
    try:
        with engine.begin() as conn:
            command.upgrade(alembic_config(conn), "0001")
            insert_old = text(
                "INSERT INTO deployments (id, app, environment, version, kind, status, started_by,"
                " started_from, pid, started_at, finished_at, heartbeat_at, spec_sha256)"
                " VALUES ('d-old', 'web', 'prod', '0.9', 'push', 'succeeded', 'alice', 'build-1', 1,"
                " :at, :at, :at, '')"
            ).bindparams(bindparam("at", type_=UtcDateTime))
            conn.execute(insert_old, {"at": at(0)})
    finally:
        engine.dispose()
    assert _revision(store_url) == "0001"
    store = store_factory()
    assert _revision(store_url) == HEAD_REVISION
    old = store.deployment("d-old")
    assert (old.version, old.status, old.started_at) == ("0.9", DeploymentStatus.SUCCEEDED, at(0))


OPEN_AT_ONCE = """
wait_for_the_start()
store = open_store(url)
print("opened", len(store.history("web")))
store.close()
"""


def test_processes_opening_an_empty_database_at_once_all_succeed(store_url: str) -> None:
    outputs = run_together(OPEN_AT_ONCE, store_url, count=3)
    assert outputs == ["opened 0"] * 3
    assert _revision(store_url) == HEAD_REVISION


def test_a_database_from_a_newer_deployer_is_refused(store_url: str, store_factory: StoreFactory) -> None:
    store_factory().close()
    engine = create_engine(store_url)
    try:
        with engine.begin() as conn:
            conn.execute(text("UPDATE alembic_version SET version_num = '9999'"))
    finally:
        engine.dispose()
    with pytest.raises(StoreError, match=r"from revision 9999 .* is it used by a newer deployer\?"):
        open_store(store_url)


def test_the_default_location_follows_xdg_state_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    monkeypatch.delenv("DEPLOYER_DB", raising=False)
    assert default_url() == f"sqlite:///{tmp_path}/state/deployer/state.db"
    with open_store() as store:
        deploy(store, "1.0", hosts("web-a"), at(0))
    database = tmp_path / "state" / "deployer" / "state.db"
    assert database.exists()
    with sqlite3.connect(database) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        assert conn.execute("SELECT version FROM version_intervals").fetchall() == [("1.0",)]

    monkeypatch.delenv("XDG_STATE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert default_url() == f"sqlite:///{tmp_path}/home/.local/state/deployer/state.db"


def test_deployer_db_names_the_store_unless_a_url_is_given(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DEPLOYER_DB", "sqlite:////from/env.db")
    assert resolve_url(None) == "sqlite:////from/env.db"
    assert resolve_url("sqlite:////given.db") == "sqlite:////given.db"
    monkeypatch.delenv("DEPLOYER_DB")
    assert resolve_url(None) == default_url()


def test_a_writer_waits_for_another_process_holding_the_sqlite_write_lock(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'state.db'}"
    with open_store(url) as store:
        other = sqlite3.connect(tmp_path / "state.db", isolation_level=None, check_same_thread=False)
        other.execute("BEGIN IMMEDIATE")
        releaser = threading.Timer(1.0, other.execute, ["COMMIT"])
        releaser.start()
        started = time.monotonic()
        try:
            begin(store, "1.0", hosts("web-a"), at(0))
        finally:
            releaser.join()
            other.close()
        assert time.monotonic() - started >= 0.9
        assert store.running_deployment("web", "prod") is not None


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("not a url", r"'not a url' is not a database URL; expected e\.g\. sqlite:////path/state\.db"),
        ("nosuchdb://x/y", r"no database driver for nosuchdb://x/y"),
        (
            "postgresql+psycopg://postgres:secret@127.0.0.1:1/test",
            r"cannot open the state store at postgresql\+psycopg://postgres:\*\*\*@127\.0\.0\.1:1/test: ",
        ),
    ],
)
def test_a_store_that_cannot_be_opened_says_why(url: str, message: str) -> None:
    with pytest.raises(StoreError, match=message) as error:
        open_store(url)
    assert "secret" not in str(error.value)


def test_an_sqlite_directory_that_cannot_be_made(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(StoreError, match=f"cannot create {blocker}/sub for the state store"):
        open_store(f"sqlite:///{blocker}/sub/state.db")
