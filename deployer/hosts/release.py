"""The on-host release layout, and the pure decisions about it.

Under an app's target directory on a host (Capistrano's layout)::

    <target>/releases/<version>/      an unpacked artifact, with its .deploy-sha256
    <target>/current -> releases/<v>  switched atomically: ln -s to a temporary name,
                                      then ``mv -T`` renames it over ``current``
    <target>/revisions.log            one line per switch: UTC time, version, deployment
                                      id, who started it (tab-separated)
    <target>/.deploy/                 the driver's journal of each deployment (see the
                                      header of deployer/hosts/remote/driver.sh), pruned to the
                                      newest 20 deployments' once there are more than 30

The driver that builds this layout, and the protocol it speaks, are
``deployer/hosts/remote/driver.sh`` and :mod:`deployer.hosts.protocol`.
"""

from __future__ import annotations

import re
import urllib.parse
from collections.abc import Sequence

from deployer.core.results import DeploymentKind, Step
from deployer.core.runner import HookCommand, ReleaseJob

# Control characters would break a marker line or a revisions.log line.
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def name_problem(what: str, value: str) -> str | None:
    """Why ``value`` cannot be a version or a deployment id, or None.

    Any other text is fine, ``1.0;touch /tmp/pwned`` included: it only ever reaches a
    shell as one quoted argument, the driver only uses it inside double quotes, and a
    version's directory name is escaped (:func:`release_dir_name`). A deployment id names
    files as it is, so it may not hold a slash or start with a dot.
    """
    if not value:
        return f"the {what} is empty"
    if _CONTROL.search(value):
        return f"the {what} {value!r} contains a control character"
    if len(value.encode()) > 200:
        return f"the {what} is longer than 200 bytes"
    if what != "version" and (value.startswith(".") or "/" in value):
        return f"the {what} {value!r} starts with a dot or contains a slash"
    return None


def release_dir_name(version: str) -> str:
    """The directory under ``releases/`` that holds ``version``: the version, with ``%``,
    ``/`` and a leading dot escaped as %XX (``1.0/rc1`` → ``1.0%2Frc1``), so any version
    names exactly one directory and never a hidden one."""
    name = version.replace("%", "%25").replace("/", "%2F")
    return "%2E" + name[1:] if name.startswith(".") else name


def version_of_dir(name: str) -> str:
    """The version a ``releases/`` directory holds (the inverse of :func:`release_dir_name`)."""
    return urllib.parse.unquote(name) if "%" in name else name


def first_step(job: ReleaseJob) -> Step:
    """The first step the driver runs for ``job``, known before it starts.

    A push, sync or rollback always starts with UPLOAD (which at least checks the release
    is there); a restart with its first hook among STOP, START and VALIDATE. A failure
    before any step (a bad job, an abort before the host's go) is charged to it; the
    driver (hosts/remote/driver.sh) works it out the same way.
    """
    if job.kind != DeploymentKind.RESTART:
        return Step.UPLOAD
    return next((step for step in (Step.STOP, Step.START, Step.VALIDATE) if step in job.hooks), Step.STOP)


def job_problem(job: ReleaseJob) -> tuple[Step, str] | None:
    """Why ``job`` cannot run on any host, as (the step it would fail at, a sentence), or None."""
    first = first_step(job)
    for what, value in (("version", job.version), ("deployment id", job.deployment_id)):
        problem = name_problem(what, value)
        if problem is not None:
            return first, problem
    if not job.target:
        return first, "the target directory is empty"
    if _CONTROL.search(job.target):
        return first, f"the target {job.target!r} contains a control character"
    return None


def runs_on_controller(hook: HookCommand | None) -> bool:
    """Whether the controller runs ``hook`` itself (a Fabric task) while the driver holds."""
    return hook is not None and hook.fabric is not None


def shell_number(seconds: float) -> str:
    """A duration as ``sleep`` reads it everywhere: ``30``, ``0.25``, never ``1e+06``."""
    if seconds == int(seconds):
        return str(int(seconds))
    return f"{seconds:.3f}".rstrip("0")


def releases_to_prune(
    releases: Sequence[str], current: str | None, previous: str | None, keep: int
) -> tuple[int, ...]:
    """Which of ``releases`` (newest switch first) to delete, as 1-based positions.

    The newest ``keep`` stay, and so do the current release and the one before it,
    whatever their age. When ``previous`` is unknown or is the current one (the same
    version deployed again), the newest release other than the current one counts as
    the one before it, so a rollback target is always left.

    Worked example: releases 1.5, 1.6, 1.4, 1.3, 1.2 (1.6 was uploaded by a deployment
    that failed before its switch), 1.5 now current, 1.4 before it, keep 2: the newest two
    are 1.5 and 1.6, 1.4 stays as the previous release, so 1.3 and 1.2 go: (4, 5).
    """
    protected = {name for name in (current, previous) if name}
    if not previous or previous == current:
        protected.update(name for name in releases[:2] if name != current)
    kept = set(releases[: max(keep, 0)]) | protected
    return tuple(index + 1 for index, name in enumerate(releases) if name not in kept)


def strip_control(text: str) -> str:
    """``text`` on one line: control characters become spaces."""
    return _CONTROL.sub(" ", text)
