"""Inventories: the hosts a spec deploys to, read from the files people already keep.

Four formats and a folder of them, recognised by :func:`load_inventory`:

* **an executable file** — an Ansible dynamic inventory script, run with ``--list``
  (bounded by a timeout); its JSON groups, ``vars``, ``children`` and
  ``_meta.hostvars`` are read as Ansible reads them (``--host NAME`` per host when
  there is no ``_meta``);
* **our YAML** — ``hosts:`` as a list of ``{name, address, port, user, datacenter,
  tags}`` plus optional ``ssh:`` defaults (the same shape may stand inline in a spec);
* **an Ansible YAML inventory** — groups with ``hosts``, ``vars`` and ``children``;
* **an Ansible INI inventory** — ``[group]``, ``[group:vars]``, ``[group:children]``;
* **a folder** of Ansible inventories and scripts, merged in name order as
  ``ansible -i folder/`` merges them.

Ansible inventories are read as they are: ``ansible_host``, ``ansible_port`` and
``ansible_user`` (and their old ``ansible_ssh_*`` spellings) say how to connect, and
the host variable ``datacenter`` (set on the host, or inherited from a group, the
``group_vars/`` and ``host_vars/`` folders next to the inventory included) says where
the host is. A host's groups become its tags, for ``--limit tag:web``. Variables
merge as Ansible merges them: groups by depth from ``all`` then name, group files
over inventory group vars, host vars over both.

Problems with what a file says are :class:`~deployer.errors.SpecError` issues (file,
line, field); a script that cannot be run, fails, times out or prints something
other than JSON is a :class:`~deployer.errors.FleetError`.
"""

from __future__ import annotations

import contextlib
import ipaddress
import itertools
import json
import os
import re
import shlex
import signal
import string
import subprocess
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError
from pydantic_core import PydanticCustomError

from deployer.errors import FleetError, SpecError, SpecIssue
from deployer.fleet import Fleet, SshOptions
from deployer.results import tail
from deployer.spec import (
    HostEntry,
    InventoryModel,
    assemble_fleet,
    check_address,
    check_host_name,
    check_label,
    check_proxy_jump,
    check_user,
    fleet_from_model,
    local_path,
    missing_datacenter,
    sorted_issues,
)
from deployer.yamlload import (
    MAX_INT_DIGITS,
    YamlDocument,
    YamlPath,
    describe,
    format_path,
    issues_from_validation,
    load_yaml,
    load_yaml_mapping,
    read_bounded,
)

if TYPE_CHECKING:
    from deployer.spec import Spec

SCRIPT_TIMEOUT = 30.0  # seconds a dynamic inventory script may take, all its calls together
MAX_RANGE_HOSTS = 100_000  # hosts one `web[1:N]` pattern may expand to
MAX_INVENTORY_HOSTS = 100_000  # hosts one Ansible inventory may hold, all its lines together
_DATA_SUFFIXES = frozenset({".yml", ".yaml", ".json", ".ini", ".cfg", ".txt"})
_VARS_FILE_SUFFIXES = ("", ".yml", ".yaml", ".json")


def load_fleet(spec: Spec) -> Fleet:
    """The fleet a spec deploys to: its inline hosts, or its inventory file read."""
    if spec.fleet.inline is not None:
        return spec.fleet.inline
    if spec.fleet.path is None:
        raise RuntimeError("a spec's FleetRef has neither a path nor inline hosts")
    return load_inventory(spec.fleet.path)


def load_inventory(path: Path, *, script_timeout: float = SCRIPT_TIMEOUT) -> Fleet:
    """Read one inventory file, or a folder of them, in any supported format; hosts keep file order."""
    path = Path(path)
    if path.is_dir():
        return _from_folder(path, script_timeout)
    if not path.is_file():
        raise FleetError(f"no inventory file at {path}")
    if is_inventory_script(path):
        inventory = _AnsibleInventory(str(path))
        _read_script(inventory, path, time.monotonic() + script_timeout, script_timeout)
        return _ansible_fleet(inventory, None, str(path))
    text, document = _read_data_file(path)
    if document is None:
        inventory = _AnsibleInventory(str(path))
        _read_ini(inventory, path, text)
        return _ansible_fleet(inventory, path.parent, str(path))
    data = document.data
    if _is_our_yaml(data):
        return _from_our_yaml(path, document)
    inventory = _AnsibleInventory(document.file)
    _read_ansible_yaml(inventory, document)
    return _ansible_fleet(inventory, path.parent, document.file)


