"""The lab from the outside: start, find, inspect, break, fix and stop it.

Everything here talks to the one lab server process (:mod:`deployer.lab.server`)
of a lab directory: through ``lab.lock`` (held by the server for its whole life,
so "is a lab running here?" has one answer), ``lab.pid`` (checked against the
process's command line before anything is signalled) and the control socket.
The CLI (``deploy lab``), the pytest plugin and benchmarks all use this module.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import pwd
import shlex
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

from deployer.core.errors import LabError
from deployer.core.targets import Fleet, Host, SshOptions
from deployer.lab.keys import ensure_key
from deployer.lab.paths import LabPaths, unix_socket_address
from deployer.lab.plan import (
    DEFAULT_BASE_ADDRESS,
    DEFAULT_DATACENTER_COUNT,
    DEFAULT_HOST_COUNT,
    DEFAULT_PORT,
    FaultMode,
    LabConfig,
    plan_hosts,
)
from deployer.lab.procs import process_argv, process_is_alive

START_TIMEOUT = 30.0  # until every host accepts connections
STOP_TIMEOUT = 10.0  # from SIGTERM until the process must be gone (then SIGKILL)
CONTROL_TIMEOUT = 10.0
_SERVER_MODULE = "deployer.lab.server"


@dataclass(frozen=True, slots=True)
class LabHostStatus:
    host: Host
    mode: FaultMode


@dataclass(frozen=True, slots=True)
class LabStatus:
    """What a running lab says about itself."""

    dir: Path
    pid: int
    hosts: tuple[LabHostStatus, ...]
    running_commands: int

    @property
    def inventory(self) -> Path:
        return LabPaths(self.dir).inventory

    def mode_of(self, name: str) -> FaultMode:
        for entry in self.hosts:
            if entry.host.name == name:
                return entry.mode
        raise LabError(f"no lab host named {name}")

    def to_json(self) -> dict[str, Any]:
        return {
            "running": True,
            "dir": str(self.dir),
            "pid": self.pid,
            "inventory": str(self.inventory),
            "running_commands": self.running_commands,
            "hosts": [
                {
                    "name": entry.host.name,
                    "address": entry.host.address,
                    "port": entry.host.port,
                    "datacenter": entry.host.datacenter,
                    "user": entry.host.user,
                    "state": entry.mode.value,
                }
                for entry in self.hosts
            ],
        }


class LabFleet:
    """A running lab, as the code that started (or found) it sees it.

    A context manager: leaving the block stops the lab. ``hosts`` are
    :class:`deployer.core.targets.Host` values exactly as ``inventory_path`` lists them.
    """

    __slots__ = ("hosts", "paths", "pid")

    def __init__(self, paths: LabPaths, pid: int, hosts: Sequence[Host]) -> None:
        self.paths = paths
        self.pid = pid
        self.hosts: tuple[Host, ...] = tuple(hosts)

    @property
    def dir(self) -> Path:
        return self.paths.dir

    @property
    def inventory_path(self) -> Path:
        return self.paths.inventory

    @property
    def client_key_path(self) -> Path:
        return self.paths.client_key

    @property
    def known_hosts_path(self) -> Path:
        return self.paths.known_hosts

    @property
    def user(self) -> str:
        return self.hosts[0].user or _current_user()

    @property
    def ssh_options(self) -> SshOptions:
        """The inventory's ``ssh:`` section as the deployer reads it."""
        return SshOptions(
            identity_file=str(self.paths.client_key),
            known_hosts=str(self.paths.known_hosts),
            host_key_policy="strict",
        )

    def as_fleet(self) -> Fleet:
        return Fleet(hosts=self.hosts, ssh=self.ssh_options, source=str(self.inventory_path))

    def host(self, name: str) -> Host:
        for host in self.hosts:
            if host.name == name:
                return host
        raise LabError(f"no lab host named {name}; the lab has {', '.join(h.name for h in self.hosts)}")

    def home(self, name: str) -> Path:
        """The host's home directory, seen from here: files in it are "on the host"."""
        return self.paths.home(self.host(name).name)

    def break_host(self, name: str, mode: FaultMode | str) -> None:
        break_hosts(self.paths.dir, [name], mode)

    def fix(self, name: str) -> None:
        break_hosts(self.paths.dir, [name], FaultMode.OK)

    def fix_all(self) -> None:
        break_hosts(self.paths.dir, [host.name for host in self.hosts], FaultMode.OK)

    def status(self) -> LabStatus:
        return lab_status(self.paths.dir)

    def is_running(self) -> bool:
        return running_pid(self.paths) == self.pid

    def stop(self) -> None:
        """Stop the lab process; a no-op once it is stopped."""
        stop_lab(self.paths.dir)

    def __enter__(self) -> LabFleet:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()


# -- the public verbs ---------------------------------------------------------------------


