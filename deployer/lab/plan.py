"""What a lab fleet is made of: host names, addresses, datacenters, and its files' text.

Pure: numbers in, values and text out. The server process and the CLI side both
build on these, so the inventory a person reads and the hosts the server binds
can never disagree.
"""

from __future__ import annotations

import enum
import ipaddress
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from deployer.core.errors import LabError
from deployer.core.targets import Host

DEFAULT_PORT = 2222  # fixed and unprivileged, so a lab needs no root
DEFAULT_BASE_ADDRESS = "127.0.20.1"
DEFAULT_HOST_COUNT = 12
DEFAULT_DATACENTER_COUNT = 3
MAX_HOST_COUNT = 1000

_LOOPBACK = ipaddress.IPv4Network("127.0.0.0/8")
_LOOPBACK_BROADCAST = ipaddress.IPv4Address("127.255.255.255")


class FaultMode(enum.Enum):
    """What is wrong with one lab host, as ``deploy lab break --mode`` names it."""

    OK = "ok"
    DOWN = "down"  # nothing listens: connection refused, open connections cut
    HANG = "hang"  # TCP connects, SSH never answers; open sessions freeze
    FAIL_HOOK = "fail-hook"  # up, but its health check (the marker file) fails

    @classmethod
    def parse(cls, text: str) -> FaultMode:
        try:
            return cls(text)
        except ValueError:
            names = ", ".join(mode.value for mode in cls)
            raise LabError(f"unknown fault mode {text!r}; expected one of {names}") from None


# The words ``deploy lab status`` shows a person; the enum values are for machines.
FAULT_DESCRIPTIONS: Mapping[FaultMode, str] = {
    FaultMode.OK: "up",
    FaultMode.DOWN: "down (refuses connections)",
    FaultMode.HANG: "hung (never answers)",
    FaultMode.FAIL_HOOK: "up, hooks fail (unhealthy marker)",
}


@dataclass(frozen=True, slots=True)
class LabConfig:
    """What ``deploy lab up`` asked for: the hosts to serve and the user they run as.

    Written to ``DIR/lab.json`` by the CLI side and read by the server process.
    """

    hosts: tuple[Host, ...]
    user: str
    owner_pid: int | None = None  # the lab stops by itself once this process is gone

    def to_json(self) -> str:
        hosts = [
            {"name": h.name, "address": h.address, "port": h.port, "datacenter": h.datacenter}
            for h in self.hosts
        ]
        document = {"version": 1, "user": self.user, "owner_pid": self.owner_pid, "hosts": hosts}
        return json.dumps(document, indent=2) + "\n"

    @classmethod
    def from_json(cls, text: str, source: str) -> LabConfig:
        try:
            data: Any = json.loads(text)
            user = str(data["user"])
            hosts = tuple(
                Host(
                    name=str(item["name"]),
                    address=str(item["address"]),
                    port=int(item["port"]),
                    datacenter=str(item["datacenter"]),
                    user=user,
                )
                for item in data["hosts"]
            )
            owner = data.get("owner_pid")
            owner_pid = None if owner is None else int(owner)
        except (ValueError, KeyError, TypeError) as error:
            raise LabError(f"{source} is not a lab configuration: {error}") from None
        if not hosts:
            raise LabError(f"{source} lists no hosts")
        return cls(hosts=hosts, user=user, owner_pid=owner_pid)


def host_names(count: int) -> list[str]:
    """``lab01`` .. ``lab12``; three digits from 100 hosts on, so names sort as numbers do."""
    width = max(2, len(str(count)))
    return [f"lab{number:0{width}d}" for number in range(1, count + 1)]


