"""One lab host: its SSH server, the sessions it runs, and the faults it can be put in.

Each :class:`LabHost` is an asyncssh listener on its own address with its own host key,
accepting only the lab's client key for the lab's user. A command runs as
``/bin/sh -c COMMAND`` in a new session (its own process group) of the lab process, with
HOME and cwd set to the host's home directory. The lab process that holds them all is
:mod:`deployer.lab.server`.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import posixpath
import shlex
import signal
import time
from collections.abc import Mapping

import asyncssh

from deployer.core.targets import Host
from deployer.lab.paths import LabPaths
from deployer.lab.plan import FaultMode
from deployer.lab.procs import live_descendants, process_table

log = logging.getLogger("deployer.lab")

SESSION_SHELL = "/bin/sh"
UNHEALTHY_VARIABLE = "DEPLOY_LAB_UNHEALTHY"
HOST_VARIABLE = "DEPLOY_LAB_HOST"
_CHUNK = 65536
_DEFAULT_PATH = "/usr/local/bin:/usr/bin:/bin"


def session_environment(
    *,
    client_env: Mapping[str, str],
    home: str,
    user: str,
    host_name: str,
    unhealthy: bool,
    path: str,
) -> dict[str, str]:
    """A session's environment: a clean base, what the client sent, then the lab's own.

    Only PATH comes from the lab process; everything else of the environment the lab
    was started in stays out, as it would on a separate machine. The client's env
    requests are honoured (asyncssh accepts them), but cannot change who or where the
    session is, nor hide or fake the host's health.
    """
    env = {"PATH": path, "LANG": "C.UTF-8"}
    env.update(client_env)
    env.update(HOME=home, USER=user, LOGNAME=user, SHELL=SESSION_SHELL)
    env[HOST_VARIABLE] = host_name
    env.pop(UNHEALTHY_VARIABLE, None)
    if unhealthy:
        env[UNHEALTHY_VARIABLE] = "1"
    return env


class Sessions:
    """The commands the lab runs, and the processes they leave behind.

    The lab is a child subreaper (:func:`~deployer.lab.procs.become_subreaper`): whatever its commands
    start stays below it, even after a double fork or ``setsid``, so :meth:`stop_all`
    finds all of it, and :meth:`reap_adopted` reaps the orphans that end up its children.
    """

    def __init__(self) -> None:
        self.tasks: set[asyncio.Future[None]] = set()
        # Children asyncio started and will reap itself; reaping one of them here would
        # steal its exit status. ``spawning`` counts starts in flight, whose pid is not known yet.
        self.children: set[int] = set()
        self.spawning = 0

    def keep(self, task: asyncio.Future[None]) -> None:
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    def reap_adopted(self) -> None:
        """Reap orphans re-parented to the lab once they exit, so they leave no zombies."""
        if self.spawning:
            return
        own = os.getpid()
        for entry in process_table().values():
            if entry.parent == own and entry.is_zombie and entry.pid not in self.children:
                with contextlib.suppress(ChildProcessError):
                    os.waitpid(entry.pid, os.WNOHANG)

    async def stop_all(self, grace: float) -> None:
        """SIGTERM everything below the lab, SIGKILL what is left after ``grace``."""
        own = os.getpid()
        for signum in (signal.SIGTERM, signal.SIGKILL):
            pids = live_descendants(own, process_table())
            if not pids:
                break
            for pid in pids:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, signum)
            deadline = time.monotonic() + grace
            while live_descendants(own, process_table()) and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
        self.reap_adopted()


class _SilentProtocol(asyncio.Protocol):
    """A hung host's listener: takes the TCP connection, then never says a word."""

    def __init__(self, transports: set[asyncio.Transport]) -> None:
        self._transports = transports
        self._transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport
        self._transports.add(transport)

    def data_received(self, data: bytes) -> None:
        pass  # swallowed: the client waits for a banner that never comes

    def connection_lost(self, exc: Exception | None) -> None:
        if self._transport is not None:
            self._transports.discard(self._transport)


class _HomeSftpServer(asyncssh.SFTPServer):
    """SFTP on the real file system, relative paths starting at the host's home."""

    def __init__(self, chan: asyncssh.SSHServerChannel[bytes], home: bytes) -> None:
        super().__init__(chan)
        self._home = home

    def map_path(self, path: bytes) -> bytes:
        return path if path.startswith(b"/") else posixpath.join(self._home, path)

    def exit(self) -> None:
        # OpenSSH's sftp-server exits 0 when its client is done, and sshd reports it;
        # OpenSSH's scp counts a session that ends without an exit status as failed.
        with contextlib.suppress(OSError, asyncssh.Error):
            self.channel.exit(0)


