"""A fleet of real OpenSSH hosts on loopback addresses, for tests and benchmarks.

Each host is one ``sshd`` listening on its own address of a 127.X.Y.0/24 block
(``127.0.10.1``, ``127.0.10.2``, ... port 2222), started under
``unshare --mount --propagation private`` with a per-host directory bind-mounted over
``/srv``: every session of that sshd sees its own ``/srv``, and the controller reads the
same files through :meth:`SshdFleet.host_root`. ``/root`` is private and empty in the
same way, like a fresh server's (the controller's own ``~/.bashrc``, which bash runs for
every SSH command, would otherwise cost each command a pyenv start-up).

Host names are ``h01``..``hNN``; datacenters ``dc1``..``dcN`` take contiguous runs of
hosts (12 hosts over 3 datacenters: h01-h04 in dc1, h05-h08 in dc2, h09-h12 in dc3), so
inventory order is *not* already striped and a planner has to do the striping itself.

Faults a test can inject:

* :meth:`SshdFleet.stop` / :meth:`SshdFleet.start`: the host is down (connection
  refused, open sessions cut) and comes back with its ``/srv`` intact, like a reboot.
* :meth:`SshdFleet.freeze` / :meth:`SshdFleet.thaw`: SIGSTOP/SIGCONT the sshd and its
  sessions; the kernel still completes TCP handshakes, so a client hangs in the banner
  exchange until its own timeout.
* :meth:`SshdFleet.fail_hook`: creates ``/srv/.faults/<step>`` on that host. Test specs'
  hooks opt in by checking it, e.g. ``test ! -e /srv/.faults/validate``
  (:func:`hook_fault_check` writes that line).
* :meth:`SshdFleet.rotate_host_key`: restarts the host with a new host key that the
  fleet's ``known_hosts`` does not list, so strict checking must refuse it.
* :meth:`SshdFleet.certify_host_key`: restarts the host offering its key with a host
  certificate signed by a given CA (``HostCertificate``), for ``@cert-authority`` lines.

A fleet behind a bastion (``bastion=True``): one more sshd, :attr:`SshdFleet.bastion`
(named ``bastion``, on the block's next address), is the jump host, and the hosts are
known by names only the bastion can resolve (``h01.internal``: its own ``/etc/hosts``,
bind-mounted in its mount namespace), as on a private network; the controller cannot
resolve them, so it reaches them only through the bastion. The bastion allows TCP
forwarding and the hosts do not. The inventory and :attr:`SshdFleet.ssh_options` say
``proxy_jump``; ``known_hosts`` lists the hosts under those names.

Fleets made by the fixtures are healed after every test (:meth:`SshdFleet.reset`:
thaw, start, restore host keys, drop host certificates, clear fault files); files written to ``/srv`` stay.

A host's processes are told apart from everything else on the machine by their mount
namespace: stopping, freezing and teardown act on exactly the processes that live in
the namespace the fleet created (the sshd it started, the sessions that sshd forked and
the commands :meth:`SshdFleet.run` entered into it), and never on the caller's own.

Outside pytest (``bench/fanout.py``)::

    with start_sshd_fleet(count=100, datacenters=4) as fleet:
        ...  # fleet.inventory_path, fleet.hosts
"""

from __future__ import annotations

import contextlib
import os
import resource
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from types import TracebackType
from typing import Protocol

import pytest
import yaml

from deployer.core.targets import Fleet, Host, SshOptions

PORT = 2222
USER = "root"
FAULTS_DIR_ON_HOST = "/srv/.faults"
READY_TIMEOUT = 10.0
STOP_TIMEOUT = 5.0
MAX_HOSTS = 254  # one /24 block: 127.X.Y.1 .. 127.X.Y.254

_FAULTS_DIR_NAME = ".faults"
_FIRST_BLOCK = (0, 10)  # 127.0.10.0/24, then 127.0.11.0/24, ...
_TOOLS = ("sshd", "ssh", "ssh-keygen", "unshare", "nsenter", "setpriv", "mount")
_SBIN_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
# Inside the new namespace: bind the host's directories over /srv and /root, then become sshd.
# A bastion also gets its own /etc/hosts ($5): the names of the hosts behind it.
_LAUNCH_SCRIPT = (
    'mount --bind "$1" /srv && mount --bind "$2" /root && '
    '{ [ -z "$5" ] || mount --bind "$5" /etc/hosts; } && exec "$3" -D -e -f "$4"'
)
BASTION_NAME = "bastion"
PRIVATE_SUFFIX = ".internal"  # hosts behind a bastion are known by these names only there


