"""The deployment spec: YAML in, a validated and frozen :class:`Spec` out.

Reading a spec takes four steps, each reporting every problem it finds at once:

1. :func:`~deployer.yamlload.load_yaml` parses the file and remembers the line of
   every key;
2. :class:`SpecFileModel` (pydantic, frozen, unknown keys forbidden) checks the
   shape of the whole file, every environment's overrides included;
3. the chosen environment's overrides are laid over the base
   (:func:`lay_over`) and the result is checked again;
4. what pydantic cannot know is checked last: that the fleet file exists, that
   Fabric tasks load (:func:`deployer.fabric_hooks.task_problem`), that an inline
   fleet's host names are unique, the version.

Every problem becomes a :class:`~deployer.errors.SpecIssue` naming the file, the
line and the dotted field (``strategy.batch[1]``), raised together in one
:class:`~deployer.errors.SpecError`.

This module also holds the schema of our own inventory format (it may stand
inline under ``fleet:``) and the fleet-wide host checks every inventory format
shares; :mod:`deployer.inventory` reads inventory files.
"""

from __future__ import annotations

import hashlib
import posixpath
import re
import tarfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Literal, get_args

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    PlainSerializer,
    PlainValidator,
    StrictBool,
    Tag,
    ValidationError,
    WithJsonSchema,
    model_validator,
)
from pydantic_core import PydanticCustomError

from deployer.errors import ArtifactError, SpecError, SpecIssue
from deployer.fleet import Fleet, Host, SshOptions
from deployer.quantities import (
    COUNT_PATTERN,
    DURATION_FORMS,
    DURATION_PATTERN,
    POSITIVE_COUNT_PATTERN,
    Count,
    parse_duration,
)
from deployer.results import Step
from deployer.runner import HookCommand
from deployer.yamlload import (
    Locate,
    YamlDocument,
    YamlPath,
    describe,
    format_path,
    issues_from_validation,
    load_yaml_mapping,
    read_bounded,
)

# --- defaults (docs/spec.md lists each one) --------------------------------------------

DEFAULT_ENVIRONMENT = "production"
DEFAULT_KEEP_RELEASES = 5
MIN_KEEP_RELEASES = 2  # the release being replaced must stay for a rollback
DEFAULT_BATCH = (Count(1), Count(25, percent=True))
DEFAULT_MAX_FAILURES = Count(0)
DEFAULT_HOOK_TIMEOUT = 300.0
DEFAULT_HOOK_INTERVAL = 2.0

# --- names people write ---------------------------------------------------------------

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,62}")
_VERSION = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+~-]{0,127}")
_HOST_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.:-]{0,252}")
_ADDRESS = re.compile(r"[A-Za-z0-9_.:%\[\]][A-Za-z0-9_.:%\[\]-]{0,252}")
_USER = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}")
_LABEL = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,62}")
_TASK = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]*")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_JUMP_HOP = r"(?:[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}@)?[A-Za-z0-9_.%][A-Za-z0-9_.%-]{0,252}(?::[0-9]{1,5})?"
_PROXY_JUMP = re.compile(f"none|{_JUMP_HOP}(?:,{_JUMP_HOP})*")


def _matcher(pattern: re.Pattern[str], expected: str) -> Callable[[Any], str]:
    def check(value: Any) -> str:
        if not isinstance(value, str):
            raise PydanticCustomError(
                "name_type", "expected {expected} (got {got})", {"expected": expected, "got": describe(value)}
            )
        if pattern.fullmatch(value) is None:
            raise PydanticCustomError(
                "name_value",
                "{got} is not valid: expected {expected}",
                {"expected": expected, "got": describe(value)},
            )
        return value

    return check


check_name = _matcher(
    _NAME,
    "a name of letters, digits, '.', '_' and '-' that starts with a letter or digit (at most 63 characters)",
)
check_version = _matcher(
    _VERSION,
    "a version of letters, digits and '.', '_', '+', '~', '-' that starts with a letter or digit"
    " (at most 128 characters)",
)
MAX_LABEL_LENGTH = 63  # of each dot-separated label of a DNS name (RFC 1035)


