"""Spec fixtures shared by the tests of reading a spec and of its hooks."""

from __future__ import annotations

import textwrap
from pathlib import Path

VALID = Path(__file__).parent / "valid"
MINIMAL = VALID / "minimal.yaml"
FULL = VALID / "full.yaml"


def write_spec(folder: Path, body: str, name: str = "spec.yaml") -> Path:
    path = folder / name
    path.write_text(textwrap.dedent(body))
    return path


BASE = textwrap.dedent(
    """\
    app: shop
    version: "1.0"
    fleet: {hosts: [{name: a, datacenter: east}]}
    artifact: build/
    target: /srv/shop
    """
)
