"""A connection that drops mid-hook: the host is `unknown` until a probe reads its outcome.

The host's driver carries on by itself and records how it ended on the host. On the
OpenSSH fleet only the per-connection sshd processes are killed (the host stays up), so
the probe the controller makes before the deployment ends finds the answer. On the lab
the host goes down (connection refused), so the deployment ends with it `unknown`, and
`deploy reconcile` learns the truth once it is back.
"""

from __future__ import annotations

import json

import pytest

from tests.e2e.support import App, at_step, wait_until


def hosts_on(app: App, version: str) -> set[str]:
    found = app.deploy_json("hosts", "--app", app.name, "--env", "e2e", "--version", version)
    return {h["name"] for h in found["hosts"]}


def test_a_dropped_connection_is_unknown_until_the_host_says_how_it_ended(
    app: App, request: pytest.FixtureRequest
) -> None:
    app.deploy("push", str(app.spec), "--yes", check=0)
    victim = app.fleet.hosts[0].name  # in wave 1
    app.fault(victim, "slow", "3")  # its start hook sleeps 3 s: time to cut the connection
    pushing = app.popen("push", str(app.spec), "--version", "2.0", "--yes", "--json")
    try:
        assert wait_until(lambda: at_step(app, victim, "start"), timeout=60)
        if app.fleet.kind == "openssh":
            assert request.getfixturevalue("sshd_fleet").cut_sessions(victim)
        else:
            request.getfixturevalue("lab12").break_host(victim, "down")
        assert pushing.wait(timeout=120) == 0  # one unknown host is within the budget of 2
    finally:
        if pushing.poll() is None:
            pushing.kill()
            pushing.wait()
    log = (app.spec.parent / "background.log").read_text()
    pushed = json.loads(next(line for line in log.splitlines() if line.startswith("{")))
    host = next(h for h in pushed["hosts"] if h["name"] == victim)
    assert "lost the connection" in host["error"]

    if app.fleet.kind == "openssh":
        # Up all along: the probe before the end found the driver's own outcome.
        assert (pushed["status"], host["status"]) == ("succeeded", "succeeded")
        assert "probe: it succeeded" in host["note"] and host["version"] == "2.0"
    else:
        assert (pushed["status"], host["status"]) == ("succeeded", "unknown")
        assert pushed["counts"]["unknown"] == 1 and "unreachable" in host["note"]
        planned = app.deploy_json("plan", str(app.spec), "--version", "2.1")
        assert planned["unknown"] == [victim]  # plan touches no host: it says so instead
        lab = request.getfixturevalue("lab12")
        still = app.deploy("reconcile", pushed["id"], check=1)  # still down: still unknown
        assert f"{victim}: unknown" in still.stdout
        # A spec that moved away does not block the app: its deployment is passed over.
        moved = app.spec.rename(app.spec.with_name("moved.yaml"))
        passed_over = app.deploy_json("reconcile", "--app", app.name)["hosts"]
        assert [h["host"] for h in passed_over] == [victim]
        assert "not asked: its spec cannot be read" in passed_over[0]["note"]
        moved.rename(app.spec)
        lab.fix(victim)
        # Its driver went on by itself; wait for it (bounded), then ask.
        assert wait_until(lambda: app.hook_lines(victim)[-1][:2] == ["validate", "2.0"], timeout=30)
        learnt = app.deploy_json("reconcile", "--app", app.name, "--env", "e2e")
        assert [(h["host"], h["status"], h["version"]) for h in learnt["hosts"]] == [
            (victim, "succeeded", "2.0")
        ]
        after = app.deploy_json("status", pushed["id"])
        assert after["status"] == "succeeded"  # a finished deployment's status is never rewritten
        row = next(h for h in after["hosts"] if h["name"] == victim)
        assert row["status"] == "succeeded" and "probe: it succeeded" in row["note"]
        assert app.deploy_json("reconcile", "--app", app.name)["hosts"] == []
    # The store says what `current` says on every host.
    assert hosts_on(app, "2.0") == {h.name for h in app.fleet.hosts}
    assert all(app.current(h.name) == "2.0" for h in app.fleet.hosts)


def test_a_host_that_hangs_mid_hook_is_unknown_until_the_next_push_asks_it(
    app: App, request: pytest.FixtureRequest
) -> None:
    """The lab host hangs (its sessions freeze); the OpenSSH host's sshd and sessions get SIGSTOP.

    Keepalives (every 1 s here) find the connection dead; the host is `unknown`, the
    probe before the end cannot reach it either, and the next push, which probes the
    app's unknown hosts before planning, learns the truth once it is back.
    """
    app.spec.write_text(app.spec.read_text() + "ssh: {keepalive: 1s, connect_timeout: 2s}\n")
    app.deploy("push", str(app.spec), "--yes", check=0)
    victim = app.fleet.hosts[0].name
    app.fault(victim, "slow", "2")
    if app.fleet.kind == "openssh":
        fleet = request.getfixturevalue("sshd_fleet")
        hang, heal = (lambda: fleet.freeze(victim)), (lambda: fleet.thaw(victim))
    else:
        lab = request.getfixturevalue("lab12")
        hang, heal = (lambda: lab.break_host(victim, "hang")), (lambda: lab.fix(victim))
    pushing = app.popen("push", str(app.spec), "--version", "2.0", "--yes", "--json")
    try:
        assert wait_until(lambda: at_step(app, victim, "start"), timeout=60)
        hang()
        assert pushing.wait(timeout=120) == 0  # one unknown host is within the budget of 2
    finally:
        heal()
        if pushing.poll() is None:
            pushing.kill()
            pushing.wait()
    log = (app.spec.parent / "background.log").read_text()
    pushed = json.loads(next(line for line in log.splitlines() if line.startswith("{")))
    host = next(h for h in pushed["hosts"] if h["name"] == victim)
    assert host["status"] == "unknown", host
    # Back again: its driver went on by itself. The next push probes it before planning,
    # finds it on 2.0, and so has nothing left to do.
    assert wait_until(lambda: app.hook_lines(victim)[-1][:2] == ["validate", "2.0"], timeout=60)
    again = app.deploy_json("push", str(app.spec), "--version", "2.0", "--yes")
    assert again["status"] == "unchanged" and again["unknown"] == []
    row = next(h for h in app.deploy_json("status", pushed["id"])["hosts"] if h["name"] == victim)
    assert (row["status"], row["version"]) == ("succeeded", "2.0") and "probe: it succeeded" in row["note"]
    assert hosts_on(app, "2.0") == {h.name for h in app.fleet.hosts}
