"""Where one SSH connection goes, every setting decided: the runner's and the Fabric hooks'.

Each setting comes from the first of these that sets it, as the precedence table of
docs/spec.md says::

    the host's own settings > spec ssh: > inventory ssh: > ~/.ssh/config > built-in defaults

The first three are already merged in a :class:`~deployer.core.targets.SshTarget`; this module
lays them over the OpenSSH client config (``ssh.config_file``, default ``~/.ssh/config``,
when ``use_ssh_config``), read for the host as ``ssh`` would read it (``Host`` and
``Match`` blocks, ``Include``, ``%h`` tokens: asyncssh's own parser), then over
:data:`~deployer.core.targets.DEFAULT_SSH`. The client options read from the file are
``HostName``, ``Port``, ``User``, ``IdentityFile``, ``IdentitiesOnly``, ``ProxyJump``,
``ProxyCommand``, ``UserKnownHostsFile``, ``StrictHostKeyChecking``, ``ConnectTimeout``
and ``ServerAliveInterval``; other options are not applied.

The result, an :class:`Endpoint`, is passed to asyncssh (and to Fabric) in full, with
no config file of its own: both libraries then connect to the same place the same way.

A jump host (``ProxyJump``, ``proxy_jump``) is an endpoint too, reached with the key,
``known_hosts``, host-key policy and timeouts of the host behind it, over its own config
block; its user and port are the ``user@`` and ``:port`` written in the jump, else its
config's, else the defaults (never the host's: a bastion has users of its own).
``a,b`` reaches ``b`` through ``a``.
"""

from __future__ import annotations

import getpass
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, replace

from asyncssh.config import SSHClientConfig, SSHConfig

from deployer.core.targets import DEFAULT_PORT, DEFAULT_SSH, SshOptions, SshTarget, endpoint

DEFAULT_CONFIG_FILE = "~/.ssh/config"
DEFAULT_KNOWN_HOSTS = "~/.ssh/known_hosts"
MAX_JUMPS = 8  # hops through jump hosts before a ProxyJump chain counts as a loop


class SshConfigProblem(Exception):
    """The SSH settings of a host cannot be worked out; the message says why, for people."""


@dataclass(frozen=True, slots=True)
class Endpoint:
    """One SSH connection, fully resolved; hashable, so equal endpoints share a connection."""

    alias: str  # the name asked for: the host's address, or a jump host as written
    address: str  # where the TCP connection goes (the config's HostName, else the alias)
    port: int
    user: str | None  # None: the local user name, as ssh has it
    identity_files: tuple[str, ...]  # empty: the client's default keys and the agent
    identities_only: bool  # offer only identity_files, no agent keys
    known_hosts: str
    host_key_policy: str  # "strict" or "accept-new"
    connect_timeout: float
    keepalive: float
    jump: Endpoint | None = None  # reached through this host's connection
    proxy_command: str | None = None  # reached through this command's stdin and stdout

    @property
    def where(self) -> str:
        return endpoint(self.address, self.port)


# --- the config file ----------------------------------------------------------------------


_OPTIONS = (
    "Hostname",
    "Port",
    "User",
    "IdentityFile",
    "IdentitiesOnly",
    "ProxyJump",
    "ProxyCommand",
    "UserKnownHostsFile",
    "StrictHostKeyChecking",
    "ConnectTimeout",
    "ServerAliveInterval",
)


class _ClientConfig(SSHClientConfig):
    """asyncssh's client config parser, also keeping StrictHostKeyChecking (it has no use for it)."""

    # A ProxyCommand's %h and %p are expanded once the spec's settings are laid over the file.
    _percent_expand = SSHClientConfig._percent_expand - {"ProxyCommand"}
    _handlers = {  # noqa: RUF012 (asyncssh looks its handlers up in this class attribute)
        **SSHClientConfig._handlers,
        "stricthostkeychecking": ("StrictHostKeyChecking", SSHConfig._set_string),
    }


