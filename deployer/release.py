"""The on-host release layout and the remote driver's protocol, as pure functions.

Under an app's target directory on a host (Capistrano's layout)::

    <target>/releases/<version>/      an unpacked artifact, with its .deploy-sha256
    <target>/current -> releases/<v>  switched atomically: ln -s to a temporary name,
                                      then ``mv -T`` renames it over ``current``
    <target>/revisions.log            one line per switch: UTC time, version, deployment
                                      id, who started it (tab-separated)
    <target>/.deploy/<id>.state       the driver's record of a deployment, appended, the
                                      last line counts: ``running <pid> <step>``, then
                                      ``succeeded``, ``failed:<step>:<exit>`` or
                                      ``aborted:<step>``
    <target>/.deploy/<id>.<step>.log  each step's output, kept on the host (flat files: a
                                      run then creates no directory, one process less on
                                      each host; pruned to the newest 20 deployments' once
                                      there are more than 30)

One host's whole deployment runs in one exec channel: ``deployer/remote/driver.sh``
(POSIX sh; its header documents the line protocol) prints a marker line per step and
waits for the controller's one-line answer before each step. A hook the controller runs
itself (a Fabric task, :mod:`deployer.fabric_hooks`) uses the same wait: the driver
tells the hook's variables (``@@env``), holds at the step's start, and takes the
controller's ``done <exit> <attempts> [timeout]`` as the step's result. This module builds the
commands that start the driver and the probe, reads their marker lines, and decides
which releases to prune; :mod:`deployer.ssh` does the I/O.
"""

from __future__ import annotations

import re
import shlex
import urllib.parse
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from importlib import resources

