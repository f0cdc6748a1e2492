"""How fast "which hosts run V (at T)" and "which versions ran at T" answer on a big history.

Builds a store with one app+environment of 10,000 hosts and 500 deployments of
history (pushes, rollbacks, restarts, halted pushes, a few failed hosts), each a
one-hour rollout, six hours apart: about 4.5 million version intervals and 5
million host rows. Then times the store's own query methods, each the median of
several runs after one warm-up, against the 100 ms target:

    /work/venv/bin/python bench/store.py                  # SQLite, and PostgreSQL if reachable
    /work/venv/bin/python bench/store.py --hosts 2000 --deployments 100 --no-postgres

The data is bulk-loaded with the database driver (SQLite ``executemany`` in one
transaction, PostgreSQL ``COPY``), with the secondary indexes dropped during the
load and rebuilt after, as a restore would. The schema itself comes from
``open_store`` (the models' schema, which the migrations make too, as a test checks).
PostgreSQL gets ``ANALYZE`` after the load, as autovacuum would do on its own within
a minute; SQLite gets nothing a user's database would not have.

The "CLI path" rows run the ``deploy`` command itself in-process (click's CliRunner,
so stdout is not a terminal and the JSON is one line, as a script gets it): parse
TIME, open the existing store (which checks its migrations), run the query, render
and print the JSON. Python's start-up and imports are not in them. Every timed call
starts with the objects that exist frozen out of the collector's sight, as ``deploy``'s
entry point freezes its imports before a command runs (see ``measure``).
"""

from __future__ import annotations

import argparse
import gc
import os
import secrets
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import func, select

from deployer.store import NewDeployment, Store, open_store
from deployer.store.models import metadata
from deployer.store.view_queries import covering_intervals
from deployer.store.views import VersionInterval

APP, ENVIRONMENT = "web", "prod"
T0 = datetime(2025, 1, 1, tzinfo=UTC)
SPACING = timedelta(hours=6)
ROLLOUT = timedelta(hours=1)
TARGET_MS = 100.0
PG_SERVER = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
PG_CONNINFO = "host=127.0.0.1 port=5432 dbname=test user=postgres connect_timeout=3"
BULK_TABLES = ("version_intervals", "host_deployments")


# ---- the history, generated ------------------------------------------------------


@dataclass
class History:
    """A generated history: rows for each table, produced as streams (too many to hold at once)."""

    host_count: int
    deployment_count: int
    deployments: list[dict[str, Any]] = field(default_factory=list)
    # What the timing queries ask about, picked while generating.
    probe_version: str = ""
    probe_moment: datetime = T0
    mixed_moment: datetime = T0  # half-way through a rollout: two versions at once
    current_version: str = ""
    interval_count: int = 0


def host_name(index: int) -> str:
    return f"web-{index:05d}"


def datacenter(index: int) -> str:
    return ("iad", "sfo", "fra", "sin")[index % 4]


