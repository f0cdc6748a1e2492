"""Fabric tasks as lifecycle hooks: load a fabfile's task, hand it a Connection, run it.

A hook written ``{fabric: "fabfile.py:migrate", args: {dry_run: false}}`` runs a task of a
Fabric file *on the controller*, against the host being deployed. The host's driver holds
at the step (``deployer/hosts/remote/driver.sh``); :mod:`deployer.hosts.ssh` runs the task through
:class:`FabricHooks`, then tells the driver how it ended (``done <exit> <attempts>``).

What a task gets, called as ``task(c, **args)`` (a ``@task``'s body, or a plain function):

* ``c``: a :class:`fabric.Connection` to the host, built from the same
  :class:`~deployer.hosts.ssh_config.Endpoint` as the runner's own connection (address, port,
  user, identity files, jump host as Fabric's ``gateway``, ProxyCommand, all as
  ``~/.ssh/config`` and the spec say) and checked against the same ``known_hosts`` file
  (a jump host's against its own), with the same verdict
  (:func:`deployer.hosts.host_keys.judge_host_key`): ``strict`` refuses an unknown key,
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
:data:`~deployer.hosts.fabric_connection.REMOTE_SLACK` (so it dies with its children even if the
controller is gone; hosts without GNU timeout rely on the closed channel), and one with a
pty gets SIGHUP when its channel closes. The task's own Python code cannot be
interrupted: after :data:`STOP_GRACE` the host is failed anyway and the thread is left to
end by itself.

Threads. Each attempt runs in a daemon thread of its own instead of ``asyncio.to_thread``:
the default executor has ``min(32, CPUs + 4)`` workers, which would quietly cap how many
hosts of a wave run their task at once (the controller's concurrency bound is the only
one wanted), and the interpreter joins executor threads at exit, so one stuck task would
hold the CLI. Connection handshakes share the runner's ``connect_slots`` semaphore.

Where the pieces live: loading a task in :mod:`deployer.hosts.fabric_tasks`; the Connection a
task is handed (host keys, variables, time bound, captured output) in
:mod:`deployer.hosts.fabric_connection`; checking a task for the spec and running it here.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import inspect
import threading
import time
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

import paramiko  # type: ignore[import-untyped]
from invoke.exceptions import CommandTimedOut, Failure, UnexpectedExit

from deployer.core.runner import HookCommand, HookOutcome, ReleaseJob
from deployer.core.targets import Host, SshTarget
from deployer.hosts.fabric_connection import (
    CapturedOutput,
    ConnectionRetired,
    HookConnection,
    HookVariables,
    HostKeyRefused,
    connection_for,
)
from deployer.hosts.fabric_tasks import (
    TaskNotLoadable,
    describe_exception,
    load_task,
    one_line,
    split_reference,
    task_label,
)
from deployer.hosts.host_keys import os_error_text
from deployer.hosts.release import shell_number
from deployer.hosts.ssh_config import SshConfigProblem

STOP_GRACE = 5.0  # seconds to let a timed-out task's thread end once its connection is closed
CONNECT_FAILED = 255  # the exit status of an attempt that could not connect, as ssh(1) has it
TIMED_OUT = 124  # as GNU timeout has it

T = TypeVar("T")


# --- checking a task (the spec's check) ---------------------------------------------------


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


# --- running ------------------------------------------------------------------------------


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
