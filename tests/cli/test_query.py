"""``deploy status|hosts|versions|history|pause|resume|abort``, run as a user runs them.

A history is written through the real Store API at fixed moments, on an SQLite
file and on PostgreSQL; then the installed ``deploy`` command runs in a
subprocess against it, and the tests read its JSON, its text and its exit status.
"""

from __future__ import annotations

import json
import os
import pty
import secrets
import select
import shlex
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import click
import pytest

from deployer.cli.options import TimeParam
from deployer.core import wording
from deployer.core.results import (
    ControlAction,
    DeploymentKind,
    DeploymentStatus,
    HostResult,
    HostStatus,
    Step,
)
from deployer.core.targets import Host
from deployer.core.timefmt import LOCAL
from deployer.inventory.limit import limit_hosts, read_limit_files
from deployer.store import (
    ControlState,
    DeploymentView,
    HostDeploymentView,
    Liveness,
    NewDeployment,
    Store,
    VersionInterval,
    open_store,
)
from deployer.views import render
from tests.plugins.stores import PG_SERVER, pg_schema_url

DEPLOY = str(Path(sys.executable).with_name("deploy"))
CLI_TIMEOUT = 30  # seconds; one call takes well under one

T1 = datetime(2026, 3, 1, 10, 0, tzinfo=UTC)
T2 = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
T3 = datetime(2026, 3, 3, 10, 0, tzinfo=UTC)
RETIRED_AT = T3 + timedelta(hours=1)
SHA = "0" * 64

# Two datacenters, three hosts each; waves striped across them.
A1, B1, A2, B2, A3, B3 = (
    Host(name, f"10.0.0.{index}", f"dc-{name[0]}")
    for index, name in enumerate(("a1", "b1", "a2", "b2", "a3", "b3"), start=1)
)
WAVES = ((A1, B1), (A2, B2, A3, B3))


@dataclass(frozen=True)
class History:
    """The recorded past the read-only tests ask about.

    - d1 at T1: push 1.0 to production, all six succeed (wave 1 switches at +1m, wave 2 at +2m).
    - d2 at T2: push 1.1, all six succeed, same rhythm.
    - staging at T2+1h: push 1.1 to staging (two hosts).
    - d3 at T3: push 1.2; a1 and b1 succeed at +1m; a2 fails before_install,
      b2 is unreachable: halted, a3 and b3 never start (aborted).
    - b3 leaves the inventory at T3+1h.
    """

    url: str
    d1: str
    d2: str
    d3: str
    staging: str


def _result(
    host: Host, status: HostStatus, started: datetime, version: str | None, previous: str | None
) -> HostResult:
    failed_step = {HostStatus.FAILED: Step.BEFORE_INSTALL, HostStatus.UNREACHABLE: Step.CONNECT}
    error = {
        HostStatus.FAILED: "before_install exited 3",
        HostStatus.UNREACHABLE: "connection refused by 10.0.0.4:22",
    }
    return HostResult(
        host=host.name,
        status=status,
        started_at=started,
        finished_at=started + timedelta(minutes=1),  # no steps recorded: the switch is taken to be here
        step=failed_step.get(status, Step.PRUNE),
        exit_status=3 if status is HostStatus.FAILED else None if status is HostStatus.UNREACHABLE else 0,
        error=error.get(status),
        version=version,
        previous_version=previous,
    )


def _deploy(
    store: Store,
    start: datetime,
    version: str,
    previous: str | None,
    waves: Sequence[Sequence[Host]],
    *,
    environment: str = "production",
    outcome: dict[str, HostStatus] | None = None,
    final: DeploymentStatus = DeploymentStatus.SUCCEEDED,
    reason: str | None = None,
) -> str:
    """A deployment at ``start``: wave i's hosts start at +i minutes and switch a minute later.

    ``outcome`` says how hosts other than SUCCEEDED ended; a PENDING one never starts.
    """
    outcome = outcome or {}
    deployment_id = store.begin_deployment(
        NewDeployment(
            app="webapp",
            environment=environment,
            version=version,
            previous_version=previous,
            kind=DeploymentKind.PUSH,
            started_by="alice",
            started_from="build-1",
            pid=os.getpid(),
            spec_sha256=SHA,
            hosts=[(host, index) for index, wave in enumerate(waves, start=1) for host in wave],
        ),
        now=start,
    )
    for index, wave in enumerate(waves):
        started = start + timedelta(minutes=index)
        for host in wave:
            status = outcome.get(host.name, HostStatus.SUCCEEDED)
            if status is HostStatus.PENDING:
                continue
            store.record_step(deployment_id, host.name, Step.CONNECT, started)
            now_running = version if status is HostStatus.SUCCEEDED else previous
            if status is HostStatus.UNREACHABLE:
                now_running = None
            store.record_host_result(deployment_id, _result(host, status, started, now_running, previous))
    store.finish_deployment(deployment_id, final, start + timedelta(minutes=len(waves) + 1), reason=reason)
    return deployment_id


