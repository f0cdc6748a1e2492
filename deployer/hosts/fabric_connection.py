"""The Connection a Fabric task is handed: its host keys, variables, time bound and output.

Built on paramiko, as Fabric is. Host keys are judged by
:func:`deployer.hosts.host_keys.judge_host_key`, the same verdict as the runner's asyncssh
connections; every remote command carries the hook's ``DEPLOY_*`` variables, quoted, and
runs under GNU ``timeout`` (see :mod:`deployer.hosts.fabric_hooks` for the time limits).
"""

from __future__ import annotations

import contextlib
import logging
import math
import re
import shlex
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import asyncssh
import paramiko  # type: ignore[import-untyped]
from fabric import Config, Connection  # type: ignore[import-untyped]
from fabric.runners import Remote  # type: ignore[import-untyped]

from deployer.core.results import OUTPUT_CAP
from deployer.core.targets import SshTarget
from deployer.hosts.host_keys import judge_host_key, load_known_hosts
from deployer.hosts.release import shell_number
from deployer.hosts.ssh_config import Endpoint, resolve_endpoint

REMOTE_SLACK = 2.0  # seconds a remote command may outlive its attempt's time (the controller acts first)
KILL_AFTER = 5  # seconds between GNU timeout's TERM and its KILL

_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")

# paramiko logs a connection closed under it (a hook's timeout) as an error; without a
# handler of its own, Python would print that on the terminal the live view is drawing on.
logging.getLogger("paramiko").addHandler(logging.NullHandler())


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

    Keeps the last :data:`~deployer.core.results.OUTPUT_CAP` characters or more, and says how many
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
    """Every host key goes through :func:`deployer.hosts.host_keys.judge_host_key`, as the
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

    Built from the same :class:`~deployer.hosts.ssh_config.Endpoint` as the runner's own
    connection (``~/.ssh/config`` read the same way, under the spec's settings), so it
    reaches the same place: a jump host becomes Fabric's ``gateway``, a ProxyCommand too.
    Raises :class:`~deployer.hosts.ssh_config.SshConfigProblem`.
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
