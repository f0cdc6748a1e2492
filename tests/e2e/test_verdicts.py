"""What a deployment concludes is what the hosts back up: statuses, exit codes, rollbacks.

Each test runs the real CLI against the 12-host lab (SQLite) and the 12-host OpenSSH
fleet (PostgreSQL), and checks the verdict against each host's ``current``.
"""

from __future__ import annotations

import json
import signal
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from deployer.store import open_store
from tests.e2e.conftest import fleet_of
from tests.e2e.support import App, at_step, make_app, wait_until


def wave_hosts(plan: dict[str, Any], wave: int, datacenter: str) -> list[str]:
    return [h["name"] for h in plan["waves"][wave - 1]["hosts"] if h["datacenter"] == datacenter]


def test_a_push_where_no_host_succeeded_fails_and_makes_no_version_good(app: App) -> None:
    two = [app.fleet.hosts[0].name, app.fleet.hosts[5].name]
    for name in two:
        app.fault(name, "validate")
    limit = ",".join(two)
    # A budget of 5 allows both failures; it is no permission to call nothing a success.
    app.spec.write_text(app.spec.read_text().replace("max_failures: 2", "max_failures: 5"))
    done = app.deploy("push", str(app.spec), "--limit", limit, "--yes", check=1)
    final = done.stdout.splitlines()[-1]
    assert final.endswith(": failed: no host updated: 2 hosts failed"), done.stdout
    assert "2 hosts in 1 wave, 5 failures allowed" in done.stdout  # counts take their number
    result = app.deploy_json("status", final.split(":")[0])
    assert (result["status"], result["counts"]["failed"], result["counts"]["succeeded"]) == ("failed", 2, 0)
    # Nothing good to sync healthy hosts to, nor to roll back to.
    synced = app.deploy_json("sync", str(app.spec), "--yes")
    assert synced["status"] == "unchanged" and "has succeeded yet" in synced["reason"]
    rollback = app.deploy("rollback", str(app.spec), "--yes", check=2)
    assert "no earlier good version" in rollback.stderr
    assert all(app.current(host.name) is None for host in app.fleet.hosts if host.name not in two)


def test_on_halt_rollback_sends_each_switched_host_back_to_what_it_ran(app: App) -> None:
    app.spec.write_text(
        app.spec.read_text()
        .replace("max_failures: 2", "max_failures: 1")
        .replace("bake: 0s}", "bake: 0s, on_halt: rollback}")
    )
    app.deploy("push", str(app.spec), "--yes", check=0)  # every host on 1.0
    plan = app.deploy_json("plan", str(app.spec), "--version", "2.0")
    bad = [wave_hosts(plan, 1, "dc1")[0], wave_hosts(plan, 2, "dc1")[0]]  # fail after their switch
    odd = wave_hosts(plan, 1, "dc3")[0]
    app.deploy("push", str(app.spec), "--version", "1.3", "--limit", odd, "--yes", check=0)
    assert app.deploy_json("plan", str(app.spec), "--version", "2.0")["waves"] == plan["waves"]
    for name in bad:
        app.fault(name, "validate")

    pushed = app.deploy("push", str(app.spec), "--version", "2.0", "--yes", check=1)

    # Waves 1 and 2 switched (one failure each: the second is over the budget of 1), 3 and 4 never started.
    switched = [h["name"] for wave in plan["waves"][:2] for h in wave["hosts"]]
    untouched = [h["name"] for wave in plan["waves"][2:] for h in wave["hosts"]]
    final = pushed.stdout.splitlines()[-1]
    push_id = final.split(":")[0]
    assert (
        f": halted: 2 hosts failed, more than the 1 allowed; {len(untouched)} hosts were not touched" in final
    )
    assert f"; rollback restored 4 of 6 switched hosts; {bad[0]}, {bad[1]} failed both" in final, final
    status = app.deploy_json("status", push_id)
    assert status["status"] == "halted" and status["counts"]["not_started"] == len(untouched)
    rollback = status["rollback"]
    assert rollback["status"] == "incomplete" and len(rollback["ids"]) == 2
    assert [d["version"] for d in rollback["deployments"]] == ["1.0", "1.3"]  # the larger group first
    assert all(d["status"] == "succeeded" for d in rollback["deployments"])  # known-bad hosts not counted
    assert sorted(rollback["restored"]) == sorted(set(switched) - set(bad))
    assert rollback["failed_again"] == bad and rollback["not_restored"] == []
    assert rollback["switched_count"] == 6 and rollback["nothing_to_restore"] == []

    # On the hosts: each went back to what it ran, not to what most ran; the rest never moved.
    assert app.current(odd) == "1.3"
    for name in set(switched) - {odd, *bad}:
        assert app.current(name) == "1.0"
    for name in untouched:
        assert app.current(name) == "1.0"
        assert all(line[1] != "2.0" for line in app.hook_lines(name))
    history = app.deploy_json("history", "--app", app.name, "--env", "e2e")["deployments"]
    rollbacks = [d for d in history if d["rollback_of"] == push_id]
    assert sorted(d["id"] for d in rollbacks) == sorted(rollback["ids"])
    assert all(d["kind"] == "rollback" for d in rollbacks)
    # The failed hosts went first in their rollback.
    first = app.deploy_json("status", rollback["ids"][0])
    assert {h["name"] for h in first["hosts"] if h["wave"] == 1} >= set(bad)