class SshdFleetError(RuntimeError):
    """The test fleet could not do what it was asked (a broken sshd, a misused fleet)."""


class OpenSshUnavailable(SshdFleetError):
    """This machine cannot run the fleet (not root, no sshd, no unshare); the fixtures skip."""


def openssh_unavailable_reason() -> str | None:
    """Why the fleet cannot run here, or ``None`` when it can."""
    if not sys.platform.startswith("linux"):
        return "the OpenSSH test fleet needs Linux mount namespaces"
    if os.geteuid() != 0:
        return "the OpenSSH test fleet needs root (sshd, unshare and mount)"
    missing = [tool for tool in _TOOLS if _which(tool) is None]
    if missing:
        return f"the OpenSSH test fleet needs {', '.join(missing)} (run .ci/install-system.sh)"
    if not Path("/srv").is_dir():
        return "the OpenSSH test fleet needs a /srv directory to bind-mount over"
    return None


def hook_fault_check(step: str) -> str:
    """The shell line a test spec's hook starts with so that :meth:`SshdFleet.fail_hook` works.

    >>> hook_fault_check("validate")
    'test ! -e /srv/.faults/validate'
    """
    return f"test ! -e {shlex.quote(f'{FAULTS_DIR_ON_HOST}/{_checked_step(step)}')}"


def datacenter_sizes(count: int, datacenters: int) -> list[int]:
    """How many hosts each datacenter gets: as even as possible, the first ones take the rest.

    >>> datacenter_sizes(12, 3)
    [4, 4, 4]
    >>> datacenter_sizes(10, 3)
    [4, 3, 3]
    """
    share, rest = divmod(count, datacenters)
    return [share + (1 if index < rest else 0) for index in range(datacenters)]


def plan_hosts(prefix: str, count: int, datacenters: int, port: int = PORT) -> list[Host]:
    """Hosts ``h01``.. on ``prefix.1``.., each datacenter a contiguous run of them."""
    if not 1 <= count <= MAX_HOSTS:
        raise SshdFleetError(f"a fleet has 1 to {MAX_HOSTS} hosts, not {count}")
    if not 1 <= datacenters <= count:
        raise SshdFleetError(f"{count} hosts cannot fill {datacenters} datacenters")
    width = max(2, len(str(count)))
    hosts: list[Host] = []
    for dc_index, size in enumerate(datacenter_sizes(count, datacenters)):
        for _ in range(size):
            number = len(hosts) + 1
            hosts.append(
                Host(
                    name=f"h{number:0{width}d}",
                    address=f"{prefix}.{number}",
                    datacenter=f"dc{dc_index + 1}",
                    port=port,
                )
            )
    return hosts


@dataclass(slots=True)
class _HostState:
    """One host's files and, while it runs, its sshd and mount namespace."""

    host: Host
    directory: Path
    listen_address: str = ""  # the host's IP (its address may be a name only a bastion resolves)
    etc_hosts: Path | None = None  # bind-mounted over /etc/hosts (the bastion's)
    forwarding: bool = True  # AllowTcpForwarding
    process: subprocess.Popen[bytes] | None = None
    namespace: str | None = None
    is_frozen: bool = False

    @property
    def root(self) -> Path:
        return self.directory / "srv"

    @property
    def home(self) -> Path:
        return self.directory / "root"

    @property
    def config(self) -> Path:
        return self.directory / "sshd_config"

    @property
    def host_key(self) -> Path:
        return self.directory / "host_key"

    @property
    def original_host_key(self) -> Path:
        return self.directory / "host_key.original"

    @property
    def certificate(self) -> Path:
        return self.directory / "host_key-cert.pub"

    @property
    def log(self) -> Path:
        return self.directory / "sshd.log"

    @property
    def is_running(self) -> bool:
        return self.process is not None


