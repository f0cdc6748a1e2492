"""Reading a spec for an operation, its Fabric tasks checked (Fabric imported only for a spec
that names a task; nothing here imports asyncssh).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from deployer.core.spec import Spec
from deployer.spec.load import load_spec


def check_fabric_task(reference: str, args: Mapping[str, Any]) -> str | None:
    """Why a spec's Fabric task cannot be called, or None: the check :func:`load_spec` is given.

    Fabric is imported here, only for a spec that names a task.
    """
    from deployer.hosts.fabric_hooks import task_problem

    return task_problem(reference, args)


def read_spec(path: str, version: str | None, environment: str | None) -> Spec:
    """The spec at ``path`` for ``version`` and ``environment``, its Fabric tasks checked."""
    return load_spec(path, check_task=check_fabric_task, version=version, environment=environment)