def _record_history(url: str) -> History:
    with open_store(url) as store:
        d1 = _deploy(store, T1, "1.0", None, WAVES)
        d2 = _deploy(store, T2, "1.1", "1.0", WAVES)
        staging = _deploy(
            store,
            T2 + timedelta(hours=1),
            "1.1",
            None,
            [[Host("s1", "10.1.0.1", "dc-a"), Host("s2", "10.1.0.2", "dc-b")]],
            environment="staging",
        )
        d3 = _deploy(
            store,
            T3,
            "1.2",
            "1.1",
            WAVES,
            # Halted in wave 2: a3 and b3 never started.
            outcome={
                "a2": HostStatus.FAILED,
                "b2": HostStatus.UNREACHABLE,
                "a3": HostStatus.PENDING,
                "b3": HostStatus.PENDING,
            },
            final=DeploymentStatus.HALTED,
            reason="2 of 6 hosts failed; 1 allowed",
        )
        store.mark_retired("webapp", "production", ["b3"], RETIRED_AT)
    return History(url, d1, d2, d3, staging)


@pytest.fixture(scope="module")
def sqlite_history(tmp_path_factory: pytest.TempPathFactory) -> History:
    """The history above in an SQLite file, for this module's read-only tests."""
    return _record_history(f"sqlite:///{tmp_path_factory.mktemp('history') / 'state.db'}")


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def history(request: pytest.FixtureRequest, postgres_unreachable: str | None) -> Iterator[History]:
    """The history above on each backend: the same answers are expected from both.

    Tests of how answers are shown (not what they are) take ``sqlite_history`` only:
    every ``deploy`` call costs a second of start-up.
    """
    if request.param == "sqlite":
        yield request.getfixturevalue("sqlite_history")
        return
    if postgres_unreachable:
        pytest.skip(postgres_unreachable)
    import psycopg

    conninfo = PG_SERVER.replace("postgresql+psycopg://", "postgresql://") + "?connect_timeout=3"
    schema = f"test_cli_{secrets.token_hex(6)}"
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    try:
        yield _record_history(pg_schema_url(schema))
    finally:
        with psycopg.connect(conninfo, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA {schema} CASCADE")


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """An empty store: for what does not depend on the backend (or is refused before it is opened)."""
    return f"sqlite:///{tmp_path / 'state.db'}"


@pytest.fixture
def sqlite_store(sqlite_url: str) -> Iterator[Store]:
    with open_store(sqlite_url) as store:
        yield store


@dataclass(frozen=True)
class Run:
    exit_code: int
    stdout: str
    stderr: str
    args: tuple[str, ...] = ()

    def json(self) -> Any:
        assert self.exit_code == 0, self.stderr
        return json.loads(self.stdout)


def deploy(url: str, command: str, *, tz: str = "UTC", db_from_env: bool = False) -> Run:
    """``deploy COMMAND --db URL`` in a subprocess, in the zone ``tz``; never waits more than CLI_TIMEOUT.

    ``command`` is split as a shell would split it. With ``db_from_env`` the URL goes
    in ``$DEPLOYER_DB`` instead of ``--db``. Stdin is not a terminal.
    """
    env = {**os.environ, "TZ": tz}
    env.pop("DEPLOYER_DB", None)
    if db_from_env:
        env["DEPLOYER_DB"] = url
    done = subprocess.run(
        [DEPLOY, *shlex.split(command), *([] if db_from_env else ["--db", url])],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=CLI_TIMEOUT,
        env=env,
        check=False,
    )
    return Run(done.returncode, done.stdout, done.stderr, tuple(shlex.split(command)))


def moment(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text)


def assert_one_line_error(run: Run, *fragments: str) -> None:
    assert run.exit_code == 2, (run.stdout, run.stderr)
    assert "Traceback" not in run.stderr
    if "--json" in run.args:  # the same error as one JSON object (docs/cli.md, "Errors under --json")
        error = json.loads(run.stdout)["error"]
        assert error["exit_code"] == 2
        assert all(fragment in error["message"] for fragment in fragments), error
    else:
        assert run.stdout == ""
    for fragment in fragments:
        assert fragment in run.stderr


# ---- deploy hosts ------------------------------------------------------------------


def test_hosts_running_a_version_between_deployments_say_since_when(history: History) -> None:
    before_d2 = deploy(
        history.url, "hosts --app webapp --env production --version 1.0 --at 2026-03-02T09:00:00Z --json"
    ).json()
    assert before_d2["app"] == "webapp"
    assert before_d2["environment"] == "production"
    assert before_d2["version"] == "1.0"
    assert moment(before_d2["at"]) == datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
    rows = {(h["name"], h["datacenter"], h["version"], moment(h["since"])) for h in before_d2["hosts"]}
    assert rows == {
        ("a1", "dc-a", "1.0", T1 + timedelta(minutes=1)),
        ("b1", "dc-b", "1.0", T1 + timedelta(minutes=1)),
        ("a2", "dc-a", "1.0", T1 + timedelta(minutes=2)),
        ("b2", "dc-b", "1.0", T1 + timedelta(minutes=2)),
        ("a3", "dc-a", "1.0", T1 + timedelta(minutes=2)),
        ("b3", "dc-b", "1.0", T1 + timedelta(minutes=2)),
    }
    # b3 has left the inventory since; the store knows when, and says so.
    retired = {h["name"]: moment(h["retired_at"]) for h in before_d2["hosts"]}
    assert retired == {"a1": None, "b1": None, "a2": None, "b2": None, "a3": None, "b3": RETIRED_AT}

    # Half-way through d3: the first wave already runs 1.2, the rest still 1.1.
    mid_d3 = deploy(
        history.url, "hosts --app webapp --env production --version 1.1 --at 2026-03-03T10:01:30Z --json"
    ).json()
    assert [h["name"] for h in mid_d3["hosts"]] == ["a2", "a3", "b2", "b3"]
    assert {moment(h["since"]) for h in mid_d3["hosts"]} == {T2 + timedelta(minutes=2)}


def test_hosts_now_leave_out_retired_hosts_and_name_each_version(history: History) -> None:
    now = deploy(history.url, "hosts --app webapp --env production --json").json()
    assert now["version"] is None
    assert {h["name"]: h["version"] for h in now["hosts"]} == {
        "a1": "1.2",
        "b1": "1.2",
        "a2": "1.1",  # failed before_install: still on 1.1
        "b2": "1.1",  # unreachable: untouched
        "a3": "1.1",  # never started
    }
    assert {h["name"]: h["deployment"] for h in now["hosts"]}["a1"] == history.d3


def test_hosts_running_no_such_version_is_said_plainly(sqlite_history: History) -> None:
    run = deploy(sqlite_history.url, "hosts --app webapp --env production --version 9.9")
    assert run.exit_code == 0, run.stderr
    assert run.stdout.strip() == "no host of webapp in production runs 9.9"


def test_hosts_table_shows_local_time_with_the_zone(sqlite_history: History) -> None:
    run = deploy(
        sqlite_history.url,
        "hosts --app webapp --env production --version 1.0 --at '2026-03-02 09:00'",
        tz="Europe/Berlin",
    )
    assert run.exit_code == 0, run.stderr
    lines = run.stdout.splitlines()
    # "2026-03-02 09:00" without a zone is Berlin time: 08:00 UTC, a day after 1.0 went out.
    assert lines[0] == "6 hosts of webapp in production running 1.0 at 2026-03-02 09:00:00 CET:"
    assert lines[1].split() == ["HOST", "DATACENTER", "VERSION", "SINCE", "UNTIL", "NOTE"]
    a1 = next(line for line in lines if line.startswith("a1 "))
    assert "2026-03-01 11:01:00 CET" in a1  # since T1+1m, in Berlin
    assert "2026-03-02 11:01:00 CET" in a1  # until d2 switched it
    b3 = next(line for line in lines if line.startswith("b3 "))
    assert b3.endswith("retired 2026-03-03 12:00 CET")


def test_a_bad_time_is_refused_naming_the_accepted_forms(sqlite_url: str) -> None:
    run = deploy(sqlite_url, "hosts --app webapp --env production --at 'last tuesday'")
    assert run.exit_code == 2
    assert "Traceback" not in run.stderr
    assert "'last tuesday'" in run.stderr
    assert "ISO 8601" in run.stderr and "3h ago" in run.stderr


# ---- deploy versions ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("at", "expected"),
    [
        ("2026-02-28T00:00:00Z", []),  # before anything was deployed
        ("2026-03-01T10:01:30Z", [("1.0", 2)]),  # d1 between its waves
        ("2026-03-03T10:30:00Z", [("1.1", 4), ("1.2", 2)]),  # after the halt, before b3 left
    ],
)
def test_versions_at_a_moment(history: History, at: str, expected: list[tuple[str, int]]) -> None:
    document = deploy(history.url, f"versions --app webapp --env production --at {at} --json").json()
    assert document["app"] == "webapp"
    assert document["environment"] == "production"
    assert moment(document["at"]) == datetime.fromisoformat(at)
    assert [(v["version"], v["host_count"]) for v in document["versions"]] == expected