class SshdFleet:
    """N running OpenSSH hosts with private ``/srv`` directories, and the faults to break them.

    Make one with :func:`start_sshd_fleet` or the pytest fixtures; closing it kills every
    process it started and removes the directory it created.
    """

    def __init__(
        self,
        *,
        base_dir: Path,
        hosts: Sequence[Host],
        reservation: socket.socket,
        owns_base_dir: bool,
        bastion: Host | None = None,
        log_level: str = "INFO",
    ) -> None:
        self.base_dir = base_dir
        self.client_key = base_dir / "client_key"
        self.known_hosts = base_dir / "known_hosts"
        self.inventory_path = base_dir / "inventory.yml"
        self.bastion = bastion
        self.hosts: list[Host] = list(hosts)
        if bastion is not None:
            self.hosts = [replace(host, address=host.name + PRIVATE_SUFFIX) for host in hosts]
        self.heals_between_tests = True
        self._authorized_keys = base_dir / "authorized_keys"
        self._log_level = log_level  # sshd's LogLevel (DEBUG1 logs every request a client makes)
        self._states = {
            host.name: _HostState(
                host,
                base_dir / "hosts" / host.name,
                listen_address=listen.address,
                forwarding=bastion is None,
            )
            for host, listen in zip(self.hosts, hosts, strict=True)
        }
        if bastion is not None:
            etc_hosts = base_dir / "bastion_etc_hosts"
            self._states[bastion.name] = _HostState(
                bastion, base_dir / "hosts" / bastion.name, bastion.address, etc_hosts=etc_hosts
            )
        self._reservation: socket.socket | None = reservation
        self._owns_base_dir = owns_base_dir
        self._own_namespace = _namespace_of(os.getpid())

    # -- what tests read ---------------------------------------------------------------

    @property
    def is_closed(self) -> bool:
        return self._reservation is None

    @property
    def proxy_jump(self) -> str | None:
        """The bastion as ``proxy_jump`` says it (``root@127.0.10.4:2222``), or None without one."""
        bastion = self.bastion
        return None if bastion is None else f"{USER}@{bastion.address}:{bastion.port}"

    @property
    def ssh_options(self) -> SshOptions:
        """The inventory's ``ssh:`` section as the deployer sees it."""
        return SshOptions(
            user=USER,
            identity_file=str(self.client_key),
            known_hosts=str(self.known_hosts),
            proxy_jump=self.proxy_jump,
        )

    def as_fleet(self) -> Fleet:
        """The fleet as :mod:`deployer.core.targets` values, as if read from :attr:`inventory_path`."""
        return Fleet(hosts=tuple(self.hosts), ssh=self.ssh_options, source=str(self.inventory_path))

    def host(self, name: str) -> Host:
        return self._state(name).host

    def host_root(self, name: str) -> Path:
        """The host's ``/srv``, seen from the controller: files here are "on the host"."""
        return self._state(name).root

    def host_home(self, name: str) -> Path:
        """The host's ``/root`` (its sessions' home), seen from the controller; starts empty."""
        return self._state(name).home

    def sshd_log(self, name: str) -> Path:
        return self._state(name).log

    def sshd_pid(self, name: str) -> int | None:
        """The pid of the host's sshd, or ``None`` while it is stopped."""
        process = self._state(name).process
        return None if process is None else process.pid

    def namespace(self, name: str) -> str | None:
        """The host's mount namespace (``mnt:[inode]``), or ``None`` while it is stopped."""
        return self._state(name).namespace

    def host_pids(self, name: str) -> list[int]:
        """Every live process of the host: its sshd, sessions, and commands run in it."""
        namespace = self._state(name).namespace
        return [] if namespace is None else _pids_by_namespace().get(namespace, [])

    def ssh_argv(self, name: str, command: str, *, connect_timeout: float = 5.0) -> list[str]:
        """The real OpenSSH client's argv for running ``command`` on the host, checked strictly."""
        host = self.host(name)
        options = [
            "-F",
            "/dev/null",
            "-i",
            str(self.client_key),
            "-o",
            f"UserKnownHostsFile={self.known_hosts}",
            "-o",
            "StrictHostKeyChecking=yes",
            "-o",
            "BatchMode=yes",
            "-o",
            f"ConnectTimeout={connect_timeout:g}",
        ]
        through: list[str] = []
        if self.bastion is not None and name != self.bastion.name:
            bastion = self.bastion
            jump = ["ssh", *options, "-p", str(bastion.port), "-W", "%h:%p", f"{USER}@{bastion.address}"]
            through = ["-o", "ProxyCommand=" + shlex.join(jump)]
        return ["ssh", *options, *through, "-p", str(host.port), f"{USER}@{host.address}", command]

    def run(
        self, name: str, command: str, *, timeout: float = 10.0, check: bool = False
    ) -> subprocess.CompletedProcess[str]:
        """Run a shell command inside the host's mount namespace (no SSH involved).

        Works on a frozen host too; a stopped host has no namespace to enter.
        """
        state = self._running_state(name)
        assert state.process is not None
        return subprocess.run(
            ["nsenter", "--mount", "--target", str(state.process.pid), "--", "sh", "-c", command],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=check,
            stdin=subprocess.DEVNULL,
        )

    # -- faults --------------------------------------------------------------------------

    def stop(self, name: str) -> None:
        """Kill the host's sshd and every session it has: new connections are refused."""
        self._stop(self._state(name))

    def start(self, name: str) -> None:
        """Bring a stopped host back (its ``/srv`` as it was) and wait until it answers."""
        state = self._state(name)
        if not state.is_running:
            self._launch_and_wait([state])

    def freeze(self, name: str) -> None:
        """SIGSTOP the host's sshd and sessions: connections hang until :meth:`thaw`."""
        state = self._running_state(name)
        assert state.namespace is not None
        state.is_frozen = True
        self._signal_namespace(state, signal.SIGSTOP)

    def thaw(self, name: str) -> None:
        state = self._state(name)
        if state.is_frozen and state.namespace is not None:
            self._signal_namespace(state, signal.SIGCONT)
        state.is_frozen = False

    def cut_sessions(self, name: str) -> list[int]:
        """SIGKILL the host's per-connection sshd processes: every open connection drops at once.

        The listening sshd stays (new connections are taken), and so do the commands the
        sessions ran: like a network cut, not a reboot. The pids killed.
        """
        state = self._running_state(name)
        assert state.namespace is not None and state.process is not None
        killed = []
        for pid in _pids_by_namespace().get(state.namespace, []):
            if pid == state.process.pid:
                continue
            try:
                command = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0]
            except OSError:
                continue
            if command.startswith(b"sshd:"):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
                    killed.append(pid)
        return killed

    def fail_hook(self, name: str, step: str) -> None:
        """Make the hook of ``step`` fail on this host (it must check :func:`hook_fault_check`)."""
        faults = self._state(name).root / _FAULTS_DIR_NAME
        faults.mkdir(exist_ok=True)
        (faults / _checked_step(step)).touch()

    def clear_faults(self) -> None:
        """Remove every host's fault files."""
        for state in self._states.values():
            shutil.rmtree(state.root / _FAULTS_DIR_NAME, ignore_errors=True)

    def rotate_host_key(self, name: str) -> str:
        """Restart the host with a new host key that :attr:`known_hosts` lacks; return its line."""
        state = self._state(name)
        self._stop(state)
        if not state.original_host_key.exists():
            state.host_key.rename(state.original_host_key)
            _pub(state.host_key).rename(_pub(state.original_host_key))
        else:
            state.host_key.unlink()
            _pub(state.host_key).unlink()
        _generate_key(state.host_key)
        self._launch_and_wait([state])
        return _pub(state.host_key).read_text().strip()

    def certify_host_key(self, name: str, ca_key: Path, principals: str | None = None) -> Path:
        """Restart the host offering a host certificate for its key, signed by ``ca_key``
        (a private key file) for ``principals`` (default: the host's address); its path."""
        state = self._state(name)
        principal = principals or state.host.address
        public_key = str(_pub(state.host_key))
        subprocess.run(
            ["ssh-keygen", "-q", "-s", str(ca_key), "-I", f"{name}-test", "-h", "-n", principal, public_key],
            check=True,
            capture_output=True,
            timeout=10,
            stdin=subprocess.DEVNULL,
        )
        self._stop(state)
        state.config.write_text(_sshd_config(state, self._authorized_keys, self._log_level))
        self._launch_and_wait([state])
        return state.certificate

    def reset(self) -> None:
        """Heal every fault: thaw, restore original host keys, start stopped hosts, clear faults.

        Cheap when nothing is broken; files written to ``/srv`` stay.
        """
        self._require_open()
        to_launch: list[_HostState] = []
        for state in self._states.values():
            self.thaw(state.host.name)
            if state.certificate.exists():
                self._stop(state)
                state.certificate.unlink()
                state.config.write_text(_sshd_config(state, self._authorized_keys, self._log_level))
            if state.original_host_key.exists():
                self._stop(state)
                state.original_host_key.replace(state.host_key)
                _pub(state.original_host_key).replace(_pub(state.host_key))
            if not state.is_running:
                to_launch.append(state)
        if to_launch:
            self._launch_and_wait(to_launch)
        self.clear_faults()

    # -- lifetime ------------------------------------------------------------------------

    def close(self) -> None:
        """Kill every process the fleet started and remove its directory (when it made it)."""
        if self._reservation is None:
            return
        states = list(self._states.values())
        try:
            self._kill(states)
        finally:
            for state in states:
                self._reap(state)
            self._reservation.close()
            self._reservation = None
            if self._owns_base_dir:
                shutil.rmtree(self.base_dir, ignore_errors=True)

    def __enter__(self) -> SshdFleet:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    # -- the shell -------------------------------------------------------------------------

    def _state(self, name: str) -> _HostState:
        self._require_open()
        try:
            return self._states[name]
        except KeyError:
            raise SshdFleetError(f"the fleet has no host {name!r}") from None

    def _running_state(self, name: str) -> _HostState:
        state = self._state(name)
        if not state.is_running:
            raise SshdFleetError(f"host {name} is stopped")
        return state

    def _require_open(self) -> None:
        if self._reservation is None:
            raise SshdFleetError("the sshd fleet is closed")

    def _write_files(self) -> None:
        """Keys, known_hosts, sshd configs and the inventory."""
        _generate_key(self.client_key)
        self._authorized_keys.write_text(_pub(self.client_key).read_text())
        known_hosts: list[str] = []
        for state in self._states.values():
            state.root.mkdir(parents=True, exist_ok=True)
            state.home.mkdir(mode=0o700, exist_ok=True)
            _generate_key(state.host_key)
            state.config.write_text(_sshd_config(state, self._authorized_keys, self._log_level))
            key_type, key_data, *_ = _pub(state.host_key).read_text().split()
            known_hosts.append(f"[{state.host.address}]:{state.host.port} {key_type} {key_data}\n")
            if state.etc_hosts is not None:
                names = [f"{other.listen_address} {other.host.address}\n" for other in self._states.values()]
                state.etc_hosts.write_text("127.0.0.1 localhost\n" + "".join(names))
        self.known_hosts.write_text("".join(known_hosts))
        ssh: dict[str, str] = {
            "user": USER,
            "identity_file": str(self.client_key),
            "known_hosts": str(self.known_hosts),
        }
        if self.proxy_jump is not None:
            ssh["proxy_jump"] = self.proxy_jump
        inventory = {
            "ssh": ssh,
            "hosts": [
                {
                    "name": host.name,
                    "address": host.address,
                    "port": host.port,
                    "datacenter": host.datacenter,
                }
                for host in self.hosts
            ],
        }
        self.inventory_path.write_text(yaml.safe_dump(inventory, sort_keys=False))

    def _launch_and_wait(self, states: Sequence[_HostState]) -> None:
        """Start the hosts' sshds together, then wait (bounded) until each sends its banner."""
        for state in states:
            self._launch(state)
        deadline = time.monotonic() + READY_TIMEOUT
        for state in states:
            self._await_banner(state, deadline)
            assert state.process is not None
            namespace = _namespace_of(state.process.pid)
            if namespace is None or namespace == self._own_namespace:
                raise SshdFleetError(f"host {state.host.name}: sshd is not in a namespace of its own")
            state.namespace = namespace

    def _launch(self, state: _HostState) -> None:
        # unshare, setpriv and sh each exec the next, so the pid we get is the sshd's.
        # If this process dies without closing the fleet (SIGKILL, a hard timeout), the
        # kernel kills the sshd too; the death signal follows the *thread* that started
        # it, so it is only asked for from the main thread.
        orphan_guard = (
            ["setpriv", "--pdeathsig", "KILL"]
            if threading.current_thread() is threading.main_thread()
            else []
        )
        with state.log.open("ab") as log:
            state.process = subprocess.Popen(
                [
                    "unshare",
                    "--mount",
                    "--propagation",
                    "private",
                    "--",
                    *orphan_guard,
                    "sh",
                    "-c",
                    _LAUNCH_SCRIPT,
                    "sh",
                    str(state.root),
                    str(state.home),
                    _which_or_fail("sshd"),
                    str(state.config),
                    str(state.etc_hosts or ""),
                ],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                start_new_session=True,
                env={"PATH": _SBIN_PATH, "LANG": "C.UTF-8"},
            )
        state.namespace = None
        state.is_frozen = False

    def _await_banner(self, state: _HostState, deadline: float) -> None:
        host, process = state.host, state.process
        assert process is not None
        while True:
            if process.poll() is not None:
                self._reap(state)
                raise SshdFleetError(
                    f"host {host.name}: sshd exited with status {process.returncode}: {_tail(state.log)}"
                )
            if _answers_ssh_banner(state.listen_address, host.port):
                return
            if time.monotonic() > deadline:
                namespace = _namespace_of(process.pid)
                if namespace != self._own_namespace:
                    state.namespace = namespace
                self._stop(state)
                raise SshdFleetError(
                    f"host {host.name}: no SSH banner on {state.listen_address}:{host.port} "
                    f"within {READY_TIMEOUT:g}s: {_tail(state.log)}"
                )
            time.sleep(0.02)

    def _stop(self, state: _HostState) -> None:
        try:
            self._kill([state])
        finally:
            self._reap(state)

    def _kill(self, states: Sequence[_HostState]) -> None:
        """SIGKILL the hosts' processes, each sshd first so it forks no new session meanwhile.

        Sessions forked between a scan and the kill are caught by scanning again, until
        the hosts' namespaces are empty (bounded by ``STOP_TIMEOUT``).
        """
        namespaces = {
            state.namespace
            for state in states
            if state.namespace is not None and state.namespace != self._own_namespace
        }
        for state in states:
            if state.process is not None and state.process.poll() is None:
                state.process.kill()
        deadline = time.monotonic() + STOP_TIMEOUT
        while True:
            by_namespace = _pids_by_namespace()
            pids = [pid for namespace in namespaces for pid in by_namespace.get(namespace, [])]
            if not pids:
                return
            for pid in pids:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            if time.monotonic() > deadline:
                names = ", ".join(state.host.name for state in states)
                raise SshdFleetError(f"processes {pids} of {names} survived SIGKILL for {STOP_TIMEOUT:g}s")
            time.sleep(0.01)

    def _reap(self, state: _HostState) -> None:
        if state.process is not None:
            if state.process.poll() is None:
                state.process.kill()
            state.process.wait(timeout=STOP_TIMEOUT)
        state.process = None
        state.namespace = None
        state.is_frozen = False

    def _signal_namespace(self, state: _HostState, signum: signal.Signals) -> None:
        assert state.namespace is not None and state.namespace != self._own_namespace
        pids = _pids_by_namespace().get(state.namespace, [])
        assert state.process is not None
        # The listening sshd first, so no new session starts while the rest are signalled.
        ordered = [state.process.pid, *(pid for pid in pids if pid != state.process.pid)]
        for pid in ordered:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signum)