def plan_history(host_count: int, deployment_count: int) -> History:
    """Which deployment does what; row streams come from :func:`host_rows` and :func:`interval_rows`."""
    history = History(host_count, deployment_count)
    pushed: list[str] = []
    current = None
    for k in range(deployment_count):
        start = T0 + k * SPACING
        if k % 10 == 9 and len(pushed) >= 2:
            kind, version, status, reach = "rollback", pushed[-2], "succeeded", 1.0
        elif k % 7 == 6 and current is not None:
            kind, version, status, reach = "restart", current, "succeeded", 1.0
        elif k % 25 == 24:
            kind, version, status, reach = "push", f"2.{k}.0", "halted", 0.05
        else:
            kind, version, status, reach = "push", f"2.{k}.0", "succeeded", 1.0
        if kind == "push":
            pushed.append(version)
        history.deployments.append(
            {
                "id": f"d-{start:%Y%m%d-%H%M}-{k:04x}",
                "app": APP,
                "environment": ENVIRONMENT,
                "version": version,
                "previous_version": current,
                "kind": kind,
                "status": status,
                "started_by": "alice",
                "started_from": "build-1",
                "pid": 1000 + k,
                "started_at": start,
                "finished_at": start + ROLLOUT,
                "heartbeat_at": start + ROLLOUT,
                "spec_sha256": "0" * 64,
                "reason": "the failure threshold was crossed" if status == "halted" else None,
                "reach": reach,
            }
        )
        if reach == 1.0:
            current = version
    middle = history.deployments[deployment_count // 2]
    full_pushes = [d for d in history.deployments if d["kind"] == "push" and d["reach"] == 1.0]
    probe = min(full_pushes, key=lambda d: abs(d["started_at"] - middle["started_at"]))
    history.probe_version = probe["version"]
    history.probe_moment = probe["started_at"] + ROLLOUT + timedelta(hours=2)
    history.mixed_moment = probe["started_at"] + ROLLOUT / 2
    history.current_version = current or ""
    return history


def switch_moment(deployment: dict[str, Any], host: int, host_count: int) -> datetime:
    start: datetime = deployment["started_at"]
    return start + ROLLOUT * (host / host_count)


def fails(deployment_index: int, host: int) -> bool:
    return (host * 31 + deployment_index) % 997 == 0


def host_rows(history: History) -> Iterator[tuple[Any, ...]]:
    for index in range(history.host_count):
        yield (
            index + 1,
            APP,
            ENVIRONMENT,
            host_name(index),
            f"10.{index // 65536}.{index // 256 % 256}.{index % 256}",
            datacenter(index),
            T0,
            None,
        )


def host_deployment_rows(history: History) -> Iterator[tuple[Any, ...]]:
    n = history.host_count
    for k, deployment in enumerate(history.deployments):
        reached = int(n * deployment["reach"])
        for host in range(n):
            moment = switch_moment(deployment, host, n)
            if host >= reached:
                yield (
                    deployment["id"],
                    host + 1,
                    host * 10 // n,
                    "aborted",
                    None,
                    None,
                    None,
                    None,
                    None,
                    "",
                    None,
                    None,
                )
            elif fails(k, host):
                yield (
                    deployment["id"],
                    host + 1,
                    host * 10 // n,
                    "failed",
                    "validate",
                    moment,
                    moment + timedelta(seconds=40),
                    "validate exited 7 after 3 attempts",
                    7,
                    "boom",
                    None,
                    deployment["previous_version"],
                )
            else:
                yield (
                    deployment["id"],
                    host + 1,
                    host * 10 // n,
                    "succeeded",
                    "prune",
                    moment - timedelta(seconds=20),
                    moment + timedelta(seconds=20),
                    None,
                    0,
                    "",
                    deployment["version"],
                    deployment["previous_version"],
                )


def interval_rows(history: History) -> Iterator[tuple[Any, ...]]:
    """(id, host_id, app, environment, version, since, until, deployment_id), closed ones as they close."""
    n = history.host_count
    running: list[tuple[str, datetime, str] | None] = [None] * n
    next_id = 1
    for k, deployment in enumerate(history.deployments):
        reached = int(n * deployment["reach"])
        for host in range(reached):
            if fails(k, host):
                continue
            now_running = running[host]
            if now_running is not None and now_running[0] == deployment["version"]:
                continue
            moment = switch_moment(deployment, host, n)
            if now_running is not None:
                version, since, deployment_id = now_running
                yield (next_id, host + 1, APP, ENVIRONMENT, version, since, moment, deployment_id)
                next_id += 1
            running[host] = (deployment["version"], moment, deployment["id"])
    for host, now_running in enumerate(running):
        if now_running is not None:
            version, since, deployment_id = now_running
            yield (next_id, host + 1, APP, ENVIRONMENT, version, since, None, deployment_id)
            next_id += 1
    history.interval_count = next_id - 1


DEPLOYMENT_COLUMNS = (
    "id",
    "app",
    "environment",
    "version",
    "previous_version",
    "kind",
    "status",
    "started_by",
    "started_from",
    "pid",
    "started_at",
    "finished_at",
    "heartbeat_at",
    "spec_sha256",
    "reason",
)
HOST_COLUMNS = ("id", "app", "environment", "name", "address", "datacenter", "first_seen", "retired_at")
HOST_DEPLOYMENT_COLUMNS = (
    "deployment_id",
    "host_id",
    "wave",
    "status",
    "step",
    "started_at",
    "finished_at",
    "error",
    "exit_status",
    "output_tail",
    "version",
    "previous_version",
)
INTERVAL_COLUMNS = ("id", "host_id", "app", "environment", "version", "since", "until", "deployment_id")


def deployment_rows(history: History) -> Iterator[tuple[Any, ...]]:
    for deployment in history.deployments:
        yield tuple(deployment[column] for column in DEPLOYMENT_COLUMNS)


# ---- loading -----------------------------------------------------------------------


def secondary_indexes() -> list[Any]:
    return [index for name in BULK_TABLES for index in metadata.tables[name].indexes]


def load_sqlite(path: Path, history: History) -> None:
    import sqlite3

    from sqlalchemy import create_engine
    from sqlalchemy.schema import CreateIndex

    engine = create_engine(f"sqlite:///{path}")
    create_index_sql = [str(CreateIndex(index).compile(engine)) for index in secondary_indexes()]
    engine.dispose()

    def stamp(value: datetime | None) -> str | None:  # SQLAlchemy's SQLite format, naive UTC
        return None if value is None else value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")

    def stamped(rows: Iterator[tuple[Any, ...]]) -> Iterator[tuple[Any, ...]]:
        for row in rows:
            yield tuple(stamp(value) if isinstance(value, datetime) else value for value in row)

    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA synchronous = OFF")
    conn.execute("PRAGMA cache_size = -512000")
    conn.execute("BEGIN IMMEDIATE")
    for index in secondary_indexes():
        conn.execute(f"DROP INDEX {index.name}")
    for table, columns, rows in (
        ("hosts", HOST_COLUMNS, host_rows(history)),
        ("deployments", DEPLOYMENT_COLUMNS, deployment_rows(history)),
        ("host_deployments", HOST_DEPLOYMENT_COLUMNS, host_deployment_rows(history)),
        ("version_intervals", INTERVAL_COLUMNS, interval_rows(history)),
    ):
        marks = ", ".join("?" * len(columns))
        conn.executemany(f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})", stamped(rows))
    for statement in create_index_sql:
        conn.execute(statement)
    conn.execute("COMMIT")
    conn.close()


