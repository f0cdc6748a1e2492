"""``deploy schema``: the JSON Schema of spec files, for editors and other tools.

Point yaml-language-server at it with a first line such as
``# yaml-language-server: $schema=./spec.schema.json`` after
``deploy schema > spec.schema.json``.
"""

from __future__ import annotations

import json

import click

from deployer.spec.json_schema import inventory_json_schema, spec_json_schema


@click.command()
@click.option(
    "--inventory", is_flag=True, help="Print the schema of our inventory format instead of the spec's."
)
def schema(inventory: bool) -> None:
    """Print the JSON Schema of a spec file (or of an inventory file)."""
    document = inventory_json_schema() if inventory else spec_json_schema()
    click.echo(json.dumps(document, indent=2))


commands = [schema]
