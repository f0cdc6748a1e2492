"""What the operator asked for (:class:`PushOptions`), and how a deployment keeps it in the store,
so that ``deploy resume`` and the automatic rollbacks run with the same options.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from deployer.core.results import DeploymentKind


@dataclass(frozen=True, slots=True)
class PushOptions:
    """What the operator asked for on the command line."""

    spec_path: str
    version: str | None = None
    environment: str | None = None
    limit: str | None = None
    only_hosts: frozenset[str] | None = None  # exactly these hosts (a rollback of the touched ones)
    force: bool = False
    ignore_stop_failures: bool = False
    kind: DeploymentKind = DeploymentKind.PUSH
    promoted_from: str | None = None  # a promotion: the environment the version proved itself in
    rollback_of: str | None = None  # an automatic rollback (on_halt): the deployment it undoes
    # Hosts that failed the deployment being rolled back: they go first, and their failing
    # again does not count against the rollback's budget (see RolloutState.budget_exempt).
    known_bad: frozenset[str] = frozenset()


def options_json(options: PushOptions) -> dict[str, Any]:
    return {
        "spec_path": str(Path(options.spec_path).resolve()),
        "environment": options.environment,
        "limit": options.limit,
        "only_hosts": sorted(options.only_hosts) if options.only_hosts is not None else None,
        "force": options.force,
        "ignore_stop_failures": options.ignore_stop_failures,
        "kind": options.kind.value,
        "promoted_from": options.promoted_from,
        "rollback_of": options.rollback_of,
        "known_bad": sorted(options.known_bad),
    }


def options_from_json(data: Mapping[str, Any]) -> PushOptions:
    only = data.get("only_hosts")
    return PushOptions(
        spec_path=data["spec_path"],
        environment=data.get("environment"),
        limit=data.get("limit"),
        only_hosts=frozenset(only) if only is not None else None,
        force=bool(data.get("force")),
        ignore_stop_failures=bool(data.get("ignore_stop_failures")),
        kind=DeploymentKind(data.get("kind", "push")),
        promoted_from=data.get("promoted_from"),
        rollback_of=data.get("rollback_of"),
        known_bad=frozenset(data.get("known_bad") or ()),
    )
