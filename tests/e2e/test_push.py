"""``deploy push`` and ``deploy rollback`` end to end: real SSH hosts, a real store, the real CLI."""

from __future__ import annotations

from datetime import datetime

import pytest

from tests.e2e.conftest import fleet_of, store_of
from tests.e2e.support import App, make_app


def moment(text: str) -> datetime:
    return datetime.fromisoformat(text)


def test_push_stripes_every_wave_across_datacenters(app: App) -> None:
    result = app.deploy_json("push", str(app.spec), "--yes")
    assert result["status"] == "succeeded"
    assert result["counts"]["succeeded"] == 12
    waves: dict[int, list[dict[str, str]]] = {}
    for host in result["hosts"]:
        waves.setdefault(host["wave"], []).append(host)
    assert sorted(waves) == [1, 2, 3, 4]
    for hosts in waves.values():  # batch 3 over 3 datacenters of 4: one host of each per wave
        assert sorted(h["datacenter"] for h in hosts) == ["dc1", "dc2", "dc3"]
    for index in (2, 3, 4):  # seen in what happened: a wave starts after the last one ended
        previous_end = max(moment(h["finished_at"]) for h in waves[index - 1])
        assert min(moment(h["started_at"]) for h in waves[index]) >= previous_end
    for host in app.fleet.hosts:
        assert app.current(host.name) == "1.0"
        steps = [line[0] for line in app.hook_lines(host.name)]
        assert steps == ["before_install", "after_install", "start", "validate"]  # no old release: no stop
        assert (app.target(host.name) / "current" / "index.html").read_text() == f"<h1>{app.name}</h1>\n"


def test_halts_where_the_third_failure_lands_and_leaves_the_rest_untouched(app: App) -> None:
    app.deploy("push", str(app.spec), "--yes", check=0)
    dc1 = [h.name for h in app.fleet.by_datacenter()["dc1"]]
    for name in dc1:  # validate fails on the 4 hosts of dc1; max_failures 2
        app.fault(name, "validate")
    result = app.deploy_json("push", str(app.spec), "--version", "2.0", "--yes", check=1)
    assert result["status"] == "halted"
    by_wave: dict[int, list[dict[str, str]]] = {}
    for host in result["hosts"]:
        by_wave.setdefault(host["wave"], []).append(host)
    # Waves 1 and 2 each lose their dc1 host (2 failed: within budget), wave 3 loses the third.
    assert [sum(h["status"] == "failed" for h in by_wave[w]) for w in (1, 2, 3)] == [1, 1, 1]
    assert all(h["status"] != "succeeded" and h["started_at"] is None for h in by_wave[4])
    assert result["counts"]["failed"] == 3 and result["counts"]["succeeded"] == 6
    failed = [h for h in result["hosts"] if h["status"] == "failed"]
    for host in failed:
        assert host["step"] == "validate" and "exited 3" in (host["error"] or ""), host
    untouched = [h["name"] for h in by_wave[4]]
    for name in untouched:  # on disk and in the store, wave 4 still runs 1.0
        assert app.current(name) == "1.0"
        assert all(line[1] == "1.0" for line in app.hook_lines(name))
    hosts_on_1 = app.deploy_json("hosts", "--app", app.name, "--env", "e2e", "--version", "1.0")
    assert sorted(h["name"] for h in hosts_on_1["hosts"]) == sorted(untouched)
    versions = app.deploy_json("versions", "--app", app.name, "--env", "e2e")
    assert {v["version"]: v["host_count"] for v in versions["versions"]} == {"2.0": 9, "1.0": 3}


