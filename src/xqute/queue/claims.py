"""The pool's side of the store: snapshot, claim, record, finish, heartbeat.

Every function takes the ``Database`` and runs short statements; the pool calls
them from its one db thread. Correctness under concurrency rests on two rules:

- A claim is ``UPDATE ... WHERE id = ? AND state = 'pending' RETURNING ...``: of
  two pools (or a pool and a ``cancel``) racing for one job, exactly one update
  matches, so no job ever runs twice and a cancelled job never starts.
- A pool only writes jobs it owns (``worker = <its id>``); adopting the jobs of a
  dead worker is itself one conditional UPDATE, so two survivors cannot both
  adopt the same job.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from . import preemption
from .db import Database
from .extensions import EndedJob, PoolExtension
from .policy import Capacity, Start
from .schema import PENDING, RUNNING, ids_text, parse_ids
from .window import pending_window

__all__ = ["ClaimedJob", "Finished", "PromoteWaiting", "Started"]

_CLAIM_COLS = (
    "id, name, command, working_dir, env, cpus, mem_mb, gpus, priority, timeout_s,"
    " submitted_at, started_at, attempts, job_dir, gpu_ids, cpu_ids, native_id,"
    " cancel_requested, run_id, namespace, priority_class, preemptions, storage_mb"
)


@dataclass(slots=True)
class ClaimedJob:
    """A job this pool runs (claimed now, or adopted from a dead worker)."""

    id: int
    name: str
    command: str | list[str]
    working_dir: str | None
    env: dict[str, str] | None
    cpus: int
    mem_mb: int
    gpus: int
    priority: int
    timeout_s: float | None
    submitted_at: float
    started_at: float | None
    attempts: int
    job_dir: str | None
    gpu_ids: tuple[int, ...]
    cpu_ids: tuple[int, ...]
    #: the backend's id, as recorded when it started (a local job: its pid)
    native_id: str | None = None
    cancel_requested: bool = False
    #: the workflow/job run it belongs to (orchestration), if any
    run_id: int | None = None
    namespace: str = "default"
    priority_class: str | None = None
    #: times it was preempted (and re-queued) so far
    preemptions: int = 0
    storage_mb: int = 0

    @classmethod
    def from_row(cls, row: Sequence[Any]) -> ClaimedJob:
        """From a row of ``_CLAIM_COLS``."""
        values = list(row)
        values[2] = json.loads(values[2])  # command
        values[4] = json.loads(values[4]) if values[4] else None  # env
        values[14], values[15] = parse_ids(values[14]), parse_ids(values[15])
        values[17] = bool(values[17])  # cancel_requested
        return cls(*values)


@dataclass(frozen=True, slots=True)
class Finished:
    id: int
    state: str
    return_code: int | None
    reason: str | None
    ended_at: float
    #: the job it was preempted for (``preemption.py``)
    preempted_by: int | None = None


@dataclass(frozen=True, slots=True)
class Started:
    id: int
    pid: int | None  # a local job's (shown by ``xqute status``, sampled for usage)
    native_id: str | None


# ---------------------------------------------------------------------- reads
def cancel_requests(db: Database, worker: str) -> list[int]:
    """Running jobs of this worker that someone asked to cancel."""
    rows = db.query(
        "SELECT id FROM job_queue WHERE state = 'running' AND worker = ?"
        " AND cancel_requested = 1",
        (worker,),
    )
    return [row[0] for row in rows]


def idle(db: Database, worker: str, cap: Capacity | None) -> bool:
    """No job of this worker runs and none pending could run on ``cap``."""
    if db.query(
        "SELECT 1 FROM job_queue WHERE state = 'running' AND worker = ? LIMIT 1",
        (worker,),
    ):
        return False
    return cap is not None and not pending_window(db, 1, cap)


def data_version(db: Database) -> int:
    """Changes whenever another connection commits (cheap: no table read)."""
    return db.conn().execute("PRAGMA data_version").fetchone()[0]


# ---------------------------------------------------------------------- writes
def sync_cycle(
    db: Database,
    worker: str,
    now: float,
    finished: Sequence[Finished] = (),
    started: Sequence[Started] = (),
    claims: Sequence[tuple[Start, str]] = (),
    extensions: Sequence[Any] = (),
    choose: Callable[[], Sequence[tuple[Start, str]]] | None = None,
) -> tuple[list[ClaimedJob], bool]:
    """One write transaction per pool cycle: record ends and starts, claim jobs.

    ``claims``: (what the policy chose, the job's folder). ``choose``: asked
    for more of them inside the transaction, once the ends and what the
    extensions did about them are recorded (so the policy sees the jobs they
    queued: a workflow's next tasks are claimed in the transaction that
    records their dependency's end). Returns the jobs actually claimed (one
    that another pool claimed or someone cancelled since the snapshot is
    simply not returned), and whether an extension queued new jobs in the same
    transaction (see ``extensions.py``): the ends of a run's jobs are handed to
    the extensions' ``jobs_ended`` before the commit.
    """

    def write(conn: sqlite3.Connection) -> tuple[list[ClaimedJob], bool]:
        ended = _write_finished(conn, worker, finished)
        more = False
        if ended:
            for ext in extensions:
                more = bool(ext.jobs_ended(conn, ended, now)) or more
        for s in started:
            conn.execute(
                "UPDATE job_queue SET pid = ?, native_id = ? WHERE id = ?"
                " AND worker = ?",
                (s.pid, s.native_id, s.id, worker),
            )
        picks = [*claims, *(choose() if choose is not None else ())]
        out = list(_claim(conn, worker, now, picks))
        of_runs = [(job.id, job.run_id) for job in out if job.run_id is not None]
        if of_runs:
            for ext in extensions:
                ext.jobs_claimed(conn, of_runs, now)
        return out, more

    if not (finished or started or claims or choose is not None):
        return [], False
    return db.write(write)


def _claim(
    conn: sqlite3.Connection,
    worker: str,
    now: float,
    picks: Sequence[tuple[Start, str]],
) -> Iterator[ClaimedJob]:
    """Claim the chosen pending jobs (a job taken meanwhile is skipped)."""
    for start, job_dir in picks:
        row = conn.execute(
            "UPDATE job_queue SET state = 'running', worker = ?, started_at = ?,"
            " job_dir = ?, gpu_ids = ?, cpu_ids = ?, attempts = attempts + 1,"
            " pid = NULL, pid_started_at = NULL, native_id = NULL, reason = NULL"
            " WHERE id = ? AND state = 'pending'"
            f" RETURNING {_CLAIM_COLS}",
            (
                worker,
                now,
                job_dir,
                ids_text(start.gpu_ids),
                ids_text(start.cpu_ids),
                start.id,
            ),
        ).fetchone()
        if row is None:
            continue
        job = ClaimedJob.from_row(row)
        conn.execute(
            "INSERT OR REPLACE INTO resource_usage (job_id, worker, cpus, mem_mb,"
            " gpu_ids, cpu_ids, started_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (job.id, worker, job.cpus, job.mem_mb, ids_text(job.gpu_ids),
             ids_text(job.cpu_ids), now),
        )  # fmt: skip
        yield job


def _write_finished(
    conn: sqlite3.Connection, worker: str, finished: Sequence[Finished]
) -> list[EndedJob]:
    """Record ends (or re-queues); return the ended jobs that belong to a run."""
    ended = []
    for f in finished:
        if f.state == PENDING:  # re-queued (its run was lost)
            row = conn.execute(
                "UPDATE job_queue SET state = 'pending', worker = NULL,"
                " started_at = NULL, pid = NULL, pid_started_at = NULL,"
                " native_id = NULL, gpu_ids = NULL, cpu_ids = NULL, reason = ?"
                " WHERE id = ? AND state = 'running' AND worker = ? RETURNING id",
                (f.reason, f.id, worker),
            ).fetchone()
        else:
            row = conn.execute(
                "UPDATE job_queue SET state = ?, return_code = ?, reason = ?,"
                " ended_at = ? WHERE id = ? AND state = 'running' AND worker = ?"
                " RETURNING run_id, job_dir",
                (f.state, f.return_code, f.reason, f.ended_at, f.id, worker),
            ).fetchone()
            if row is not None and row[0] is not None:
                ended.append(
                    EndedJob(f.id, row[0], f.state, f.return_code, f.reason,
                             f.ended_at, row[1])
                )  # fmt: skip
        if row is None:
            # no longer this worker's (a pool that took its heartbeat for dead
            # adopted it): its usage and its preemption are the adopter's now
            continue
        conn.execute(
            "UPDATE resource_usage SET ended_at = ? WHERE job_id = ?",
            (f.ended_at, f.id),
        )
        if f.preempted_by is not None:
            preemption.finished(conn, f.id, f.preempted_by, f.state, f.ended_at)
    return ended


class PromoteWaiting(PoolExtension):
    """The queue's own periodic step: waiting jobs become pending when due."""

    name = "promote-waiting"
    reconcile_interval_s = 0.25

    def reconcile(self, db: Database, now: float) -> float | None:
        return promote_waiting(db, now)[1]


def promote_waiting(db: Database, now: float) -> tuple[int, float | None]:
    """Waiting jobs whose ``eligible_at`` has passed become pending (a retry's
    backoff is over). Returns (how many, the next ``eligible_at`` or None): an
    index range on ``(state, eligible_at)``, whatever the size of the queue."""
    rows = db.query(
        "SELECT eligible_at FROM job_queue WHERE state = 'waiting'"
        " ORDER BY eligible_at LIMIT 1"
    )
    if not rows or rows[0][0] is None:
        return 0, None
    if rows[0][0] > now:
        return 0, rows[0][0]

    def write(conn: sqlite3.Connection) -> tuple[int, float | None]:
        count = conn.execute(
            "UPDATE job_queue SET state = 'pending' WHERE state = 'waiting'"
            " AND eligible_at <= ?",
            (now,),
        ).rowcount
        nxt = conn.execute(
            "SELECT min(eligible_at) FROM job_queue WHERE state = 'waiting'"
        ).fetchone()[0]
        return count, nxt

    return db.write(write)


def record_usage(db: Database, usage: Sequence[tuple[int, int, float]]) -> None:
    """(job id, RSS MB now, cpu seconds so far) samples: keep the peak RSS."""
    db.write(
        lambda conn: conn.executemany(
            "UPDATE resource_usage SET max_rss_mb = max(coalesce(max_rss_mb, 0), ?),"
            " cpu_s = max(coalesce(cpu_s, 0), ?) WHERE job_id = ?",
            [(rss, cpu, job_id) for job_id, rss, cpu in usage],
        )
    )


def note_unfit(db: Database, reasons: dict[int, str]) -> None:
    """Say why a pending job cannot start (shown by ``xqute status``)."""
    db.write(
        lambda conn: conn.executemany(
            "UPDATE job_queue SET reason = ? WHERE id = ? AND state = 'pending'",
            [(reason, job_id) for job_id, reason in reasons.items()],
        )
    )


# ---------------------------------------------------------------------- workers
def register_worker(db: Database, row: dict[str, Any]) -> None:
    cols = ", ".join(row)
    marks = ", ".join("?" * len(row))
    db.write(
        lambda conn: conn.execute(
            f"INSERT OR REPLACE INTO worker_nodes ({cols}) VALUES ({marks})",
            list(row.values()),
        )
    )


def heartbeat(
    db: Database, worker: str, now: float, running_jobs: int, state: str
) -> None:
    db.write(
        lambda conn: conn.execute(
            "UPDATE worker_nodes SET heartbeat_at = ?, running_jobs = ?, state = ?"
            " WHERE id = ?",
            (now, running_jobs, state, worker),
        )
    )


def live_workers(db: Database) -> list[dict[str, Any]]:
    cols = ("id", "host", "pid", "pid_started_at", "heartbeat_at", "state")
    rows = db.query(
        f"SELECT {', '.join(cols)} FROM worker_nodes"
        " WHERE state IN ('running', 'stopping')"
    )
    return [dict(zip(cols, row, strict=True)) for row in rows]


def workers_with_running_jobs(db: Database) -> set[str]:
    rows = db.query(
        "SELECT DISTINCT worker FROM job_queue WHERE state = 'running'"
        " AND worker IS NOT NULL"
    )
    return {row[0] for row in rows}


def adopt_jobs(
    db: Database, dead: Sequence[str], me: str, mark_dead: bool = True
) -> list[ClaimedJob]:
    """Take over the running jobs of dead workers (one UPDATE per worker)."""

    def write(conn: sqlite3.Connection) -> list[ClaimedJob]:
        out = []
        for worker in dead:
            if mark_dead:
                conn.execute(
                    "UPDATE worker_nodes SET state = 'dead' WHERE id = ?"
                    " AND state IN ('running', 'stopping')",
                    (worker,),
                )
            rows = conn.execute(
                f"UPDATE job_queue SET worker = ? WHERE state = '{RUNNING}'"
                f" AND worker = ? RETURNING {_CLAIM_COLS}",
                (me, worker),
            ).fetchall()
            out += [ClaimedJob.from_row(row) for row in rows]
            conn.execute(
                "UPDATE resource_usage SET worker = ? WHERE worker = ?"
                " AND ended_at IS NULL",
                (me, worker),
            )
        return out

    return db.write(write) if dead else []


def prune_workers(db: Database, before: float) -> None:
    """Forget stopped or dead workers last seen before ``before``."""
    db.write(
        lambda conn: conn.execute(
            "DELETE FROM worker_nodes WHERE state IN ('stopped', 'dead')"
            " AND heartbeat_at < ?",
            (before,),
        )
    )
