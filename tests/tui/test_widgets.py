"""Widgets on their own, in a small app: the key bar, and a host grid sized before its hosts come."""

from __future__ import annotations

from typing import ClassVar

from textual.app import App, ComposeResult
from textual.binding import Binding, BindingType

from deployer.core.results import HostStatus
from tests.tui.conftest import screen_text, wait_for
from tests.tui.test_model import host
from tui.widgets.host_grid import CELL_WIDTH, HostGrid
from tui.widgets.key_bar import KeyBar


class KeysApp(App[None]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("x", "mark", "Mark"),
        Binding("y", "other", "Other"),
        Binding("z", "hidden", "Hidden", show=False),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.marks = 0
        self.other_enabled: bool | None = None  # None: shown dimmed; False: not shown

    def compose(self) -> ComposeResult:
        yield KeyBar()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        return self.other_enabled if action == "other" else True

    def action_mark(self) -> None:
        self.marks += 1

    def action_other(self) -> None:
        raise AssertionError("a dimmed key was pressed")


async def test_the_key_bar_says_what_the_keys_do_and_a_click_presses_one() -> None:
    app = KeysApp()
    async with app.run_test(size=(60, 5)) as pilot:
        bottom = screen_text(app).splitlines()[-1]
        assert bottom == " x Mark  y Other"
        assert "Hidden" not in bottom
        bar = app.query_one(KeyBar)
        assert [(key.key, key.enabled) for key in bar.keys] == [("x", True), ("y", False)]

        await pilot.click(KeyBar, offset=(1, 0))  # on "x"
        await pilot.click(KeyBar, offset=(len(" x Mark  y "), 0))  # on "Other": dimmed, nothing happens
        await pilot.pause()
        assert app.marks == 1

        app.other_enabled = False
        app.refresh_bindings()
        await wait_for(pilot, lambda: "Other" not in screen_text(app))
        assert screen_text(app).splitlines()[-1] == " x Mark"


class GridApp(App[None]):
    def compose(self) -> ComposeResult:
        yield HostGrid(host_count=25)


async def test_a_grid_sized_by_its_host_count_keeps_its_height_when_the_hosts_come() -> None:
    app = GridApp()
    async with app.run_test(size=(10 * CELL_WIDTH + 1, 10)) as pilot:  # 10 hosts a row, and a scrollbar
        grid = app.query_one(HostGrid)
        assert grid.size.height == 3  # 25 hosts: 3 rows, all blank for now
        assert screen_text(app).strip() == ""

        grid.hosts = [
            host(f"web-{i}", HostStatus.RUNNING if i < 10 else HostStatus.SUCCEEDED) for i in range(25)
        ]
        await wait_for(pilot, lambda: screen_text(app).strip() != "")
        assert grid.size.height == 3
        rows = screen_text(app).splitlines()
        assert len(set(rows[0].split())) == 1 and len(rows[0].split()) == 10  # ten hosts drawn alike
        assert len(rows[2].split()) == 5
