"""The orchestration layer as a pool extension (``queue/extensions.py``): every
pool serving the db (the daemon's, an embedded one) advances runs in its
finish and claim transactions, and reconciles every second:

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

__all__ = ["EXTENSION", "OrchestrationExtension", "cancel_overdue"]

logger = logging.getLogger("xqute.orchestration")


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
        nxt = cancel_overdue(db, now)
        hooks = self._hooks.get(str(db.path))
        if hooks is None:
            hooks = self._hooks[str(db.path)] = EventHooks(db)
        hooks.dispatch()
        return nxt


EXTENSION = OrchestrationExtension()