def test_versions_now_as_a_table_from_the_store_named_in_the_environment(sqlite_history: History) -> None:
    run = deploy(sqlite_history.url, "versions --app webapp --env production", db_from_env=True)
    assert run.exit_code == 0, run.stderr
    assert run.stdout.splitlines() == [
        "versions of webapp in production now:",
        "VERSION  HOSTS  SHARE",
        "1.1      3      60%",
        "1.2      2      40%",
    ]


# ---- deploy history ----------------------------------------------------------------


def test_history_is_newest_first_with_who_when_what_and_outcome(history: History) -> None:
    production = deploy(history.url, "history --app webapp --env production --json").json()
    rows = [
        (d["id"], d["version"], d["status"], d["started_by"], moment(d["started_at"]))
        for d in production["deployments"]
    ]
    assert rows == [
        (history.d3, "1.2", "halted", "alice", T3),
        (history.d2, "1.1", "succeeded", "alice", T2),
        (history.d1, "1.0", "succeeded", "alice", T1),
    ]
    assert all("hosts" not in d for d in production["deployments"])
    assert production["deployments"][0]["reason"] == "2 of 6 hosts failed; 1 allowed"
    assert production["deployments"][0]["kind"] == "push"

    every_env = deploy(history.url, "history --app webapp --limit 2 --json").json()
    assert [d["id"] for d in every_env["deployments"]] == [history.d3, history.staging]


