"""Health gates between waves and notifications, end to end: the real CLI on the lab fleet,
gates and webhooks on a real HTTP server on 127.0.0.1 (tests/e2e/http_server.py)."""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from deployer.rollout.notify import EXIT_WAIT
from deployer.store import open_store
from tests.e2e.conftest import fleet_of, store_of
from tests.e2e.http_server import HANG, LocalHttp, serve
from tests.e2e.support import App, make_app

QUERY = "/api/v1/query"
ROLLBACK_EVENTS = ["rollback_started", "rollback_finished"]


@pytest.fixture(scope="module")
def http() -> Iterator[LocalHttp]:
    yield from serve()


@pytest.fixture
def lab_app(request: pytest.FixtureRequest, tmp_path: Path) -> App:
    """Gates and notifications run on the controller's machine, whatever the hosts are: the
    lab fleet and SQLite cover them (the store's gate rows are also tested on PostgreSQL)."""
    fleet = fleet_of(request, "lab")
    return make_app(tmp_path, fleet, store_of(request, "sqlite", tmp_path), f"app{secrets.token_hex(3)}")


def prometheus(value: str) -> dict[str, Any]:
    """What Prometheus' /api/v1/query answers for one series."""
    return {"status": "success", "data": {"resultType": "vector", "result": [{"value": [1765000000, value]}]}}


def configure(app: App, strategy: dict[str, Any], notify: list[dict[str, Any]] | None = None) -> None:
    """Give the app's spec this strategy (and notify sinks); JSON is YAML."""
    lines = app.spec.read_text().splitlines()
    kept = [line for line in lines if not line.startswith(("strategy:", "notify:"))]
    kept.append(f"strategy: {json.dumps(strategy)}")
    if notify is not None:
        kept.append(f"notify: {json.dumps(notify)}")
    app.spec.write_text("\n".join(kept) + "\n")


def by_wave(result: dict[str, Any]) -> dict[int, list[str]]:
    waves: dict[int, list[str]] = {}
    for host in result["hosts"]:
        waves.setdefault(host["wave"], []).append(host["status"])
    return waves