class _HostSshServer(asyncssh.SSHServer):
    """One connection to one host: public-key auth with the lab's key, for the lab's user."""

    def __init__(self, host: LabHost) -> None:
        self._host = host
        self._conn: asyncssh.SSHServerConnection | None = None

    def connection_made(self, conn: asyncssh.SSHServerConnection) -> None:
        self._conn = conn
        self._host.connections.add(conn)

    def connection_lost(self, exc: Exception | None) -> None:
        if self._conn is not None:
            self._host.connections.discard(self._conn)

    def begin_auth(self, username: str) -> bool:
        return True  # authentication is always required

    def public_key_auth_supported(self) -> bool:
        return True

    def validate_public_key(self, username: str, key: asyncssh.SSHKey) -> bool:
        return username == self._host.user and key.public_data == self._host.client_key.public_data


class LabHost:
    """One lab host: its listener, its open connections, its home, and its fault mode."""

    def __init__(
        self,
        host: Host,
        paths: LabPaths,
        *,
        user: str,
        host_key: asyncssh.SSHKey,
        client_key: asyncssh.SSHKey,
        sessions: Sessions,
    ) -> None:
        self.host = host
        self.user = user
        self.client_key = client_key
        self.home = paths.home(host.name)
        self.mode = FaultMode.OK
        self.connections: set[asyncssh.SSHServerConnection] = set()
        # Cleared while the host hangs: sessions start nothing and write nothing until set.
        self.awake = asyncio.Event()
        self.awake.set()
        self._marker = paths.unhealthy_marker(host.name)
        self._host_key = host_key
        self._sessions = sessions
        self._acceptor: asyncssh.SSHAcceptor | None = None
        self._silent: asyncio.AbstractServer | None = None
        self._silent_transports: set[asyncio.Transport] = set()
        self._path = os.environ.get("PATH") or _DEFAULT_PATH

    # -- listening and faults ---------------------------------------------------------

    async def listen(self) -> None:
        self._acceptor = await asyncssh.listen(
            host=self.host.address,
            port=self.host.port,
            reuse_address=True,
            server_factory=functools.partial(_HostSshServer, self),
            server_host_keys=[self._host_key],
            process_factory=self._serve_process,
            sftp_factory=functools.partial(_HomeSftpServer, home=os.fsencode(self.home)),
            allow_scp=True,
            encoding=None,
            allow_pty=False,
            agent_forwarding=False,
            x11_forwarding=False,
        )

    async def apply(self, mode: FaultMode) -> None:
        """Put the host in ``mode``, first undoing whatever fault it had."""
        if mode is self.mode:
            return
        await self._restore()
        if mode is FaultMode.DOWN:
            self._close_listener()
            self._cut_connections()
        elif mode is FaultMode.HANG:
            self._close_listener()
            loop = asyncio.get_running_loop()
            self._silent = await loop.create_server(
                functools.partial(_SilentProtocol, self._silent_transports),
                self.host.address,
                self.host.port,
                reuse_address=True,
            )
            self.awake.clear()
            for conn in self.connections:
                _set_reading(conn, reading=False)
        elif mode is FaultMode.FAIL_HOOK:
            self._marker.parent.mkdir(parents=True, exist_ok=True)
            self._marker.write_text("set by `deploy lab break --mode fail-hook`\n")
        self.mode = mode
        log.info("%s: %s", self.host.name, mode.value)

    async def _restore(self) -> None:
        if self.mode is FaultMode.DOWN:
            await self.listen()
        elif self.mode is FaultMode.HANG:
            if self._silent is not None:
                self._silent.close()
                self._silent = None
            for transport in list(self._silent_transports):
                transport.abort()
            await self.listen()
            for conn in self.connections:
                _set_reading(conn, reading=True)
            self.awake.set()
        elif self.mode is FaultMode.FAIL_HOOK:
            self._marker.unlink(missing_ok=True)
        self.mode = FaultMode.OK

    def clear_marker(self) -> None:
        self._marker.unlink(missing_ok=True)

    def close(self) -> None:
        """Stop listening and cut every connection (the lab is stopping)."""
        self._close_listener()
        if self._silent is not None:
            self._silent.close()
            self._silent = None
        for transport in list(self._silent_transports):
            transport.abort()
        self._cut_connections()

    def _close_listener(self) -> None:
        if self._acceptor is not None:
            self._acceptor.close()
            self._acceptor = None

    def _cut_connections(self) -> None:
        for conn in list(self.connections):
            conn.abort()

    # -- sessions ---------------------------------------------------------------------

    async def _serve_process(self, process: asyncssh.SSHServerProcess[bytes]) -> None:
        # The session is its own task: whatever becomes of this handler or the
        # connection, the command is served, waited for and reaped.
        session = asyncio.ensure_future(self._run_session(process))
        self._sessions.keep(session)
        await asyncio.shield(session)

    async def _run_session(self, process: asyncssh.SSHServerProcess[bytes]) -> None:
        await self.awake.wait()
        if process.subsystem is not None:  # sftp is served by asyncssh before it gets here
            process.stderr.write(f"lab: subsystem {process.subsystem!r} is not supported\n".encode())
            process.exit(1)
            return
        command = process.command
        argv = [SESSION_SHELL, "-c", command] if command is not None else [SESSION_SHELL]
        env = session_environment(
            client_env=process.env,
            home=str(self.home),
            user=self.user,
            host_name=self.host.name,
            unhealthy=self.mode is FaultMode.FAIL_HOOK,
            path=self._path,
        )
        # Our own pipes for stdout and stderr, so their read ends can be closed when
        # the channel goes away (asyncio's subprocess pipes offer no public close).
        out_read, out_write = os.pipe()
        err_read, err_write = os.pipe()
        self._sessions.spawning += 1
        try:
            child = await asyncio.create_subprocess_exec(
                *argv,
                stdin=asyncio.subprocess.PIPE,
                stdout=out_write,
                stderr=err_write,
                cwd=self.home,
                env=env,
                start_new_session=True,
            )
        except OSError as error:
            os.close(out_read)
            os.close(err_read)
            process.stderr.write(f"lab: cannot start {SESSION_SHELL}: {error}\n".encode())
            process.exit(127)
            return
        else:
            self._sessions.children.add(child.pid)
        finally:
            self._sessions.spawning -= 1
            os.close(out_write)
            os.close(err_write)
        log.debug("%s: pid %d runs %s", self.host.name, child.pid, shlex.quote(command or ""))
        out_reader, out_pipe = await _read_pipe(out_read)
        err_reader, err_pipe = await _read_pipe(err_read)

        def hang_up(_: object) -> None:
            # As sshd does when a channel closes: close the output pipes (the command's
            # next write gets SIGPIPE); stdin gets EOF from the input pump. No signal.
            out_pipe.close()
            err_pipe.close()

        channel_closed = asyncio.ensure_future(process.channel.wait_closed())
        channel_closed.add_done_callback(hang_up)
        assert child.stdin is not None
        feeding = asyncio.ensure_future(self._pump_input(process.stdin, child.stdin, child.pid))
        try:
            await asyncio.gather(
                self._pump_output(out_reader, process.stdout),
                self._pump_output(err_reader, process.stderr),
            )
            returncode = await child.wait()
            self._sessions.children.discard(child.pid)
            await self.awake.wait()
            _report_exit(process, returncode)
        finally:
            feeding.cancel()
            channel_closed.cancel()
            hang_up(None)

    async def _pump_input(
        self, source: asyncssh.SSHReader[bytes], sink: asyncio.StreamWriter, pgid: int
    ) -> None:
        try:
            while True:
                try:
                    data = await source.read(_CHUNK)
                except asyncssh.SignalReceived as received:
                    _forward_signal(pgid, received.signal)
                    continue
                except (asyncssh.BreakReceived, asyncssh.TerminalSizeChanged):
                    continue
                if not data:
                    break
                sink.write(data)
                await sink.drain()
        except (OSError, asyncssh.Error):
            pass  # the command closed its stdin, or the channel is gone: EOF either way
        finally:
            # EOF to the command, however the channel ended; the command itself runs on.
            sink.close()

    async def _pump_output(self, source: asyncio.StreamReader, sink: asyncssh.SSHWriter[bytes]) -> None:
        try:
            while data := await source.read(_CHUNK):
                await self.awake.wait()
                sink.write(data)
                await sink.drain()
        except (OSError, asyncssh.Error):
            pass  # the channel is gone; hang_up closes the pipe


