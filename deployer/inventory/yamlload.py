"""YAML that remembers where everything was written, and errors that say so.

A spec or inventory problem must name its file, its line and its field. PyYAML
throws positions away when it builds Python objects, so :func:`load_yaml`
composes the node tree first, records the line of every mapping key and sequence
item by its path (``("strategy", "batch", 1)``), and only then constructs the
data. :func:`issues_from_validation` turns a pydantic ``ValidationError`` raised
on that data back into :class:`~deployer.core.errors.SpecIssue` values at those lines.

Pure: text in, data out. Reading files is the caller's business, except for the
small :func:`read_yaml` convenience.
"""

from __future__ import annotations

import difflib
import os
import types
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Union, get_args, get_origin

import yaml
from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails
from yaml.constructor import SafeConstructor
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from deployer.core.errors import SpecError, SpecIssue

YamlPath = tuple[Any, ...]
"""Where a value sits in a document: mapping keys and sequence indexes from the top."""

# A document with more nodes than this is refused rather than walked: aliases can make
# a small file expand enormously ("billion laughs"); no spec or inventory comes close.
MAX_NODES = 200_000
# A spec or inventory file larger than this is refused before it is read whole.
MAX_FILE_BYTES = 16 << 20
# Digits an integer may have: Python refuses to read past 4,300 (a traceback), and no
# port, count or duration needs more than a handful.
MAX_INT_DIGITS = 30
_INT_TAG = "tag:yaml.org,2002:int"

_MERGE_TAG = "tag:yaml.org,2002:merge"
_STR_TAG = "tag:yaml.org,2002:str"


@dataclass(frozen=True, slots=True)
class YamlDocument:
    """Parsed YAML with the line (1-based) of every key and item, by path."""

    data: Any
    file: str
    lines: Mapping[YamlPath, int]
    # The source text of plain (unquoted) scalars, so `version: 2.10` can be read as
    # the string "2.10" rather than the float 2.1.
    plain_scalars: Mapping[YamlPath, str]

    def line_of(self, path: Iterable[Any]) -> int | None:
        """The line of ``path``, or of its nearest ancestor that was written down."""
        here = tuple(path)
        while True:
            line = self.lines.get(here)
            if line is not None:
                return line
            if not here:
                return None
            here = here[:-1]


class _TolerantConstructor(SafeConstructor):
    """Safe construction that reads unknown local tags (Ansible's ``!unsafe``, ``!vault``) as plain values."""


def _construct_untagged(constructor: SafeConstructor, _suffix: str, node: Node) -> Any:
    if isinstance(node, ScalarNode):
        return constructor.construct_scalar(node)
    if isinstance(node, SequenceNode):
        return constructor.construct_sequence(node, deep=True)
    assert isinstance(node, MappingNode)
    return constructor.construct_mapping(node, deep=True)


_TolerantConstructor.add_multi_constructor("!", _construct_untagged)


def load_yaml(text: str, file: str, *, tolerate_tags: bool = False) -> YamlDocument:
    """Parse one YAML document, keeping the line of every key and item.

    Raises :class:`SpecError` for syntax errors, several documents in one file,
    duplicate keys (each one reported) and runaway aliases. ``tolerate_tags``
    reads unknown ``!tags`` as plain values, as Ansible inventories need.
    """
    try:
        root = yaml.compose(text, Loader=yaml.CSafeLoader)
    except yaml.MarkedYAMLError as error:
        raise SpecError([_syntax_issue(file, error)]) from None
    except yaml.YAMLError as error:
        raise SpecError.single(file, None, "", f"not valid YAML: {error}") from None
    except RecursionError:
        raise SpecError.single(file, None, "", "YAML nested too deeply") from None
    if root is None:
        return YamlDocument(data=None, file=file, lines={(): 1}, plain_scalars={})

    recorder = _LineRecorder(file)
    recorder.record(root, ())
    if recorder.issues:
        raise SpecError(recorder.issues)

    constructor = _TolerantConstructor() if tolerate_tags else SafeConstructor()
    try:
        data = constructor.construct_document(root)
    except yaml.MarkedYAMLError as error:
        raise SpecError([_syntax_issue(file, error)]) from None
    # TypeError: an unhashable key such as [a, b]; ValueError: a number Python will not read
    except (yaml.YAMLError, TypeError, ValueError) as error:
        raise SpecError.single(file, root.start_mark.line + 1, "", f"cannot read YAML: {error}") from None
    return YamlDocument(data=data, file=file, lines=recorder.lines, plain_scalars=recorder.plain)