def datacenter_sizes(host_count: int, datacenter_count: int) -> list[int]:
    """How many hosts each datacenter gets: contiguous blocks, the first ones one larger.

    12 hosts over 3 datacenters: [4, 4, 4]. 10 over 3: [4, 3, 3] (lab01-04 in dc1,
    lab05-07 in dc2, lab08-10 in dc3). Inventory order is thus *not* striped: a
    planner has to stripe waves across datacenters itself.
    """
    share, extra = divmod(host_count, datacenter_count)
    return [share + (1 if index < extra else 0) for index in range(datacenter_count)]


def plan_hosts(
    host_count: int,
    datacenter_count: int,
    *,
    base_address: str = DEFAULT_BASE_ADDRESS,
    port: int = DEFAULT_PORT,
    user: str | None = None,
) -> tuple[Host, ...]:
    """The lab's hosts: consecutive loopback addresses from ``base_address``, one port.

    ``plan_hosts(12, 3)`` gives lab01 at 127.0.20.1 … lab12 at 127.0.20.12, all on
    port 2222, lab01-04 in dc1, lab05-08 in dc2, lab09-12 in dc3. Raises
    :class:`LabError` for numbers or addresses that cannot make a lab.
    """
    if not 1 <= host_count <= MAX_HOST_COUNT:
        raise LabError(f"--hosts must be between 1 and {MAX_HOST_COUNT}, not {host_count}")
    if not 1 <= datacenter_count <= host_count:
        raise LabError(
            f"--datacenters must be between 1 and the number of hosts ({host_count}), not {datacenter_count}"
        )
    if not 1 <= port <= 65535:
        raise LabError(f"--port must be between 1 and 65535, not {port}")
    try:
        first = ipaddress.IPv4Address(base_address)
    except ValueError:
        raise LabError(f"--base-address {base_address!r} is not an IPv4 address") from None
    last_number = int(first) + host_count - 1
    if first not in _LOOPBACK or last_number >= int(_LOOPBACK_BROADCAST):
        raise LabError(
            f"{host_count} hosts from {first} do not fit in the loopback range 127.0.0.0/8; "
            "choose a --base-address such as 127.0.20.1"
        )
    datacenters = [
        f"dc{index + 1}"
        for index, size in enumerate(datacenter_sizes(host_count, datacenter_count))
        for _ in range(size)
    ]
    return tuple(
        Host(
            name=name,
            address=str(ipaddress.IPv4Address(int(first) + index)),
            port=port,
            datacenter=datacenters[index],
            user=user,
        )
        for index, name in enumerate(host_names(host_count))
    )


def known_hosts_name(host: Host) -> str:
    """How OpenSSH names a host in known_hosts: bare on port 22, ``[addr]:port`` otherwise."""
    return host.address if host.port == 22 else f"[{host.address}]:{host.port}"


def render_known_hosts(hosts: Sequence[Host], public_keys: Mapping[str, str]) -> str:
    """One line per host with its own host key (``public_keys``: host name → ``type base64``)."""
    return "".join(f"{known_hosts_name(host)} {public_keys[host.name]}\n" for host in hosts)


def render_inventory(hosts: Sequence[Host], *, identity_file: str, known_hosts: str, stop_hint: str) -> str:
    """The lab as an inventory in deployer's own format, one flow mapping per host.

    Every scalar is written as a JSON string or number, which YAML reads back as is
    (a path or user name with a colon or a ``#`` stays intact).
    """
    quote = json.dumps
    lines = [
        "# A lab fleet written by `deploy lab up`: real SSH servers on loopback addresses.",
        f"# Stop it with: {stop_hint}",
        "ssh: {"
        f"identity_file: {quote(identity_file)}, "
        f"known_hosts: {quote(known_hosts)}, "
        'host_key_policy: "strict"}',
        "hosts:",
    ]
    for host in hosts:
        user = f", user: {quote(host.user)}" if host.user else ""
        lines.append(
            f"  - {{name: {quote(host.name)}, address: {quote(host.address)}, port: {host.port}, "
            f"datacenter: {quote(host.datacenter)}{user}}}"
        )
    return "\n".join(lines) + "\n"
