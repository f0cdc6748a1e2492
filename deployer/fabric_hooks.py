"""Fabric tasks as lifecycle hooks: load a fabfile's task, hand it a Connection, run it.

A hook written ``{fabric: "fabfile.py:migrate", args: {dry_run: false}}`` runs a task of a
Fabric file *on the controller*, against the host being deployed. The host's driver holds
at the step (``deployer/remote/driver.sh``); :mod:`deployer.ssh` runs the task through
:class:`FabricHooks`, then tells the driver how it ended (``done <exit> <attempts>``).

What a task gets, called as ``task(c, **args)`` (a ``@task``'s body, or a plain function):

* ``c``: a :class:`fabric.Connection` to the host, built from the same
  :class:`~deployer.ssh_config.Endpoint` as the runner's own connection (address, port,
  user, identity files, jump host as Fabric's ``gateway``, ProxyCommand, all as
  ``~/.ssh/config`` and the spec say) and checked against the same ``known_hosts`` file
  (a jump host's against its own), with the same verdict
  (:func:`deployer.host_keys.judge_host_key`): ``strict`` refuses an unknown key,
  ``accept-new`` records it (under the same file lock), a changed or ``@revoked`` key is
  refused under both. paramiko cannot check a host certificate: a host the file knows
  only through ``@cert-authority`` is refused, saying so.
* ``c.config.deploy``: ``app``, ``version``, ``previous_version``, ``environment``,
  ``host``, ``datacenter``, ``id`` and ``release_dir``, the values a shell hook sees as
  ``DEPLOY_APP`` ... ``DEPLOY_RELEASE_DIR``; every ``c.run``/``c.sudo`` gets those variables
  in its remote environment, quoted (Fabric's own inline ``export`` does not quote), merged
  under any ``env=`` the task passes.
* Output: what its commands print (stdout and stderr, and ``echo=True`` lines; ``hide=``
  does not apply) is captured as the step's output, never written to the controller's
  terminal; stdin is not mirrored. The task's own ``print()`` is not captured.

Time limits. A hook's ``timeout`` bounds each attempt, connecting included. When it passes,
the attempt's connection is closed from the controller (a command in flight ends there,
and the connection refuses to reopen), and its remote commands end on the host too: a
command without a pty runs under GNU ``timeout`` set to the attempt's time left plus
:data:`REMOTE_SLACK` (so it dies with its children even if the controller is gone; hosts
without GNU timeout rely on the closed channel), and one with a pty gets SIGHUP when its
channel closes. The task's own Python code cannot be interrupted: after
:data:`STOP_GRACE` the host is failed anyway and the thread is left to end by itself.

Threads. Each attempt runs in a daemon thread of its own instead of ``asyncio.to_thread``:
the default executor has ``min(32, CPUs + 4)`` workers, which would quietly cap how many
hosts of a wave run their task at once (the controller's concurrency bound is the only
one wanted), and the interpreter joins executor threads at exit, so one stuck task would
hold the CLI. Connection handshakes share the runner's ``connect_slots`` semaphore.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import hashlib
import importlib.util
import inspect
import logging
import math
import re
import shlex
import sys
import threading
import time
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any, TypeVar

import asyncssh
import paramiko  # type: ignore[import-untyped]
from fabric import Config, Connection  # type: ignore[import-untyped]
from fabric.runners import Remote  # type: ignore[import-untyped]
from invoke.exceptions import CommandTimedOut, Failure, UnexpectedExit
from invoke.tasks import Task

from deployer.fleet import Host, SshTarget
from deployer.host_keys import judge_host_key, load_known_hosts, os_error_text
from deployer.release import shell_number
from deployer.results import OUTPUT_CAP
from deployer.runner import HookCommand, ReleaseJob
from deployer.ssh_config import Endpoint, SshConfigProblem, resolve_endpoint

REMOTE_SLACK = 2.0  # seconds a remote command may outlive its attempt's time (the controller acts first)
KILL_AFTER = 5  # seconds between GNU timeout's TERM and its KILL
STOP_GRACE = 5.0  # seconds to let a timed-out task's thread end once its connection is closed
CONNECT_FAILED = 255  # the exit status of an attempt that could not connect, as ssh(1) has it
TIMED_OUT = 124  # as GNU timeout has it
MESSAGE_CAP = 300  # characters of an exception's message kept in the one-line error

_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
T = TypeVar("T")

# paramiko logs a connection closed under it (a hook's timeout) as an error; without a
# handler of its own, Python would print that on the terminal the live view is drawing on.
logging.getLogger("paramiko").addHandler(logging.NullHandler())


# --- loading tasks ------------------------------------------------------------------------


class TaskNotLoadable(Exception):
    """A hook's Fabric task cannot be loaded; the message names the fabfile and the task."""


