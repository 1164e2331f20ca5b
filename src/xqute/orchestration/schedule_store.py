"""The schedules' tables: one row per scheduled definition (``schedules``), one
per settled scheduled time (``schedule_fires``).

- A job or workflow definition with ``schedule=`` gets a row when it is stored
  (``sync``, inside the definition's write transaction); re-applying the same
  spec keeps the row's state, a changed schedule starts from now, a definition
  without a schedule (or deleted) retires it.
- ``settled_until``: every scheduled time up to it was handled (started,
  coalesced, missed or skipped); it only moves forward, so no time is handled
  twice, whatever the clock does. ``next_fire_at`` is the first time after it:
  the fire loop's due query is one index range on it.
- ``schedule_fires`` has PRIMARY KEY ``(schedule_id, scheduled_for)``: the fire
  and the run it creates are one transaction on that key, so two daemons, or a
  daemon restarted mid-fire, can never start two runs for one time. A group of
  times settled together (coalesced, missed) is one row at its first time, with
  ``until`` and ``count``.
- The tables are migration v4 (queue/schema.py ``V4_DDL``).
- The counters (``fired``, ``coalesced``, ``missed``, ``skipped``) and the
  latest catch-up summary live on the ``schedules`` row, so ``xqute schedule
  list`` reads one row per schedule however many fires there were.

Times are unix seconds (UTC), like every other time in the db.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from ..errors import ConfigError, ScheduleNotFoundError
from ..queue.db import Database
from .fires import Fire, Group, ScheduleState
from .schedules import Cron, Every, schedule_from_dict

__all__ = [
    "ScheduleRow",
    "event",
    "find",
    "list_rows",
    "load_state",
    "record",
    "record_group",
    "retire",
    "set_suspended",
    "sync",
    "to_dt",
    "to_ts",
]

_COLS = (
    "id, kind, namespace, name, spec, timezone, suspended, suspended_at,"
    " settled_until, backlog, next_fire_at, fired, coalesced, missed, skipped,"
    " last_scheduled_for, last_fired_at, last_run_id, last_catchup, created_at"
)


@dataclass(frozen=True, slots=True)
class ScheduleRow:
    """One ``schedules`` row, parsed (``schedule``: the ``Cron``/``Every``)."""

    id: int
    kind: str
    namespace: str
    name: str
    schedule: Cron | Every
    timezone: str | None
    suspended: bool
    suspended_at: float | None
    settled_until: float
    backlog: tuple[Fire, ...]
    next_fire_at: float | None
    fired: int
    coalesced: int
    missed: int
    skipped: int
    last_scheduled_for: float | None
    last_fired_at: float | None
    last_run_id: int | None
    last_catchup: dict[str, Any] | None
    created_at: float

    @classmethod
    def from_row(cls, row: Any) -> ScheduleRow:
        v = list(row)
        v[4] = _parsed(v[4])
        v[6] = bool(v[6])
        v[9] = tuple(Fire(to_dt(t), bool(c)) for t, c in json.loads(v[9] or "[]"))
        v[18] = json.loads(v[18]) if v[18] else None
        return cls(*v)

    @property
    def state(self) -> ScheduleState:
        return ScheduleState(to_dt(self.settled_until), self.backlog)

    @property
    def ref(self) -> str:
        """``job/nightly`` (``team-a:job/nightly`` outside the default namespace)."""
        prefix = "" if self.namespace == "default" else f"{self.namespace}:"
        return f"{prefix}{self.kind}/{self.name}"


@lru_cache(maxsize=1024)
def _parsed(spec: str) -> Cron | Every:
    """A stored spec, parsed once per process (the fire loop reads it each fire)."""
    return schedule_from_dict(json.loads(spec))


def to_ts(t: datetime) -> float:
    return t.timestamp()


def to_dt(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, UTC)


def sync(
    conn: sqlite3.Connection,
    kind: str,
    namespace: str,
    name: str,
    schedule: Cron | Every | Mapping[str, Any] | None,
    now: float,
) -> None:
    """The definition (kind, namespace, name) was stored with ``schedule``
    (None: without one): create, update or retire its row. Inside the
    definition's write transaction."""
    if schedule is None:
        retire(conn, kind, namespace, name, now)
        return
    spec = resolved(schedule_from_dict(schedule))
    text = json.dumps(spec.to_dict(), sort_keys=True)
    timezone = spec.timezone if isinstance(spec, Cron) else None
    nxt = spec.timeline().first_after(to_dt(now))
    row = conn.execute(
        "SELECT id, spec, deleted_at FROM schedules WHERE kind = ? AND namespace = ?"
        " AND name = ?",
        (kind, namespace, name),
    ).fetchone()
    if row is None:
        conn.execute(
            "INSERT INTO schedules (kind, namespace, name, spec, timezone,"
            " settled_until, next_fire_at, created_at, updated_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (kind, namespace, name, text, timezone, now, _ts(nxt), now, now),
        )
    elif row[1] != text or row[2] is not None:  # changed, or back from deletion
        conn.execute(
            "UPDATE schedules SET spec = ?, timezone = ?, settled_until = max(?,"
            " settled_until), backlog = NULL, next_fire_at = ?, updated_at = ?,"
            " suspended = CASE WHEN deleted_at IS NULL THEN suspended ELSE 0 END,"
            " deleted_at = NULL WHERE id = ?",
            (text, timezone, now, _ts(nxt), now, row[0]),
        )


