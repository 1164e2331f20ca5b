"""Advancing runs as their queue jobs start and end: called by the pool inside
the very transactions that claim jobs and record their ends (see
``queue/extensions.py``), so "A succeeded" and "B was queued" commit together
and a crash can never fall between them.

For each ended job of a run: did the item succeed (its exit code, its output
read from ``$XQUTE_OUTPUT`` and checked), is it retried (a new queue job in
``waiting`` until its backoff passes: it holds no worker), is its task decided
(completion strategy), then the task's end moves its children and the run
(``tasks.py``). Each run is advanced under a savepoint: a bug in one run fails
that run with the error as its reason and never the pool's transaction.
"""

from __future__ import annotations

import json
import logging
import os
import random
import sqlite3
import stat
from collections.abc import Sequence

from ..queue.extensions import EndedJob
from ..queue.states import QueueState
from . import dag
from .queueing import insert_job, render_item
from .refs import check_output, oversize
from .runctx import Run, event, load_run
from .runs import stop_after_failure
from .tasks import end_task, maybe_end_run, queue_items, start_ready

__all__ = ["OUTPUT_FILE", "jobs_claimed", "jobs_ended", "read_output"]

logger = logging.getLogger("xqute.orchestration")
OUTPUT_FILE = "output"  # in the job's folder: $XQUTE_OUTPUT


def jobs_ended(conn: sqlite3.Connection, ended: Sequence[EndedJob], now: float) -> bool:
    """Record the ends of run jobs and advance their runs. True: new queue jobs
    may have been queued (the pool dispatches again at once)."""
    runs: dict[int, Run | None] = {}
    more = False
    for job in ended:
        conn.execute("SAVEPOINT xqute_advance")
        try:
            more = _job_ended(conn, job, now, runs) or more
        except Exception as exc:
            conn.execute("ROLLBACK TO xqute_advance")
            logger.exception(
                "run %s: advancing after job %s failed", job.run_id, job.id
            )
            _fail_run(
                conn, job.run_id, now, f"internal error after job {job.id}: {exc!r}"
            )
            runs.pop(job.run_id, None)
        conn.execute("RELEASE xqute_advance")
    return more


def _job_ended(
    conn: sqlite3.Connection, job: EndedJob, now: float, runs: dict[int, Run | None]
) -> bool:
    attempt = conn.execute(
        "UPDATE task_attempts SET state = ?, rc = ?, ended_at = ?, reason = ?"
        " WHERE queue_job_id = ? RETURNING task, run_attempt, item_index, attempt",
        (_attempt_state(job.state), job.return_code, job.ended_at, job.reason, job.id),
    ).fetchone()
    if attempt is None:
        return False
    task, run_attempt, item, number = attempt
    if job.run_id not in runs:
        runs[job.run_id] = load_run(conn, job.run_id)
    run = runs[job.run_id]
    if run is None or run.final or run_attempt != run.attempt:
        return False
    state, plan_text, completions = conn.execute(
        "SELECT state, plan, completions FROM run_tasks WHERE run_id = ? AND task = ?",
        (run.id, task),
    ).fetchone()
    if state in dag.FINAL_TASK_STATES:  # decided already (a sibling item, a stop)
        conn.execute(
            "UPDATE run_tasks SET active = active - 1 WHERE run_id = ? AND task = ?",
            (run.id, task),
        )
        return False
    plan = json.loads(plan_text)
    warn_only = bool(plan.get("warn_only"))
    ok = dag.item_succeeded(job.state, job.return_code, plan["success"])
    reason = job.reason or (None if ok else f"exit code {job.return_code}")
    if ok and completions == 1:
        value, why = read_output(job.job_dir, plan["output_max"])
        if why is not None:
            ok, reason = False, why
        elif value is not None:
            conn.execute(
                "INSERT OR REPLACE INTO task_outputs (run_id, task, name, kind, value,"
                " size) VALUES (?, ?, 'output', 'value', ?, ?)",
                (run.id, task, value, len(value.encode())),
            )
    if not ok and not run.cancel_requested:
        delay = dag.retry_delay_s(
            plan["restart"], number, job.state, job.return_code, random.random()
        )
        if delay is not None:
            command, env = render_item(conn, run, task, plan, item)
            new = insert_job(
                conn,
                run,
                task,
                plan,
                command,
                env,
                item,
                number + 1,
                now,
                eligible_at=now + delay,
            )
            conn.execute(
                "UPDATE run_tasks SET attempt = attempt + 1"
                " WHERE run_id = ? AND task = ?",
                (run.id, task),
            )
            event(
                conn,
                run,
                "task.retrying",
                now,
                task,
                attempt=number + 1,
                job_id=new,
                item=item,
                delay_s=round(delay, 3),
                reason=reason,
            )
            return delay <= 0
    succeeded, failed, active = conn.execute(
        "UPDATE run_tasks SET active = active - 1, succeeded = succeeded + ?,"
        " failed = failed + ?, rc = ? WHERE run_id = ? AND task = ?"
        " RETURNING succeeded, failed, active",
        (int(ok), int(not ok), job.return_code, run.id, task),
    ).fetchone()
    outcome = dag.task_outcome(completions, succeeded, failed, plan["strategy"])
    if run.cancel_requested:  # a task that finished its work meanwhile succeeded
        if active == 0:
            final = "succeeded" if outcome == "succeeded" else "cancelled"
            end_task(
                conn,
                run,
                task,
                final,
                now,
                rc=job.return_code,
                reason=None if final == "succeeded" else reason,
            )
            maybe_end_run(conn, run, now)
        return False
    if outcome is None:
        if run.stopping:  # no new items after a stop
            if active == 0:
                end_task(conn, run, task, "failed" if failed else "skipped", now)
                maybe_end_run(conn, run, now)
            return False
        return queue_items(conn, run, task, now) > 0
    if outcome == "failed" and job.state == QueueState.CANCELLED and completions == 1:
        outcome = "cancelled"  # its job was cancelled in the queue (xqute cancel)
    end_task(
        conn,
        run,
        task,
        outcome,
        now,
        rc=job.return_code,
        reason=None if outcome == "succeeded" else reason,
        counts=not warn_only,
    )
    if active > 0:  # items still queued or running: the task is decided
        _drop_items(conn, run, task, now)
    if outcome != "succeeded" and not warn_only and run.failure_policy == "stop":
        stop_after_failure(conn, run, task, now)
    start_ready(conn, run, now)
    maybe_end_run(conn, run, now)
    return True