def test_a_rollback_to_a_version_the_fleet_never_ran_is_refused_before_any_host(app: App) -> None:
    app.deploy("push", str(app.spec), "--yes", check=0)
    before = app.deploy_json("history", "--app", app.name, "--env", "e2e")["deployments"]
    refused = app.deploy("rollback", str(app.spec), "--to", "0.1", "--yes", check=2)
    assert "--to 0.1: no host of" in refused.stderr and "versions that ran: 1.0" in refused.stderr
    assert app.deploy_json("history", "--app", app.name, "--env", "e2e")["deployments"] == before
    assert all(app.current(host.name) == "1.0" for host in app.fleet.hosts)


@dataclass
class Halting:
    """A lab app on 1.0, max_failures 1, on_halt: rollback, whose push of 2.0 is set to halt:
    validate fails on wave 1's dc1 host (``first``) and wave 2's (``second``, which is slow
    too, so that wave 2 is in flight long enough to act on)."""

    app: App
    plan: dict[str, Any]
    first: str
    second: str

    @property
    def healthy_switched(self) -> set[str]:
        """The hosts of waves 1 and 2 that the rollback should put back on 1.0."""
        switched = {h["name"] for wave in self.plan["waves"][:2] for h in wave["hosts"]}
        return switched - {self.first, self.second}


def halting(request: pytest.FixtureRequest, tmp_path: Path, name: str, slow: str) -> Halting:
    app = make_app(tmp_path, fleet_of(request, "lab"), f"sqlite:///{tmp_path / 's.db'}", name)
    app.spec.write_text(
        app.spec.read_text()
        .replace("max_failures: 2", "max_failures: 1")
        .replace("bake: 0s}", "bake: 0s, on_halt: rollback}")
    )
    app.deploy("push", str(app.spec), "--yes", check=0)
    plan = app.deploy_json("plan", str(app.spec), "--version", "2.0")
    first, second = wave_hosts(plan, 1, "dc1")[0], wave_hosts(plan, 2, "dc1")[0]
    app.fault(first, "validate")
    app.fault(second, "validate")
    app.fault(second, "slow", slow)
    return Halting(app, plan, first, second)


def test_a_controller_killed_before_the_halt_still_rolls_back_once_resumed(
    request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    case = halting(request, tmp_path, "killedhalt", slow="5")  # the controller dies in wave 2
    app, second = case.app, case.second
    pushing = app.popen("push", str(app.spec), "--version", "2.0", "--yes")
    try:
        assert wait_until(lambda: at_step(app, second, "start"), timeout=60)
        pushing.send_signal(signal.SIGKILL)
        pushing.wait(timeout=30)
    finally:
        if pushing.poll() is None:
            pushing.kill()
            pushing.wait()
    with open_store(app.db_url) as store:
        running = store.running_deployment(app.name, "e2e")
    assert running is not None
    app.deploy("resume", running.id, check=1)  # its controller is dead: resume takes it over
    status = app.deploy_json("status", running.id)
    assert status["status"] == "halted"
    assert status["rollback"] is not None and status["rollback"]["restored_count"] == 4
    assert all(app.current(name) == "1.0" for name in case.healthy_switched)
    app.clear_faults()


def test_a_rollback_a_signal_kept_from_running_is_incomplete_and_resume_runs_it(
    request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    case = halting(request, tmp_path, "stoppedhalt", slow="3")
    app, first, second = case.app, case.first, case.second
    pushing = app.popen("push", str(app.spec), "--version", "2.0", "--yes", "--json")
    try:
        assert wait_until(lambda: at_step(app, second, "start"), timeout=60)
        pushing.send_signal(signal.SIGTERM)  # wave 2 finishes, over the budget: a halt
        assert pushing.wait(timeout=120) == 1  # the verdict is the halt's, not the signal's
    finally:
        if pushing.poll() is None:
            pushing.kill()
            pushing.wait()
    log = (tmp_path / "background.log").read_text()
    halted = json.loads(next(line for line in log.splitlines() if line.startswith("{")))
    assert halted["status"] == "halted"
    # The signal kept the rollback from starting: said so, not hidden as "none was due".
    assert halted["rollback"]["status"] == "incomplete" and halted["rollback"]["ids"] == []
    assert len(halted["rollback"]["not_restored"]) == 6
    resumed = app.deploy_json("resume", halted["id"], check=1)
    assert resumed["rollback"]["restored_count"] == 4
    assert resumed["rollback"]["failed_again"] == [first, second]
    assert all(app.current(name) == "1.0" for name in case.healthy_switched)
    app.clear_faults()