def load_postgres(schema: str, history: History) -> None:
    import psycopg
    from sqlalchemy import create_engine
    from sqlalchemy.schema import CreateIndex

    engine = create_engine(PG_SERVER)
    create_index_sql = [str(CreateIndex(index).compile(engine)) for index in secondary_indexes()]
    engine.dispose()
    with psycopg.connect(PG_CONNINFO, options=f"-csearch_path={schema}") as conn:
        for index in secondary_indexes():
            conn.execute(f"DROP INDEX {index.name}")
        for table, columns, rows in (
            ("hosts", HOST_COLUMNS, host_rows(history)),
            ("deployments", DEPLOYMENT_COLUMNS, deployment_rows(history)),
            ("host_deployments", HOST_DEPLOYMENT_COLUMNS, host_deployment_rows(history)),
            ("version_intervals", INTERVAL_COLUMNS, interval_rows(history)),
        ):
            with conn.cursor().copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
        for statement in create_index_sql:
            conn.execute(statement)
        for table in ("hosts", "host_deployments", "version_intervals"):
            conn.execute(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM {table}))"
            )
        conn.commit()
        conn.autocommit = True
        conn.execute("ANALYZE")


# ---- timing ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Timing:
    name: str
    median_ms: float
    best_ms: float
    database_ms: float | None  # the same statement reduced to count(*): the database's own work
    what: str


def measure(work: Callable[[], object], runs: int) -> tuple[float, float, object]:
    """Median and best of ``runs`` timed calls after one warm-up, and the last result.

    Each call starts with the collector as a ``deploy`` process has it when its command
    starts (deployer.cli.main): what exists is frozen out of its sight. Without that,
    the collections a call makes would also walk this bench's own millions of objects
    (the generated history), which no real command holds.
    """
    result = work()
    samples = []
    for _ in range(runs):
        gc.collect()
        gc.freeze()
        started = time.perf_counter()
        result = work()
        samples.append((time.perf_counter() - started) * 1000)
    return statistics.median(samples), min(samples), result


def describe(result: object) -> str:
    if isinstance(result, list):
        if result and isinstance(result[0], tuple) and not isinstance(result[0], VersionInterval):
            shown = ", ".join(f"{version}: {count}" for version, count in result[:3])
            return shown + (" ..." if len(result) > 3 else "")
        return f"{len(result)} hosts"
    return str(result)


def database_ms(store: Store, version: str | None, at: datetime | None, runs: int) -> float:
    """How long the database takes to find the covering intervals, without building Python objects."""
    engine = store._engine  # the bench peeks inside: this is the store's own statement
    covering = covering_intervals(APP, ENVIRONMENT, version, at, dialect=engine.dialect.name).subquery()
    statement = select(func.count()).select_from(covering)

    def count() -> object:
        with engine.connect() as conn:
            return conn.execute(statement).scalar_one()

    return measure(count, runs)[0]


