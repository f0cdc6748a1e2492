"""Host names as Ansible inventories write them: a port after the name, ranges such as ``web[01:10]``."""

from __future__ import annotations

import ipaddress
import itertools
import re
import string

MAX_RANGE_HOSTS = 100_000  # hosts one `web[1:N]` pattern may expand to

_RANGE = re.compile(r"\[([0-9]*|[a-zA-Z]):([0-9]+|[a-zA-Z])(?::([0-9]+))?\]")
_BRACKETED = re.compile(r"\[([^\[\]]+)\]:([0-9]+)")
_HOST_PORT = re.compile(r"([^:]+):([0-9]+)")


def split_host_port(pattern: str) -> tuple[str, int | None]:
    """An inventory host's name and port, as Ansible reads them in INI and YAML.

    ``web:2222`` → (web, 2222); ``[2001:db8::11]:2222`` → (2001:db8::11, 2222);
    ``2001:db8::11`` (a bare IPv6 address) → (2001:db8::11, None). A range such as
    ``web[1:3]`` is no port, and is left for :func:`expand_host_pattern`; so is
    ``[2001:db8::11]`` without a port, which Ansible too reads as a (broken) range.
    """
    bracketed = _BRACKETED.fullmatch(pattern)
    if bracketed is not None and _is_ip_address(bracketed.group(1)):
        return bracketed.group(1), int(bracketed.group(2))
    if _is_ip_address(pattern):
        return pattern, None
    with_port = _HOST_PORT.fullmatch(pattern)
    if with_port is not None:
        return with_port.group(1), int(with_port.group(2))
    return pattern, None


def _is_ip_address(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


_MAX_RANGE_DIGITS = 18  # a range's bounds: beyond this no range could stay under the limit


def range_host_count(pattern: str) -> int:
    """How many host names ``pattern`` expands to, counted without expanding it.

    ``web[01:10:2].dc[a:c]`` → 5 * 3 = 15. Raises ValueError for a range that runs
    backwards, mixes letters and digits, pads its ends to different widths, has a step
    below 1, or bounds too long to be a host number.
    """
    count = 1
    for match in _RANGE.finditer(pattern):
        first, last, step, _width = _range_bounds(pattern, match)
        count *= (last - first) // step + 1
    return count


def _range_bounds(pattern: str, match: re.Match[str]) -> tuple[int, int, int, int]:
    """(first, last, step, zero-padded width) of one range; letters count a-z then A-Z."""
    start, end, step_text = match.group(1) or "0", match.group(2), match.group(3)
    if max(len(start), len(end), len(step_text or "")) > _MAX_RANGE_DIGITS:
        raise ValueError(f"{pattern!r}: a range's bounds may have at most {_MAX_RANGE_DIGITS} digits")
    step = int(step_text) if step_text else 1
    if step < 1:
        raise ValueError(f"{pattern!r}: the step of a range must be at least 1")
    width = 0
    if start.isdigit() and end.isdigit():
        first, last = int(start), int(end)
        width = len(start) if start.startswith("0") and len(start) > 1 else 0
        if width and len(end) != width:
            raise ValueError(f"{pattern!r}: a zero-padded range needs a start and an end of the same width")
    elif start.isalpha() and end.isalpha():
        first, last = string.ascii_letters.index(start), string.ascii_letters.index(end)
    else:
        raise ValueError(f"{pattern!r}: a range is either letters or digits, not both")
    if first > last:
        raise ValueError(f"{pattern!r}: the range runs backwards")
    return first, last, step, width


def expand_host_pattern(pattern: str) -> list[str]:
    """Ansible's host ranges: ``web[01:03].dc`` → web01.dc, web02.dc, web03.dc; ``db-[a:c]``.

    A range without a start begins at 0 (``mail[:2]`` → mail0, mail1, mail2); letters run
    a-z then A-Z, as in Ansible. Raises ValueError for a range that runs backwards, mixes
    letters and digits, pads its ends to different widths, or is huge: the hosts are
    counted (:func:`range_host_count`) before any list is built.
    """
    if range_host_count(pattern) > MAX_RANGE_HOSTS:
        raise ValueError(f"{pattern!r}: a range may hold at most {MAX_RANGE_HOSTS} hosts")
    pieces: list[list[str]] = []
    at = 0
    for match in _RANGE.finditer(pattern):
        first, last, step, width = _range_bounds(pattern, match)
        if match.group(2).isdigit():
            items = [str(number).zfill(width) for number in range(first, last + 1, step)]
        else:
            items = list(string.ascii_letters[first : last + 1 : step])
        pieces += [[pattern[at : match.start()]], items]
        at = match.end()
    pieces.append([pattern[at:]])
    return ["".join(parts) for parts in itertools.product(*pieces)]
