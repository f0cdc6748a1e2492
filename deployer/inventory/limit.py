"""``--limit`` patterns: Ansible's host pattern grammar, plus our ``tag:`` and ``dc:``.

A pattern is a list of elements separated by ``,`` or ``:``. Each element is

* ``tag:NAME`` or ``dc:NAME`` (ours; ``NAME`` may be a glob) — hosts with that tag, or in
  that datacenter. An element starting with ``tag:`` or ``dc:`` is always ours, so the
  ``:`` after ``tag`` or ``dc`` is no separator;
* ``~REGEX`` — groups and hosts whose name the regular expression matches from its start;
* ``all``, a group name, a host name, or a glob (``web-*``) on group and host names: the
  hosts of the groups that match; the host names are tried too when no group matches or
  the element holds a glob character (``.``, ``?``, ``*``, ``[``). An element naming a
  host exactly is that host, even when a group has the same name;
* an IPv6 address (``2001:db8::5``): its ``:`` are no separators (Ansible splits an
  address that stands among other ``:``-separated elements; we keep it whole).

An element may start with ``!`` (take these hosts out) or ``&`` (keep only hosts also
in these). As in Ansible, the plain elements are added up first, then each ``&`` is
applied, then each ``!``, whatever their order; with no plain element the start is
every host. Matching is case-sensitive.

Worked example, on hosts web-1 (groups web, east), web-2 (web), db-1 (db, east)::

    web:db:!east   → web-1, web-2, db-1 minus web-1 and db-1  → web-2
    web,&east      → web-1, web-2 kept where also in east     → web-1
    !web           → every host minus web-1, web-2            → db-1

``@FILE`` elements (one pattern per line) are read by the command line with
:func:`read_limit_files` before a pattern reaches :func:`limit_hosts`, so a deployment
records the hosts it was given, not the name of a file that may change.

Where this differs from Ansible 2.19, on purpose: ``:`` separates elements even when the
pattern also holds a ``,`` (Ansible then reads ``a:b`` as one name), but never inside an
IPv6 address (``lone:2001:db8::5`` is two elements; Ansible splits the address); an empty ``@FILE`` is
an error (Ansible would take every host); a regular expression that does not compile
is an error (Ansible takes every host); Ansible's subscripts (``web[0]``, ``web[1:3]``)
are refused rather than read as globs.
"""

from __future__ import annotations

import fnmatch
import ipaddress
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from enum import Enum

from deployer.core.errors import PatternError
from deployer.core.targets import Host


class Combine(Enum):
    """How an element's hosts combine with what the elements before it chose."""

    ADD = ""
    INTERSECT = "&"
    EXCLUDE = "!"


@dataclass(frozen=True, slots=True)
class Element:
    """One element of a pattern: ``!web`` is ``Element(Combine.EXCLUDE, "web")``."""

    combine: Combine
    text: str


# Ansible reads `name[0]`, `name[-1]`, `name[0:2]`, `name[1-3]` and `name[2:]` as a
# subscript: a slice of the hosts `name` matches.
_SUBSCRIPT = re.compile(r".+\[(?:-?[0-9]+|[0-9]+[:-][0-9]*)\]")
_GLOB_CHARACTERS = (".", "?", "*", "[")


def split_pattern(pattern: str) -> list[str]:
    """The elements of ``pattern``, split at ``,`` and ``:`` (not inside ``[...]``).

    ``tag:web:!dc:iad`` → tag:web, !dc:iad; ``web[1:3],2001:db8::5`` → web[1:3], 2001:db8::5;
    ``web:!2001:db8::5:lone`` → web, !2001:db8::5, lone: the longest run of words that
    makes an IPv6 address is one element (so ``2001:db8::5:db`` is one address: a
    hexadecimal name after an address needs a ``,``).
    """
    elements: list[str] = []
    for piece in _split_outside_brackets(pattern, ","):
        words = [word.strip() for word in _split_outside_brackets(piece, ":")]
        start = 0
        while start < len(words):
            word = words[start]
            taken = _ipv6_run(words, start)
            if word.lstrip("!&") in ("tag", "dc") and start + 1 < len(words):
                word, taken = f"{word}:{words[start + 1]}", 2
            elif taken:
                word = ":".join(words[start : start + taken])
            start += taken or 1
            if word:
                elements.append(word)
    return elements


def _ipv6_run(words: list[str], start: int) -> int:
    """How many words from ``start`` make the longest IPv6 address there (0: none do)."""
    for end in range(min(len(words), start + 9), start + 2, -1):  # 3 to 9 words: "::1" to 8 groups
        if _is_ipv6(":".join(words[start:end]).lstrip("!&")):
            return end - start
    return 0


