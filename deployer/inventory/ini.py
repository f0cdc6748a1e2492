"""Ansible INI inventories: ``[group]``, ``[group:vars]``, ``[group:children]``."""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from pathlib import Path

from deployer.inventory.ansible import AnsibleInventory, Var
from deployer.inventory.patterns import expand_host_pattern, split_host_port

_SECTION = re.compile(r"\[([^\]]+)\]\s*(?:[#;].*)?")


@dataclass(frozen=True, slots=True)
class _Pending:
    """A group named in ``[parent:children]`` or ``[name:vars]`` before any ``[name]`` declares it."""

    line: int
    kind: str  # "children" or "vars"
    parent: str


def read_ini(inventory: AnsibleInventory, path: Path, text: str) -> None:
    """Add one INI inventory's groups and hosts to ``inventory``.

    As in ansible-core 2.19, a group named under ``[parent:children]`` or given
    ``[name:vars]`` must be declared by a ``[name]`` or ``[name:children]`` section
    somewhere in the file (or by an earlier file of the same folder).
    """
    file = str(path)
    inventory.file = file
    declared = {"all", "ungrouped", *inventory.groups}  # Ansible's inventory starts with these two
    pending: dict[str, _Pending] = {}
    section, kind = "ungrouped", "hosts"
    for number, raw_line in enumerate(text.splitlines(), start=1):
        line = raw_line.strip()
        if not line or line.startswith(("#", ";")):
            continue
        header = _SECTION.fullmatch(line)
        if header is not None:
            name, _, kind = header.group(1).strip().partition(":")
            kind = kind or "hosts"
            if kind not in ("hosts", "vars", "children") or not name:
                inventory.issue(number, line, "expected a section [group], [group:vars] or [group:children]")
                section, kind = "", "skip"
                continue
            section = name
            if name not in declared:
                if kind == "vars":
                    pending.setdefault(name, _Pending(number, kind, name))
                declared.add(name)
            if kind != "vars":
                pending.pop(name, None)
            inventory.group(section)
            continue
        if kind == "hosts":
            _ini_host_line(inventory, section, line, number)
        elif kind == "vars":
            key, equals, value = line.partition("=")
            if not equals or not key.strip():
                inventory.issue(number, f"[{section}:vars]", f"expected key=value (got {line!r})")
                continue
            inventory.group(section).vars[key.strip()] = Var(
                _unquote(value.strip()), file, f"[{section}:vars].{key.strip()}", number
            )
        elif kind == "children":
            child = line.split()[0]
            if child == section:
                inventory.issue(number, f"[{section}:children]", f"group {section!r} cannot be its own child")
                continue
            if child not in declared:
                pending.setdefault(child, _Pending(number, kind, section))
            inventory.add_child(section, child)
    for name, where in pending.items():
        if where.kind == "vars":
            inventory.issue(where.line, f"[{name}:vars]", f"no group {name!r}: declare it with [{name}]")
        else:
            inventory.issue(
                where.line,
                f"[{where.parent}:children]",
                f"undefined group {name!r}: declare it with [{name}] or [{name}:children]",
            )


def _ini_host_line(inventory: AnsibleInventory, group: str, line: str, number: int) -> None:
    """``web[1:3] ansible_host=10.0.0.1 datacenter="iad"``: a host pattern and its variables."""
    try:
        words = shlex.split(line, comments=True)
    except ValueError as error:
        inventory.issue(number, f"[{group}]", f"cannot read this host line: {error}")
        return
    if not words:
        return
    pattern, settings = words[0], words[1:]
    variables: dict[str, Var] = {}
    pattern, port = split_host_port(pattern)
    if port is not None:
        variables["ansible_port"] = Var(str(port), inventory.file, words[0], number)
    try:
        names = expand_host_pattern(pattern)
    except ValueError as error:
        inventory.issue(number, pattern, str(error))
        return
    for setting in settings:
        key, equals, value = setting.partition("=")
        if not equals or not key:
            inventory.issue(number, pattern, f"expected key=value after the host name (got {setting!r})")
            return
        variables[key] = Var(value, inventory.file, f"{pattern}.{key}", number)
    for name in names:
        inventory.add_host(group, name, variables, name, number)


def _unquote(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
        return value[1:-1]
    return value
