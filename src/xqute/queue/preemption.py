"""Carrying out a preemption decided by ``policy.decide``: the records.

A pool that gets ``Decision.preempt`` (db thread) records each victim at once
(``record``: a row of ``preemptions``, and the victim's reason says who evicts
it), then, on its loop, sends the victim TERM and KILL after its priority
class's ``grace_period``. When the victim has ended, its ``Finished`` carries
``preempted_by`` and the finish transaction calls ``finished``:

- ``on_preempt="requeue"`` (the default): the job is pending again (the pool
  recorded it so), with ``preemptions + 1``; the claim it used is given back
  (``attempts - 1``), so a preemption never spends a retry or counts as a lost
  run;
- ``on_preempt="cancel"``: it ended cancelled, its reason names the preemptor;
- either way the preemption row gets its outcome and a ``job.preempted`` event
  names the preemptor (``events`` table).

A victim that ends by itself during its grace period ends as it ended.

A pool that dies during a preemption leaves its row open (no outcome): the pool
that adopts the victim (``open_for``) carries the preemption on -- a victim
that ended meanwhile is re-queued or cancelled as its class says, one that
still runs gets TERM again and KILL after its grace -- so a crash neither
fails the victim nor preempts it twice.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Mapping, Sequence

from .db import Database
from .schema import PENDING
from .snapshot import Preempt, QueuedJob, RunningJob

__all__ = ["finished", "open_for", "recent", "record"]


def record(
    db: Database,
    worker: str,
    now: float,
    preempts: Sequence[Preempt],
    running: Mapping[int, RunningJob],
    queued: Mapping[int, QueuedJob],
) -> None:
    """Log who evicts whom, and say so in the victims' reasons."""

    def write(conn: sqlite3.Connection) -> None:
        for p in preempts:
            victim, by = running[p.id], queued[p.for_job]
            conn.execute(
                "INSERT INTO preemptions (ts, job_id, namespace, priority, by_job,"
                " by_namespace, by_priority, worker, reason)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (now, p.id, victim.namespace, victim.priority, p.for_job,
                 by.namespace, by.priority, worker, p.reason),
            )  # fmt: skip
            conn.execute(
                "UPDATE job_queue SET reason = ? WHERE id = ? AND state = 'running'",
                (p.reason, p.id),
            )

    if preempts:
        db.write(write)


def finished(
    conn: sqlite3.Connection, job_id: int, by_job: int, state: str, ended_at: float
) -> None:
    """In the finish transaction of a preempted job (see the module docstring):
    ``state`` is "pending" (re-queued) or the state it ended in."""
    requeued = state == PENDING
    if requeued:
        conn.execute(
            "UPDATE job_queue SET preemptions = preemptions + 1,"
            " attempts = max(attempts - 1, 0) WHERE id = ?",
            (job_id,),
        )
    outcome = "requeued" if requeued else state
    conn.execute(
        "UPDATE preemptions SET outcome = ? WHERE id ="
        " (SELECT max(id) FROM preemptions WHERE job_id = ?)"
        " OR (job_id = ? AND outcome IS NULL)",
        (outcome, job_id, job_id),
    )
    row = conn.execute(
        "SELECT namespace, reason FROM job_queue WHERE id = ?", (job_id,)
    ).fetchone()
    namespace, reason = row if row is not None else ("default", None)
    data = {"by_job": by_job, "outcome": outcome, "reason": reason}
    conn.execute(
        "INSERT INTO events (ts, type, namespace, job_id, data)"
        " VALUES (?, 'job.preempted', ?, ?, ?)",
        (ended_at, namespace, job_id, json.dumps(data)),
    )


def open_for(db: Database, ids: Sequence[int]) -> dict[int, Preempt]:
    """The preemptions of jobs ``ids`` that were decided but have no outcome
    (their pool died meanwhile), by victim."""
    if not ids:
        return {}
    marks = ",".join("?" * len(ids))
    rows = db.query(
        f"SELECT job_id, by_job, reason FROM preemptions WHERE job_id IN ({marks})"
        " AND outcome IS NULL ORDER BY id",
        list(ids),
    )
    return {job_id: Preempt(job_id, by, reason) for job_id, by, reason in rows}


def recent(db: Database, limit: int = 20, namespace: str | None = None) -> list[dict]:
    """The latest preemptions, newest first (for ``xqute resources show``)."""
    cols = ("ts", "job_id", "namespace", "priority", "by_job", "by_namespace",
            "by_priority", "reason", "outcome")  # fmt: skip
    where, params = "", []
    if namespace is not None:
        where, params = "WHERE namespace = ? OR by_namespace = ?", [namespace] * 2
    rows = db.query(
        f"SELECT {', '.join(cols)} FROM preemptions {where} ORDER BY id DESC LIMIT ?",
        [*params, limit],
    )
    return [dict(zip(cols, row, strict=True)) for row in rows]