@contextlib.contextmanager
def start_sshd_fleet(
    count: int = 12,
    datacenters: int = 3,
    base_dir: Path | None = None,
    *,
    bastion: bool = False,
    log_level: str = "INFO",
) -> Iterator[SshdFleet]:
    """Start ``count`` sshd hosts over ``datacenters``; stop them all when the block ends.

    With ``base_dir`` the fleet's files (keys, inventory, per-host ``srv/`` and logs) go
    there and stay after it ends; without, a temporary directory is made and removed.
    Raises :class:`OpenSshUnavailable` where the machine cannot run it.
    """
    fleet = launch_sshd_fleet(count, datacenters, base_dir, bastion=bastion, log_level=log_level)
    try:
        yield fleet
    finally:
        fleet.close()


def launch_sshd_fleet(
    count: int,
    datacenters: int,
    base_dir: Path | None = None,
    *,
    bastion: bool = False,
    log_level: str = "INFO",
) -> SshdFleet:
    """Start a fleet whose lifetime the caller owns (call :meth:`SshdFleet.close`);
    with ``bastion``, behind a jump host (see the module's docstring)."""
    reason = openssh_unavailable_reason()
    if reason is not None:
        raise OpenSshUnavailable(reason)
    plan_hosts("127.0.0", count, datacenters)  # validate the numbers before making anything
    _ensure_open_file_limit(count)
    Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # sshd's privilege-separation dir
    owns_base_dir = base_dir is None
    directory = Path(tempfile.mkdtemp(prefix="sshd-fleet-")) if base_dir is None else base_dir
    directory = directory.resolve()
    directory.mkdir(parents=True, exist_ok=True)
    if bastion and count + 1 > MAX_HOSTS:
        raise SshdFleetError(f"a fleet behind a bastion has 1 to {MAX_HOSTS - 1} hosts, not {count}")
    prefix, reservation = _reserve_address_block(count + 1 if bastion else count)
    hosts = plan_hosts(prefix, count, datacenters)
    jump = Host(name=BASTION_NAME, address=f"{prefix}.{count + 1}", datacenter="dc0", port=PORT)
    fleet = SshdFleet(
        base_dir=directory,
        hosts=hosts,
        reservation=reservation,
        owns_base_dir=owns_base_dir,
        bastion=jump if bastion else None,
        log_level=log_level,
    )
    try:
        fleet._write_files()
        fleet._launch_and_wait(list(fleet._states.values()))
    except BaseException:
        fleet.close()
        raise
    return fleet


