"""How fast the live screen redraws a 5,000-host deployment while another process records it.

A writer process (as a controller would be) records a 5,000-host deployment into an
SQLite store wave by wave: each host's steps, then its result, with a few failures.
Meanwhile the TUI's live screen runs headless (``App.run_test``) in this process,
polling the store as it does for ``deploy watch``, with the host list scrolled and a
filter typed now and then, as a person would.

Measured:

- refresh: for every read of the store the screen showed, from the moment the
  polling thread posted it (the data is ready) until the screen has drawn all it
  caused: the screen's handler has handed the read to its widgets, and then no
  widget has a repaint, layout or message pending and the screen has made its
  compositor passes (every changed line rendered, the layout redone where sizes
  changed). A read can take more than one pass: the widgets ask for a new layout
  from their own message queues, after the first pass. This includes any wait in
  the message queue behind keys, the handler, and the drawing. Headless, the
  terminal write (the update turned into escape codes) is not included.
- frame: every compositor pass, whatever caused it (a read, a key, the clock).
- frame cpu: the CPU time the event loop's thread spent in each of those passes;
  unlike the wall-clock figures it does not grow when other processes (or the
  polling thread) take the CPU, so it shows the work a frame costs.
- handler: the part of a refresh up to the end of the screen's handler.
- passes: how many compositor passes a refresh took.
- read: the screen's read of 5,000 hosts (``Store.deployment_progress``), timed apart
  afterwards: a first read, and a read handed the one before, which builds objects
  only for the hosts that changed (none here). The screen reads in a polling thread,
  off the event loop.

The compositor pass is timed by wrapping Textual's private
``Screen._compositor_refresh`` here in the benchmark; the app itself only reports
when a read was posted and when it was handled.

Figures are printed as ratios to the 50 ms target (< 1 is within it)::

    /work/venv/bin/python bench/tui.py                 # 5,000 hosts, about 30 s
    /work/venv/bin/python bench/tui.py --hosts 1000 --seconds 10
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from deployer.core.results import (
    DeploymentKind,
    DeploymentStatus,
    HostResult,
    HostStatus,
    Step,
    StepResult,
)
from deployer.core.targets import Host
from deployer.store import NewDeployment, Store, open_store

TARGET_MS = 50.0
DATACENTERS = ("iad", "sfo", "fra", "sin")
SIZE = (160, 50)


def fleet(count: int) -> list[Host]:
    return [
        Host(
            f"host-{index:05d}",
            f"10.{index // 65536}.{index // 256 % 256}.{index % 256}",
            DATACENTERS[index % 4],
        )
        for index in range(count)
    ]


def begin(store: Store, hosts: list[Host], wave_size: int) -> str:
    return store.begin_deployment(
        NewDeployment(
            app="shop",
            environment="prod",
            version="2.0",
            previous_version="1.9",
            kind=DeploymentKind.PUSH,
            started_by="bench",
            started_from="bench-writer",
            pid=os.getpid(),
            spec_sha256="0" * 64,
            hosts=[(host, index // wave_size + 1) for index, host in enumerate(hosts)],
        ),
        now=datetime.now(UTC),
    )


def write_deployment(url: str, deployment_id: str, names: list[str], wave_size: int, seconds: float) -> None:
    """The writer process: each wave's hosts step through, then finish; spread over ``seconds``."""
    store = open_store(url)
    waves = [names[i : i + wave_size] for i in range(0, len(names), wave_size)]
    per_wave = seconds / len(waves)
    try:
        for wave in waves:
            wave_started = time.monotonic()
            for step in (Step.CONNECT, Step.UPLOAD, Step.SWITCH):
                now = datetime.now(UTC)
                for name in wave:
                    store.record_step(deployment_id, name, step, now)
                time.sleep(per_wave / 8)
            for index, name in enumerate(wave):
                store.record_host_result(deployment_id, _result(name, fail=index % 97 == 13))
            time.sleep(max(0.0, per_wave - (time.monotonic() - wave_started)))
        store.finish_deployment(deployment_id, DeploymentStatus.SUCCEEDED, datetime.now(UTC), reason="bench")
    finally:
        store.close()


