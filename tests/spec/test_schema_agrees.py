"""docs/spec.schema.json and load_spec give every spec fixture the same verdict.

Editors check a spec against the JSON Schema (``deploy schema``); the tool checks it
with load_spec. A spec one accepts and the other refuses is a trap either way, so
every fixture under valid/ and invalid/ goes through both, and so does every example
in specs/. New fields and new fixtures join the test by themselves.

A few refusals depend on more than the file's own shape, which no JSON Schema can
see; :data:`BEYOND_THE_SCHEMA` names those fixtures and why, and for them the test
checks that each problem load_spec reports is of that kind.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from deployer.core.errors import SpecError
from deployer.inventory.load import load_inventory
from deployer.inventory.yamlload import format_path
from deployer.operations.reading import check_fabric_task
from deployer.spec.load import load_spec

HERE = Path(__file__).parent
REPO = HERE.parent.parent
SPEC_SCHEMA = json.loads((REPO / "docs" / "spec.schema.json").read_text())
INVENTORY_SCHEMA = json.loads((REPO / "docs" / "inventory.schema.json").read_text())

# fixture -> the words of every problem load_spec finds in it that the schema cannot know
BEYOND_THE_SCHEMA = {
    "fleet-file-missing.yaml": "no inventory file",  # a file the spec names must exist
    "demo.yaml": "no inventory file",  # the lab writes its inventory when it starts
    "fabric-file-missing.yaml": "no Fabric file",  # a Fabric file must exist and define the task
    "duplicate-keys.yaml": "duplicate key",  # a YAML mapping's keys, before any data exists
    "inline-fleet-duplicates.yaml": "duplicate host name",  # unique names across a list of objects
    "version-missing.yaml": "or give --version",  # the command line may give it
    "gate-bake.yaml": "needs bake above zero",  # a rule across two fields of the strategy
}


def schema_verdict(path: Path, schema: dict[str, Any]) -> set[str]:
    """The fields an editor marks in ``path``, written as load_spec names them.

    A YAML syntax error marks the whole file (""); a missing or unknown key marks that
    key, as load_spec does, rather than the mapping it is missing from or found in.
    """
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError:
        return {""}
    marked: set[str] = set()
    for error in jsonschema.Draft202012Validator(schema).iter_errors(data):
        where = tuple(error.absolute_path)
        if error.validator == "required":
            names = [name for name in error.validator_value if name not in error.instance]
        elif error.validator == "additionalProperties":
            known = set(error.schema.get("properties", {}))
            patterns = [re.compile(p) for p in error.schema.get("patternProperties", {})]
            names = [k for k in error.instance if k not in known and not any(p.search(k) for p in patterns)]
        else:
            names = [None]
        marked.update(format_path(where if name is None else (*where, name)) for name in names)
    return marked


def read_spec(path: Path) -> object:
    return load_spec(path, check_task=check_fabric_task)


def tool_verdict(path: Path, load: Callable[[Path], object] = read_spec) -> set[str]:
    """The fields load_spec (or ``load``) reports a problem in; empty when it loads."""
    try:
        load(path)
    except SpecError as error:
        return {issue.field for issue in error.issues}
    return set()


def spec_fixtures() -> list[Path]:
    valid = sorted((HERE / "valid").glob("*.yaml"))
    invalid = sorted((HERE / "invalid" / "specs").glob("*.yaml"))
    examples = [*sorted((REPO / "specs").glob("*.yaml")), REPO / "deployer" / "demo" / "demo.yaml"]
    assert valid and invalid and examples
    return [*valid, *invalid, *examples]


@pytest.mark.parametrize("path", spec_fixtures(), ids=lambda path: f"{path.parent.name}/{path.name}")
def test_the_schema_and_load_spec_agree(path: Path) -> None:
    by_schema = schema_verdict(path, SPEC_SCHEMA)
    by_tool = tool_verdict(path)
    beyond = BEYOND_THE_SCHEMA.get(path.name)
    if beyond is not None:
        with pytest.raises(SpecError) as caught:
            load_spec(path, check_task=check_fabric_task)
        assert all(beyond in str(issue) for issue in caught.value.issues), str(caught.value)
        assert by_schema == set()
        return
    assert_same_fields(by_schema, by_tool)


def is_within(field: str, mark: str) -> bool:
    """Whether ``field`` is ``mark`` or lies inside it (``hooks.stop`` inside ``hooks``)."""
    return field == mark or mark == "" or field.startswith((f"{mark}.", f"{mark}["))


def overlaps(field: str, mark: str) -> bool:
    """Whether one lies within the other: the same place named at two depths."""
    return is_within(field, mark) or is_within(mark, field)


def assert_same_fields(by_schema: set[str], by_tool: set[str]) -> None:
    """Both mark the same places. A schema error on a union (a hook that is a string or a
    mapping, an environment that is a mapping or null) stands on the union itself, so
    a schema mark covers the tool's fields inside it; a shape rule the tool checks on an
    object (an http gate needs url) the schema marks on the missing key inside it. Each
    side's marks need one of the other's."""
    assert all(any(overlaps(field, mark) for mark in by_schema) for field in by_tool), (by_schema, by_tool)
    assert all(any(overlaps(field, mark) for field in by_tool) for mark in by_schema), (by_schema, by_tool)


def inventory_fixtures() -> list[Path]:
    return [
        *sorted((HERE / "valid" / "inventories").glob("ours*.yaml")),
        *sorted((HERE / "invalid" / "inventories").glob("ours*.yaml")),
    ]


@pytest.mark.parametrize("path", inventory_fixtures(), ids=lambda path: f"{path.parent.name}/{path.name}")
def test_the_inventory_schema_and_the_tool_agree(path: Path) -> None:
    by_schema = schema_verdict(path, INVENTORY_SCHEMA)
    by_tool = tool_verdict(path, load_inventory)
    if path.name == "ours-duplicates.yaml":  # unique names across a list: beyond any JSON Schema
        assert by_tool and by_schema == set()
        return
    assert_same_fields(by_schema, by_tool)