def python_baseline_ms(runs: int) -> float:
    """This machine's speed at making Python objects: 10,000 tuples of six fresh strings."""
    return measure(
        lambda: [(str(i), str(i + 1), f"a{i}", str(i), str(i), str(i)) for i in range(10_000)], runs
    )[0]


def time_queries(url: str, history: History, runs: int) -> list[Timing]:
    timings: list[Timing] = []
    lists: list[tuple[str, str | None, datetime | None]] = [
        (f"hosts_running(version={history.current_version}) now", history.current_version, None),
        (
            f"hosts_running(version={history.probe_version}, at=T)",
            history.probe_version,
            history.probe_moment,
        ),
        ("hosts_running(any version, at=T)", None, history.probe_moment),
        ("hosts_running(oldest version, at=its start)", history.deployments[0]["version"], T0 + ROLLOUT),
    ]
    # A halted push (every 25th) left its version on 5% of the hosts: a short list.
    for canary in (d for d in history.deployments if d["status"] == "halted"):
        after_it: datetime = canary["finished_at"] + timedelta(minutes=1)
        lists.append(
            (f"hosts_running(version={canary['version']}, at=T) (halted)", canary["version"], after_it)
        )
        break
    counts: list[tuple[str, datetime | None]] = [
        ("versions_at() now", None),
        ("versions_at(at=T)", history.probe_moment),
        ("versions_at(at=mid-rollout)", history.mixed_moment),
    ]
    store = open_store(url)
    try:
        for name, version, at in lists:
            median, best, result = measure(partial(store.hosts_running, APP, ENVIRONMENT, version, at), runs)
            database = database_ms(store, version, at, runs)
            timings.append(Timing(name, median, best, database, describe(result)))
        for name, at in counts:
            median, best, result = measure(partial(store.versions_at, APP, ENVIRONMENT, at), runs)
            timings.append(Timing(name, median, best, None, describe(result)))
    finally:
        store.close()

    moment = history.probe_moment.isoformat()
    from click.testing import CliRunner

    from deployer.cli import cli

    def run_cli(*args: str) -> object:
        """The real command, in-process: parse, open the store, query, render, print."""
        done = CliRunner().invoke(cli, [*args, "--app", APP, "--env", ENVIRONMENT, "--json", "--db", url])
        if done.exit_code != 0:
            raise SystemExit(f"deploy {' '.join(args)} failed: {done.output[-500:]}")
        return done.stdout.strip()

    def cli_hosts() -> object:
        return run_cli("hosts", "--version", history.probe_version, "--at", moment)

    def cli_versions() -> object:
        return run_cli("versions", "--at", moment)

    for name, work in (
        ("CLI path: open + hosts --version V --at T --json", cli_hosts),
        ("CLI path: open + versions --at T --json", cli_versions),
    ):
        median, best, result = measure(work, runs)
        timings.append(Timing(name, median, best, None, f"{len(str(result))} bytes of JSON"))
    return timings


def time_writes(url: str, host_count: int = 500) -> Timing:
    """The controller's write path on the big store: per host three steps and a result, each committed."""
    from deployer.core.results import (
        DeploymentKind,
        DeploymentStatus,
        HostResult,
        HostStatus,
        Step,
        StepResult,
    )
    from deployer.core.targets import Host

    fleet = [Host(f"w-{index:04d}", "10.9.0.1", datacenter(index)) for index in range(host_count)]
    now = T0 + SPACING * 10_000
    with open_store(url) as store:
        started = time.perf_counter()
        deployment_id = store.begin_deployment(
            NewDeployment(
                app="writes", environment=ENVIRONMENT, version="1.0", previous_version=None,
                kind=DeploymentKind.PUSH, started_by="bench", started_from="bench", pid=os.getpid(),
                spec_sha256="0" * 64, hosts=[(host, 0) for host in fleet],
            ),
            now=now,
        )  # fmt: skip
        for host in fleet:
            for step in (Step.CONNECT, Step.UPLOAD, Step.SWITCH):
                store.record_step(deployment_id, host.name, step, now)
            switch = StepResult(Step.SWITCH, 0, now, 0.1)
            store.record_host_result(
                deployment_id,
                HostResult(
                    host.name, HostStatus.SUCCEEDED, now, now, Step.PRUNE, 0, steps=(switch,), version="1.0"
                ),
            )
        store.finish_deployment(deployment_id, DeploymentStatus.SUCCEEDED, now)
        elapsed = (time.perf_counter() - started) * 1000
    writes = host_count * 4 + 2
    return Timing(
        f"writes: {writes} commits (4 per host, {host_count} hosts)",
        elapsed / writes,
        elapsed / writes,
        None,
        f"{writes / elapsed * 1000:.0f} commits/s (ms column: per commit)",
    )


