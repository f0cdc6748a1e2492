"""What every Ansible format reads into, and how Ansible merges it into hosts.

The INI (:mod:`~deployer.inventory.ini`), YAML (:mod:`~deployer.inventory.ansible_yaml`)
and script (:mod:`~deployer.inventory.script`) readers add groups and hosts to one
:class:`AnsibleInventory`, as Ansible declares them; :func:`ansible_fleet` then merges
each host's variables as Ansible does (groups by depth from ``all`` then name,
``group_vars/`` files over inventory group vars, host vars over both) and reads how to
reach the host and where it is out of them.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from pydantic_core import PydanticCustomError

from deployer.core.errors import SpecError, SpecIssue, sorted_issues
from deployer.core.targets import Fleet, SshOptions
from deployer.inventory.assemble import HostEntry, assemble_fleet, missing_datacenter
from deployer.inventory.fields import (
    check_address,
    check_host_name,
    check_label,
    check_proxy_jump,
    check_user,
    local_path,
)
from deployer.inventory.yamlload import YamlDocument, YamlPath, describe, format_path, load_yaml, read_bounded

MAX_INVENTORY_HOSTS = 100_000  # hosts one Ansible inventory may hold, all its lines together
_VARS_FILE_SUFFIXES = ("", ".yml", ".yaml", ".json")


@dataclass(frozen=True, slots=True)
class Var:
    """A variable's value and where it was set, for errors that point there."""

    value: Any
    file: str
    field: str
    line: int | None


@dataclass(slots=True)
class _Group:
    name: str
    vars: dict[str, Var] = field(default_factory=dict)
    children: list[str] = field(default_factory=list)


@dataclass(slots=True)
class _HostRecord:
    name: str
    file: str  # the file that first listed it
    where: str
    line: int | None
    groups: list[str] = field(default_factory=list)
    vars: dict[str, Var] = field(default_factory=dict)


@dataclass(slots=True)
class AnsibleInventory:
    """Groups and hosts as an Ansible inventory declares them, before variables are merged."""

    file: str
    groups: dict[str, _Group] = field(default_factory=dict)
    hosts: dict[str, _HostRecord] = field(default_factory=dict)  # in order of first appearance
    issues: list[SpecIssue] = field(default_factory=list)
    warnings: dict[str, str] = field(default_factory=dict)  # one per kind of ignored variable

    def group(self, name: str) -> _Group:
        if name not in self.groups:
            self.groups[name] = _Group(name)
        return self.groups[name]

    def add_child(self, parent: str, child: str) -> None:
        self.group(child)
        children = self.group(parent).children
        if child not in children:
            children.append(child)

    def add_host(
        self, group: str, name: str, variables: Mapping[str, Var], where: str, line: int | None
    ) -> None:
        record = self.hosts.get(name)
        if record is None:
            if len(self.hosts) >= MAX_INVENTORY_HOSTS:
                # Raised at once, not collected: each range may be under its own limit
                # while thousands of lines of them are not.
                raise SpecError.single(
                    self.file, line, where, f"an inventory may hold at most {MAX_INVENTORY_HOSTS} hosts"
                )
            record = self.hosts[name] = _HostRecord(name, self.file, where, line)
        if group not in record.groups:
            record.groups.append(group)
        self.group(group)
        record.vars.update(variables)

    def issue(self, line: int | None, where: str, message: str, file: str | None = None) -> None:
        self.issues.append(SpecIssue(file or self.file, line, where, message))


