"""The real :class:`~deployer.runner.HostRunner`: asyncssh, one connection per host.

Per host and deployment the runner opens one exec channel that runs the remote driver
(``deployer/remote/driver.sh``, see :mod:`deployer.release`) and converses with it:

    driver                                  controller (this module)
    @@previous 1.3
    @@step upload start          ───────▶   report(host, UPLOAD) commits the step
                                 ◀───────   go            (or `stop`: abort before it)
    @@need-artifact <path> stdin ───────▶
                                 ◀───────   data <n>, the artifact's n bytes, sent
                                            (or, on a host without GNU head, `file`: a
                                            second channel, cat > <path>, then `sent`)
    @@step upload end 0 1
    @@step start start / go / @@output <token> ... @@output-end <token> / @@step start end 0 1
    @@release 1.4 ... @@step prune start ▶  go 4 5        (positions to delete)
    @@done succeeded / @@current 1.4

A Fabric-task hook runs here, not on the host (:mod:`deployer.fabric_hooks`): the driver
tells its variables and holds at its start; the controller runs the task while it waits,
then answers with the result instead of `go`:

    @@env DEPLOY_RELEASE_DIR /srv/app/releases/1.4 (and the other two)
    @@step after_install start   ───────▶   report(host, AFTER_INSTALL), then the task
                                 ◀───────   done 0 1      (exit, attempts [, timeout])

Round trips per host: one per step that runs (its acknowledgement), plus the upload when
the release is not on the host yet; a step's output travels with its end marker, and the
driver batches its lines so that each wait costs one packet each way. Steps are timed
here, from the acknowledgement to the end marker.

Concurrency: how many hosts deploy at once is the controller's policy, decided in one
place. The runner only bounds what it adds itself: at most ``connect_concurrency`` SSH
handshakes are in flight at once (each costs the controller a few milliseconds of CPU
and a socket; a bastion or a shared sshd drops unauthenticated connections beyond its
MaxStartups), and each host has a single connection, shared by its deploys and probes
and opened once (reopened when dropped). The default is wide enough that a wave of a
few hundred hosts is not queued behind it: a tighter bound only delays the last hosts
of a wave, since the handshakes' CPU is the same either way.

Where a connection goes (address, port, user, keys, known_hosts, jump host) is decided
by :mod:`deployer.ssh_config`: ``~/.ssh/config`` under the spec's settings. A jump host's
connection is opened once and shared by every host behind it (their connections are
tunnelled through it); it is opened again when it dropped.

Host keys are always checked, for a jump host and for each host, against the endpoint's
``known_hosts`` file (default ``~/.ssh/known_hosts``). Policy ``strict`` refuses an unknown
key; ``accept-new`` records an unknown key (appended under a file lock) and accepts it. A
changed key is refused under both.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shlex
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import PurePath
from typing import TYPE_CHECKING

import asyncssh

from deployer.fleet import SshTarget, endpoint
from deployer.host_keys import (
    judge_host_key,
    known_keys,
    offered_key_type,
    os_error_text,
    other_type_problem,
    refusal_problem,
)
from deployer.release import (
    StepEnd,
    StepStart,
    controller_answer,
    driver_command,
    failure_sentence,
    first_step,
    job_problem,
    parse_outcome,
    parse_probe,
    parse_step,
    probe_command,
    release_dir_name,
    releases_to_prune,
    runs_on_controller,
    split_marker,
    version_of_dir,
)
from deployer.results import HostResult, HostStatus, Step, StepResult, cap_output, tail
from deployer.runner import CheckAnswer, HookCommand, HostProbe, ReleaseJob, StepReporter
from deployer.ssh_config import Endpoint, SshConfigProblem, resolve_endpoint

if TYPE_CHECKING:
    from deployer.fabric_hooks import FabricHooks

DEFAULT_CONNECT_CONCURRENCY = 256
KEEPALIVE_COUNT_MAX = 3  # unanswered keepalives before a connection counts as lost
STEP_SLACK = 30.0  # seconds beyond a hook's own time limits before the controller gives up
IDLE_LIMIT = 120.0  # seconds the driver may stay silent outside a hook (switch, prune, unpack)
UPLOAD_RATE_FLOOR = 1 << 20  # bytes per second an upload is allowed to go no slower than
PROBE_TIMEOUT = 60.0
STOP_GRACE = 5.0  # seconds to let a driver told `stop` end, when the controller is leaving
STDERR_CAP = 4096
ARTIFACT_CHUNK = 1 << 18  # bytes read from the artifact and written to the channel at a time


# AES-GCM first: asyncssh's default, chacha20-poly1305, builds cipher contexts in Python
# for every packet and cost about half again as much controller CPU per host in
# bench/push.py. Every OpenSSH server since 6.2 offers AES-GCM; the rest are fallbacks.
PREFERRED_CIPHERS = [
    "aes128-gcm@openssh.com",
    "aes256-gcm@openssh.com",
    "chacha20-poly1305@openssh.com",
    "aes128-ctr",
    "aes192-ctr",
    "aes256-ctr",
]


class _ConnectFailed(Exception):
    def __init__(self, status: HostStatus, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


_Key = tuple[str, int | None, str | None, str | None, str | None]


def _key(target: SshTarget) -> _Key:
    """Which targets share one connection: the same host reached the same way."""
    host = target.host
    return (host.address, host.port, target.user, target.proxy_jump, target.config_file)


def _where(target: SshTarget) -> str:
    host = target.host
    return host.address if host.port is None else endpoint(host.address, host.port)


def _now() -> datetime:
    return datetime.now(UTC)


class _KnownHostsBook:
    """Parsed known_hosts files, re-read when they change on disk."""

    def __init__(self) -> None:
        self._parsed: dict[str, tuple[tuple[int, int], asyncssh.SSHKnownHosts]] = {}

    def load(self, path: str) -> asyncssh.SSHKnownHosts | None:
        """The file's entries, or None when there is no such file."""
        try:
            info = os.stat(path)
        except FileNotFoundError:
            return None
        stamp = (info.st_mtime_ns, info.st_size)
        cached = self._parsed.get(path)
        if cached is not None and cached[0] == stamp:
            return cached[1]
        with open(path, encoding="utf-8", errors="replace") as file:
            parsed = asyncssh.import_known_hosts(file.read())
        self._parsed[path] = (stamp, parsed)
        return parsed


