"""Gate checks as run on the controller's machine: a command that hangs, the deployment it sees."""

from __future__ import annotations

import asyncio
import json
import time
from datetime import UTC, datetime
from pathlib import Path

from deployer.core.gates import GateVerdict
from deployer.core.spec import Gate, GateWhen
from deployer.rollout.gate_checks import GateContext, check_gates

CONTEXT = GateContext("shop", "2.0", "prod", "d-1", 2, ("web-a", "web-b"))


def clock() -> datetime:
    return datetime(2026, 12, 6, 12, 0, tzinfo=UTC)


def command_gate(name: str, command: str, timeout: float = 5) -> Gate:
    return Gate(name, "command", GateWhen.AFTER_WAVE, timeout=timeout, interval=30, command=command)


def test_a_command_that_never_ends_fails_at_its_timeout() -> None:
    hangs = command_gate("hangs", "sleep 30 & sleep 30", timeout=0.5)  # a child keeps the pipe open too
    started = time.monotonic()
    verdicts = asyncio.run(check_gates([hangs, command_gate("never", "true")], CONTEXT, clock))
    assert time.monotonic() - started < 5
    # the first failure ends the round: the second gate is not checked
    assert verdicts == [GateVerdict("hangs", False, "timed out after 0.5s", clock())]
    assert verdicts[0].reason == "gate hangs: timed out after 0.5s"


def test_a_command_gate_sees_the_deployment_and_says_why_it_failed(tmp_path: Path) -> None:
    seen = tmp_path / "seen"
    sees = command_gate(
        "sees",
        f'echo "$DEPLOY_GATE $DEPLOY_APP $DEPLOY_ID $DEPLOY_WAVE" > {seen};'
        f' cat "$DEPLOY_HOSTS_FILE" >> {seen}; echo "too many errors" >&2; exit 4',
    )
    [verdict] = asyncio.run(check_gates([sees], CONTEXT, clock))
    assert (verdict.passed, verdict.message) == (False, "exit 4: too many errors")
    assert seen.read_text() == "sees shop d-1 2\nweb-a\nweb-b\n"


def test_a_header_naming_an_unset_variable_fails_the_gate_without_a_request() -> None:
    gate = Gate(
        "needs-token",
        "http",
        GateWhen.BEFORE,
        timeout=5,
        interval=30,
        url="http://127.0.0.1:9/never-asked",
        headers={"Authorization": "Bearer ${DEPLOYER_TEST_UNSET_TOKEN}"},
    )
    [verdict] = asyncio.run(check_gates([gate], CONTEXT, clock))
    assert verdict.message == "the environment variable DEPLOYER_TEST_UNSET_TOKEN (in a header) is not set"


def test_an_http_gate_reads_a_chunked_answer_as_prometheus_may_send_it() -> None:
    """Go's HTTP server sends a large answer without Content-Length, in chunks."""
    document = json.dumps({"data": {"result": [{"value": [1765000000, "0.25"]}]}, "pad": "x" * 5000})
    body = document.encode()
    chunks = (
        b"".join(b"%x\r\n%s\r\n" % (len(part), part) for part in (body[:4000], body[4000:])) + b"0\r\n\r\n"
    )
    asked: list[bytes] = []

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        asked.append(await reader.readuntil(b"\r\n\r\n"))
        writer.write(
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
        )
        writer.write(chunks)
        await writer.drain()
        writer.close()

    async def check() -> list[GateVerdict]:
        server = await asyncio.start_server(answer, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        gate = Gate(
            "error-rate",
            "http",
            GateWhen.AFTER_WAVE,
            timeout=5,
            interval=30,
            url=f"http://127.0.0.1:{port}/api/v1/query?query=up",
            field="data.result.0.value.1",
            max=0.2,
        )
        async with server:
            return await check_gates([gate], CONTEXT, clock)

    [verdict] = asyncio.run(check())
    assert (verdict.passed, verdict.message) == (False, "data.result.0.value.1 0.25 > max 0.2")
    assert asked[0].startswith(b"GET /api/v1/query?query=up HTTP/1.1\r\n")