def ansible_fleet(inventory: AnsibleInventory, folder: Path | None, source: str) -> Fleet:
    """Merge each host's variables as Ansible does and build the fleet."""
    inventory.group("all")
    inventory.group("ungrouped")
    parents: dict[str, list[str]] = {name: [] for name in inventory.groups}
    for group in list(inventory.groups.values()):
        for child in group.children:
            parents[child].append(group.name)
    for name, above in parents.items():
        if name != "all" and not above:
            inventory.add_child("all", name)
            above.append("all")
    depth = _group_depths(inventory)

    group_files = _vars_files(inventory, folder, "group_vars", list(inventory.groups))
    host_files = _vars_files(inventory, folder, "host_vars", list(inventory.hosts))
    ancestors_of: dict[str, frozenset[str]] = {}

    def ancestors(group: str, seen: frozenset[str] = frozenset()) -> frozenset[str]:
        if group not in ancestors_of:
            found = {group}
            for parent in parents.get(group, []):
                if parent not in seen:
                    found |= ancestors(parent, seen | {group})
            ancestors_of[group] = frozenset(found)
        return ancestors_of[group]

    entries: list[HostEntry] = []
    for record in inventory.hosts.values():
        member = {"all"}.union(*(ancestors(group) for group in _direct_groups(record)))
        ordered = sorted(member, key=lambda name: (depth.get(name, 0), name))
        variables: dict[str, Var] = {}
        for name in ordered:
            variables.update(inventory.groups[name].vars)
        for name in ordered:
            variables.update(group_files.get(name, {}))
        variables.update(record.vars)
        variables.update(host_files.get(record.name, {}))
        tags = frozenset(name for name in member if name not in ("all", "ungrouped"))
        entry = _host_entry(inventory, record, variables, tags, frozenset(member - {"all"}))
        if entry is not None:
            entries.append(entry)

    issues = list(inventory.issues)
    fleet: Fleet | None = None
    if entries or not issues:  # "no hosts" would only repeat that every host had a problem
        try:
            fleet = assemble_fleet(entries, file=inventory.file, ssh=SshOptions(), source=source)
        except SpecError as error:
            issues.extend(error.issues)
    if issues:
        raise SpecError(sorted_issues(issues))
    assert fleet is not None
    return replace(fleet, warnings=tuple(inventory.warnings.values()))


def _direct_groups(record: _HostRecord) -> list[str]:
    """The groups a host is in by itself: ``ungrouped`` exactly when it is in no other group but ``all``.

    Ansible reconciles an inventory this way, so ``[ungrouped:vars]`` do not reach a host
    that some other section lists too.
    """
    named = [group for group in record.groups if group not in ("all", "ungrouped")]
    return named or ["ungrouped"]


def _group_depths(inventory: AnsibleInventory) -> dict[str, int]:
    """Each group's longest distance from ``all`` (Ansible merges shallow groups first).

    Kahn's topological walk; a group still unvisited at the end sits in a cycle.
    """
    incoming = dict.fromkeys(inventory.groups, 0)
    for group in inventory.groups.values():
        for child in group.children:
            incoming[child] += 1
    depth = dict.fromkeys(inventory.groups, 0)
    ready = [name for name, count in incoming.items() if count == 0]
    visited = 0
    while ready:
        name = ready.pop()
        visited += 1
        for child in inventory.groups[name].children:
            depth[child] = max(depth[child], depth[name] + 1)
            incoming[child] -= 1
            if incoming[child] == 0:
                ready.append(child)
    if visited < len(inventory.groups):
        looped = sorted(name for name, count in incoming.items() if count > 0)
        inventory.issue(None, "children", f"groups are their own descendants: {', '.join(looped)}")
    return depth


def _vars_files(
    inventory: AnsibleInventory, folder: Path | None, kind: str, names: list[str]
) -> dict[str, dict[str, Var]]:
    """Variables from ``group_vars/NAME[.yml]`` or ``host_vars/NAME/*.yml`` next to the inventory."""
    if folder is None or not (folder / kind).is_dir():
        return {}
    found: dict[str, dict[str, Var]] = {}
    for name in names:
        for path in _vars_paths(folder / kind, name):
            try:
                document = load_yaml(read_bounded(path).decode("utf-8"), str(path), tolerate_tags=True)
            except (OSError, UnicodeDecodeError) as error:
                inventory.issue(None, "", f"cannot read: {error}", file=str(path))
                continue
            except SpecError as error:
                inventory.issues.extend(error.issues)
                continue
            if document.data is None:
                continue
            if not isinstance(document.data, dict):
                inventory.issue(document.line_of(()), "", "expected a mapping of variables", file=str(path))
                continue
            found.setdefault(name, {}).update(vars_from_yaml(document, document.data, ()))
    return found


def _vars_paths(folder: Path, name: str) -> Iterator[Path]:
    directory = folder / name
    if directory.is_dir():
        yield from sorted(
            path for path in directory.iterdir() if path.is_file() and path.suffix in _VARS_FILE_SUFFIXES
        )
        return
    for suffix in _VARS_FILE_SUFFIXES:
        path = folder / f"{name}{suffix}"
        if path.is_file():
            yield path
            return


def vars_from_yaml(document: YamlDocument, mapping: Mapping[Any, Any], at: YamlPath) -> dict[str, Var]:
    return {
        str(key): Var(value, document.file, format_path((*at, key)), document.line_of((*at, key)))
        for key, value in mapping.items()
    }


