"""The event stream over HTTP: ``GET /api/events`` (a page of events as JSON)
and ``GET /api/events/stream`` (Server-Sent Events).

SSE ids are the ``events`` table's ids: a client that reconnects sends
``Last-Event-ID`` (browsers' EventSource does it by itself) and gets every
event after it, from the db, so a reconnect misses nothing and repeats
nothing. Without one it starts at ``?after=N``, or now.

One ``EventHub`` per server watches the db for commits (``PRAGMA
data_version`` on one connection, only while someone listens) and wakes the
streams; each stream then reads its own next events (``id > cursor``, its
filters; an index range). So an idle stream costs a keep-alive comment every
15 s and nothing else, however many are open.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from ..checks import digits
from ..errors import ConfigError
from ..queue.store import SqliteJobScheduler
from .params import MAX_ID, int_param, str_param

__all__ = ["EventHub", "read_events", "routes"]

KEEPALIVE_S = 15.0
BATCH = 500
_COLUMNS = ("id", "ts", "type", "namespace", "run_id", "task", "job_id", "data")


class EventHub:
    """Wakes the open streams when the db changed (see the module docstring)."""

    def __init__(self, store: SqliteJobScheduler, poll_s: float = 0.25) -> None:
        self.store = store
        self.poll_s = poll_s
        self.listeners = 0
        self.version = 0  # bumped on each change seen
        self.closed = False
        self._changed = asyncio.Condition()
        self._task: asyncio.Task[None] | None = None
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="xqute-events")

    def _data_version(self) -> int:
        return self.store.db.query("PRAGMA data_version")[0][0]

    async def _watch(self) -> None:
        loop = asyncio.get_running_loop()
        last = await loop.run_in_executor(self._executor, self._data_version)
        while self.listeners and not self.closed:
            await asyncio.sleep(self.poll_s)
            now = await loop.run_in_executor(self._executor, self._data_version)
            if now != last:
                last = now
                async with self._changed:
                    self.version += 1
                    self._changed.notify_all()
        self._task = None

    async def wait(self, version: int, timeout_s: float) -> int:
        """Wait until the db changed after ``version`` (or the timeout); the
        version now."""
        async with self._changed:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(
                    self._changed.wait_for(
                        lambda: self.version != version or self.closed
                    ),
                    timeout_s,
                )
            return self.version

    @contextlib.asynccontextmanager
    async def listening(self) -> AsyncIterator[None]:
        self.listeners += 1
        if self._task is None:
            self._task = asyncio.create_task(self._watch(), name="xqute-event-hub")
        try:
            yield
        finally:
            self.listeners -= 1

    async def close(self) -> None:
        self.closed = True
        async with self._changed:
            self._changed.notify_all()
        self._executor.shutdown(wait=False)


def _filters(request: Request) -> tuple[str, list[Any]]:
    where, params = [], []
    run = int_param(request, "run", None, 1, MAX_ID)
    if run is not None:
        where.append("run_id = ?")
        params.append(run)
    job = int_param(request, "job", None, 1, MAX_ID)
    if job is not None:
        where.append("job_id = ?")
        params.append(job)
    kind = str_param(request, "type", 100)
    if kind is not None:
        where.append("type GLOB ?")
        params.append(kind)
    namespace = str_param(request, "namespace", 100)
    if namespace is not None:
        where.append("namespace = ?")
        params.append(namespace)
    return "".join(f" AND {w}" for w in where), params


def read_events(
    store: SqliteJobScheduler, after: int, where: str, params: list[Any], limit: int
) -> list[dict[str, Any]]:
    rows = store.db.query(
        f"SELECT {', '.join(_COLUMNS)} FROM events WHERE id > ?{where}"
        " ORDER BY id LIMIT ?",
        [after, *params, limit],
    )
    out = []
    for row in rows:
        event = dict(zip(_COLUMNS, row, strict=True))
        with contextlib.suppress(TypeError, ValueError):
            event["data"] = json.loads(event["data"]) if event["data"] else {}
        out.append(event)
    return out


def last_event_id(store: SqliteJobScheduler) -> int:
    return store.db.query("SELECT coalesce(max(id), 0) FROM events")[0][0]


def _require_events(request: Request) -> Any:
    ctx = request.app.state.ctx
    if not ctx.features.events:
        raise HTTPException(
            404,
            "the event stream is not available: this db has no events table"
            " (it comes with workflows)",
        )
    return ctx


def list_events(request: Request) -> Response:
    ctx = _require_events(request)
    where, params = _filters(request)
    limit = int_param(request, "limit", 100, 1, 1000) or 100
    after = int_param(request, "after", None, 0, MAX_ID)
    if after is None:  # the latest ``limit`` events, oldest first
        after = max(0, last_event_id(ctx.store) - limit) if not where else 0
        if where:
            rows = ctx.store.db.query(
                f"SELECT id FROM events WHERE 1{where} ORDER BY id DESC LIMIT ?",
                [*params, limit],
            )
            after = rows[-1][0] - 1 if rows else 0
    return JSONResponse(read_events(ctx.store, after, where, params, limit))


async def stream_events(request: Request) -> Response:
    ctx = _require_events(request)
    where, params = _filters(request)
    header = (request.headers.get("last-event-id") or "").strip()
    if header:
        if not digits(header) or int(header) > MAX_ID:
            raise ConfigError(f"Last-Event-ID {header!r} must be an event id")
        cursor: int | None = int(header)
    else:
        cursor = int_param(request, "after", None, 0, MAX_ID)
    if cursor is None:
        cursor = await run_in_threadpool(last_event_id, ctx.store)
    hub: EventHub = ctx.events
    return StreamingResponse(
        _stream(hub, ctx.store, cursor, where, params),
        media_type="text/event-stream",
        headers={"X-Accel-Buffering": "no"},
    )


async def _stream(
    hub: EventHub, store: SqliteJobScheduler, cursor: int, where: str, params: list
) -> AsyncIterator[bytes]:
    async with hub.listening():
        yield f"retry: 2000\n: cursor {cursor}\n\n".encode()
        version = hub.version
        last_sent = time.monotonic()
        while not hub.closed:
            events = await run_in_threadpool(
                read_events, store, cursor, where, params, BATCH
            )
            for event in events:
                cursor = event["id"]
                yield _sse(event)
            if events:
                last_sent = time.monotonic()
                if len(events) == BATCH:
                    continue  # more to catch up on
            new = await hub.wait(version, KEEPALIVE_S)
            if new == version and time.monotonic() - last_sent >= KEEPALIVE_S:
                yield b": keep-alive\n\n"
                last_sent = time.monotonic()
            version = new


def _sse(event: dict[str, Any]) -> bytes:
    # no "event:" field: every event reaches EventSource.onmessage; the type is
    # in the data
    data = json.dumps(event, separators=(",", ":"))
    return f"id: {event['id']}\ndata: {data}\n\n".encode()


def routes() -> list[Route]:
    return [
        Route("/api/events", list_events),
        Route("/api/events/stream", stream_events),
    ]