def read_config(path: str, alias: str) -> Mapping[str, object]:
    """The options ``path`` gives a connection to ``alias``, as OpenSSH reads them (first value wins)."""
    try:
        config = _ClientConfig.load(None, [path], False, False, False, getpass.getuser(), (), alias, ())
    except OSError as error:
        raise SshConfigProblem(f"cannot read the SSH config {path}: {error.strerror or error}") from None
    except Exception as error:  # asyncssh's ConfigParseError and its kin: the file says something wrong
        raise SshConfigProblem(f"cannot read the SSH config {path}: {error}") from None
    return {name: value for name in _OPTIONS if (value := config.get(name)) is not None}


def _config_for(target: SshTarget, alias: str) -> Mapping[str, object]:
    if not target.use_ssh_config:
        return {}
    path = os.path.expanduser(target.config_file or DEFAULT_CONFIG_FILE)
    if not os.path.isfile(path):
        if target.config_file:
            raise SshConfigProblem(f"the SSH config file {path} (ssh.config_file) does not exist")
        return {}
    options = dict(read_config(path, alias))
    listed = options.get("IdentityFile")
    # As ssh does, a key file the config names but that is not there is passed over.
    if isinstance(listed, list):
        options["IdentityFile"] = [p for p in listed if os.path.isfile(os.path.expanduser(str(p)))]
    return options


# --- laying the levels over each other (pure) ---------------------------------------------------


def _policy(value: object) -> str | None:
    """StrictHostKeyChecking as a host-key policy: deployer never accepts a changed key."""
    if not isinstance(value, str):
        return None
    word = value.lower()
    if word in ("yes", "ask", "true"):
        return "strict"
    if word in ("accept-new", "no", "off", "false"):
        return "accept-new"
    return None


def _first(value: object) -> str | None:
    if isinstance(value, list) and value:
        return str(value[0])
    return value if isinstance(value, str) else None


def endpoint_from(
    alias: str,
    explicit: SshOptions,
    port: int | None,
    config: Mapping[str, object],
    jump: Endpoint | None,
) -> Endpoint:
    """``explicit`` (inventory < spec < host, merged) over ``config`` over the built-in defaults.

    >>> endpoint_from("web1", SshOptions(user="deploy"), None,
    ...               {"Hostname": "10.0.0.5", "Port": 2222, "User": "ops"}, None).where
    '10.0.0.5:2222'
    """
    identity_files: tuple[str, ...]
    if explicit.identity_file:
        identity_files = (os.path.expanduser(explicit.identity_file),)
    else:
        listed = config.get("IdentityFile")
        identity_files = tuple(os.path.expanduser(str(p)) for p in listed) if isinstance(listed, list) else ()
    known_hosts = explicit.known_hosts or _first(config.get("UserKnownHostsFile")) or DEFAULT_KNOWN_HOSTS
    timeout = explicit.connect_timeout or _number(config.get("ConnectTimeout")) or DEFAULT_SSH.connect_timeout
    keepalive = explicit.keepalive
    if keepalive is None:
        keepalive = _number(config.get("ServerAliveInterval"))
    if keepalive is None:
        keepalive = DEFAULT_SSH.keepalive
    assert timeout is not None and keepalive is not None
    proxy_command = config.get("ProxyCommand") if jump is None else None
    if explicit.proxy_jump is not None or (
        isinstance(proxy_command, str) and proxy_command.lower() == "none"
    ):
        proxy_command = None
    address = str(config.get("Hostname") or alias)
    port = port or _int(config.get("Port")) or DEFAULT_PORT
    user = explicit.user or _str(config.get("User"))
    if isinstance(proxy_command, str):
        proxy_command = _expand(proxy_command, {"h": address, "p": str(port), "n": alias, "r": user or ""})
    return Endpoint(
        alias=alias,
        address=address,
        port=port,
        user=user,
        identity_files=identity_files,
        identities_only=config.get("IdentitiesOnly") is True,
        known_hosts=os.path.expanduser(known_hosts),
        host_key_policy=explicit.host_key_policy
        or _policy(config.get("StrictHostKeyChecking"))
        or str(DEFAULT_SSH.host_key_policy),
        connect_timeout=float(timeout),
        keepalive=float(keepalive),
        jump=jump,
        proxy_command=proxy_command if isinstance(proxy_command, str) else None,
    )