def test_history_of_a_host_gives_its_version_intervals(history: History) -> None:
    document = deploy(history.url, "history --app webapp --env production --host a1 --json").json()
    assert document["host"] == "a1"
    assert [
        (v["version"], moment(v["since"]), moment(v["until"]), v["deployment"]) for v in document["versions"]
    ] == [
        ("1.2", T3 + timedelta(minutes=1), None, history.d3),
        ("1.1", T2 + timedelta(minutes=1), T3 + timedelta(minutes=1), history.d2),
        ("1.0", T1 + timedelta(minutes=1), T2 + timedelta(minutes=1), history.d1),
    ]
    retired = deploy(history.url, "history --app webapp --env production --host b3 --json").json()
    assert moment(retired["retired_at"]) == RETIRED_AT
    assert moment(retired["versions"][0]["until"]) == RETIRED_AT


def test_history_of_a_host_needs_an_environment_and_a_known_host(sqlite_history: History) -> None:
    no_env = deploy(sqlite_history.url, "history --app webapp --host a1")
    assert no_env.exit_code == 2
    assert "--host needs --env" in no_env.stderr
    unknown = deploy(sqlite_history.url, "history --app webapp --env production --host zz9")
    assert_one_line_error(unknown, "no host zz9 is recorded for webapp in production")
    assert unknown.stderr.count("\n") == 1


# ---- deploy status -----------------------------------------------------------------


def test_status_of_one_deployment_has_its_hosts_and_counts(history: History) -> None:
    document = deploy(history.url, f"status {history.d3} --json").json()
    assert {
        key: document[key]
        for key in ("id", "app", "environment", "kind", "version", "previous_version", "status", "started_by")
    } == {
        "id": history.d3,
        "app": "webapp",
        "environment": "production",
        "kind": "push",
        "version": "1.2",
        "previous_version": "1.1",
        "status": "halted",
        "started_by": "alice",
    }
    assert moment(document["started_at"]) == T3
    assert moment(document["finished_at"]) == T3 + timedelta(minutes=3)
    assert document["controller"] is None  # finished: no controller to ask about
    counts = {status: n for status, n in document["counts"].items() if n}
    assert counts == {"succeeded": 2, "failed": 1, "unreachable": 1, "not_started": 2}
    hosts = {h["name"]: h for h in document["hosts"]}
    assert set(hosts) == {"a1", "b1", "a2", "b2", "a3", "b3"}
    assert {key: hosts["a2"][key] for key in ("datacenter", "wave", "status", "step", "error")} == {
        "datacenter": "dc-a",
        "wave": 2,
        "status": "failed",
        "step": "before_install",
        "error": "before_install exited 3",
    }
    assert moment(hosts["a2"]["started_at"]) == T3 + timedelta(minutes=1)
    assert moment(hosts["a2"]["finished_at"]) == T3 + timedelta(minutes=2)
    assert (hosts["a3"]["status"], hosts["a3"]["started_at"], hosts["a3"]["step"]) == (
        "not_started",
        None,
        None,
    )