_TEMPLATE = re.compile(r"\{\{|\{%")
_TEMPLATE_MESSAGE = "{!r} is a Jinja template; deployer reads literal values only"


def _host_entry(
    inventory: AnsibleInventory,
    record: _HostRecord,
    variables: Mapping[str, Var],
    tags: frozenset[str],
    groups: frozenset[str],
) -> HostEntry | None:
    """A host's connection settings and datacenter out of its merged variables; None after an issue."""
    count = len(inventory.issues)

    def text(names: tuple[str, ...], check: Callable[[Any], str]) -> str | None:
        var = next((variables[name] for name in names if name in variables), None)
        if var is None or var.value is None:
            return None
        value = var.value if isinstance(var.value, str) else str(var.value)
        if _TEMPLATE.search(value):
            inventory.issue(var.line, var.field, _TEMPLATE_MESSAGE.format(value), var.file)
            return None
        try:
            checked: str = check(value)
        except PydanticCustomError as error:
            inventory.issue(var.line, var.field, error.message(), var.file)
            return None
        return checked

    try:
        check_host_name(record.name)
    except PydanticCustomError as error:
        inventory.issue(record.line, record.where, error.message())
    address = text(("ansible_host", "ansible_ssh_host"), check_address) or record.name
    user = text(("ansible_user", "ansible_ssh_user"), check_user)
    datacenter = text(("datacenter",), check_label)
    port: int | None = None
    port_var = next(
        (variables[name] for name in ("ansible_port", "ansible_ssh_port") if name in variables), None
    )
    if port_var is not None:
        port_value = _port(port_var.value)
        if isinstance(port_var.value, str) and _TEMPLATE.search(port_var.value):
            inventory.issue(
                port_var.line, port_var.field, _TEMPLATE_MESSAGE.format(port_var.value), port_var.file
            )
        elif port_value is None:
            inventory.issue(
                port_var.line,
                port_var.field,
                f"expected a port number from 1 to 65535 (got {describe(port_var.value)})",
                port_var.file,
            )
        else:
            port = port_value
    ssh, refusal = _connection_vars(inventory, record, variables, folder=Path(inventory.file).parent)
    if port is None:
        port = ssh.port
    user = user or ssh.user
    extra_tags = variables.get("tags")
    if extra_tags is not None:
        values = extra_tags.value
        words = values.split(",") if isinstance(values, str) else values if isinstance(values, list) else []
        tags = tags | {str(word).strip() for word in words if str(word).strip()}
    if datacenter is None and len(inventory.issues) == count:
        inventory.issue(
            record.line, record.where, missing_datacenter(record.name, record.groups), record.file
        )
    if len(inventory.issues) > count:
        return None
    return HostEntry(
        name=record.name,
        address=address,
        datacenter=datacenter,
        port=port,
        user=user,
        tags=tags,
        ssh=SshOptions(identity_file=ssh.identity_file, proxy_jump=ssh.proxy_jump),
        refusal=refusal,
        field=record.where,
        line=record.line,
        groups=tuple(record.groups),
        member_of=groups,
    )


@dataclass(frozen=True, slots=True)
class _AnsibleSsh:
    """What a host's Ansible variables say about its SSH connection beyond host, port and user."""

    identity_file: str | None = None
    proxy_jump: str | None = None
    port: int | None = None  # from ansible_ssh_common_args' -o Port (ansible_port wins)
    user: str | None = None  # from its -o User (ansible_user wins)


_CONNECTIONS = ("ssh", "smart")  # the ansible_connection values deployer reaches a host by
_COMMON_ARGS = ("ansible_ssh_common_args",)
_KEY_FILE = ("ansible_ssh_private_key_file", "ansible_private_key_file")
_HONOURED_OPTIONS = {"proxyjump": "ProxyJump", "port": "Port", "user": "User", "identityfile": "IdentityFile"}


