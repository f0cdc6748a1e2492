"""A real HTTP server on 127.0.0.1 in a thread: scripted gate answers and recording webhooks.

Tests say what each path answers (:meth:`LocalHttp.answer`); every request is recorded
before it is answered, so once the command that sent it has ended, it is in ``requests``.
A path set to hang holds its request until the server stops (or 60 s pass), as a
webhook that never answers would.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

HANG = -1  # a status that means: never answer


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    at: float  # time.monotonic() when it arrived

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class LocalHttp:
    """The server's state: scripted answers per path, and what arrived."""

    port: int = 0
    answers: dict[str, list[tuple[int, bytes]]] = field(default_factory=dict)
    requests: list[Request] = field(default_factory=list)
    released: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def answer(self, path: str, *answers: tuple[int, Any]) -> None:
        """Answer requests to ``path`` with these (status, body) in turn; the last one repeats.

        A dict or list body is sent as JSON; status :data:`HANG` never answers.
        """
        encoded = [
            (status, body if isinstance(body, bytes) else json.dumps(body).encode())
            for status, body in answers
        ]
        with self.lock:
            self.answers[path] = encoded

    def next_answer(self, path: str) -> tuple[int, bytes]:
        with self.lock:
            script = self.answers.get(path.split("?")[0], [(404, b"")])
            return script.pop(0) if len(script) > 1 else script[0]

    def to(self, path: str) -> list[Request]:
        with self.lock:
            return [request for request in self.requests if request.path.split("?")[0] == path]


def serve() -> Iterator[LocalHttp]:
    """Run a :class:`LocalHttp` until the generator is closed; hanging requests are released then."""
    state = LocalHttp()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _handle(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            request = Request(self.command, self.path, dict(self.headers), body, time.monotonic())
            with state.lock:
                state.requests.append(request)
            status, answer = state.next_answer(self.path)
            if status == HANG:
                state.released.wait(60)
                return
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(answer)))
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(answer)

        do_GET = _handle
        do_POST = _handle

        def log_message(self, format: str, *args: Any) -> None:  # quiet
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    state.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, name="local-http", daemon=True)
    thread.start()
    try:
        yield state
    finally:
        state.released.set()
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
