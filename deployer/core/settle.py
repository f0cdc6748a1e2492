"""What became of a host whose outcome the controller did not see: pure rules, no I/O.

A host's driver runs its steps and records its outcome on the host itself, so when
the controller loses sight of it (the connection dropped, the controller died) the
host still knows. :func:`settle_host` turns what a probe read from the host into a
verdict; the shell (:mod:`deployer.rollout.probing`) does the probing, concurrently and with
a deadline, and records the verdicts.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from deployer.core.results import HostStatus, parse_outcome
from deployer.core.runner import HostProbe

_OUTCOME_STATUS = {
    "succeeded": HostStatus.SUCCEEDED,
    "aborted": HostStatus.ABORTED,  # stopped before its switch: it runs what it ran before
}


@dataclass(frozen=True, slots=True)
class Verdict:
    """What to record for a host: its status, the version it runs, and why (``note``)."""

    status: HostStatus
    version: str | None = None  # what its ``current`` points at, when the probe read it
    note: str = ""
    step: str | None = None  # the step that failed, for a failure
    exit_status: int | None = None
    waiting: bool = False  # its driver still runs on its own: look again later


def settle_host(
    recorded: HostStatus,
    in_inventory: bool,
    probe: HostProbe | None,
    *,
    not_asked: str | None = None,
    late: float | None = None,
    reached_since: bool = False,
) -> Verdict:
    """The verdict on one host the controller lost sight of.

    ``recorded`` is its status in the store: RUNNING (its controller died: ``deploy
    resume``), UNKNOWN (the connection dropped mid-step), or PENDING (``deploy resume``
    of a host that left the inventory). ``probe`` is what the host says of this
    deployment: the last thing it said, if anything, when ``late`` (the deadline, in
    seconds, passed before a final answer); None when it was not asked (it left the
    inventory, or ``not_asked`` says why: its spec cannot be read).

        recorded  in inventory  the host says               verdict
        any       -             (not asked: why)            UNKNOWN: "not asked: why"
        PENDING   no            -                           NOT_STARTED, never started
        RUNNING   no            -                           UNKNOWN: can no longer be asked
        UNKNOWN   no            -                           UNKNOWN: can no longer be asked
        any       yes           unreachable                 UNKNOWN: ask again later
        RUNNING   yes           never heard of it           PENDING: nothing ran, start over
        UNKNOWN   yes           never heard of it           FAILED: its driver never started
        any       yes           running                     (waiting): look again
        any       yes           running, then late          UNKNOWN: its driver still runs
        any       yes           nothing before late         UNKNOWN: no answer in time
        any       yes           succeeded                   SUCCEEDED, on its current version
        any       yes           aborted:<step>              ABORTED, before its switch
        any       yes           failed:<step>:<exit>        FAILED at that step
        any       yes           interrupted:<step>          FAILED: the host stopped mid-step

    With ``reached_since`` (``deploy reconcile``: a later deployment reached the host
    since), the verdict stands but not its version: what the host runs is that
    deployment's, not this one's.

    Example: web1 was RUNNING when its controller died; asked by ``deploy resume``, it
    says ``failed:validate:7``: FAILED at validate, exit 7, on the version it switched to.
    """
    verdict = _verdict(recorded, in_inventory, probe, not_asked, late)
    if not reached_since:
        return verdict
    later = "a later deployment reached it since: its version is that one's"
    return replace(verdict, version=None, note=f"{verdict.note}; {later}")


def _verdict(
    recorded: HostStatus,
    in_inventory: bool,
    probe: HostProbe | None,
    not_asked: str | None,
    late: float | None,
) -> Verdict:
    if not_asked is not None:
        return Verdict(HostStatus.UNKNOWN, note=f"not asked: {not_asked}")
    if late is not None and in_inventory:
        if probe is None:
            return Verdict(HostStatus.UNKNOWN, note=f"no answer within {late:g}s after {late:g}s")
        last = _verdict(recorded, in_inventory, probe, None, None)
        if last.waiting:
            return Verdict(HostStatus.UNKNOWN, last.version, f"its driver was still running after {late:g}s")
        return last  # a final answer, however late
    if not in_inventory or probe is None:
        if recorded is HostStatus.PENDING:
            return Verdict(HostStatus.NOT_STARTED, note="left the inventory; not deployed")
        # In flight, it may have switched: only the host knows, and it can no longer be asked.
        return Verdict(HostStatus.UNKNOWN, note="left the inventory; its outcome cannot be asked")
    if not probe.reachable:
        return Verdict(HostStatus.UNKNOWN, note=f"probe: unreachable: {probe.error}")
    if probe.outcome is None:
        if recorded is HostStatus.RUNNING:
            return Verdict(HostStatus.PENDING, note="its driver never started; it starts over")
        return Verdict(
            HostStatus.FAILED,
            version=probe.current_version,
            note="probe: its driver never started; it runs what it ran before",
        )
    outcome = parse_outcome(probe.outcome)
    if outcome.status == "running":
        return Verdict(HostStatus.UNKNOWN, version=probe.current_version, waiting=True)
    status = _OUTCOME_STATUS.get(outcome.status, HostStatus.FAILED)
    step = outcome.step.value if outcome.step else None
    if status is HostStatus.FAILED:
        how = "was interrupted" if outcome.status == "interrupted" else f"exited {outcome.exit_status}"
        note = f"probe: {step or 'a step'} {how}"
    else:
        note = f"probe: it {outcome.status}"
    return Verdict(status, probe.current_version, note, step, outcome.exit_status)