def _read_data_file(path: Path) -> tuple[str, YamlDocument | None]:
    """An inventory file's text and, unless it is INI, its YAML document."""
    file = str(path)
    try:
        text = read_bounded(path).decode("utf-8")
    except UnicodeDecodeError:
        raise SpecError.single(file, None, "", "not a UTF-8 text file") from None
    except OSError as error:
        raise FleetError(f"cannot read inventory {path}: {error.strerror or error}") from None
    if _looks_like_ini(path, text):
        return text, None
    return text, load_yaml_mapping(text, file, "an inventory (hosts: or Ansible groups)", tolerate_tags=True)


def _is_our_yaml(data: Mapping[str, Any]) -> bool:
    return isinstance(data.get("hosts"), list) or "ssh" in data


# What Ansible skips in an inventory folder: hidden names, the variable folders, and
# its default INVENTORY_IGNORE_EXTS (files such as README.md or notes.txt).
_FOLDER_SKIPPED_NAMES = frozenset({"host_vars", "group_vars", "vars_plugins"})
_FOLDER_SKIPPED_SUFFIXES = (
    ".pyc",
    ".pyo",
    ".swp",
    ".bak",
    "~",
    ".rpm",
    ".md",
    ".txt",
    ".rst",
    ".orig",
    ".cfg",
    ".retry",
)


def _from_folder(folder: Path, script_timeout: float) -> Fleet:
    """Every inventory in ``folder`` merged, as ``ansible -i folder/`` reads it.

    Files are read in name order (sub-folders too), so a later file's variables win
    over an earlier one's; ``group_vars/`` and ``host_vars/`` come from ``folder`` itself.
    """
    inventory = _AnsibleInventory(str(folder))
    deadline = time.monotonic() + script_timeout
    files = list(_folder_files(folder))
    if not files:
        raise FleetError(f"inventory folder {folder} holds no inventory file")
    for path in files:
        inventory.file = str(path)
        if is_inventory_script(path):
            _read_script(inventory, path, deadline, script_timeout)
            continue
        text, document = _read_data_file(path)
        if document is None:
            _read_ini(inventory, path, text)
        elif _is_our_yaml(document.data):
            inventory.issue(
                document.line_of(()),
                "",
                "our hosts: format stands alone; an inventory folder holds Ansible inventories",
            )
        else:
            _read_ansible_yaml(inventory, document)
    inventory.file = str(folder)
    return _ansible_fleet(inventory, folder, str(folder))


def _folder_files(folder: Path) -> Iterator[Path]:
    for path in sorted(folder.iterdir(), key=lambda entry: entry.name):
        name = path.name
        if name.startswith(".") or name in _FOLDER_SKIPPED_NAMES or name.endswith(_FOLDER_SKIPPED_SUFFIXES):
            continue
        if path.is_dir():
            yield from _folder_files(path)
        elif path.is_file():
            yield path


def is_inventory_script(path: Path) -> bool:
    """An executable that is not a data file is a dynamic inventory, as Ansible decides."""
    return path.is_file() and os.access(path, os.X_OK) and path.suffix.lower() not in _DATA_SUFFIXES


def _looks_like_ini(path: Path, text: str) -> bool:
    suffix = path.suffix.lower()
    if suffix in (".ini", ".cfg"):
        return True
    if suffix in (".yml", ".yaml", ".json"):
        return False
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith(("#", ";")):
            continue
        if re.fullmatch(r"\[[^\]\s,]+\]", stripped):
            return True
        break
    try:
        return not isinstance(load_yaml(text, str(path), tolerate_tags=True).data, dict)
    except SpecError:
        return True


# --- our YAML -------------------------------------------------------------------------------


def _from_our_yaml(path: Path, document: YamlDocument) -> Fleet:
    try:
        model = InventoryModel.model_validate(document.data)
    except ValidationError as error:
        raise SpecError(issues_from_validation(error, document, model=InventoryModel)) from None
    return fleet_from_model(
        model,
        file=document.file,
        base_dir=path.parent.absolute(),
        locate=lambda at: (at, document.line_of(at)),
        source=str(path),
    )