def test_rollback_updates_failed_hosts_first_from_the_kept_release(app: App) -> None:
    app.deploy("push", str(app.spec), "--yes", check=0)
    dc2 = [h.name for h in app.fleet.by_datacenter()["dc2"]]
    for name in dc2:
        app.fault(name, "validate")
    halted = app.deploy_json("push", str(app.spec), "--version", "2.0", "--yes", check=1)
    failed = sorted(h["name"] for h in halted["hosts"] if h["status"] == "failed")
    assert len(failed) == 3

    def unpacked(name: str) -> tuple[int, int]:  # a re-upload would unpack a new file: new inode
        stat = (app.target(name) / "releases" / "1.0" / "index.html").stat()
        return stat.st_ino, stat.st_mtime_ns

    kept = {h.name: unpacked(h.name) for h in app.fleet.hosts}
    app.clear_faults()
    result = app.deploy_json("rollback", str(app.spec), "--yes")
    assert result["status"] == "succeeded" and result["kind"] == "rollback" and result["version"] == "1.0"
    first_wave = sorted(h["name"] for h in result["hosts"] if h["wave"] == 1)
    assert first_wave == failed  # the hosts that failed go first
    for host in app.fleet.hosts:
        assert app.current(host.name) == "1.0"
        # the kept release was switched back, not uploaded and unpacked again
        assert unpacked(host.name) == kept[host.name]


def test_history_answers_what_ran_between_deployments(app: App) -> None:
    app.deploy("push", str(app.spec), "--yes", check=0)
    after_first = datetime.now().astimezone().isoformat()
    app.deploy("push", str(app.spec), "--version", "1.1", "--yes", "--limit", "dc:dc1", check=0)
    after_second = datetime.now().astimezone().isoformat()
    app.deploy("push", str(app.spec), "--version", "1.1", "--yes", check=0)
    at_first = app.deploy_json("versions", "--app", app.name, "--env", "e2e", "--at", after_first)
    assert at_first["versions"] == [{"version": "1.0", "host_count": 12}]
    at_second = app.deploy_json("versions", "--app", app.name, "--env", "e2e", "--at", after_second)
    assert {v["version"]: v["host_count"] for v in at_second["versions"]} == {"1.0": 8, "1.1": 4}
    hosts = app.deploy_json(
        "hosts", "--app", app.name, "--env", "e2e", "--version", "1.1", "--at", after_second
    )
    assert sorted(h["datacenter"] for h in hosts["hosts"]) == ["dc1"] * 4
    now = app.deploy_json("versions", "--app", app.name, "--env", "e2e")
    assert now["versions"] == [{"version": "1.1", "host_count": 12}]
    history = app.deploy_json("history", "--app", app.name, "--env", "e2e")
    assert [d["version"] for d in history["deployments"]] == ["1.1", "1.1", "1.0"]
    one = app.fleet.hosts[0].name  # h01/lab01 is in dc1: 1.0, then 1.1 from the second push
    host_history = app.deploy_json("history", "--app", app.name, "--env", "e2e", "--host", one)
    assert [v["version"] for v in host_history["versions"]] == ["1.1", "1.0"]


def test_a_push_of_what_runs_already_does_nothing(app: App) -> None:
    app.deploy("push", str(app.spec), "--yes", check=0)
    again = app.deploy("push", str(app.spec), "--yes", check=0)
    assert "nothing to do" in again.stdout
    assert all(len(app.hook_lines(h.name)) == 4 for h in app.fleet.hosts)


@pytest.mark.parametrize("fleet_kind", ["lab", pytest.param("openssh", marks=pytest.mark.openssh)])
def test_halting_on_sqlite_and_postgresql(request: pytest.FixtureRequest, tmp_path, fleet_kind: str) -> None:  # type: ignore[no-untyped-def]
    """The halt above, on the fleet/store pairs the other tests leave out."""
    store_kind = "postgresql" if fleet_kind == "lab" else "sqlite"
    fleet = fleet_of(request, fleet_kind)
    app = make_app(tmp_path, fleet, store_of(request, store_kind, tmp_path), f"halt{fleet_kind}")
    try:
        app.deploy("push", str(app.spec), "--yes", check=0)
        for host in fleet.by_datacenter()["dc3"]:
            app.fault(host.name, "validate")
        result = app.deploy_json("push", str(app.spec), "--version", "2.0", "--yes", check=1)
        assert result["status"] == "halted"
        assert result["counts"]["failed"] == 3
    finally:
        app.clear_faults()