def _expand(command: str, tokens: Mapping[str, str]) -> str:
    """OpenSSH's ``%h``-style tokens in a ProxyCommand; ``%%`` is ``%``, unknown ones stay.

    >>> _expand("nc %h %p # 100%%", {"h": "10.0.0.5", "p": "2222"})
    'nc 10.0.0.5 2222 # 100%'
    """
    return re.sub(
        r"%(.)", lambda m: "%" if m.group(1) == "%" else tokens.get(m.group(1), m.group(0)), command
    )


def _number(value: object) -> float | None:
    return float(value) if isinstance(value, int) and not isinstance(value, bool) else None


def _int(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _str(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def split_jump(hop: str) -> tuple[str | None, str, int | None]:
    """``"ops@bastion:2222"`` → ``("ops", "bastion", 2222)``; raises SshConfigProblem."""
    user, at, rest = hop.rpartition("@")
    host, colon, port_text = rest.rpartition(":") if rest.count(":") == 1 else ("", "", rest)
    if not colon:
        host = port_text
        port_text = ""
    if not host or (at and not user):
        raise SshConfigProblem(f"ProxyJump {hop!r} is not [user@]host[:port]")
    port: int | None = None
    if port_text:
        if not port_text.isdigit() or not 1 <= int(port_text) <= 65535:
            raise SshConfigProblem(f"ProxyJump {hop!r}: {port_text!r} is not a port from 1 to 65535")
        port = int(port_text)
    return (user or None), host, port


# --- resolving (reads the config file) ----------------------------------------------------------


def resolve_endpoint(target: SshTarget) -> Endpoint:
    """Where and how to connect to ``target``'s host; raises :class:`SshConfigProblem`."""
    host = target.host
    explicit = SshOptions(
        user=target.user,
        identity_file=target.identity_file,
        known_hosts=target.known_hosts,
        connect_timeout=target.connect_timeout,
        keepalive=target.keepalive,
        host_key_policy=target.host_key_policy,
        proxy_jump=target.proxy_jump,
    )
    return _resolve(target, host.address, explicit, host.port, 0)


def _resolve(target: SshTarget, alias: str, explicit: SshOptions, port: int | None, depth: int) -> Endpoint:
    if depth > MAX_JUMPS:
        raise SshConfigProblem(
            f"more than {MAX_JUMPS} jump hosts on the way to {target.host.address}: a loop?"
        )
    config = _config_for(target, alias)
    jumps = explicit.proxy_jump if explicit.proxy_jump is not None else _str(config.get("ProxyJump"))
    jump: Endpoint | None = None
    if jumps and jumps.lower() != "none":
        for index, hop in enumerate(part.strip() for part in jumps.split(",")):
            user, hop_host, hop_port = split_jump(hop)
            # The host's key, known_hosts, policy and timeouts, not its user nor its proxy_jump.
            hop_options = replace(explicit, user=user, proxy_jump=None)
            # The first hop follows its own config's ProxyJump; each later one goes through the one before.
            if index > 0:
                hop_options = SshOptions(proxy_jump="none").over(hop_options)
            hop_endpoint = _resolve(target, hop_host, hop_options, hop_port, depth + 1)
            jump = hop_endpoint if index == 0 else _through(hop_endpoint, jump)
    return endpoint_from(alias, explicit, port, config, jump)


def _through(endpoint: Endpoint, jump: Endpoint | None) -> Endpoint:
    """``endpoint`` reached through ``jump`` (a later hop of a ``a,b`` chain)."""
    return replace(endpoint, jump=jump, proxy_command=None)