class _HostKeyCheck(asyncssh.SSHClient):
    """Decides about a host key asyncssh did not trust by itself (see deployer.host_keys),
    and remembers why it refused."""

    def __init__(self, path: str, book: asyncssh.SSHKnownHosts | None, policy: str) -> None:
        self._path = path
        self._book = book
        self._policy = policy
        self.problem: str | None = None

    def validate_host_public_key(self, host: str, addr: str, port: int, key: asyncssh.SSHKey) -> bool:
        self.problem = judge_host_key(self._path, self._book, host, addr, port, key, self._policy)
        return self.problem is None

    def validate_host_ca_key(self, host: str, addr: str, port: int, key: asyncssh.SSHKey) -> bool:
        self.problem = (
            f"host certificate of {host}:{port} is not signed by a certificate authority trusted in "
            f"{self._path}"
        )
        return False


@dataclass(slots=True)
class _Run:
    """What one host's driver conversation has produced so far (mutable, local to a deploy)."""

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
    error: str | None = None
    failed_end: StepEnd | None = None
    outcome: str | None = None
    acknowledged: Step | None = None  # answered before the driver asked (see first_step)
    awaiting: Step | None = None  # the step whose report is being awaited (no answer sent yet)
    reported_env: dict[str, str] = field(default_factory=dict)  # @@env: the next hook's variables

    def begin(self, step: Step) -> None:
        self.step = step
        self.step_started_at = _now()
        self.step_clock = time.monotonic()
        self.output = ""

    def end(self, end: StepEnd) -> None:
        self.steps.append(
            StepResult(
                step=end.step,
                exit_status=end.exit_status,
                started_at=self.step_started_at or _now(),
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
            finished_at=_now(),
            step=step,
            exit_status=exit_status,
            error=self.error,
            output_tail=tail(output) if status != HostStatus.SUCCEEDED else "",
            steps=tuple(self.steps),
            version=version_of_dir(self.current_dir) if self.current_dir else None,
            previous_version=version_of_dir(self.previous_dir) if self.previous_dir else None,
            uploaded=self.uploaded,
        )


async def _other_key_type(
    book: asyncssh.SSHKnownHosts | None, endpoint: Endpoint, known_hosts: str, *, direct: bool
) -> str | None:
    """Why a host hung up, when it offers a key type the file knows none of for it; else None.

    Found by a second, short handshake, straight to the host: so not for one behind a jump
    host or a ProxyCommand.
    """
    known = known_keys(book, endpoint.address, "", endpoint.port).trusted
    if not known or not direct or endpoint.proxy_command:
        return None
    offered = await offered_key_type(endpoint.address, endpoint.port, endpoint.connect_timeout)
    types = sorted({key.get_algorithm() for key in known})
    if offered is None or offered in types:
        return None
    return other_type_problem(known_hosts, endpoint.where, offered, types)


class _ProtocolError(Exception):
    pass


class SshRunner:
    """Runs release jobs on hosts over asyncssh (implements :class:`deployer.runner.HostRunner`)."""

    def __init__(self, *, connect_concurrency: int = DEFAULT_CONNECT_CONCURRENCY) -> None:
        self._connections: dict[_Key, asyncssh.SSHClientConnection] = {}
        # Connections opened ahead of their host's turn (see prepare): the attempt itself,
        # so the host's job takes its connection, or its failure, instead of trying again.
        self._warming: dict[_Key, asyncio.Task[asyncssh.SSHClientConnection]] = {}
        self._connect_locks: dict[_Key, asyncio.Lock] = {}
        self._connect_slots = asyncio.Semaphore(connect_concurrency)
        self._known_hosts = _KnownHostsBook()
        self._identities: dict[str, Sequence[asyncssh.SSHKeyPair]] = {}
        self._jumps: dict[Endpoint, asyncssh.SSHClientConnection] = {}
        self._jump_attempts: dict[Endpoint, asyncio.Task[asyncssh.SSHClientConnection]] = {}
        self._fabric_hooks: FabricHooks | None = None
        self._closed = False

    # -- connections -------------------------------------------------------------------

    def prepare(self, targets: Sequence[SshTarget]) -> None:
        """Start connecting to hosts whose turn comes next, while the hosts before them run.

        Connecting changes nothing on a host. A host's job then takes the connection
        opened for it, or the reason it could not be opened, as its connect step (an
        unreachable host is not waited for twice). Connecting (key exchange and
        authentication) is a large part of a host's time; done here it overlaps the
        hooks of the wave before.
        """
        if self._closed:
            return
        for target in targets:
            key = _key(target)
            cached = self._connections.get(key)
            if key in self._warming or (cached is not None and not cached.is_closed()):
                continue
            self._warming[key] = asyncio.create_task(self._connection(target), name=f"connect {key[0]}")

    async def _connection(self, target: SshTarget) -> asyncssh.SSHClientConnection:
        """The host's one connection: the cached one while it is open, the one opened for it
        ahead (see prepare), else a new one."""
        if self._closed:
            raise RuntimeError("SshRunner.aclose() was called; this runner opens no more connections")
        key = _key(target)
        warming = self._warming.get(key)
        if warming is not None and asyncio.current_task() is not warming:
            del self._warming[key]
            opened = await warming  # or the reason it could not be opened
            if not opened.is_closed():
                return opened
        connection = self._connections.get(key)
        if connection is not None and not connection.is_closed():
            return connection
        lock = self._connect_locks.setdefault(key, asyncio.Lock())
        async with lock:
            connection = self._connections.get(key)
            if connection is not None and not connection.is_closed():
                return connection
            async with self._connect_slots:
                connection = await self._connect(target)
            self._connections[key] = connection
            return connection

    def _forget(self, target: SshTarget, connection: asyncssh.SSHClientConnection) -> None:
        key = _key(target)
        if self._connections.get(key) is connection:
            del self._connections[key]
        connection.close()

    async def _connect(self, target: SshTarget) -> asyncssh.SSHClientConnection:
        try:
            endpoint = resolve_endpoint(target)
        except SshConfigProblem as error:
            raise _ConnectFailed(HostStatus.FAILED, str(error)) from None
        tunnel = await self._jump_connection(endpoint.jump) if endpoint.jump is not None else None
        return await self._open(endpoint, tunnel)

    async def _jump_connection(self, jump: Endpoint) -> asyncssh.SSHClientConnection:
        """The one connection to a jump host, shared by every host behind it (opened once,
        reopened when it dropped). Hosts that ask while it is being opened wait for that
        attempt: a bastion that does not answer fails them together, after one timeout,
        not one after another."""
        connection = self._jumps.get(jump)
        if connection is not None and not connection.is_closed():
            return connection
        attempt = self._jump_attempts.get(jump)
        if attempt is None:
            attempt = asyncio.create_task(self._open_jump(jump), name=f"connect {jump.alias}")
            self._jump_attempts[jump] = attempt
            attempt.add_done_callback(lambda _: self._jump_attempts.pop(jump, None))
        return await asyncio.shield(attempt)  # one host's cancellation is not the others'

    async def _open_jump(self, jump: Endpoint) -> asyncssh.SSHClientConnection:
        try:
            tunnel = await self._jump_connection(jump.jump) if jump.jump is not None else None
            connection = await self._open(jump, tunnel)
        except _ConnectFailed as failure:
            raise _ConnectFailed(failure.status, f"jump host {jump.alias}: {failure.message}") from None
        self._jumps[jump] = connection
        return connection

    async def _open(
        self, endpoint: Endpoint, tunnel: asyncssh.SSHClientConnection | None
    ) -> asyncssh.SSHClientConnection:
        """One SSH connection to ``endpoint`` (through ``tunnel``), its host key checked."""
        where = endpoint.where
        known_hosts = endpoint.known_hosts
        try:
            book = self._known_hosts.load(known_hosts)
        except (OSError, ValueError) as error:
            raise _ConnectFailed(
                HostStatus.FAILED, f"cannot read known_hosts {known_hosts}: {error}"
            ) from None
        check = _HostKeyCheck(known_hosts, book, endpoint.host_key_policy)
        options: dict[str, object] = {
            "port": endpoint.port,
            # Matched by us: asyncssh's own match can forget a revoked key (deployer.host_keys).
            "known_hosts": lambda name, addr, port: known_keys(book, name, addr, port).as_asyncssh(),
            "client_factory": lambda: check,
            "connect_timeout": endpoint.connect_timeout,
            "keepalive_interval": endpoint.keepalive,
            "keepalive_count_max": KEEPALIVE_COUNT_MAX,
            "encryption_algs": PREFERRED_CIPHERS,
            "config": [],  # the endpoint holds what ~/.ssh/config says, under the spec's settings
        }
        if endpoint.user:
            options["username"] = endpoint.user
        if endpoint.identity_files:
            keys: list[asyncssh.SSHKeyPair] = []
            for identity in endpoint.identity_files:
                if not os.path.isfile(identity):
                    raise _ConnectFailed(HostStatus.FAILED, f"identity file {identity} does not exist")
                try:
                    keys.extend(self._identity(identity))
                except (asyncssh.KeyImportError, OSError) as error:
                    raise _ConnectFailed(
                        HostStatus.FAILED, f"cannot load the identity {identity} for {where}: {error}"
                    ) from None
            options["client_keys"] = keys
        if endpoint.identities_only:
            options["agent_path"] = None
        if tunnel is not None:
            options["tunnel"] = tunnel
        elif endpoint.proxy_command:
            options["proxy_command"] = endpoint.proxy_command
        try:
            connection = await asyncssh.connect(endpoint.address, **options)
        except asyncssh.HostKeyNotVerifiable as error:
            problem = check.problem or refusal_problem(error.reason, where, known_hosts)
            raise _ConnectFailed(
                HostStatus.FAILED, problem or f"host key for {where} refused: {error.reason}"
            ) from None
        except asyncssh.PermissionDenied as error:
            user = f"{endpoint.user}@" if endpoint.user else ""
            raise _ConnectFailed(
                HostStatus.FAILED, f"authentication as {user}{where} failed: {error.reason}"
            ) from None
        except asyncssh.KeyImportError as error:
            raise _ConnectFailed(
                HostStatus.FAILED, f"cannot load the identity for {where}: {error}"
            ) from None
        except TimeoutError:
            raise _ConnectFailed(
                HostStatus.UNREACHABLE, f"no SSH answer from {where} within {endpoint.connect_timeout:g}s"
            ) from None
        except (asyncssh.Error, OSError) as error:
            # A host that has none of the key types the file knows for it hangs up (a lost
            # connection, or a reset one): say so.
            other = await _other_key_type(book, endpoint, known_hosts, direct=tunnel is None)
            if other is not None:
                raise _ConnectFailed(HostStatus.FAILED, other) from None
            if isinstance(error, asyncssh.Error):
                raise _ConnectFailed(
                    HostStatus.UNREACHABLE, f"SSH to {where} failed: {error.reason}"
                ) from None
            raise _ConnectFailed(
                HostStatus.UNREACHABLE, f"cannot connect to {where}: {os_error_text(error)}"
            ) from None
        return connection

    def _identity(self, path: str) -> Sequence[asyncssh.SSHKeyPair]:
        """The key pairs of identity file ``path``, read once per runner: given the path,
        asyncssh would read and parse it again for every host (about 0.2 ms each)."""
        keys = self._identities.get(path)
        if keys is None:
            keys = asyncssh.load_keypairs([path])
            self._identities[path] = keys
        return keys

    async def _open_process(
        self, target: SshTarget, command: str
    ) -> tuple[asyncssh.SSHClientConnection, asyncssh.SSHClientProcess[bytes]]:
        """An exec channel on the host's connection; one reconnect if the cached one died unseen."""
        for attempt in (1, 2):
            connection = await self._connection(target)
            try:
                process = await connection.create_process(command, encoding=None)
            except (
                asyncssh.ChannelOpenError,
                asyncssh.ConnectionLost,
                asyncssh.DisconnectError,
                OSError,
            ) as error:
                self._forget(target, connection)
                if attempt == 2:
                    message = getattr(error, "reason", None) or str(error)
                    raise _ConnectFailed(
                        HostStatus.UNREACHABLE, f"cannot open a session on {_where(target)}: {message}"
                    ) from None
                continue
            return connection, process
        raise AssertionError("unreachable")

    async def aclose(self) -> None:
        """Close every connection this runner opened."""
        self._closed = True
        for warming in self._warming.values():
            warming.cancel()
        await asyncio.gather(*self._warming.values(), return_exceptions=True)
        self._warming.clear()
        attempts = list(self._jump_attempts.values())
        for attempt in attempts:
            attempt.cancel()
        await asyncio.gather(*attempts, return_exceptions=True)
        # The hosts' connections first: those through a jump host ride on its connection.
        pools = (list(self._connections.values()), list(self._jumps.values()))
        self._connections.clear()
        self._jumps.clear()
        for connections in pools:
            for connection in connections:
                connection.close()
            await asyncio.gather(*(c.wait_closed() for c in connections), return_exceptions=True)

    # -- probe -------------------------------------------------------------------------

    async def probe(self, target: SshTarget, app_target: str, deployment_id: str | None) -> HostProbe:
        """Read a host's current release, kept releases, and its record of ``deployment_id``."""
        name = target.host.name
        answer = await self.check(target, probe_command(app_target, deployment_id), "the probe")
        if answer.output is None:
            return HostProbe(host=name, reachable=False, error=answer.error)
        return parse_probe(name, answer.output)

    async def check(self, target: SshTarget, command: str, what: str = "the check") -> CheckAnswer:
        """Run a read-only ``command`` on the host and read its output (``what``: for messages).

        Never raises for the host's own failures: those are the answer's ``error``, and
        ``unreachable`` says whether no connection could be made at all.
        """
        try:
            connection, process = await self._open_process(target, command)
        except _ConnectFailed as failure:
            unreachable = failure.status is HostStatus.UNREACHABLE
            return CheckAnswer(output=None, error=failure.message, unreachable=unreachable)
        try:
            async with asyncio.timeout(PROBE_TIMEOUT):
                output = await process.stdout.read()
                await process.wait_closed()
        except TimeoutError:
            process.close()
            return CheckAnswer(
                output=None,
                error=f"{_where(target)} did not answer {what} within {PROBE_TIMEOUT:g}s",
                unreachable=True,
            )
        except (asyncssh.Error, OSError) as error:
            self._forget(target, connection)
            return CheckAnswer(
                output=None, error=f"lost the connection to {_where(target)}: {error}", unreachable=True
            )
        return CheckAnswer(output=output.decode("utf-8", "replace"))

    # -- deploy ------------------------------------------------------------------------

    async def deploy(self, target: SshTarget, job: ReleaseJob, report: StepReporter) -> HostResult:
        """Run ``job`` on one host; never raises for the host's own failures."""
        run = _Run(host=target.host.name, started_at=_now(), new_dir=release_dir_name(job.version))
        problem = job_problem(job)
        if problem is not None:
            run.error = problem[1]
            return run.result(HostStatus.FAILED, problem[0])
        if not await report(run.host, Step.CONNECT):
            return run.result(HostStatus.ABORTED, Step.CONNECT)
        run.begin(Step.CONNECT)
        try:
            connection, process = await self._open_process(target, driver_command(job, target.host))
        except _ConnectFailed as failure:
            run.error = failure.message
            return run.result(failure.status, Step.CONNECT)
        run.end(StepEnd(Step.CONNECT, 0, 1, False))
        try:
            # The first step is known in advance: its answer travels right behind the exec
            # request, and the driver finds it waiting (one round trip less per host). Not
            # for a hook run here: the driver must tell its variables first.
            first = first_step(job)
            if not runs_on_controller(job.hooks.get(first)):
                run.awaiting = first
                go = await report(run.host, first)
                process.stdin.write(self._answer(go, first, job, run))
                run.awaiting = None
                run.acknowledged = first
                run.begin(first)  # its start marker comes later, batched with what follows
            return await self._converse(target, job, report, run, connection, process)
        except (asyncssh.Error, OSError, asyncio.IncompleteReadError) as error:
            self._forget(target, connection)
            step = run.step or Step.CONNECT
            reason = getattr(error, "reason", None) or str(error) or type(error).__name__
            run.error = (
                f"lost the connection to {_where(target)} during {step}: {reason}; "
                "the host carries on by itself (a probe tells how it ended)"
            )
            return run.result(HostStatus.UNKNOWN, step)
        except _ProtocolError as error:
            process.close()
            run.error = str(error)
            return run.result(HostStatus.FAILED, run.step or Step.CONNECT)
        except TimeoutError:
            process.close()
            step = run.step or Step.CONNECT
            run.error = (
                f"no word from {_where(target)} during {step} for longer than it may take; gave up "
                "waiting (its driver may still finish: a probe tells how it ended)"
            )
            return run.result(HostStatus.UNKNOWN, step)
        except BaseException:
            # The controller is going away (cancelled) or a reporter failed. If the driver
            # waits to start a step that changes nothing yet, tell it to stop there, and
            # wait (briefly) until it has: a connection closed right after could lose the
            # `stop` inside sshd and leave the driver to carry on. Else the EOF tells it to
            # finish the host by itself.
            with contextlib.suppress(asyncssh.Error, OSError, TimeoutError):
                if run.awaiting is not None and not run.committed:
                    process.stdin.write(b"stop\n")
                    process.stdin.write_eof()
                    async with asyncio.timeout(STOP_GRACE):
                        await process.wait_closed()
                else:
                    process.stdin.write_eof()
            raise

    async def _converse(
        self,
        target: SshTarget,
        job: ReleaseJob,
        report: StepReporter,
        run: _Run,
        connection: asyncssh.SSHClientConnection,
        process: asyncssh.SSHClientProcess[bytes],
    ) -> HostResult:
        stdout = process.stdout
        stdin = process.stdin
        loop = asyncio.get_running_loop()
        # The first step was answered in advance: its start marker comes with its end.
        first_budget = IDLE_LIMIT + self._budget(job, first_step(job))
        async with asyncio.timeout_at(loop.time() + first_budget) as limit:
            while True:
                raw = await stdout.readline()
                if not raw:
                    if run.outcome is None and connection.is_closed():
                        raise asyncssh.ConnectionLost("the connection was closed")
                    break
                line = raw.decode("utf-8", "replace")
                marker = split_marker(line)
                if marker is None:
                    run.output += line
                    continue
                word, rest = marker
                if word == "step":
                    event = self._parse_step(rest)
                    if isinstance(event, StepStart):
                        if event.step == run.acknowledged:
                            run.acknowledged = None
                        else:
                            limit.reschedule(None)
                            run.awaiting = event.step
                            go = await report(run.host, event.step)
                            answer = self._answer(go, event.step, job, run)
                            run.awaiting = None
                            run.begin(event.step)
                            hook = job.hooks.get(event.step)
                            if answer == b"go\n" and hook is not None and runs_on_controller(hook):
                                limit.reschedule(loop.time() + self._budget(job, event.step))
                                answer = await self._run_here(target, job, hook, run)
                            stdin.write(answer)
                        limit.reschedule(loop.time() + self._budget(job, event.step))
                    else:
                        run.end(event)
                        limit.reschedule(loop.time() + IDLE_LIMIT)
                elif word == "output":
                    run.output += await self._read_output(stdout, rest)
                elif word == "need-artifact":
                    path, _, how = rest.rpartition(" ")  # the path may hold spaces, `how` not
                    if how == "stdin":
                        await self._stream_artifact(stdin, job, run)
                    else:
                        stdin.write(await self._send_artifact(connection, job, path, run))
                    limit.reschedule(loop.time() + IDLE_LIMIT + self._upload_time(job))
                elif word == "env":
                    name, _, value = rest.partition(" ")
                    run.reported_env[name] = value
                elif word == "previous":
                    run.previous_dir = run.current_dir = rest
                elif word == "current":
                    run.current_dir = rest
                elif word == "release":
                    run.releases.append(rest)
                elif word == "error":
                    run.error = rest
                elif word == "done":
                    run.outcome = rest
        return await self._finish(job, run, process)

    @staticmethod
    async def _read_output(stdout: asyncssh.SSHReader[bytes], token: str) -> str:
        """A step's output, up to the line ``@@output-end <token>``, less the newline the
        driver puts before that line. At the channel's end, what came: the conversation
        then ends as at any other end of the channel."""
        end = f"@@output-end {token}\n".encode()
        lines: list[bytes] = []
        while (raw := await stdout.readline()) != end:
            if not raw:
                return b"".join(lines).decode("utf-8", "replace")
            lines.append(raw)
        return b"".join(lines)[:-1].decode("utf-8", "replace")

    @staticmethod
    def _parse_step(rest: str) -> StepStart | StepEnd:
        try:
            return parse_step(rest)
        except ValueError as error:
            raise _ProtocolError(f"the remote driver said something unexpected: {error}") from None

    @staticmethod
    def _answer(go: bool, step: Step, job: ReleaseJob, run: _Run) -> bytes:
        """The line that lets the driver run ``step``; `stop` only while an abort still holds."""
        if not go and not run.committed and step not in (Step.START, Step.VALIDATE, Step.PRUNE):
            return b"stop\n"
        if step == Step.PRUNE:
            current = release_dir_name(job.version)
            doomed = releases_to_prune(run.releases, current, run.previous_dir, job.keep_releases)
            return ("go " + " ".join(map(str, doomed)) + "\n").encode()
        if step == Step.SWITCH:  # the time for revisions.log: the driver need not run date(1)
            return f"go {_now():%Y-%m-%dT%H:%M:%SZ}\n".encode()
        return b"go\n"

    async def _run_here(self, target: SshTarget, job: ReleaseJob, hook: HookCommand, run: _Run) -> bytes:
        """Runs a Fabric-task hook on the controller while the driver holds; the driver's answer."""
        # Fabric and paramiko are imported only when a spec uses them.
        from deployer.fabric_hooks import FabricHooks, hook_variables

        if self._fabric_hooks is None:
            self._fabric_hooks = FabricHooks(self._connect_slots)
        variables = hook_variables(job, target.host, run.reported_env)
        outcome = await self._fabric_hooks.run(target, hook, variables)
        run.output = outcome.output
        if outcome.error is not None and not (hook.step == Step.STOP and job.ignore_stop_failures):
            run.error = outcome.error
        return controller_answer(outcome.exit_status, outcome.attempts, outcome.timed_out)

    @staticmethod
    def _upload_time(job: ReleaseJob) -> float:
        return job.artifact.size / UPLOAD_RATE_FLOOR if job.artifact is not None else 0.0

    def _budget(self, job: ReleaseJob, step: Step) -> float:
        """Seconds the controller waits for ``step`` to end before it gives up on the host."""
        hook = job.hooks.get(step)
        if hook is None:
            return IDLE_LIMIT + (self._upload_time(job) if step == Step.UPLOAD else 0.0)
        attempts = max(hook.retries, 0) + 1
        return attempts * hook.timeout + (attempts - 1) * hook.interval + STEP_SLACK

    async def _stream_artifact(self, stdin: asyncssh.SSHWriter[bytes], job: ReleaseJob, run: _Run) -> None:
        """Sends the artifact down the driver's own channel: ``data <n>``, n bytes, ``sent``.

        In chunks, waiting for SSH flow control between them, so a large artifact is
        never held in memory whole.
        """
        artifact = job.artifact
        if artifact is None:
            stdin.write(b"missing\n")
            return
        # The first line goes with the first chunk and `sent` with the last: a small
        # artifact is one SSH packet, not three.
        pending = f"data {artifact.size}\n".encode()
        left = artifact.size
        with open(artifact.path, "rb") as file:
            while left > 0:
                chunk = file.read(min(ARTIFACT_CHUNK, left))
                if not chunk:
                    break
                left -= len(chunk)
                stdin.write(pending + chunk + (b"" if left else b"sent\n"))
                pending = b""
                await stdin.drain()
        if left:
            # The driver still waits for bytes that will never come: only ending the
            # channel frees it (it then leaves the host as it found it).
            raise _ProtocolError(f"the artifact {artifact.path} shrank while it was being sent")
        if pending:  # an empty artifact: nothing was written yet
            stdin.write(pending + b"sent\n")
        run.uploaded = True

    async def _send_artifact(
        self, connection: asyncssh.SSHClientConnection, job: ReleaseJob, path: str, run: _Run
    ) -> bytes:
        """Streams the artifact to ``path`` through a second channel; the driver's answer."""
        if job.artifact is None:
            return b"missing\n"
        result = await connection.run(
            f"cat > {shlex.quote(path)}", stdin=PurePath(job.artifact.path), check=False, encoding=None
        )
        if result.exit_status != 0:
            stderr = (
                result.stderr
                if isinstance(result.stderr, str)
                else (result.stderr or b"").decode("utf-8", "replace")
            )
            run.output += f"[deployer] sending the artifact failed: {stderr.strip()}\n"
            return b"failed\n"
        run.uploaded = True
        return b"sent\n"

    async def _finish(
        self, job: ReleaseJob, run: _Run, process: asyncssh.SSHClientProcess[bytes]
    ) -> HostResult:
        if run.outcome is None:
            step = run.step or Step.CONNECT
            run.error = f"the remote driver stopped during {step} without finishing" + await _last_words(
                process
            )
            return run.result(HostStatus.FAILED, step)
        process.close()
        outcome = parse_outcome(run.outcome)
        if outcome.status == "succeeded":
            return run.result(HostStatus.SUCCEEDED, run.steps[-1].step if run.steps else None)
        if outcome.status == "aborted":
            run.error = f"aborted before {outcome.step}; the host still runs what it ran before"
            return run.result(HostStatus.ABORTED, outcome.step)
        end = run.failed_end
        if run.error is None and end is not None and end.step == outcome.step:
            run.error = failure_sentence(end, job.hooks.get(end.step))
        if run.error is None:
            run.error = f"{outcome.step} failed with exit {outcome.exit_status}"
        return run.result(HostStatus.FAILED, outcome.step, outcome.exit_status)


async def _last_words(process: asyncssh.SSHClientProcess[bytes]) -> str:
    """What a driver that died printed on stderr, and its exit status, for the error sentence."""
    stderr = b""
    with contextlib.suppress(asyncssh.Error, OSError, TimeoutError):
        async with asyncio.timeout(5):
            stderr = await process.stderr.read(STDERR_CAP)
            await process.wait_closed()
    words = tail(stderr.decode("utf-8", "replace").strip(), 3)
    status = process.exit_status
    return (f": {words}" if words else "") + (f" (exit {status})" if status not in (None, 0) else "")
