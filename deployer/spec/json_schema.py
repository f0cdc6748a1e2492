"""The JSON Schemas of the files people write, for editors (yaml-language-server) and tools.

``deploy schema`` prints them; docs/spec.schema.json and docs/inventory.schema.json are
their output, and tests/spec/test_schema_agrees.py holds them to what the loaders accept.
"""

from __future__ import annotations

from typing import Any

from deployer.inventory.ours import InventoryModel
from deployer.spec.schema import SpecFileModel

JSON_SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"


def spec_json_schema() -> dict[str, Any]:
    """The JSON Schema of a spec file, for editors (yaml-language-server) and tools."""
    return {"$schema": JSON_SCHEMA_DIALECT, **SpecFileModel.model_json_schema(by_alias=True)}


def inventory_json_schema() -> dict[str, Any]:
    """The JSON Schema of our inventory format."""
    return {"$schema": JSON_SCHEMA_DIALECT, **InventoryModel.model_json_schema(by_alias=True)}
