"""The event log: every transition of a run or task is a row of ``events``,
appended in the transaction that makes the transition, so the log and the
state never disagree. The row id is a cursor: ``watch`` streams from any id
(``since``), re-reading only when the db changed (``PRAGMA data_version``), so
an idle watcher costs nothing and a reconnecting one misses nothing.

Types: ``workflow.started|succeeded|failed|cancelled|timeout|retried`` (a job
run says ``job.`` instead of ``workflow.``), ``task.ready|queued|started|
retrying|succeeded|failed|upstream_failed|skipped|cancelled``; later layers add
theirs (``schedule.fired``, ``alert.firing`` ...) with ``append``.
"""

from __future__ import annotations

import fnmatch
import json
import sqlite3
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..checks import MAX_ID, digits, is_row_id
from ..errors import ConfigError, RunNotFoundError
from ..queue.db import Database

__all__ = [
    "TERMINAL_TYPES",
    "Event",
    "append",
    "append_many",
    "ends_watch",
    "last_id",
    "read",
    "start_cursor",
    "watch",
]

#: run states that end a run (the events ``<kind>.<state>``)
RUN_FINAL_STATES = ("succeeded", "failed", "cancelled", "timeout")
RUN_STATES = ("pending", "running", *RUN_FINAL_STATES)
TERMINAL_TYPES = frozenset(
    f"{kind}.{state}" for kind in ("workflow", "job") for state in RUN_FINAL_STATES
)
_COLS = "id, ts, type, namespace, run_id, task, attempt, job_id, data"
_INSERT = (
    "INSERT INTO events (ts, type, namespace, run_id, task, attempt, job_id, data)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
)


@dataclass(frozen=True, slots=True)
class Event:
    """One transition. ``id`` is the cursor to resume from."""

    id: int
    ts: float
    type: str
    namespace: str = "default"
    run_id: int | None = None
    task: str | None = None
    attempt: int | None = None
    job_id: int | None = None
    data: dict[str, Any] = field(default_factory=dict)

    @property
    def is_terminal(self) -> bool:
        """The event that ends a run."""
        return self.type in TERMINAL_TYPES

    def as_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}

    @classmethod
    def from_row(cls, row: Sequence[Any]) -> Event:
        values = list(row)
        values[8] = json.loads(values[8]) if values[8] else {}
        return cls(*values)


def append(
    conn: sqlite3.Connection,
    type: str,
    ts: float,
    *,
    namespace: str = "default",
    run_id: int | None = None,
    task: str | None = None,
    attempt: int | None = None,
    job_id: int | None = None,
    data: dict[str, Any] | None = None,
) -> int:
    """Append one event inside the caller's transaction; returns its id."""
    cur = conn.execute(
        _INSERT,
        (
            ts,
            type,
            namespace,
            run_id,
            task,
            attempt,
            job_id,
            json.dumps(data) if data else None,
        ),
    )
    return cur.lastrowid  # type: ignore[return-value]


def append_many(conn: sqlite3.Connection, events: Sequence[tuple[Any, ...]]) -> None:
    """Append events given as (ts, type, namespace, run_id, task, attempt,
    job_id, data-dict-or-None) tuples, in order."""
    conn.executemany(
        _INSERT,
        [(*e[:7], json.dumps(e[7]) if e[7] else None) for e in events],
    )


def last_id(db: Database) -> int:
    return db.query("SELECT coalesce(max(id), 0) FROM events")[0][0]


def read(
    db: Database,
    after: int = 0,
    *,
    run_id: int | None = None,
    types: Sequence[str] | None = None,
    limit: int = 1000,
) -> list[Event]:
    """Events with ``id > after`` in order (``types``: globs like ``task.*``)."""
    if run_id is not None:
        rows = db.query(
            f"SELECT {_COLS} FROM events WHERE run_id = ? AND id > ?"
            " ORDER BY id LIMIT ?",
            (run_id, after, limit),
        )
    else:
        rows = db.query(
            f"SELECT {_COLS} FROM events WHERE id > ? ORDER BY id LIMIT ?",
            (after, limit),
        )
    events = [Event.from_row(row) for row in rows]
    if types:
        events = [
            e for e in events if any(fnmatch.fnmatchcase(e.type, t) for t in types)
        ]
    return events


def watch(
    db: Database,
    *,
    since: int | str | None = None,
    run_id: int | None = None,
    types: Sequence[str] | None = None,
    follow: bool = True,
    timeout_s: float | None = None,
    poll_s: float = 0.02,
) -> Iterator[Event]:
    """Events after ``since`` (an id, 0 for all, or "now"; None: the run's
    first with ``run_id``, else "now"), then new ones as
    they come (``follow``). With ``run_id``, it ends after the run's terminal
    event; ``timeout_s`` ends it after that long in any case. A bad cursor or
    an unknown run is an error now, not at the first ``next()``."""
    cursor = start_cursor(db, since, run_id)
    return _follow(db, cursor, run_id, types, follow, timeout_s, poll_s)


def start_cursor(db: Database, since: int | str | None, run_id: int | None) -> int:
    """The event id to read after: ``since`` (an id >= 0 or "now"; None: the
    run's first event with ``run_id``, else "now"). ``ConfigError`` for a bad
    cursor, ``RunNotFoundError`` for a run that does not exist."""
    known = run_id is None or (
        is_row_id(run_id)
        and db.query(
            "SELECT 1 FROM runs WHERE id = ?1"
            " UNION ALL SELECT 1 FROM events WHERE run_id = ?1 LIMIT 1",
            (run_id,),
        )
    )
    if not known:
        raise RunNotFoundError(f"no run {run_id} in {db.path}")
    if since is None:
        since = 0 if run_id is not None else "now"
    if since == "now":
        return last_id(db)
    if isinstance(since, bool) or not isinstance(since, int | str):
        since = repr(since)  # not a cursor whatever its text
    if not digits(str(since)):
        raise ConfigError(f"since {since!r} must be an event id (0 or more) or 'now'")
    return min(int(since), MAX_ID)  # after the largest id: nothing yet


def ends_watch(db: Database, event: Event) -> bool:
    """Whether ``event`` ends a watch of its run: a terminal event that no
    later ``retry_workflow`` (a ``*.retried`` event) took up again. A watch
    from the run's first event of a run that was retried goes on to the end
    of its latest attempt."""
    if not event.is_terminal:
        return False
    return not db.query(
        "SELECT 1 FROM events WHERE run_id = ? AND id > ? AND type IN"
        " ('workflow.retried', 'job.retried') LIMIT 1",
        (event.run_id, event.id),
    )


def _follow(
    db: Database,
    cursor: int,
    run_id: int | None,
    types: Sequence[str] | None,
    follow: bool,
    timeout_s: float | None,
    poll_s: float,
) -> Iterator[Event]:
    deadline = None if timeout_s is None else time.monotonic() + timeout_s
    version = None
    while True:
        now_version = db.conn().execute("PRAGMA data_version").fetchone()[0]
        if now_version != version:
            version = now_version
            while True:
                batch = read(db, cursor, run_id=run_id, limit=1000)
                for event in batch:
                    cursor = event.id
                    if not types or any(
                        fnmatch.fnmatchcase(event.type, t) for t in types
                    ):
                        yield event
                    if run_id is not None and ends_watch(db, event):
                        return
                if len(batch) < 1000:
                    break
        if not follow:
            return
        if deadline is not None and time.monotonic() >= deadline:
            return
        time.sleep(poll_s)