def test_status_without_an_id_gives_the_latest_per_app_and_environment(history: History) -> None:
    document = deploy(history.url, "status --json").json()
    latest = [(d["id"], d["environment"]) for d in document["deployments"]]
    assert latest == [(history.d3, "production"), (history.staging, "staging")]
    assert all("hosts" not in d for d in document["deployments"])
    assert document["deployments"][1]["counts"]["succeeded"] == 2


def test_status_as_text(sqlite_history: History) -> None:
    run = deploy(sqlite_history.url, f"status {sqlite_history.d3}")
    assert run.exit_code == 0, run.stderr
    lines = run.stdout.splitlines()
    assert lines[0] == f"{sqlite_history.d3}  push of webapp 1.2 to production (was 1.1): halted"
    assert "  reason     2 of 6 hosts failed; 1 allowed" in lines
    assert "  hosts      2 succeeded, 1 failed, 1 unreachable, 2 not started (6 in all)" in lines
    a2 = next(line for line in lines if line.split()[1:2] == ["a2"])
    assert a2.split()[:7] == ["2", "a2", "dc-a", "failed", "before_install", "10:01:00", "10:02:00"]
    assert a2.endswith("before_install exited 3")


def test_status_failed_lists_the_hosts_to_retry_one_a_line(history: History, tmp_path: Path) -> None:
    run = deploy(history.url, f"status {history.d3} --failed")
    assert (run.exit_code, run.stderr) == (0, "")
    assert run.stdout == "a2\nb2\n"  # failed and unreachable; not the aborted a3, b3
    # The list is a --limit @FILE: it reads back as exactly these hosts.
    failed = tmp_path / "failed.txt"
    failed.write_text(run.stdout)
    hosts = (A1, B1, A2, B2, A3, B3)
    chosen = limit_hosts(hosts, read_limit_files(f"@{failed}", lambda name: Path(name).read_text()))
    assert [host.name for host in chosen] == ["a2", "b2"]


def test_status_failed_of_a_clean_deployment_prints_nothing(sqlite_history: History) -> None:
    run = deploy(sqlite_history.url, f"status {sqlite_history.d2} --failed")
    assert (run.exit_code, run.stdout, run.stderr) == (0, "", "")


def test_status_failed_needs_an_id_and_no_json(sqlite_history: History) -> None:
    for command in ("status --failed", f"status {sqlite_history.d3} --failed --json"):
        run = deploy(sqlite_history.url, command)
        assert run.exit_code == 2
        assert "--failed needs a deployment ID" in run.stderr
        if "--json" in command:  # the error as JSON on stdout (docs/cli.md, "Errors under --json")
            error = json.loads(run.stdout)["error"]
            assert (error["exit_code"], error["kind"]) == (2, "UsageError")
            assert "--failed" in error["message"]
        else:
            assert run.stdout == ""


def test_status_of_an_unknown_deployment_is_one_line_and_exit_2(sqlite_url: str) -> None:
    run = deploy(sqlite_url, "status d-19990101-0000-dead")
    assert_one_line_error(run, "no deployment d-19990101-0000-dead")
    assert run.stderr.count("\n") == 1


# ---- deploy pause / resume / abort -------------------------------------------------


def _running(store: Store, *, pid: int | None = None, machine: str | None = None) -> str:
    """A deployment of webapp to canary that is running now, its controller this test process."""
    return store.begin_deployment(
        NewDeployment(
            app="webapp",
            environment="canary",
            version="2.0",
            previous_version="1.9",
            kind=DeploymentKind.PUSH,
            started_by="carol",
            started_from=machine or socket.gethostname(),
            pid=os.getpid() if pid is None else pid,
            spec_sha256=SHA,
            hosts=[(A1, 1), (B1, 1), (A2, 2)],
        ),
        now=datetime.now(UTC),
    )


def _dead_pid() -> int:
    """The pid of a process that has come and gone."""
    child = subprocess.Popen(["true"])
    child.wait(timeout=CLI_TIMEOUT)
    return child.pid


def test_pause_then_resume_are_recorded_for_the_controller(store: Store, store_url: str) -> None:
    """On SQLite and on PostgreSQL: a request goes through the store of either."""
    deployment_id = _running(store)
    paused = deploy(store_url, f"pause {deployment_id} --json").json()
    assert paused["id"] == deployment_id
    assert paused["requested"] == "pause"
    assert paused["status"] == "running"  # the controller has not acted on it yet
    state = store.control_state(deployment_id)
    assert state.requested is ControlAction.PAUSE
    assert state.requested_by == f"{paused['requested_by']}"
    assert state.requested_by is not None and state.requested_by.endswith("@" + socket.gethostname())

    store.set_status(deployment_id, DeploymentStatus.PAUSED, datetime.now(UTC))  # the controller paused
    resumed = deploy(store_url, f"resume {deployment_id}")
    assert resumed.exit_code == 0, resumed.stderr
    assert resumed.stdout.startswith(f"resume of {deployment_id} requested by ")
    assert store.control_state(deployment_id).requested is ControlAction.RESUME


