"""Hosts, fleets and how to reach a host: plain values, no I/O.

Inventory files are read by :mod:`deployer.inventory` and ``--limit`` patterns by
:mod:`deployer.inventory.limit`; this module holds what they work on, and the rule that merges
SSH settings.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace


@dataclass(frozen=True, slots=True)
class SshOptions:
    """SSH settings at one level (inventory defaults, spec, host); ``None`` means "not set here"."""

    user: str | None = None
    identity_file: str | None = None
    known_hosts: str | None = None
    connect_timeout: float | None = None
    keepalive: float | None = None
    host_key_policy: str | None = None  # "strict" or "accept-new"
    use_ssh_config: bool | None = None
    config_file: str | None = None  # the OpenSSH client config read (default ~/.ssh/config)
    proxy_jump: str | None = None  # OpenSSH ProxyJump: [user@]host[:port], comma-separated hops, or "none"

    def over(self, base: SshOptions) -> SshOptions:
        """These settings laid over ``base``: a field set here wins, an unset one falls through."""
        changes = {f.name: getattr(self, f.name) for f in fields(self) if getattr(self, f.name) is not None}
        return replace(base, **changes)


@dataclass(frozen=True, slots=True)
class Host:
    """One host of a fleet; ``port`` None means "not set": ``~/.ssh/config``'s Port, else 22.

    ``ssh`` holds the host's own settings (our format's per-host ``ssh:``, Ansible's
    ``ansible_ssh_private_key_file`` and ``ansible_ssh_common_args``), which win over
    every ``ssh:`` block. ``refusal`` says why deployer cannot reach the host at all
    (``ansible_connection=docker``): told when a deployment selects it.
    """

    name: str
    address: str
    datacenter: str
    port: int | None = None
    user: str | None = None
    tags: frozenset[str] = frozenset()
    ssh: SshOptions = field(default_factory=SshOptions)
    refusal: str | None = None
    groups: frozenset[str] = frozenset()  # its Ansible groups, parents included (not `all`)


def endpoint(address: str, port: int) -> str:
    """``address:port`` for messages; an IPv6 address in brackets (``[2001:db8::11]:2222``)."""
    return f"[{address}]:{port}" if ":" in address else f"{address}:{port}"


@dataclass(frozen=True, slots=True)
class Fleet:
    """The hosts of one inventory in inventory order, with its inventory-wide SSH defaults."""

    hosts: tuple[Host, ...]
    ssh: SshOptions = field(default_factory=SshOptions)
    source: str = ""
    warnings: tuple[str, ...] = ()  # told once when a deployment is planned (ignored Ansible variables)

    def datacenters(self) -> list[str]:
        """Datacenter names in the order they first appear."""
        return list(dict.fromkeys(host.datacenter for host in self.hosts))


@dataclass(frozen=True, slots=True)
class SshTarget:
    """How to reach one host as the inventory, the spec and the host itself say.

    A ``None`` is "not set": the OpenSSH client config, then :data:`DEFAULT_SSH`, decide
    (:func:`deployer.hosts.ssh_config.resolve_endpoint` does that when connecting).
    """

    host: Host
    user: str | None
    identity_file: str | None
    known_hosts: str | None
    connect_timeout: float | None
    keepalive: float | None
    host_key_policy: str | None
    use_ssh_config: bool
    config_file: str | None = None
    proxy_jump: str | None = None


DEFAULT_SSH = SshOptions(connect_timeout=10.0, keepalive=15.0, host_key_policy="strict", use_ssh_config=True)
DEFAULT_PORT = 22


def resolve_ssh(host: Host, inventory: SshOptions, spec: SshOptions) -> SshTarget:
    """How to reach ``host``: inventory ``ssh:`` < spec ``ssh:`` < the host's own settings.

    A host's own ``user`` wins as an Ansible ``ansible_user`` does over a play's
    ``remote_user``. Built-in defaults and ``~/.ssh/config`` sit below all three; they
    are applied when connecting (:mod:`deployer.hosts.ssh_config`), as they need the file.
    """
    merged = host.ssh.over(spec.over(inventory))
    return SshTarget(
        host=host,
        user=host.user or merged.user,
        identity_file=merged.identity_file,
        known_hosts=merged.known_hosts,
        connect_timeout=merged.connect_timeout,
        keepalive=merged.keepalive,
        host_key_policy=merged.host_key_policy,
        use_ssh_config=merged.use_ssh_config is not False,
        config_file=merged.config_file,
        proxy_jump=merged.proxy_jump,
    )
