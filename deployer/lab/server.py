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

The hosts themselves (their SSH servers, sessions and faults) are :mod:`deployer.lab.host`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import errno
import fcntl
import json
import logging
import os
import shlex
import signal
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from deployer.core.errors import LabError
from deployer.core.targets import Host
from deployer.hosts.file_limits import raise_open_file_limit
from deployer.lab.host import LabHost, Sessions
from deployer.lab.keys import load_key, public_key_line
from deployer.lab.paths import LabPaths, unix_socket_address
from deployer.lab.plan import FaultMode, LabConfig, render_inventory, render_known_hosts
from deployer.lab.procs import become_subreaper, process_is_alive

log = logging.getLogger("deployer.lab")

SHUTDOWN_GRACE = 2.0  # seconds between SIGTERM and SIGKILL for the hosts' commands at stop
CONTROL_READ_TIMEOUT = 5.0
WATCH_INTERVAL = 1.0  # how often the lab checks that its directory and owner still exist


class LabServer:
    """All the hosts of one lab, and the control socket that changes them."""

    def __init__(self, paths: LabPaths, config: LabConfig) -> None:
        self.paths = paths
        self.config = config
        self.sessions = Sessions()
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
        raise_open_file_limit()
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