def _result(name: str, *, fail: bool) -> HostResult:
    now = datetime.now(UTC)
    steps = tuple(
        StepResult(
            step, 7 if fail and step is Step.VALIDATE else 0, now - timedelta(seconds=9 - i), 1.0, "ok\n"
        )
        for i, step in enumerate(Step)
        if not (fail and i > list(Step).index(Step.VALIDATE))
    )
    return HostResult(
        host=name,
        status=HostStatus.FAILED if fail else HostStatus.SUCCEEDED,
        started_at=now - timedelta(seconds=9),
        finished_at=now,
        step=Step.VALIDATE if fail else Step.PRUNE,
        exit_status=7 if fail else 0,
        error="validate exited 7" if fail else None,
        steps=steps,
        version="2.0",
        previous_version="1.9",
    )


async def watch(
    url: str, deployment_id: str, seconds: float, poll: float
) -> tuple[list[float], list[float], list[int], list[float], list[float], int]:
    """The live screen, headless, until the deployment ends: timings in ms, and the keys pressed."""
    import textual.screen
    from textual.widgets import Input

    from tui.app import DeployerApp, watch_opening
    from tui.context import Context
    from tui.screens.live import LiveScreen

    reads: list[tuple[float, float, float]] = []  # (posted, handled, drawn)
    frames: list[tuple[float, float]] = []  # (start, end) of each compositor pass
    frame_cpu: list[float] = []  # CPU time of the event loop's thread in each pass
    original = textual.screen.Screen._compositor_refresh

    def timed_refresh(screen: textual.screen.Screen[Any]) -> None:
        started, cpu = time.perf_counter(), time.thread_time()
        original(screen)
        frames.append((started, time.perf_counter()))
        frame_cpu.append((time.thread_time() - cpu) * 1000)

    textual.screen.Screen._compositor_refresh = timed_refresh  # type: ignore[method-assign,assignment]
    keys = 0
    try:
        with open_store(url) as store:
            ctx = Context(store=store, poll_interval=poll, requested_by="bench")
            app = DeployerApp(
                ctx,
                watch_opening(store, deployment_id),  # as `deploy watch` opens it
                refresh_probe=lambda posted, handled: when_drawn(
                    app.screen, lambda: reads.append((posted, handled, time.perf_counter()))
                ),
                freeze_gc=True,  # as `deploy watch` runs it
            )
            async with app.run_test(size=SIZE) as pilot:
                deadline = time.monotonic() + seconds * 2 + 60
                filters = ["failed", "dc:sin", "host-01*", ""]
                while time.monotonic() < deadline:
                    screen = app.screen
                    if (
                        isinstance(screen, LiveScreen)
                        and screen.snapshot is not None
                        and screen.snapshot.is_finished
                    ):
                        break
                    # A person at the keyboard: scroll the host list, now and then change the filter.
                    await pilot.press("pagedown" if keys % 10 else "home")
                    keys += 1
                    if keys % 25 == 0 and isinstance(screen, LiveScreen):
                        screen.query_one("#filter", Input).value = filters[(keys // 25) % len(filters)]
                    await asyncio.sleep(0.2)
                await pilot.pause(0.5)
    finally:
        textual.screen.Screen._compositor_refresh = original  # type: ignore[method-assign]
    refresh = [(drawn - posted) * 1000 for posted, _, drawn in reads]
    handler = [(handled - posted) * 1000 for posted, handled, _ in reads]
    passes = [sum(1 for start, _ in frames if handled <= start <= drawn) for _, handled, drawn in reads]
    return refresh, handler, passes, [(end - start) * 1000 for start, end in frames], frame_cpu, keys


def when_drawn(screen: Any, then: Callable[[], None], tries: int = 1000) -> None:
    """Call ``then`` once ``screen`` has drawn everything asked of it so far.

    Textual runs a screen's after-refresh callbacks when the screen itself has nothing
    pending; but its widgets ask for repaints and layouts through their own message
    queues, which may not have run yet. So look at them too and, while any has
    something pending, let their tasks run and wait for the screen again (a bounded
    number of times).
    """

    def check() -> None:
        if tries <= 1 or _settled(screen):
            then()
        else:
            asyncio.get_running_loop().call_soon(when_drawn, screen, then, tries - 1)

    screen.call_after_refresh(check)


def _settled(screen: Any) -> bool:
    # Textual's private flags: what a widget's next idle turns into Update/Layout messages.
    if screen._layout_required or screen._dirty_widgets or screen._repaint_required:
        return False
    return all(
        node._message_queue.empty()
        and not (node._repaint_required or node._layout_required or node._scroll_required)
        for node in _widgets(screen)
    )


def _widgets(screen: Any) -> Iterator[Any]:
    """The screen and every widget on it, scrollbars included (they are not in the DOM)."""
    for node in (screen, *screen.walk_children()):
        yield node
        for bar in (node._vertical_scrollbar, node._horizontal_scrollbar, node._scrollbar_corner):
            if bar is not None:
                yield bar


def time_reads(url: str, deployment_id: str, count: int = 5) -> tuple[list[float], list[float]]:
    """The live screen's read (``Store.deployment_progress``) of the finished deployment, in ms:
    from nothing, as its first read is, and again, handed the read before, as the next are."""
    with open_store(url) as store:
        first, again = [], []
        for _ in range(count):
            started = time.perf_counter()
            progress = store.deployment_progress(deployment_id)
            first.append((time.perf_counter() - started) * 1000)
            started = time.perf_counter()
            store.deployment_progress(deployment_id, since=progress)
            again.append((time.perf_counter() - started) * 1000)
    return first, again


def report(name: str, values: list[float]) -> str:
    ordered = sorted(values)
    median = statistics.median(ordered)
    p95 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.95))]
    worst = ordered[-1]
    return (
        f"{name:<10}median {median:7.1f} ms ({median / TARGET_MS:5.2f}x)   "
        f"p95 {p95:7.1f} ms ({p95 / TARGET_MS:5.2f}x)   worst {worst:7.1f} ms ({worst / TARGET_MS:5.2f}x)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--hosts", type=int, default=5000)
    parser.add_argument("--wave", type=int, default=250, help="hosts per wave")
    parser.add_argument("--seconds", type=float, default=30.0, help="how long the writer takes")
    parser.add_argument("--poll", type=float, default=0.25, help="the screen's poll interval")
    parser.add_argument("--verbose", action="store_true", help="also print every refresh time")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as directory:
        url = f"sqlite:///{directory}/state.db"
        hosts = fleet(args.hosts)
        with open_store(url) as store:
            deployment_id = begin(store, hosts, args.wave)
        writer = multiprocessing.get_context("spawn").Process(
            target=write_deployment,
            args=(url, deployment_id, [h.name for h in hosts], args.wave, args.seconds),
        )
        writer.start()
        try:
            refresh, handler, passes, frames, frame_cpu, keys = asyncio.run(
                watch(url, deployment_id, args.seconds, args.poll)
            )
        finally:
            writer.join(timeout=args.seconds * 2 + 60)
            if writer.is_alive():
                writer.terminate()
                writer.join()
        reads = time_reads(url, deployment_id)

    print(
        f"live screen, {args.hosts} hosts in {len(DATACENTERS)} datacenters, waves of {args.wave}, "
        f"{SIZE[0]}x{SIZE[1]} terminal, poll every {args.poll}s; "
        f"{len(refresh)} refreshes, {keys} keys pressed"
    )
    load = ", ".join(f"{value:.1f}" for value in os.getloadavg())
    print(
        f"target: {TARGET_MS:.0f} ms per refresh; figures as ratios to it (< 1 is within); "
        f"load average {load}"
    )
    if not refresh:
        print("no refresh was measured")
        sys.exit(1)
    print(report("refresh", refresh))
    print(report("frame", frames) + f"   ({len(frames)} screen updates)")
    print(report("frame cpu", frame_cpu) + "   (CPU time of the UI thread per update: load-independent)")
    print(report("handler", handler) + "   (queue wait and handler, part of refresh)")
    print(
        f"passes    median {statistics.median(passes):5.0f}   worst {max(passes)}   "
        "(compositor passes until a read was drawn)"
    )
    if len(refresh) > 2:
        # The last read (finished) redraws the footer: its keys no longer apply.
        print(report("steady", refresh[1:-1]) + "   (refresh without the first and the last read)")
    if "--verbose" in sys.argv:
        print("refresh ms in order:", [round(value) for value in refresh])
        print("passes in order:", passes)
    first_reads, next_reads = reads
    print(report("read", first_reads) + "   (a first read, in the polling thread, off the event loop)")
    print(report("reread", next_reads) + "   (the same, handed the read before: only changes are built)")


if __name__ == "__main__":
    main()