async def _read_pipe(descriptor: int) -> tuple[asyncio.StreamReader, asyncio.ReadTransport]:
    """A stream over the read end of a pipe, whose transport we may close at any time."""
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=_CHUNK)
    transport, _ = await loop.connect_read_pipe(
        lambda: asyncio.StreamReaderProtocol(reader), os.fdopen(descriptor, "rb", buffering=0)
    )
    return reader, transport


def _set_reading(conn: asyncssh.SSHServerConnection, reading: bool) -> None:
    """Stop or resume reading a connection, as a frozen machine's kernel would stop serving it.

    asyncssh offers no public way to do this; its transport is the socket's. A
    connection already closing has none left and is skipped.
    """
    transport = conn._transport
    if transport is None or transport.is_closing():
        return
    if reading:
        transport.resume_reading()
    else:
        transport.pause_reading()


def _forward_signal(pgid: int, name: str) -> None:
    try:
        signum = signal.Signals[f"SIG{name}"]
    except KeyError:
        return
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signum)


def _report_exit(process: asyncssh.SSHServerProcess[bytes], returncode: int) -> None:
    """Send the command's exit status, or the signal that killed it, if anyone still listens."""
    try:
        if returncode >= 0:
            process.exit(returncode)
            return
        try:
            name = signal.Signals(-returncode).name.removeprefix("SIG")
        except ValueError:
            process.exit(128 - returncode)
            return
        process.exit_with_signal(name)
    except (OSError, asyncssh.Error):
        pass
