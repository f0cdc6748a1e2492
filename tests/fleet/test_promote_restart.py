"""``deploy promote`` between a spec's environments and ``deploy restart``, end to end on the lab."""

from __future__ import annotations

from collections import Counter

from tests.e2e.support import HOOK_SCRIPT
from tests.fleet.support import ChangingFleet, steps_of

SPEC = """app: {app}
version: "1.0"
environment: staging
fleet: staging.yaml
artifact: app/
target: ~/apps/{app}
keep_releases: 3
strategy: {{batch: [3], stripe: datacenter, max_failures: 1, bake: 0s}}
hooks:
  stop: scripts/hook.sh stop
  before_install: scripts/hook.sh before_install
  after_install: scripts/hook.sh after_install
  start: scripts/hook.sh start
  validate: scripts/hook.sh validate
  timeout: 30s
environments:
  production:
    fleet: production.yaml
    strategy: {{batch: [2]}}
"""


def versions(app, environment: str) -> dict[str, int]:  # type: ignore[no-untyped-def]
    found = app.deploy_json("versions", "--app", app.name, "--env", environment)
    return {v["version"]: v["host_count"] for v in found["versions"]}


def test_promote_takes_what_succeeded_in_full_in_staging_and_refuses_anything_less(
    lab_app: ChangingFleet,
) -> None:
    app = lab_app.app
    work = app.spec.parent
    by_dc = app.fleet.by_datacenter()
    staging = [h.name for hosts in by_dc.values() for h in hosts[:2]]
    production = [h.name for hosts in by_dc.values() for h in hosts[2:]]
    lab_app.write_other(work / "staging.yaml", staging)
    lab_app.write_other(work / "production.yaml", production)
    app.spec.write_text(SPEC.format(app=app.name))
    assert (work / "app" / "scripts" / "hook.sh").read_text() == HOOK_SCRIPT

    first = app.deploy_json("push", str(app.spec), "--yes")
    assert first["environment"] == "staging" and sorted(h["name"] for h in first["hosts"]) == sorted(staging)
    (work / "app" / "index.html").write_text("<h1>a later build</h1>\n")

    promoted = app.deploy_json("promote", str(app.spec), "--from", "staging", "--to", "production", "--yes")

    assert promoted["environment"] == "production" and promoted["version"] == "1.0"
    assert promoted["status"] == "succeeded" and promoted["kind"] == "push"
    assert sorted(h["name"] for h in promoted["hosts"]) == sorted(production)
    assert sorted({h["wave"] for h in promoted["hosts"]}) == [1, 2, 3]  # production's own batch: 2
    for name in production:  # the artifact 1.0 was deployed from, not today's build
        assert (app.target(name) / "current" / "index.html").read_text() == f"<h1>{app.name}</h1>\n"
    assert versions(app, "production") == {"1.0": 6} and versions(app, "staging") == {"1.0": 6}

    # A halted deployment in staging: refused, one line, production untouched.
    for name in staging[:2]:
        app.fault(name, "validate")
    app.deploy("push", str(app.spec), "--version", "2.0", "--yes", check=1)
    refused = app.deploy(
        "promote", str(app.spec), "--from", "staging", "--to", "production", "--yes", check=1
    )
    assert refused.stderr.count("\n") == 1 and refused.stderr.startswith("error: staging's latest deployment")
    assert "(push of 2.0) halted" in refused.stderr and "Traceback" not in refused.stderr
    # Succeeded, but not on every host (1 failure, within the budget of 1): refused too.
    app.clear_faults()
    app.fault(staging[0], "validate")
    app.deploy("push", str(app.spec), "--version", "2.1", "--yes", check=0)
    partial = app.deploy(
        "promote", str(app.spec), "--from", "staging", "--to", "production", "--yes", check=1
    )
    assert "succeeded but 1 of its hosts failed" in partial.stderr
    assert versions(app, "production") == {"1.0": 6}
    # Fixed in staging (the failed host deployed again): now 2.1 goes.
    app.clear_faults()
    app.deploy("push", str(app.spec), "--version", "2.1", "--yes", check=0)
    done = app.deploy_json("promote", str(app.spec), "--from", "staging", "--to", "production", "--yes")
    assert done["version"] == "2.1" and done["status"] == "succeeded"
    assert versions(app, "production") == {"2.1": 6}
    history = app.deploy_json("history", "--app", app.name, "--env", "production")
    assert [d["version"] for d in history["deployments"]] == ["2.1", "1.0"]


