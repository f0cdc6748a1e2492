"""The schema of a spec file (pydantic, frozen, unknown keys forbidden).

:class:`SpecFileModel` is the whole file, every environment's overrides included;
:class:`SpecModel` is one environment's spec once its overrides are laid over the base.
What the schema cannot know (files that must exist, Fabric tasks that must load) is
checked by :mod:`deployer.spec.load`. The same models give docs/spec.schema.json
(:mod:`deployer.spec.json_schema`).
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import ConfigDict, Discriminator, Field, StrictBool, Tag, model_validator
from pydantic_core import PydanticCustomError

from deployer.core.spec import (
    DEFAULT_BATCH,
    DEFAULT_ENVIRONMENT,
    DEFAULT_GATE_INTERVAL,
    DEFAULT_GATE_TIMEOUT,
    DEFAULT_HOOK_TIMEOUT,
    DEFAULT_KEEP_RELEASES,
    DEFAULT_MAX_FAILURES,
    MIN_KEEP_RELEASES,
    GateWhen,
    NotifyEvent,
    OnHalt,
    Stripe,
)
from deployer.inventory.fields import (
    NAME_PATTERN,
    VERSION_PATTERN,
    Batch,
    Command,
    CommandText,
    CountValue,
    Duration,
    FrozenModel,
    Headers,
    LocalPath,
    Name,
    PositiveDuration,
    Target,
    Url,
    Version,
    WavesAhead,
    count_json,
)
from deployer.inventory.ours import InventoryModel, SshModel
from deployer.inventory.yamlload import describe

_TASK = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]*")


class HookModel(FrozenModel):
    """A hook written as a mapping: a shell command or a Fabric task, with its limits."""

    # What _one_action checks, for editors: exactly one of command and fabric; args
    # only with fabric.
    model_config = ConfigDict(
        json_schema_extra={
            "oneOf": [{"required": ["command"]}, {"required": ["fabric"]}],
            "dependentRequired": {"args": ["fabric"]},
        }
    )

    command: CommandText | None = Field(
        default=None, description="shell command, or a script inside the artifact"
    )
    fabric: str | None = Field(
        default=None,
        description="a Fabric task: fabfile.py:task, relative to the spec",
        json_schema_extra={"pattern": f"^.+:{_TASK.pattern}$"},
    )
    args: dict[str, Any] | None = Field(default=None, description="keyword arguments for the Fabric task")
    timeout: PositiveDuration | None = Field(default=None, description="default: hooks.timeout")
    retries: int | None = Field(
        default=None, ge=0, le=1000, strict=True, description="extra attempts after a failure"
    )
    interval: Duration | None = Field(default=None, description="pause between attempts (default 2s)")

    @model_validator(mode="after")
    def _one_action(self) -> HookModel:
        if (self.command is None) == (self.fabric is None):
            raise PydanticCustomError("hook_action", "give either command or fabric (exactly one of them)")
        if self.args is not None and self.fabric is None:
            raise PydanticCustomError("hook_args", "args are passed to a Fabric task: give fabric too")
        if self.fabric is not None:
            file, _, task = self.fabric.rpartition(":")
            if not file or _TASK.fullmatch(task) is None:
                raise PydanticCustomError(
                    "hook_fabric",
                    "fabric must look like fabfile.py:task (got {got})",
                    {"got": describe(self.fabric)},
                )
        return self


def _hook_form(value: Any) -> str | None:
    if isinstance(value, str):
        return "string-form"
    if isinstance(value, dict | HookModel):
        return "mapping-form"
    return None


HookValue = Annotated[
    Annotated[CommandText, Tag("string-form")] | Annotated[HookModel, Tag("mapping-form")],
    Discriminator(
        _hook_form,
        custom_error_type="hook_type",
        custom_error_message="expected a command string, or a mapping with command or fabric",
    ),
]


class HooksModel(FrozenModel):
    """Lifecycle hooks, in the order they run; null or absent means none."""

    stop: HookValue | None = Field(default=None, description="stops the running release, after the upload")
    before_install: HookValue | None = Field(
        default=None, description="runs after stop, before after_install"
    )
    after_install: HookValue | None = Field(
        default=None, description="runs in the new release, before the switch"
    )
    start: HookValue | None = Field(default=None, description="starts the new release, after the switch")
    validate_: HookValue | None = Field(
        default=None, alias="validate", description="checks the host; retried as configured"
    )
    timeout: PositiveDuration = Field(
        default=DEFAULT_HOOK_TIMEOUT, description="default timeout of each hook (5m)"
    )
    contain: StrictBool = Field(
        default=False,
        description="run each hook in a cgroup of its own, all of it killed at its timeout"
        " (needs cgroup v2 writable by the remote user)",
    )


def _when_type(type_: str, then: dict[str, Any]) -> dict[str, Any]:
    return {"if": {"properties": {"type": {"const": type_}}, "required": ["type"]}, "then": then}


class GateModel(FrozenModel):
    """A check the controller runs itself between waves; a failing one halts the deployment."""

    # The shape each type needs (_fits_its_type), said to editors too.
    model_config = ConfigDict(
        frozen=True,
        extra="forbid",
        json_schema_extra={
            "allOf": [
                _when_type("command", {"required": ["command"]}),
                _when_type("http", {"required": ["url"]}),
                {"dependentRequired": {"min": ["field"], "max": ["field"]}},
            ]
        },
    )

    name: Name = Field(description="named in the halt reason and in --json")
    type: Literal["command", "http"] = Field(description="command: a local command; http: a URL")
    when: GateWhen = Field(default=GateWhen.AFTER_WAVE, description="before, after_wave (default) or bake")
    command: Command | None = Field(default=None, description="command: run by sh here; exit 0 passes")
    url: Url | None = Field(default=None, description="http: the URL to GET")
    headers: Headers = Field(
        default_factory=dict, description="http: request headers; ${NAME} is the environment variable NAME"
    )
    status: int = Field(default=200, ge=100, le=599, strict=True, description="http: the status expected")
    field: str | None = Field(
        default=None,
        description="http: a JSON field path to compare: keys and list indexes, data.result.0.value.1",
    )
    min: float | None = Field(default=None, description="http: the field's value must be at least this")
    max: float | None = Field(default=None, description="http: the field's value must be at most this")
    timeout: PositiveDuration = Field(default=DEFAULT_GATE_TIMEOUT, description="per check (default 10s)")
    interval: PositiveDuration = Field(
        default=DEFAULT_GATE_INTERVAL, description="bake: time between checks (default 30s)"
    )

    @model_validator(mode="after")
    def _fits_its_type(self) -> GateModel:
        if self.type == "command":
            if self.command is None:
                raise PydanticCustomError("gate_shape", "a command gate needs command")
            if self.url is not None or self.headers or self.field is not None:
                raise PydanticCustomError("gate_shape", "url, headers and field are for http gates")
        else:
            if self.url is None:
                raise PydanticCustomError("gate_shape", "an http gate needs url")
            if self.command is not None:
                raise PydanticCustomError("gate_shape", "command is for command gates")
        if (self.min is not None or self.max is not None) and self.field is None:
            raise PydanticCustomError("gate_shape", "min and max compare a JSON field: give field too")
        if self.field is not None and self.min is None and self.max is None:
            raise PydanticCustomError("gate_shape", "field is compared with min or max: give one")
        return self


class NotifyModel(FrozenModel):
    """Where a deployment's events go: a webhook, or a local command reading them on stdin."""

    model_config = ConfigDict(
        frozen=True,
        extra="forbid",
        json_schema_extra={
            "allOf": [
                _when_type("webhook", {"required": ["url"]}),
                _when_type("command", {"required": ["command"]}),
            ]
        },
    )

    type: Literal["webhook", "command"] = Field(description="webhook: POST the JSON; command: pipe it")
    url: Url | None = Field(default=None, description="webhook: the URL to POST to")
    headers: Headers = Field(
        default_factory=dict, description="webhook: request headers; ${NAME} is the environment variable"
    )
    command: Command | None = Field(default=None, description="command: run by sh with the JSON on stdin")
    events: tuple[NotifyEvent, ...] | None = Field(
        default=None, description="only these events (default all)"
    )
    timeout: PositiveDuration = Field(default=5.0, description="per attempt (default 5s)")

    @model_validator(mode="after")
    def _fits_its_type(self) -> NotifyModel:
        if self.type == "webhook" and (self.url is None or self.command is not None):
            raise PydanticCustomError("notify_shape", "a webhook needs url (and no command)")
        if self.type == "command" and (self.command is None or self.url is not None or self.headers):
            raise PydanticCustomError("notify_shape", "a command sink needs command (and no url or headers)")
        return self


