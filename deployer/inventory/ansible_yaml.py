"""Ansible YAML inventories: groups with ``hosts``, ``vars`` and ``children``."""

from __future__ import annotations

from typing import Any

from deployer.inventory.ansible import AnsibleInventory, Var, vars_from_yaml
from deployer.inventory.patterns import expand_host_pattern, split_host_port
from deployer.inventory.yamlload import YamlDocument, YamlPath, describe, format_path


def read_ansible_yaml(inventory: AnsibleInventory, document: YamlDocument) -> None:
    """Add one YAML inventory's groups and hosts to ``inventory``."""
    inventory.file = document.file
    for name, body in document.data.items():
        _yaml_group(inventory, document, str(name), body, (name,), parent=None)


def _yaml_group(
    inventory: AnsibleInventory,
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
            inventory.group(name).vars.update(vars_from_yaml(document, value, here))
        elif key == "children":
            for child, child_body in value.items():
                _yaml_group(inventory, document, str(child), child_body, (*here, child), parent=name)
        else:
            for host, host_vars in value.items():
                _yaml_host(inventory, document, name, str(host), host_vars, (*here, host))


def _yaml_host(
    inventory: AnsibleInventory, document: YamlDocument, group: str, pattern: str, body: Any, at: YamlPath
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
    variables = {"ansible_port": Var(str(port), document.file, where, line)} if port is not None else {}
    variables.update(vars_from_yaml(document, body or {}, at))
    for name in names:
        inventory.add_host(group, name, variables, where, line)
