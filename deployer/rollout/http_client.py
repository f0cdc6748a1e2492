"""A small HTTP/1.1 client on asyncio streams, for gates and webhooks.

Why not urllib: its calls block a thread, and a thread cannot be cancelled. A server
that never answers would then hold the process at exit (``asyncio.run`` waits for its
worker threads). Here every read and write is a coroutine: a timeout or a cancel ends
the request at once. One request per connection (``Connection: close``); a body of
``Content-Length``, ``chunked`` or up to EOF, cut at ``limit`` bytes.
"""

from __future__ import annotations

import asyncio
import re
import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

from deployer.core.errors import HttpError

_REFERENCE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
MAX_BODY = 1 << 20  # 1 MiB: far above a Prometheus query's answer, far below harm


@dataclass(frozen=True, slots=True)
class HttpResponse:
    status: int
    body: bytes


async def http_request(
    method: str,
    url: str,
    *,
    headers: Mapping[str, str] | None = None,
    body: bytes = b"",
    timeout: float,
    limit: int = MAX_BODY,
) -> HttpResponse:
    """Send one request and read the answer, all within ``timeout`` seconds.

    Raises :class:`HttpError` (a bad URL, a refused connection, a malformed answer, a
    body over ``limit``) and :class:`TimeoutError`.
    """
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise HttpError(f"not an http:// or https:// URL: {url}")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError as error:
        raise HttpError(f"bad port in {url}: {error}") from None
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    host = parts.hostname if ":" not in parts.hostname else f"[{parts.hostname}]"
    if parts.port is not None:  # the default port is left out, as browsers and curl do
        host += f":{port}"
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}", "Connection: close"]
    for name, value in (headers or {}).items():
        if any(c in name + value for c in "\r\n\0"):  # no header smuggling, via ${VAR} or otherwise
            raise HttpError(f"the header {name} holds a line break or NUL")
        lines.append(f"{name}: {value}")
    if body or method == "POST":
        lines.append(f"Content-Length: {len(body)}")
    head = ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8")
    async with asyncio.timeout(timeout):
        try:
            reader, writer = await asyncio.open_connection(
                parts.hostname, port, ssl=ssl.create_default_context() if parts.scheme == "https" else None
            )
        except (OSError, ssl.SSLError) as error:
            raise HttpError(f"cannot connect to {parts.hostname}:{port}: {error}") from None
        try:
            writer.write(head + body)
            await writer.drain()
            return await _read_response(reader, limit)
        except (OSError, ssl.SSLError, asyncio.IncompleteReadError, asyncio.LimitOverrunError) as error:
            raise HttpError(f"{parts.hostname}:{port}: {error or type(error).__name__}") from None
        finally:
            writer.close()


async def _read_response(reader: asyncio.StreamReader, limit: int) -> HttpResponse:
    status_line = (await reader.readline()).decode("latin-1")
    words = status_line.split(None, 2)
    if len(words) < 2 or not words[0].startswith("HTTP/") or not words[1].isdigit():
        raise HttpError(f"not an HTTP answer: {status_line.strip()[:80]!r}")
    status = int(words[1])
    fields: dict[str, str] = {}
    while True:
        line = (await reader.readline()).decode("latin-1")
        if line in ("\r\n", "\n", ""):
            break
        name, _, value = line.partition(":")
        fields[name.strip().lower()] = value.strip()
    if fields.get("transfer-encoding", "").lower() == "chunked":
        body = await _read_chunked(reader, limit)
    elif "content-length" in fields:
        try:
            length = int(fields["content-length"])
        except ValueError:
            raise HttpError(f"bad Content-Length: {fields['content-length'][:40]!r}") from None
        if length > limit:
            raise HttpError(f"the answer is {length} bytes, more than the {limit} read")
        body = await reader.readexactly(length)
    else:
        body = await reader.read(limit + 1)
        if len(body) > limit:
            raise HttpError(f"the answer is more than the {limit} bytes read")
    return HttpResponse(status, body)


async def _read_chunked(reader: asyncio.StreamReader, limit: int) -> bytes:
    body = bytearray()
    while True:
        size_line = (await reader.readline()).split(b";")[0].strip()
        try:
            size = int(size_line, 16)
        except ValueError:
            raise HttpError(f"bad chunk size: {size_line[:20]!r}") from None
        if size == 0:
            return bytes(body)
        if len(body) + size > limit:
            raise HttpError(f"the answer is more than the {limit} bytes read")
        body += await reader.readexactly(size)
        await reader.readline()


def expand_headers(headers: Mapping[str, str], env: Mapping[str, str]) -> dict[str, str]:
    """Header values with each ``${NAME}`` replaced by that variable of ``env`` (a token, say).

    KeyError naming a variable that is not set: a request without its token would only
    fail later, and less clearly.
    """

    def value_of(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in env:
            raise KeyError(f"the environment variable {name} (in a header) is not set")
        return env[name]

    return {name: _REFERENCE.sub(value_of, value) for name, value in headers.items()}
