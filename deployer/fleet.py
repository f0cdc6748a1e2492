"""Hosts, fleets and how to reach a host: plain values, no I/O.

Inventory files are read by :mod:`deployer.inventory` and ``--limit`` patterns by
:mod:`deployer.limit`; this module holds what they work on, and the rule that merges
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

    def over(self, base: SshOptions) -> SshOptions:
        """These settings laid over ``base``: a field set here wins, an unset one falls through."""
        changes = {f.name: getattr(self, f.name) for f in fields(self) if getattr(self, f.name) is not None}
        return replace(base, **changes)


@dataclass(frozen=True, slots=True)
class Host:
    name: str
    address: str
    datacenter: str
    port: int = 22
    user: str | None = None
    tags: frozenset[str] = frozenset()
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

    def datacenters(self) -> list[str]:
        """Datacenter names in the order they first appear."""
        return list(dict.fromkeys(host.datacenter for host in self.hosts))


@dataclass(frozen=True, slots=True)
class SshTarget:
    """Everything needed to open one host's connection, fully resolved."""

    host: Host
    user: str | None
    identity_file: str | None
    known_hosts: str | None
    connect_timeout: float
    keepalive: float
    host_key_policy: str
    use_ssh_config: bool


DEFAULT_SSH = SshOptions(connect_timeout=10.0, keepalive=15.0, host_key_policy="strict", use_ssh_config=True)


def resolve_ssh(host: Host, inventory: SshOptions, spec: SshOptions) -> SshTarget:
    """How to reach ``host``: built-in defaults < inventory ``ssh:`` < spec ``ssh:`` < the host's own user.

    A host's own ``user`` wins as an Ansible ``ansible_user`` does over a play's ``remote_user``.
    """
    merged = spec.over(inventory.over(DEFAULT_SSH))
    assert merged.connect_timeout is not None and merged.keepalive is not None
    return SshTarget(
        host=host,
        user=host.user or merged.user,
        identity_file=merged.identity_file,
        known_hosts=merged.known_hosts,
        connect_timeout=merged.connect_timeout,
        keepalive=merged.keepalive,
        host_key_policy=merged.host_key_policy or "strict",
        use_ssh_config=bool(merged.use_ssh_config),
    )