def load_yaml_mapping(text: str, file: str, expected: str, *, tolerate_tags: bool = False) -> YamlDocument:
    """:func:`load_yaml` for a file whose top level must be a mapping (a spec, an inventory).

    Anything else is a :class:`SpecError` at the document's first line: "expected
    ``expected``, got ...".
    """
    document = load_yaml(text, file, tolerate_tags=tolerate_tags)
    if not isinstance(document.data, dict):
        raise SpecError.single(
            file, document.line_of(()), "", f"expected {expected}, got {describe(document.data)}"
        )
    return document


def read_yaml(path: Path, *, tolerate_tags: bool = False) -> YamlDocument:
    """:func:`load_yaml` on a file; an unreadable file is a :class:`SpecError` too."""
    try:
        text = read_bounded(path).decode("utf-8")
    except UnicodeDecodeError:
        raise SpecError.single(str(path), None, "", "not a UTF-8 text file") from None
    except OSError as error:
        raise SpecError.single(str(path), None, "", f"cannot read: {error.strerror or error}") from None
    return load_yaml(text, str(path), tolerate_tags=tolerate_tags)


def read_bounded(path: Path, limit: int = MAX_FILE_BYTES) -> bytes:
    """The bytes of ``path``; a :class:`SpecError` if it holds more than ``limit``, decided
    before they are read (a special file that never ends is cut off at ``limit``)."""
    with path.open("rb") as file:
        size = os.fstat(file.fileno()).st_size
        # A regular file's size is known: one read. A special file says 0: read it in
        # pieces, so that no buffer of `limit` bytes is made for a small one.
        data = bytearray(file.read(size + 1) if 0 < size <= limit else b"")
        while size == 0 and len(data) <= limit and (piece := file.read(1 << 16)):
            data += piece
    if size > limit or len(data) > limit:
        raise SpecError.single(
            str(path), None, "", f"file too large: a spec or inventory holds at most {limit >> 20} MiB"
        )
    return bytes(data)


def _syntax_issue(file: str, error: yaml.MarkedYAMLError) -> SpecIssue:
    mark = error.problem_mark or error.context_mark
    what = " ".join(part for part in (error.context, error.problem) if part)
    return SpecIssue(file, mark.line + 1 if mark else None, "", f"YAML syntax error: {what}")


