"""Operating a running deployment from a second process: the lock, pause/resume/abort, SIGKILL + resume."""

from __future__ import annotations

from collections import Counter

from deployer.core.results import DeploymentStatus, HostStatus
from deployer.store import DeploymentView, open_store
from tests.e2e.support import App, kill_push_once, running, slow_everywhere, wait_until


def started_hosts(view: DeploymentView) -> set[str]:
    return {h.name for h in view.hosts if h.started_at is not None}


def test_a_second_push_is_refused_and_pause_resume_work_from_another_process(app: App) -> None:
    slow_everywhere(app, 2.0)  # 4 waves of at least 2 s: time to act from another process
    first = app.popen("push", str(app.spec), "--yes")
    try:
        assert wait_until(lambda: (v := running(app)) is not None and len(started_hosts(v)) > 0)
        view = running(app)
        assert view is not None
        app.deploy("pause", view.id, check=0)
        assert wait_until(lambda: (v := running(app)) is not None and v.status is DeploymentStatus.PAUSED)

        second = app.deploy("push", str(app.spec), "--version", "9.9", "--yes")
        assert second.returncode == 1
        assert view.id in second.stderr and view.started_by in second.stderr
        assert "Traceback" not in second.stderr

        # In-flight hosts finish; then nothing new starts while paused.
        assert wait_until(lambda: (v := running(app)) is not None and v.counts[HostStatus.RUNNING] == 0)
        paused = running(app)
        assert paused is not None and paused.status is DeploymentStatus.PAUSED
        before = started_hosts(paused)
        assert len(before) < 12
        assert not wait_until(lambda: started_hosts(running(app) or paused) != before, timeout=2.5)
        assert (still := running(app)) is not None and still.status is DeploymentStatus.PAUSED

        app.deploy("resume", view.id, check=0)
        assert first.wait(timeout=120) == 0
    finally:
        if first.poll() is None:
            first.kill()
            first.wait()
    assert all(app.current(h.name) == "1.0" for h in app.fleet.hosts)


def test_abort_from_another_process_leaves_the_untouched_hosts_alone(app: App) -> None:
    app.deploy("push", str(app.spec), "--yes", check=0)
    slow_everywhere(app, 2.0)
    push = app.popen("push", str(app.spec), "--version", "2.0", "--yes", "--json")
    try:
        assert wait_until(lambda: (v := running(app)) is not None and len(started_hosts(v)) > 0)
        view = running(app)
        assert view is not None
        app.deploy("abort", view.id, "--yes", check=0)
        assert push.wait(timeout=60) == 1
    finally:
        if push.poll() is None:
            push.kill()
            push.wait()
    with open_store(app.db_url) as store:
        final = store.deployment(view.id)
    assert final.status is DeploymentStatus.ABORTED
    never_started = [h.name for h in final.hosts if h.started_at is None]
    assert never_started  # the abort came while wave 1 or 2 ran, long before the last wave
    for name in never_started:
        assert app.current(name) == "1.0"
    for host in final.hosts:  # whatever ran is on disk exactly as the store says
        assert app.current(host.name) == (host.version or "1.0")


def assert_every_hook_ran_once(app: App, deployment_id: str) -> None:
    for host in app.fleet.hosts:
        assert app.current(host.name) == "1.0"
        runs = Counter(line[0] for line in app.hook_lines(host.name) if line[2] == deployment_id)
        assert runs == {"before_install": 1, "after_install": 1, "start": 1, "validate": 1}, (host.name, runs)


def test_a_killed_controller_is_resumed_and_no_host_runs_a_hook_twice(app: App) -> None:
    # Killed while wave 2 is in flight (its hosts are in their slow start hook).
    view = kill_push_once(app, lambda v: any(h.wave == 2 and h.status is HostStatus.RUNNING for h in v.hosts))
    assert view is not None and view.status is DeploymentStatus.RUNNING  # the store still says so
    # A new push may not take the dead controller's lock; only resume may.
    refused = app.deploy("push", str(app.spec), "--yes")
    assert refused.returncode == 1 and view.id in refused.stderr
    resumed = app.deploy_json("resume", view.id, timeout=120)
    assert resumed["id"] == view.id and resumed["status"] == "succeeded"
    assert resumed["counts"]["succeeded"] == 12
    assert_every_hook_ran_once(app, view.id)


def test_a_controller_killed_while_it_stages_hosts_ahead_is_resumed_and_no_hook_runs_twice(app: App) -> None:
    # Killed once a later wave is being staged: some of its hosts have their release
    # ready (staged, still pending), others may be mid-upload.
    view = kill_push_once(
        app,
        lambda v: any(h.staged and h.status is HostStatus.PENDING and (h.wave or 0) > 1 for h in v.hosts),
    )
    staged = {h.name for h in view.hosts if h.staged and h.status is HostStatus.PENDING}
    assert staged
    for name in staged:  # staged only: nothing live changed, no hook ran
        assert app.current(name) is None
        assert [line for line in app.hook_lines(name) if line[2] == view.id] == []
    resumed = app.deploy_json("resume", view.id, timeout=120)
    assert resumed["status"] == "succeeded" and resumed["counts"]["succeeded"] == 12
    assert_every_hook_ran_once(app, view.id)