# -- files --------------------------------------------------------------------------------


def _sshd_config(state: _HostState, authorized_keys: Path, log_level: str) -> str:
    host = state.host
    # A host certificate, when certify_host_key made one.
    certificate = f"HostCertificate {state.certificate}\n" if state.certificate.exists() else ""
    # StrictModes no: the fleet's files live in a temp dir whose modes sshd would reject.
    # MaxStartups/MaxSessions: a controller fanning out to 100 hosts opens a few channels each.
    return f"""\
ListenAddress {state.listen_address}:{host.port}
AllowTcpForwarding {"yes" if state.forwarding else "no"}
HostKey {state.host_key}
{certificate}PidFile {state.directory / "sshd.pid"}
AuthorizedKeysFile {authorized_keys}
PermitRootLogin prohibit-password
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
UseDNS no
StrictModes no
MaxSessions 50
MaxStartups 200
MaxAuthTries 10
LoginGraceTime 30
PrintMotd no
Subsystem sftp internal-sftp
LogLevel {log_level}
"""


def _generate_key(path: Path) -> None:
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", path.name, "-f", str(path)],
        check=True,
        capture_output=True,
        timeout=10,
        stdin=subprocess.DEVNULL,
    )


def _pub(path: Path) -> Path:
    return path.with_name(path.name + ".pub")


