"""Fabric-task hooks end to end: the real CLI, the OpenSSH fleet, a real store."""

from __future__ import annotations

import secrets
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.support import App, E2EFleet, wait_until
from tests.fabric.support import write_fabfile
from tests.plugins.sshd_fleet import SshdFleet
from tests.ssh.support import kill_marked, pids_running

pytestmark = pytest.mark.openssh

SPEC = """app: {app}
version: "1.0"
environment: e2e
fleet: {inventory}
artifact: app/
target: ~/apps/{app}
strategy: {{batch: [3], stripe: datacenter, max_failures: {max_failures}, bake: 0s}}
hooks:
  start: "true"
  after_install: {after_install}
  timeout: 30s
"""
AFTER_INSTALL_LINE = 10


@pytest.fixture
def app(sshd_fleet: SshdFleet, tmp_path: Path) -> Iterator[App]:
    fleet = E2EFleet("openssh", tuple(sshd_fleet.hosts), sshd_fleet.inventory_path, sshd_fleet.host_home)
    (tmp_path / "app").mkdir()
    (tmp_path / "app" / "index.html").write_text("<h1>fabric</h1>\n")
    write_fabfile(tmp_path)
    made = App(
        f"fab{secrets.token_hex(3)}", tmp_path / "spec.yaml", fleet, f"sqlite:///{tmp_path / 'state.db'}"
    )
    yield made
    made.clear_faults()


def write_spec(app: App, after_install: str, max_failures: int = 2) -> None:
    spec = SPEC.format(
        app=app.name, inventory=app.fleet.inventory, after_install=after_install, max_failures=max_failures
    )
    app.spec.write_text(spec)
    assert spec.splitlines()[AFTER_INSTALL_LINE - 1].startswith("  after_install:")


def test_a_task_runs_on_every_host_with_the_deployment_s_variables(app: App) -> None:
    write_spec(app, '{fabric: "fabfile.py:record", args: {note: push}}')
    result = app.deploy_json("push", str(app.spec), "--yes")
    assert result["status"] == "succeeded" and result["counts"]["succeeded"] == 12
    for host in app.fleet.hosts:
        assert app.current(host.name) == "1.0"
        release = f"/root/apps/{app.name}/releases/1.0"  # the task was told the host's own path
        told = f"{app.name}|1.0||e2e|{host.name}|{host.datacenter}|{result['id']}|{release}\n"
        for suffix in ("config", "env"):
            assert (app.target(host.name) / "releases" / "1.0" / f"fabric-push.{suffix}").read_text() == told


def test_failing_tasks_count_toward_the_halt_with_their_own_message(app: App) -> None:
    write_spec(app, '{fabric: "fabfile.py:migrate"}')
    dc1 = [h.name for h in app.fleet.by_datacenter()["dc1"]]
    kinds = dict(zip(dc1, ["raise", "exit", "raise", "exit"], strict=True))
    for name, kind in kinds.items():  # every dc1 host fails; max_failures 2
        app.fault(name, kind)
    result = app.deploy_json("push", str(app.spec), "--yes", check=1)
    assert result["status"] == "halted"
    assert result["counts"]["failed"] == 3 and result["counts"]["succeeded"] == 6
    failed = [h for h in result["hosts"] if h["status"] == "failed"]
    assert sorted(h["wave"] for h in failed) == [1, 2, 3]  # the third failure, in wave 3, halts
    for host in failed:
        assert host["step"] == "after_install", host
        if kinds[host["name"]] == "raise":
            locked = f"RuntimeError: schema is locked on {host['name']}"
            assert host["error"] == f"after_install Fabric task fabfile.py:migrate raised {locked}"
            assert host["exit_status"] == 1
            assert locked in host["output_tail"]
        else:
            assert host["error"].startswith("after_install Fabric task fabfile.py:migrate ran `if [ -e ")
            assert host["error"].endswith("`, which exited 3")
            assert host["exit_status"] == 3 and "migration failed" in host["output_tail"]
        assert app.current(host["name"]) is None  # failed before the switch
    for host in result["hosts"]:
        if host["wave"] == 4:  # never started: nothing live changed (its release may be staged)
            assert host["started_at"] is None and app.current(host["name"]) is None
            assert host["staged"] == (app.target(host["name"]) / "releases").exists()


def test_a_task_past_its_timeout_fails_the_host_and_leaves_nothing_running(app: App) -> None:
    marker = f"302.{uuid.uuid4().int % 10**6:06d}"
    hang = f'{{fabric: "fabfile.py:hang", args: {{marker: "{marker}"}}, timeout: 2s}}'
    write_spec(app, hang, max_failures=0)
    try:
        started = time.monotonic()
        result = app.deploy_json("push", str(app.spec), "--yes", "--limit", "h01", check=1)
        assert time.monotonic() - started < 20
        (host,) = result["hosts"]
        assert result["status"] == "halted"
        assert (host["status"], host["step"], host["exit_status"]) == ("failed", "after_install", 124)
        assert host["error"] == (
            "after_install Fabric task fabfile.py:hang timed out after 2s; "
            "its connection was closed and its remote commands stopped"
        )
        assert "hanging" in host["output_tail"]
        assert app.current("h01") is None
        assert wait_until(lambda: not pids_running(marker), timeout=15)
    finally:
        kill_marked(marker)


BROKEN = {
    "a syntax error": ("def migrate(c):\n    c.run('true'\n", "line 2: '(' was never closed"),
    "no such task": ("def migrated(c):\n    pass\n", "(its tasks: migrated)"),
}


@pytest.mark.parametrize("case", list(BROKEN))
def test_a_task_that_cannot_load_is_a_spec_error_before_any_host_is_touched(app: App, case: str) -> None:
    text, detail = BROKEN[case]
    fabfile = write_fabfile(app.spec.parent, text)
    write_spec(app, '{fabric: "fabfile.py:migrate"}')
    for command in ("plan", "push"):
        done = app.deploy(command, str(app.spec), "--yes" if command == "push" else "--force", check=2)
        assert "Traceback" not in done.stderr and done.stdout == ""
        (line,) = done.stderr.splitlines()
        assert line.startswith(f"error: {app.spec}:{AFTER_INSTALL_LINE}: hooks.after_install.fabric: ")
        assert str(fabfile) in line and "migrate" in line and line.endswith(detail)
    assert not any(app.target(host.name).exists() for host in app.fleet.hosts)
