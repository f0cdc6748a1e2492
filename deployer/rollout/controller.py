"""The rollout loop: observe → decide → act → record → tell.

Each pass rebuilds a :class:`~deployer.core.decide.RolloutState` from what this
controller has recorded (and what the operator asked for, read from the store),
asks the pure :func:`~deployer.core.decide.decide` what to do, starts hosts, and
records every host's steps and result in the store before it tells the event
sink. A host's result is recorded before the next decision counts it, so the
store is always at least as far along as anything shown.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from deployer.core.clock import SYSTEM_CLOCK, Clock
from deployer.core.decide import Control, Decision, RolloutState, StopCause, counted_failures, decide
from deployer.core.events import (
    Baking,
    ControlChanged,
    DeploymentFinished,
    EventSink,
    GateChecked,
    HostFinished,
    HostsJoined,
    HostStaged,
    HostStepStarted,
    Notice,
    WaveFinished,
    WaveStarted,
)
from deployer.core.gates import gates_when
from deployer.core.results import DeploymentKind, DeploymentStatus, HostResult, HostStatus, Step
from deployer.core.rollout import GracefulStop, Rollout, RolloutOutcome
from deployer.core.rollout_log import RolloutLog
from deployer.core.runner import HostRunner, StageReport, StepStarted
from deployer.core.spec import Gate, GateWhen
from deployer.core.targets import SshTarget
from deployer.hosts.file_limits import capacity_note, current_connection_capacity
from deployer.rollout.gate_checks import GateContext, check_gates
from deployer.rollout.probing import probe_deadline, record_verdicts, settle_hosts

# Steps a host reaches once its release is switched: its own hooks, then pruning.
_PAST_SWITCH = frozenset({Step.START, Step.VALIDATE, Step.PRUNE})

# Hosts staged at once (connecting, sending the release, unpacking), whatever the waves'
# size: enough to keep ahead of the waves, few enough not to slow the running one.
STAGE_CONCURRENCY = 64

log = logging.getLogger(__name__)


class Controller:
    """Runs one deployment's waves on a :class:`HostRunner`, recording into a :class:`RolloutLog`."""

    def __init__(
        self,
        store: RolloutLog,
        runner: HostRunner,
        sink: EventSink,
        *,
        pid: int,
        machine: str,
        clock: Clock = SYSTEM_CLOCK,
        poll_interval: float = 0.25,
        heartbeat_interval: float = 5.0,
        stop: GracefulStop | None = None,
        connection_limit: int | None = None,
    ) -> None:
        """``stop``, once set, stops the deployment as an abort does but gentler: no new
        host starts and the hosts in flight run to their end (an abort stops them before
        their switch). It ends ``aborted`` unless no host was left to start.

        ``clock`` is where the loop reads the time and waits (for a poll, a bake, a host)."""
        self._store = store
        self._runner = runner
        self._sink = sink
        self._pid = pid
        self._machine = machine
        self._clock = clock
        self._poll_interval = poll_interval
        self._heartbeat_interval = heartbeat_interval
        self._stop = stop
        # Hosts that may hold a connection at once (running or staged): the open-file limit.
        self._connection_limit = (
            current_connection_capacity() if connection_limit is None else connection_limit
        )

    async def run(self, rollout: Rollout, statuses: Mapping[str, HostStatus] | None = None) -> RolloutOutcome:
        """Run ``rollout`` to its end and record the outcome.

        ``statuses`` gives hosts that are already final (a resumed deployment); every other
        planned host starts PENDING.
        """
        rolling = _RolloutInProgress(self, rollout, statuses or {})
        return await rolling.loop()


