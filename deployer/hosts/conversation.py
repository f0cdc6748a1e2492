"""One host's conversation with its driver, over one exec channel (protocol v2).

The protocol is described in ``deployer/hosts/remote/driver.sh`` and typed in
:mod:`deployer.hosts.protocol`. Seen from here:

    driver                                   controller
    @@hello 2 / @@previous 1.3 / @@release ... / @@step upload start
    @@need-artifact <path> stdin ──────────▶
                                 ◀──────────  data <n>, the artifact's n bytes, sent
    @@step upload end 0 1 / @@staged
                 ... the host waits, staged, until its wave ...
                                 ◀──────────  go <time> <previous> <prune>   (the one message)
    @@step stop start ... @@step validate end 0 1 / @@done succeeded / @@current 1.4

A host staged in its own wave (not ahead of it) gets its go right behind the artifact
(``sent go``, then the go): one round trip fewer. Its driver then hands its input to
the listener before it unpacks, so an abort that comes meanwhile still holds.

Staging (:meth:`Conversation.stage`) runs before the host's wave and changes nothing
live; at the wave, one ``go`` (:meth:`Conversation.go`) lets the driver run every step
by itself, streaming step events that nobody acknowledges. An operator's abort reaches
it as ``stop`` (:meth:`Conversation.stop`). The one step that waits for the controller
is a hook the controller runs itself (a Fabric task): the driver says its variables and
holds at its start until the result comes back. Steps are timed here, from each start
marker to its end marker (the driver sends each start as it happens).
"""

from __future__ import annotations

import asyncio
import contextlib
import shlex
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import PurePath

from deployer.core.clock import utcnow
from deployer.core.results import HostResult, HostStatus, Step, StepResult, cap_output, parse_outcome, tail
from deployer.core.runner import HookCommand, HookOutcome, HostEvents, ReleaseJob, StepStarted
from deployer.hosts.asyncssh_import import asyncssh
from deployer.hosts.protocol import (
    ARTIFACT_FAILED,
    ARTIFACT_MISSING,
    ARTIFACT_SENT,
    ARTIFACT_SENT_GO,
    PROTOCOL_VERSION,
    Current,
    Done,
    Env,
    Error,
    Go,
    Hello,
    HookResult,
    NeedArtifact,
    OutputFollows,
    Previous,
    ProtocolError,
    Release,
    Staged,
    StepEnd,
    StepStart,
    Stop,
    artifact_header,
    encode,
    failure_sentence,
    output_end,
    parse_line,
    prune_choice,
)
from deployer.hosts.release import first_step, release_dir_name, runs_on_controller, version_of_dir

STEP_SLACK = 30.0  # seconds beyond a hook's own time limits before the controller gives up
IDLE_LIMIT = 120.0  # seconds the driver may stay silent outside a hook (switch, prune, unpack)
UPLOAD_RATE_FLOOR = 1 << 20  # bytes per second an upload is allowed to go no slower than
STDERR_CAP = 4096
ARTIFACT_CHUNK = 1 << 18  # bytes read from the artifact and written to the channel at a time
_FAULTS = (ProtocolError, asyncssh.Error, OSError, asyncio.IncompleteReadError, TimeoutError)


# Runs a controller-side hook with the variables the driver reported (see fabric_hooks).
RunHere = Callable[[HookCommand, dict[str, str]], Awaitable[HookOutcome]]


@dataclass(slots=True)
class Transcript:
    """What one host's driver has told so far (mutable, owned by its conversation)."""

    host: str
    started_at: datetime
    new_dir: str  # the release directory this job switches to
    steps: list[StepResult] = field(default_factory=list)
    step: Step | None = None
    step_started_at: datetime | None = None
    step_clock: float = 0.0
    output: str = ""
    previous_dir: str = ""  # release directory names, as the driver reports them
    current_dir: str = ""
    releases: list[str] = field(default_factory=list)
    committed: bool = False  # past the point where an abort holds (old release stopped, or switched)
    uploaded: bool = False
    staged: bool = False
    error: str | None = None
    failed_end: StepEnd | None = None
    outcome: str | None = None
    reported_env: dict[str, str] = field(default_factory=dict)  # @@env: the next hook's variables

    def begin(self, step: Step) -> None:
        self.step = step
        self.step_started_at = utcnow()
        self.step_clock = time.monotonic()
        self.output = ""

    def end(self, end: StepEnd) -> None:
        self.steps.append(
            StepResult(
                step=end.step,
                exit_status=end.exit_status,
                started_at=self.step_started_at or utcnow(),
                duration=time.monotonic() - self.step_clock,
                output=cap_output(self.output),
                attempts=end.attempts,
            )
        )
        if end.exit_status != 0:
            self.failed_end = end
        if end.step in (Step.STOP, Step.SWITCH):
            self.committed = True
        if end.step == Step.SWITCH and end.exit_status == 0:
            self.current_dir = self.new_dir  # the driver's last word may never come

    def result(self, status: HostStatus, step: Step | None, exit_status: int | None = None) -> HostResult:
        output = next((s.output for s in reversed(self.steps) if s.step == step), self.output)
        return HostResult(
            host=self.host,
            status=status,
            started_at=self.started_at,
            finished_at=utcnow(),
            step=step,
            exit_status=exit_status,
            error=self.error,
            output_tail=tail(output) if status != HostStatus.SUCCEEDED else "",
            steps=tuple(self.steps),
            version=version_of_dir(self.current_dir) if self.current_dir else None,
            previous_version=version_of_dir(self.previous_dir) if self.previous_dir else None,
            uploaded=self.uploaded,
        )


