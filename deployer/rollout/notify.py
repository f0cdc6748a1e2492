"""Notifications: a deployment's events sent to the spec's ``notify:`` sinks, off its path.

The controller calls its event sink synchronously, so :class:`Notifier` only turns an
event into a notification (one JSON document, docs/cli.md "Notifications") and puts it
on each interested sink's queue; one asyncio task per sink sends its queue in order.
A sink that is slow or down holds up its own queue, never the deployment nor the
other sinks.

A send that fails (a webhook answering other than 2xx, or not at all within the
sink's ``timeout``; a command exiting non-zero) is tried again after 1, 2 and 4
seconds; after the fourth failure the notification is dropped with a warning line and
a row in the store (``dropped_notifications``).

When the deployment is over, :meth:`Notifier.aclose` waits up to :data:`EXIT_WAIT`
seconds for the queues to empty, so the final event is not lost; what is still queued
then is dropped, as above. A sink that never answers delays the command's end by at
most that long.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from deployer.core.errors import HttpError
from deployer.core.events import (
    ControlChanged,
    DeploymentFinished,
    DeploymentStarted,
    Event,
    EventSink,
    WaveFinished,
    WaveStarted,
)
from deployer.core.spec import NotifySink
from deployer.rollout.http_client import expand_headers, http_request
from deployer.rollout.local_commands import run_local
from deployer.store import Store
from deployer.views.render import deployment_json

log = logging.getLogger(__name__)

EXIT_WAIT = 5.0  # seconds the command waits at its end for queued notifications
RETRY_DELAYS = (1.0, 2.0, 4.0)  # between the attempts of one notification: four in all


@dataclass(frozen=True, slots=True)
class Notification:
    deployment_id: str
    event: str  # "started", "wave_finished", ... (spec.NOTIFY_EVENTS)
    at: datetime
    body: bytes  # the JSON document


@dataclass(slots=True)
class _Outbox:
    """One sink's queue, the task that empties it, and what it is sending now."""

    label: str  # how warnings and the store name the sink: never a URL's path (it may hold a token)
    sink: NotifySink
    queue: asyncio.Queue[Notification] = field(default_factory=asyncio.Queue)
    sending: Notification | None = None
    task: asyncio.Task[None] | None = None


def event_name(event: Event, rollback: bool) -> str | None:
    """The notification an event makes (None: not one people are told of).

    ``rollback``: the deployment is an automatic rollback (``on_halt: rollback``), whose
    start and end are told as ``rollback_started`` and ``rollback_finished``.
    """
    match event:
        case DeploymentStarted():
            return "rollback_started" if rollback else "started"
        case WaveStarted():
            return "wave_started"
        case WaveFinished():
            return "wave_finished"
        case ControlChanged(state="paused"):
            return "paused"
        case ControlChanged(state="running"):
            return "resumed"
        case DeploymentFinished():
            return "rollback_finished" if rollback else event.status
    return None


def notification_json(name: str, at: datetime, deployment: dict[str, Any], event: Event) -> dict[str, Any]:
    """The document a sink receives (docs/cli.md): the event, its time, the deployment without hosts."""
    document: dict[str, Any] = {"event": name, "at": at.isoformat(), "deployment": deployment}
    if isinstance(event, WaveStarted | WaveFinished):
        document["wave"] = {"index": event.index, "count": event.wave_count}
    if isinstance(event, ControlChanged):
        document["reason"] = event.reason
    return document


