"""What users do to a schedule: suspend it, resume it, fire it now
(``xqute schedule suspend|resume|fire``, and ``Orchestrator.suspend_job`` /
``resume_job``, which call ``set_suspended_in_tx`` in their transaction).

- Suspended: the fire loop skips it (its due query excludes it); runs already
  going are not touched.
- Resumed: what came due meanwhile is skipped, recorded as missed with reason
  "suspended" (one group, with its count), and firing goes on from now.
- Fired by hand: one run now, outside the schedule's times and its overlap
  rule, recorded as a ``manual`` fire; the schedule's state is unchanged.
"""

from __future__ import annotations

import json
import sqlite3
import time
from datetime import timedelta

from ..queue.db import Database
from . import schedule_store as store
from .fire_loop import start_run
from .fires import resume
from .schedule_store import ScheduleRow, to_dt, to_ts

__all__ = ["fire_now", "set_suspended", "set_suspended_in_tx"]

_MICROSECOND = timedelta(microseconds=1)


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


def fire_now(db: Database, ref: str, namespace: str = "default") -> int:
    """One run of the schedule ``ref`` now, outside its times and its overlap
    rule (recorded as a ``manual`` fire); its run id."""

    def write(conn: sqlite3.Connection) -> int:
        row = store.find(conn, ref, namespace)
        now = at = time.time()
        timeline = row.schedule.timeline()
        while conn.execute(  # a fire at this very microsecond, or a scheduled
            "SELECT 1 FROM schedule_fires WHERE schedule_id = ? AND scheduled_for = ?",
            (row.id, at),  # time (its fire would then collide): the next one
        ).fetchone() or timeline.first_after(to_dt(at) - _MICROSECOND) == to_dt(at):
            at += 1e-6
        run_id = start_run(conn, row, to_dt(at), now)
        store.record(conn, row, to_dt(at), "manual", now, run_id=run_id, lateness_s=0)
        store.event(conn, row, "schedule.fired", now, run_id, manual=True,
                    scheduled_for=to_dt(at).isoformat())  # fmt: skip
        conn.execute(
            "UPDATE schedules SET last_run_id = ?, last_fired_at = ? WHERE id = ?",
            (run_id, now, row.id),
        )
        return run_id

    return db.write(write)