def resolved(schedule: Cron | Every) -> Cron | Every:
    """``schedule`` with its cron zone resolved (None: this machine's zone), as
    stored: the daemon evaluates exactly what the client stored."""
    if isinstance(schedule, Cron) and schedule.timezone is None:
        return replace(schedule, timezone=schedule.zone_name())
    return schedule


def retire(
    conn: sqlite3.Connection, kind: str, namespace: str, name: str, now: float
) -> None:
    """The definition was deleted, or stored without a schedule: no more fires
    (the row and its history stay)."""
    conn.execute(
        "UPDATE schedules SET deleted_at = ?, next_fire_at = NULL, backlog = NULL,"
        " updated_at = ? WHERE kind = ? AND namespace = ? AND name = ?"
        " AND deleted_at IS NULL",
        (now, now, kind, namespace, name),
    )


def set_suspended(
    conn: sqlite3.Connection, row: ScheduleRow, suspended: bool, now: float
) -> None:
    """Suspend (no fires) or resume ``row``; resuming skips what came due
    meanwhile (the caller records the groups ``fires.resume`` returns)."""
    if suspended:
        conn.execute(
            "UPDATE schedules SET suspended = 1, suspended_at = ?, updated_at = ?"
            " WHERE id = ? AND suspended = 0",
            (now, now, row.id),
        )
        return
    conn.execute(
        "UPDATE schedules SET suspended = 0, suspended_at = NULL, updated_at = ?"
        " WHERE id = ?",
        (now, row.id),
    )


def load_state(conn: sqlite3.Connection, schedule_id: int) -> ScheduleRow | None:
    """The row as it is inside the caller's write transaction (live ones only)."""
    row = conn.execute(
        f"SELECT {_COLS} FROM schedules WHERE id = ? AND deleted_at IS NULL",
        (schedule_id,),
    ).fetchone()
    return ScheduleRow.from_row(row) if row else None


def list_rows(db: Database | sqlite3.Connection) -> list[ScheduleRow]:
    """Every live schedule, by kind, namespace and name."""
    sql = (
        f"SELECT {_COLS} FROM schedules WHERE deleted_at IS NULL"
        " ORDER BY namespace, name, kind"
    )
    rows = (
        db.execute(sql).fetchall()
        if isinstance(db, sqlite3.Connection)
        else (db.query(sql))
    )
    return [ScheduleRow.from_row(r) for r in rows]


def find(
    db: Database | sqlite3.Connection, ref: str, namespace: str = "default"
) -> ScheduleRow:
    """The live schedule named ``ref``: ``NAME``, ``job/NAME`` or
    ``workflow/NAME``. LookupError (with the names there are) otherwise."""
    kind, _, name = ref.rpartition("/")
    if kind not in ("", "job", "workflow"):
        raise ConfigError(f"schedule {ref!r}: say NAME, job/NAME or workflow/NAME")
    rows = [r for r in list_rows(db) if r.namespace == namespace]
    found = [r for r in rows if r.name == name and kind in ("", r.kind)]
    if len(found) == 1:
        return found[0]
    if found:
        raise ConfigError(
            f"schedule {ref!r} is ambiguous: say "
            + " or ".join(f"{r.kind}/{r.name}" for r in found)
        )
    from difflib import get_close_matches

    names = sorted({r.name for r in rows})
    close = get_close_matches(name, names, n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    there = ", ".join(names) if names else "none"
    raise ScheduleNotFoundError(
        f"no schedule {ref!r} in namespace {namespace!r}{hint} (schedules: {there})"
    )


def record(
    conn: sqlite3.Connection,
    row: ScheduleRow,
    scheduled_for: datetime,
    outcome: str,
    now: float,
    *,
    run_id: int | None = None,
    reason: str | None = None,
    lateness_s: float | None = None,
) -> None:
    conn.execute(
        "INSERT INTO schedule_fires (schedule_id, scheduled_for, outcome, reason,"
        " run_id, fired_at, lateness_s) VALUES (?, ?, ?, ?, ?, ?, ?)",
        (row.id, to_ts(scheduled_for), outcome, reason, run_id, now, lateness_s),
    )


def record_group(
    conn: sqlite3.Connection, row: ScheduleRow, g: Group, now: float, into: int | None
) -> None:
    conn.execute(
        "INSERT INTO schedule_fires (schedule_id, scheduled_for, until, outcome,"
        " count, exact, reason, run_id, fired_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (row.id, to_ts(g.first), to_ts(g.last), g.outcome, g.count, int(g.exact),
         g.reason, into, now),
    )  # fmt: skip
    event(conn, row, f"schedule.{g.outcome}", now, into,
           first=g.first.isoformat(), last=g.last.isoformat(), count=g.count,
           exact=g.exact, reason=g.reason)  # fmt: skip


def event(
    conn: sqlite3.Connection,
    row: ScheduleRow,
    type_: str,
    now: float,
    run_id: int | None,
    **data: Any,
) -> None:
    from . import events

    data = {"schedule": row.ref, "kind": row.kind, "name": row.name, **data}
    events.append(conn, type_, now, namespace=row.namespace, run_id=run_id, data=data)


def _ts(t: datetime | None) -> float | None:
    return None if t is None else t.timestamp()