class Conversation:
    """One host's driver, from its exec to its last word."""

    def __init__(
        self,
        job: ReleaseJob,
        transcript: Transcript,
        connection: asyncssh.SSHClientConnection,
        process: asyncssh.SSHClientProcess[bytes],
        where: str,
        run_here: RunHere,
    ) -> None:
        self.job = job
        self.transcript = transcript
        self._connection = connection
        self._process = process
        self._where = where
        self._run_here = run_here
        self._events: HostEvents | None = None  # set once the go is sent
        self._wave: HostEvents | None = None  # staged in its own wave: its go rides with the artifact
        self._stopped = False

    @property
    def is_open(self) -> bool:
        return not self._connection.is_closed() and self._process.exit_status is None

    # -- the two phases ------------------------------------------------------------------

    async def stage(self, wave: HostEvents | None = None) -> HostResult | None:
        """Read until the driver is staged: None then, else how the host ended (it failed
        before its wave, or could not be staged; nothing live changed either way).

        ``wave``: the host's wave runs already, and these are its events. Its go then goes
        right behind the artifact, if the host asks for one (nothing is aborted by then),
        and :meth:`go` sends nothing more; a host that ends here then ended in its wave.
        """
        self._wave = wave
        try:
            await self._read(until_staged=True, budget=IDLE_LIMIT + self._upload_time())
        except _FAULTS as error:
            return self._fault(error)
        if self.transcript.staged and self.transcript.outcome is None:
            return None
        return await self._finish()

    async def go(self, events: HostEvents) -> HostResult:
        """Send the wave's one message and follow the driver to its end."""
        run = self.transcript
        if self._stopped and self._events is None:  # aborted before its go: it goes untouched
            self.close()
            run.error = "aborted before its first step; the host still runs what it ran before"
            return run.result(HostStatus.ABORTED, first_step(self.job))
        try:
            if self._events is None:  # not sent yet with the artifact
                self._process.stdin.write(self._go(events, dated=True))
            await self._read(until_staged=False, budget=IDLE_LIMIT)
        except _FAULTS as error:
            return self._fault(error)
        return await self._finish()

    def _go(self, events: HostEvents, *, dated: bool) -> bytes:
        """The go message; the host's part in its wave starts now (staging came before).
        ``dated``: the go carries the switch's time (else the host's clock dates it)."""
        run = self.transcript
        self._events = events
        run.started_at = utcnow()
        go = Go(
            switch_at=run.started_at if dated else None,
            previous_dir=run.previous_dir,
            prune=prune_choice(run.releases, run.new_dir, run.previous_dir, self.job.keep_releases),
        )
        return encode(go)

    def _artifact_sent(self) -> bytes:
        """What follows the artifact: ``sent``, or for a host staged in its own wave that
        nothing stopped, ``sent go`` and its go (the release list came before the upload)."""
        if self._wave is None or self._stopped:
            return ARTIFACT_SENT
        return ARTIFACT_SENT_GO + self._go(self._wave, dated=False)  # the unpack comes first

    def stop(self) -> None:
        """Tell the driver to stop before its next step (it ignores it once committed)."""
        if self._stopped or self.transcript.committed:
            return
        self._stopped = True
        if self._events is not None:  # past its go: the driver's listener takes it
            with contextlib.suppress(asyncssh.Error, OSError):
                self._process.stdin.write(encode(Stop()))

    def close(self) -> None:
        """Let a staged driver go before its wave: it leaves the host as it was."""
        with contextlib.suppress(asyncssh.Error, OSError):
            self._process.stdin.write_eof()
        self._process.close()

    def leave(self) -> None:
        """The controller is going away (cancelled, or its store failed). Before the go, the
        EOF lets the driver go, the host untouched; after it, the driver finishes the host by
        itself and its journal tells ``deploy resume`` how it ended. Only an operator's
        abort stops a host in flight (:meth:`stop`)."""
        with contextlib.suppress(asyncssh.Error, OSError):
            self._process.stdin.write_eof()

    def _fault(self, error: BaseException) -> HostResult:
        """The host's result when the conversation broke off: before the go nothing live
        changed (the driver leaves at EOF); after it, the driver carries on by itself."""
        run = self.transcript
        step = run.step or Step.CONNECT
        if isinstance(error, ProtocolError):
            self._process.close()
            run.error = str(error)
            return run.result(HostStatus.FAILED, step)
        if isinstance(error, TimeoutError):
            self._process.close()
            run.error = (
                f"no word from {self._where} during {step} for longer than it may take; gave up "
                "waiting (its driver may still finish: a probe tells how it ended)"
            )
            return run.result(HostStatus.UNKNOWN, step)
        self._connection.close()  # broken under us: the runner opens a new one next time
        reason = getattr(error, "reason", None) or str(error) or type(error).__name__
        run.error = f"lost the connection to {self._where} during {step}: {reason}"
        if self._events is None:
            return run.result(HostStatus.UNREACHABLE, step)
        run.error += "; the host carries on by itself (a probe tells how it ended)"
        return run.result(HostStatus.UNKNOWN, step)

    async def _read(self, *, until_staged: bool, budget: float) -> None:
        run = self.transcript
        stdout = self._process.stdout
        loop = asyncio.get_running_loop()
        async with asyncio.timeout_at(loop.time() + budget) as limit:
            while True:
                raw = await stdout.readline()
                if not raw:
                    if run.outcome is None and self._connection.is_closed():
                        raise asyncssh.ConnectionLost("the connection was closed")
                    return
                line = raw.decode("utf-8", "replace")
                message = parse_line(line)
                if message is None:
                    run.output += line
                    continue
                match message:
                    case Hello(version) if version != PROTOCOL_VERSION:
                        raise ProtocolError(
                            f"the driver on {self._where} speaks host protocol {version}, "
                            f"this controller {PROTOCOL_VERSION}"
                        )
                    case StepStart(step):
                        run.begin(step)
                        if self._events is not None:
                            self._events(StepStarted(self.job.deployment_id, run.host, step, utcnow()))
                        limit.reschedule(loop.time() + self._budget(step))
                        hook = self.job.hooks.get(step)
                        if hook is not None and runs_on_controller(hook):
                            self._process.stdin.write(await self._run_controller_hook(hook))
                    case StepEnd():
                        run.end(message)
                        limit.reschedule(loop.time() + IDLE_LIMIT)
                    case OutputFollows(token):
                        run.output += await self._read_output(token)
                    case NeedArtifact(path, inline):
                        if inline:
                            await self._stream_artifact()
                        else:
                            reply = await self._send_artifact(path)
                            sent = reply == ARTIFACT_SENT
                            self._process.stdin.write(self._artifact_sent() if sent else reply)
                        limit.reschedule(loop.time() + IDLE_LIMIT + self._upload_time())
                    case Env(name, value):
                        run.reported_env[name] = value
                    case Previous(dir):
                        run.previous_dir = run.current_dir = dir
                    case Current(dir):
                        run.current_dir = dir
                    case Release(dir):
                        run.releases.append(dir)
                    case Error(sentence):
                        run.error = sentence
                    case Done(outcome):
                        run.outcome = outcome
                    case Staged():
                        run.staged = True
                        if until_staged:
                            return

    async def _read_output(self, token: str) -> str:
        """A step's output, up to the line ``@@output-end <token>``, less the newline the
        driver puts before that line. At the channel's end, what came: the conversation
        then ends as at any other end of the channel."""
        end = output_end(token)
        lines: list[bytes] = []
        stdout = self._process.stdout
        while (raw := await stdout.readline()) != end:
            if not raw:
                return b"".join(lines).decode("utf-8", "replace")
            lines.append(raw)
        return b"".join(lines)[:-1].decode("utf-8", "replace")

    async def _run_controller_hook(self, hook: HookCommand) -> bytes:
        """Runs a Fabric-task hook here while the driver holds; the driver's answer."""
        run = self.transcript
        outcome = await self._run_here(hook, dict(run.reported_env))
        run.output = outcome.output
        if outcome.error is not None and not (hook.step == Step.STOP and self.job.ignore_stop_failures):
            run.error = outcome.error
        return encode(HookResult(outcome.exit_status, outcome.attempts, outcome.timed_out))

    def _upload_time(self) -> float:
        artifact = self.job.artifact
        return artifact.size / UPLOAD_RATE_FLOOR if artifact is not None else 0.0

    def _budget(self, step: Step) -> float:
        """Seconds to wait for ``step`` to end before giving up on the host."""
        hook = self.job.hooks.get(step)
        if hook is None:
            return IDLE_LIMIT + (self._upload_time() if step == Step.UPLOAD else 0.0)
        attempts = max(hook.retries, 0) + 1
        return attempts * hook.timeout + (attempts - 1) * hook.interval + STEP_SLACK

    # -- the artifact ----------------------------------------------------------------------

    async def _stream_artifact(self) -> None:
        """Sends the artifact down the driver's own channel: ``data <n>``, n bytes, ``sent``.

        In chunks, waiting for SSH flow control between them, so a large artifact is
        never held in memory whole.
        """
        stdin = self._process.stdin
        artifact = self.job.artifact
        if artifact is None:
            stdin.write(ARTIFACT_MISSING)
            return
        # The first line goes with the first chunk and `sent` with the last: a small
        # artifact is one SSH packet, not three.
        pending = artifact_header(artifact.size)
        left = artifact.size
        with open(artifact.path, "rb") as file:
            while left > 0:
                chunk = file.read(min(ARTIFACT_CHUNK, left))
                if not chunk:
                    break
                left -= len(chunk)
                try:
                    stdin.write(pending + chunk + (b"" if left else self._artifact_sent()))
                    pending = b""
                    await stdin.drain()
                except (OSError, asyncssh.Error):
                    # The driver stopped reading (its disk filled, say) and left: its last
                    # words, still to be read, say why. A lost connection shows there too.
                    return
        if left:
            # The driver still waits for bytes that will never come: only ending the
            # channel frees it (it then leaves the host as it found it).
            raise ProtocolError(f"the artifact {artifact.path} shrank while it was being sent")
        if pending:  # an empty artifact: nothing was written yet
            stdin.write(pending + self._artifact_sent())
        self.transcript.uploaded = True

    async def _send_artifact(self, path: str) -> bytes:
        """Streams the artifact to ``path`` through a second channel; the driver's answer."""
        artifact = self.job.artifact
        if artifact is None:
            return ARTIFACT_MISSING
        upload = await self._connection.create_process(
            f"cat > {shlex.quote(path)}", stdin=PurePath(artifact.path), encoding=None
        )
        try:
            result = await upload.wait(check=False)
        finally:
            upload.close()  # cancelled (unstaged, say): asyncssh would go on feeding the file
        if result.exit_status != 0:
            stderr = result.stderr if isinstance(result.stderr, bytes) else str(result.stderr or "").encode()
            self.transcript.output += (
                f"[deployer] sending the artifact failed: {stderr.decode('utf-8', 'replace').strip()}\n"
            )
            return ARTIFACT_FAILED
        self.transcript.uploaded = True
        return ARTIFACT_SENT

    # -- the end -----------------------------------------------------------------------------

    async def _finish(self) -> HostResult:
        run = self.transcript
        if run.outcome is None:
            step = run.step or Step.CONNECT
            last_words = await self._last_words()
            run.error = f"the remote driver stopped during {step} without finishing{last_words}"
            return run.result(HostStatus.FAILED, step)
        self._process.close()
        outcome = parse_outcome(run.outcome)
        if outcome.status == "succeeded":
            return run.result(HostStatus.SUCCEEDED, run.steps[-1].step if run.steps else None)
        if outcome.status == "aborted":
            run.error = f"aborted before {outcome.step}; the host still runs what it ran before"
            return run.result(HostStatus.ABORTED, outcome.step)
        end = run.failed_end
        if run.error is None and end is not None and end.step == outcome.step:
            run.error = failure_sentence(end, self.job.hooks.get(end.step))
        if run.error is None:
            run.error = f"{outcome.step} failed with exit {outcome.exit_status}"
        return run.result(HostStatus.FAILED, outcome.step, outcome.exit_status)

    async def _last_words(self) -> str:
        """What a driver that died printed on stderr, and its exit status, for the error."""
        process = self._process
        stderr = b""
        with contextlib.suppress(asyncssh.Error, OSError, TimeoutError):
            async with asyncio.timeout(5):
                stderr = await process.stderr.read(STDERR_CAP)
                await process.wait_closed()
        words = tail(stderr.decode("utf-8", "replace").strip(), 3)
        status = process.exit_status
        return (f": {words}" if words else "") + (f" (exit {status})" if status not in (None, 0) else "")


def new_transcript(host: str, job: ReleaseJob) -> Transcript:
    return Transcript(host=host, started_at=utcnow(), new_dir=release_dir_name(job.version))
