"""The lab server: every lab host's SSH server, in one background process.

One asyncio loop serves all hosts: one asyncssh listener per host address, each
with its own host key, accepting only the lab's client key for the lab's user.
A command runs as ``/bin/sh -c COMMAND`` in a new session (its own process group)
of this process, with HOME and cwd set to the host's home directory, so every
host has a private ``~``. Like OpenSSH without a pty, a command whose client goes
away is not killed: its stdin gets EOF and its output pipes are closed (a write
then gets SIGPIPE), and it runs on. SFTP (and SCP over it) sees the real file
system, relative paths starting at the host's home, as OpenSSH's sftp-server does.

Faults (``deploy lab break``) are applied per host:

* ``down``: the listener is closed and the host's connections are cut, so a
  connect is refused; its commands keep running, as behind a network partition.
* ``hang``: a silent TCP listener takes the SSH one's place (connects complete,
  the SSH banner never comes), open connections stop being read and written, and
  sessions start nothing: every client waits until its own timeout.
* ``fail-hook``: ``~/.lab/unhealthy`` exists and new sessions get
  ``DEPLOY_LAB_UNHEALTHY=1``; a health check such as the demo's validate hook sees
  either and fails.

The process is started by :func:`deployer.lab.control.start` as
``python -m deployer.lab.server --daemon DIR``: the launcher forks, the child
becomes the daemon and tells the launcher over a pipe once every host listens
(or why it could not), and the launcher exits with that verdict. A control socket
in DIR answers ``status``, ``break`` and ``stop``. When the lab stops, everything
its hosts still run is stopped with it (SIGTERM, then SIGKILL), as a power-off
would; the lab is a child subreaper, so even commands that daemonized are found.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import errno
import fcntl
import functools
import json
import logging
import os
import posixpath
import resource
import shlex
import signal
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import asyncssh

from deployer.errors import LabError
from deployer.fleet import Host
from deployer.lab.keys import load_key, public_key_line
from deployer.lab.paths import LabPaths, unix_socket_address
from deployer.lab.plan import FaultMode, LabConfig, render_inventory, render_known_hosts
from deployer.lab.procs import become_subreaper, live_descendants, process_is_alive, process_table

log = logging.getLogger("deployer.lab")

SESSION_SHELL = "/bin/sh"
UNHEALTHY_VARIABLE = "DEPLOY_LAB_UNHEALTHY"
HOST_VARIABLE = "DEPLOY_LAB_HOST"
SHUTDOWN_GRACE = 2.0  # seconds between SIGTERM and SIGKILL for the hosts' commands at stop
CONTROL_READ_TIMEOUT = 5.0
WATCH_INTERVAL = 1.0  # how often the lab checks that its directory and owner still exist
_CHUNK = 65536
_DEFAULT_PATH = "/usr/local/bin:/usr/bin:/bin"
_WANTED_OPEN_FILES = 65536  # 100 hosts x a few channels x 3 pipes, with room to spare


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


class _Sessions:
    """The commands the lab runs, and the processes they leave behind.

    The lab is a child subreaper (:func:`become_subreaper`): whatever its commands
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
        sessions: _Sessions,
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