class _LineRecorder:
    """Walks composed nodes, recording lines and plain scalars and finding duplicate keys."""

    def __init__(self, file: str) -> None:
        self.file = file
        self.lines: dict[YamlPath, int] = {}
        self.plain: dict[YamlPath, str] = {}
        self.issues: list[SpecIssue] = []
        self._keys = SafeConstructor()
        self._visited = 0
        self._open: set[int] = set()  # ids of the nodes being walked: an alias to one is a cycle

    def record(self, node: Node, path: YamlPath, *, line: int | None = None) -> None:
        self._visited += 1
        if self._visited > MAX_NODES:
            raise SpecError.single(
                self.file, line, format_path(path), "document too large (aliases expand too far)"
            )
        if id(node) in self._open:
            raise SpecError.single(self.file, line, format_path(path), "an alias refers to itself")
        self.lines.setdefault(path, line if line is not None else node.start_mark.line + 1)
        if isinstance(node, ScalarNode):
            if not node.style:  # plain: None from PyYAML's parser, "" from libyaml's
                self.plain.setdefault(path, node.value)
            self._check_number(node, path)
            return
        self._open.add(id(node))
        try:
            if isinstance(node, SequenceNode):
                for index, item in enumerate(node.value):
                    self.record(item, (*path, index))
            elif isinstance(node, MappingNode):
                self._record_mapping(node, path)
        finally:
            self._open.discard(id(node))

    def _record_mapping(self, node: MappingNode, path: YamlPath) -> None:
        first_line: dict[Any, int] = {}
        merged: list[Node] = []
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE_TAG:
                merged.append(value_node)
                continue
            key = self._key(key_node, path)
            line = key_node.start_mark.line + 1
            if key in first_line:
                self.issues.append(
                    SpecIssue(
                        self.file,
                        line,
                        format_path((*path, key)),
                        f"duplicate key (first at line {first_line[key]})",
                    )
                )
                continue
            first_line[key] = line
            self.record(value_node, (*path, key), line=line)
        # `<<: *defaults` fills in keys not written here; earlier merges win, as in YAML.
        for source in merged:
            for mapping in source.value if isinstance(source, SequenceNode) else [source]:
                if not isinstance(mapping, MappingNode):
                    continue
                for key_node, value_node in mapping.value:
                    if key_node.tag == _MERGE_TAG:
                        continue
                    key = self._key(key_node, path)
                    if key not in first_line:
                        first_line[key] = key_node.start_mark.line + 1
                        self.record(value_node, (*path, key), line=first_line[key])

    def _check_number(self, node: ScalarNode, path: YamlPath) -> None:
        if node.tag == _INT_TAG and len(node.value) > MAX_INT_DIGITS:
            raise SpecError.single(
                self.file,
                node.start_mark.line + 1,
                format_path(path),
                f"a number of at most {MAX_INT_DIGITS} digits (got {len(node.value)} characters)",
            )

    def _key(self, node: Node, path: YamlPath) -> Any:
        if not isinstance(node, ScalarNode):
            raise SpecError.single(
                self.file, node.start_mark.line + 1, format_path(path), "mapping keys must be plain strings"
            )
        self._check_number(node, path)
        if node.tag == _STR_TAG:
            return node.value  # the common case, without a constructor's bookkeeping
        try:
            return self._keys.construct_object(node, deep=True)
        except yaml.YAMLError:
            return node.value


def format_path(path: Sequence[Any]) -> str:
    """``("strategy", "batch", 1)`` → ``strategy.batch[1]``; a key with a dot is bracketed."""
    text = ""
    for part in path:
        if isinstance(part, int) and not isinstance(part, bool):
            text += f"[{part}]"
        elif isinstance(part, str) and part and "." not in part and "[" not in part and " " not in part:
            text += f".{part}" if text else part
        else:
            text += f"[{str(part)!r}]"
    return text


# --- pydantic errors → issues ----------------------------------------------------------

Locate = Callable[[YamlPath], tuple[YamlPath, int | None]]
"""Maps a path in the validated data to the path shown to people and its line."""


def issues_from_validation(
    error: ValidationError,
    document: YamlDocument,
    *,
    model: type[BaseModel],
    data: Any = None,
    prefix: YamlPath = (),
    locate: Locate | None = None,
) -> list[SpecIssue]:
    """One :class:`SpecIssue` per pydantic error, at the line where the field was written.

    ``data`` is what was validated (default: the document's data); ``prefix`` is where
    that data sits in the document. ``locate`` overrides both for data assembled from
    several places (a spec with an environment's overrides laid over it). A missing
    field is reported at the line of the mapping that should hold it.
    """
    validated = document.data if data is None else data

    def at_prefix(path: YamlPath) -> tuple[YamlPath, int | None]:
        full = (*prefix, *path)
        return full, document.line_of(full)

    where = locate or at_prefix
    issues: list[SpecIssue] = []
    for detail in error.errors(include_url=False):
        path = data_path(detail["loc"], validated, missing=detail["type"] == "missing")
        shown, line = where(path)
        message = _message(detail, model, path)
        issues.append(SpecIssue(document.file, line, format_path(shown), message))
    return issues


def data_path(loc: Sequence[Any], data: Any, *, missing: bool = False) -> YamlPath:
    """A pydantic error location as a path through ``data``.

    pydantic puts union tags and validator names into locations
    (``("hooks", "stop", "mapping-form", "timeout")``); those are no place in the file,
    so only the steps that exist in ``data`` are kept, plus the key of a ``missing`` field.
    """
    path: list[Any] = []
    node = data
    for index, step in enumerate(loc):
        is_last = index == len(loc) - 1
        in_mapping = isinstance(node, Mapping) and step in node
        in_list = isinstance(node, list | tuple) and isinstance(step, int) and 0 <= step < len(node)
        if in_mapping or in_list:
            path.append(step)
            node = node[step]
        elif missing and is_last and isinstance(node, Mapping):
            path.append(step)
    return tuple(path)