class _RolloutInProgress:
    """The mutable state of one :meth:`Controller.run`; discarded when it ends."""

    def __init__(self, controller: Controller, rollout: Rollout, initial: Mapping[str, HostStatus]) -> None:
        self.controller = controller
        # The controller's seams, used on every pass.
        self.store = controller._store
        self.runner = controller._runner
        self.sink = controller._sink
        self.clock = controller._clock
        self.rollout = rollout
        # Hosts that join mid-deployment add waves, targets and budget to these four.
        self.waves: list[tuple[str, ...]] = list(rollout.waves)
        self.wave_of = {name: index for index, wave in enumerate(self.waves, 1) for name in wave}
        self.targets: dict[str, SshTarget] = dict(rollout.targets)
        self.failure_budget = rollout.failure_budget
        self.statuses: dict[str, HostStatus] = {
            name: initial.get(name, HostStatus.PENDING) for wave in rollout.waves for name in wave
        }
        for name, status in self.statuses.items():
            if status is HostStatus.RUNNING:
                raise RuntimeError(f"host {name} is still running; probe it before resuming the loop")
        self.results: dict[str, HostResult] = {}
        self.tasks: dict[asyncio.Task[HostResult], str] = {}
        self.host_done = asyncio.Event()  # set when a host task ends: wakes _wait
        self.wave_finished_at: dict[int, datetime] = {}
        self.control = Control.RUN
        self.announced_waves: set[int] = set()
        self.announced_bake: set[int] = set()
        self.prepared_waves: set[int] = set()
        self.stop_told = False  # ControlChanged sent for the first decision to stop
        self.next_poll = datetime.min.replace(tzinfo=UTC)
        self.next_heartbeat = datetime.min.replace(tzinfo=UTC)
        self.discovered_after = 0  # finished waves when the inventory was last asked for joiners
        self.probed: set[str] = set()  # UNKNOWN hosts already probed before the end
        self.gated: set[int] = set()  # gate checks passed: 0 before wave 1, N after wave N
        self.gate_failure: str | None = None  # the first failing gate's verdict, as a halt reason
        self.bake_checks: dict[str, datetime] = {}  # bake gate -> its next check, in this bake
        self.bake_of: int | None = None  # the wave whose bake bake_checks belong to
        # Staging ahead (see _stage_ahead): hosts whose staging began, and its tasks.
        self.staging: set[str] = set()
        self.staging_tasks: set[asyncio.Task[StageReport]] = set()
        self.stage_slots = asyncio.Semaphore(STAGE_CONCURRENCY)
        self.steps_to_record: list[tuple[str, Step, datetime]] = []
        self.staged_to_record: list[tuple[str, datetime]] = []
        self.stop_sent = False
        limit = controller._connection_limit
        self.max_parallel = min(rollout.max_parallel or limit, limit)

    @property
    def deployment_id(self) -> str:
        return self.rollout.deployment_id

    async def loop(self) -> RolloutOutcome:
        """Run to the end; if the loop itself fails (the store, say), stop every host task.

        The deployment is then left RUNNING in the store: its drivers finish on their own
        and ``deploy resume`` reads what they did, once this controller is gone (also for
        hosts that had ended but whose results the loop had not recorded yet).
        """
        try:
            return await self._loop()
        finally:
            for task in (*self.tasks, *self.staging_tasks):
                task.cancel()
            if self.tasks or self.staging_tasks:
                await asyncio.gather(*self.tasks, *self.staging_tasks, return_exceptions=True)
            await self.runner.unstage(self.deployment_id)

    async def _loop(self) -> RolloutOutcome:
        self._note_finished_waves(self.clock.now(), tell=False)  # a resumed deployment's: told before
        largest = max(min(len(wave), self.rollout.max_parallel or len(wave)) for wave in self.waves)
        note = capacity_note(largest, self.controller._connection_limit)
        if note is not None:
            self.sink(Notice(self.deployment_id, note, self.clock.now()))
        self.discovered_after = len(self.wave_finished_at)
        while True:
            now = self.clock.now()
            self._observe_control(now)
            self._beat(now)
            decision = decide(self._state(), now)
            if decision.stop is None and await self._add_joiners():
                continue  # a new last wave: decide again with it
            if decision.outcome is not None:
                if await self._settle_unknown():
                    continue  # what the hosts said may change the outcome: decide again
                return self._finish(decision, now)
            if decision.stop is not None and not self.stop_told:
                self.stop_told = True
                state = decision.stop.doing
                reason = f"{decision.description}; hosts in flight finish, no new host starts"
                self.sink(ControlChanged(self.deployment_id, state, reason, now))
            if decision.start and decision.wave is not None and decision.wave not in self.announced_waves:
                self.announced_waves.add(decision.wave)
                self.sink(
                    WaveStarted(
                        self.deployment_id,
                        decision.wave,
                        len(self.waves),
                        self.waves[decision.wave - 1],
                        now,
                    )
                )
            if decision.check_gates is not None:
                await self._check_gates(decision.check_gates)
                continue
            if decision.wait_until is not None and decision.wave not in self.announced_bake:
                assert decision.wave is not None
                self.announced_bake.add(decision.wave)
                final = decision.wave > len(self.waves)
                self.sink(Baking(self.deployment_id, decision.wave, decision.wait_until, final=final))
            if decision.wait_until is not None and await self._poll_bake_gates(decision, now):
                continue
            if self.control is Control.ABORT and not self.stop_sent:
                self.stop_sent = True
                self.runner.stop(self.deployment_id)
            self._start_hosts(decision.start, now)
            self._stage_ahead(decision)
            await self._wait(now, self._wake_at(decision))
            self._record_steps()

    def _gate_context(self, wave: int) -> GateContext:
        job = self.rollout.job
        touched = [name for name, status in self.statuses.items() if status is not HostStatus.PENDING]
        return GateContext(job.app, job.version, job.environment, self.deployment_id, wave, touched)

    async def _run_gates(self, gates: tuple[Gate, ...], wave: int) -> bool:
        """Check ``gates`` (the first failure ends the round), record and tell each verdict.

        A failing one becomes the halt reason. True when all passed.
        """
        verdicts = await check_gates(gates, self._gate_context(wave), self.clock.now)
        for verdict in verdicts:
            self.store.record_gate_check(
                self.deployment_id,
                verdict.name,
                passed=verdict.passed,
                message=verdict.message,
                at=verdict.at,
            )
            self.sink(GateChecked(self.deployment_id, verdict, wave))
            if not verdict.passed and self.gate_failure is None:
                self.gate_failure = verdict.reason
        return all(verdict.passed for verdict in verdicts)

    async def _check_gates(self, point: int) -> None:
        """The ``before`` gates (``point`` 0) or the ``after_wave`` gates of wave ``point``."""
        when = GateWhen.BEFORE if point == 0 else GateWhen.AFTER_WAVE
        if await self._run_gates(gates_when(self.rollout.gates, when), point):
            self.gated.add(point)

    async def _poll_bake_gates(self, decision: Decision, now: datetime) -> bool:
        """During a bake, check each ``bake`` gate that is due (the first at once); True if any ran.

        The bake before wave N watches wave N-1 (the final bake, the last wave).
        """
        gates = gates_when(self.rollout.gates, GateWhen.BAKE)
        if not gates or self.control is not Control.RUN:
            return False
        if self.bake_of != decision.wave:
            self.bake_of = decision.wave
            self.bake_checks = {gate.name: now for gate in gates}
        due = tuple(gate for gate in gates if self.bake_checks[gate.name] <= now)
        if not due:
            return False
        for gate in due:
            self.bake_checks[gate.name] = now + timedelta(seconds=gate.interval)
        assert decision.wave is not None
        await self._run_gates(due, decision.wave - 1)
        return True

    def _wake_at(self, decision: Decision) -> datetime | None:
        """The end of a bake, or the next bake gate check before it."""
        if decision.wait_until is None or not self.bake_checks or self.bake_of != decision.wave:
            return decision.wait_until
        return min(decision.wait_until, *self.bake_checks.values())

    async def _settle_unknown(self) -> bool:
        """Before the deployment ends, ask its UNKNOWN hosts (each once) how they ended.

        A host is UNKNOWN when the connection dropped mid-step: its driver carries on by
        itself and records its outcome on the host. They are probed concurrently, each
        for up to its connect timeout plus 30 s while its driver still runs; what they
        say is recorded (with a note), and counted by the next decision. True when any
        host was probed.
        """
        unknown = {
            name: status
            for name, status in self.statuses.items()
            if status is HostStatus.UNKNOWN and name not in self.probed
        }
        if not unknown:
            return False
        self.probed.update(unknown)
        # A host that left the inventory while its controller was down has no target: asked
        # of nothing, it stays unknown (settle_host).
        targets = {name: self.targets[name] for name in unknown if name in self.targets}
        # The probes may take a while (a host's connect timeout + 30 s): keep the heartbeat
        # going, or another machine would take this live controller for a dead one.
        beating = asyncio.create_task(self._keep_beating())
        try:
            verdicts = await settle_hosts(
                self.runner,
                targets,
                unknown,
                app_target=self.rollout.job.target,
                deployment_id=self.deployment_id,
                deadline=probe_deadline(targets),
            )
        finally:
            beating.cancel()
        now = self.clock.now()
        record_verdicts(self.store, self.deployment_id, verdicts, now)
        for name, verdict in verdicts.items():
            self.statuses[name] = verdict.status
            earlier = self.results.get(name) or HostResult(name, verdict.status, now, now)
            result = replace(
                earlier,
                status=verdict.status,
                finished_at=now,
                error=verdict.note,
                version=verdict.version or earlier.version,
            )
            self.results[name] = result
            self.sink(HostFinished(self.deployment_id, result, self._failed_count(), self.failure_budget))
        return True

    async def _keep_beating(self) -> None:
        while True:
            now = self.clock.now()
            self._beat(now)
            await self.clock.wait_until(now + timedelta(seconds=self.controller._heartbeat_interval))

    def _prepare_after(self, wave: int) -> None:
        """Let the runner connect to the pending hosts of the wave after ``wave`` (1-based).

        Called once a host of ``wave`` is past its switch (its hooks run) or done: the
        wave's uploads and unpacking are then mostly over. Connecting changes nothing on a
        host, but a key exchange costs CPU at both ends; begun with the wave itself, it
        competes with that wave's uploads.
        """
        if wave in self.prepared_waves or wave >= len(self.waves) or self.control is not Control.RUN:
            return
        self.prepared_waves.add(wave)
        pending = [name for name in self.waves[wave] if self.statuses[name] is HostStatus.PENDING]
        if pending:
            self.runner.prepare([self.targets[name] for name in pending])

    async def _add_joiners(self) -> bool:
        """Between waves, ask for hosts that joined the inventory; they become a new last wave.

        Asked once after each wave ends (the last one included, so a host that joined
        during the last wave is still deployed), never while paused or asked to stop (nor
        while the loop's decision is to stop). The joiners go in one wave after the current ones: they serve
        nothing yet, so updating them together costs no capacity, and ``max_parallel``
        still bounds how many run at once. Recorded in the store before any starts.
        True when hosts were added.
        """
        discover = self.rollout.discover
        finished = len(self.wave_finished_at)
        if discover is None or finished <= self.discovered_after or self.control is not Control.RUN:
            return False
        if self._stop_cause() is not None:
            return False
        self.discovered_after = finished
        joining = await discover()
        if joining is None:
            return False
        new = [t for t in joining.targets if t.host.name not in self.targets]
        if not new:
            return False
        index = len(self.waves) + 1
        now = self.clock.now()
        self.store.add_hosts(self.deployment_id, [(t.host, index) for t in new], now)
        names = tuple(t.host.name for t in new)
        self.waves.append(names)
        self.wave_of.update(dict.fromkeys(names, index))
        self.targets.update((t.host.name, t) for t in new)
        self.statuses.update(dict.fromkeys(names, HostStatus.PENDING))
        self.failure_budget = joining.failure_budget
        self.sink(
            HostsJoined(
                self.deployment_id,
                index,
                {t.host.name: t.host.datacenter for t in new},
                self.failure_budget,
                now,
            )
        )
        return True

    def _failed_count(self) -> int:
        return counted_failures(self.statuses, self.rollout.budget_exempt)

    def _stop_cause(self) -> StopCause | None:
        """Why a graceful stop was asked (see :class:`Controller`), if it was.

        :func:`decide` says what it means: no new host starts. Hosts in flight are not
        told to stop: only the operator's own abort does that.
        """
        stop = self.controller._stop
        if stop is None or not stop.is_set():
            return None
        return stop.cause or StopCause.REQUESTED

    def _state(self) -> RolloutState:
        return RolloutState(
            waves=tuple(self.waves),
            statuses=self.statuses,
            failure_budget=self.failure_budget,
            bake=self.rollout.bake,
            max_parallel=self.max_parallel,
            wave_finished_at=self.wave_finished_at,
            control=self.control,
            stop=self._stop_cause(),
            rollback_on_halt=self.rollout.rollback_on_halt,
            restart=self.rollout.job.kind == DeploymentKind.RESTART,
            budget_exempt=self.rollout.budget_exempt,
            gates=self.rollout.gate_plan,
            gated=frozenset(self.gated),
            gate_failure=self.gate_failure,
        )

    async def _wait(self, now: datetime, wait_until: datetime | None) -> None:
        """Until a host finishes, the next control poll, or the end of a bake, on the clock."""
        wake_at = now + timedelta(seconds=self.controller._poll_interval)
        if wait_until is not None:
            wake_at = min(wake_at, wait_until)
        await self.clock.wait_until(wake_at, self.host_done)
        self.host_done.clear()  # before looking: a host that ends after the look sets it again
        done = [task.result() for task in self.tasks if task.done()]  # _run_host never raises
        if done:
            self._record_steps()  # before the results: a step recorded after one would reopen it
            self.store.record_host_results(self.deployment_id, done)
        failed = counted_failures(self.statuses, self.rollout.budget_exempt)  # once: each result adds its own
        for result in done:
            self.results[result.host] = result
            self.statuses[result.host] = result.status
            failed += result.status.is_failure and result.host not in self.rollout.budget_exempt
            self.sink(HostFinished(self.deployment_id, result, failed, self.failure_budget))
            self._prepare_after(self.wave_of[result.host])
        self.tasks = {task: name for task, name in self.tasks.items() if not task.done()}
        if done:
            self._note_finished_waves(self.clock.now())

    def _note_finished_waves(self, now: datetime, *, tell: bool = True) -> None:
        for index, hosts in enumerate(self.waves, start=1):
            if index not in self.wave_finished_at and all(self.statuses[n].is_final for n in hosts):
                self.wave_finished_at[index] = now
                if tell:
                    counts = _counts({name: self.statuses[name] for name in hosts})
                    self.sink(WaveFinished(self.deployment_id, index, len(self.waves), counts, now))

    def _start_hosts(self, names: Sequence[str], now: datetime) -> None:
        """Start ``names``: recorded RUNNING together, in one write, BEFORE any host gets its
        go: should this controller die, ``deploy resume`` then asks those hosts' journals
        what ran, and no hook runs twice."""
        if not names:
            return
        self.store.record_steps(self.deployment_id, [(name, Step.CONNECT, now) for name in names])
        for name in names:
            self.statuses[name] = HostStatus.RUNNING
            self.sink(HostStepStarted(self.deployment_id, name, Step.CONNECT, now))
            task = asyncio.create_task(self._run_host(name), name=f"host {name}")
            task.add_done_callback(lambda _: self.host_done.set())
            self.tasks[task] = name

    def _host_event(self, event: StepStarted) -> None:
        """A step a host began, as its driver streams it: told at once, recorded with the
        next batch (the host's journal is the record that it ran)."""
        self.steps_to_record.append((event.host, event.step, event.at))
        self.sink(HostStepStarted(self.deployment_id, event.host, event.step, event.at))
        if event.step in _PAST_SWITCH:
            self._prepare_after(self.wave_of[event.host])

    def _record_steps(self) -> None:
        """The steps told since the last batch, in one write; then the hosts staged since,
        those still pending, in one more."""
        if self.steps_to_record:
            batch, self.steps_to_record = self.steps_to_record, []
            self.store.record_steps(self.deployment_id, batch)
        if self.staged_to_record:
            staged, self.staged_to_record = self.staged_to_record, []
            waiting = [(name, at) for name, at in staged if self.statuses[name] is HostStatus.PENDING]
            if waiting:
                self.store.mark_staged(self.deployment_id, [name for name, _ in waiting], waiting[-1][1])
            for name, at in waiting:
                self.sink(HostStaged(self.deployment_id, name, at))

    def _stage_ahead(self, decision: Decision) -> None:
        """Stage the pending hosts of the next ``stage_ahead`` waves after the running one.

        Staging sends the release and unpacks it beside the live one, so that a host's wave
        costs one message. It never touches a host of the running wave, nor starts while
        the deployment stops; it is bounded by STAGE_CONCURRENCY, not by ``max_parallel``
        nor the failure budget (it changes nothing live). A host whose staging failed is
        simply staged again at its wave.
        """
        ahead = self.rollout.stage_ahead
        if ahead == 0 or decision.wave is None or decision.stop is not None:
            return
        if self.control is not Control.RUN:
            return
        # Staged hosts hold a connection each, as running ones do: both within the limit.
        holding = len(self.tasks) + sum(
            1 for name in self.staging if self.statuses[name] is HostStatus.PENDING
        )
        room = self.controller._connection_limit - holding
        last = len(self.waves) if ahead is None else min(len(self.waves), decision.wave + ahead)
        # The two waves after those connect meanwhile: a handshake takes several round
        # trips, so one wave ahead is not always enough for its staging to start with none.
        self._prepare_after(last)
        self._prepare_after(last + 1)
        for wave in range(decision.wave + 1, last + 1):
            for name in self.waves[wave - 1]:
                if name in self.staging or self.statuses[name] is not HostStatus.PENDING:
                    continue
                if room <= 0:
                    return
                room -= 1
                self.staging.add(name)
                task = asyncio.create_task(self._stage_host(name), name=f"stage {name}")
                self.staging_tasks.add(task)
                task.add_done_callback(self.staging_tasks.discard)

    async def _stage_host(self, name: str) -> StageReport:
        """Stage one host; the loop records it (see _record_steps): a staging task does no
        store I/O, so a lost store stops the loop, not a task nobody waits for."""
        async with self.stage_slots:
            if self.statuses[name] is not HostStatus.PENDING:  # its wave came first
                return StageReport(name, staged=False)
            report = await self.runner.stage(self.targets[name], self.rollout.job)
        if report.staged:
            self.staged_to_record.append((name, self.clock.now()))
        return report

    async def _run_host(self, name: str) -> HostResult:
        """Deploy one host; a bug here fails the host, not its wave. No store I/O: the loop
        records the result with the other hosts that ended meanwhile (see _wait)."""
        target = self.targets[name]
        started = self.clock.now()
        try:
            result = await self.runner.deploy(target, self.rollout.job, self._host_event)
        except Exception as error:  # a bug in the runner: fail this host loudly, keep the wave
            log.exception("internal error while deploying %s", name)
            result = HostResult(
                host=name,
                status=HostStatus.FAILED,
                started_at=started,
                finished_at=self.clock.now(),
                error=f"internal error: {error!r}",
            )
        return result

    def _observe_control(self, now: datetime) -> None:
        """Read the operator's latest request from the store, at most once per poll interval."""
        if now < self.next_poll:
            return
        self.next_poll = now + timedelta(seconds=self.controller._poll_interval)
        state = self.store.control_state(self.deployment_id)
        wanted = Control.ABORT if state.wants_abort else Control.PAUSE if state.wants_pause else Control.RUN
        if wanted is self.control:
            return
        self.control = wanted
        who = f" by {state.requested_by}" if state.requested_by else ""
        if wanted is Control.PAUSE:
            self.store.set_status(self.deployment_id, DeploymentStatus.PAUSED, now)
            self.sink(ControlChanged(self.deployment_id, "paused", f"paused{who}", now))
        elif wanted is Control.RUN:
            self.store.set_status(self.deployment_id, DeploymentStatus.RUNNING, now)
            self.sink(ControlChanged(self.deployment_id, "running", f"resumed{who}", now))

    def _beat(self, now: datetime) -> None:
        if now < self.next_heartbeat:
            return
        self.next_heartbeat = now + timedelta(seconds=self.controller._heartbeat_interval)
        self.store.heartbeat(
            self.deployment_id, pid=self.controller._pid, started_from=self.controller._machine, now=now
        )

    def _finish(self, decision: Decision, now: datetime) -> RolloutOutcome:
        status, reason = decision.outcome, decision.description
        assert status is not None
        self.store.finish_deployment(self.deployment_id, status, now, reason=reason)
        final = {
            name: (HostStatus.NOT_STARTED if s is HostStatus.PENDING else s)
            for name, s in self.statuses.items()
        }
        self.sink(DeploymentFinished(self.deployment_id, status.value, _counts(final), now))
        return RolloutOutcome(
            self.deployment_id, status, reason, final, dict(self.results), rollback=decision.rollback
        )


def _counts(statuses: Mapping[str, HostStatus]) -> dict[HostStatus, int]:
    counts = dict.fromkeys(HostStatus, 0)
    for status in statuses.values():
        counts[status] += 1
    return counts
