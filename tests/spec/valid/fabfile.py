"""A Fabric file the full.yaml fixture points at; the spec loader only checks that it exists."""

from __future__ import annotations

from typing import Any

from fabric import task  # type: ignore[import-untyped]


@task  # type: ignore[untyped-decorator]
def migrate(c: Any, dry_run: bool = False) -> None:  # never run by these tests
    c.run("true")
