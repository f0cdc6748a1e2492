"""`deploy schema`: a JSON Schema that describes the spec as load_spec reads it."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

from deployer.spec.json_schema import inventory_json_schema, spec_json_schema

REPO = Path(__file__).parent.parent.parent
DEPLOY = Path(sys.executable).parent / "deploy"


def run_deploy(*arguments: str) -> Any:
    finished = subprocess.run(
        [str(DEPLOY), *arguments], capture_output=True, text=True, timeout=60, check=False
    )
    assert finished.returncode == 0, finished.stderr
    return json.loads(finished.stdout)


def objects(node: Any) -> list[dict[str, Any]]:
    """Every sub-schema of type object, anywhere in ``node``."""
    found: list[dict[str, Any]] = []
    if isinstance(node, dict):
        if node.get("type") == "object" and "properties" in node:
            found.append(node)
        for value in node.values():
            found.extend(objects(value))
    elif isinstance(node, list):
        for value in node:
            found.extend(objects(value))
    return found


def test_deploy_schema_prints_the_spec_schema() -> None:
    schema = run_deploy("schema")
    assert schema == spec_json_schema()
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert set(schema["properties"]) == {
        "app",
        "version",
        "environment",
        "fleet",
        "artifact",
        "target",
        "keep_releases",
        "ssh",
        "strategy",
        "hooks",
        "notify",
        "environments",
    }
    assert set(schema["required"]) == {"app", "fleet", "artifact", "target"}
    # typos must not pass in an editor either: every object closes its properties
    assert all(node.get("additionalProperties") is False for node in objects(schema))
    assert set(schema["$defs"]["HooksModel"]["properties"]) == {
        "stop",
        "before_install",
        "after_install",
        "start",
        "validate",
        "timeout",
        "contain",
    }
    assert schema["$defs"]["StrategyModel"]["properties"]["batch"]["default"] == [1, "25%"]
    gate = schema["$defs"]["GateModel"]
    assert set(gate["required"]) == {"name", "type"}
    assert {"url", "headers", "field", "min", "max", "timeout", "interval", "when"} <= set(gate["properties"])
    assert set(schema["$defs"]["NotifyModel"]["properties"]) == {
        "type",
        "url",
        "headers",
        "command",
        "events",
        "timeout",
    }


def test_the_version_pattern_refuses_what_load_spec_refuses() -> None:
    version = spec_json_schema()["properties"]["version"]["anyOf"][0]
    pattern = re.compile(version["pattern"])
    assert pattern.search("2.4.1+build.7~rc1")
    for bad in ["1.0;touch /tmp/pwned", "$(reboot)", "-rf", "a b"]:
        assert not pattern.search(bad)


def test_deploy_schema_inventory() -> None:
    schema = run_deploy("schema", "--inventory")
    assert schema == inventory_json_schema()
    assert schema["required"] == ["hosts"]
    assert set(schema["$defs"]["HostModel"]["required"]) == {"name", "datacenter"}


def test_the_schemas_in_docs_are_current() -> None:
    """docs/*.schema.json are what editors load; regenerate them with `deploy schema`."""
    assert json.loads((REPO / "docs" / "spec.schema.json").read_text()) == spec_json_schema()
    assert json.loads((REPO / "docs" / "inventory.schema.json").read_text()) == inventory_json_schema()


TARGETS = {
    # target: whether load_spec takes it
    "/srv/shop": True,
    "/srv/shop/": True,
    "/var/www/app": True,
    "~/apps/billing": True,
    "/srv/.hidden": True,
    "/srv/a..b": True,
    "/etcetera": True,
    "/": False,
    "//": False,
    "~": False,
    "~/": False,
    "/./": False,
    "/.": False,
    "~/.": False,
    "~/./": False,
    "/srv/../etc": False,
    "/srv//shop": False,
    "/srv/shop//": False,
    "/etc": False,
    "/var/": False,
    "/tmp": False,
    "/home": False,
    "srv/shop": False,
}


def test_the_schema_states_the_target_rule() -> None:
    """Editors read the pattern in docs/spec.schema.json: it takes what load_spec takes."""
    pattern = spec_json_schema()["properties"]["target"]["pattern"]
    taken = {target: re.search(pattern, target) is not None for target in TARGETS}
    assert taken == TARGETS
