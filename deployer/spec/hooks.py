"""Hooks: resolved when a spec is read, and turned into what the runner runs at a push.

:func:`resolve_hooks` fills in each hook's limits and checks its Fabric task through the
:data:`TaskCheck` it is given; :func:`hook_commands` tells, for each shell hook, whether
its first word is a script inside the artifact (which means reading the artifact, so it
happens when a push prepares its hosts, not when the spec is read).
"""

from __future__ import annotations

import posixpath
import re
import tarfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from deployer.core.errors import ArtifactError
from deployer.core.results import Step
from deployer.core.runner import HookCommand
from deployer.core.spec import DEFAULT_HOOK_INTERVAL, Hook, Spec
from deployer.inventory.fields import local_path
from deployer.inventory.yamlload import YamlPath

if TYPE_CHECKING:
    from deployer.spec.schema import HooksModel

TaskCheck = Callable[[str, Mapping[str, Any]], str | None]
"""Why the Fabric task ``/absolute/fabfile.py:task`` cannot be called with ``args``, or None.

The CLI and the operations that read specs pass :func:`deployer.hosts.fabric_hooks.task_problem`
in (through :func:`deployer.operations.reading.check_fabric_task`, which imports Fabric only when
a spec names a task): the spec code itself imports no Fabric.
"""

_STEP_OF_HOOK = {
    "stop": Step.STOP,
    "before_install": Step.BEFORE_INSTALL,
    "after_install": Step.AFTER_INSTALL,
    "start": Step.START,
    "validate_": Step.VALIDATE,
}
_SHELL_SPECIAL = re.compile(r"[\"'`$\\;&|<>(){}*?\[\]=!#]")


def resolve_hooks(
    model: HooksModel, base: Path, check_task: TaskCheck, issue: Callable[[YamlPath, str], None]
) -> dict[Step, Hook]:
    """The hooks of a validated spec, their limits filled in; each problem is told to ``issue``.

    A Fabric task's file is made absolute (relative to ``base``, the spec's folder) and the
    task is checked with ``check_task``: loading it runs the fabfile, here and not on a
    host, so a broken one is a spec error before any host is touched.
    """
    hooks: dict[Step, Hook] = {}
    for attribute, step in _STEP_OF_HOOK.items():
        value = getattr(model, attribute)
        if value is None:
            continue
        name = step.value
        if isinstance(value, str):
            hooks[step] = Hook(value, None, {}, model.timeout, 0, DEFAULT_HOOK_INTERVAL, model.contain)
            continue
        fabric = None
        if value.fabric is not None:
            fabfile, _, task = value.fabric.rpartition(":")
            fabfile_path = local_path(fabfile, base)
            fabric = f"{fabfile_path}:{task}"
            if not fabfile_path.is_file():
                issue(("hooks", name, "fabric"), f"no Fabric file at {fabfile_path}")
            else:
                problem = check_task(fabric, value.args or {})
                if problem is not None:
                    issue(("hooks", name, "fabric"), problem)
        hooks[step] = Hook(
            command=value.command,
            fabric=fabric,
            args=dict(value.args or {}),
            timeout=value.timeout if value.timeout is not None else model.timeout,
            retries=value.retries or 0,
            interval=value.interval if value.interval is not None else DEFAULT_HOOK_INTERVAL,
            contain=model.contain,
        )

    return hooks


def hook_commands(spec: Spec) -> dict[Step, HookCommand]:
    """Each hook as the runner runs it.

    A command whose first word is a relative path to a file in the artifact (a
    directory or a member of the .tar.gz) is a script, run from the release as
    ``./path``. Without the artifact (a rollback after the build was cleaned), a
    bare first word is taken as a command, but a relative path with a ``/`` cannot be
    told apart and raises :class:`ArtifactError`.
    """
    listed: list[frozenset[str]] = []  # a tarball's files, read once when first needed

    def artifact_has(word: str) -> bool:
        if spec.artifact.is_dir():
            return (spec.artifact / word).is_file()
        if not spec.artifact.exists():
            if "/" not in word:
                return False
            raise ArtifactError(
                f"artifact {spec.artifact} does not exist; it is needed to tell whether"
                f" the hook {word!r} is a script in it"
            )
        if not listed:
            listed.append(tarball_files(spec.artifact))
        return word in listed[0]

    commands: dict[Step, HookCommand] = {}
    for step, hook in spec.hooks.items():
        if hook.fabric is not None:
            commands[step] = HookCommand(
                step=step,
                command=hook.fabric,
                timeout=hook.timeout,
                retries=hook.retries,
                interval=hook.interval,
                fabric=hook.fabric,
                fabric_args=dict(hook.args),
            )
            continue
        assert hook.command is not None
        command, script = hook.command, False
        split = _relative_first_word(hook.command)
        if split is not None and artifact_has(split[0]):
            command, script = split[0] + split[1], True
        commands[step] = HookCommand(
            step=step,
            command=command,
            timeout=hook.timeout,
            retries=hook.retries,
            interval=hook.interval,
            script=script,
            contain=hook.contain,
        )
    return commands


def _relative_first_word(command: str) -> tuple[str, str] | None:
    """``"./scripts/migrate.sh --fast"`` → ``("scripts/migrate.sh", " --fast")``; None if no such path."""
    match = re.match(r"\s*(\S+)(.*)", command, re.DOTALL)
    if match is None:
        return None
    word, rest = match.group(1), match.group(2)
    if word.startswith(("/", "~")) or _SHELL_SPECIAL.search(word):
        return None
    normal = posixpath.normpath(word)
    if normal in (".", "..") or normal.startswith("../"):
        return None
    return normal, rest


def tarball_files(artifact: Path) -> frozenset[str]:
    """Relative paths of the regular files in a .tar.gz (``./`` prefixes dropped)."""
    try:
        with tarfile.open(artifact, "r:gz") as archive:
            return frozenset(
                posixpath.normpath(member.name) for member in archive.getmembers() if member.isfile()
            )
    except (OSError, tarfile.TarError) as error:
        raise ArtifactError(f"artifact {artifact} is not a readable .tar.gz: {error}") from None


def is_tarball_name(path: Path | str) -> bool:
    return str(path).endswith((".tar.gz", ".tgz"))