def _attempt_state(queue_state: str) -> str:
    return {"completed": "succeeded", "timeout": "failed"}.get(queue_state, queue_state)


def _drop_items(conn: sqlite3.Connection, run: Run, task: str, now: float) -> None:
    """A task decided before all its items ended: cancel the rest."""
    conn.execute(
        "UPDATE job_queue SET state = 'cancelled', ended_at = ?, reason = 'task"
        " decided' WHERE run_id = ? AND task = ? AND state IN ('pending', 'waiting',"
        " 'held')",
        (now, run.id, task),
    )
    conn.execute(
        "UPDATE job_queue SET cancel_requested = 1 WHERE run_id = ? AND task = ?"
        " AND state = 'running'",
        (run.id, task),
    )


def _fail_run(conn: sqlite3.Connection, run_id: int, now: float, reason: str) -> None:
    row = conn.execute(
        "UPDATE runs SET state = 'failed', ended_at = ?, reason = ? WHERE id = ?"
        " AND state IN ('pending', 'running') RETURNING kind, namespace",
        (now, reason, run_id),
    ).fetchone()
    if row is not None:
        kind = "job" if row[0] == "job" else "workflow"
        conn.execute(
            "INSERT INTO events (ts, type, namespace, run_id, data)"
            " VALUES (?, ?, ?, ?, ?)",
            (now, f"{kind}.failed", row[1], run_id, json.dumps({"reason": reason})),
        )


def read_output(job_dir: str | None, limit: int) -> tuple[str | None, str | None]:
    """(value, None), (None, why the task fails), or (None, None): no output.
    The file is opened without following a symlink and its size checked before
    it is read (``O_NOFOLLOW`` + ``fstat``: the rule ``xqute logs`` follows)."""
    if not job_dir:
        return None, None
    path = os.path.join(job_dir, OUTPUT_FILE)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except FileNotFoundError:
        return None, None
    except OSError as exc:
        return None, f"cannot read its output {path}: {exc.strerror}"
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            return None, f"its output {path} is not a regular file"
        if info.st_size > limit:
            return None, oversize(info.st_size, limit)
        with os.fdopen(fd, "rb", closefd=False) as fh:
            data = fh.read(limit + 1)
    finally:
        os.close(fd)
    return check_output(data, limit)


def jobs_claimed(
    conn: sqlite3.Connection, claimed: Sequence[tuple[int, int]], now: float
) -> None:
    """Queue jobs of runs were claimed by a pool: their tasks are running."""
    runs: dict[int, Run | None] = {}
    for job_id, run_id in claimed:
        row = conn.execute(
            "UPDATE task_attempts SET state = 'running', started_at = ?"
            " WHERE queue_job_id = ? RETURNING task, attempt, item_index",
            (now, job_id),
        ).fetchone()
        if row is None:
            continue
        if run_id not in runs:
            runs[run_id] = load_run(conn, run_id)
        run = runs[run_id]
        if run is None or run.final:
            continue
        conn.execute(
            "UPDATE run_tasks SET state = 'running',"
            " started_at = coalesce(started_at, ?)"
            " WHERE run_id = ? AND task = ? AND state = 'queued'",
            (now, run_id, row[0]),
        )
        event(
            conn,
            run,
            "task.started",
            now,
            row[0],
            attempt=row[1],
            job_id=job_id,
            **({"item": row[2]} if row[2] else {}),
        )