def test_an_after_wave_gate_that_turns_failing_halts_before_the_next_wave_and_rollback_restores(
    lab_app: App, http: LocalHttp, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = lab_app
    app.deploy("push", str(app.spec), "--yes", check=0)  # 1.0 on all 12 hosts
    path = f"{QUERY}-{app.name}"
    http.answer(path, (200, prometheus("0.001")), (200, prometheus("0.034")))
    seen = tmp_path / "gate.log"
    monkeypatch.setenv("GATE_TOKEN", "s3cret")
    configure(
        app,
        {
            "batch": [4],
            "max_failures": 0,
            "on_halt": "rollback",
            "gates": [
                {
                    "name": "sees",
                    "type": "command",
                    "command": 'echo "$DEPLOY_APP $DEPLOY_VERSION $DEPLOY_ENVIRONMENT $DEPLOY_WAVE '
                    f'$(wc -l < "$DEPLOY_HOSTS_FILE")" >> {seen}',
                },
                {
                    "name": "error-rate",
                    "type": "http",
                    "url": http.url(f"{path}?query=job:errors:ratio5m"),
                    "headers": {"Authorization": "Bearer ${GATE_TOKEN}"},
                    "field": "data.result.0.value.1",
                    "max": 0.01,
                    "timeout": "5s",
                },
            ],
        },
        [{"type": "webhook", "url": http.url(f"/ends-{app.name}"), "events": ["halted", *ROLLBACK_EVENTS]}],
    )
    http.answer(f"/ends-{app.name}", (200, b""))
    result = app.deploy_json("push", str(app.spec), "--version", "2.0", "--yes", check=1)

    assert result["status"] == "halted"
    assert result["reason"].startswith("gate error-rate: data.result.0.value.1 0.034 > max 0.01"), result
    waves = by_wave(result)
    assert waves[1] == ["succeeded"] * 4 and waves[2] == ["succeeded"] * 4
    assert waves[3] == ["not_started"] * 4  # no new host started after the gate failed
    gates = {gate["name"]: gate for gate in result["gates"]}
    assert gates["error-rate"]["checks"] == 2 and gates["error-rate"]["passed"] is False
    assert gates["error-rate"]["message"] == "data.result.0.value.1 0.034 > max 0.01"
    assert gates["error-rate"]["checked_at"] is not None
    assert gates["sees"]["checks"] == 2 and gates["sees"]["passed"] is True
    # the gate saw the deployment: the wave just finished, the hosts touched so far
    assert seen.read_text().split("\n")[:2] == [f"{app.name} 2.0 e2e 1 4", f"{app.name} 2.0 e2e 2 8"]
    asked = http.to(path)
    assert len(asked) == 2  # the automatic rollback ran no gate
    assert asked[0].headers["Authorization"] == "Bearer s3cret"
    # on_halt: rollback took the 8 switched hosts back; the 4 of wave 3 never left 1.0
    assert result["rollback"]["status"] == "succeeded" and result["rollback"]["restored_count"] == 8
    for host in app.fleet.hosts:
        assert app.current(host.name) == "1.0"
    shown = app.deploy("status", result["id"], check=0).stdout
    assert "gate       error-rate: FAILED: data.result.0.value.1 0.034 > max 0.01 (2 checks" in shown
    history = app.deploy_json("history", "--app", app.name, "--env", "e2e")
    halted = next(d for d in history["deployments"] if d["id"] == result["id"])
    assert halted["gates"][0]["name"] == "error-rate" and halted["reason"] == result["reason"]
    ends = [request.json() for request in http.to(f"/ends-{app.name}")]
    assert [(d["event"], d["deployment"]["status"]) for d in ends] == [
        ("halted", "halted"),
        ("rollback_started", "running"),
        ("rollback_finished", "succeeded"),
    ]
    assert ends[1]["deployment"]["rollback_of"] == result["id"]
    listed = app.deploy("history", "--app", app.name, "--env", "e2e", check=0).stdout
    assert "halted (gate error-rate)" in listed


def test_a_bake_gate_that_turns_failing_mid_bake_halts_before_the_next_wave(
    lab_app: App, http: LocalHttp
) -> None:
    app = lab_app
    path = f"/synthetic-{app.name}"
    http.answer(path, (200, {}), (200, {}), (500, {"error": "checkout broken"}))
    bake = 60.0
    configure(
        app,
        {
            "batch": [4],
            "bake": f"{bake:g}s",
            "gates": [
                {
                    "name": "synthetic",
                    "type": "http",
                    "url": http.url(path),
                    "when": "bake",
                    "interval": "200ms",
                }
            ],
        },
    )
    started = time.monotonic()
    result = app.deploy_json("push", str(app.spec), "--yes", check=1)
    took = time.monotonic() - started

    assert result["status"] == "halted"
    assert result["reason"].startswith("gate synthetic: HTTP 500, expected 200"), result
    waves = by_wave(result)
    assert waves[1] == ["succeeded"] * 4
    assert waves[2] == ["not_started"] * 4 and waves[3] == ["not_started"] * 4
    assert [(g["name"], g["checks"], g["passed"]) for g in result["gates"]] == [("synthetic", 3, False)]
    assert took < bake  # it halted during the first bake, not after it


def test_a_gate_that_never_answers_fails_at_its_timeout(lab_app: App, http: LocalHttp) -> None:
    app = lab_app
    path = f"/hangs-{app.name}"
    http.answer(path, (HANG, b""))
    configure(
        app,
        {
            "batch": [4],
            "gates": [
                {"name": "slow", "type": "http", "url": http.url(path), "when": "before", "timeout": "1s"}
            ],
        },
    )
    started = time.monotonic()
    result = app.deploy_json("push", str(app.spec), "--yes", check=1)
    took = time.monotonic() - started

    assert result["status"] == "halted"
    assert result["reason"].startswith("gate slow: timed out after 1s"), result
    assert result["counts"]["not_started"] == 12  # checked before wave 1: no host was touched
    assert took < 20


EVENTS_OF_A_PUSH = [
    ("started", None),
    ("wave_started", 1),
    ("wave_finished", 1),
    ("wave_started", 2),
    ("wave_finished", 2),
    ("wave_started", 3),
    ("wave_finished", 3),
    ("succeeded", None),
]


def told(requests: list[Any]) -> list[tuple[str, int | None]]:
    documents = [request.json() if hasattr(request, "json") else request for request in requests]
    return [(d["event"], d["wave"]["index"] if "wave" in d else None) for d in documents]


def test_a_webhook_receives_every_event_of_a_push_in_order(
    lab_app: App, http: LocalHttp, tmp_path: Path
) -> None:
    app = lab_app
    path = f"/hook-{app.name}"
    http.answer(path, (204, b""))
    piped = tmp_path / "events.jsonl"
    configure(
        app,
        {"batch": [4]},
        [
            {"type": "webhook", "url": http.url(path)},
            {"type": "command", "command": f"cat >> {piped}; echo >> {piped}"},
            {"type": "webhook", "url": http.url(f"{path}-ends"), "events": ["succeeded", "failed"]},
        ],
    )
    http.answer(f"{path}-ends", (200, b""))
    result = app.deploy_json("push", str(app.spec), "--yes", check=0)

    received = http.to(path)
    assert told(received) == EVENTS_OF_A_PUSH
    assert all(r.method == "POST" and r.headers["Content-Type"] == "application/json" for r in received)
    last = received[-1].json()
    assert last["deployment"]["id"] == result["id"] and last["deployment"]["status"] == "succeeded"
    assert "hosts" not in last["deployment"] and last["deployment"]["gates"] == []
    assert last["deployment"]["counts"]["succeeded"] == 12 and last["at"]
    lines = [json.loads(line) for line in piped.read_text().splitlines() if line]
    assert told(lines) == EVENTS_OF_A_PUSH
    assert told(http.to(f"{path}-ends")) == [("succeeded", None)]


def test_a_hanging_or_failing_webhook_delays_the_end_by_at_most_the_exit_wait(
    lab_app: App, http: LocalHttp
) -> None:
    app = lab_app
    good, hangs, fails = (f"/{kind}-{app.name}" for kind in ("good", "hangs", "fails"))
    http.answer(good, (200, b""))
    http.answer(hangs, (HANG, b""))
    http.answer(fails, (500, b"oops"))
    configure(
        app,
        {"batch": [4]},
        [
            {"type": "webhook", "url": http.url(hangs), "timeout": "30s"},
            {"type": "webhook", "url": http.url(fails)},
            {"type": "webhook", "url": http.url(good)},
        ],
    )
    done = app.deploy("push", str(app.spec), "--yes", "--json", check=0)
    ended = time.monotonic()
    result = json.loads(done.stdout)

    received = http.to(good)
    assert told(received) == EVENTS_OF_A_PUSH  # the other sinks did not hold it up
    final = received[-1].at
    assert ended - final < EXIT_WAIT + 3  # the bounded wait, plus the process's own exit
    assert len(http.to(hangs)) == 1  # its queue was stuck behind the first event
    assert len(http.to(fails)) >= 2  # retried
    assert "notification started to notify[0] webhook 127.0.0.1" in done.stderr
    assert "dropped" in done.stderr
    with open_store(app.db_url) as store:
        dropped = store.dropped_notifications(result["id"])
    by_sink: dict[str, list[str]] = {}
    for note in dropped:
        by_sink.setdefault(note.sink.split()[0], []).append(note.event)
    assert by_sink["notify[0]"] == [event for event, _ in EVENTS_OF_A_PUSH]  # all of them, in order
    assert by_sink["notify[1]"][-1] == "succeeded" and "notify[2]" not in by_sink
