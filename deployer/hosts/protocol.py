"""The host protocol (v2), as types: what the driver says, what the controller answers.

The protocol itself is described once, in the header of ``deployer/hosts/remote/driver.sh``;
this module is its one encoder and one parser. A conversation starts with the driver's
``@@hello <version>``, checked against :data:`PROTOCOL_VERSION`. The driver's
arguments are generated from :data:`DRIVER_PARAMS`: the line that assigns them is put
before the script, so the order of the values :func:`driver_command` passes and the
names the script reads cannot drift apart.

Nothing here does I/O or keeps state: a conversation (:mod:`deployer.hosts.conversation`)
may run in another process than the controller's loop, and everything it exchanges
with the loop is a value of this module or of :mod:`deployer.core.results`.
"""

from __future__ import annotations

import shlex
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from importlib import resources

from deployer.core.results import HOOK_STEPS, Step
from deployer.core.runner import HookCommand, HostProbe, ReleaseJob
from deployer.core.targets import Host
from deployer.hosts.release import (
    release_dir_name,
    releases_to_prune,
    runs_on_controller,
    shell_number,
    strip_control,
    version_of_dir,
)

PROTOCOL_VERSION = 2

# The hooks' six words each, by the prefix the driver names them with.
_HOOK_PREFIX = {
    Step.STOP: "stop",
    Step.BEFORE_INSTALL: "bi",
    Step.AFTER_INSTALL: "ai",
    Step.START: "start",
    Step.VALIDATE: "val",
}
_HOOK_WORDS = ("cmd", "timeout", "retries", "interval", "script", "contain")

# The driver's arguments, in order: driver.sh reads each as a variable of this name.
DRIVER_PARAMS: tuple[str, ...] = (
    "target",
    "id",
    "kind",
    "version",
    "dir",
    "sha",
    "who",
    "DEPLOY_APP",
    "DEPLOY_ENVIRONMENT",
    "DEPLOY_HOST",
    "DEPLOY_DATACENTER",
    "ignore_stop",
    "keep",
    *(f"{_HOOK_PREFIX[step]}_{word}" for step in HOOK_STEPS for word in _HOOK_WORDS),
    # Deployments whose records stay whatever their age (space-separated): the
    # controller does not know yet how they ended here (see prune_records).
    "keep_ids",
)

# Shell functions the remote scripts share, sent ahead of each (hosts hold no file of ours).
SHARED_SCRIPT = "releases.sh"


@cache
def remote_script(name: str) -> str:
    """``deployer/hosts/remote/`` SHARED_SCRIPT then ``<name>``, with full-line comments and
    indentation removed.

    It travels as one exec argument to every host, so every byte saved counts for each
    host; the scripts have no here-documents, so stripping lines is safe.
    """
    folder = resources.files("deployer.hosts").joinpath("remote")
    text = folder.joinpath(SHARED_SCRIPT).read_text() + folder.joinpath(name).read_text()
    lines = (line.strip() for line in text.splitlines())
    return "\n".join(line for line in lines if line and not line.startswith("#")) + "\n"


def remote_command(script: str, name: str, *args: str) -> str:
    """The exec command ``exec sh -c <script> <name> <args>``, every word quoted.

    The remote user's login shell (sshd runs it with -c) may be bash, zsh or fish: the
    script needs a POSIX sh. ``exec`` replaces the login shell with it, a process fewer
    per host (dash, unlike bash, forks for the last command of a -c string).
    """
    return " ".join(["exec", "sh", "-c", shlex.quote(script), name, *map(shlex.quote, args)])


@cache
def driver_script() -> str:
    """driver.sh behind the line that assigns its arguments and protocol version."""
    assignments = " ".join(f"{name}=${{{index}}}" for index, name in enumerate(DRIVER_PARAMS, start=1))
    return f"PROTOCOL={PROTOCOL_VERSION} {assignments}\n" + remote_script("driver.sh")