class LabServer:
    """All the hosts of one lab, and the control socket that changes them."""

    def __init__(self, paths: LabPaths, config: LabConfig) -> None:
        self.paths = paths
        self.config = config
        self.sessions = _Sessions()
        self.stopping = asyncio.Event()
        client_key = load_key(paths.client_key)
        self.hosts = {
            host.name: LabHost(
                host,
                paths,
                user=config.user,
                host_key=load_key(paths.host_key(host.name)),
                client_key=client_key,
                sessions=self.sessions,
            )
            for host in config.hosts
        }
        self._control: asyncio.AbstractServer | None = None
        self._changing = asyncio.Lock()  # one break/fix at a time: each awaits (re)binding

    async def start(self) -> None:
        """Every host listening, its files written, the control socket open; or LabError."""
        for lab_host in self.hosts.values():
            lab_host.home.mkdir(parents=True, exist_ok=True)
            lab_host.clear_marker()  # a new lab starts healthy
        results = await asyncio.gather(
            *(lab_host.listen() for lab_host in self.hosts.values()), return_exceptions=True
        )
        failures = [
            (lab_host.host, result)
            for lab_host, result in zip(self.hosts.values(), results, strict=True)
            if isinstance(result, BaseException)
        ]
        if failures:
            for lab_host in self.hosts.values():
                lab_host.close()
            host, error = failures[0]
            if not isinstance(error, OSError):
                raise error  # not an address problem: a bug, with its traceback
            raise LabError(_bind_failure(host, error, len(failures)))
        self._write_client_files()
        self.paths.control_socket.unlink(missing_ok=True)
        with unix_socket_address(self.paths.control_socket) as address:
            self._control = await asyncio.start_unix_server(self._answer_control, path=address)
        log.info("%d hosts listening", len(self.hosts))

    async def shutdown(self) -> None:
        if self._control is not None:
            self._control.close()
        for lab_host in self.hosts.values():
            lab_host.close()
        await self.sessions.stop_all(SHUTDOWN_GRACE)
        pending = list(self.sessions.tasks)
        if pending:
            _done, still_running = await asyncio.wait(pending, timeout=SHUTDOWN_GRACE)
            for task in still_running:
                task.cancel()
        log.info("stopped")

    def _write_client_files(self) -> None:
        hosts = self.config.hosts
        public_keys = {name: public_key_line(load_key(self.paths.host_key(name))) for name in self.hosts}
        _write_atomically(self.paths.known_hosts, render_known_hosts(hosts, public_keys))
        stop_hint = f"deploy lab down --dir {shlex.quote(str(self.paths.dir))}"
        inventory = render_inventory(
            hosts,
            identity_file=str(self.paths.client_key),
            known_hosts=str(self.paths.known_hosts),
            stop_hint=stop_hint,
        )
        _write_atomically(self.paths.inventory, inventory)

    # -- control socket ---------------------------------------------------------------

    async def _answer_control(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            line = await asyncio.wait_for(reader.readline(), CONTROL_READ_TIMEOUT)
        except (TimeoutError, OSError, ValueError):
            writer.close()
            return
        try:
            reply = await self._answer(json.loads(line))
        except (ValueError, TypeError, KeyError, LabError) as error:
            reply = {"ok": False, "error": str(error)}
        except OSError as error:  # e.g. a host's address was taken while it was down
            reply = {"ok": False, "error": f"cannot change the host: {error}"}
        writer.write(json.dumps(reply).encode() + b"\n")
        with contextlib.suppress(OSError):
            await writer.drain()
        writer.close()

    async def _answer(self, request: Any) -> dict[str, Any]:
        operation = request["op"]
        if operation == "status":
            return self._status()
        if operation == "break":
            names = [str(name) for name in request["hosts"]]
            mode = FaultMode.parse(str(request["mode"]))
            unknown = [name for name in names if name not in self.hosts]
            if unknown:
                known = ", ".join(self.hosts)
                raise LabError(f"no lab host named {', '.join(unknown)}; the lab has {known}")
            async with self._changing:
                for name in names:
                    await self.hosts[name].apply(mode)
            return self._status()
        if operation == "stop":
            self.stopping.set()
            return {"ok": True, "pid": os.getpid()}
        raise LabError(f"unknown control operation {operation!r}")

    def _status(self) -> dict[str, Any]:
        return {
            "ok": True,
            "pid": os.getpid(),
            "dir": str(self.paths.dir),
            "user": self.config.user,
            "running_commands": len(self.sessions.tasks),
            "hosts": [
                {
                    "name": lab_host.host.name,
                    "address": lab_host.host.address,
                    "port": lab_host.host.port,
                    "datacenter": lab_host.host.datacenter,
                    "mode": lab_host.mode.value,
                }
                for lab_host in self.hosts.values()
            ],
        }


def _bind_failure(host: Host, error: OSError, failure_count: int) -> str:
    where = f"{host.address}:{host.port}"
    others = f" (and {failure_count - 1} more hosts)" if failure_count > 1 else ""
    if error.errno == errno.EADDRINUSE:
        return (
            f"cannot listen on {where}{others}: the address is in use (another lab, or an sshd?); "
            "choose another --port or --base-address"
        )
    return f"cannot listen on {where}{others}: {error}"


def _write_atomically(path: Path, text: str) -> None:
    partial = path.with_name(path.name + ".partial")
    partial.write_text(text)
    os.replace(partial, path)


# -- the process ----------------------------------------------------------------------


class _Verdict:
    """How the server tells whoever launched it that it is ready, or why it is not."""

    def __init__(self, say: Callable[[str], None]) -> None:
        self._say: Callable[[str], None] | None = say

    def ready(self) -> None:
        self._tell(f"ready {os.getpid()}")

    def failed(self, message: str) -> None:
        self._tell(f"error: {message}")

    def _tell(self, line: str) -> None:
        if self._say is not None:
            say, self._say = self._say, None
            say(line)


async def _watch(server: LabServer, lock: int, owner_pid: int | None) -> None:
    """Reap adopted orphans; stop the lab when nobody could: its directory removed, its owner gone."""
    held = os.fstat(lock)
    while not server.stopping.is_set():
        await asyncio.sleep(WATCH_INTERVAL)
        server.sessions.reap_adopted()
        try:
            current = os.stat(server.paths.lock_file)
        except FileNotFoundError:
            current = None
        if current is None or (current.st_dev, current.st_ino) != (held.st_dev, held.st_ino):
            log.warning("%s was removed: stopping", server.paths.lock_file)
            server.stopping.set()
        elif owner_pid is not None and not process_is_alive(owner_pid):
            log.warning("the process %d that owns this lab is gone: stopping", owner_pid)
            server.stopping.set()


async def _run(server: LabServer, verdict: _Verdict, lock: int) -> None:
    loop = asyncio.get_running_loop()
    if sys.version_info < (3, 12):
        # One pidfd per child on the loop instead of one waiting thread per child.
        watcher = asyncio.PidfdChildWatcher()
        watcher.attach_loop(loop)
        asyncio.set_child_watcher(watcher)
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, server.stopping.set)
    loop.add_signal_handler(signal.SIGHUP, lambda: None)
    try:
        await server.start()
        verdict.ready()
        watchdog = asyncio.ensure_future(_watch(server, lock, server.config.owner_pid))
        await server.stopping.wait()
        watchdog.cancel()
    finally:
        await server.shutdown()