from deployer.fleet import Host
from deployer.results import HOOK_STEPS, Step
from deployer.runner import HookCommand, HostProbe, JobKind, ReleaseJob

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
    is there); a restart with its first hook among STOP, START and VALIDATE. The runner
    acknowledges this step along with the exec request, saving a round trip per host.
    """
    if job.kind != JobKind.RESTART:
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


def controller_answer(exit_status: int, attempts: int, timed_out: bool) -> bytes:
    """The line that tells the driver how a hook the controller ran ended:
    ``done <exit> <attempts> [timeout]``."""
    return f"done {exit_status} {attempts}{' timeout' if timed_out else ''}\n".encode()


# Shell functions the remote scripts share, sent ahead of each (hosts hold no file of ours).
SHARED_SCRIPT = "releases.sh"


@cache
def remote_script(name: str) -> str:
    """``deployer/remote/`` SHARED_SCRIPT then ``<name>``, with full-line comments and
    indentation removed.

    It travels as one exec argument to every host, so every byte saved counts a hundred
    times; the scripts have no here-documents, so stripping lines is safe.
    """
    folder = resources.files("deployer").joinpath("remote")
    text = folder.joinpath(SHARED_SCRIPT).read_text() + folder.joinpath(name).read_text()
    lines = (line.strip() for line in text.splitlines())
    return "\n".join(line for line in lines if line and not line.startswith("#")) + "\n"


def shell_number(seconds: float) -> str:
    """A duration as ``sleep`` reads it everywhere: ``30``, ``0.25``, never ``1e+06``."""
    if seconds == int(seconds):
        return str(int(seconds))
    return f"{seconds:.3f}".rstrip("0")


def _hook_args(hook: HookCommand | None) -> list[str]:
    """The driver's six words for a hook: command, timeout, retries, interval, kind
    (``0`` a command, ``1`` a script in the release, ``c`` run by the controller: its
    "command" is only a label then, its limits are the controller's to keep) and
    ``1`` when it runs contained (hooks.contain), else ``0``."""
    if hook is None:
        return ["", "0", "0", "0", "0", "0"]
    if runs_on_controller(hook):
        assert hook.fabric is not None
        return [_one_line(hook.fabric), "0", "0", "0", "c", "0"]
    return [
        hook.command,
        shell_number(max(hook.timeout, 0.001)),
        str(max(hook.retries, 0)),
        shell_number(max(hook.interval, 0.0)),
        "1" if hook.script else "0",
        "1" if hook.contain else "0",
    ]


def _one_line(text: str) -> str:
    return _CONTROL.sub(" ", text)


def driver_command(job: ReleaseJob, host: Host) -> str:
    """The exec command that runs ``job`` on ``host``: ``sh -c <driver.sh> driver <args>``.

    Every argument is quoted; the driver reads them as positional parameters, so versions,
    paths, host names and hook commands are data until a hook runs its own command.
    """
    args = [
        job.target,
        job.deployment_id,
        job.kind,
        job.version,
        release_dir_name(job.version),
        job.artifact.sha256 if job.artifact is not None else "",
        _one_line(job.started_by),
        job.app,
        job.environment,
        host.name,
        host.datacenter,
        "1" if job.ignore_stop_failures else "0",
        str(job.keep_releases),
    ]
    for step in HOOK_STEPS:
        args.extend(_hook_args(job.hooks.get(step)))
    args.append(" ".join(job.keep_records))
    return " ".join(["sh", "-c", shlex.quote(remote_script("driver.sh")), "driver", *map(shlex.quote, args)])


def probe_command(app_target: str, deployment_id: str | None) -> str:
    """The exec command that reads what ``app_target`` holds on a host (read-only)."""
    args = (app_target, deployment_id or "")
    return " ".join(["sh", "-c", shlex.quote(remote_script("probe.sh")), "probe", *map(shlex.quote, args)])


def split_marker(line: str) -> tuple[str, str] | None:
    """``"@@step start end 0 1 1"`` → ``("step", "start end 0 1 1")``; None for other lines."""
    if not line.startswith("@@"):
        return None
    word, _, rest = line[2:].rstrip("\n").partition(" ")
    return word, rest


@dataclass(frozen=True, slots=True)
class StepEnd:
    """A ``@@step <name> end <exit> <attempts> [timeout]`` line, read."""

    step: Step
    exit_status: int
    attempts: int
    timed_out: bool


@dataclass(frozen=True, slots=True)
class StepStart:
    step: Step


def parse_step(rest: str) -> StepStart | StepEnd:
    """The words after ``@@step``; raises ValueError on a line the driver never writes."""
    words = rest.split()
    if len(words) == 2 and words[1] == "start":
        return StepStart(Step(words[0]))
    if len(words) >= 4 and words[1] == "end":
        return StepEnd(
            step=Step(words[0]),
            exit_status=int(words[2]),
            attempts=int(words[3]),
            timed_out=len(words) > 4 and words[4] == "timeout",
        )
    raise ValueError(f"unexpected step marker: @@step {rest}")


@dataclass(frozen=True, slots=True)
class Outcome:
    """A ``@@done`` line or a state file: ``succeeded``, ``failed:<step>:<exit>``, ``aborted:<step>``."""

    status: str  # "succeeded", "failed", "aborted", "running" or "interrupted"
    step: Step | None = None
    exit_status: int | None = None


def parse_outcome(text: str) -> Outcome:
    status, _, rest = text.strip().partition(":")
    step_name, _, exit_text = rest.partition(":")
    step = Step(step_name) if step_name in Step._value2member_map_ else None
    exit_status = int(exit_text) if exit_text.lstrip("-").isdigit() else None
    return Outcome(status, step, exit_status)


def failure_sentence(end: StepEnd, hook: HookCommand | None) -> str:
    """One sentence for a hook step that failed: ``validate exited 7 after 3 attempts``."""
    if end.timed_out and hook is not None:
        sentence = (
            f"{end.step} timed out after {shell_number(hook.timeout)}s and was killed with its children"
        )
    elif end.exit_status == 127 and hook is not None and hook.script:
        sentence = f"{end.step} hook script {hook.command} is missing from the release"
    else:
        sentence = f"{end.step} exited {end.exit_status}"
    if end.attempts > 1:
        sentence += f" after {end.attempts} attempts"
    return sentence


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


def parse_probe(host: str, text: str) -> HostProbe:
    """A probe's output (see ``deployer/remote/probe.sh``) as a :class:`HostProbe`."""
    current: str | None = None
    releases: list[str] = []
    outcome: str | None = None
    for line in text.splitlines():
        marker = split_marker(line)
        if marker is None:
            continue
        word, rest = marker
        if word == "current":
            current = version_of_dir(rest) if rest else None
        elif word == "release" and rest:
            releases.append(version_of_dir(rest))
        elif word == "outcome":
            outcome = rest or None
    return HostProbe(
        host=host, reachable=True, current_version=current, releases=tuple(releases), outcome=outcome
    )