def split_reference(reference: str) -> tuple[Path, str]:
    """``"/srv/fabfile.py:db.migrate"`` → ``(Path("/srv/fabfile.py"), "db.migrate")``."""
    path, _, name = reference.rpartition(":")
    return Path(path), name


def task_label(reference: str) -> str:
    """How a task is named in messages about a host: ``fabfile.py:migrate``."""
    path, name = split_reference(reference)
    return f"{path.name}:{name}"


def one_line(text: str, cap: int = MESSAGE_CAP) -> str:
    """``text`` on one line, cut to ``cap`` characters."""
    flat = " ".join(text.split())
    return flat if len(flat) <= cap else flat[: cap - 3] + "..."


def describe_exception(error: BaseException) -> str:
    """``RuntimeError: schema is locked``, on one line."""
    message = one_line(str(error))
    return f"{type(error).__name__}: {message}" if message else type(error).__name__


_modules: dict[Path, tuple[tuple[int, int], ModuleType]] = {}
_modules_lock = threading.Lock()


def _load_module(path: Path, name: str) -> ModuleType:
    """The fabfile at ``path`` executed as a module; executed again only when the file changed."""
    try:
        info = path.stat()
    except OSError as error:
        raise TaskNotLoadable(
            f"cannot load Fabric task {name}: cannot read {path}: {error.strerror or error}"
        ) from None
    stamp = (info.st_mtime_ns, info.st_size)
    with _modules_lock:  # sys.path and sys.modules are shared by every thread
        cached = _modules.get(path)
        if cached is not None and cached[0] == stamp:
            return cached[1]
        module_name = "deployer_fabfile_" + hashlib.sha1(str(path).encode()).hexdigest()[:12]
        spec = importlib.util.spec_from_file_location(module_name, path)
        if spec is None or spec.loader is None:
            raise TaskNotLoadable(f"cannot load Fabric task {name}: {path} is not a Python file")
        module = importlib.util.module_from_spec(spec)
        folder = str(path.parent)
        # As the fab command does, the fabfile's folder is importable (for its own helper
        # modules): first while it runs, then last, where it shadows nothing.
        sys.path.insert(0, folder)
        sys.modules[module_name] = module  # dataclasses and pickling look a module up here
        try:
            spec.loader.exec_module(module)
        except SyntaxError as error:
            del sys.modules[module_name]
            where = f"{path} line {error.lineno}" if error.lineno else str(path)
            raise TaskNotLoadable(f"cannot load Fabric task {name}: {where}: {error.msg}") from None
        except Exception as error:  # the fabfile's own code failed: a spec problem, told in one line
            del sys.modules[module_name]
            raise TaskNotLoadable(
                f"cannot load Fabric task {name}: importing {path} raised {describe_exception(error)}"
            ) from None
        finally:
            sys.path.remove(folder)
            if folder not in sys.path:
                sys.path.append(folder)
        _modules[path] = (stamp, module)
        return module


def _task_names(module: ModuleType) -> list[str]:
    return sorted(
        name
        for name, value in vars(module).items()
        if isinstance(value, Task)
        or (inspect.isfunction(value) and value.__module__ == module.__name__ and not name.startswith("_"))
    )


def load_task(reference: str) -> Callable[..., object]:
    """The function behind ``"/abs/fabfile.py:task"``: an invoke/Fabric ``@task``'s body, or
    a plain function. ``db.migrate`` walks attributes; ``-`` may stand for ``_`` as on the
    fab command line. Raises :class:`TaskNotLoadable`."""
    path, name = split_reference(reference)
    module = _load_module(path, name)
    found: object = module
    for part in name.split("."):
        for attribute in dict.fromkeys((part, part.replace("-", "_"))):
            if hasattr(found, attribute):
                found = getattr(found, attribute)
                break
        else:
            tasks = ", ".join(_task_names(module)) or "none"
            raise TaskNotLoadable(f"no Fabric task {name} in {path} (its tasks: {tasks})")
    body = found.body if isinstance(found, Task) else found
    if not callable(body) or isinstance(body, type):
        raise TaskNotLoadable(
            f"{name} in {path} is not a Fabric task or a function (it is a {type(body).__name__})"
        )
    return body


