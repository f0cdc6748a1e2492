"""The values people write in our YAML files, as pydantic types: names, paths, durations, counts, URLs.

Each type checks one value and says what it expected in words a person reads
(``expected a duration, ... (got 'soon')``), and carries the JSON Schema that says the
same to editors. The spec's schema (:mod:`deployer.spec.schema`) and our inventory
format's (:mod:`deployer.inventory.ours`) are built from them; so are the checks of
values read from Ansible inventories (:func:`check_host_name` and its siblings).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    PlainValidator,
    WithJsonSchema,
)
from pydantic_core import PydanticCustomError

from deployer.core.quantities import (
    COUNT_PATTERN,
    DURATION_FORMS,
    DURATION_PATTERN,
    POSITIVE_COUNT_PATTERN,
    Count,
    parse_duration,
)
from deployer.inventory.yamlload import describe


class FrozenModel(BaseModel):
    """The base of every schema model: frozen, and unknown keys forbidden."""

    model_config = ConfigDict(frozen=True, extra="forbid")


# --- names people write ---------------------------------------------------------------

NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,62}")
VERSION_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+~-]{0,127}")
_HOST_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.:-]{0,252}")
_ADDRESS = re.compile(r"[A-Za-z0-9_.:%\[\]][A-Za-z0-9_.:%\[\]-]{0,252}")
_USER = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}")
_LABEL = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,62}")
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
    NAME_PATTERN,
    "a name of letters, digits, '.', '_' and '-' that starts with a letter or digit (at most 63 characters)",
)
check_version = _matcher(
    VERSION_PATTERN,
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


Name = Annotated[str, PlainValidator(check_name), _string_schema(NAME_PATTERN)]
Version = Annotated[str, PlainValidator(check_version), _string_schema(VERSION_PATTERN)]
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


def local_path(text: str, base: Path) -> Path:
    """A path on this machine: ``~`` is the local home, a relative path is relative to ``base``."""
    path = Path(text).expanduser()
    return path if path.is_absolute() else base / path


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


def count_json(count: Count) -> int | str:
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
    Count, PlainValidator(_count), PlainSerializer(count_json), WithJsonSchema(_COUNT_SCHEMA)
]
WaveSize = Annotated[
    Count, PlainValidator(_wave_size), PlainSerializer(count_json), WithJsonSchema(_WAVE_SIZE_SCHEMA)
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

# --- URLs and HTTP headers ------------------------------------------------------------

_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")  # an HTTP token (RFC 9110)


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


def _waves_ahead(value: Any) -> int | None:
    """``strategy.stage_ahead``: a whole number of waves ≥ 0, or ``all`` (None: every later wave)."""
    if value == "all":
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise PydanticCustomError(
            "waves_ahead",
            "expected a number of waves (0 or more) or all (got {got})",
            {"got": describe(value)},
        )
    return value


WavesAhead = Annotated[
    int | None,
    PlainValidator(_waves_ahead),
    PlainSerializer(lambda ahead: "all" if ahead is None else ahead),
    WithJsonSchema(
        {
            "anyOf": [{"type": "integer", "minimum": 0}, {"const": "all"}],
            "description": "a number of waves (0 or more), or all",
        }
    ),
]