def test_abort_is_recorded_and_nothing_but_abort_may_follow(sqlite_store: Store, sqlite_url: str) -> None:
    deployment_id = _running(sqlite_store)
    aborted = deploy(sqlite_url, f"abort {deployment_id}")  # stdin is not a terminal: no question
    assert aborted.exit_code == 0, aborted.stderr
    assert f"abort of {deployment_id} requested" in aborted.stdout
    assert sqlite_store.control_state(deployment_id).requested is ControlAction.ABORT

    pause = deploy(sqlite_url, f"pause {deployment_id}")
    assert_one_line_error(pause, f"deployment {deployment_id} is being aborted")
    assert sqlite_store.control_state(deployment_id).requested is ControlAction.ABORT


def test_requests_to_a_finished_or_an_unknown_deployment_are_refused(
    sqlite_store: Store, sqlite_url: str
) -> None:
    deployment_id = _running(sqlite_store)
    sqlite_store.finish_deployment(deployment_id, DeploymentStatus.SUCCEEDED, datetime.now(UTC))
    for command in (f"pause {deployment_id} --json", f"abort {deployment_id} --yes"):
        assert_one_line_error(
            deploy(sqlite_url, command), f"deployment {deployment_id} has already finished (succeeded)"
        )
    assert sqlite_store.control_state(deployment_id).requested is None

    unknown = deploy(sqlite_url, "resume d-19990101-0000-dead")
    assert_one_line_error(unknown, "no deployment d-19990101-0000-dead")


def test_resume_of_a_deployment_whose_controller_died_goes_to_the_takeover(
    sqlite_store: Store, sqlite_url: str
) -> None:
    deployment_id = _running(sqlite_store, pid=_dead_pid())
    # A pause is still recorded, with a warning that nobody is there to act on it.
    paused = deploy(sqlite_url, f"pause {deployment_id}")
    assert paused.exit_code == 0, paused.stderr
    assert f"warning: the controller of {deployment_id} looks dead (pid " in paused.stderr
    assert f"`deploy resume {deployment_id}` takes it over" in paused.stderr

    # status says so, for the deployment and in the list of the latest ones.
    latest = deploy(sqlite_url, "status --json").json()["deployments"]
    assert [(d["id"], d["requested_control"], d["controller"]["alive"]) for d in latest] == [
        (deployment_id, "pause", False)
    ]
    assert latest[0]["controller"]["reason"].startswith("pid ")

    # resume does not record a request nobody would read: it goes to the takeover, which
    # needs the options the deployment was started with (this hand-made one kept none; the
    # takeover itself is tested end to end in tests/e2e/test_control.py).
    resumed = deploy(sqlite_url, f"resume {deployment_id}")
    assert_one_line_error(resumed, f"deployment {deployment_id} kept no options to resume it with")
    assert sqlite_store.control_state(deployment_id).requested is ControlAction.PAUSE


def test_abort_on_a_terminal_asks_first(sqlite_store: Store, sqlite_url: str) -> None:
    deployment_id = _running(sqlite_store)
    answer, terminal = pty.openpty()
    try:
        env = {**os.environ, "TZ": "UTC"}
        child = subprocess.Popen(
            [DEPLOY, "abort", deployment_id, "--db", sqlite_url],
            stdin=terminal,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
        )
        try:
            _wait_for_prompt(child)
            os.write(answer, b"n\n")
            stdout, stderr = child.communicate(timeout=CLI_TIMEOUT)
        finally:
            if child.poll() is None:
                child.kill()
                child.wait()
    finally:
        os.close(answer)
        os.close(terminal)
    assert child.returncode == 1
    assert (
        f"Abort {deployment_id}, the push of webapp 2.0 to canary (0 of 3 hosts started)?" in stderr.decode()
    )
    assert stdout == b""
    assert sqlite_store.control_state(deployment_id).requested is None


def _wait_for_prompt(child: subprocess.Popen[bytes]) -> None:
    """Wait until the child asks its question on stderr (or dies), for at most CLI_TIMEOUT."""
    assert child.stderr is not None
    deadline = time.monotonic() + CLI_TIMEOUT
    while time.monotonic() < deadline and child.poll() is None:
        # The prompt is the child's first output; once stderr is readable, the question is out.
        readable, _, _ = select.select([child.stderr], [], [], 0.1)
        if readable:
            return
    raise AssertionError("deploy abort never asked for confirmation")


# ---- render: the documents' shapes, and the text, without a store -----------------