# --- Ansible: what every Ansible format reads into ------------------------------------------


@dataclass(frozen=True, slots=True)
class _Var:
    """A variable's value and where it was set, for errors that point there."""

    value: Any
    file: str
    field: str
    line: int | None


@dataclass(slots=True)
class _Group:
    name: str
    vars: dict[str, _Var] = field(default_factory=dict)
    children: list[str] = field(default_factory=list)


@dataclass(slots=True)
class _HostRecord:
    name: str
    file: str  # the file that first listed it
    where: str
    line: int | None
    groups: list[str] = field(default_factory=list)
    vars: dict[str, _Var] = field(default_factory=dict)


@dataclass(slots=True)
class _AnsibleInventory:
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
        self, group: str, name: str, variables: Mapping[str, _Var], where: str, line: int | None
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


def _ansible_fleet(inventory: _AnsibleInventory, folder: Path | None, source: str) -> Fleet:
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
        variables: dict[str, _Var] = {}
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


def _group_depths(inventory: _AnsibleInventory) -> dict[str, int]:
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
    inventory: _AnsibleInventory, folder: Path | None, kind: str, names: list[str]
) -> dict[str, dict[str, _Var]]:
    """Variables from ``group_vars/NAME[.yml]`` or ``host_vars/NAME/*.yml`` next to the inventory."""
    if folder is None or not (folder / kind).is_dir():
        return {}
    found: dict[str, dict[str, _Var]] = {}
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
            found.setdefault(name, {}).update(_vars_from_yaml(document, document.data, ()))
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


def _vars_from_yaml(document: YamlDocument, mapping: Mapping[Any, Any], at: YamlPath) -> dict[str, _Var]:
    return {
        str(key): _Var(value, document.file, format_path((*at, key)), document.line_of((*at, key)))
        for key, value in mapping.items()
    }


_TEMPLATE = re.compile(r"\{\{|\{%")
_TEMPLATE_MESSAGE = "{!r} is a Jinja template; deployer reads literal values only"


