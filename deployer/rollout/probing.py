"""Ask hosts what became of them, all at once and within a deadline, and record the answers.

The rules are :func:`deployer.core.settle.settle_host`; this is the shell around them. Used
when the controller lost sight of hosts: before a deployment ends (its UNKNOWN hosts),
by ``deploy resume`` (the hosts in flight when its controller died), and by
``deploy reconcile`` and the commands that plan (every UNKNOWN host of an app).
"""

from __future__ import annotations

import asyncio
from collections.abc import Collection, Mapping
from datetime import datetime

from deployer.core.results import HostStatus, Step
from deployer.core.rollout_log import RolloutLog
from deployer.core.runner import HostProbe, HostRunner
from deployer.core.settle import Verdict, settle_host
from deployer.core.targets import DEFAULT_SSH, SshTarget

PROBE_INTERVAL = 0.5  # seconds between looks at a host whose driver still runs on its own
PROBE_GRACE = 30.0  # seconds past the connect timeout that a host's driver gets to finish


def probe_deadline(targets: Mapping[str, SshTarget]) -> float:
    """How long to wait for hosts to answer: the longest connect timeout, plus the grace.

    A host with no timeout of its own (``~/.ssh/config`` may set one) counts the default.
    """
    default = DEFAULT_SSH.connect_timeout or 0.0
    timeouts = (target.connect_timeout or default for target in targets.values())
    return max(timeouts, default=0.0) + PROBE_GRACE


async def settle_hosts(
    runner: HostRunner,
    targets: Mapping[str, SshTarget],
    recorded: Mapping[str, HostStatus],
    *,
    app_target: str,
    deployment_id: str,
    deadline: float,
    interval: float = PROBE_INTERVAL,
    reached_since: Collection[str] = (),
) -> dict[str, Verdict]:
    """A verdict for every host of ``recorded`` (name -> its status in the store).

    The hosts are probed concurrently; one whose driver still runs is looked at again
    every ``interval`` seconds. One with no final answer after ``deadline`` seconds
    stays UNKNOWN. A host missing from ``targets`` left the inventory; one in
    ``reached_since`` was reached by a later deployment since (see settle_host).
    """

    async def one(name: str) -> Verdict:
        target = targets.get(name)
        reached = name in reached_since
        if target is None:
            return settle_host(recorded[name], False, None, reached_since=reached)
        probe: HostProbe | None = None  # the last answer
        try:
            async with asyncio.timeout(deadline):
                while True:
                    probe = await runner.probe(target, app_target, deployment_id)
                    verdict = settle_host(recorded[name], True, probe, reached_since=reached)
                    if not verdict.waiting:
                        return verdict
                    await asyncio.sleep(interval)
        except TimeoutError:
            return settle_host(recorded[name], True, probe, late=deadline, reached_since=reached)

    names = list(recorded)
    verdicts = await asyncio.gather(*(one(name) for name in names))
    return dict(zip(names, verdicts, strict=True))


def record_verdicts(
    store: RolloutLog, deployment_id: str, verdicts: Mapping[str, Verdict], now: datetime
) -> None:
    """Write each final verdict to the host's row, with a note saying when and what was learnt.

    PENDING verdicts (a resumed host whose driver never started) are left to the loop.
    """
    for name, verdict in verdicts.items():
        if verdict.status is HostStatus.PENDING:
            continue
        store.reconcile_host(
            deployment_id,
            name,
            status=verdict.status,
            version=verdict.version,
            note=f"{now:%Y-%m-%d %H:%M:%S}Z {verdict.note}",
            now=now,
            step=Step(verdict.step) if verdict.step else None,
            exit_status=verdict.exit_status,
        )
