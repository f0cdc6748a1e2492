"""The real :class:`~deployer.core.runner.HostRunner`: asyncssh, one connection per host.

Per host and deployment the runner opens one exec channel that runs the remote driver;
the conversation with it is :mod:`deployer.hosts.conversation` (protocol: the header of
``deployer/hosts/remote/driver.sh``). :meth:`SshRunner.stage` holds it from the host's staging
to its wave; :meth:`SshRunner.deploy` sends the wave's one message (staging first, when
the host was not staged ahead).

Concurrency: how many hosts deploy at once is the controller's policy, decided in one
place. The runner only bounds what it adds itself: at most ``connect_concurrency`` SSH
handshakes are in flight at once (each costs the controller a few milliseconds of CPU
and a socket; a bastion or a shared sshd drops unauthenticated connections beyond its
MaxStartups), and each host has a single connection, shared by its deploys and probes
and opened once (reopened when dropped). The default is wide enough that a wave of a
few hundred hosts is not queued behind it: a tighter bound only delays the last hosts
of a wave, since the handshakes' CPU is the same either way.

Where a connection goes (address, port, user, keys, known_hosts, jump host) is decided
by :mod:`deployer.hosts.ssh_config`: ``~/.ssh/config`` under the spec's settings. A jump host's
connection is opened once and shared by every host behind it (their connections are
tunnelled through it); it is opened again when it dropped.

Host keys are always checked, for a jump host and for each host, against the endpoint's
``known_hosts`` file (default ``~/.ssh/known_hosts``). Policy ``strict`` refuses an unknown
key; ``accept-new`` records an unknown key (appended under a file lock) and accepts it. A
changed key is refused under both.
"""

from __future__ import annotations

import asyncio
import functools
import os
from collections.abc import Sequence
from typing import TYPE_CHECKING

from deployer.core.results import HostResult, HostStatus, Step
from deployer.core.runner import (
    CheckAnswer,
    HookCommand,
    HookOutcome,
    HostEvents,
    HostProbe,
    ReleaseJob,
    StageReport,
)
from deployer.core.targets import SshTarget, endpoint
from deployer.hosts.asyncssh_import import asyncssh
from deployer.hosts.conversation import Conversation, new_transcript
from deployer.hosts.host_keys import (
    judge_host_key,
    known_keys,
    os_error_text,
    other_key_type,
    refusal_problem,
)
from deployer.hosts.protocol import StepEnd, driver_command, parse_probe, probe_command
from deployer.hosts.quick_auth import request_auth_early, sign_first
from deployer.hosts.release import job_problem
from deployer.hosts.ssh_config import Endpoint, SshConfigProblem, resolve_endpoint

if TYPE_CHECKING:
    from deployer.hosts.fabric_hooks import FabricHooks

DEFAULT_CONNECT_CONCURRENCY = 256
KEEPALIVE_COUNT_MAX = 3  # unanswered keepalives before a connection counts as lost
PROBE_TIMEOUT = 60.0


# AES-GCM first: asyncssh's default, chacha20-poly1305, builds cipher contexts in Python
# for every packet, which costs the controller CPU per host (bench/push.py measures it).
# Every OpenSSH server since 6.2 offers AES-GCM; the rest are fallbacks.
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
    """Decides about a host key asyncssh did not trust by itself (see deployer.hosts.host_keys),
    and remembers why it refused."""

    def __init__(self, path: str, book: asyncssh.SSHKnownHosts | None, policy: str) -> None:
        self._path = path
        self._book = book
        self._policy = policy
        self.problem: str | None = None

    def connection_made(self, conn: asyncssh.SSHClientConnection) -> None:
        # up to three round trips fewer (deployer.hosts.quick_auth)
        sign_first(conn)
        request_auth_early(conn)

    def validate_host_public_key(self, host: str, addr: str, port: int, key: asyncssh.SSHKey) -> bool:
        self.problem = judge_host_key(self._path, self._book, host, addr, port, key, self._policy)
        return self.problem is None

    def validate_host_ca_key(self, host: str, addr: str, port: int, key: asyncssh.SSHKey) -> bool:
        self.problem = (
            f"host certificate of {host}:{port} is not signed by a certificate authority trusted in "
            f"{self._path}"
        )
        return False