def task_problem(reference: str, args: Mapping[str, Any]) -> str | None:
    """Why the task ``reference`` cannot be called with a Connection and ``args``, or None.

    Loads (executes) the fabfile: the spec check, so that a broken fabfile is found before
    any host is touched.
    """
    try:
        body = load_task(reference)
    except TaskNotLoadable as error:
        return str(error)
    try:
        signature = inspect.signature(body)
    except (TypeError, ValueError):  # a builtin or C callable: nothing to check
        return None
    try:
        signature.bind(None, **args)
    except TypeError as error:
        path, name = split_reference(reference)
        return f"Fabric task {name} in {path} cannot be called with args {dict(args)}: {error}"
    return None


# --- what a task sees ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class HookVariables:
    """What a hook knows about its deployment: ``DEPLOY_*`` and ``c.config.deploy``."""

    app: str
    version: str
    previous_version: str
    environment: str
    host: str
    datacenter: str
    deployment_id: str
    release_dir: str

    def as_env(self) -> dict[str, str]:
        return {
            "DEPLOY_APP": self.app,
            "DEPLOY_VERSION": self.version,
            "DEPLOY_PREVIOUS_VERSION": self.previous_version,
            "DEPLOY_ENVIRONMENT": self.environment,
            "DEPLOY_HOST": self.host,
            "DEPLOY_DATACENTER": self.datacenter,
            "DEPLOY_ID": self.deployment_id,
            "DEPLOY_RELEASE_DIR": self.release_dir,
        }

    def as_config(self) -> dict[str, str]:
        """The ``deploy`` section of the task's Fabric config (``c.config.deploy.version``)."""
        return {
            "app": self.app,
            "version": self.version,
            "previous_version": self.previous_version,
            "environment": self.environment,
            "host": self.host,
            "datacenter": self.datacenter,
            "id": self.deployment_id,
            "release_dir": self.release_dir,
        }


def hook_variables(job: ReleaseJob, host: Host, reported: Mapping[str, str]) -> HookVariables:
    """The variables of a hook about to run on ``host``.

    ``reported`` holds what only the host knows, told by its driver before the step
    (``@@env NAME value``): ``DEPLOY_VERSION`` (a restart's is the current release's),
    ``DEPLOY_PREVIOUS_VERSION`` and ``DEPLOY_RELEASE_DIR`` (``~`` expanded on the host).
    """
    return HookVariables(
        app=job.app,
        version=reported.get("DEPLOY_VERSION", job.version),
        previous_version=reported.get("DEPLOY_PREVIOUS_VERSION", ""),
        environment=job.environment,
        host=host.name,
        datacenter=host.datacenter,
        deployment_id=job.deployment_id,
        release_dir=reported.get("DEPLOY_RELEASE_DIR", ""),
    )


def exported(env: Mapping[str, str]) -> str:
    """A shell prefix that exports ``env``, every value quoted: ``export A='x y'; ``."""
    if not env:
        return ""
    for name in env:
        if _ENV_NAME.fullmatch(name) is None:
            raise ValueError(f"{name!r} cannot be the name of an environment variable")
    return "export " + " ".join(f"{name}={shlex.quote(value)}" for name, value in sorted(env.items())) + "; "


def bounded_command(command: str, seconds: float) -> str:
    """``command`` for a remote shell, run by the user's shell under GNU ``timeout`` when the
    host has it (not busybox's, a symbolic link, which neither kills a process group nor
    takes ``-k``): past ``seconds`` it is killed with its children, TERM then KILL."""
    inner = f'"${{SHELL:-/bin/sh}}" -c {shlex.quote(command)}'
    limit = shell_number(max(round(seconds, 3), 0.001))
    return (
        f't=$(command -v timeout 2>/dev/null) && [ ! -L "$t" ] && exec "$t" -k {KILL_AFTER} {limit} {inner}; '
        f"exec {inner}"
    )


# --- output -------------------------------------------------------------------------------


