"""Reading an inventory file, or a folder of them: which format a file is in, and the folder's merge."""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterator
from pathlib import Path

from deployer.core.errors import FleetError, SpecError
from deployer.core.targets import Fleet
from deployer.inventory.ansible import AnsibleInventory, ansible_fleet
from deployer.inventory.ansible_yaml import read_ansible_yaml
from deployer.inventory.ini import read_ini
from deployer.inventory.ours import fleet_of_our_yaml, is_our_yaml
from deployer.inventory.script import read_script
from deployer.inventory.yamlload import YamlDocument, load_yaml, load_yaml_mapping, read_bounded

SCRIPT_TIMEOUT = 30.0  # seconds a dynamic inventory script may take, all its calls together
_DATA_SUFFIXES = frozenset({".yml", ".yaml", ".json", ".ini", ".cfg", ".txt"})


def load_inventory(path: Path, *, script_timeout: float = SCRIPT_TIMEOUT) -> Fleet:
    """Read one inventory file, or a folder of them, in any supported format; hosts keep file order."""
    path = Path(path)
    if path.is_dir():
        return _from_folder(path, script_timeout)
    if not path.is_file():
        raise FleetError(f"no inventory file at {path}")
    if is_inventory_script(path):
        inventory = AnsibleInventory(str(path))
        read_script(inventory, path, time.monotonic() + script_timeout, script_timeout)
        return ansible_fleet(inventory, None, str(path))
    text, document = _read_data_file(path)
    if document is None:
        inventory = AnsibleInventory(str(path))
        read_ini(inventory, path, text)
        return ansible_fleet(inventory, path.parent, str(path))
    data = document.data
    if is_our_yaml(data):
        return fleet_of_our_yaml(path, document)
    inventory = AnsibleInventory(document.file)
    read_ansible_yaml(inventory, document)
    return ansible_fleet(inventory, path.parent, document.file)


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
    inventory = AnsibleInventory(str(folder))
    deadline = time.monotonic() + script_timeout
    files = list(_folder_files(folder))
    if not files:
        raise FleetError(f"inventory folder {folder} holds no inventory file")
    for path in files:
        inventory.file = str(path)
        if is_inventory_script(path):
            read_script(inventory, path, deadline, script_timeout)
            continue
        text, document = _read_data_file(path)
        if document is None:
            read_ini(inventory, path, text)
        elif is_our_yaml(document.data):
            inventory.issue(
                document.line_of(()),
                "",
                "our hosts: format stands alone; an inventory folder holds Ansible inventories",
            )
        else:
            read_ansible_yaml(inventory, document)
    inventory.file = str(folder)
    return ansible_fleet(inventory, folder, str(folder))


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
