"""What a host sent is kept raw in the store and shown escaped on every terminal: CLI
lines, the plain and live progress views, ``status``, and the TUI."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC
from pathlib import Path

import pytest
from rich.console import Console

from deployer.core.events import HostFinished
from deployer.core.results import DeploymentStatus, HostStatus
from deployer.core.terminal_text import escape_controls
from deployer.store import Store, open_store
from deployer.views.live_progress import LiveProgress
from deployer.views.progress import PlainProgress
from tests.store.builders import T0, at, begin, hosts, result
from tui.context import Context
from tui.screens.host import host_header
from tui.widgets.host_list import host_cells

HOSTILE = "validate exited 3: \x1b]0;owned\x07\x1b[2J\x1b[31mred\u202eevil\x9b\x00"
SHOWN = "validate exited 3: \\x1b]0;owned\\x07\\x1b[2J\\x1b[31mred\\u202eevil\\x9b\\x00"
CONTROLS = [chr(code) for code in (*range(0x00, 0x09), *range(0x0B, 0x20), *range(0x7F, 0xA0))] + ["\u202e"]


def shows_no_controls(text: str) -> bool:
    return not any(control in text for control in CONTROLS)


def test_escape_controls() -> None:
    assert escape_controls(HOSTILE) == SHOWN
    assert escape_controls("two\nlines\tand a tab") == "two\nlines\tand a tab"
    assert escape_controls("two\nlines", one_line=True) == "two\\x0alines"
    assert escape_controls("plain: é ✓ 日本") == "plain: é ✓ 日本"


@pytest.fixture
def stored(tmp_path: Path) -> Iterator[tuple[str, str]]:
    """A finished deployment whose host failed with HOSTILE as its error and output."""
    url = f"sqlite:///{tmp_path / 'state.db'}"
    with open_store(url) as store:
        fleet = hosts("web-1")
        deployment_id = begin(store, "1.0", fleet, T0)
        failed = result("web-1", None, at(1), status=HostStatus.FAILED, error=HOSTILE)
        store.record_host_result(deployment_id, replace(failed, output_tail=HOSTILE + "\nmore\n"))
        store.finish_deployment(deployment_id, DeploymentStatus.FAILED, at(2))
    yield url, deployment_id


def deploy(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "deployer", *args],
        env={**os.environ, "DEPLOYER_DB": url},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )


def test_status_shows_host_text_escaped_and_json_keeps_it_raw(stored: tuple[str, str]) -> None:
    url, deployment_id = stored
    shown = deploy(url, "status", deployment_id).stdout
    assert shows_no_controls(shown)
    assert "\\x1b]0;owned\\x07" in shown
    raw = json.loads(deploy(url, "status", deployment_id, "--json").stdout)
    assert raw["hosts"][0]["error"] == HOSTILE  # the store keeps what the host sent
    with open_store(url) as store:
        assert store.deployment(deployment_id).hosts[0].error == HOSTILE


def test_progress_views_show_host_text_escaped() -> None:
    failed = result("web-1", None, at(1), status=HostStatus.FAILED, error=HOSTILE)
    event = HostFinished(deployment_id="d-1", result=failed, failed_count=1, failure_budget=0)
    plain = io.StringIO()
    PlainProgress(plain)(event)
    assert shows_no_controls(plain.getvalue()) and SHOWN in plain.getvalue()
    live = LiveProgress()
    live(event)
    console = Console(file=io.StringIO(), width=400, color_system=None)
    console.print(live._render())
    rendered = console.file.getvalue()  # type: ignore[attr-defined]
    assert shows_no_controls(rendered) and "\\x1b]0;owned\\x07" in rendered


def test_the_tui_shows_host_text_escaped(stored: tuple[str, str]) -> None:
    url, deployment_id = stored
    with open_store(url) as store:
        view = store.deployment(deployment_id)
        host = view.hosts[0]
        header = host_header(view, host, Context(store=store, clock=lambda: at(3), tz=UTC))
    cells = host_cells(host, at(3))
    for text in (header.plain, *(cell.plain for cell in cells)):
        assert shows_no_controls(text), repr(text)
    assert SHOWN in header.plain and SHOWN in cells[-1].plain
    assert isinstance(store, Store)
