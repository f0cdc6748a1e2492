"""docs/architecture.md names real modules and functions: the path it draws is the code's."""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DOC = (REPO / "docs" / "architecture.md").read_text()
# `operations/plan.py: prepare()`, `rollout/controller.py: Controller.run()`
REFERENCE = re.compile(r"`?([\w/]+\.py): (\w+)(?:\.(\w+))?\(\)")


def _module(path: str) -> Path:
    for base in (REPO, REPO / "deployer"):
        if (base / path).is_file():
            return base / path
    raise AssertionError(f"docs/architecture.md names {path}, which does not exist")


def test_every_function_the_path_names_is_where_it_says() -> None:
    references = REFERENCE.findall(DOC)
    assert len(references) >= 15
    missing = []
    for path, name, member in references:
        source = _module(path).read_text()
        if not re.search(rf"^(async def|def|class) {name}\b", source, re.M):
            missing.append(f"{path}: {name}")
        elif member and not re.search(rf"^    (async def|def) {member}\b", source, re.M):
            missing.append(f"{path}: {name}.{member}")
    assert missing == []


def test_every_folder_of_the_layer_table_exists() -> None:
    folders = re.findall(r"`((?:deployer/)?\w+/)`", DOC)
    assert {"deployer/core/", "deployer/hosts/", "deployer/rollout/", "tui/"} <= set(folders)
    assert [folder for folder in folders if not (REPO / folder).is_dir()] == []
