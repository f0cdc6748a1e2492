"""Reading a spec: YAML in, a validated and frozen :class:`~deployer.core.spec.Spec` out.

Reading a spec takes four steps, each reporting every problem it finds at once:

1. :func:`~deployer.inventory.yamlload.load_yaml` parses the file and remembers the line of
   every key;
2. :class:`~deployer.spec.schema.SpecFileModel` (pydantic, frozen, unknown keys
   forbidden) checks the shape of the whole file, every environment's overrides included;
3. the chosen environment's overrides are laid over the base (:func:`lay_over`) and the
   result is checked again;
4. what pydantic cannot know is checked last: that the fleet file exists, that Fabric
   tasks load (the :data:`~deployer.spec.hooks.TaskCheck` the caller passes in), that an
   inline fleet's host names are unique, the version.

Every problem becomes a :class:`~deployer.core.errors.SpecIssue` naming the file, the
line and the dotted field (``strategy.batch[1]``), raised together in one
:class:`~deployer.core.errors.SpecError`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from pydantic_core import PydanticCustomError

from deployer.core.errors import SpecError, SpecIssue, sorted_issues
from deployer.core.spec import DEFAULT_ENVIRONMENT, FleetRef, Gate, NotifySink, Spec, Strategy
from deployer.core.targets import Fleet
from deployer.inventory.fields import check_version, local_path
from deployer.inventory.load import load_inventory
from deployer.inventory.ours import InventoryModel, fleet_from_model, ssh_options
from deployer.inventory.yamlload import (
    Locate,
    YamlDocument,
    YamlPath,
    format_path,
    issues_from_validation,
    load_yaml_mapping,
    read_bounded,
)
from deployer.spec.hooks import TaskCheck, is_tarball_name, resolve_hooks
from deployer.spec.schema import GateModel, NotifyModel, SpecFileModel, SpecModel, StrategyModel

# Keys of an environment's overrides that merge key by key into the base; others replace.
MERGED_BY_KEY = frozenset({"ssh", "strategy", "hooks"})


def load_spec(
    path: str | Path,
    *,
    check_task: TaskCheck,
    version: str | None = None,
    environment: str | None = None,
) -> Spec:
    """Read, validate and resolve a spec, with ``--env`` and ``--version`` applied.

    ``check_task`` tells why a Fabric hook's task cannot be called (loading it runs the
    user's fabfile): the caller passes it in, so reading a spec imports no Fabric.
    Raises :class:`SpecError` listing every problem found, each with file, line and field.
    """
    file = str(path)
    spec_path = Path(path).expanduser().absolute()
    try:
        raw = read_bounded(spec_path)
    except OSError as error:
        raise SpecError.single(file, None, "", f"cannot read the spec: {error.strerror or error}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise SpecError.single(file, None, "", "not a UTF-8 text file") from None
    document = load_yaml_mapping(text, file, "a mapping of spec fields (app, version, fleet, ...)")
    data = document.data
    data = _version_as_written(_without_extensions(data), document)

    try:
        SpecFileModel.model_validate(data)
    except ValidationError as error:
        raise SpecError(sorted_issues(issues_from_validation(error, document, model=SpecFileModel))) from None

    base_environment = data.get("environment", DEFAULT_ENVIRONMENT)
    known = [base_environment, *(name for name in data.get("environments", {}) if name != base_environment)]
    chosen = environment or base_environment
    if chosen not in known:
        raise SpecError.single(
            file,
            document.line_of(("environments",)),
            "environments",
            f"no environment {chosen!r} in this spec (known: {', '.join(known)})",
        )
    overlay = data.get("environments", {}).get(chosen) or {}
    merged = lay_over(data, overlay)
    merged["environment"] = chosen
    locate = _locator(document, data, overlay, chosen)
    try:
        model = SpecModel.model_validate(merged)
    except ValidationError as error:
        issues = issues_from_validation(error, document, model=SpecModel, data=merged, locate=locate)
        raise SpecError(sorted_issues(issues)) from None

    return _resolve(
        model, document, spec_path, raw, locate, version=version, known=tuple(known), check_task=check_task
    )


def lay_over(base: Mapping[str, Any], overlay: Mapping[str, Any]) -> dict[str, Any]:
    """An environment's overrides laid over the base spec (without ``environments``).

    ``ssh``, ``strategy`` and ``hooks`` merge key by key (a hook given replaces that
    hook whole); every other key given replaces the base's value.
    """
    merged = {key: value for key, value in base.items() if key != "environments"}
    for key, value in overlay.items():
        below = merged.get(key)
        if key in MERGED_BY_KEY and isinstance(value, dict) and isinstance(below, dict):
            merged[key] = {**below, **value}
        else:
            merged[key] = value
    return merged


def _locator(
    document: YamlDocument, base: Mapping[str, Any], overlay: Mapping[str, Any], environment: str
) -> Locate:
    """Where a path of the merged spec was written: in the environment's overrides or the base."""
    prefix: YamlPath = ("environments", environment)

    def from_overlay(path: YamlPath) -> bool:
        if not path or path[0] not in overlay:
            return False
        given = overlay[path[0]]
        if path[0] in MERGED_BY_KEY and isinstance(given, dict) and isinstance(base.get(path[0]), dict):
            return len(path) > 1 and path[1] in given
        return True

    def locate(path: YamlPath) -> tuple[YamlPath, int | None]:
        shown = (*prefix, *path) if from_overlay(path) else path
        return shown, document.line_of(shown)

    return locate