def test_restart_runs_stop_start_validate_only_halts_like_a_push_and_keeps_the_versions(
    lab_app: ChangingFleet,
) -> None:
    app = lab_app.app
    app.deploy("push", str(app.spec), "--yes", check=0)
    newcomer = lab_app.extras[0]  # listed but never deployed: nothing to restart there
    lab_app.add(newcomer)
    listed = [n for n in lab_app.listed if n != newcomer]
    intervals = {
        name: app.deploy_json("history", "--app", app.name, "--env", "e2e", "--host", name)["versions"]
        for name in listed
    }

    result = app.deploy_json("restart", str(app.spec), "--yes")

    assert result["kind"] == "restart" and result["status"] == "succeeded" and result["version"] == "1.0"
    assert result["reason"] == "12 hosts restarted"
    by_name = {h["name"]: h for h in result["hosts"]}
    assert by_name[newcomer]["status"] == "skipped" and "nothing to restart" in by_name[newcomer]["error"]
    assert steps_of(app, newcomer) == []
    waves: dict[int, list[str]] = {}
    for host in result["hosts"]:
        if host["wave"] is not None:
            waves.setdefault(host["wave"], []).append(host["datacenter"])
    assert [sorted(dcs) for _, dcs in sorted(waves.items())] == [["dc1", "dc2", "dc3"]] * 4
    for name in listed:
        assert steps_of(app, name, result["id"]) == ["stop", "start", "validate"]
        assert app.current(name) == "1.0"
    assert versions(app, "e2e") == {"1.0": 12}
    for name in listed:  # no new interval: the version history did not move
        history = app.deploy_json("history", "--app", app.name, "--env", "e2e", "--host", name)
        assert history["versions"] == intervals[name]

    dc1 = [h.name for h in app.fleet.by_datacenter()["dc1"] if h.name != newcomer]
    for name in dc1:
        app.fault(name, "validate")
    halted = app.deploy_json("restart", str(app.spec), "--yes", check=1)
    assert halted["status"] == "halted" and halted["counts"]["failed"] == 3
    per_wave = Counter(h["wave"] for h in halted["hosts"] if h["status"] == "failed")
    assert sorted(per_wave.items()) == [(1, 1), (2, 1), (3, 1)]
    for host in halted["hosts"]:
        if host["wave"] == 4:  # after the third failure nothing new started
            assert host["status"] == "not_started" and steps_of(app, host["name"], halted["id"]) == []
    assert versions(app, "e2e") == {"1.0": 12}
    assert all(app.current(name) == "1.0" for name in listed)


def test_bad_requests_are_one_line_errors(lab_app: ChangingFleet) -> None:
    app = lab_app.app
    spec = str(app.spec)
    cases = [
        (["sync", spec, "--watch", "--interval", "soon"], 2, "'soon' is not a duration"),
        (["promote", spec, "--from", "e2e", "--to", "e2e", "--yes"], 2, "--from and --to are both e2e"),
        # an environment neither the spec nor the history knows is a typo, not a refusal
        (["promote", spec, "--from", "qa", "--to", "e2e", "--yes"], 2, "--from qa: the spec defines no such"),
        (["restart", spec, "--yes"], 0, "nothing to do: no host of"),
        (["sync", spec, "--yes"], 0, "has succeeded yet: no version to sync to"),
        (["sync", spec, "--limit", "nomatch*", "--yes"], 2, "--limit nomatch* matches no host"),
    ]
    for args, status, expected in cases:
        done = app.deploy(*args, check=status)
        assert expected in done.stdout + done.stderr, (args, done.stdout, done.stderr)
        assert "Traceback" not in done.stderr
    app.spec.write_text(
        app.spec.read_text()
        .replace("  start: scripts/hook.sh start\n", "")
        .replace("  stop: scripts/hook.sh stop\n", "")
        .replace("  validate: scripts/hook.sh validate\n", "")
    )
    hookless = app.deploy("restart", spec, "--yes", check=2)
    assert "hooks: no stop, start or validate hook: a restart would run nothing" in hookless.stderr