def _hook_args(hook: HookCommand | None) -> tuple[str, ...]:
    """A hook's six words: command, timeout, retries, interval, kind (``0`` a command,
    ``1`` a script in the release, ``c`` run by the controller: its "command" is only a
    label then, its limits are the controller's to keep) and ``1`` when it runs
    contained (hooks.contain), else ``0``."""
    if hook is None:
        return ("", "0", "0", "0", "0", "0")
    if runs_on_controller(hook):
        assert hook.fabric is not None
        return (strip_control(hook.fabric), "0", "0", "0", "c", "0")
    return (
        hook.command,
        shell_number(max(hook.timeout, 0.001)),
        str(max(hook.retries, 0)),
        shell_number(max(hook.interval, 0.0)),
        "1" if hook.script else "0",
        "1" if hook.contain else "0",
    )


def driver_arguments(job: ReleaseJob, host: Host) -> dict[str, str]:
    """The driver's arguments by name (see DRIVER_PARAMS)."""
    values = {
        "target": job.target,
        "id": job.deployment_id,
        "kind": job.kind,
        "version": job.version,
        "dir": release_dir_name(job.version),
        "sha": job.artifact.sha256 if job.artifact is not None else "",
        "who": strip_control(job.started_by),
        "DEPLOY_APP": job.app,
        "DEPLOY_ENVIRONMENT": job.environment,
        "DEPLOY_HOST": host.name,
        "DEPLOY_DATACENTER": host.datacenter,
        "ignore_stop": "1" if job.ignore_stop_failures else "0",
        "keep": str(job.keep_releases),
        "keep_ids": " ".join(job.keep_records),
    }
    for step in HOOK_STEPS:
        words = _hook_args(job.hooks.get(step))
        values.update(
            (f"{_HOOK_PREFIX[step]}_{name}", word) for name, word in zip(_HOOK_WORDS, words, strict=True)
        )
    return values


def driver_command(job: ReleaseJob, host: Host) -> str:
    """The exec command that runs ``job`` on ``host`` (:func:`remote_command`).

    Every argument is quoted; the driver reads them as positional parameters, so
    versions, paths, host names and hook commands are data until a hook runs its own
    command.
    """
    values = driver_arguments(job, host)
    assert values.keys() == set(DRIVER_PARAMS), "DRIVER_PARAMS and driver_arguments disagree"
    args = (values[name] for name in DRIVER_PARAMS)
    return remote_command(driver_script(), "driver", *args)


def probe_command(app_target: str, deployment_id: str | None) -> str:
    """The exec command that reads what ``app_target`` holds on a host (read-only)."""
    args = (app_target, deployment_id or "")
    return remote_command(remote_script("probe.sh"), "probe", *args)


# -- what the driver says ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Hello:
    version: int


@dataclass(frozen=True, slots=True)
class Previous:
    dir: str  # what `current` pointed to at the start ("" when nothing)


@dataclass(frozen=True, slots=True)
class NeedArtifact:
    path: str
    inline: bool  # True: send it on this channel (`data <n>`); False: write `path` yourself


@dataclass(frozen=True, slots=True)
class Release:
    dir: str  # one kept release, newest first


@dataclass(frozen=True, slots=True)
class Staged:
    pass


@dataclass(frozen=True, slots=True)
class Env:
    name: str
    value: str


@dataclass(frozen=True, slots=True)
class StepStart:
    step: Step


@dataclass(frozen=True, slots=True)
class StepEnd:
    """A ``@@step <name> end <exit> <attempts> [timeout]`` line, read."""

    step: Step
    exit_status: int
    attempts: int
    timed_out: bool


@dataclass(frozen=True, slots=True)
class OutputFollows:
    token: str  # the output runs to the line ``@@output-end <token>``


@dataclass(frozen=True, slots=True)
class Error:
    sentence: str


@dataclass(frozen=True, slots=True)
class Done:
    outcome: str  # succeeded | failed:<step>:<exit> | aborted:<step>


@dataclass(frozen=True, slots=True)
class Current:
    dir: str


DriverMessage = (
    Hello
    | Previous
    | NeedArtifact
    | Release
    | Staged
    | Env
    | StepStart
    | StepEnd
    | OutputFollows
    | Error
    | Done
    | Current
)


class ProtocolError(ValueError):
    """The driver said something this controller does not understand."""


def split_marker(line: str) -> tuple[str, str] | None:
    """``"@@step start end 0 1"`` → ``("step", "start end 0 1")``; None for other lines."""
    if not line.startswith("@@"):
        return None
    word, _, rest = line[2:].rstrip("\n").partition(" ")
    return word, rest