def start_lab(
    directory: str | os.PathLike[str],
    hosts: int = DEFAULT_HOST_COUNT,
    datacenters: int | None = None,
    *,
    port: int = DEFAULT_PORT,
    base_address: str = DEFAULT_BASE_ADDRESS,
    timeout: float = START_TIMEOUT,
    stop_with: int | None = None,
) -> LabFleet:
    """Start a lab of ``hosts`` SSH hosts in one background process; return once all accept.

    ``datacenters`` defaults to 3, or one per host for fewer hosts. Keys and host
    homes already in ``directory`` are kept. With ``stop_with`` (a pid, e.g. a test
    run's own), the lab also stops by itself once that process is gone. Raises :class:`LabError`
    when a lab already runs there, an address is taken, or it is not ready in time.
    """
    paths = LabPaths.of(directory)
    if _lock_is_held(paths):
        pid = _pid_in_file(paths)
        running = f" (pid {pid})" if pid is not None else ""
        raise LabError(
            f"a lab is already running in {paths.dir}{running}; "
            f"stop it first with: deploy lab down --dir {shlex.quote(str(paths.dir))}"
        )
    if datacenters is None:
        datacenters = min(DEFAULT_DATACENTER_COUNT, max(hosts, 1))
    planned = plan_hosts(hosts, datacenters, base_address=base_address, port=port, user=_current_user())
    _prepare(paths, LabConfig(hosts=planned, user=_current_user(), owner_pid=stop_with))
    pid = _launch(paths, timeout)
    lab = LabFleet(paths, pid, planned)
    try:
        _wait_until_accepting(planned, deadline=time.monotonic() + timeout)
    except BaseException:
        stop_lab(paths.dir)
        raise
    return lab


def attach_lab(directory: str | os.PathLike[str]) -> LabFleet:
    """The lab running in ``directory``; :class:`LabError` when none is."""
    status = lab_status(directory)
    return LabFleet(LabPaths(status.dir), status.pid, [entry.host for entry in status.hosts])


def lab_status(directory: str | os.PathLike[str]) -> LabStatus:
    paths = LabPaths.of(directory)
    _require_running(paths)
    reply = _request(paths, {"op": "status"})
    return _status_from_reply(paths, reply)


def break_hosts(directory: str | os.PathLike[str], names: Iterable[str], mode: FaultMode | str) -> LabStatus:
    """Put each named host in ``mode`` (``FaultMode.OK`` fixes it); the lab's status after."""
    paths = LabPaths.of(directory)
    fault = mode if isinstance(mode, FaultMode) else FaultMode.parse(mode)
    chosen = list(names)
    if not chosen:
        raise LabError("name at least one lab host")
    _require_running(paths)
    reply = _request(paths, {"op": "break", "hosts": chosen, "mode": fault.value})
    return _status_from_reply(paths, reply)


def stop_lab(directory: str | os.PathLike[str], timeout: float = STOP_TIMEOUT) -> int | None:
    """Stop the lab process of ``directory``: the pid it recorded, once verified to be it.

    Returns the pid stopped, or None when no lab was running (a stale pid file is
    removed then). Never signals a process that is not this directory's lab server.
    """
    paths = LabPaths.of(directory)
    pid = running_pid(paths)
    if pid is None:
        _remove_stale_files(paths)
        return None
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    if not _wait_until_stopped(paths, pid, time.monotonic() + timeout):
        if _is_lab_process(pid, paths):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        if not _wait_until_stopped(paths, pid, time.monotonic() + 5.0):
            raise LabError(f"the lab process {pid} did not stop; see {paths.log}")
    _remove_stale_files(paths)
    return pid


def running_pid(paths: LabPaths) -> int | None:
    """The pid of the lab server running for ``paths``, or None when none is.

    "Running" means the lock is held *and* the pid file names a live process whose
    command line is this directory's lab server, so a recycled pid is never taken
    for the lab.
    """
    if not _lock_is_held(paths):
        return None
    pid = _pid_in_file(paths)
    if pid is None or not _is_lab_process(pid, paths):
        # The server writes its pid right after taking the lock: give it a moment.
        time.sleep(0.2)
        pid = _pid_in_file(paths)
        if pid is None or not _is_lab_process(pid, paths):
            raise LabError(
                f"{paths.lock_file} is held, but {paths.pid_file} does not name a lab process; "
                "find the process holding it (fuser) and stop it by hand"
            )
    return pid


# -- the steps behind them ----------------------------------------------------------------


def _current_user() -> str:
    return pwd.getpwuid(os.getuid()).pw_name


def _prepare(paths: LabPaths, config: LabConfig) -> None:
    """Keys (kept if present), host homes, and ``lab.json`` for the server to read."""
    try:
        paths.dir.mkdir(parents=True, exist_ok=True)
        ensure_key(paths.client_key, comment=f"deploy-lab-client@{paths.dir}")
        for host in config.hosts:
            ensure_key(paths.host_key(host.name), comment=f"{host.name}@deploy-lab")
            paths.home(host.name).mkdir(parents=True, exist_ok=True)
        paths.config.write_text(config.to_json())
    except OSError as error:
        raise LabError(f"cannot prepare the lab directory {paths.dir}: {error}") from None


