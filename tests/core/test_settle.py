"""settle_host's docstring table, row by row."""

from __future__ import annotations

from typing import Any

import pytest

from deployer.core.results import HostStatus
from deployer.core.runner import HostProbe
from deployer.core.settle import settle_host

P, R, U = HostStatus.PENDING, HostStatus.RUNNING, HostStatus.UNKNOWN
DOWN = HostProbe("web1", reachable=False, error="connection refused")


def said(outcome: str | None, current: str | None = "2.0") -> HostProbe:
    return HostProbe("web1", reachable=True, current_version=current, outcome=outcome)


@pytest.mark.parametrize(
    ("recorded", "in_inventory", "probe", "status", "version", "waiting"),
    [
        (P, False, None, HostStatus.NOT_STARTED, None, False),
        (R, False, None, HostStatus.UNKNOWN, None, False),  # in flight: it may have switched
        (U, False, None, HostStatus.UNKNOWN, None, False),
        (R, True, DOWN, HostStatus.UNKNOWN, None, False),
        (U, True, DOWN, HostStatus.UNKNOWN, None, False),
        (R, True, said(None, "1.0"), HostStatus.PENDING, None, False),
        (U, True, said(None, "1.0"), HostStatus.FAILED, "1.0", False),
        (U, True, said("running"), HostStatus.UNKNOWN, "2.0", True),
        (R, True, said("succeeded"), HostStatus.SUCCEEDED, "2.0", False),
        (U, True, said("succeeded"), HostStatus.SUCCEEDED, "2.0", False),
        (U, True, said("aborted:switch", "1.0"), HostStatus.ABORTED, "1.0", False),
        (U, True, said("failed:validate:7"), HostStatus.FAILED, "2.0", False),
        (U, True, said("interrupted:start"), HostStatus.FAILED, "2.0", False),
    ],
)
def test_settle_host(
    recorded: HostStatus,
    in_inventory: bool,
    probe: HostProbe | None,
    status: HostStatus,
    version: str | None,
    waiting: bool,
) -> None:
    verdict = settle_host(recorded, in_inventory, probe)
    assert (verdict.status, verdict.version, verdict.waiting) == (status, version, waiting)
    assert verdict.note or waiting


def test_a_failure_says_which_step_and_how() -> None:
    verdict = settle_host(U, True, said("failed:validate:7"))
    assert (verdict.step, verdict.exit_status, verdict.note) == ("validate", 7, "probe: validate exited 7")
    assert settle_host(U, True, said("interrupted:start")).note == "probe: start was interrupted"


@pytest.mark.parametrize(
    ("recorded", "in_inventory", "probe", "asked", "status", "version", "note"),
    [
        # Not asked (its spec cannot be read): unknown, whatever was recorded.
        (
            R,
            True,
            None,
            {"not_asked": "its spec cannot be read"},
            U,
            None,
            "not asked: its spec cannot be read",
        ),
        (
            U,
            True,
            None,
            {"not_asked": "its spec cannot be read"},
            U,
            None,
            "not asked: its spec cannot be read",
        ),
        # Late: the deadline passed with no answer at all, or with its driver still running.
        (U, True, None, {"late": 40.0}, U, None, "no answer within 40s after 40s"),
        (R, True, said("running"), {"late": 40.0}, U, "2.0", "its driver was still running after 40s"),
        (U, True, said("succeeded"), {"late": 40.0}, HostStatus.SUCCEEDED, "2.0", "probe: it succeeded"),
        # A later deployment reached it since: the verdict stands, its version is not this one's.
        (
            U,
            True,
            said("succeeded"),
            {"reached_since": True},
            HostStatus.SUCCEEDED,
            None,
            "probe: it succeeded; a later deployment reached it since: its version is that one's",
        ),
        (
            U,
            False,
            None,
            {"reached_since": True},
            U,
            None,
            "left the inventory; its outcome cannot be asked; "
            "a later deployment reached it since: its version is that one's",
        ),
        (
            U,
            True,
            said("running"),
            {"late": 40.0, "reached_since": True},
            U,
            None,
            "its driver was still running after 40s; "
            "a later deployment reached it since: its version is that one's",
        ),
    ],
)
def test_settle_host_when_not_asked_late_or_overtaken(
    recorded: HostStatus,
    in_inventory: bool,
    probe: HostProbe | None,
    asked: dict[str, Any],
    status: HostStatus,
    version: str | None,
    note: str,
) -> None:
    verdict = settle_host(recorded, in_inventory, probe, **asked)
    assert (verdict.status, verdict.version, verdict.note, verdict.waiting) == (status, version, note, False)
