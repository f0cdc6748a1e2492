"""Ctrl-C and SIGTERM stop a deployment gracefully; a second Ctrl-C leaves at once; a dead
controller's deployment can still be aborted. Controller-side behaviour: the lab fleet.
"""

from __future__ import annotations

import json
import secrets
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from deployer.core.results import Step
from deployer.store import open_store
from tests.e2e.conftest import fleet_of
from tests.e2e.support import App, make_app, wait_until


@pytest.fixture
def lab_app(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[App]:
    name = f"sig{secrets.token_hex(3)}"
    made = make_app(tmp_path, fleet_of(request, "lab"), f"sqlite:///{tmp_path / 'state.db'}", name)
    made.deploy("push", str(made.spec), "--yes", check=0)  # every host on 1.0
    made.fault(made.fleet.hosts[0].name, "slow", "2")  # wave 1 is in flight for 2 s
    yield made
    made.clear_faults()


def start_push(app: App, *args: str) -> subprocess.Popen[bytes]:
    pushing = app.popen("push", str(app.spec), "--version", "2.0", "--yes", *args)
    victim = app.fleet.hosts[0].name

    def in_flight() -> bool:
        # Past its upload: the host has its go, so its driver carries on whatever the
        # controller does now (a host recorded at CONNECT may still be staging).
        with open_store(app.db_url) as store:
            running = store.running_deployment(app.name, "e2e")
            return running is not None and any(
                h.name == victim and h.step not in (None, Step.CONNECT, Step.UPLOAD) for h in running.hosts
            )

    assert wait_until(in_flight, timeout=60)
    return pushing


def finish(process: subprocess.Popen[bytes]) -> int:
    try:
        return process.wait(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def log_of(app: App) -> str:
    return (app.spec.parent / "background.log").read_text()


@pytest.mark.parametrize(
    ("signum", "code", "reason"),
    [(signal.SIGINT, 130, "interrupted by Ctrl-C (SIGINT)"), (signal.SIGTERM, 143, "stopped by SIGTERM")],
)
def test_one_signal_stops_gracefully(lab_app: App, signum: signal.Signals, code: int, reason: str) -> None:
    pushing = start_push(lab_app, "--json")
    pushing.send_signal(signum)
    assert finish(pushing) == code
    log = log_of(lab_app)
    assert "Traceback" not in log and f"{signum.name}: stopping" in log
    result = json.loads(next(line for line in log.splitlines() if line.startswith("{")))
    assert result["status"] == "aborted" and result["reason"].startswith(reason)
    wave = {h["name"]: h["wave"] for h in result["hosts"]}
    for host in result["hosts"]:  # wave 1 was in flight: it finished; the rest never started
        expected = ("succeeded", "2.0") if host["wave"] == 1 else ("not_started", "1.0")
        assert (host["status"], lab_app.current(host["name"])) == expected, host
    assert sorted(set(wave.values())) == [1, 2, 3, 4]


def test_the_timeout_stops_gracefully_with_exit_124(lab_app: App) -> None:
    # wave 1 is held in flight for 2 s by the slow start hook, so the 1 s deadline passes
    # before wave 2 could start (wherever the deadline falls, no later wave starts)
    result = lab_app.deploy_json(
        "push", str(lab_app.spec), "--version", "2.0", "--yes", "--timeout", "1s", check=124
    )
    assert result["status"] == "aborted"
    assert result["reason"].startswith("the deadline passed"), result["reason"]
    waves = {h["wave"] for h in result["hosts"]}
    assert len(waves) > 1
    for host in result["hosts"]:
        if host["wave"] == 1:  # in flight when the deadline passed: finished, not cut short
            assert host["status"] in ("succeeded", "not_started"), host
            assert lab_app.current(host["name"]) == ("2.0" if host["status"] == "succeeded" else "1.0")
        else:
            assert (host["status"], lab_app.current(host["name"])) == ("not_started", "1.0"), host


def test_a_second_ctrl_c_leaves_at_once_and_abort_ends_it_from_here(lab_app: App) -> None:
    pushing = start_push(lab_app)
    pushing.send_signal(signal.SIGINT)
    assert wait_until(lambda: "SIGINT: stopping" in log_of(lab_app), timeout=30)
    pushing.send_signal(signal.SIGINT)
    assert finish(pushing) == 130
    log = log_of(lab_app)
    assert "Traceback" not in log
    with open_store(lab_app.db_url) as store:
        running = store.running_deployment(lab_app.name, "e2e")
    assert running is not None, log  # left running, as it says
    assert f"deployment {running.id} is still running" in log
    assert f"deploy resume {running.id}" in log and f"deploy abort {running.id}" in log

    # Its controller is gone: abort takes it over, settles the host in flight, and ends it.
    ended = lab_app.deploy_json("abort", running.id, "--yes")
    assert ended["status"] == "aborted" and "after its controller died" in ended["reason"]
    victim = lab_app.fleet.hosts[0].name
    row = next(h for h in ended["hosts"] if h["name"] == victim)
    # Its driver finished by itself: the store says what the host says.
    assert (row["status"], row["version"]) == ("succeeded", lab_app.current(victim) or "")
    assert ended["counts"]["not_started"] == 9
    with open_store(lab_app.db_url) as store:
        assert store.running_deployment(lab_app.name, "e2e") is None
