"""The inventory changing under the deployer: ``sync --watch``, hosts joining a push, hosts leaving."""

from __future__ import annotations

import signal
from datetime import datetime

from deployer.core.results import DeploymentStatus, HostStatus
from tests.e2e.support import running, wait_until
from tests.fleet.support import ChangingFleet, deployment, json_lines, steps_of

INSTALL = ["before_install", "after_install", "start", "validate"]


def test_watch_syncs_hosts_as_they_appear_survives_a_broken_inventory_and_stops_gently(
    lab_app: ChangingFleet,
) -> None:
    app = lab_app.app
    app.deploy("push", str(app.spec), "--yes", check=0)
    log = app.spec.parent / "background.log"
    watch = app.popen("sync", str(app.spec), "--watch", "--interval", "0.5s", "--json", "--rounds", "400")
    try:

        def rounds() -> list[dict[str, object]]:
            return json_lines(log)

        assert wait_until(lambda: len(rounds()) >= 1, timeout=30)
        assert rounds()[0]["status"] == "unchanged" and rounds()[0]["host_count"] == 12

        first, *others = lab_app.extras
        lab_app.add(first)  # appears while it runs: brought up to date within a round
        assert wait_until(lambda: any(r["behind"] == [first] for r in rounds()), timeout=30)
        synced = next(r for r in rounds() if r["behind"] == [first])
        assert synced["status"] == "succeeded" and synced["version"] == "1.0"
        assert app.current(first) == "1.0" and steps_of(app, first) == INSTALL

        lab_app.break_inventory()  # briefly unreadable: said, and the last good one stands
        assert wait_until(lambda: rounds()[-1]["note"] is not None, timeout=30)
        assert "the last good one (13 hosts) stands" in str(rounds()[-1]["note"])
        assert watch.poll() is None

        # Four more hosts, slow to start: a sync of two waves (3 + 1); SIGTERM in wave 1.
        joining = others[:4]
        for name in joining:
            app.fault(name, "slow", "3")
        lab_app.write([*lab_app.listed, *joining])

        def wave_one_in_flight() -> bool:
            view = running(app)
            return view is not None and any(h.status is HostStatus.RUNNING for h in view.hosts)

        assert wait_until(wave_one_in_flight, timeout=30)
        sync_id = running(app).id  # type: ignore[union-attr]
        watch.send_signal(signal.SIGTERM)
        assert watch.wait(timeout=60) == 0
    finally:
        if watch.poll() is None:
            watch.kill()
            watch.wait()
    stopped = deployment(app, sync_id)
    assert stopped.status is DeploymentStatus.ABORTED
    by_status: dict[HostStatus, list[str]] = {}
    for host in stopped.hosts:
        by_status.setdefault(host.status, []).append(host.name)
    assert len(by_status[HostStatus.SUCCEEDED]) == 3 and len(by_status[HostStatus.NOT_STARTED]) == 1
    for name in by_status[HostStatus.SUCCEEDED]:  # in flight at the signal: finished
        assert app.current(name) == "1.0" and steps_of(app, name) == INSTALL
    for name in by_status[HostStatus.NOT_STARTED]:
        assert app.current(name) is None and steps_of(app, name) == []
    last = rounds()[-1]
    assert last["id"] == sync_id and last["status"] == "aborted"
    assert "SIGTERM: stopping" in log.read_text()


def test_a_host_added_while_a_push_runs_joins_it_as_a_later_wave(lab_app: ChangingFleet) -> None:
    app = lab_app.app
    for name in lab_app.listed:
        app.fault(name, "slow", "1")  # 4 waves of at least a second each
    push = app.popen("push", str(app.spec), "--yes")
    try:

        def wave_one_started() -> bool:
            view = running(app)
            return view is not None and any(h.wave == 1 and h.started_at is not None for h in view.hosts)

        assert wait_until(wave_one_started, timeout=30)
        push_id = running(app).id  # type: ignore[union-attr]
        newcomer = lab_app.extras[0]
        lab_app.add(newcomer)
        assert push.wait(timeout=120) == 0
    finally:
        if push.poll() is None:
            push.kill()
            push.wait()
    view = deployment(app, push_id)
    assert view.status is DeploymentStatus.SUCCEEDED and view.host_count == 13
    joined = next(h for h in view.hosts if h.name == newcomer)
    assert joined.wave == 5 and joined.status is HostStatus.SUCCEEDED and joined.version == "1.0"
    assert min(h.wave or 0 for h in view.hosts if h.name != newcomer) == 1
    assert app.current(newcomer) == "1.0" and steps_of(app, newcomer, push_id) == INSTALL
    assert (
        f"1 host joined the inventory, as wave 5: {newcomer}"
        in (app.spec.parent / "background.log").read_text()
    )


def test_a_host_gone_from_the_inventory_is_retired_and_keeps_its_history(lab_app: ChangingFleet) -> None:
    app = lab_app.app
    app.deploy("push", str(app.spec), "--yes", check=0)
    before_push = datetime.now().astimezone().isoformat()
    gone, later = lab_app.listed[3], lab_app.listed[7]
    lab_app.remove(gone)

    second = app.deploy_json("push", str(app.spec), "--version", "1.1", "--yes")

    assert second["status"] == "succeeded" and gone not in {h["name"] for h in second["hosts"]}
    assert app.current(gone) == "1.0" and all(line[1] == "1.0" for line in app.hook_lines(gone))
    history = app.deploy_json("history", "--app", app.name, "--env", "e2e", "--host", gone)
    assert history["retired_at"] is not None
    assert [(v["version"], v["until"] is not None) for v in history["versions"]] == [("1.0", True)]
    earlier = app.deploy_json("hosts", "--app", app.name, "--env", "e2e", "--at", before_push)
    retired = {h["name"]: h["retired_at"] for h in earlier["hosts"]}
    assert retired[gone] is not None and all(retired[n] is None for n in retired if n != gone)
    now = app.deploy_json("hosts", "--app", app.name, "--env", "e2e")
    assert gone not in {h["name"] for h in now["hosts"]} and len(now["hosts"]) == 11
    shown = app.deploy("history", "--app", app.name, "--env", "e2e", "--host", gone, check=0)
    assert "retired" in shown.stdout

    lab_app.remove(later)  # a sync with nothing to deploy still notices a host that left
    idle = app.deploy("sync", str(app.spec), "--yes", check=0)
    assert "nothing to do: all 10 hosts run 1.1" in idle.stdout
    assert f"retired (gone from the inventory): {later}" in idle.stdout
    assert app.deploy_json("history", "--app", app.name, "--env", "e2e", "--host", later)["retired_at"]