def _tail(path: Path, line_count: int = 5) -> str:
    try:
        lines = path.read_text(errors="replace").splitlines()
    except OSError:
        return "(no log)"
    return " | ".join(lines[-line_count:]) or "(empty log)"


def _checked_step(step: str) -> str:
    if not step or "/" in step or step in {".", ".."}:
        raise SshdFleetError(f"a step name is a plain file name, not {step!r}")
    return step


# -- the machine ----------------------------------------------------------------------------


def _which(tool: str) -> str | None:
    return shutil.which(tool, path=_SBIN_PATH)


def _which_or_fail(tool: str) -> str:
    found = _which(tool)
    if found is None:
        raise OpenSshUnavailable(f"{tool} is not installed")
    return found


def _namespace_of(pid: int) -> str | None:
    try:
        return os.readlink(f"/proc/{pid}/ns/mnt")
    except OSError:  # gone, or a zombie
        return None


def _pids_by_namespace() -> dict[str, list[int]]:
    """Every live process on the machine, grouped by mount namespace (one /proc scan)."""
    by_namespace: dict[str, list[int]] = {}
    own_pid = os.getpid()
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit() or int(entry.name) == own_pid:
            continue
        namespace = _namespace_of(int(entry.name))
        if namespace is not None:
            by_namespace.setdefault(namespace, []).append(int(entry.name))
    return by_namespace


