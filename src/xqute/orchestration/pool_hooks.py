"""The orchestration layer as a pool extension (``queue/extensions.py``): every
pool serving the db (the daemon's, an embedded one) advances runs in its
finish and claim transactions, and reconciles every second:

- queue jobs of runs that ended without a pool's finish hook (``xqute
  cancel`` of a pending one) are settled as the pool would have;
- runs past their deadline (``timeout``) are cancelled: queue jobs not started
  are cancelled at once, running ones killed by their pool (TERM, grace, KILL);
  the run ends ``timeout`` once nothing of it runs;
- the plugin hooks ``on_workflow_start``, ``on_workflow_end`` and
  ``on_task_ready`` are called for the new events, when a plugin implements
  them (``hooks.py``).

Imports neither pydantic nor yaml: the daemon stays small.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Sequence

from ..queue.db import Database
from ..queue.extensions import EndedJob, PoolExtension
from . import advance
from .hooks import EventHooks
from .runs import request_cancel

__all__ = ["EXTENSION", "OrchestrationExtension", "cancel_overdue", "settle_orphans"]

logger = logging.getLogger("xqute.orchestration")


def settle_orphans(db: Database, now: float) -> int:
    """Advance the runs whose queue jobs ended without a pool's finish hook (a
    pending job cancelled with ``xqute cancel``; a pool started without this
    extension): as if the pool had recorded their end. Reads the open attempts
    only (a partial index), so it costs nothing while runs are idle: CROSS JOIN
    keeps them the outer loop (with a plain JOIN SQLite walks every ended job
    of the queue instead: 0.3 s a second with a million of them)."""
    rows = db.query(
        "SELECT q.id, q.run_id, q.state, q.return_code, q.reason, q.ended_at,"
        " q.job_dir FROM task_attempts a INDEXED BY task_attempts_open"
        " CROSS JOIN job_queue q ON q.id = a.queue_job_id"
        " WHERE a.state IN ('queued', 'running')"
        " AND q.state IN ('completed', 'failed', 'timeout', 'cancelled')"
    )
    if rows:
        ended = [
            EndedJob(r[0], r[1], r[2], r[3], r[4], r[5] or now, r[6]) for r in rows
        ]
        db.write(lambda conn: advance.jobs_ended(conn, ended, now))
        logger.info("settled %d queue job(s) of runs that ended unseen", len(rows))
    return len(rows)


def cancel_overdue(db: Database, now: float) -> float | None:
    """Cancel the runs whose deadline passed; the next deadline, or None."""
    rows = db.query(
        "SELECT id, deadline_at FROM runs WHERE state = 'running'"
        " AND deadline_at IS NOT NULL AND cancel_requested = 0"
    )
    due = [run_id for run_id, at in rows if at <= now]
    if due:

        def write(conn: sqlite3.Connection) -> None:
            for run_id in due:
                request_cancel(conn, run_id, now, code=2)

        db.write(write)
        logger.info("runs %s passed their timeout: cancelling", due)
    later = [at for _, at in rows if at > now]
    return min(later) if later else None


class OrchestrationExtension(PoolExtension):
    name = "orchestration"
    reconcile_interval_s = 1.0

    def __init__(self) -> None:
        self._hooks: dict[str, EventHooks] = {}  # per db

    def jobs_ended(
        self, conn: sqlite3.Connection, ended: Sequence[EndedJob], now: float
    ) -> bool:
        return advance.jobs_ended(conn, ended, now)

    def jobs_claimed(
        self, conn: sqlite3.Connection, claimed: Sequence[tuple[int, int]], now: float
    ) -> None:
        advance.jobs_claimed(conn, claimed, now)

    def reconcile(self, db: Database, now: float) -> float | None:
        settle_orphans(db, now)
        nxt = cancel_overdue(db, now)
        self.hooks(db).dispatch()
        return nxt

    def hooks(self, db: Database, since: int | None = None) -> EventHooks:
        """The run hooks of this db's pools in this process; ``since``: an
        event id they must not start after (a pool that lives for one run's
        wait calls the hooks of that run's events from its start, though they
        came before the pool's first look)."""
        hooks = self._hooks.get(str(db.path))
        if hooks is None:
            hooks = self._hooks[str(db.path)] = EventHooks(db)
        if since is not None and hooks.cursor > since:
            hooks.cursor = since
        return hooks


EXTENSION = OrchestrationExtension()