class CapturedOutput:
    """A write-only text stream for a hook's commands (invoke writes from its reader threads).

    Keeps the last :data:`~deployer.results.OUTPUT_CAP` characters or more, and says how many
    were cut.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._text = ""
        self._cut = 0

    def write(self, text: str) -> int:
        with self._lock:
            self._text += text
            if len(self._text) > 2 * OUTPUT_CAP:
                self._cut += len(self._text) - OUTPUT_CAP
                self._text = self._text[-OUTPUT_CAP:]
        return len(text)

    def flush(self) -> None:
        pass

    def __copy__(self) -> CapturedOutput:
        # invoke copies every config value it merges (copy.copy, unless it has a fileno):
        # the copy must be this very stream, or the output would go to a copy of it.
        return self

    def isatty(self) -> bool:
        return False

    def text(self) -> str:
        with self._lock:
            return (f"[... {self._cut} characters cut ...]\n" if self._cut else "") + self._text


# --- the connection -------------------------------------------------------------------------


class HostKeyRefused(paramiko.SSHException):  # type: ignore[misc]
    """A host key our policy does not accept; the message says why, for people."""


class _JudgeHostKey(paramiko.MissingHostKeyPolicy):  # type: ignore[misc]
    """Every host key goes through :func:`deployer.host_keys.judge_host_key`, as the
    runner's do: paramiko is given no known keys, since it reads neither ``@revoked`` nor
    ``@cert-authority`` lines (nor can it check a host certificate)."""

    def __init__(self, path: str, policy: str, host: str, port: int) -> None:
        self._path, self._policy, self._host, self._port = path, policy, host, port

    def missing_host_key(self, client: paramiko.SSHClient, hostname: str, key: paramiko.PKey) -> None:
        try:
            book = load_known_hosts(self._path)
            offered = asyncssh.import_public_key(f"{key.get_name()} {key.get_base64()}")
        except (OSError, ValueError, asyncssh.KeyImportError) as error:
            raise HostKeyRefused(f"cannot read known_hosts {self._path}: {error}") from None
        problem = judge_host_key(
            self._path, book, self._host, "", self._port, offered, self._policy, checks_certificates=False
        )
        if problem is not None:
            raise HostKeyRefused(problem)
        client.get_host_keys().add(hostname, key.get_name(), key)


class ConnectionRetired(Exception):
    """The hook's time is up: its connection is closed and may not be opened again."""