def report(title: str, load_seconds: float, history: History, timings: list[Timing], baseline: float) -> bool:
    print(
        f"\n{title}: {history.host_count} hosts, {history.deployment_count} deployments, "
        f"{history.interval_count} version intervals; loaded in {load_seconds:.1f} s"
    )
    width = max(len(timing.name) for timing in timings)
    print(f"  {'':<{width}}    median      best   median/{TARGET_MS:.0f} ms   database")
    ok = True
    for timing in timings:
        ratio = timing.median_ms / TARGET_MS
        ok = ok and ratio < 1.0
        flag = "ok" if ratio < 1.0 else "SLOW"
        database = "" if timing.database_ms is None else f"{timing.database_ms:7.1f} ms"
        print(
            f"  {timing.name:<{width}}  {timing.median_ms:7.1f} ms {timing.best_ms:7.1f} ms"
            f"  {ratio:5.2f}x {flag:4}  {database:>10}  {timing.what}"
        )
    print(f"  (this machine makes 10,000 tuples of six strings in {baseline:.1f} ms)")
    return ok


def bench_sqlite(history: History, runs: int, keep: Path | None) -> bool:
    directory = Path(tempfile.mkdtemp(prefix="deployer-bench-"))
    path = (keep or directory / "state.db").resolve()
    if path.exists():
        path.unlink()
    url = f"sqlite:///{path}"
    try:
        started = time.perf_counter()
        open_store(url).close()
        load_sqlite(path, history)
        loaded = time.perf_counter() - started
        size = sum(p.stat().st_size for p in path.parent.glob(path.name + "*")) / 1e6
        timings = [*time_queries(url, history, runs), time_writes(url)]
        ok = report(f"SQLite ({size:.0f} MB)", loaded, history, timings, python_baseline_ms(runs))
    finally:
        shutil.rmtree(directory, ignore_errors=True)
    if keep:
        print(f"  kept {path}")
    return ok


def bench_postgres(history: History, runs: int) -> bool | None:
    import psycopg

    try:
        psycopg.connect(PG_CONNINFO).close()
    except psycopg.Error as error:
        print(f"\nPostgreSQL skipped: 127.0.0.1:5432 is unreachable ({str(error).strip()})")
        return None
    schema = f"bench_{secrets.token_hex(4)}"
    with psycopg.connect(PG_CONNINFO, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    url = f"{PG_SERVER}?options=-csearch_path%3D{schema}"
    try:
        started = time.perf_counter()
        open_store(url).close()
        load_postgres(schema, history)
        loaded = time.perf_counter() - started
        timings = [*time_queries(url, history, runs), time_writes(url)]
        return report("PostgreSQL", loaded, history, timings, python_baseline_ms(runs))
    finally:
        with psycopg.connect(PG_CONNINFO, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA {schema} CASCADE")


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--hosts", type=int, default=10_000)
    parser.add_argument("--deployments", type=int, default=500)
    parser.add_argument("--runs", type=int, default=7, help="timed runs per query (the median is shown)")
    parser.add_argument("--no-postgres", action="store_true", help="SQLite only")
    parser.add_argument("--no-sqlite", action="store_true", help="PostgreSQL only")
    parser.add_argument("--keep-sqlite", type=Path, help="build the SQLite store at this path and keep it")
    args = parser.parse_args()
    if args.hosts < 1 or args.deployments < 2:
        parser.error("need at least 1 host and 2 deployments")
    os.environ.pop("DEPLOYER_DB", None)
    history = plan_history(args.hosts, args.deployments)
    results: list[bool | None] = []
    if not args.no_sqlite:
        results.append(bench_sqlite(history, args.runs, args.keep_sqlite))
    if not args.no_postgres:
        results.append(bench_postgres(history, args.runs))
    return 0 if all(result is not False for result in results) else 1


if __name__ == "__main__":
    sys.exit(main())
