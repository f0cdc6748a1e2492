"""The SQLite store deleted during a push: the controller notices, starts no new host, exits 3."""

from __future__ import annotations

import secrets
from pathlib import Path

import pytest

from deployer.store import open_store
from tests.e2e.conftest import fleet_of
from tests.e2e.support import make_app, wait_until


def test_a_store_removed_mid_push_stops_it_with_the_store_lost_code(
    request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    db = tmp_path / "state.db"
    app = make_app(tmp_path, fleet_of(request, "lab"), f"sqlite:///{db}", f"lost{secrets.token_hex(3)}")
    app.deploy("push", str(app.spec), "--yes", check=0)
    plan = app.deploy_json("plan", str(app.spec), "--version", "2.0")
    later = [h["name"] for wave in plan["waves"][1:] for h in wave["hosts"]]
    victim = plan["waves"][0]["hosts"][0]["name"]
    app.fault(victim, "slow", "2")  # wave 1 in flight for 2 s
    pushing = app.popen("push", str(app.spec), "--version", "2.0", "--yes")
    try:

        def in_flight() -> bool:
            with open_store(app.db_url) as store:
                running = store.running_deployment(app.name, "e2e")
                return running is not None and any(h.name == victim and h.step for h in running.hosts)

        assert wait_until(in_flight, timeout=60)
        for path in tmp_path.glob("state.db*"):  # the file and its WAL: gone from under it
            path.unlink()
        assert pushing.wait(timeout=120) == 3
    finally:
        if pushing.poll() is None:
            pushing.kill()
            pushing.wait()
        app.clear_faults()
    log = (tmp_path / "background.log").read_text()
    assert "Traceback" not in log
    assert f"error: the state store {db} was removed or replaced while this command ran" in log
    # No host past wave 1 started: they run 1.0 and never saw a 2.0 hook.
    for name in later:
        assert app.current(name) == "1.0"
        assert all(line[1] == "1.0" for line in app.hook_lines(name))

    # Wave 1's hosts were told to stop, or finish by themselves; either way their own record
    # says what their `current` is.
    def last_switch(name: str) -> str:
        return (app.target(name) / "revisions.log").read_text().splitlines()[-1].split("\t")[1]

    wave_one = [h["name"] for h in plan["waves"][0]["hosts"]]
    assert wait_until(lambda: all(last_switch(n) == app.current(n) for n in wave_one), timeout=30)
