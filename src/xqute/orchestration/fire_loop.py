"""Firing schedules: the pool extension ``schedules`` that the daemon (any
pool serving the db) runs.

The daemon's pool calls ``SCHEDULES.reconcile(db, now)`` when it starts, then
at the unix time the previous call returned (the next fire) and at least every
second (see queue/extensions.py). The pool's loop waits on the monotonic clock
and recomputes due-ness from the wall clock at each call, so an NTP step or a
resume from sleep is noticed within a second. Each call:

1. reads the due schedules (``next_fire_at <= now``: one index range);
2. for each, in ONE write transaction for all: re-reads its row, asks
   ``fires.due`` and ``fires.admit`` (pure), creates the runs, records every
   started, coalesced, missed, skipped and replaced time in ``schedule_fires``
   (primary key (schedule, time): a second daemon or a restart mid-fire can
   never create a second run for a time) and as an event, and moves
   ``settled_until`` / ``next_fire_at`` forward;
3. returns the earliest ``next_fire_at``.

``watching`` (for ``missed_runs="skip"``) comes from the previous call for the
same db: when the wall clock moved unlike the monotonic one since, the loop
was not watching (the machine slept, the clock jumped), and neither was it
before its first call.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
import time
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from ..errors import XquteError
from ..queue.db import Database
from ..queue.extensions import PoolExtension
from . import runs
from . import schedule_store as store
from .cron import get_zone
from .fires import (
    COALESCED,
    MISSED,
    REASON_CAP,
    REASON_DEADLINE,
    REPLACED,
    SKIPPED_OVERLAP,
    Admission,
    Fire,
    Plan,
    admit,
    due,
    watching_since,
)
from .schedule_store import ScheduleRow, to_dt, to_ts

__all__ = ["SCHEDULES", "ScheduleExtension", "fire_schedules", "start_run"]

logger = logging.getLogger("xqute.orchestration")
FAILED = "failed"  # the run could not be created (reason recorded)
#: ``schedule_fires`` keeps this much history (a per-second schedule adds
#: 86,400 rows a day), pruned at most this often
FIRES_KEPT_S = 30 * 86400.0
PRUNE_EVERY_S = 3600.0
_last_prune: dict[str, float] = {}  # db path -> unix time
#: a schedule whose fires wait for an active run is looked at this often
BACKLOG_POLL_S = 1.0
#: a schedule that could not be fired at all is looked at again after this
BROKEN_RETRY_S = 60.0


class ScheduleExtension(PoolExtension):
    """The pool extension that fires schedules (queue/extensions.py)."""

    name = "schedules"
    reconcile_interval_s = 1.0  # so a jump of the wall clock is seen within 1 s
    #: not in the short-lived pool ``WorkflowExecution.wait`` embeds: schedules
    #: are fired by the pools that serve the db (the daemon's)
    daemon_only = True

    def __init__(self) -> None:
        self._looks: dict[str, tuple[datetime, float]] = {}  # db -> (wall, mono)
        self._lock = threading.Lock()

    def reconcile(self, db: Database, now: float) -> float | None:
        mono = time.monotonic()
        wall = to_dt(now)
        key = str(db.path)
        with self._lock:
            previous = self._looks.get(key)
            self._looks[key] = (wall, mono)
        return fire_schedules(db, now, watching_since(previous, wall, mono))


SCHEDULES = ScheduleExtension()


def fire_schedules(db: Database, now: float, watching: datetime | None) -> float | None:
    """Fire every due schedule of ``db`` at ``now``; the next time to look.

    All due schedules fire in one transaction (one commit for a whole second's
    fires), each in a savepoint: a schedule whose run cannot be created (its
    definition became invalid, its job is suspended ...) records that time as
    ``failed`` with the reason, and the others fire anyway."""
    ids = [
        r[0]
        for r in db.query(
            "SELECT id FROM schedules WHERE deleted_at IS NULL AND suspended = 0"
            " AND next_fire_at <= ? ORDER BY next_fire_at",
            (now,),
        )
    ]
    if ids:
        mono = time.monotonic()

        def clock() -> float:  # now, plus the time this call has taken so far
            return now + (time.monotonic() - mono)

        db.write(lambda conn: [_guarded(conn, i, now, watching, clock) for i in ids])
    _prune(db, now)
    nxt = db.query(
        "SELECT min(next_fire_at) FROM schedules WHERE deleted_at IS NULL"
        " AND suspended = 0"
    )[0][0]
    return nxt


def _prune(db: Database, now: float) -> None:
    """Forget fires older than ``FIRES_KEPT_S``, at most every ``PRUNE_EVERY_S``
    per db (one primary-key range per schedule). Only history goes: what was
    fired is guarded by ``settled_until``, not by these rows."""
    key = str(db.path)
    if now - _last_prune.get(key, 0.0) < PRUNE_EVERY_S:
        return
    _last_prune[key] = now
    ids = [r[0] for r in db.query("SELECT id FROM schedules")]
    db.write(lambda conn: conn.executemany(
        "DELETE FROM schedule_fires WHERE schedule_id = ? AND scheduled_for < ?",
        [(i, now - FIRES_KEPT_S) for i in ids],
    ))  # fmt: skip


def _guarded(
    conn: sqlite3.Connection,
    schedule_id: int,
    now: float,
    watching: datetime | None,
    clock: Callable[[], float],
) -> None:
    """``_fire_one`` in a savepoint: a schedule that cannot be fired at all
    (its stored spec no longer parses, a bug) is logged and looked at again
    in ``BROKEN_RETRY_S``, and the others fire. A busy or full db is no such
    case: it fails the whole look, retried whole."""
    conn.execute("SAVEPOINT schedule")
    try:
        _fire_one(conn, schedule_id, now, watching, clock)
    except sqlite3.OperationalError:
        raise
    except Exception:
        conn.execute("ROLLBACK TO schedule")
        logger.exception(
            "schedule %d cannot be fired; trying again in %.0f s",
            schedule_id, BROKEN_RETRY_S,
        )  # fmt: skip
        conn.execute(
            "UPDATE schedules SET next_fire_at = ? WHERE id = ?",
            (now + BROKEN_RETRY_S, schedule_id),
        )
    conn.execute("RELEASE schedule")


def _fire_one(
    conn: sqlite3.Connection,
    schedule_id: int,
    now: float,
    watching: datetime | None,
    clock: Callable[[], float],
) -> None:
    row = store.load_state(conn, schedule_id)
    if row is None or row.suspended or (row.next_fire_at or now + 1) > now:
        return  # retired, suspended or fired by someone else meanwhile
    plan = due(row.schedule, row.state, to_dt(now), watching)
    allow = row.schedule.concurrency == "allow"  # needs no look at the runs
    active = [] if allow else _active_runs(conn, row.id)
    candidates = (*row.backlog, *plan.fires)
    admission = admit(row.schedule, candidates, active, to_dt(now))
    conn.execute("SAVEPOINT fire")
    try:
        _apply(conn, row, plan, admission, now, clock)
    except XquteError as exc:  # the run cannot be created: record why, go on
        conn.execute("ROLLBACK TO fire")
        logger.warning("schedule %s: cannot start its run: %s", row.ref, exc)
        _apply(conn, row, plan, admission, now, clock, failed=str(exc))
    conn.execute("RELEASE fire")


def _apply(
    conn: sqlite3.Connection,
    row: ScheduleRow,
    plan: Plan,
    adm: Admission,
    now: float,
    clock: Callable[[], float],
    failed: str | None = None,
) -> None:
    """Record a plan and its admission; start the admitted runs (``failed``:
    they could not be, record each as failed with that reason)."""
    started: list[tuple[Fire, int]] = []
    for fire in adm.start if failed is None else ():
        run_id = start_run(conn, row, fire.scheduled_for, now)
        fired_at = clock()  # the run exists (commits with this transaction)
        lateness = fired_at - to_ts(fire.scheduled_for)
        store.record(conn, row, fire.scheduled_for, "started", fired_at,
                     run_id=run_id, lateness_s=lateness)  # fmt: skip
        store.event(conn, row, "schedule.fired", now, run_id,
                    scheduled_for=fire.scheduled_for.isoformat(),
                    catchup=fire.catchup, lateness_s=round(lateness, 6))  # fmt: skip
        started.append((fire, run_id))
    blocker = adm.cancel[0] if adm.cancel else None
    if adm.skipped and blocker is None:
        blocker = _first(_active_runs(conn, row.id))
    for fires, outcome, reason in (
        (adm.start if failed else (), FAILED, failed),
        (adm.skipped, SKIPPED_OVERLAP, f"run {blocker} was still active"),
        (adm.replaced, REPLACED, "replaced by a newer fire"),
        (adm.dropped, MISSED, REASON_CAP),
        (adm.expired, MISSED, REASON_DEADLINE),
    ):
        for fire in fires:
            blocked_by = blocker if outcome == SKIPPED_OVERLAP else None
            store.record(conn, row, fire.scheduled_for, outcome, now,
                         reason=reason, run_id=blocked_by)  # fmt: skip
            kind = {MISSED: "missed", FAILED: "failed"}.get(outcome, "skipped")
            store.event(conn, row, f"schedule.{kind}", now, None, outcome=outcome,
                        scheduled_for=fire.scheduled_for.isoformat(),
                        reason=reason)  # fmt: skip
    for run_id in adm.cancel:
        _cancel_run(conn, run_id, now, "replaced by a newer scheduled run")
    into = started[-1][1] if started else None
    for group in plan.groups:
        store.record_group(
            conn, row, group, now, into if group.outcome == COALESCED else None
        )
    _update_row(conn, row, plan, adm, started, now)


def _update_row(
    conn: sqlite3.Connection,
    row: ScheduleRow,
    plan: Plan,
    adm: Admission,
    started: Sequence[tuple[Fire, int]],
    now: float,
) -> None:
    coalesced = sum(g.count for g in plan.groups if g.outcome == COALESCED)
    missed = sum(g.count for g in plan.groups if g.outcome == MISSED)
    missed += len(adm.dropped) + len(adm.expired)
    if not started and adm.start:  # failed to start: missed too, with its reason
        missed += len(adm.start)
    skipped = len(adm.skipped) + len(adm.replaced)
    backlog = [[to_ts(f.scheduled_for), int(f.catchup)] for f in adm.backlog]
    nxt = to_ts(plan.next_fire) if plan.next_fire else None
    if backlog:
        nxt = min(nxt or now + BACKLOG_POLL_S, now + BACKLOG_POLL_S)
    catchup = _catchup_summary(plan, adm, bool(adm.start) and not started)
    last = started[-1] if started else None
    conn.execute(
        "UPDATE schedules SET settled_until = max(settled_until, ?), backlog = ?,"
        " next_fire_at = ?, fired = fired + ?, coalesced = coalesced + ?,"
        " missed = missed + ?, skipped = skipped + ?,"
        " last_scheduled_for = coalesce(?, last_scheduled_for),"
        " last_fired_at = coalesce(?, last_fired_at),"
        " last_run_id = coalesce(?, last_run_id),"
        " last_catchup = coalesce(?, last_catchup), updated_at = ? WHERE id = ?",
        (
            to_ts(plan.settled_until), json.dumps(backlog) if backlog else None, nxt,
            len(started), coalesced, missed, skipped,
            to_ts(last[0].scheduled_for) if last else None, now if last else None,
            last[1] if last else None,
            json.dumps(catchup) if catchup else None, now, row.id,
        ),
    )  # fmt: skip


def _catchup_summary(plan: Plan, adm: Admission, failed: bool) -> dict[str, Any] | None:
    """What ``schedule list`` says about the times that came due while nobody
    watched: how many, how many run (now or from the backlog), how many
    coalesced, and why the rest did not run. None when there were none."""
    late = [f for f in plan.fires if f.catchup]
    if not plan.groups and not late:
        return None
    lost = [*adm.skipped, *adm.replaced, *adm.dropped, *adm.expired]
    lost += adm.start if failed else ()
    gone = {f.scheduled_for for f in lost}
    ran = [f for f in late if f.scheduled_for not in gone]
    reasons = {g.reason for g in plan.groups if g.outcome == MISSED}
    reasons |= {"overlap" for f in late if f.scheduled_for in gone}
    return {
        "missed": sum(g.count for g in plan.groups) + len(late),
        "exact": all(g.exact for g in plan.groups),
        "ran": len(ran),
        "coalesced": sum(g.count for g in plan.groups if g.outcome == COALESCED),
        "run_for": to_ts(ran[-1].scheduled_for) if ran else None,
        "reasons": sorted(reasons),
    }


def _first(items: Sequence[int]) -> int | None:
    return items[0] if items else None


# ---------------------------------------------------------------------- runs
def _active_runs(conn: sqlite3.Connection, schedule_id: int) -> list[int]:
    """This schedule's runs not ended yet (the overlap rule's input)."""
    return [
        r[0]
        for r in conn.execute(
            "SELECT id FROM runs WHERE schedule_id = ? AND state IN"
            " ('pending', 'running') ORDER BY id",
            (schedule_id,),
        )
    ]


def start_run(
    conn: sqlite3.Connection, row: ScheduleRow, scheduled_for: datetime, now: float
) -> int:
    """Create the run of ``row``'s definition for ``scheduled_for``, in the
    caller's transaction; its id. The run sees the time in the schedule's zone
    as ``#{schedule.time}`` and ``$XQUTE_SCHEDULED_FOR``."""
    local = scheduled_for.astimezone(_zone(row)).isoformat()
    return runs.create_run(
        conn, row.kind, row.name, now, namespace=row.namespace,
        triggered_by="schedule", schedule_id=row.id,
        scheduled_for=to_ts(scheduled_for),
        extra_env={"XQUTE_SCHEDULED_FOR": local},
        extra_refs={"schedule.time": local},
    )  # fmt: skip


def _cancel_run(conn: sqlite3.Connection, run_id: int, now: float, reason: str) -> None:
    runs.request_cancel(conn, run_id, now, reason)


def _zone(row: ScheduleRow) -> Any:
    return get_zone(row.timezone or "UTC")
