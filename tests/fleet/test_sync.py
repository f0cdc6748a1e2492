"""``deploy sync`` end to end: hosts that joined (or fell behind) get the latest good version."""

from __future__ import annotations

import json

from tests.fleet.support import ChangingFleet, forget_kept_artifacts, steps_of

INSTALL = ["before_install", "after_install", "start", "validate"]


def test_sync_brings_exactly_the_new_hosts_to_the_latest_good_version(any_app: ChangingFleet) -> None:
    app = any_app.app
    app.deploy("push", str(app.spec), "--yes", check=0)
    app.deploy("push", str(app.spec), "--version", "1.1", "--yes", check=0)
    # Today's build differs from what 1.1 was deployed from: a sync must send the kept 1.1.
    (app.spec.parent / "app" / "index.html").write_text("<h1>a later build</h1>\n")
    before = {name: len(app.hook_lines(name)) for name in any_app.listed}
    extras = any_app.extras[:3]
    any_app.add(*extras)

    result = app.deploy_json("sync", str(app.spec), "--yes")

    assert result["kind"] == "sync" and result["status"] == "succeeded" and result["version"] == "1.1"
    assert sorted(h["name"] for h in result["hosts"]) == sorted(extras)
    for name in extras:
        assert app.current(name) == "1.1"
        assert [(line[0], line[1]) for line in app.hook_lines(name)] == [(s, "1.1") for s in INSTALL]
        assert (app.target(name) / "current" / "index.html").read_text() == f"<h1>{app.name}</h1>\n"
    for name, count in before.items():  # no other host ran a hook
        assert len(app.hook_lines(name)) == count, name
    versions = app.deploy_json("versions", "--app", app.name, "--env", "e2e")
    assert versions["versions"] == [{"version": "1.1", "host_count": len(any_app.listed)}]

    again = app.deploy("sync", str(app.spec), "--yes", check=0)
    assert again.stdout.startswith(f"nothing to do: all {len(any_app.listed)} hosts run 1.1")
    history = app.deploy_json("history", "--app", app.name, "--env", "e2e")
    assert [d["kind"] for d in history["deployments"]] == ["sync", "push", "push"]


def test_sync_puts_hosts_of_a_halted_push_back_and_fails_clearly_without_the_artifact(
    lab_app: ChangingFleet,
) -> None:
    app = lab_app.app
    app.deploy("push", str(app.spec), "--yes", check=0)
    dc1 = [h.name for h in app.fleet.by_datacenter()["dc1"]]
    for name in dc1:
        app.fault(name, "validate")
    halted = app.deploy_json("push", str(app.spec), "--version", "2.0", "--yes", check=1)
    assert halted["status"] == "halted"
    on_2 = sorted(h["name"] for h in halted["hosts"] if h["version"] == "2.0")
    app.clear_faults()
    newcomer = lab_app.extras[0]
    lab_app.add(newcomer)
    forget_kept_artifacts(app)  # 1.0 is still unpacked on the old hosts, not on the newcomer

    done = app.deploy("sync", str(app.spec), "--yes", "--json", check=0)

    assert "no artifact of" in done.stderr and "hosts without the release will fail" in done.stderr
    result = json.loads(done.stdout)
    by_name = {h["name"]: h for h in result["hosts"]}
    assert result["version"] == "1.0" and sorted(by_name) == sorted([*on_2, newcomer])
    assert result["status"] == "succeeded" and "1 failed (within the 2 allowed)" in result["reason"]
    # "older" is "not the latest good version": the halted push's hosts go back to 1.0
    for name in on_2:
        assert by_name[name]["status"] == "succeeded" and app.current(name) == "1.0"
    failed = by_name[newcomer]
    assert failed["status"] == "failed" and failed["step"] == "upload"
    assert "release 1.0 is not on the host and no artifact was given" in failed["error"]
    assert app.current(newcomer) is None and steps_of(app, newcomer) == []