class Notifier:
    """An :data:`EventSink` that queues notifications for ``sinks``; :meth:`aclose` at the end."""

    def __init__(
        self,
        sinks: Sequence[NotifySink],
        store: Store,
        clock: Callable[[], datetime],
        *,
        exit_wait: float = EXIT_WAIT,
        retry_delays: Sequence[float] = RETRY_DELAYS,
    ) -> None:
        self._store = store
        self._clock = clock
        self._exit_wait = exit_wait
        self._retry_delays = tuple(retry_delays)
        self._outboxes = [_Outbox(sink_label(index, sink), sink) for index, sink in enumerate(sinks)]

    def __call__(self, event: Event) -> None:
        deployment_id = getattr(event, "deployment_id", None)
        if deployment_id is None:
            return
        view = self._store.deployment(deployment_id)
        name = event_name(event, view.rollback_of is not None)
        if name is None:
            return
        at = getattr(event, "at", None) or self._clock()
        document = notification_json(name, at, deployment_json(view, with_hosts=False), event)
        note = Notification(deployment_id, name, at, json.dumps(document).encode("utf-8"))
        for box in self._outboxes:
            if box.sink.events is not None and name not in box.sink.events:
                continue
            if box.task is None:  # first use: the event loop is running now
                box.task = asyncio.get_running_loop().create_task(self._deliver(box), name=box.label)
            box.queue.put_nowait(note)

    async def aclose(self) -> None:
        """Wait up to the exit wait for every queue to empty; drop (and record) what is left."""
        boxes = [box for box in self._outboxes if box.task is not None]
        if not boxes:
            return
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self._exit_wait):
                await asyncio.gather(*(box.queue.join() for box in boxes))
        for box in boxes:
            assert box.task is not None
            box.task.cancel()
        await asyncio.gather(*(box.task for box in boxes if box.task is not None), return_exceptions=True)
        reason = f"not delivered within the exit wait of {self._exit_wait:g}s"
        for box in boxes:
            left = [box.sending] if box.sending is not None else []
            while not box.queue.empty():
                left.append(box.queue.get_nowait())
            for note in left:
                self._drop(box, note, reason)

    async def _deliver(self, box: _Outbox) -> None:
        while True:
            note = await box.queue.get()
            box.sending = note
            try:
                error = await self._send_with_retries(box.sink, note)
                box.sending = None
                if error is not None:
                    self._drop(box, note, error)
            finally:
                box.queue.task_done()

    async def _send_with_retries(self, sink: NotifySink, note: Notification) -> str | None:
        """None once sent; else the last attempt's failure, after every retry."""
        error = ""
        for delay in (*self._retry_delays, None):
            error = await send(sink, note.body)
            if not error:
                return None
            if delay is not None:
                await asyncio.sleep(delay)
        return error

    def _drop(self, box: _Outbox, note: Notification, error: str) -> None:
        log.warning("warning: notification %s to %s dropped: %s", note.event, box.label, error)
        self._store.record_dropped_notification(
            note.deployment_id,
            sink=box.label,
            event=note.event,
            event_at=note.at,
            error=error,
            now=self._clock(),
        )


async def send(sink: NotifySink, body: bytes) -> str:
    """Send one notification: "" once the sink took it, else why not, in a sentence."""
    try:
        if sink.type == "webhook":
            assert sink.url is not None
            headers = {"Content-Type": "application/json", **expand_headers(sink.headers, os.environ)}
            response = await http_request("POST", sink.url, headers=headers, body=body, timeout=sink.timeout)
            return "" if 200 <= response.status < 300 else f"HTTP {response.status}"
        assert sink.command is not None
        result = await run_local(sink.command, env=os.environ, timeout=sink.timeout, stdin=body)
        return "" if result.exit_status == 0 else f"exit {result.exit_status}"
    except TimeoutError:
        return f"no answer within {sink.timeout:g}s"
    except KeyError as error:
        return str(error.args[0])
    except (HttpError, OSError) as error:
        return str(error) or type(error).__name__


def sink_label(index: int, sink: NotifySink) -> str:
    """``notify[0] webhook hooks.example.com``: a URL's path and query may hold a token, so never shown."""
    if sink.type == "webhook" and sink.url is not None:
        return f"notify[{index}] webhook {urlsplit(sink.url).netloc.rpartition('@')[2]}"
    return f"notify[{index}] command"


@contextlib.asynccontextmanager
async def notifying(
    sinks: Sequence[NotifySink], store: Store, sink: EventSink, clock: Callable[[], datetime]
) -> AsyncIterator[EventSink]:
    """``sink``, also telling ``sinks``; on leaving, the bounded exit wait (:meth:`Notifier.aclose`)."""
    if not sinks:
        yield sink
        return
    notifier = Notifier(sinks, store, clock)

    def both(event: Event) -> None:
        sink(event)
        notifier(event)

    try:
        yield both
    finally:
        await notifier.aclose()
