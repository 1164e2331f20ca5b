"""``WorkflowExecution``: a handle on one run (of a workflow or a job).

``wait()`` follows the run's events to its end. When no pool serves the db (no
daemon running), it runs an embedded pool in this process meanwhile, so the
first workflow needs no service: ``xqute workflow run NAME --wait`` works on a
fresh machine. The embedded pool is an ordinary ``WorkerPoolManager`` (local
backend): its jobs survive this process like the daemon's, and a pool started
later adopts them.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from ..queue import claims
from ..units import parse_timeout_s
from . import events as ev
from .pool_hooks import EXTENSION
from .status import RunStatus, run_status

if TYPE_CHECKING:
    from .orchestrator import Orchestrator

__all__ = ["WorkflowExecution", "pools_serving"]

#: a pool whose heartbeat is older than this does not count as serving the db
SERVING_HEARTBEAT_S = 15.0


def pools_serving(db: Any, now: float | None = None) -> int:
    """How many pools (daemons) with a recent heartbeat serve the db."""
    now = time.time() if now is None else now
    return sum(
        1
        for w in claims.live_workers(db)
        if w["state"] == "running" and now - w["heartbeat_at"] < SERVING_HEARTBEAT_S
    )


class WorkflowExecution:
    """One run: ``id``, ``status()``, ``wait()``, ``events()``, ``cancel()``,
    ``retry()``, ``outputs()``."""

    def __init__(self, orchestrator: Orchestrator, run_id: int) -> None:
        self.orchestrator = orchestrator
        self.id = run_id

    def __repr__(self) -> str:
        return f"<WorkflowExecution {self.id}>"

    def status(self) -> RunStatus:
        return run_status(self.orchestrator.db, self.id)

    def events(self, *, since: int = 0, follow: bool = True) -> Iterator[ev.Event]:
        """The run's events from ``since`` (default: its first), to its end."""
        return ev.watch(
            self.orchestrator.db, since=since, run_id=self.id, follow=follow
        )

    def wait(
        self,
        timeout: float | str | timedelta | None = None,
        *,
        embedded: bool | None = None,
        workers: int | None = None,
    ) -> RunStatus:
        """Block until the run ends (or ``timeout`` seconds passed); its status.

        ``embedded``: run a pool in this process while waiting; None (default):
        only when no pool serves the db. ``workers``: its slots (cpu count).
        """
        db = self.orchestrator.db
        timeout_s = parse_timeout_s(timeout, "wait timeout")
        if embedded is None:
            embedded = pools_serving(db) == 0
        pool = None
        if embedded:
            from ..queue.extensions import load_extensions
            from ..queue.pool import WorkerPoolManager

            # a pool that lives for one wait: no daemon_only extension (it does
            # not fire the db's schedules, which are the daemon's to fire)
            exts = [e for e in load_extensions() if not getattr(e, "daemon_only", 0)]
            pool = WorkerPoolManager(
                self.orchestrator.store, workers or os.cpu_count(), extensions=exts
            )
            # this run's plugin hooks from its start, which came before the
            # pool's first look at the event log (and once more at its end)
            hooks = EXTENSION.hooks(db, since=self._attempt_start() - 1)
            pool.start_workers()
        try:
            self._until_final(timeout_s)
        finally:
            if pool is not None:
                pool.stop_workers()
                hooks.dispatch()
        return self.status()

    def _attempt_start(self) -> int:
        """The id of the event that started the run's latest attempt."""
        row = self.orchestrator.db.query(
            "SELECT max(id) FROM events WHERE run_id = ? AND type IN"
            " ('workflow.started', 'job.started', 'workflow.retried', 'job.retried')",
            (self.id,),
        )
        return row[0][0] or 1

    def _until_final(self, timeout: float | None, poll_s: float = 0.05) -> None:
        """Poll the run's state (one row) whenever the db changed."""
        db = self.orchestrator.db
        deadline = None if timeout is None else time.monotonic() + timeout
        version = None
        while deadline is None or time.monotonic() < deadline:
            now_version = db.conn().execute("PRAGMA data_version").fetchone()[0]
            if now_version != version:
                version = now_version
                row = db.query("SELECT state FROM runs WHERE id = ?", (self.id,))
                if not row or row[0][0] not in ("pending", "running"):
                    return
            time.sleep(poll_s)

    def cancel(self, reason: str | None = None) -> bool:
        return self.orchestrator.cancel_workflow(self.id, reason=reason)

    def retry(self) -> WorkflowExecution:
        return self.orchestrator.retry_workflow(self.id)

    def outputs(self, task: str) -> dict[str, str]:
        """The outputs a task stored (``{"output": value}``, or empty)."""
        rows = self.orchestrator.db.query(
            "SELECT name, value FROM task_outputs WHERE run_id = ? AND task = ?",
            (self.id, task),
        )
        return dict(rows)