class HookConnection(Connection):  # type: ignore[misc]
    """A Fabric Connection for one attempt of a hook.

    Its paramiko client checks host keys as the runner does (not Fabric's default
    ``AutoAddPolicy``), its commands carry the hook's variables and a time bound, and once
    :meth:`retire` is called it is closed for good: a task that carries on after its
    timeout cannot start anything more on the host.
    """

    # Class-level: an invoke Context turns an unknown attribute into a config entry.
    deploy_env: Mapping[str, str] = {}
    deadline = 0.0  # time.monotonic() at which the attempt's time is up
    known_hosts = ""
    endpoint: Endpoint | None = None
    retired = False

    def __init__(
        self, *, deploy_env: Mapping[str, str], deadline: float, endpoint: Endpoint, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.deploy_env = dict(deploy_env)
        self.deadline = deadline
        self.endpoint = endpoint
        known_hosts = self.known_hosts = endpoint.known_hosts
        client = paramiko.SSHClient()
        client.set_missing_host_key_policy(
            _JudgeHostKey(known_hosts, endpoint.host_key_policy, endpoint.address, endpoint.port)
        )
        self.client = client

    def open(self) -> object:
        if self.retired:
            raise ConnectionRetired("the hook's time is up; its connection is closed")
        result = super().open()
        if self.retired:  # retired while the handshake ran: retire() may have found nothing to close
            self.client.close()
            raise ConnectionRetired("the hook's time is up; its connection is closed")
        return result

    def retire(self) -> None:
        """Close the connection for good, from any thread; commands in flight end."""
        self.retired = True
        # self.client.close() also closes a transport left over by a refused handshake.
        for close in (self.close, self.client.close):
            with contextlib.suppress(Exception):  # best effort, whatever state it is in
                close()
        if isinstance(self.gateway, HookConnection):
            self.gateway.retire()

    def seconds_left(self) -> float:
        return self.deadline - time.monotonic()


class HookRemote(Remote):  # type: ignore[misc]
    """Fabric's remote runner with quoted variables, a time bound and captured echo lines."""

    def start(self, command: str, shell: str, env: Mapping[str, str], timeout: float | None = None) -> None:
        connection = self.context
        merged = {**connection.deploy_env, **env}
        if not self.using_pty:  # with a pty, closing the channel sends SIGHUP instead
            command = bounded_command(command, connection.seconds_left() + REMOTE_SLACK)
        super().start(exported(merged) + command, shell, {}, timeout)

    def echo(self, command: str) -> None:
        self.streams["out"].write(f"$ {command}\n")


def connection_for(
    target: SshTarget, variables: HookVariables, output: CapturedOutput, deadline: float
) -> HookConnection:
    """A (not yet open) Connection to ``target`` for one attempt ending at ``deadline``.

    Built from the same :class:`~deployer.ssh_config.Endpoint` as the runner's own
    connection (``~/.ssh/config`` read the same way, under the spec's settings), so it
    reaches the same place: a jump host becomes Fabric's ``gateway``, a ProxyCommand too.
    Raises :class:`~deployer.ssh_config.SshConfigProblem`.
    """
    env = variables.as_env()
    config = Config(
        lazy=True,  # no /etc/fabric.yaml, ~/.fabric.yaml or shell env: the spec decides
        ssh_config=paramiko.SSHConfig(),  # the endpoint holds what ~/.ssh/config says
        overrides={
            "run": {
                "env": env,
                "out_stream": output,
                "err_stream": output,
                "in_stream": False,
                "hide": False,
            },
            "deploy": variables.as_config(),
            "runners": {"remote": HookRemote},
        },
    )
    return _hook_connection(resolve_endpoint(target), config, env, deadline)


def _hook_connection(
    endpoint: Endpoint, config: Config, env: Mapping[str, str], deadline: float
) -> HookConnection:
    gateway: HookConnection | str | None = None
    if endpoint.jump is not None:
        gateway = _hook_connection(endpoint.jump, config, env, deadline)
    elif endpoint.proxy_command:
        gateway = endpoint.proxy_command
    connect_kwargs: dict[str, Any] = {}
    if endpoint.identity_files:
        connect_kwargs["key_filename"] = list(endpoint.identity_files)
        connect_kwargs["look_for_keys"] = False
    if endpoint.identities_only:
        connect_kwargs["allow_agent"] = False
    return HookConnection(
        deploy_env=env,
        deadline=deadline,
        endpoint=endpoint,
        host=endpoint.address,
        user=endpoint.user,
        port=endpoint.port,
        config=config,
        connect_timeout=max(1, math.ceil(endpoint.connect_timeout)),  # Fabric takes whole seconds
        connect_kwargs=connect_kwargs,
        gateway=gateway,
        inline_ssh_env=True,
    )


# --- running ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class HookOutcome:
    """How a Fabric hook ended on one host, for the step's result and the driver."""

    exit_status: int
    attempts: int
    timed_out: bool
    output: str
    error: str | None = None  # one sentence when it failed: "after_install Fabric task ... raised ..."


@dataclass(frozen=True, slots=True)
class _Ending:
    """How one attempt ended: exit status and, when it failed, what happened (a phrase)."""

    exit_status: int
    detail: str = ""
    timed_out: bool = False


def _open(connection: HookConnection, target: SshTarget) -> _Ending:
    """Opens ``connection`` (in a worker thread); the ending of an attempt that cannot connect."""
    endpoint = connection.endpoint
    assert endpoint is not None
    where = endpoint.where
    try:
        connection.open()
        connection.transport.set_keepalive(max(1, round(endpoint.keepalive)))
    except ConnectionRetired:
        return _Ending(TIMED_OUT, "timed out while connecting", timed_out=True)
    except paramiko.BadHostKeyException as error:
        detail = (
            f"host key CHANGED for {where}: it offers {error.key.get_name()} {error.key.fingerprint}, "
            f"which is not the key recorded in {connection.known_hosts}"
        )
    except HostKeyRefused as error:
        detail = str(error)
    except paramiko.AuthenticationException as error:
        user = f"{endpoint.user}@" if endpoint.user else ""
        detail = f"authentication as {user}{where} failed: {one_line(str(error))}"
    except TimeoutError:
        detail = f"no SSH answer from {where} within {endpoint.connect_timeout:g}s"
    except paramiko.SSHException as error:
        detail = f"SSH to {where} failed: {one_line(str(error))}"
    except OSError as error:
        detail = f"cannot connect to {where}: {os_error_text(error)}"
    else:
        return _Ending(0)
    return _Ending(CONNECT_FAILED, f"could not connect: {detail}")


def _call(
    reference: str, connection: HookConnection, args: Mapping[str, Any], output: CapturedOutput
) -> _Ending:
    """Loads and calls the task (in a worker thread); how it ended, never raising for it."""
    try:
        task = load_task(reference)
    except TaskNotLoadable as error:
        return _Ending(1, f"could not be loaded: {error}")
    try:
        task(connection, **args)
    except ConnectionRetired:
        return _Ending(TIMED_OUT, "timed out", timed_out=True)
    except UnexpectedExit as error:
        result = error.result
        status = result.exited if 0 < result.exited < 256 else 1  # -1: the channel closed without one
        return _Ending(status, f"ran `{one_line(result.command, 120)}`, which exited {result.exited}")
    except CommandTimedOut as error:
        return _Ending(
            TIMED_OUT, f"ran `{one_line(error.result.command, 120)}`, which timed out after {error.timeout}s"
        )
    except Failure as error:
        return _Ending(1, f"failed: {describe_exception(error)}")
    except Exception as error:  # the task's own failure: the host fails, the traceback goes in its output
        output.write("".join(traceback.format_exception(error)))
        return _Ending(1, f"raised {describe_exception(error)}")
    return _Ending(0)


def _in_thread(function: Callable[[], T], name: str) -> asyncio.Future[T]:
    """``function()`` in a daemon thread of its own; a future of its result (see the module doc)."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future[T] = loop.create_future()
    context = contextvars.copy_context()

    def settle(result: T | None, error: BaseException | None) -> None:
        if future.done():
            return
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(result)  # type: ignore[arg-type]

    def main() -> None:
        try:
            result = context.run(function)
        except BaseException as error:  # handed to the coroutine that awaits it
            outcome: tuple[T | None, BaseException | None] = (None, error)
        else:
            outcome = (result, None)
        with contextlib.suppress(RuntimeError):  # the loop is gone: nobody waits any more
            loop.call_soon_threadsafe(settle, *outcome)

    threading.Thread(target=main, name=name, daemon=True).start()
    return future


class FabricHooks:
    """Runs Fabric-task hooks against hosts; one connection and one thread per attempt."""

    def __init__(self, connect_slots: asyncio.Semaphore | None = None) -> None:
        self._connect_slots = connect_slots or asyncio.Semaphore(256)

    async def run(self, target: SshTarget, hook: HookCommand, variables: HookVariables) -> HookOutcome:
        """Run ``hook`` (its ``fabric`` set) on ``target`` with its retries; never raises for the task."""
        if hook.fabric is None:
            raise RuntimeError(f"the {hook.step} hook is not a Fabric task")
        output = CapturedOutput()
        attempts = 0
        while True:
            attempts += 1
            ending = await self._attempt(target, hook, variables, output)
            if ending.exit_status == 0:
                return HookOutcome(0, attempts, False, output.text())
            if attempts > hook.retries:
                break
            output.write(
                f"[deployer] attempt {attempts} {ending.detail}; "
                f"next attempt in {shell_number(hook.interval)}s\n"
            )
            await asyncio.sleep(hook.interval)
        sentence = f"{hook.step} Fabric task {task_label(hook.fabric)} {ending.detail}"
        if attempts > 1:
            sentence += f" after {attempts} attempts"
        return HookOutcome(ending.exit_status, attempts, ending.timed_out, output.text(), sentence)

    async def _attempt(
        self, target: SshTarget, hook: HookCommand, variables: HookVariables, output: CapturedOutput
    ) -> _Ending:
        assert hook.fabric is not None
        reference = hook.fabric
        try:
            connection = connection_for(target, variables, output, time.monotonic() + hook.timeout)
        except SshConfigProblem as error:
            return _Ending(CONNECT_FAILED, f"could not connect: {error}")
        except (OSError, paramiko.SSHException) as error:
            return _Ending(CONNECT_FAILED, f"could not connect: cannot read the SSH settings: {error}")
        name = f"fabric {target.host.name} {hook.step}"
        worker: asyncio.Future[_Ending] | None = None
        limit = asyncio.timeout(hook.timeout)
        try:
            async with limit:
                async with self._connect_slots:
                    opened = await asyncio.shield(_in_thread(lambda: _open(connection, target), name))
                if opened.exit_status != 0:
                    return opened
                worker = _in_thread(lambda: _call(reference, connection, hook.fabric_args, output), name)
                return await asyncio.shield(worker)
        except TimeoutError:
            if not limit.expired():
                raise
            connection.retire()
            if worker is not None:  # let its command end on our side, so its output is all there
                await asyncio.wait([worker], timeout=STOP_GRACE)
            output.write(
                f"[deployer] {hook.step} timed out after {shell_number(hook.timeout)}s: its connection "
                "was closed and its remote commands stopped\n"
            )
            return _Ending(
                TIMED_OUT,
                f"timed out after {shell_number(hook.timeout)}s; its connection was closed and its "
                "remote commands stopped",
                timed_out=True,
            )
        finally:
            connection.retire()
