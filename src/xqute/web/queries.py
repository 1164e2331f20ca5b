"""What the HTTP API and the dashboard read from the queue db.

The same data as the CLI's ``--json`` listings (the store's own methods where
there is one), plus what only the web shows: chunks of a job's log by offset
(for the live tail; the overview is ``overview.py``). Tables that later parts
of xqute add (workflow runs, schedules, quotas, events) are looked up through
``Features``: a page whose table is missing says "not available" instead of
failing.
"""

from __future__ import annotations

import contextlib
import os
from functools import cached_property
from typing import Any

from ..errors import ConfigError
from ..monitoring.samples import Schema
from ..queue.schema import FINAL_STATES
from ..queue.store import SqliteJobScheduler

__all__ = ["MAX_LOG_CHUNK", "Features", "read_log"]

MAX_LOG_CHUNK = 1 << 20  # a log request returns at most 1 MiB


class Features:
    """Which parts of xqute this db holds (probed once: a daemon's db does not
    change its schema while it runs)."""

    def __init__(self, store: SqliteJobScheduler) -> None:
        self.store = store

    @cached_property
    def schema(self) -> Schema:
        return Schema(self.store.db)

    @property
    def namespaces(self) -> bool:
        return self.schema.namespaces

    @property
    def runs(self) -> bool:
        return {"runs", "run_tasks"} <= self.schema.tables

    @property
    def events(self) -> bool:
        return "events" in self.schema.tables

    @property
    def schedules(self) -> bool:
        return "schedules" in self.schema.tables

    @property
    def quotas(self) -> bool:
        return {"definitions", "preemptions", "autoscaler"} <= self.schema.tables

    @property
    def alerts(self) -> bool:
        return "alerts" in self.schema.tables


def read_log(
    job: dict[str, Any],
    stream: str,
    offset: int | None = None,
    tail: int | None = None,
    max_bytes: int = 65536,
) -> dict[str, Any]:
    """A chunk of a job's stdout/stderr: from ``offset``, or the last ``tail``
    bytes. Only the job's own two log files, as its pool recorded them, are
    read, and never through a symlink (the rule ``xqute logs`` follows).

    A chunk holds whole UTF-8 characters: a tail starts after the partial one
    it would cut, and a chunk ends before a character that is not all there
    yet (``next_offset`` is then its first byte), so a log followed chunk by
    chunk decodes as the file does, never with a U+FFFD at each boundary."""
    if stream not in ("stdout", "stderr"):
        raise ConfigError.choice("stream", stream, ["stdout", "stderr"])
    max_bytes = min(max_bytes, MAX_LOG_CHUNK)
    out: dict[str, Any] = {
        "id": job["id"],
        "stream": stream,
        "state": job["state"],
        "final": job["state"] in FINAL_STATES,
        "offset": 0,
        "next_offset": 0,
        "size": 0,
        "data": "",
    }
    path = job.get(stream)
    if not path:
        return out
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except FileNotFoundError:
        return out
    except OSError as exc:
        raise ConfigError(
            f"cannot read the {stream} of job {job['id']}: {exc}"
        ) from exc
    with contextlib.closing(os.fdopen(fd, "rb")) as fh:
        size = os.fstat(fh.fileno()).st_size
        start = max(0, size - tail) if tail is not None else min(offset or 0, size)
        fh.seek(start)
        data = fh.read(max_bytes)
    if tail is not None and start > 0:
        lead = _continuation_bytes(data)
        data, start = data[lead:], start + lead
    cut, at_end = _partial_end(data), start + len(data) == size
    # the rest of that character is in the file (past max_bytes: unless that
    # leaves nothing), or may still come (a running job); not: show it broken
    if cut and (cut < len(data) if not at_end else not out["final"]):
        data = data[: len(data) - cut]
    out.update(
        offset=start,
        next_offset=start + len(data),
        size=size,
        data=data.decode("utf-8", errors="replace"),
    )
    return out


def _continuation_bytes(data: bytes) -> int:
    """How many bytes at the start of ``data`` continue a character begun
    before it (at most 3)."""
    n = 0
    while n < min(3, len(data)) and 0x80 <= data[n] < 0xC0:
        n += 1
    return n


def _partial_end(data: bytes) -> int:
    """How many bytes at the end of ``data`` begin a UTF-8 character whose
    remaining bytes are not in it (0-3)."""
    for back in range(1, min(4, len(data)) + 1):
        byte = data[-back]
        if byte < 0x80:  # ASCII: every character before it is whole
            return 0
        if byte >= 0xC0:  # the lead byte: how long is its character?
            length = 2 if byte < 0xE0 else 3 if byte < 0xF0 else 4
            return back if back < length else 0
    return 0
