"""The TUI's arithmetic and wording, without a terminal: filters, budget, waves, bars, durations."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from deployer.core.results import DeploymentKind, DeploymentStatus, HostStatus, Step
from deployer.store.views import DeploymentView, HostDeploymentView
from tui.budget import BudgetState, FailureBudget, budget_meter
from tui.filter import FilterError, HostFilter, filter_hosts, parse_filter
from tui.glyphs import host_glyph
from tui.model import (
    DatacenterProgress,
    datacenter_progress,
    pick_deployment_to_watch,
    stacked_bar,
    version_shares,
    wave_position,
)
from tui.widgets.datacenter import progress_line

T0 = datetime(2026, 11, 27, 18, 0, tzinfo=UTC)


def host(
    name: str,
    status: HostStatus = HostStatus.PENDING,
    *,
    datacenter: str = "iad",
    wave: int | None = 1,
    step: Step | None = None,
) -> HostDeploymentView:
    return HostDeploymentView(
        name=name,
        datacenter=datacenter,
        wave=wave,
        status=status,
        step=step,
        started_at=None,
        finished_at=None,
        error=None,
        exit_status=None,
        output_tail="",
        version=None,
        previous_version=None,
    )


def deployment(deployment_id: str, started: datetime, status: DeploymentStatus) -> DeploymentView:
    return DeploymentView(
        id=deployment_id,
        app="shop",
        environment="prod",
        kind=DeploymentKind.PUSH,
        version="1.2",
        previous_version="1.1",
        status=status,
        started_by="alice",
        started_from="build-1",
        pid=1,
        started_at=started,
        finished_at=None if not status.is_final else started + timedelta(minutes=5),
        heartbeat_at=started,
        spec_sha256="0" * 64,
        reason=None,
        requested_control=None,
        control_requested_at=None,
        control_requested_by=None,
        counts=dict.fromkeys(HostStatus, 0),
    )


# ---- the filter -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", HostFilter()),
        ("failed", HostFilter(states=frozenset({HostStatus.FAILED}))),
        (
            "FAILURES",
            HostFilter(states=frozenset({HostStatus.FAILED, HostStatus.UNREACHABLE, HostStatus.UNKNOWN})),
        ),
        ("ok", HostFilter(states=frozenset({HostStatus.SUCCEEDED}))),
        ("state:unr", HostFilter(states=frozenset({HostStatus.UNREACHABLE}))),
        ("state:", HostFilter()),  # still being typed
        ("dc:eu-* web", HostFilter(datacenters=("eu-*",), names=("web",))),
        ("name:failed", HostFilter(names=("failed",))),  # a host that happens to be called that
        (
            "running pending dc:iad dc:sfo",
            HostFilter(
                states=frozenset({HostStatus.RUNNING, HostStatus.PENDING}),
                datacenters=("iad", "sfo"),
            ),
        ),
    ],
)
def test_parse_filter(text: str, expected: HostFilter) -> None:
    assert parse_filter(text) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("state:nonsense", "unknown state 'nonsense'"),
        ("state:s", "state 's' could be succeeded or skipped"),
    ],
)
def test_parse_filter_refuses_unknown_states(text: str, message: str) -> None:
    with pytest.raises(FilterError, match=message):
        parse_filter(text)


@pytest.mark.parametrize(
    ("text", "names"),
    [
        ("web", ["web-01", "web-12", "WEB-99"]),  # a substring, any case
        ("web-1*", ["web-12"]),  # a glob matches the whole name
        ("*-0?", ["web-01", "db-03"]),
        ("failed", ["db-03"]),
        ("failures dc:sfo", []),
        ("dc:iad ok", ["web-01"]),
    ],
)
def test_filter_matches(text: str, names: list[str]) -> None:
    hosts = [
        host("web-01", HostStatus.SUCCEEDED),
        host("web-12", HostStatus.RUNNING, datacenter="sfo"),
        host("WEB-99", HostStatus.PENDING, datacenter="sfo"),
        host("db-03", HostStatus.FAILED),
    ]
    host_filter = parse_filter(text)
    assert [h.name for h in hosts if host_filter.matches(h)] == names
    assert [h.name for h in filter_hosts(hosts, host_filter)] == names  # the bulk path agrees


def test_filter_describes_itself() -> None:
    assert parse_filter("").describe() == "all hosts"
    assert (
        parse_filter("failures dc:sfo web").describe()
        == "failed or unknown or unreachable, in sfo, named web"
    )


# ---- the failure budget ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("failed", "state", "words"),
    [
        (0, BudgetState.CLEAR, "0 failed of 2 allowed: 2 more tolerated"),
        (1, BudgetState.SPENDING, "1 failed of 2 allowed: 1 more tolerated"),
        (2, BudgetState.AT_LIMIT, "2 failed of 2 allowed: one more halts"),
        (3, BudgetState.EXCEEDED, "3 failed, more than the 2 allowed: halting"),
    ],
)
def test_budget_worked_example(failed: int, state: BudgetState, words: str) -> None:
    budget = FailureBudget(failed, 2)
    assert budget.state is state
    assert budget.describe() == words


def test_unknown_budget_says_so() -> None:
    budget = FailureBudget(4, None)
    assert budget.state is BudgetState.UNKNOWN
    assert budget.describe() == "4 failed (budget not recorded)"
    assert budget_meter(budget) == []


@pytest.mark.parametrize(
    ("failed", "budget", "symbols"),
    [
        (0, 0, "│"),  # the first failure halts
        (1, 2, "✗○│"),
        (2, 2, "✗✗│"),
        (3, 2, "✗✗✗"),
    ],
)
def test_budget_meter(failed: int, budget: int, symbols: str) -> None:
    assert "".join(symbol for symbol, _ in budget_meter(FailureBudget(failed, budget))) == symbols


@given(st.integers(0, 1000), st.integers(0, 500))
def test_budget_meter_stays_short(failed: int, budget: int) -> None:
    cells = budget_meter(FailureBudget(failed, budget), width=20)
    assert len(cells) <= 21
    assert any(symbol == "✗" for symbol, _ in cells) == (failed > 0)


# ---- waves, datacenters, glyphs ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("statuses", "expected"),
    [
        ([], (None, 0)),
        ([(1, HostStatus.PENDING), (2, HostStatus.PENDING)], (1, 2)),
        ([(1, HostStatus.SUCCEEDED), (2, HostStatus.RUNNING), (3, HostStatus.PENDING)], (2, 3)),
        ([(1, HostStatus.FAILED), (2, HostStatus.SUCCEEDED)], (2, 2)),  # all done: the last wave
        ([(1, HostStatus.SUCCEEDED), (None, HostStatus.SKIPPED)], (1, 1)),  # skipped hosts have no wave
        # halted in wave 3 of 5: it stays there, not "wave 5 of 5"
        (
            [
                (1, HostStatus.SUCCEEDED),
                (2, HostStatus.FAILED),
                (3, HostStatus.FAILED),
                (4, HostStatus.NOT_STARTED),
                (5, HostStatus.NOT_STARTED),
            ],
            (3, 5),
        ),
        ([(1, HostStatus.SUCCEEDED), (2, HostStatus.ABORTED)], (1, 2)),  # an older store's untouched host
        ([(1, HostStatus.NOT_STARTED), (2, HostStatus.NOT_STARTED)], (None, 2)),  # stopped before wave 1
    ],
)
def test_wave_position(
    statuses: list[tuple[int | None, HostStatus]], expected: tuple[int | None, int]
) -> None:
    position = wave_position([host(f"h{i}", status, wave=wave) for i, (wave, status) in enumerate(statuses)])
    assert (position.current, position.count) == expected


def test_datacenters_keep_plan_order_and_count() -> None:
    hosts = [
        host("a", HostStatus.SUCCEEDED, datacenter="sfo"),
        host("b", HostStatus.FAILED, datacenter="iad"),
        host("c", HostStatus.RUNNING, datacenter="sfo", step=Step.SWITCH),
    ]
    iad, sfo = datacenter_progress(hosts)
    assert (iad.name, [h.name for h in iad.hosts], iad.failed_count, iad.done_count) == ("iad", ["b"], 1, 1)
    assert (sfo.name, [h.name for h in sfo.hosts], sfo.running_count, sfo.done_count) == (
        "sfo",
        ["a", "c"],
        1,
        1,
    )


def test_a_running_host_shows_its_step_number() -> None:
    assert host_glyph(HostStatus.RUNNING, Step.CONNECT).symbol == "1"
    assert host_glyph(HostStatus.RUNNING, Step.SWITCH).symbol == "6"
    assert host_glyph(HostStatus.RUNNING, None).symbol == "▶"
    symbols = [host_glyph(status, None).symbol for status in HostStatus]
    symbols.append(host_glyph(HostStatus.PENDING, None, staged=True).symbol)
    assert len(set(symbols)) == len(symbols)  # every state its own symbol, whatever the colours


def test_a_staged_host_shows_as_staged_only_while_it_is_pending() -> None:
    assert host_glyph(HostStatus.PENDING, None, staged=True).label == "staged"
    assert host_glyph(HostStatus.NOT_STARTED, None, staged=True).label == "not started"
    assert host_glyph(HostStatus.RUNNING, Step.START, staged=True).symbol == "7"


@given(st.lists(st.sampled_from(list(HostStatus)), min_size=1, max_size=300), st.integers(30, 80))
def test_a_datacenter_bar_fills_its_width_and_is_full_once_every_host_was_reached(
    statuses: list[HostStatus], width: int
) -> None:
    counts = dict.fromkeys(HostStatus, 0)
    for status in statuses:
        counts[status] += 1
    progress = DatacenterProgress("iad", tuple(host(f"h{i}", s) for i, s in enumerate(statuses)), counts)
    line = progress_line(progress, width).plain
    bar = line.split(" ")[0]
    assert len(line) >= len(bar) and len(bar) >= 4
    if all(status.is_final and status is not HostStatus.NOT_STARTED for status in statuses):
        assert "░" not in bar  # every host reached and done: full
    reached = sum(1 for s in statuses if s.is_final and s is not HostStatus.NOT_STARTED)
    assert f" {reached}/{len(statuses)}" in line


# ---- versions, picking a deployment ----------------------------------------------


@given(st.lists(st.integers(0, 5000), min_size=1, max_size=8), st.integers(1, 120))
def test_stacked_bar_adds_up_to_its_width(counts: list[int], width: int) -> None:
    shares = version_shares([(f"v{i}", count) for i, count in enumerate(sorted(counts, reverse=True))])
    cells = stacked_bar(shares, width)
    if sum(counts) == 0:
        assert sum(len(text) for text, _ in cells) in (0, width)
        return
    assert sum(len(text) for text, _ in cells) == width
    if len([c for c in counts if c]) <= width:
        assert len(cells) == len([c for c in counts if c])  # every version with a host shows


def test_watch_picks_the_newest_unfinished_deployment_else_the_newest() -> None:
    old_running = deployment("d-1", T0, DeploymentStatus.RUNNING)
    newer_done = deployment("d-2", T0 + timedelta(hours=1), DeploymentStatus.SUCCEEDED)
    paused = deployment("d-3", T0 + timedelta(minutes=30), DeploymentStatus.PAUSED)
    assert pick_deployment_to_watch([old_running, newer_done, paused]) == paused
    assert (
        pick_deployment_to_watch([newer_done, deployment("d-0", T0, DeploymentStatus.FAILED)]) == newer_done
    )
    assert pick_deployment_to_watch([]) is None
