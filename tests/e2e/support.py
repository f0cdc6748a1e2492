"""End-to-end support: a spec and artifact for each test, the real CLI, files on the hosts.

Every test deploys its own app (its own target directory and history), so the
module's fleet is shared and tests stay independent. Hooks append one line per
run to ``~/apps/<app>/hooks.log`` on the host, which is how tests count runs.
Faults are files in the host's home: ``~/.faults/<app>-validate`` makes validate
fail, ``~/.faults/<app>-slow`` holds seconds for the start hook to sleep.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from deployer.core.targets import Host
from deployer.store import DeploymentView, open_store

HOOK_SCRIPT = """#!/bin/sh
set -eu
log="$HOME/apps/$DEPLOY_APP/hooks.log"
faults="$HOME/.faults/$DEPLOY_APP"
printf '%s %s %s %s %s\\n' "$1" "$DEPLOY_VERSION" "$DEPLOY_ID" "$DEPLOY_PREVIOUS_VERSION" "$PWD" >> "$log"
case "$1" in
    start) if [ -f "$faults-slow" ]; then sleep "$(cat "$faults-slow")"; fi ;;
    validate) if [ -e "$faults-validate" ]; then echo "unhealthy: $faults-validate" >&2; exit 3; fi ;;
esac
"""

SPEC = """app: {app}
version: "1.0"
environment: e2e
fleet: {inventory}
artifact: app/
target: ~/apps/{app}
keep_releases: 3
strategy: {{batch: [{batch}], stripe: datacenter, max_failures: {max_failures}, bake: 0s}}
hooks:
  stop: scripts/hook.sh stop
  before_install: scripts/hook.sh before_install
  after_install: scripts/hook.sh after_install
  start: scripts/hook.sh start
  validate: scripts/hook.sh validate
  timeout: 30s
"""


@dataclass
class E2EFleet:
    """A running fleet as the end-to-end tests see it: its inventory and each host's home."""

    kind: str
    hosts: tuple[Host, ...]
    inventory: Path
    home: Callable[[str], Path]

    def by_datacenter(self) -> dict[str, list[Host]]:
        groups: dict[str, list[Host]] = {}
        for host in self.hosts:
            groups.setdefault(host.datacenter, []).append(host)
        return groups


@dataclass
class App:
    """One test's app: its spec on disk, its store, and what its hosts hold."""

    name: str
    spec: Path
    fleet: E2EFleet
    db_url: str

    def deploy(
        self, *args: str, timeout: float = 120, check: int | None = None
    ) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "DEPLOYER_DB": self.db_url}
        done = subprocess.run(
            [sys.executable, "-m", "deployer", *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if check is not None:
            assert done.returncode == check, (done.returncode, done.stdout, done.stderr)
        return done

    def deploy_json(self, *args: str, check: int = 0, timeout: float = 120) -> Any:
        done = self.deploy(*args, "--json", check=check, timeout=timeout)
        return json.loads(done.stdout)

    def popen(self, *args: str) -> subprocess.Popen[bytes]:
        """Start ``deploy ARGS`` in the background; its output goes to ``background.log`` beside the spec."""
        env = {**os.environ, "DEPLOYER_DB": self.db_url}
        with (self.spec.parent / "background.log").open("ab") as log:  # the child keeps its own copy
            return subprocess.Popen(
                [sys.executable, "-m", "deployer", *args],
                env=env,
                stdout=log,
                stderr=log,
                stdin=subprocess.DEVNULL,
            )

    def target(self, host: str) -> Path:
        return self.fleet.home(host) / "apps" / self.name

    def current(self, host: str) -> str | None:
        link = self.target(host) / "current"
        return Path(os.readlink(link)).name if link.is_symlink() else None

    def hook_lines(self, host: str) -> list[list[str]]:
        log = self.target(host) / "hooks.log"
        return [line.split() for line in log.read_text().splitlines()] if log.exists() else []

    def fault(self, host: str, kind: str, content: str = "") -> None:
        faults = self.fleet.home(host) / ".faults"
        faults.mkdir(exist_ok=True)
        (faults / f"{self.name}-{kind}").write_text(content)

    def clear_faults(self) -> None:
        for host in self.fleet.hosts:
            for path in (self.fleet.home(host.name) / ".faults").glob(f"{self.name}-*"):
                path.unlink()


def make_app(
    work: Path, fleet: E2EFleet, db_url: str, name: str, *, batch: str = "3", max_failures: str = "2"
) -> App:
    (work / "app" / "scripts").mkdir(parents=True)
    hook = work / "app" / "scripts" / "hook.sh"
    hook.write_text(HOOK_SCRIPT)
    hook.chmod(0o755)
    (work / "app" / "index.html").write_text(f"<h1>{name}</h1>\n")
    spec = work / "spec.yaml"
    spec.write_text(SPEC.format(app=name, inventory=fleet.inventory, batch=batch, max_failures=max_failures))
    return App(name, spec, fleet, db_url)


def wait_until(predicate: Callable[[], bool], timeout: float = 30.0, interval: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()


def at_step(app: App, host: str, step: str) -> bool:
    """Whether ``host`` is at ``step`` in the app's running deployment, as its store says."""
    from deployer.store import open_store

    with open_store(app.db_url) as store:
        running = store.running_deployment(app.name, "e2e")
        if running is None:
            return False
        return any(h.name == host and h.step is not None and h.step.value == step for h in running.hosts)


def running(app: App) -> DeploymentView | None:
    """The app's running deployment in environment e2e, as the store shows it."""
    with open_store(app.db_url) as store:
        return store.running_deployment(app.name, "e2e")


def slow_everywhere(app: App, seconds: float) -> None:
    for host in app.fleet.hosts:
        app.fault(host.name, "slow", str(seconds))


def kill_push_once(app: App, moment: Callable[[DeploymentView], bool], slow: float = 1.0) -> DeploymentView:
    """Start a push of hooks ``slow`` seconds long, SIGKILL its controller once ``moment``
    holds of the deployment as the store shows it; the deployment as it was left."""
    slow_everywhere(app, slow)
    push = app.popen("push", str(app.spec), "--yes")
    try:
        assert wait_until(lambda: (view := running(app)) is not None and moment(view), timeout=60)
        os.kill(push.pid, signal.SIGKILL)
        push.wait(timeout=10)
    finally:
        if push.poll() is None:
            push.kill()
            push.wait()
    view = running(app)
    assert view is not None
    return view