def _labelled(check: Callable[[Any], str]) -> Callable[[Any], str]:
    """``check``, then no dot-separated label longer than :data:`MAX_LABEL_LENGTH`."""

    def check_labels(value: Any) -> str:
        text = check(value)
        if any(len(label) > MAX_LABEL_LENGTH for label in text.split(".")):
            raise PydanticCustomError(
                "name_value",
                "{got} is not valid: each part between dots may have at most {limit} characters",
                {"got": describe(value), "limit": MAX_LABEL_LENGTH},
            )
        return text

    return check_labels


check_host_name = _labelled(_matcher(_HOST_NAME, "a host name of letters, digits, '.', '_', ':' and '-'"))
check_address = _labelled(_matcher(_ADDRESS, "a host name or IP address"))
check_user = _matcher(_USER, "a user name of letters, digits, '.', '_' and '-'")
check_label = _matcher(
    _LABEL, "a label of letters, digits, '.', '_' and '-' that starts with a letter or digit"
)
check_proxy_jump = _matcher(
    _PROXY_JUMP, "a jump host as OpenSSH's ProxyJump: [user@]host[:port], hops separated by commas, or none"
)


def _string_schema(pattern: re.Pattern[str]) -> WithJsonSchema:
    return WithJsonSchema({"type": "string", "pattern": f"^(?:{pattern.pattern})$"})


Name = Annotated[str, PlainValidator(check_name), _string_schema(_NAME)]
Version = Annotated[str, PlainValidator(check_version), _string_schema(_VERSION)]
HostName = Annotated[str, PlainValidator(check_host_name), _string_schema(_HOST_NAME)]
Address = Annotated[str, PlainValidator(check_address), _string_schema(_ADDRESS)]
UserName = Annotated[str, PlainValidator(check_user), _string_schema(_USER)]
Label = Annotated[str, PlainValidator(check_label), _string_schema(_LABEL)]
ProxyJump = Annotated[str, PlainValidator(check_proxy_jump), _string_schema(_PROXY_JUMP)]


def _non_blank(value: str) -> str:
    if not value.strip():
        raise ValueError("expected a command, got an empty string")
    return value


# A command with something in it; the pattern says the same to editors.
CommandText = Annotated[str, AfterValidator(_non_blank), WithJsonSchema({"type": "string", "pattern": r"\S"})]


MAX_PATH_BYTES = 1024  # a path written in a spec; the system's own limit is 4096 in all
MAX_PATH_NAME_BYTES = 255  # each name between slashes, as most file systems allow


