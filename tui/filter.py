"""The host list's filter: what the operator types in the filter box, and the hosts it keeps.

Pure: plain strings and hosts in, a :class:`HostFilter` and hosts out.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache

from deployer.core.errors import DeployerError
from deployer.core.results import HostStatus
from tui.model import ShownHost


class FilterError(DeployerError):
    """A filter the host list cannot read (an unknown state)."""


STATE_ALIASES: Mapping[str, frozenset[HostStatus]] = {
    **{status.value: frozenset({status}) for status in HostStatus},
    "ok": frozenset({HostStatus.SUCCEEDED}),
    "done": frozenset(status for status in HostStatus if status.is_final),
    "failures": frozenset(status for status in HostStatus if status.is_failure),
}


@dataclass(frozen=True, slots=True)
class HostFilter:
    """Which hosts the list shows: any of ``states``, any of ``datacenters``, any name pattern.

    An empty part matches everything; the parts are combined with AND. Name and
    datacenter patterns are case-insensitive; a pattern with ``*``, ``?`` or ``[``
    is a glob, any other is a substring.

    Worked example: ``failed unreachable dc:eu-1 web`` shows the failed or
    unreachable hosts of eu-1 whose names contain "web".
    """

    states: frozenset[HostStatus] = frozenset()
    datacenters: tuple[str, ...] = ()
    names: tuple[str, ...] = ()

    @property
    def is_empty(self) -> bool:
        return not (self.states or self.datacenters or self.names)

    def matches(self, host: ShownHost) -> bool:
        if self.states and host.status not in self.states:
            return False
        if self.datacenters and not any(_pattern_matches(p, host.datacenter) for p in self.datacenters):
            return False
        return not self.names or any(_pattern_matches(p, host.name) for p in self.names)

    def describe(self) -> str:
        """The filter in words, for the list's title."""
        if self.is_empty:
            return "all hosts"
        parts = []
        if self.states:
            parts.append(" or ".join(sorted(status.value for status in self.states)))
        if self.datacenters:
            parts.append("in " + " or ".join(self.datacenters))
        if self.names:
            parts.append("named " + " or ".join(self.names))
        return ", ".join(parts)


FILTER_HELP = "states (failed, running, pending, ok, failures...), dc:NAME, state:NAME, name:GLOB, or a name"


def parse_filter(text: str) -> HostFilter:
    """Read what was typed in the filter box; FilterError names an unknown state.

    Words are: a state (or ``ok``, ``done``, ``failures``), ``state:WORD``,
    ``dc:PATTERN``, ``name:PATTERN``, or else a name pattern.

    >>> parse_filter("failed dc:eu-* web-1")
    HostFilter(states=frozenset({<HostStatus.FAILED: 'failed'>}), datacenters=('eu-*',), names=('web-1',))
    """
    states: set[HostStatus] = set()
    datacenters: list[str] = []
    names: list[str] = []
    for word in text.split():
        key, colon, value = word.partition(":")
        key = key.lower()
        if colon and key in ("dc", "datacenter"):
            datacenters.append(value)
        elif colon and key in ("state", "status", "is"):
            if value:  # `state:` alone is a word still being typed
                states |= _states_named(value)
        elif colon and key in ("name", "host"):
            names.append(value)
        elif word.lower() in STATE_ALIASES:
            states |= STATE_ALIASES[word.lower()]
        else:
            names.append(word)
    return HostFilter(frozenset(states), tuple(d for d in datacenters if d), tuple(n for n in names if n))


def _states_named(word: str) -> frozenset[HostStatus]:
    """The states a word names: a state, an alias, or the start of exactly one of them."""
    word = word.lower()
    if word in STATE_ALIASES:
        return STATE_ALIASES[word]
    candidates = [name for name in STATE_ALIASES if name.startswith(word)]
    if len(candidates) == 1:
        return STATE_ALIASES[candidates[0]]
    if candidates:
        raise FilterError(f"state {word!r} could be {' or '.join(candidates)}")
    raise FilterError(f"unknown state {word!r}; one of {', '.join(STATE_ALIASES)}")


def _pattern_matches(pattern: str, value: str) -> bool:
    return _matcher(pattern)(value.lower())


@lru_cache(maxsize=64)
def _matcher(pattern: str) -> Callable[[str], bool]:
    """Whether a lower-cased value matches ``pattern``: compiled once, as a filter runs over thousands."""
    pattern = pattern.lower()
    if any(char in pattern for char in "*?["):
        glob = re.compile(fnmatch.translate(pattern))
        return lambda value: glob.match(value) is not None
    return lambda value: pattern in value


def filter_hosts(hosts: Sequence[ShownHost], host_filter: HostFilter) -> Sequence[ShownHost]:
    """The hosts that pass (as :meth:`HostFilter.matches` says); ``hosts`` itself when the
    filter is empty (no copy of thousands).

    Thousands of hosts live in a handful of datacenters: each datacenter's name is
    matched once, not once per host, so typing a filter over a large fleet stays quick.
    """
    if host_filter.is_empty:
        return hosts
    states, names = host_filter.states, host_filter.names
    in_datacenters: set[str] | None = None
    if host_filter.datacenters:
        in_datacenters = {
            datacenter
            for datacenter in {host.datacenter for host in hosts}
            if any(_pattern_matches(pattern, datacenter) for pattern in host_filter.datacenters)
        }
    return [
        host
        for host in hosts
        if (not states or host.status in states)
        and (in_datacenters is None or host.datacenter in in_datacenters)
        and (not names or any(_pattern_matches(pattern, host.name) for pattern in names))
    ]