def serve(paths: LabPaths, config: LabConfig, verdict: _Verdict) -> int:
    """Hold the lab's lock, serve until told to stop; the exit status of the process."""
    paths.dir.mkdir(parents=True, exist_ok=True)
    lock = os.open(paths.lock_file, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(lock)
        verdict.failed(f"a lab is already running in {paths.dir}")
        return 1
    try:
        paths.pid_file.write_text(f"{os.getpid()}\n")
        _raise_open_file_limit()
        if not become_subreaper():
            log.warning("cannot become a child subreaper: daemonized commands may outlive the lab")
        server = LabServer(paths, config)
        asyncio.run(_run(server, verdict, lock))
        return 0
    except LabError as error:
        log.error("%s", error)
        verdict.failed(str(error))
        return 1
    finally:
        with contextlib.suppress(OSError):
            if paths.pid_file.read_text().strip() == str(os.getpid()):
                paths.pid_file.unlink()
        paths.control_socket.unlink(missing_ok=True)
        os.close(lock)


def _raise_open_file_limit() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = _WANTED_OPEN_FILES if hard == resource.RLIM_INFINITY else min(hard, _WANTED_OPEN_FILES)
    if soft != resource.RLIM_INFINITY and soft < wanted:
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))


def _configure_logging() -> None:
    logging.basicConfig(
        stream=sys.stderr,
        level=logging.INFO,
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
    )
    logging.getLogger("asyncssh").setLevel(logging.WARNING)


def _daemonize(paths: LabPaths, config: LabConfig) -> int:
    """Fork; the child serves as a daemon, the parent returns once the child is ready or failed."""
    read_end, write_end = os.pipe()
    if os.fork() != 0:
        os.close(write_end)
        return _await_verdict(read_end, paths)
    os.close(read_end)
    os.setsid()
    os.chdir("/")
    _redirect_stdio(paths.log)
    _configure_logging()

    def say(line: str) -> None:
        os.write(write_end, line.encode() + b"\n")
        os.close(write_end)

    code = serve(paths, config, _Verdict(say))
    logging.shutdown()
    os._exit(code)


def _await_verdict(read_end: int, paths: LabPaths) -> int:
    with os.fdopen(read_end, "rb") as pipe:
        line = pipe.read().decode(errors="replace").strip()
    if line.startswith("ready "):
        print(line, flush=True)
        return 0
    message = line.removeprefix("error: ") or (
        f"the lab process exited before it was ready; see its log {paths.log}"
    )
    print(message, file=sys.stderr, flush=True)
    return 1


def _redirect_stdio(log_path: Path) -> None:
    log_path.parent.mkdir(parents=True, exist_ok=True)
    log_fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    null_fd = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null_fd, 0)
    os.dup2(log_fd, 1)
    os.dup2(log_fd, 2)
    os.close(null_fd)
    os.close(log_fd)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m deployer.lab.server",
        description="Serve a lab fleet prepared by `deploy lab up` (normally started by it).",
    )
    parser.add_argument("dir", help="the lab directory, with lab.json and the keys in it")
    parser.add_argument("--daemon", action="store_true", help="detach; exit once the lab is ready")
    args = parser.parse_args(argv)
    paths = LabPaths.of(args.dir)
    try:
        config = LabConfig.from_json(paths.config.read_text(), str(paths.config))
    except OSError as error:
        print(f"cannot read the lab configuration: {error}", file=sys.stderr)
        return 2
    except LabError as error:
        print(error, file=sys.stderr)
        return 2
    if args.daemon:
        return _daemonize(paths, config)
    _configure_logging()
    return serve(paths, config, _Verdict(lambda line: print(line, flush=True)))


if __name__ == "__main__":
    sys.exit(main())