def _answers_ssh_banner(address: str, port: int) -> bool:
    try:
        with socket.create_connection((address, port), timeout=0.5) as connection:
            return connection.recv(64).startswith(b"SSH-")
    except OSError:
        return False


def _reserve_address_block(count: int) -> tuple[str, socket.socket]:
    """Claim a free 127.X.Y.0/24 block for this fleet, also against concurrent test runs.

    The claim is a listening socket on ``127.X.Y.0:PORT`` held for the fleet's lifetime:
    binding it is atomic, so two fleets (other pytest processes included) never share a
    block. A block whose host addresses are taken (a stray sshd) is passed over.
    """
    high, low = _FIRST_BLOCK
    while high < 256:
        prefix = f"127.{high}.{low}"
        claim = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            claim.bind((f"{prefix}.0", PORT))
            claim.listen(1)
        except OSError:
            claim.close()
        else:
            if all(_is_free(f"{prefix}.{number}", PORT) for number in range(1, count + 1)):
                return prefix, claim
            claim.close()
        low += 1
        if low == 256:
            high, low = high + 1, 0
    raise SshdFleetError("no free 127.X.Y.0/24 address block for the sshd fleet")


def _is_free(address: str, port: int) -> bool:
    probe = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    # As sshd binds: SO_REUSEADDR lets a port in TIME_WAIT from an earlier fleet be reused.
    probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        probe.bind((address, port))
    except OSError:
        return False
    finally:
        probe.close()
    return True