def _without_extensions(data: dict[Any, Any]) -> dict[Any, Any]:
    """Top-level ``x-`` keys are free for YAML anchors to live in, as in Compose files."""
    return {key: value for key, value in data.items() if not (isinstance(key, str) and key.startswith("x-"))}


def _version_as_written(data: dict[str, Any], document: YamlDocument) -> dict[str, Any]:
    """An unquoted version is the text as written: YAML reads ``2.10`` as the float 2.1
    and ``2024-06-01`` as a date."""
    value = data.get("version")
    if value is not None and not isinstance(value, str | list | dict):
        written = document.plain_scalars.get(("version",))
        if written is not None:
            return {**data, "version": written}
    return data


def _resolve(
    model: SpecModel,
    document: YamlDocument,
    spec_path: Path,
    raw: bytes,
    locate: Locate,
    *,
    version: str | None,
    known: tuple[str, ...],
    check_task: TaskCheck,
) -> Spec:
    """The validated model as a :class:`Spec`, checking what needs the file system."""
    file = document.file
    base = spec_path.parent
    issues: list[SpecIssue] = []

    def issue(path: YamlPath, message: str) -> None:
        shown, line = locate(path)
        issues.append(SpecIssue(file, line, format_path(shown), message))

    chosen_version = model.version
    if version is not None:
        try:
            chosen_version = check_version(version)
        except PydanticCustomError as error:
            issues.append(SpecIssue(file, None, "version (--version)", error.message()))
    if chosen_version is None:
        issue(("version",), "required field is missing (or give --version)")

    fleet = FleetRef()
    if isinstance(model.fleet, InventoryModel):
        try:
            fleet = FleetRef(
                inline=fleet_from_model(
                    model.fleet,
                    file=file,
                    base_dir=base,
                    locate=lambda path: locate(("fleet", *path)),
                    source=f"{file} (inline fleet)",
                )
            )
        except SpecError as error:
            issues.extend(error.issues)
    else:
        fleet_path = local_path(model.fleet, base)
        if not fleet_path.is_file() and not fleet_path.is_dir():
            issue(("fleet",), f"no inventory file at {fleet_path}")
        fleet = FleetRef(path=fleet_path)

    artifact = local_path(model.artifact, base)
    if artifact.exists() and not artifact.is_dir() and not is_tarball_name(artifact):
        issue(("artifact",), f"{artifact} is neither a directory nor a .tar.gz")

    hooks = resolve_hooks(model.hooks, base, check_task, issue)

    if issues:
        raise SpecError(sorted_issues(issues))
    assert chosen_version is not None
    return Spec(
        path=spec_path,
        sha256=hashlib.sha256(raw).hexdigest(),
        app=model.app,
        version=chosen_version,
        environment=model.environment,
        fleet=fleet,
        artifact=artifact,
        target=model.target,
        keep_releases=model.keep_releases,
        ssh=ssh_options(model.ssh, base),
        strategy=_strategy(model.strategy),
        hooks=hooks,
        environments=known,
        notify=tuple(_notify_sink(sink) for sink in model.notify),
    )


def _strategy(strategy: StrategyModel) -> Strategy:
    """The strategy as the controller reads it (a field of ``strategy:`` is written in
    :class:`~deployer.spec.schema.StrategyModel`, held by :class:`~deployer.core.spec.Strategy`
    and carried over here)."""
    return Strategy(
        batch=strategy.batch,
        stripe=strategy.stripe,
        max_failures=strategy.max_failures,
        bake=strategy.bake,
        on_halt=strategy.on_halt,
        max_parallel=strategy.max_parallel,
        gates=tuple(_gate(gate) for gate in strategy.gates),
        preflight=strategy.preflight,
        stage_ahead=strategy.stage_ahead,
    )


def _gate(gate: GateModel) -> Gate:
    return Gate(
        name=gate.name,
        type=gate.type,
        when=gate.when,
        timeout=gate.timeout,
        interval=gate.interval,
        command=gate.command,
        url=gate.url,
        headers=dict(gate.headers),
        status=gate.status,
        field=gate.field,
        min=gate.min,
        max=gate.max,
    )


def _notify_sink(sink: NotifyModel) -> NotifySink:
    return NotifySink(
        type=sink.type,
        url=sink.url,
        headers=dict(sink.headers),
        command=sink.command,
        events=None if sink.events is None else frozenset(sink.events),
        timeout=sink.timeout,
    )


def load_fleet(spec: Spec) -> Fleet:
    """The fleet a spec deploys to: its inline hosts, or its inventory file read."""
    if spec.fleet.inline is not None:
        return spec.fleet.inline
    if spec.fleet.path is None:
        raise RuntimeError("a spec's FleetRef has neither a path nor inline hosts")
    return load_inventory(spec.fleet.path)