def _local_path_text(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise PydanticCustomError("path_type", "expected a file path (got {got})", {"got": describe(value)})
    if _CONTROL.search(value):
        raise ValueError("a path cannot contain control characters or line breaks")
    # Checked here so that no file system call later fails with "File name too long".
    size = len(value.encode("utf-8", "surrogatepass"))
    if size > MAX_PATH_BYTES:
        raise ValueError(f"a path may have at most {MAX_PATH_BYTES} bytes (got {size})")
    if any(len(part.encode("utf-8", "surrogatepass")) > MAX_PATH_NAME_BYTES for part in value.split("/")):
        raise ValueError(f"each name in a path may have at most {MAX_PATH_NAME_BYTES} bytes")
    return value


LocalPath = Annotated[
    str, PlainValidator(_local_path_text), WithJsonSchema({"type": "string", "minLength": 1})
]


# Top-level directories a target may not be itself (anything under them is fine):
# deploying into one would scatter releases/, current and .deploy/ among system files.
SYSTEM_DIRECTORIES = frozenset(
    [
        "/etc",
        "/usr",
        "/bin",
        "/sbin",
        "/lib",
        "/lib64",
        "/boot",
        "/dev",
        "/proc",
        "/sys",
        "/var",
        "/root",
        "/home",
        "/tmp",
    ]
)
# The same rule as :func:`_target`, for editors that read docs/spec.schema.json: one or
# more segments after / or ~/, none of them . or .., no repeated slash, one trailing /
# at most, and not a system directory itself.
_SEGMENT = r"(?!\.\.?(?:/|$))[^/]+"
TARGET_PATTERN = (
    r"^(?!/(?:" + "|".join(sorted(name[1:] for name in SYSTEM_DIRECTORIES)) + r")/?$)"
    rf"(?:/|~/){_SEGMENT}(?:/{_SEGMENT})*/?$"
)


def _target(value: Any) -> str:
    """The remote directory: absolute or under ``~``, written plainly, and the app's own.

    Refused rather than rewritten: a ``.`` or ``..`` segment and repeated slashes (``/./``
    and ``~/.`` mean ``/`` and ``~``), ``/``, ``~`` and the system directories of
    :data:`SYSTEM_DIRECTORIES` themselves. One trailing ``/`` is dropped.
    """
    text = _local_path_text(value)
    if not (text.startswith("/") or text == "~" or text.startswith("~/")):
        raise ValueError(f"{text!r} must be an absolute path or start with ~/ (the remote user's home)")
    trimmed = text[:-1] if len(text) > 1 and text.endswith("/") else text
    if "//" in trimmed or (trimmed.endswith("/") and trimmed != "/"):
        raise ValueError(f"{text!r} must not contain repeated slashes")
    segments = trimmed.split("/")[1:]
    if any(segment in (".", "..") for segment in segments):
        raise ValueError(f"{text!r} must not contain a '.' or '..' segment")
    if trimmed in ("/", "~") or trimmed in SYSTEM_DIRECTORIES:
        raise ValueError(f"{text!r} is too broad: give the app its own directory, e.g. /srv/webapp")
    return trimmed


Target = Annotated[
    str, PlainValidator(_target), WithJsonSchema({"type": "string", "pattern": TARGET_PATTERN})
]

# --- quantities -----------------------------------------------------------------------


def _duration(value: Any, *, positive: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise PydanticCustomError(
            "duration_type",
            "expected a duration, {forms} (got {got})",
            {"forms": DURATION_FORMS, "got": describe(value)},
        )
    try:
        seconds = parse_duration(value)
    except ValueError as error:
        raise PydanticCustomError("duration_value", "{problem}", {"problem": str(error)}) from None
    if positive and seconds <= 0:
        raise PydanticCustomError(
            "duration_value", "expected a duration above zero (got {got})", {"got": describe(value)}
        )
    return seconds


def _positive_duration(value: Any) -> float:
    return _duration(value, positive=True)


def _duration_schema(minimum: str) -> WithJsonSchema:
    return WithJsonSchema(
        {
            "anyOf": [{"type": "number", minimum: 0}, {"type": "string", "pattern": DURATION_PATTERN}],
            "description": f"seconds, or {DURATION_FORMS}",
        }
    )


Duration = Annotated[float, PlainValidator(_duration), _duration_schema("minimum")]
PositiveDuration = Annotated[float, PlainValidator(_positive_duration), _duration_schema("exclusiveMinimum")]


def _count(value: Any, *, positive: bool = False) -> Count:
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise PydanticCustomError(
            "count_type",
            "expected a count such as 3 or a percent such as 10% (got {got})",
            {"got": describe(value)},
        )
    try:
        count = Count.parse(value)
    except ValueError as error:
        raise PydanticCustomError("count_value", "{problem}", {"problem": str(error)}) from None
    if positive and count.value <= 0:
        raise PydanticCustomError(
            "count_value", "a wave needs at least one host (got {got})", {"got": describe(value)}
        )
    return count


def _wave_size(value: Any) -> Count:
    return _count(value, positive=True)


def _count_json(count: Count) -> int | str:
    return str(count) if count.percent else int(count.value)


_COUNT_SCHEMA: dict[str, Any] = {
    "anyOf": [{"type": "integer", "minimum": 0}, {"type": "string", "pattern": COUNT_PATTERN}],
    "description": "a number of hosts (3) or a percent of them (10%)",
}
_WAVE_SIZE_SCHEMA: dict[str, Any] = {
    "anyOf": [{"type": "integer", "minimum": 1}, {"type": "string", "pattern": POSITIVE_COUNT_PATTERN}],
    "description": "a number of hosts (3) or a percent of them (10%), above zero",
}
CountValue = Annotated[
    Count, PlainValidator(_count), PlainSerializer(_count_json), WithJsonSchema(_COUNT_SCHEMA)
]
WaveSize = Annotated[
    Count, PlainValidator(_wave_size), PlainSerializer(_count_json), WithJsonSchema(_WAVE_SIZE_SCHEMA)
]


def _as_list(value: Any) -> Any:
    """A single value where a list is expected stands for a list of one."""
    return value if isinstance(value, list | tuple) else [value]


Batch = Annotated[
    tuple[WaveSize, ...],
    BeforeValidator(_as_list),
    Field(min_length=1),
    WithJsonSchema(
        {"anyOf": [_WAVE_SIZE_SCHEMA, {"type": "array", "items": _WAVE_SIZE_SCHEMA, "minItems": 1}]}
    ),
]
Labels = Annotated[
    tuple[Label, ...],
    BeforeValidator(_as_list),
    WithJsonSchema({"anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}]}),
]


class Stripe(StrEnum):
    """How hosts are spread over a wave."""

    DATACENTER = "datacenter"  # every wave takes its share from each datacenter
    NONE = "none"  # waves follow inventory order


class OnHalt(StrEnum):
    """What a halted deployment does to the hosts it already switched."""

    STOP = "stop"  # leave them on the new version
    ROLLBACK = "rollback"  # switch them back to the version they ran before


# --- the schema (pydantic) ------------------------------------------------------------


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class SshModel(_Model):
    """How to reach the hosts; every key optional (built-in defaults < inventory < spec)."""

    user: UserName | None = Field(default=None, description="remote user (a host's own user wins)")
    identity_file: LocalPath | None = Field(
        default=None, description="private key; ~ is the local home, relative to this file"
    )
    known_hosts: LocalPath | None = Field(
        default=None, description="known_hosts file; ~ is the local home, relative to this file"
    )
    connect_timeout: PositiveDuration | None = Field(default=None, description="default 10s")
    keepalive: Duration | None = Field(
        default=None, description="keepalive interval, 0 turns it off; default 15s"
    )
    host_key_policy: Literal["strict", "accept-new"] | None = Field(
        default=None,
        description="strict: the host key must be known; accept-new: learn unknown keys (default strict)",
    )
    use_ssh_config: StrictBool | None = Field(
        default=None, description="read the OpenSSH client config, config_file (default true)"
    )
    config_file: LocalPath | None = Field(
        default=None,
        description="OpenSSH client config (default ~/.ssh/config); paths as for identity_file",
    )
    proxy_jump: ProxyJump | None = Field(
        default=None,
        description="jump hosts as OpenSSH's ProxyJump: [user@]host[:port], comma-separated; none: direct",
    )


class HostModel(_Model):
    """One host of our inventory format."""

    name: HostName = Field(description="unique name of the host")
    address: Address | None = Field(
        default=None, description="host name or IP to connect to (default: the name)"
    )
    port: int | None = Field(
        default=None, ge=1, le=65535, strict=True, description="SSH port (default: ~/.ssh/config's, else 22)"
    )
    user: UserName | None = Field(default=None, description="remote user for this host")
    datacenter: Label = Field(description="the datacenter the host is in; waves are striped across these")
    tags: Labels = Field(default=(), description="labels for --limit tag:NAME")
    ssh: SshModel = Field(
        default=SshModel(), description="this host's own SSH settings, over every ssh: block"
    )


class InventoryModel(_Model):
    """Our inventory format: a list of hosts and inventory-wide SSH settings."""

    model_config = ConfigDict(title="deployer inventory")

    hosts: tuple[HostModel, ...] = Field(
        description="the hosts, in deployment order", json_schema_extra={"minItems": 1}
    )
    ssh: SshModel = Field(default=SshModel(), description="SSH defaults for these hosts")


class HookModel(_Model):
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


class HooksModel(_Model):
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


_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")  # an HTTP token (RFC 9110)
DEFAULT_GATE_TIMEOUT = 10.0
DEFAULT_GATE_INTERVAL = 30.0


def _url(value: Any) -> str:
    if not isinstance(value, str) or not value.startswith(("http://", "https://")):
        raise PydanticCustomError(
            "url_type", "expected an http:// or https:// URL (got {got})", {"got": describe(value)}
        )
    if _CONTROL.search(value) or " " in value:
        raise ValueError("a URL cannot contain spaces, control characters or line breaks")
    return value


def _header_value(value: Any) -> str:
    if not isinstance(value, str):
        raise PydanticCustomError(
            "header_type", "expected a header value (got {got})", {"got": describe(value)}
        )
    if _CONTROL.search(value):
        raise ValueError("a header value cannot contain control characters or line breaks")
    return value


def _header_name(value: Any) -> str:
    if not isinstance(value, str) or _HEADER_NAME.fullmatch(value) is None:
        raise PydanticCustomError(
            "header_name", "expected an HTTP header name (got {got})", {"got": describe(value)}
        )
    return value


Url = Annotated[
    str, PlainValidator(_url), WithJsonSchema({"type": "string", "pattern": "^https?://[^\\s]+$"})
]
HeaderName = Annotated[str, PlainValidator(_header_name), WithJsonSchema({"type": "string"})]
HeaderValue = Annotated[str, PlainValidator(_header_value), WithJsonSchema({"type": "string"})]
Headers = dict[HeaderName, HeaderValue]
Command = Annotated[str, AfterValidator(_non_blank)]


class GateWhen(StrEnum):
    """When the controller checks a gate."""

    BEFORE = "before"  # once, before wave 1
    AFTER_WAVE = "after_wave"  # once after each wave (after its bake), the last one included
    BAKE = "bake"  # every interval during each bake


def _when_type(type_: str, then: dict[str, Any]) -> dict[str, Any]:
    return {"if": {"properties": {"type": {"const": type_}}, "required": ["type"]}, "then": then}


class GateModel(_Model):
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


NotifyEvent = Literal[
    "started",
    "wave_started",
    "wave_finished",
    "paused",
    "resumed",
    "halted",
    "succeeded",
    "failed",
    "aborted",
    "rollback_started",
    "rollback_finished",
]
NOTIFY_EVENTS: tuple[str, ...] = get_args(NotifyEvent)  # in the order a deployment tells them


class NotifyModel(_Model):
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


class StrategyModel(_Model):
    """How the fleet is walked: wave sizes, striping, failure budget, pauses."""

    batch: Batch = Field(
        default=DEFAULT_BATCH,
        json_schema_extra={"default": [_count_json(count) for count in DEFAULT_BATCH]},
        description="wave sizes, counts or percents; the last one repeats",
    )
    stripe: Stripe = Field(
        default=Stripe.DATACENTER, description="datacenter: spread each wave over datacenters; none"
    )
    max_failures: CountValue = Field(
        default=DEFAULT_MAX_FAILURES,
        json_schema_extra={"default": _count_json(DEFAULT_MAX_FAILURES)},
        description="more failed hosts than this halts the deployment",
    )
    bake: Duration = Field(default=0.0, description="pause after each wave before the next starts")
    on_halt: OnHalt = Field(default=OnHalt.STOP, description="stop, or rollback the hosts already switched")
    max_parallel: int | None = Field(
        default=None, ge=1, strict=True, description="hosts running at once (default: the wave)"
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


class SpecModel(_Model):
    """One deployable app: what to send, where, and how carefully."""

    app: Name = Field(description="the app's name")
    version: Version | None = Field(
        default=None,
        description="the version to deploy; --version overrides it",
        # An unquoted 1.10 is a number to YAML; the tool reads the text as written.
        json_schema_extra={
            "anyOf": [
                {"type": "string", "pattern": f"^(?:{_VERSION.pattern})$"},
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


class OverlayModel(_Model):
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
        json_schema_extra={"propertyNames": {"pattern": f"^(?:{_NAME.pattern})$"}},
    )


# --- the spec as the rest of deployer sees it -----------------------------------------


@dataclass(frozen=True, slots=True)
class Strategy:
    batch: tuple[Count, ...]
    stripe: Stripe
    max_failures: Count
    bake: float  # seconds
    on_halt: OnHalt
    max_parallel: int | None  # None: as many as the wave holds
    gates: tuple[Gate, ...] = ()
    preflight: bool = False  # deploy check before wave 1


@dataclass(frozen=True, slots=True)
class Gate:
    """A check between waves (see :class:`GateModel`), its defaults filled in."""

    name: str
    type: str  # "command" or "http"
    when: GateWhen
    timeout: float
    interval: float
    command: str | None = None
    url: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    status: int = 200
    field: str | None = None
    min: float | None = None
    max: float | None = None


@dataclass(frozen=True, slots=True)
class NotifySink:
    """A place a deployment's events go (see :class:`NotifyModel`)."""

    type: str  # "webhook" or "command"
    url: str | None
    headers: Mapping[str, str]
    command: str | None
    events: frozenset[str] | None  # None: every event
    timeout: float


@dataclass(frozen=True, slots=True)
class Hook:
    """A hook with its limits filled in; exactly one of command and fabric is set."""

    command: str | None
    fabric: str | None  # "/absolute/fabfile.py:task"
    args: Mapping[str, Any]
    timeout: float
    retries: int
    interval: float
    contain: bool = False  # hooks.contain: in a cgroup of its own on the host


@dataclass(frozen=True, slots=True)
class FleetRef:
    """Where the hosts come from: an inventory file (``path``) or hosts written in the spec (``inline``)."""

    path: Path | None = None
    inline: Fleet | None = None


@dataclass(frozen=True, slots=True)
class Spec:
    path: Path  # the spec file, absolute
    sha256: str  # of the file's bytes, recorded with each deployment
    app: str
    version: str
    environment: str
    fleet: FleetRef
    artifact: Path
    target: str  # may start with ~ (the remote user's home)
    keep_releases: int
    ssh: SshOptions
    strategy: Strategy
    hooks: Mapping[Step, Hook]
    environments: tuple[str, ...] = ()  # every environment the spec knows, the default first
    notify: tuple[NotifySink, ...] = ()

    def hook_commands(self) -> dict[Step, HookCommand]:
        """Each hook as the runner runs it.

        A command whose first word is a relative path to a file in the artifact (a
        directory or a member of the .tar.gz) is a script, run from the release as
        ``./path``. Without the artifact (a rollback after the build was cleaned), a
        bare first word is taken as a command, but a relative path with a ``/`` cannot be
        told apart and raises :class:`ArtifactError`.
        """
        listed: list[frozenset[str]] = []  # a tarball's files, read once when first needed

        def artifact_has(word: str) -> bool:
            if self.artifact.is_dir():
                return (self.artifact / word).is_file()
            if not self.artifact.exists():
                if "/" not in word:
                    return False
                raise ArtifactError(
                    f"artifact {self.artifact} does not exist; it is needed to tell whether"
                    f" the hook {word!r} is a script in it"
                )
            if not listed:
                listed.append(tarball_files(self.artifact))
            return word in listed[0]

        commands: dict[Step, HookCommand] = {}
        for step, hook in self.hooks.items():
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


_STEP_OF_HOOK = {
    "stop": Step.STOP,
    "before_install": Step.BEFORE_INSTALL,
    "after_install": Step.AFTER_INSTALL,
    "start": Step.START,
    "validate_": Step.VALIDATE,
}
_SHELL_SPECIAL = re.compile(r"[\"'`$\\;&|<>(){}*?\[\]=!#]")


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


# --- loading ----------------------------------------------------------------------------

# Keys of an environment's overrides that merge key by key into the base; others replace.
MERGED_BY_KEY = frozenset({"ssh", "strategy", "hooks"})


def load_spec(path: str | Path, *, version: str | None = None, environment: str | None = None) -> Spec:
    """Read, validate and resolve a spec, with ``--env`` and ``--version`` applied.

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

    return _resolve(model, document, spec_path, raw, locate, version=version, known=tuple(known))


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

    hooks: dict[Step, Hook] = {}
    for attribute, step in _STEP_OF_HOOK.items():
        value = getattr(model.hooks, attribute)
        if value is None:
            continue
        name = step.value
        if isinstance(value, str):
            hooks[step] = Hook(
                value, None, {}, model.hooks.timeout, 0, DEFAULT_HOOK_INTERVAL, model.hooks.contain
            )
            continue
        fabric = None
        if value.fabric is not None:
            fabfile, _, task = value.fabric.rpartition(":")
            fabfile_path = local_path(fabfile, base)
            fabric = f"{fabfile_path}:{task}"
            if not fabfile_path.is_file():
                issue(("hooks", name, "fabric"), f"no Fabric file at {fabfile_path}")
            else:
                # Loading the task runs the fabfile, here and not on a host: a broken one is
                # a spec error before any host is touched. Fabric loads only for such specs.
                from deployer.fabric_hooks import task_problem

                problem = task_problem(fabric, value.args or {})
                if problem is not None:
                    issue(("hooks", name, "fabric"), problem)
        hooks[step] = Hook(
            command=value.command,
            fabric=fabric,
            args=dict(value.args or {}),
            timeout=value.timeout if value.timeout is not None else model.hooks.timeout,
            retries=value.retries or 0,
            interval=value.interval if value.interval is not None else DEFAULT_HOOK_INTERVAL,
            contain=model.hooks.contain,
        )

    if issues:
        raise SpecError(sorted_issues(issues))
    assert chosen_version is not None
    strategy = model.strategy
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
        strategy=Strategy(
            batch=strategy.batch,
            stripe=strategy.stripe,
            max_failures=strategy.max_failures,
            bake=strategy.bake,
            on_halt=strategy.on_halt,
            max_parallel=strategy.max_parallel,
            gates=tuple(
                Gate(
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
                for gate in strategy.gates
            ),
            preflight=strategy.preflight,
        ),
        hooks=hooks,
        environments=known,
        notify=tuple(
            NotifySink(
                type=sink.type,
                url=sink.url,
                headers=dict(sink.headers),
                command=sink.command,
                events=None if sink.events is None else frozenset(sink.events),
                timeout=sink.timeout,
            )
            for sink in model.notify
        ),
    )


def sorted_issues(issues: Sequence[SpecIssue]) -> list[SpecIssue]:
    """Issues in file and line order, each once."""
    unique = list(dict.fromkeys(issues))
    return sorted(unique, key=lambda issue: (issue.file, issue.line or 0))


def local_path(text: str, base: Path) -> Path:
    """A path on this machine: ``~`` is the local home, a relative path is relative to ``base``."""
    path = Path(text).expanduser()
    return path if path.is_absolute() else base / path


def ssh_options(model: SshModel, base: Path) -> SshOptions:
    """The SSH settings of a spec or inventory, key and known_hosts paths made absolute."""
    return SshOptions(
        user=model.user,
        identity_file=str(local_path(model.identity_file, base)) if model.identity_file else None,
        known_hosts=str(local_path(model.known_hosts, base)) if model.known_hosts else None,
        connect_timeout=model.connect_timeout,
        keepalive=model.keepalive,
        host_key_policy=model.host_key_policy,
        use_ssh_config=model.use_ssh_config,
        config_file=str(local_path(model.config_file, base)) if model.config_file else None,
        proxy_jump=model.proxy_jump,
    )


# --- fleets -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class HostEntry:
    """A host as read from any inventory format, before the fleet-wide checks."""

    name: str
    address: str
    datacenter: str | None
    port: int | None = None  # not set: ~/.ssh/config's, else 22
    user: str | None = None
    tags: frozenset[str] = frozenset()
    ssh: SshOptions = SshOptions()  # noqa: RUF009 (frozen: sharing one is safe); the host's own settings
    refusal: str | None = None  # why deployer cannot reach it (an ansible_connection it does not speak)
    field: str = ""  # where it was written, as shown in errors
    line: int | None = None
    groups: tuple[str, ...] = ()  # Ansible groups, named in the datacenter hint
    member_of: frozenset[str] = frozenset()  # every Ansible group it is in, parents too, not `all`


def missing_datacenter(name: str, groups: Sequence[str]) -> str:
    """What to say of a host without a datacenter; ``groups`` are where it could be set."""
    where = f" or on one of its groups ({', '.join(groups)})" if groups else ""
    return f"host {name!r} has no datacenter: set the variable datacenter on the host{where}"


def assemble_fleet(
    entries: Sequence[HostEntry],
    *,
    file: str,
    ssh: SshOptions,
    source: str,
    empty_at: tuple[str, int | None] = ("", None),
) -> Fleet:
    """The fleet of ``entries`` in order; every host needs a datacenter and a unique name.

    Raises :class:`SpecError` listing each host without a datacenter, each repeated
    name, or an empty fleet (reported at ``empty_at``: field and line).
    """
    issues: list[SpecIssue] = []
    first: dict[str, HostEntry] = {}
    hosts: list[Host] = []
    for entry in entries:
        if entry.name in first:
            earlier = first[entry.name]
            at = f" at line {earlier.line}" if earlier.line is not None else ""
            issues.append(
                SpecIssue(file, entry.line, entry.field, f"duplicate host name {entry.name!r} (first{at})")
            )
            continue
        first[entry.name] = entry
        if entry.datacenter is None:
            issues.append(
                SpecIssue(file, entry.line, entry.field, missing_datacenter(entry.name, entry.groups))
            )
            continue
        hosts.append(
            Host(
                name=entry.name,
                address=entry.address,
                datacenter=entry.datacenter,
                port=entry.port,
                user=entry.user,
                tags=entry.tags,
                ssh=entry.ssh,
                refusal=entry.refusal,
                groups=entry.member_of,
            )
        )
    if not entries:
        issues.append(SpecIssue(file, empty_at[1], empty_at[0], "no hosts: a fleet needs at least one host"))
    if issues:
        raise SpecError(issues)
    return Fleet(hosts=tuple(hosts), ssh=ssh, source=source)


def fleet_from_model(
    model: InventoryModel,
    *,
    file: str,
    base_dir: Path,
    locate: Locate,
    source: str,
) -> Fleet:
    """The fleet of our inventory format (a file, or inline in a spec)."""

    def where(path: YamlPath) -> tuple[str, int | None]:
        shown, line = locate(path)
        return format_path(shown), line

    entries = []
    for index, host in enumerate(model.hosts):
        shown, line = where(("hosts", index, "name"))
        entries.append(
            HostEntry(
                name=host.name,
                address=host.address or host.name,
                datacenter=host.datacenter,
                port=host.port,
                user=host.user,
                tags=frozenset(host.tags),
                ssh=ssh_options(host.ssh, base_dir),
                field=shown,
                line=line,
            )
        )
    return assemble_fleet(
        entries, file=file, ssh=ssh_options(model.ssh, base_dir), source=source, empty_at=where(("hosts",))
    )


# --- JSON Schema ----------------------------------------------------------------------------

JSON_SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"


def spec_json_schema() -> dict[str, Any]:
    """The JSON Schema of a spec file, for editors (yaml-language-server) and tools."""
    return {"$schema": JSON_SCHEMA_DIALECT, **SpecFileModel.model_json_schema(by_alias=True)}


def inventory_json_schema() -> dict[str, Any]:
    """The JSON Schema of our inventory format."""
    return {"$schema": JSON_SCHEMA_DIALECT, **InventoryModel.model_json_schema(by_alias=True)}