def _host_entry(
    inventory: _AnsibleInventory,
    record: _HostRecord,
    variables: Mapping[str, _Var],
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
    inventory: _AnsibleInventory, record: _HostRecord, variables: Mapping[str, _Var], folder: Path
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
    options: dict[str, tuple[str, _Var]] = {}
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


def _port(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value.strip())
    if isinstance(value, int) and 1 <= value <= 65535:
        return value
    return None


_RANGE = re.compile(r"\[([0-9]*|[a-zA-Z]):([0-9]+|[a-zA-Z])(?::([0-9]+))?\]")
_BRACKETED = re.compile(r"\[([^\[\]]+)\]:([0-9]+)")
_HOST_PORT = re.compile(r"([^:]+):([0-9]+)")


def split_host_port(pattern: str) -> tuple[str, int | None]:
    """An inventory host's name and port, as Ansible reads them in INI and YAML.

    ``web:2222`` → (web, 2222); ``[2001:db8::11]:2222`` → (2001:db8::11, 2222);
    ``2001:db8::11`` (a bare IPv6 address) → (2001:db8::11, None). A range such as
    ``web[1:3]`` is no port, and is left for :func:`expand_host_pattern`; so is
    ``[2001:db8::11]`` without a port, which Ansible too reads as a (broken) range.
    """
    bracketed = _BRACKETED.fullmatch(pattern)
    if bracketed is not None and _is_ip_address(bracketed.group(1)):
        return bracketed.group(1), int(bracketed.group(2))
    if _is_ip_address(pattern):
        return pattern, None
    with_port = _HOST_PORT.fullmatch(pattern)
    if with_port is not None:
        return with_port.group(1), int(with_port.group(2))
    return pattern, None


def _is_ip_address(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


_MAX_RANGE_DIGITS = 18  # a range's bounds: beyond this no range could stay under the limit


def range_host_count(pattern: str) -> int:
    """How many host names ``pattern`` expands to, counted without expanding it.

    ``web[01:10:2].dc[a:c]`` → 5 * 3 = 15. Raises ValueError for a range that runs
    backwards, mixes letters and digits, pads its ends to different widths, has a step
    below 1, or bounds too long to be a host number.
    """
    count = 1
    for match in _RANGE.finditer(pattern):
        first, last, step, _width = _range_bounds(pattern, match)
        count *= (last - first) // step + 1
    return count


def _range_bounds(pattern: str, match: re.Match[str]) -> tuple[int, int, int, int]:
    """(first, last, step, zero-padded width) of one range; letters count a-z then A-Z."""
    start, end, step_text = match.group(1) or "0", match.group(2), match.group(3)
    if max(len(start), len(end), len(step_text or "")) > _MAX_RANGE_DIGITS:
        raise ValueError(f"{pattern!r}: a range's bounds may have at most {_MAX_RANGE_DIGITS} digits")
    step = int(step_text) if step_text else 1
    if step < 1:
        raise ValueError(f"{pattern!r}: the step of a range must be at least 1")
    width = 0
    if start.isdigit() and end.isdigit():
        first, last = int(start), int(end)
        width = len(start) if start.startswith("0") and len(start) > 1 else 0
        if width and len(end) != width:
            raise ValueError(f"{pattern!r}: a zero-padded range needs a start and an end of the same width")
    elif start.isalpha() and end.isalpha():
        first, last = string.ascii_letters.index(start), string.ascii_letters.index(end)
    else:
        raise ValueError(f"{pattern!r}: a range is either letters or digits, not both")
    if first > last:
        raise ValueError(f"{pattern!r}: the range runs backwards")
    return first, last, step, width


def expand_host_pattern(pattern: str) -> list[str]:
    """Ansible's host ranges: ``web[01:03].dc`` → web01.dc, web02.dc, web03.dc; ``db-[a:c]``.

    A range without a start begins at 0 (``mail[:2]`` → mail0, mail1, mail2); letters run
    a-z then A-Z, as in Ansible. Raises ValueError for a range that runs backwards, mixes
    letters and digits, pads its ends to different widths, or is huge: the hosts are
    counted (:func:`range_host_count`) before any list is built.
    """
    if range_host_count(pattern) > MAX_RANGE_HOSTS:
        raise ValueError(f"{pattern!r}: a range may hold at most {MAX_RANGE_HOSTS} hosts")
    pieces: list[list[str]] = []
    at = 0
    for match in _RANGE.finditer(pattern):
        first, last, step, width = _range_bounds(pattern, match)
        if match.group(2).isdigit():
            items = [str(number).zfill(width) for number in range(first, last + 1, step)]
        else:
            items = list(string.ascii_letters[first : last + 1 : step])
        pieces += [[pattern[at : match.start()]], items]
        at = match.end()
    pieces.append([pattern[at:]])
    return ["".join(parts) for parts in itertools.product(*pieces)]


# --- Ansible INI ------------------------------------------------------------------------------

_SECTION = re.compile(r"\[([^\]]+)\]\s*(?:[#;].*)?")


@dataclass(frozen=True, slots=True)
class _Pending:
    """A group named in ``[parent:children]`` or ``[name:vars]`` before any ``[name]`` declares it."""

    line: int
    kind: str  # "children" or "vars"
    parent: str


def _read_ini(inventory: _AnsibleInventory, path: Path, text: str) -> None:
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
            inventory.group(section).vars[key.strip()] = _Var(
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


def _ini_host_line(inventory: _AnsibleInventory, group: str, line: str, number: int) -> None:
    """``web[1:3] ansible_host=10.0.0.1 datacenter="iad"``: a host pattern and its variables."""
    try:
        words = shlex.split(line, comments=True)
    except ValueError as error:
        inventory.issue(number, f"[{group}]", f"cannot read this host line: {error}")
        return
    if not words:
        return
    pattern, settings = words[0], words[1:]
    variables: dict[str, _Var] = {}
    pattern, port = split_host_port(pattern)
    if port is not None:
        variables["ansible_port"] = _Var(str(port), inventory.file, words[0], number)
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
        variables[key] = _Var(value, inventory.file, f"{pattern}.{key}", number)
    for name in names:
        inventory.add_host(group, name, variables, name, number)


def _unquote(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
        return value[1:-1]
    return value


# --- Ansible YAML -----------------------------------------------------------------------------


def _read_ansible_yaml(inventory: _AnsibleInventory, document: YamlDocument) -> None:
    """Add one YAML inventory's groups and hosts to ``inventory``."""
    inventory.file = document.file
    for name, body in document.data.items():
        _yaml_group(inventory, document, str(name), body, (name,), parent=None)


def _yaml_group(
    inventory: _AnsibleInventory,
    document: YamlDocument,
    name: str,
    body: Any,
    at: YamlPath,
    parent: str | None,
) -> None:
    inventory.group(name)
    if parent is not None:
        if parent == name:
            inventory.issue(document.line_of(at), format_path(at), f"group {name!r} cannot be its own child")
            return
        inventory.add_child(parent, name)
    if body is None:
        return
    if not isinstance(body, dict):
        inventory.issue(
            document.line_of(at),
            format_path(at),
            f"expected a group: a mapping with hosts, vars or children (got {describe(body)})",
        )
        return
    for key, value in body.items():
        here = (*at, key)
        if value is None:
            continue
        if key not in ("hosts", "vars", "children"):
            inventory.issue(
                document.line_of(here),
                format_path(here),
                "unknown key in a group; expected hosts, vars or children",
            )
        elif not isinstance(value, dict):
            inventory.issue(
                document.line_of(here), format_path(here), f"expected a mapping (got {describe(value)})"
            )
        elif key == "vars":
            inventory.group(name).vars.update(_vars_from_yaml(document, value, here))
        elif key == "children":
            for child, child_body in value.items():
                _yaml_group(inventory, document, str(child), child_body, (*here, child), parent=name)
        else:
            for host, host_vars in value.items():
                _yaml_host(inventory, document, name, str(host), host_vars, (*here, host))


def _yaml_host(
    inventory: _AnsibleInventory, document: YamlDocument, group: str, pattern: str, body: Any, at: YamlPath
) -> None:
    line, where = document.line_of(at), format_path(at)
    if body is not None and not isinstance(body, dict):
        inventory.issue(line, where, f"expected the host's variables as a mapping (got {describe(body)})")
        return
    pattern, port = split_host_port(pattern)
    try:
        names = expand_host_pattern(pattern)
    except ValueError as error:
        inventory.issue(line, where, str(error))
        return
    variables = {"ansible_port": _Var(str(port), document.file, where, line)} if port is not None else {}
    variables.update(_vars_from_yaml(document, body or {}, at))
    for name in names:
        inventory.add_host(group, name, variables, where, line)


# --- Ansible dynamic inventory scripts ---------------------------------------------------------


def _read_script(inventory: _AnsibleInventory, path: Path, deadline: float, timeout: float) -> None:
    """Run ``path --list`` and add its JSON to ``inventory``; ``--host NAME`` when there is no ``_meta``."""
    file = f"{path} --list"
    inventory.file = file
    data = _script_json(path, ["--list"], deadline, timeout)
    if not isinstance(data, dict):
        raise FleetError(
            f"inventory script {path} --list printed {describe(data)}, not a JSON object of groups"
        )
    listed: set[str] = set()  # this script's hosts: its variables reach no other file's
    meta = data.get("_meta")
    for name, body in data.items():
        if name == "_meta":
            continue
        _json_group(inventory, str(name), body, listed)
    if isinstance(meta, dict) and isinstance(meta.get("hostvars"), dict):
        for host, variables in meta["hostvars"].items():
            if host in listed and isinstance(variables, dict):
                inventory.hosts[host].vars.update(_json_vars(file, variables, f"_meta.hostvars.{host}"))
            elif host in listed:
                inventory.issue(
                    None, f"_meta.hostvars.{host}", f"expected a JSON object (got {describe(variables)})"
                )
    elif meta is not None:
        inventory.issue(None, "_meta", 'expected {"hostvars": {...}}')
    else:
        for host, record in inventory.hosts.items():
            if host not in listed:
                continue
            variables = _script_json(path, ["--host", host], deadline, timeout)
            if not isinstance(variables, dict):
                raise FleetError(
                    f"inventory script {path} --host {host} printed {describe(variables)}, not a JSON object"
                )
            record.vars.update(_json_vars(f"{path} --host {host}", variables, host))


def _json_group(inventory: _AnsibleInventory, name: str, body: Any, listed: set[str]) -> None:
    """A group of `--list` output: a list of hosts, or {hosts, vars, children}."""
    inventory.group(name)
    if isinstance(body, list):
        body = {"hosts": body}
    if not isinstance(body, dict):
        inventory.issue(
            None,
            name,
            f"expected a list of hosts or an object with hosts, vars, children (got {describe(body)})",
        )
        return
    for key, value in body.items():
        if key == "hosts" and isinstance(value, list):
            for host in value:
                if isinstance(host, str):
                    inventory.add_host(name, host, {}, host, None)
                    listed.add(host)
                else:
                    inventory.issue(None, f"{name}.hosts", f"expected host names (got {describe(host)})")
        elif key == "vars" and isinstance(value, dict):
            inventory.group(name).vars.update(_json_vars(inventory.file, value, f"{name}.vars"))
        elif key == "children" and isinstance(value, list):
            for child in value:
                if isinstance(child, str) and child != name:
                    inventory.add_child(name, child)
                else:
                    inventory.issue(
                        None, f"{name}.children", f"expected names of other groups (got {describe(child)})"
                    )
        elif key in ("hosts", "vars", "children"):
            shape = "an object" if key == "vars" else "a list"
            inventory.issue(None, f"{name}.{key}", f"expected {shape} (got {describe(value)})")
        else:
            inventory.issue(None, f"{name}.{key}", "unknown key in a group; expected hosts, vars or children")


def _json_vars(file: str, variables: Mapping[str, Any], prefix: str) -> dict[str, _Var]:
    return {str(key): _Var(value, file, f"{prefix}.{key}", None) for key, value in variables.items()}


def _script_json(path: Path, arguments: list[str], deadline: float, timeout: float) -> Any:
    command = " ".join(shlex.quote(part) for part in [str(path), *arguments])
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise FleetError(f"inventory script {path} did not finish within {timeout:g}s")
    output = _run(path, arguments, remaining, command, timeout)
    shown = output.strip()[:200] or "nothing"
    try:
        return json.loads(output, parse_int=_bounded_int)
    except json.JSONDecodeError as error:
        raise FleetError(
            f"{command} printed something that is not JSON (line {error.lineno}: {error.msg}): {shown!r}"
        ) from None
    except ValueError as error:  # a number too long, from _bounded_int
        raise FleetError(f"{command} printed JSON deployer will not read ({error}): {shown!r}") from None


def _bounded_int(text: str) -> int:
    """A JSON integer, refused past MAX_INT_DIGITS (Python itself stops at 4,300, with a traceback)."""
    if len(text) > MAX_INT_DIGITS:
        raise ValueError(f"a number of {len(text)} digits; at most {MAX_INT_DIGITS}")
    return int(text)


def _run(path: Path, arguments: list[str], limit: float, command: str, timeout: float) -> str:
    """Run the script in its own session so a timeout kills it and everything it started."""
    try:
        process = subprocess.Popen(
            [str(path.absolute()), *arguments],  # absolute: it runs from its own folder
            cwd=path.parent,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
    except OSError as error:
        raise FleetError(f"cannot run inventory script {path}: {error.strerror or error}") from None
    try:
        stdout, stderr = process.communicate(timeout=limit)
    except subprocess.TimeoutExpired:
        _kill_session(process)
        raise FleetError(f"{command} did not finish within {timeout:g}s") from None
    if process.returncode != 0:
        said = tail(stderr.decode("utf-8", "replace"), 5).strip()
        raise FleetError(f"{command} exited {process.returncode}" + (f": {said}" if said else ""))
    try:
        return stdout.decode("utf-8")
    except UnicodeDecodeError:
        raise FleetError(f"{command} printed something that is not UTF-8 text") from None


def _kill_session(process: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError):  # it may have just ended by itself
        os.killpg(process.pid, signal.SIGKILL)
    try:
        process.communicate(timeout=5)
    except subprocess.TimeoutExpired:  # a descendant left the session and holds the pipes
        for stream in (process.stdout, process.stderr):
            if stream is not None:
                stream.close()
        process.wait(timeout=5)