NOW = datetime(2026, 3, 3, 12, 0, tzinfo=UTC)


def _view(**changes: Any) -> DeploymentView:
    hosts = (
        HostDeploymentView(
            name="a1",
            datacenter="dc-a",
            wave=1,
            status=HostStatus.SUCCEEDED,
            step=Step.PRUNE,
            started_at=T3,
            finished_at=T3 + timedelta(seconds=40),
            error=None,
            exit_status=0,
            output_tail="",
            version="1.2",
            previous_version="1.1",
        ),
        HostDeploymentView(
            name="b1",
            datacenter="dc-b",
            wave=1,
            status=HostStatus.FAILED,
            step=Step.VALIDATE,
            started_at=T3,
            finished_at=T3 + timedelta(minutes=1, seconds=5),
            error="validate exited 7\nafter 3 attempts",
            exit_status=7,
            output_tail="HTTP 503",
            version="1.2",
            previous_version="1.1",
        ),
    )
    values: dict[str, Any] = {
        "id": "d-20260303-1000-ab12",
        "app": "webapp",
        "environment": "production",
        "kind": DeploymentKind.PUSH,
        "version": "1.2",
        "previous_version": "1.1",
        "status": DeploymentStatus.FAILED,
        "started_by": "alice",
        "started_from": "build-1",
        "pid": 4242,
        "started_at": T3,
        "finished_at": T3 + timedelta(minutes=2, seconds=3),
        "heartbeat_at": T3 + timedelta(minutes=2),
        "spec_sha256": SHA,
        "reason": "1 of 2 hosts failed",
        "requested_control": None,
        "control_requested_at": None,
        "control_requested_by": None,
        "counts": {**dict.fromkeys(HostStatus, 0), HostStatus.SUCCEEDED: 1, HostStatus.FAILED: 1},
        "hosts": hosts,
    }
    return DeploymentView(**{**values, **changes})


def test_deployment_json_has_the_documented_fields() -> None:
    document = render.deployment_json(_view(), with_hosts=True)
    assert {
        "id",
        "app",
        "environment",
        "kind",
        "version",
        "previous_version",
        "status",
        "started_by",
        "started_at",
        "finished_at",
        "counts",
        "hosts",
    } <= set(document)
    assert document["kind"] == "push" and document["status"] == "failed"
    assert document["started_at"] == "2026-03-03T10:00:00+00:00"
    assert document["counts"] == {
        "pending": 0,
        "running": 0,
        "succeeded": 1,
        "failed": 1,
        "unreachable": 0,
        "skipped": 0,
        "aborted": 0,
        "not_started": 0,
        "unknown": 0,
    }
    assert document["hosts"][1] == {
        "name": "b1",
        "datacenter": "dc-b",
        "wave": 1,
        "status": "failed",
        "step": "validate",
        "started_at": "2026-03-03T10:00:00+00:00",
        "finished_at": "2026-03-03T10:01:05+00:00",
        "error": "validate exited 7\nafter 3 attempts",
        "exit_status": 7,
        "version": "1.2",
        "previous_version": "1.1",
        "output_tail": "HTTP 503",
        "note": None,
        "staged": False,
    }
    json.dumps(document)  # every value is JSON as it is
    listed = render.deployments_json([_view()])
    assert list(listed) == ["deployments"]
    assert "hosts" not in listed["deployments"][0]
    with_hosts_only = {"hosts", "rollback"}  # a deployment's own view: its hosts and its automatic rollback
    assert listed["deployments"][0] == {k: v for k, v in document.items() if k not in with_hosts_only}
    assert document["rollback"] is None and document["rollback_of"] is None


def test_deployment_json_tells_whether_a_running_controller_is_alive() -> None:
    running = _view(status=DeploymentStatus.RUNNING, finished_at=None)
    document = render.deployment_json(
        running, with_hosts=False, controller=Liveness(False, "no heartbeat for 5m")
    )
    assert document["finished_at"] is None
    assert document["controller"] == {"alive": False, "reason": "no heartbeat for 5m"}