class StrategyModel(FrozenModel):
    """How the fleet is walked: wave sizes, striping, failure budget, pauses."""

    batch: Batch = Field(
        default=DEFAULT_BATCH,
        json_schema_extra={"default": [count_json(count) for count in DEFAULT_BATCH]},
        description="wave sizes, counts or percents; the last one repeats",
    )
    stripe: Stripe = Field(
        default=Stripe.DATACENTER, description="datacenter: spread each wave over datacenters; none"
    )
    max_failures: CountValue = Field(
        default=DEFAULT_MAX_FAILURES,
        json_schema_extra={"default": count_json(DEFAULT_MAX_FAILURES)},
        description="more failed hosts than this halts the deployment",
    )
    bake: Duration = Field(default=0.0, description="pause after each wave before the next starts")
    on_halt: OnHalt = Field(default=OnHalt.STOP, description="stop, or rollback the hosts already switched")
    max_parallel: int | None = Field(
        default=None, ge=1, strict=True, description="hosts running at once (default: the wave)"
    )
    stage_ahead: WavesAhead = Field(
        default=1,
        description=(
            "waves whose hosts get their release ahead of their wave (sent and unpacked, nothing "
            "live changed), so a wave costs one message per host; 0 turns it off, all stages every "
            "later wave (default 1)"
        ),
    )
    preflight: bool = Field(
        default=False,
        strict=True,
        description="run deploy check on every host before wave 1; a failing host stops the push",
    )
    gates: tuple[GateModel, ...] = Field(
        default=(), description="checks the controller runs between waves; a failing one halts"
    )

    @model_validator(mode="after")
    def _gates_fit(self) -> StrategyModel:
        names = [gate.name for gate in self.gates]
        repeated = sorted({name for name in names if names.count(name) > 1})
        if repeated:
            raise PydanticCustomError(
                "gate_names", "gate names must be unique: {names}", {"names": ", ".join(repeated)}
            )
        if self.bake <= 0 and any(gate.when is GateWhen.BAKE for gate in self.gates):
            raise PydanticCustomError("gate_bake", "a gate with when: bake needs bake above zero")
        return self