def _launch(paths: LabPaths, timeout: float) -> int:
    """Run the server's launcher; it returns once the daemon is ready, with its pid."""
    command = [sys.executable, "-m", _SERVER_MODULE, "--daemon", str(paths.dir)]
    try:
        finished = subprocess.run(
            command, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=timeout
        )
    except subprocess.TimeoutExpired:
        stop_lab(paths.dir)
        raise LabError(f"the lab was not ready within {timeout:g}s; see {paths.log}") from None
    if finished.returncode != 0:
        reason = finished.stderr.strip() or f"the lab process failed; see {paths.log}"
        raise LabError(reason)
    verdict = finished.stdout.strip().split()
    if len(verdict) != 2 or verdict[0] != "ready" or not verdict[1].isdigit():
        raise LabError(f"the lab process said {finished.stdout.strip()!r}; see {paths.log}")
    return int(verdict[1])


def _wait_until_accepting(hosts: Sequence[Host], deadline: float) -> None:
    """Bounded wait until every host answers a TCP connect with an SSH banner."""
    for host in hosts:
        while True:
            try:
                with socket.create_connection((host.address, host.port), timeout=2.0) as sock:
                    if sock.recv(4).startswith(b"SSH-"):
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise LabError(f"lab host {host.name} ({host.address}:{host.port}) does not answer")
            time.sleep(0.05)


def _wait_until_stopped(paths: LabPaths, pid: int, deadline: float) -> bool:
    while time.monotonic() < deadline:
        if not process_is_alive(pid) and not _lock_is_held(paths):
            return True
        time.sleep(0.05)
    return False


def _require_running(paths: LabPaths) -> int:
    pid = running_pid(paths)
    if pid is None:
        raise LabError(
            f"no lab is running in {paths.dir}; start one with: "
            f"deploy lab up --dir {shlex.quote(str(paths.dir))}"
        )
    return pid


def _request(paths: LabPaths, payload: dict[str, Any]) -> dict[str, Any]:
    """One JSON request on the control socket, one JSON reply; LabError for an error reply."""
    try:
        with (
            unix_socket_address(paths.control_socket) as address,
            socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock,
        ):
            sock.settimeout(CONTROL_TIMEOUT)
            sock.connect(address)
            sock.sendall(json.dumps(payload).encode() + b"\n")
            reply = b"".join(_read_until_newline(sock))
    except OSError as error:
        raise LabError(f"the lab in {paths.dir} does not answer on its control socket: {error}") from None
    try:
        answer: dict[str, Any] = json.loads(reply)
    except ValueError:
        raise LabError(f"the lab in {paths.dir} gave an unreadable answer; see {paths.log}") from None
    if not answer.get("ok"):
        raise LabError(str(answer.get("error", "the lab refused the request")))
    return answer


def _read_until_newline(sock: socket.socket) -> Iterator[bytes]:
    while True:
        chunk = sock.recv(65536)
        if not chunk:
            return
        yield chunk
        if chunk.endswith(b"\n"):
            return


def _status_from_reply(paths: LabPaths, reply: dict[str, Any]) -> LabStatus:
    user = str(reply["user"])
    hosts = tuple(
        LabHostStatus(
            host=Host(
                name=str(item["name"]),
                address=str(item["address"]),
                port=int(item["port"]),
                datacenter=str(item["datacenter"]),
                user=user,
            ),
            mode=FaultMode(item["mode"]),
        )
        for item in reply["hosts"]
    )
    return LabStatus(
        dir=paths.dir,
        pid=int(reply["pid"]),
        hosts=hosts,
        running_commands=int(reply["running_commands"]),
    )


def _lock_is_held(paths: LabPaths) -> bool:
    try:
        descriptor = os.open(paths.lock_file, os.O_RDWR)
    except FileNotFoundError:
        return False
    except OSError as error:
        raise LabError(f"cannot open {paths.lock_file}: {error}") from None
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(descriptor)  # closing drops the lock, if we took it
    return False


def _pid_in_file(paths: LabPaths) -> int | None:
    try:
        text = paths.pid_file.read_text().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


def _is_lab_process(pid: int, paths: LabPaths) -> bool:
    """Whether ``pid`` is alive and runs this directory's lab server (not a recycled pid)."""
    if not process_is_alive(pid):
        return False
    argv = process_argv(pid)
    return os.fsencode(_SERVER_MODULE) in argv and os.fsencode(str(paths.dir)) in argv


def _remove_stale_files(paths: LabPaths) -> None:
    """The pid file and socket of a lab that is no longer running."""
    if not _lock_is_held(paths):
        paths.pid_file.unlink(missing_ok=True)
        paths.control_socket.unlink(missing_ok=True)
