"""The failure budget as the screens show it: how many more failed hosts a deployment tolerates.

Pure: counts and the recorded budget in, a state, a sentence and meter cells out.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from deployer.core.results import HostStatus
from deployer.store.views import DeploymentView


class BudgetState(StrEnum):
    UNKNOWN = "unknown"  # the deployment does not record its budget
    CLEAR = "clear"  # no failure yet
    SPENDING = "spending"  # some failures, more tolerated
    AT_LIMIT = "at-limit"  # as many failures as tolerated: one more halts
    EXCEEDED = "exceeded"  # over the budget: the deployment halts


@dataclass(frozen=True, slots=True)
class FailureBudget:
    """Failed hosts (failed or unreachable) against the number tolerated.

    Worked example: budget 2. No failure: clear. One: spending, 1 more tolerated.
    Two: at the limit, one more halts. Three: exceeded, the controller halts
    (hosts in flight finish, no new host starts).
    """

    failed_count: int
    budget: int | None

    @property
    def state(self) -> BudgetState:
        if self.budget is None:
            return BudgetState.UNKNOWN
        if self.failed_count > self.budget:
            return BudgetState.EXCEEDED
        if self.failed_count == self.budget:
            return BudgetState.AT_LIMIT
        return BudgetState.SPENDING if self.failed_count else BudgetState.CLEAR

    def describe(self) -> str:
        failed = f"{self.failed_count} failed"
        match self.state:
            case BudgetState.UNKNOWN:
                return f"{failed} (budget not recorded)"
            case BudgetState.EXCEEDED:
                return f"{failed}, more than the {self.budget} allowed: halting"
            case BudgetState.AT_LIMIT:
                return f"{failed} of {self.budget} allowed: one more halts"
            case _:
                assert self.budget is not None
                return f"{failed} of {self.budget} allowed: {self.budget - self.failed_count} more tolerated"


BUDGET_STYLES: Mapping[BudgetState, str] = {
    BudgetState.UNKNOWN: "yellow",
    BudgetState.CLEAR: "green",
    BudgetState.SPENDING: "yellow",
    BudgetState.AT_LIMIT: "bold red",
    BudgetState.EXCEEDED: "bold reverse red",
}


def failed_count(counts: Mapping[HostStatus, int]) -> int:
    return sum(n for status, n in counts.items() if status.is_failure)


def budget_of(view: DeploymentView) -> int | None:
    """The deployment's failure budget if the store records it (``DeploymentView.failure_budget``).

    Read by name so the TUI shows it as soon as the store carries it; until then
    the screens say the budget is not recorded, or use the one the controller
    announced in its DeploymentStarted event (``deploy push --tui``).
    """
    budget: Any = getattr(view, "failure_budget", None)
    return budget if isinstance(budget, int) else None


def budget_meter(budget: FailureBudget, width: int = 20) -> list[tuple[str, str]]:
    """The budget as cells: one ``✗`` per failure, one ``○`` per failure still tolerated.

    When the budget is wider than ``width`` the meter is scaled (each cell stands
    for several hosts) and says so with a ``≈`` in front.
    """
    if budget.budget is None:
        return []
    slots = budget.budget + 1  # the last slot is the failure that halts
    used = min(budget.failed_count, slots)
    if slots > width:
        used = round(used * width / slots) if used < slots else width
        used = max(used, 1 if budget.failed_count else 0)
        slots = width
        cells = [("≈", "dim")]
    else:
        cells = []
    style = BUDGET_STYLES[budget.state]
    cells += [("✗", style)] * used
    cells += [("○", "dim")] * (slots - used - 1)
    if used < slots:
        cells.append(("│", "bold red"))  # the one that would halt
    return cells
