"""What users do to a schedule: suspend it, resume it
(``xqute schedule suspend|resume``, and ``Orchestrator.suspend_job`` /
``resume_job``, which call ``set_suspended_in_tx`` in their transaction).

- Suspended: the fire loop skips it (its due query excludes it); runs already
  going are not touched.
- Resumed: what came due meanwhile is skipped, recorded as missed with reason
  "suspended" (one group, with its count), and firing goes on from now.
"""

from __future__ import annotations

import json
import sqlite3
import time

from ..queue.db import Database
from . import schedule_store as store
from .fires import resume
from .schedule_store import ScheduleRow, to_dt, to_ts

__all__ = ["set_suspended", "set_suspended_in_tx"]


def set_suspended(
    db: Database, ref: str, suspended: bool, namespace: str = "default"
) -> bool:
    """Suspend or resume the schedule ``ref`` (NAME, job/NAME, workflow/NAME);
    False if it already was. ScheduleNotFoundError if there is none."""
    return db.write(
        lambda conn: _set(
            conn, store.find(conn, ref, namespace), suspended, time.time()
        )
    )


def set_suspended_in_tx(
    conn: sqlite3.Connection,
    kind: str,
    name: str,
    suspended: bool,
    now: float,
    namespace: str = "default",
) -> bool:
    """The same for the definition (kind, namespace, name), inside the
    caller's transaction; False if it has no schedule or already was so."""
    row = conn.execute(
        "SELECT id FROM schedules WHERE kind = ? AND namespace = ? AND name = ?"
        " AND deleted_at IS NULL",
        (kind, namespace, name),
    ).fetchone()
    found = store.load_state(conn, row[0]) if row else None
    return _set(conn, found, suspended, now) if found else False


def _set(
    conn: sqlite3.Connection, row: ScheduleRow, suspended: bool, now: float
) -> bool:
    if row.suspended == suspended:
        return False
    store.set_suspended(conn, row, suspended, now)
    if suspended:
        store.event(conn, row, "schedule.suspended", now, None)
        return True
    state, groups = resume(row.schedule, row.state, to_dt(now))
    for group in groups:
        store.record_group(conn, row, group, now, None)
    missed = sum(g.count for g in groups)
    summary = {"missed": missed, "exact": all(g.exact for g in groups), "ran": 0,
               "coalesced": 0, "reasons": ["suspended"]}  # fmt: skip
    nxt = row.schedule.timeline().first_after(state.settled_until)
    conn.execute(
        "UPDATE schedules SET settled_until = ?, backlog = NULL, next_fire_at = ?,"
        " missed = missed + ?, last_catchup = coalesce(?, last_catchup) WHERE id = ?",
        (to_ts(state.settled_until), to_ts(nxt) if nxt else None, missed,
         json.dumps(summary) if missed else None, row.id),
    )  # fmt: skip
    store.event(conn, row, "schedule.resumed", now, None, skipped=missed)
    return True
