"""A fleet out of the hosts any inventory format read: every host with a datacenter, names unique.

Each format reads its file into :class:`HostEntry` values, in file order, keeping where
each host was written; :func:`assemble_fleet` then checks what holds for a fleet as a
whole and reports every problem at once, at the line of the host it is about.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from deployer.core.errors import SpecError, SpecIssue
from deployer.core.targets import Fleet, Host, SshOptions


@dataclass(frozen=True, slots=True)
class HostEntry:
    """A host as read from any inventory format, before the fleet-wide checks."""

    name: str
    address: str
    datacenter: str | None
    port: int | None = None  # not set: ~/.ssh/config's, else 22
    user: str | None = None
    tags: frozenset[str] = frozenset()
    ssh: SshOptions = SshOptions()  # noqa: RUF009 (frozen: sharing one is safe); the host's own settings
    refusal: str | None = None  # why deployer cannot reach it (an ansible_connection it does not speak)
    field: str = ""  # where it was written, as shown in errors
    line: int | None = None
    groups: tuple[str, ...] = ()  # Ansible groups, named in the datacenter hint
    member_of: frozenset[str] = frozenset()  # every Ansible group it is in, parents too, not `all`


def missing_datacenter(name: str, groups: Sequence[str]) -> str:
    """What to say of a host without a datacenter; ``groups`` are where it could be set."""
    where = f" or on one of its groups ({', '.join(groups)})" if groups else ""
    return f"host {name!r} has no datacenter: set the variable datacenter on the host{where}"


def assemble_fleet(
    entries: Sequence[HostEntry],
    *,
    file: str,
    ssh: SshOptions,
    source: str,
    empty_at: tuple[str, int | None] = ("", None),
) -> Fleet:
    """The fleet of ``entries`` in order; every host needs a datacenter and a unique name.

    Raises :class:`SpecError` listing each host without a datacenter, each repeated
    name, or an empty fleet (reported at ``empty_at``: field and line).
    """
    issues: list[SpecIssue] = []
    first: dict[str, HostEntry] = {}
    hosts: list[Host] = []
    for entry in entries:
        if entry.name in first:
            earlier = first[entry.name]
            at = f" at line {earlier.line}" if earlier.line is not None else ""
            issues.append(
                SpecIssue(file, entry.line, entry.field, f"duplicate host name {entry.name!r} (first{at})")
            )
            continue
        first[entry.name] = entry
        if entry.datacenter is None:
            issues.append(
                SpecIssue(file, entry.line, entry.field, missing_datacenter(entry.name, entry.groups))
            )
            continue
        hosts.append(
            Host(
                name=entry.name,
                address=entry.address,
                datacenter=entry.datacenter,
                port=entry.port,
                user=entry.user,
                tags=entry.tags,
                ssh=entry.ssh,
                refusal=entry.refusal,
                groups=entry.member_of,
            )
        )
    if not entries:
        issues.append(SpecIssue(file, empty_at[1], empty_at[0], "no hosts: a fleet needs at least one host"))
    if issues:
        raise SpecError(issues)
    return Fleet(hosts=tuple(hosts), ssh=ssh, source=source)
