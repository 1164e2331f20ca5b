"""The event stream over HTTP: a page of events, and Server-Sent Events that
resume from Last-Event-ID without missing or repeating anything."""

from __future__ import annotations

import contextlib
import http.client
import json
import socket
import threading
import time
from urllib.parse import urlencode, urlsplit

import pytest
from web_helpers import wait_for

from xqute.orchestration import events

pytestmark = [pytest.mark.web, pytest.mark.service]


def add_events(store, n, run_id=None, kind="test.tick"):
    def write(conn):
        return [
            events.append(conn, kind, time.time(), run_id=run_id, data={"i": i})
            for i in range(n)
        ]

    return store.db.write(write)


class SSEReader:
    """Reads an SSE stream in a thread; ``events`` fills as they arrive.
    (http.client, so that ``close`` can shut the socket and end a read that
    would otherwise wait for the next keep-alive.)"""

    def __init__(self, url: str, params=None, headers=None) -> None:
        self.events: list[dict] = []
        self.status: int | None = None
        self._stop = False
        parts = urlsplit(url)
        self._conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=60)
        self._path = parts.path + (f"?{urlencode(params)}" if params else "")
        self._headers = headers or {}
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            self._conn.request("GET", self._path, headers=self._headers)
            response = self._conn.getresponse()
            self.content_type = response.getheader("content-type")
            self.status = response.status
            block: dict = {}
            while not self._stop:
                raw = response.readline()
                if not raw:
                    break  # the server closed the stream
                line = raw.decode().rstrip("\n")
                if line.startswith("id: "):
                    block["id"] = int(line[4:])
                elif line.startswith("data: "):
                    block["data"] = json.loads(line[6:])
                elif line == "" and block:
                    self.events.append(block)
                    block = {}
        except (OSError, http.client.HTTPException, ValueError):
            if not self._stop:
                raise

    def close(self) -> None:
        self._stop = True
        with contextlib.suppress(OSError):
            if self._conn.sock is not None:
                self._conn.sock.shutdown(socket.SHUT_RDWR)
        self._thread.join(10)
        self._conn.close()


def test_sse_streams_live_and_resumes_from_last_event_id(web_daemon, store):
    client = web_daemon()
    first = add_events(store, 5)
    reader = SSEReader(f"{client.url}/api/events/stream", params={"after": 0})
    try:
        wait_for(lambda: len(reader.events) >= 5, what="the backlog")
        assert reader.status == 200
        assert reader.content_type.startswith("text/event-stream")
        more = add_events(store, 3)  # live, while connected
        wait_for(lambda: len(reader.events) >= 8, what="live events")
        assert [e["id"] for e in reader.events] == first + more
        assert [e["data"]["data"]["i"] for e in reader.events] == [
            0,
            1,
            2,
            3,
            4,
            0,
            1,
            2,
        ]
        assert reader.events[0]["data"]["type"] == "test.tick"
    finally:
        reader.close()
    # a reconnect with Last-Event-ID gets exactly what came after it
    missed = add_events(store, 4)
    again = SSEReader(
        f"{client.url}/api/events/stream", headers={"Last-Event-ID": str(more[-1])}
    )
    try:
        wait_for(lambda: len(again.events) >= 4, what="the events missed")
        time.sleep(0.5)
        assert [e["id"] for e in again.events] == missed
    finally:
        again.close()


def test_filters_and_the_json_page(web_daemon, store):
    client = web_daemon()
    add_events(store, 3, run_id=7, kind="task.started")
    add_events(store, 2, run_id=8, kind="task.started")
    add_events(store, 2, run_id=7, kind="workflow.succeeded")
    page = client.get("/api/events", params={"after": 0, "run": 7}).json()
    assert [e["run_id"] for e in page] == [7] * 5
    page = client.get("/api/events", params={"after": 0, "type": "workflow.*"}).json()
    assert [e["type"] for e in page] == ["workflow.succeeded"] * 2
    latest = client.get("/api/events", params={"limit": 2}).json()
    assert len(latest) == 2 and latest[-1]["type"] == "workflow.succeeded"
    reader = SSEReader(
        f"{client.url}/api/events/stream",
        params={"after": 0, "run": 8, "type": "task.*"},
    )
    try:
        wait_for(lambda: len(reader.events) >= 2, what="run 8's events")
        add_events(store, 1, run_id=7, kind="task.started")
        add_events(store, 1, run_id=8, kind="workflow.started")
        add_events(store, 1, run_id=8, kind="task.started")
        wait_for(lambda: len(reader.events) >= 3, what="the new one")
        assert {e["data"]["run_id"] for e in reader.events} == {8}
    finally:
        reader.close()
    r = client.get("/api/events/stream", headers={"Last-Event-ID": "x"})
    assert r.status_code == 400 and "Last-Event-ID 'x'" in r.json()["error"]
    # a digit to str.isdigit() that int() refuses (the byte 0xb2 is latin-1's
    # superscript two): a 400 too, not a 500
    r = client.get("/api/events/stream", headers={"Last-Event-ID": b"\xb2"})
    assert r.status_code == 400 and "must be an event id" in r.json()["error"]


def test_the_events_page_shows_each_events_data_as_its_json(web_daemon, store):
    """As the live rows show it (JSON.stringify of the SSE data): not Jinja's
    tojson, which writes '>' and "'" as \\u003e and \\u0027 for scripts."""
    import html

    client = web_daemon()
    data = {"op": ">", "reason": "dependency 'report' failed", "n": 1}
    store.db.write(lambda c: events.append(c, "test.data", time.time(), data=data))
    page = html.unescape(client.get("/events").text)
    assert json.dumps(data, separators=(",", ":"), ensure_ascii=False) in page
    assert "\\u003e" not in page and "\\u0027" not in page


def test_fifty_idle_streams_keep_the_daemon_idle(web_daemon, store):
    """Open streams cost a keep-alive, not a poll each (the benchmark measures
    the cpu; here: they all get a new event, once, and the daemon answers)."""
    client = web_daemon()
    readers = [SSEReader(f"{client.url}/api/events/stream") for _ in range(50)]
    try:
        wait_for(lambda: all(r.status == 200 for r in readers), what="connects")
        ids = add_events(store, 1)
        wait_for(lambda: all(len(r.events) == 1 for r in readers), what="fan-out")
        assert {r.events[0]["id"] for r in readers} == set(ids)
        assert client.get("/api/jobs").status_code == 200
    finally:
        for r in readers:
            r.close()