def _connection_vars(
    inventory: AnsibleInventory, record: _HostRecord, variables: Mapping[str, Var], folder: Path
) -> tuple[_AnsibleSsh, str | None]:
    """The host's key file, ``ansible_ssh_common_args`` and ``ansible_connection``; issues are
    recorded. The second value: why deployer cannot reach the host (told if a deployment selects it)."""
    refusal = None
    connection = variables.get("ansible_connection")
    if connection is not None and str(connection.value) not in _CONNECTIONS:
        at = (
            f"{connection.file}:{connection.line}: "
            if connection.line is not None
            else f"{connection.file}: "
        )
        refusal = (
            f"host {record.name}: {at}{connection.field}: ansible_connection={connection.value} is not "
            f"something deployer speaks; it connects over SSH only ({' or '.join(_CONNECTIONS)})"
        )
    for name, var in variables.items():
        if name.startswith("ansible_become") and "become" not in inventory.warnings:
            inventory.warnings["become"] = (
                f"{var.file}: {var.field}: ansible_become* variables are ignored: "
                "hooks run as the SSH user and use sudo themselves when they need it"
            )
    options: dict[str, tuple[str, Var]] = {}
    common = next((variables[name] for name in _COMMON_ARGS if name in variables), None)
    if common is not None and common.value is not None:
        try:
            options = {key: (value, common) for key, value in ssh_common_args(str(common.value)).items()}
        except ValueError as error:
            inventory.issue(common.line, common.field, str(error), common.file)
    key_var = next((variables[name] for name in _KEY_FILE if name in variables), None)
    if key_var is not None and key_var.value:
        options["IdentityFile"] = (str(key_var.value), key_var)
    found: dict[str, Any] = {}
    for option, (value, var) in options.items():
        if _TEMPLATE.search(value):
            inventory.issue(var.line, var.field, _TEMPLATE_MESSAGE.format(value), var.file)
            continue
        try:
            if option == "IdentityFile":
                found[option] = str(local_path(value, folder))
            elif option == "ProxyJump":
                found[option] = check_proxy_jump(value)
            elif option == "User":
                found[option] = check_user(value)
            elif (port := _port(value)) is not None:
                found[option] = port
            else:
                raise ValueError(f"-o Port={value}: expected a port number from 1 to 65535")
        except PydanticCustomError as error:
            inventory.issue(var.line, var.field, f"{option}: {error.message()}", var.file)
        except ValueError as error:
            inventory.issue(var.line, var.field, str(error), var.file)
    return (
        _AnsibleSsh(found.get("IdentityFile"), found.get("ProxyJump"), found.get("Port"), found.get("User")),
        refusal,
    )


def ssh_common_args(text: str) -> dict[str, str]:
    """The options deployer honours in Ansible's ``ansible_ssh_common_args``, by OpenSSH name.

    ``-o ProxyJump=…`` (also ``-J …``), ``-o Port=…``, ``-o User=…``, ``-o IdentityFile=…``;
    ``-o Key=Value``, ``-o "Key Value"`` and ``-oKey=Value`` spellings. Anything else raises
    ValueError naming it: silently dropping an option could reach the wrong host.

    >>> ssh_common_args("-o ProxyJump=ops@bastion -o 'Port 2222'")
    {'ProxyJump': 'ops@bastion', 'Port': '2222'}
    """
    try:
        words = shlex.split(text)
    except ValueError as error:
        raise ValueError(f"cannot read {text!r}: {error}") from None
    found: dict[str, str] = {}
    honoured = ", ".join(f"-o {name}" for name in _HONOURED_OPTIONS.values())
    index = 0
    while index < len(words):
        word = words[index]
        if word in ("-o", "-J"):
            if index + 1 == len(words):
                raise ValueError(f"{word} needs a value")
            flag, value = word, words[index + 1]
            index += 2
        elif word.startswith(("-o", "-J")):
            flag, value = word[:2], word[2:]
            index += 1
        else:
            raise ValueError(f"{word} is not supported here; deployer honours {honoured} and -J")
        if flag == "-J":
            key, setting = "proxyjump", value
        else:
            key, _, setting = value.replace("=", " ", 1).partition(" ")
            key = key.strip().lower()
        name = _HONOURED_OPTIONS.get(key)
        if name is None:
            option = value.partition("=")[0].split()[0] if value.strip() else value
            raise ValueError(f"-o {option} is not supported; deployer honours {honoured} and -J")
        found.setdefault(name, setting.strip())  # as ssh has it, the first value wins
    return found


_PORT_TEXT = re.compile(r"0*[0-9]{1,5}")  # ASCII digits only, and few: int() of 4,301 raises


def _port(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, str) and _PORT_TEXT.fullmatch(value.strip()):
        value = int(value.strip())
    if isinstance(value, int) and 1 <= value <= 65535:
        return value
    return None