class SshRunner:
    """Runs release jobs on hosts over asyncssh (implements :class:`deployer.core.runner.HostRunner`)."""

    def __init__(self, *, connect_concurrency: int = DEFAULT_CONNECT_CONCURRENCY) -> None:
        self._connections: dict[_Key, asyncssh.SSHClientConnection] = {}
        # Connections opened ahead of their host's turn (see prepare): the attempt itself,
        # so the host's job takes its connection, or its failure, instead of trying again.
        self._warming: dict[_Key, asyncio.Task[asyncssh.SSHClientConnection]] = {}
        self._connect_locks: dict[_Key, asyncio.Lock] = {}
        self._tentative: set[_Key] = set()  # warming before the plan was made (prepare)
        self._connect_slots = asyncio.Semaphore(connect_concurrency)
        self._known_hosts = _KnownHostsBook()
        self._identities: dict[str, Sequence[asyncssh.SSHKeyPair]] = {}
        self._jumps: dict[Endpoint, asyncssh.SSHClientConnection] = {}
        self._jump_attempts: dict[Endpoint, asyncio.Task[asyncssh.SSHClientConnection]] = {}
        self._fabric_hooks: FabricHooks | None = None
        # Conversations by (deployment id, host): staged and waiting for their wave, and live.
        self._staged: dict[tuple[str, str], Conversation] = {}
        self._staging: dict[tuple[str, str], asyncio.Future[StageReport]] = {}
        self._live: dict[str, dict[str, Conversation]] = {}
        self._stopping: set[str] = set()
        self._closed = False

    # -- connections -------------------------------------------------------------------

    def prepare(self, targets: Sequence[SshTarget], *, tentative: bool = False) -> None:
        """Start connecting to hosts whose turn comes next, while the hosts before them run.

        Connecting changes nothing on a host. A host's job then takes the connection
        opened for it, or the reason it could not be opened, as its connect step (an
        unreachable host is not waited for twice). Connecting (key exchange and
        authentication) is a large part of a host's time; done here it overlaps the
        hooks of the wave before. ``tentative``: before the plan was even made
        (deployer.hosts.runner_thread), so a failure is not the host's: its turn tries again.
        """
        if self._closed:
            return
        for target in targets:
            key = _key(target)
            cached = self._connections.get(key)
            if key in self._warming or (cached is not None and not cached.is_closed()):
                continue
            self._warming[key] = asyncio.create_task(self._connection(target), name=f"connect {key[0]}")
            if tentative:
                self._tentative.add(key)

    def keep_ahead(self, targets: Sequence[SshTarget]) -> None:
        """Of the connections opened or opening ahead (:meth:`prepare`), keep those to
        ``targets`` only: the others are let go (closed, or cancelled)."""
        keep = {_key(target) for target in targets}
        for key in [key for key in self._warming if key not in keep]:
            warming = self._warming.pop(key)
            self._tentative.discard(key)
            warming.cancel()  # (nothing, for one that ended; and asyncssh may finish anyway)
            warming.add_done_callback(functools.partial(self._let_go, key))

    def _let_go(self, key: _Key, attempt: asyncio.Task[asyncssh.SSHClientConnection]) -> None:
        """Close what an attempt let go by keep_ahead opened after all (its failure: seen)."""
        if attempt.cancelled() or attempt.exception() is not None:
            return
        if self._connections.get(key) is attempt.result():
            del self._connections[key]
        attempt.result().close()

    async def _connection(self, target: SshTarget) -> asyncssh.SSHClientConnection:
        """The host's one connection: the cached one while it is open, the one opened for it
        ahead (see prepare), else a new one."""
        if self._closed:
            raise RuntimeError("SshRunner.aclose() was called; this runner opens no more connections")
        key = _key(target)
        warming = self._warming.get(key)
        if warming is not None and asyncio.current_task() is not warming:
            del self._warming[key]
            try:
                opened: asyncssh.SSHClientConnection | None = await warming  # or why it could not be
            except Exception:
                if key not in self._tentative:
                    raise
                opened = None  # tried before there was a plan: the host's turn tries again
            finally:
                self._tentative.discard(key)
            if opened is not None and not opened.is_closed():
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
            # Matched by us: asyncssh's own match can forget a revoked key (deployer.hosts.host_keys).
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
            other = await other_key_type(book, endpoint, known_hosts, direct=tunnel is None)
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
        asyncssh would read and parse it again for every host."""
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
        stagings = list(self._staging.values())
        for staging in stagings:
            staging.cancel()
        await asyncio.gather(*stagings, return_exceptions=True)
        for conversation in self._staged.values():
            conversation.close()
        self._staged.clear()
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

    async def stage(self, target: SshTarget, job: ReleaseJob) -> StageReport:
        """Stage ``job`` on one host ahead of its wave; the driver then holds for its go."""
        key = (job.deployment_id, target.host.name)
        staging = asyncio.ensure_future(self._stage(target, job))
        self._staging[key] = staging
        # Listed until the staging itself ends, not the task that asked for it: the host's
        # wave must wait for it and unstage() find it, also once that task is cancelled.
        staging.add_done_callback(
            lambda _: self._staging.pop(key) if self._staging.get(key) is staging else None
        )
        return await asyncio.shield(staging)  # its wave, if it comes now, waits for it

    async def _stage(self, target: SshTarget, job: ReleaseJob) -> StageReport:
        """Never raises: a staging that could not be done is done again at the host's wave."""
        name = target.host.name
        try:
            staged = await self._staged_conversation(target, job)
        except Exception as error:  # the runner closing under it, or a bug: the wave retries
            return StageReport(name, staged=False, error=f"staging stopped: {error}")
        if isinstance(staged, HostResult):
            return StageReport(name, staged=False, error=staged.error)
        self._staged[(job.deployment_id, name)] = staged
        return StageReport(name, staged=True)

    async def _staged_conversation(self, target: SshTarget, job: ReleaseJob) -> Conversation | HostResult:
        """A conversation whose driver is staged and waits for its go, or how the host
        ended before that (nothing live changed)."""
        opened = await self._opened_conversation(target, job)
        if isinstance(opened, HostResult):
            return opened
        try:
            ended = await opened.stage()
        except asyncio.CancelledError:
            opened.close()  # unstaged on its way: the driver leaves, nothing live changed
            raise
        return opened if ended is None else ended

    async def _opened_conversation(self, target: SshTarget, job: ReleaseJob) -> Conversation | HostResult:
        """A conversation with the host's driver, or why none could start. Cancelled on its
        way, the conversation is closed, also one still opening: its driver then leaves at
        EOF, nothing live changed."""
        opening = asyncio.ensure_future(self._converse(target, job))
        try:
            return await asyncio.shield(opening)
        except asyncio.CancelledError:
            opening.add_done_callback(_close_opened)
            raise

    async def deploy(self, target: SshTarget, job: ReleaseJob, events: HostEvents) -> HostResult:
        """Run ``job`` on one host; never raises for the host's own failures."""
        name = target.host.name
        key = (job.deployment_id, name)
        staging = self._staging.get(key)
        if staging is not None:  # one driver per host: take the one being staged
            await asyncio.wait([staging])
        conversation = self._staged.pop(key, None)
        if conversation is not None and not conversation.is_open:
            conversation = None  # lost while it waited: staged again
        in_its_wave = conversation is None  # staged now: its go rides behind the artifact
        if conversation is None:
            opened = await self._opened_conversation(target, job)
            if isinstance(opened, HostResult):
                return opened
            conversation = opened
        # Live from here, staging included: an abort must keep a go from riding along.
        self._live.setdefault(job.deployment_id, {})[name] = conversation
        if job.deployment_id in self._stopping:
            conversation.stop()
        try:
            if in_its_wave:
                ended = await conversation.stage(events)
                if ended is not None:
                    return ended
            return await conversation.go(events)
        except BaseException:
            conversation.leave()
            raise
        finally:
            self._live[job.deployment_id].pop(name, None)

    def stop(self, deployment_id: str) -> None:
        self._stopping.add(deployment_id)
        for conversation in self._live.get(deployment_id, {}).values():
            conversation.stop()

    async def unstage(self, deployment_id: str) -> None:
        # Stagings still on their way first: one left running would hold its driver, waiting
        # for a go, until the runner closes (sync --watch keeps one for many deployments).
        stagings = [staging for key, staging in self._staging.items() if key[0] == deployment_id]
        for staging in stagings:
            staging.cancel()
        await asyncio.gather(*stagings, return_exceptions=True)
        for key in [key for key in self._staged if key[0] == deployment_id]:
            self._staged.pop(key).close()

    async def _converse(self, target: SshTarget, job: ReleaseJob) -> Conversation | HostResult:
        """A conversation with the host's driver, or why none could start (the host's result)."""
        transcript = new_transcript(target.host.name, job)
        problem = job_problem(job)
        if problem is not None:
            transcript.error = problem[1]
            return transcript.result(HostStatus.FAILED, problem[0])
        transcript.begin(Step.CONNECT)
        try:
            connection, process = await self._open_process(target, driver_command(job, target.host))
        except _ConnectFailed as failure:
            transcript.error = failure.message
            return transcript.result(failure.status, Step.CONNECT)
        transcript.end(StepEnd(Step.CONNECT, 0, 1, False))

        async def run_here(hook: HookCommand, reported: dict[str, str]) -> HookOutcome:
            return await self._run_here(target, job, hook, reported)

        return Conversation(job, transcript, connection, process, _where(target), run_here)

    async def _run_here(
        self, target: SshTarget, job: ReleaseJob, hook: HookCommand, reported: dict[str, str]
    ) -> HookOutcome:
        """Runs a Fabric-task hook on the controller while the driver holds."""
        # Fabric and paramiko are imported only when a spec uses them.
        from deployer.hosts.fabric_hooks import FabricHooks, hook_variables

        if self._fabric_hooks is None:
            self._fabric_hooks = FabricHooks(self._connect_slots)
        return await self._fabric_hooks.run(target, hook, hook_variables(job, target.host, reported))


def _close_opened(opening: asyncio.Future[Conversation | HostResult]) -> None:
    """Close the conversation ``opening`` yielded, if any: its staging was cancelled."""
    if not opening.cancelled() and opening.exception() is None:
        opened = opening.result()
        if isinstance(opened, Conversation):
            opened.close()