_PLAIN_MESSAGES = {
    "string_type": "expected a string",
    "int_type": "expected a whole number",
    "int_parsing": "expected a whole number",
    "int_from_float": "expected a whole number",
    "float_type": "expected a number",
    "float_parsing": "expected a number",
    "bool_type": "expected true or false",
    "bool_parsing": "expected true or false",
    "dict_type": "expected a mapping",
    "model_type": "expected a mapping",
    "model_attributes_type": "expected a mapping",
    "list_type": "expected a list",
    "tuple_type": "expected a list",
}


_BOUND_MESSAGES = {
    "greater_than_equal": "expected at least",
    "greater_than": "expected more than",
    "less_than_equal": "expected at most",
    "less_than": "expected less than",
}


def _message(detail: ErrorDetails, model: type[BaseModel], path: YamlPath) -> str:
    kind = detail["type"]
    if kind == "missing":
        return "required field is missing"
    if kind == "extra_forbidden":
        return _unknown_field_message(model, path)
    if kind in _PLAIN_MESSAGES:
        return f"{_PLAIN_MESSAGES[kind]} (got {describe(detail['input'])})"
    context = detail.get("ctx", {})
    if kind in _BOUND_MESSAGES:
        bound = next(iter(context.values()), "?")
        return f"{_BOUND_MESSAGES[kind]} {bound} (got {describe(detail['input'])})"
    if kind == "too_short":
        needed = context.get("min_length", 1)
        items = "item" if needed == 1 else "items"
        return f"expected at least {needed} {items} (got {context.get('actual_length', 0)})"
    message = detail["msg"].removeprefix("Value error, ")
    if message.startswith("Input should be"):
        message = "expected" + message.removeprefix("Input should be")
        message += f" (got {describe(detail['input'])})"
    return message


def _unknown_field_message(model: type[BaseModel], path: YamlPath) -> str:
    allowed = fields_at(model, path[:-1])
    if not allowed:
        return "unknown field"
    name = str(path[-1]) if path else ""
    close = difflib.get_close_matches(name, allowed, n=1)
    hint = f"did you mean {close[0]!r}? " if close else ""
    return f"unknown field; {hint}expected one of: {', '.join(allowed)}"


def describe(value: Any) -> str:
    """A short description of a value as a person wrote it in YAML."""
    if value is None:
        return "nothing"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, str):
        shown = value if len(value) <= 60 else value[:57] + "..."
        return repr(shown)
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, list | tuple):
        return "a list"
    return type(value).__name__


def fields_at(model: type[BaseModel], path: YamlPath) -> list[str]:
    """The field names of the model that validates the mapping at ``path``; [] if none."""
    annotation: Any = model
    for step in path:
        found = _model_in(annotation)
        if found is not None and isinstance(step, str) and step in _written_fields(found):
            annotation = _written_fields(found)[step]
            continue
        item = _item_type(annotation)
        if item is None:
            return []
        annotation = item
    found = _model_in(annotation)
    return list(_written_fields(found)) if found is not None else []


def _written_fields(model: type[BaseModel]) -> dict[str, Any]:
    """Field annotations by the key written in YAML (the alias, where there is one)."""
    return {info.alias or name: info.annotation for name, info in model.model_fields.items()}


def _members(annotation: Any) -> list[Any]:
    """``annotation`` without Annotated and split into its union members."""
    origin = get_origin(annotation)
    if origin is Annotated:
        return _members(get_args(annotation)[0])
    if origin is Union or origin is types.UnionType:
        return [member for arg in get_args(annotation) for member in _members(arg)]
    return [annotation]


def _model_in(annotation: Any) -> type[BaseModel] | None:
    for member in _members(annotation):
        if isinstance(member, type) and issubclass(member, BaseModel):
            return member
    return None


def _item_type(annotation: Any) -> Any:
    for member in _members(annotation):
        origin = get_origin(member)
        args = get_args(member)
        if origin in (dict, Mapping) and len(args) == 2:
            return args[1]
        if origin in (list, tuple, Sequence) and args:
            return args[0]
    return None