FleetValue = Annotated[
    Annotated[LocalPath, Tag("path-form")] | Annotated[InventoryModel, Tag("inline-form")],
    Discriminator(
        lambda value: (
            "path-form" if isinstance(value, str) else "inline-form" if isinstance(value, dict) else None
        ),
        custom_error_type="fleet_type",
        custom_error_message="expected the path of an inventory, or an inline mapping with hosts",
    ),
]


class SpecModel(FrozenModel):
    """One deployable app: what to send, where, and how carefully."""

    app: Name = Field(description="the app's name")
    version: Version | None = Field(
        default=None,
        description="the version to deploy; --version overrides it",
        # An unquoted 1.10 is a number to YAML; the tool reads the text as written.
        json_schema_extra={
            "anyOf": [
                {"type": "string", "pattern": f"^(?:{VERSION_PATTERN.pattern})$"},
                {"type": "number", "minimum": 0},
                {"type": "null"},
            ]
        },
    )
    environment: Name = Field(
        default=DEFAULT_ENVIRONMENT, description="the environment deployed without --env"
    )
    fleet: FleetValue = Field(description="inventory path (relative to this file) or inline {hosts, ssh}")
    artifact: LocalPath = Field(description="a directory or .tar.gz, relative to this file")
    target: Target = Field(description="directory on each host; may start with ~/ (the remote home)")
    keep_releases: int = Field(
        default=DEFAULT_KEEP_RELEASES,
        ge=MIN_KEEP_RELEASES,
        le=1000,
        strict=True,
        description="releases kept per host",
    )
    ssh: SshModel = Field(default=SshModel(), description="SSH settings over the inventory's")
    strategy: StrategyModel = Field(default=StrategyModel())
    hooks: HooksModel = Field(default=HooksModel())
    notify: tuple[NotifyModel, ...] = Field(default=(), description="where the deployment's events go")


class OverlayModel(FrozenModel):
    """One environment's overrides: ssh, strategy and hooks merge key by key, the rest replaces."""

    fleet: FleetValue | None = None
    artifact: LocalPath | None = None
    target: Target | None = None
    keep_releases: int | None = Field(default=None, ge=MIN_KEEP_RELEASES, le=1000, strict=True)
    ssh: SshModel | None = None
    strategy: StrategyModel | None = None
    hooks: HooksModel | None = None
    notify: tuple[NotifyModel, ...] | None = None


class SpecFileModel(SpecModel):
    """A spec file: the base spec and per-environment overrides."""

    model_config = ConfigDict(
        title="deployer spec", json_schema_extra={"patternProperties": {"^x-": {"description": "ignored"}}}
    )

    environments: dict[Name, OverlayModel | None] = Field(
        default_factory=dict,
        description="per-environment overrides, chosen with --env",
        json_schema_extra={"propertyNames": {"pattern": f"^(?:{NAME_PATTERN.pattern})$"}},
    )