def _split_outside_brackets(text: str, separator: str) -> list[str]:
    parts, current, depth = [], "", 0
    for character in text:
        if character == "[":
            depth += 1
        elif character == "]":
            depth = max(depth - 1, 0)
        if character == separator and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += character
    parts.append(current)
    return parts


def _is_ipv6(text: str) -> bool:
    try:
        ipaddress.IPv6Address(text)
    except ValueError:
        return False
    return True


def parse_pattern(pattern: str) -> tuple[Element, ...]:
    """The elements of ``pattern``; raises :class:`PatternError` for one that cannot match as meant."""
    elements = []
    for word in split_pattern(pattern):
        combine = Combine(word[0]) if word[0] in "!&" else Combine.ADD
        text = word[1:].strip() if combine is not Combine.ADD else word
        if not text:
            raise PatternError(f"--limit {pattern}: {word!r} needs a pattern after {word[0]!r}")
        if text.startswith("@"):
            raise PatternError(f"--limit {pattern}: @FILE is read by the command line, not here")
        if text.startswith("~"):
            try:
                re.compile(text[1:])
            except re.error as error:
                message = f"{text!r} is not a regular expression: {error}"
                raise PatternError(f"--limit {pattern}: {message}") from None
        elif not text.startswith(("tag:", "dc:")) and _SUBSCRIPT.fullmatch(text):
            raise PatternError(
                f"--limit {pattern}: {text!r} is an Ansible subscript, which deployer does not take; "
                "name the hosts, or use a glob or ~regex"
            )
        elements.append(Element(combine, text))
    return tuple(elements)


def limit_hosts(hosts: Iterable[Host], pattern: str | None) -> tuple[Host, ...]:
    """The hosts that ``pattern`` selects, in their inventory order; all of them without one."""
    hosts = tuple(hosts)
    if not pattern:
        return hosts
    elements = parse_pattern(pattern)
    if not elements:
        return hosts
    selected = _select(hosts, elements)
    return tuple(host for host in hosts if host.name in selected)


def _select(hosts: Sequence[Host], elements: Sequence[Element]) -> set[str]:
    """Add up the plain elements, then intersect, then exclude (Ansible's order)."""
    groups = {"all"}.union(*(host.groups for host in hosts))
    names = {host.name for host in hosts}
    adds = [element for element in elements if element.combine is Combine.ADD]
    selected: set[str] = set()
    for element in adds:
        if element.text in names:  # a host's exact name is that host, as in Ansible
            selected.add(element.text)
        else:
            selected |= _matching(hosts, groups, element.text)
    if not adds:
        selected = set(names)
    for element in elements:
        if element.combine is Combine.INTERSECT:
            selected &= _matching(hosts, groups, element.text)
    for element in elements:
        if element.combine is Combine.EXCLUDE:
            selected -= _matching(hosts, groups, element.text)
    return selected


def _matching(hosts: Sequence[Host], groups: set[str], text: str) -> set[str]:
    """The names of the hosts one element (without its ``!`` or ``&``) stands for."""
    if text.startswith("tag:"):
        return {host.name for host in hosts if any(fnmatch.fnmatchcase(tag, text[4:]) for tag in host.tags)}
    if text.startswith("dc:"):
        return {host.name for host in hosts if fnmatch.fnmatchcase(host.datacenter, text[3:])}
    matches = _matcher(text)
    chosen_groups = {group for group in groups if matches(group)}
    found = {host.name for host in hosts if "all" in chosen_groups or host.groups & chosen_groups}
    if not chosen_groups or text.startswith("~") or any(c in text for c in _GLOB_CHARACTERS):
        found |= {host.name for host in hosts if matches(host.name)}
    return found


def _matcher(text: str) -> Callable[[str], bool]:
    """A regex (``~``) matches from the start of a name; a glob matches the whole name."""
    expression = re.compile(text[1:]) if text.startswith("~") else re.compile(fnmatch.translate(text))
    return lambda name: expression.match(name) is not None


def read_limit_files(pattern: str, read: Callable[[str], str]) -> str:
    """``pattern`` with each ``@FILE`` element replaced by the file's lines (one pattern a line).

    ``read`` returns a file's text (raising :class:`PatternError` when it cannot). A file
    that lists nothing is an error: retrying "the failed hosts" of an empty list must not
    turn into every host.
    """
    if "@" not in pattern:
        return pattern
    elements = []
    for word in split_pattern(pattern):
        if not word.startswith("@"):
            elements.append(word)
            continue
        lines = [line.strip() for line in read(word[1:]).splitlines() if line.strip()]
        if not lines:
            raise PatternError(f"--limit {word}: the file lists no hosts")
        elements.extend(lines)
    return ",".join(elements)