def test_hosts_versions_and_host_history_json() -> None:
    interval = VersionInterval("a1", "dc-a", "1.1", T2, T3, "d-2")
    assert render.hosts_json(
        "webapp", "production", at=NOW, version="1.1", running=[interval], retired={"a1": RETIRED_AT}
    ) == {
        "app": "webapp",
        "environment": "production",
        "at": "2026-03-03T12:00:00+00:00",
        "version": "1.1",
        "hosts": [
            {
                "name": "a1",
                "datacenter": "dc-a",
                "version": "1.1",
                "since": "2026-03-02T10:00:00+00:00",
                "until": "2026-03-03T10:00:00+00:00",
                "deployment": "d-2",
                "retired_at": "2026-03-03T11:00:00+00:00",
            }
        ],
    }
    assert render.versions_json("webapp", "production", at=NOW, versions=[("1.1", 4), ("1.2", 2)]) == {
        "app": "webapp",
        "environment": "production",
        "at": "2026-03-03T12:00:00+00:00",
        "versions": [{"version": "1.1", "host_count": 4}, {"version": "1.2", "host_count": 2}],
    }
    history_document = render.host_history_json("webapp", "production", "a1", [interval])
    assert history_document["host"] == "a1"
    assert history_document["versions"] == [
        {
            "version": "1.1",
            "since": "2026-03-02T10:00:00+00:00",
            "until": "2026-03-03T10:00:00+00:00",
            "deployment": "d-2",
        }
    ]


def test_control_json() -> None:
    state = ControlState("d-1", DeploymentStatus.RUNNING, ControlAction.PAUSE, NOW, "bob@ops-1")
    assert render.control_json(state) == {
        "id": "d-1",
        "status": "running",
        "requested": "pause",
        "requested_at": "2026-03-03T12:00:00+00:00",
        "requested_by": "bob@ops-1",
    }


def test_tables_align_columns_without_trailing_blanks() -> None:
    assert wording.format_table(
        ["HOST", "VERSION", "NOTE"], [["a1", "1.10", ""], ["web-b2", "2", "retired"]]
    ) == [
        "HOST    VERSION  NOTE",
        "a1      1.10",
        "web-b2  2        retired",
    ]


def test_deployment_lines_show_local_times_errors_on_one_line_and_counts() -> None:
    lines = render.deployment_lines(_view(), now=NOW, tz=UTC)
    assert lines[:5] == [
        "d-20260303-1000-ab12  push of webapp 1.2 to production (was 1.1): failed",
        "  started    2026-03-03 10:00:00 UTC (2h ago) by alice on build-1 (pid 4242)",
        "  finished   2026-03-03 10:02:03 UTC (1h 57m ago), after 2m 3s",
        "  reason     1 of 2 hosts failed",
        "  hosts      1 succeeded, 1 failed (2 in all)",
    ]
    header, _a1, b1 = lines[-3:]
    assert header.split() == ["WAVE", "HOST", "DATACENTER", "STATUS", "STEP", "STARTED", "FINISHED", "ERROR"]
    assert b1.split()[:7] == ["1", "b1", "dc-b", "failed", "validate", "10:00:00", "10:01:05"]
    assert b1.endswith("  validate exited 7 after 3 attempts")
    assert b1.index("failed") == header.index("STATUS")  # the columns line up


def test_empty_answers_are_said_plainly() -> None:
    assert render.hosts_lines(
        "webapp", "production", at=T1, now=NOW, tz=UTC, version="9.9", running=[], retired={}
    ) == ["no host of webapp in production ran 9.9 at 2026-03-01 10:00:00 UTC"]
    assert render.versions_lines("webapp", "production", at=None, tz=UTC, versions=[]) == [
        "no host of webapp in production runs any recorded version now"
    ]
    assert render.deployments_lines([], now=NOW, tz=UTC, empty="no deployments of webapp") == [
        "no deployments of webapp"
    ]
    assert render.host_history_lines("webapp", "production", "a9", [], now=NOW, tz=UTC) == [
        "no version of webapp is recorded on a9 in production"
    ]


# ---- TIME on the command line -------------------------------------------------------


def test_time_option_reads_relative_and_zoneless_times() -> None:
    berlin = ZoneInfo("Europe/Berlin")
    option = TimeParam(clock=lambda: NOW, zone=berlin)
    assert option.convert("3h ago", None, None) == NOW - timedelta(hours=3)
    assert option.convert("2026-07-01 12:00", None, None) == datetime(2026, 7, 1, 10, 0, tzinfo=UTC)  # CEST
    with pytest.raises(click.BadParameter, match="ISO 8601"):
        option.convert("next friday", None, None)


def test_the_local_zone_follows_daylight_saving_time(monkeypatch: pytest.MonkeyPatch) -> None:
    """Summer and winter times read in this machine's zone, whatever the season today."""
    monkeypatch.setenv("TZ", "Europe/Berlin")
    time.tzset()
    try:
        option = TimeParam(clock=lambda: NOW, zone=LOCAL)
        assert option.convert("2026-07-01 12:00", None, None) == datetime(2026, 7, 1, 10, 0, tzinfo=UTC)
        assert option.convert("2026-01-15 12:00", None, None) == datetime(2026, 1, 15, 11, 0, tzinfo=UTC)
    finally:
        monkeypatch.undo()
        time.tzset()