def output_end(token: str) -> bytes:
    """The line that ends a step's output."""
    return f"@@output-end {token}\n".encode()


def parse_line(line: str) -> DriverMessage | None:
    """One line of the driver's, as a message; None for a line of output.

    Raises ProtocolError for a marker the driver never writes.
    """
    marker = split_marker(line)
    if marker is None:
        return None
    word, rest = marker
    try:
        match word:
            case "hello":
                return Hello(int(rest))
            case "previous":
                return Previous(rest)
            case "need-artifact":
                path, _, how = rest.rpartition(" ")  # the path may hold spaces, `how` not
                return NeedArtifact(path, inline=how == "stdin")
            case "release":
                return Release(rest)
            case "staged":
                return Staged()
            case "env":
                name, _, value = rest.partition(" ")
                return Env(name, value)
            case "step":
                return _parse_step(rest)
            case "output":
                return OutputFollows(rest)
            case "error":
                return Error(rest)
            case "done":
                return Done(rest)
            case "current":
                return Current(rest)
    except ValueError:
        pass
    raise ProtocolError(f"the remote driver said something unexpected: @@{word} {rest}")


def _parse_step(rest: str) -> StepStart | StepEnd:
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
    raise ValueError(rest)


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


# -- what the controller says --------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Go:
    """The one message of a host's wave."""

    # UTC, for revisions.log; None: the host's clock dates the switch (a go sent before the
    # unpack, which may take a while, would date it too early)
    switch_at: datetime | None
    previous_dir: str  # `current` as staging saw it: pruning holds only while it still is
    prune: tuple[int, ...]  # 1-based positions in the release list sent at staging


@dataclass(frozen=True, slots=True)
class Stop:
    """An operator's abort: honoured before each step until the old release was stopped."""


@dataclass(frozen=True, slots=True)
class HookResult:
    """How a hook the controller ran (a Fabric task) ended."""

    exit_status: int
    attempts: int
    timed_out: bool


ControllerMessage = Go | Stop | HookResult


def encode(message: ControllerMessage) -> bytes:
    """One controller message as the line the driver reads."""
    match message:
        case Go(switch_at, previous_dir, prune):
            positions = " ".join(map(str, prune))
            when = "" if switch_at is None else f"{switch_at:%Y-%m-%dT%H:%M:%SZ}"
            return f"go\t{when}\t{previous_dir}\t{positions}\n".encode()
        case Stop():
            return b"stop\n"
        case HookResult(exit_status, attempts, timed_out):
            return f"done {exit_status} {attempts}{' timeout' if timed_out else ''}\n".encode()
    raise TypeError(f"not a controller message: {message!r}")


def artifact_header(size: int) -> bytes:
    """What goes before an artifact's bytes on the driver's channel; ``ARTIFACT_SENT`` after."""
    return f"data {size}\n".encode()


ARTIFACT_SENT = b"sent\n"
# Instead of ARTIFACT_SENT for a host staged in its own wave: its Go follows at once.
ARTIFACT_SENT_GO = b"sent go\n"
ARTIFACT_MISSING = b"missing\n"
ARTIFACT_FAILED = b"failed\n"


# -- the journal, as the probe reads it ------------------------------------------------------


def parse_probe(host: str, text: str) -> HostProbe:
    """A probe's output (see ``deployer/hosts/remote/probe.sh``) as a :class:`HostProbe`."""
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


def prune_choice(releases: Sequence[str], new_dir: str, previous_dir: str, keep: int) -> tuple[int, ...]:
    """The go message's prune positions, from the release list staging sent.

    The new release goes first whatever its place in the list: it is the newest once
    switched. Positions refer to the list as sent (the driver kept it).
    """
    if not releases:
        return ()
    ordered = [new_dir, *(name for name in releases if name != new_dir)]
    doomed = set(releases_to_prune(ordered, new_dir, previous_dir or None, keep))
    by_name = {name: position for position, name in enumerate(releases, start=1)}
    return tuple(sorted(by_name[ordered[index - 1]] for index in doomed if ordered[index - 1] in by_name))
