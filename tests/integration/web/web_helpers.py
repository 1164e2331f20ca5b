"""Helpers of the web tests: an HTTP client bound to a daemon and its token, a
server in a thread (no pool), waiting, cleaning up."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from typing import Any

import httpx
from leftovers import kill_leftovers  # noqa: F401 (the tests import it from here)

from xqute.monitoring.listen import parse_http
from xqute.queue import SqliteJobScheduler
from xqute.queue.schema import FINAL_STATES


class Client:
    """``get``/``post`` against the daemon's URL; ``auth=True`` sends the token."""

    def __init__(self, url: str, token: str, service: Any = None) -> None:
        self.url = url
        self.token = token
        self.service = service
        self.http = httpx.Client(base_url=url, timeout=30, follow_redirects=False)

    def close(self) -> None:
        self.http.close()

    def headers(self, auth: bool, extra: dict | None = None) -> dict:
        out = {"Authorization": f"Bearer {self.token}"} if auth else {}
        return {**out, **(extra or {})}

    def get(self, path: str, auth: bool = False, **kw: Any) -> httpx.Response:
        return self.http.get(
            path, headers=self.headers(auth, kw.pop("headers", None)), **kw
        )

    def post(self, path: str, auth: bool = False, **kw: Any) -> httpx.Response:
        headers = self.headers(auth, kw.pop("headers", None))
        return self.http.post(path, headers=headers, **kw)


class ThreadServer:
    """``HttpServer`` over a db, on an event loop in a thread of its own."""

    def __init__(self, db_path: Any, listen: str = "127.0.0.1:0") -> None:
        self.db_path = db_path
        self.listen = listen
        self.loop = asyncio.new_event_loop()
        self.server: Any = None
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)

    def start(self) -> Client:
        from xqute.web.server import HttpServer, token_path

        store = SqliteJobScheduler(self.db_path)
        self.server = HttpServer(store, parse_http(self.listen))
        self.thread.start()
        url = asyncio.run_coroutine_threadsafe(self.server.start(), self.loop).result(
            30
        )
        token = token_path(store).read_text().strip()
        return Client(url, token)

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self.server.stop(), self.loop).result(30)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()  # else its self-pipe sockets are closed by the GC


def wait_for(cond: Callable[[], Any], timeout_s: float = 30, what: str = "") -> Any:
    deadline = time.monotonic() + timeout_s
    while True:
        value = cond()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s}s waiting for {what}")
        time.sleep(0.05)


def wait_final(
    store: SqliteJobScheduler, ids: list[int], timeout_s: float = 30
) -> None:
    wait_for(
        lambda: all(
            s["state"] in FINAL_STATES for s in store.get_job_states(ids).values()
        ),
        timeout_s,
        f"jobs {ids[:5]} to end",
    )