def _ensure_open_file_limit(count: int) -> None:
    """Raise this process's soft fd limit so a controller can hold a few connections per host."""
    wanted = 64 + 16 * count
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < wanted:
        if hard != resource.RLIM_INFINITY and hard < wanted:
            raise SshdFleetError(f"{count} hosts need about {wanted} open files; the hard limit is {hard}")
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))


# -- pytest ----------------------------------------------------------------------------------

_live_fleets: list[SshdFleet] = []


class FleetFactory(Protocol):
    """What the ``sshd_fleet_factory`` fixture gives: call it to start a fleet."""

    def __call__(
        self,
        count: int = 12,
        datacenters: int = 3,
        *,
        heal_between_tests: bool = True,
        bastion: bool = False,
        log_level: str = "INFO",
    ) -> SshdFleet: ...


@pytest.fixture(scope="session")
def sshd_fleet_factory() -> Iterator[FleetFactory]:
    """Start fleets on demand: ``sshd_fleet_factory(count=12, datacenters=3)``.

    Use the result as a context manager in a module-scoped fixture so it stops with the
    module; any fleet still running at the end of the session is stopped then. Pass
    ``heal_between_tests=False`` to keep faults across tests.
    """
    reason = openssh_unavailable_reason()
    if reason is not None:
        pytest.skip(reason)
    made: list[SshdFleet] = []

    def make(
        count: int = 12,
        datacenters: int = 3,
        *,
        heal_between_tests: bool = True,
        bastion: bool = False,
        log_level: str = "INFO",
    ) -> SshdFleet:
        try:
            fleet = launch_sshd_fleet(count, datacenters, bastion=bastion, log_level=log_level)
        except OpenSshUnavailable as error:
            pytest.skip(str(error))
        fleet.heals_between_tests = heal_between_tests
        made.append(fleet)
        _live_fleets.append(fleet)
        return fleet

    try:
        yield make
    finally:
        for fleet in made:
            fleet.close()
        _live_fleets[:] = [fleet for fleet in _live_fleets if fleet not in made]


@pytest.fixture(scope="module")
def sshd_fleet(sshd_fleet_factory: FleetFactory) -> Iterator[SshdFleet]:
    """Twelve hosts h01..h12 over dc1..dc3 (four each), started once per test module."""
    with sshd_fleet_factory(count=12, datacenters=3) as fleet:
        yield fleet


@pytest.fixture(autouse=True)
def _heal_sshd_fleets() -> Iterator[None]:
    """After each test, undo the faults it left on the fixtures' fleets."""
    yield
    _live_fleets[:] = [fleet for fleet in _live_fleets if not fleet.is_closed]
    for fleet in _live_fleets:
        if fleet.heals_between_tests:
            fleet.reset()
