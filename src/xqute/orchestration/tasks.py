"""A run's tasks inside one transaction: queue a task's items as queue jobs,
end a task (its counters, its children's readiness, events), start ready
tasks within the run's parallelism, end the run.

Every function takes the caller's connection inside its write transaction
(the pool's finish transaction, or a client's) and the ``Run`` it works on;
work is proportional to what changes: a finished task touches its own row, its
children's rows (``def_edges``, one index range) and the run's counters, never
the whole run. (Only rare whole-run events scan it: a stop after a failure, a
cancel, a retry, the hooks' run JSON.)
"""

from __future__ import annotations

import json
import sqlite3
import time

from ..errors import ConfigError, RenderError
from . import dag
from . import definitions as defs
from .queueing import insert_job, render_item
from .runctx import Run, event

__all__ = ["end_task", "maybe_end_run", "queue_items", "start_ready"]

NOT_STARTED = "('pending', 'waiting', 'held')"


# ---------------------------------------------------------------------- queueing
def queue_items(conn: sqlite3.Connection, run: Run, task: str, now: float) -> int:
    """Queue the next items of a ready task (or of a parallel task with room
    under ``max_concurrent``) as queue jobs; returns how many. A task whose
    command cannot be rendered fails here, with the reason."""
    row = conn.execute(
        "SELECT state, plan, completions, max_concurrent, next_item, active"
        " FROM run_tasks WHERE run_id = ? AND task = ?",
        (run.id, task),
    ).fetchone()
    state, plan_text, completions, max_concurrent, next_item, active = row
    count = completions - next_item
    if max_concurrent:
        count = min(count, max_concurrent - active)
    if count <= 0 or state not in ("ready", "queued", "running"):
        return 0
    plan = json.loads(plan_text)
    jobs = []
    try:
        for item in range(next_item, next_item + count):
            command, env = render_item(conn, run, task, plan, item)
            jobs.append(insert_job(conn, run, task, plan, command, env, item, 1, now))
    except (RenderError, ConfigError) as exc:
        if not jobs:
            end_task(conn, run, task, "failed", now, reason=f"cannot render: {exc}")
            return 0
        count = len(jobs)
    conn.execute(
        "UPDATE run_tasks SET state = CASE state WHEN 'ready' THEN 'queued' ELSE state"
        " END, next_item = next_item + ?, active = active + ?, attempt = attempt + ?,"
        " rendered = ? WHERE run_id = ? AND task = ?",
        (
            count,
            count,
            count,
            json.dumps({"command": command, "env": env}),
            run.id,
            task,
        ),
    )
    if state == "ready":
        conn.execute("UPDATE runs SET active = active + 1 WHERE id = ?", (run.id,))
    event(
        conn,
        run,
        "task.queued",
        now,
        task,
        job_id=jobs[0],
        **({"items": [next_item, next_item + count - 1]} if completions > 1 else {}),
    )
    return count


# ---------------------------------------------------------------------- ending
def end_task(
    conn: sqlite3.Connection,
    run: Run,
    task: str,
    state: str,
    now: float,
    *,
    rc: int | None = None,
    reason: str | None = None,
    counts: bool = True,
) -> None:
    """``task`` ends in ``state``: record it, bump its children's counters (those
    that can no longer run end ``upstream_failed``, recursively), keep the
    run's counters. ``counts``: False for a warn-only hook's failure."""
    stack = [(task, state, rc, reason, counts)]
    while stack:
        name, st, code, why, counted = stack.pop()
        prev = conn.execute(
            "SELECT state, attempt FROM run_tasks WHERE run_id = ? AND task = ?",
            (run.id, name),
        ).fetchone()
        if prev is None or prev[0] in dag.FINAL_TASK_STATES:
            continue
        conn.execute(
            "UPDATE run_tasks SET state = ?, ended_at = ?, rc = coalesce(?, rc),"
            " reason = ? WHERE run_id = ? AND task = ?",
            (st, now, code, why, run.id, name),
        )
        failed = st in dag.FAILED_TASK_STATES and counted
        was_active = prev[0] in ("queued", "running")
        conn.execute(
            "UPDATE runs SET tasks_left = tasks_left - 1, tasks_failed = tasks_failed"
            " + ?, active = active - ? WHERE id = ?",
            (int(failed), int(was_active), run.id),
        )
        event(
            conn,
            run,
            f"task.{st}",
            now,
            name,
            attempt=prev[1] or None,  # queue jobs it made (none: never started)
            **({"rc": code} if code is not None else {}),
            **({"reason": why} if why else {}),
        )
        ok = st == "succeeded" or not counted
        for child in defs.children(conn, run.def_id, name):
            row = conn.execute(
                "UPDATE run_tasks SET deps_done = deps_done + 1, deps_succeeded ="
                " deps_succeeded + ?, deps_failed = deps_failed + ? WHERE run_id = ?"
                " AND task = ? AND state = 'blocked' RETURNING trigger_rule,"
                " deps_total, deps_succeeded, deps_failed, deps_done",
                (int(ok), int(not ok), run.id, child),
            ).fetchone()
            if row is None:
                continue
            verdict = dag.readiness(*row)
            if verdict == "ready":
                conn.execute(
                    "UPDATE run_tasks SET state = 'ready', ready_at = ?"
                    " WHERE run_id = ? AND task = ?",
                    (now, run.id, child),
                )
                event(conn, run, "task.ready", now, child)
            elif verdict == "upstream_failed":
                stack.append(
                    (child, "upstream_failed", None, f"dependency {name!r} {st}", True)
                )


def start_ready(conn: sqlite3.Connection, run: Run, now: float) -> int:
    """Queue ready tasks while the run's parallelism allows; returns the number
    of queue jobs made. Nothing new starts once the run stops or is cancelled."""
    made = 0
    while not (run.stopping or run.cancel_requested):
        free = 1 << 30
        if run.parallelism:
            active = conn.execute("SELECT active FROM runs WHERE id = ?", (run.id,))
            free = run.parallelism - active.fetchone()[0]
        if free <= 0:
            break
        ready = conn.execute(
            "SELECT task FROM run_tasks WHERE run_id = ? AND state = 'ready'"
            " ORDER BY seq LIMIT ?",
            (run.id, min(free, 1000)),
        ).fetchall()
        if not ready:
            break
        for (task,) in ready:
            made += queue_items(conn, run, task, now)
    return made


def maybe_end_run(conn: sqlite3.Connection, run: Run, now: float) -> bool:
    """End the run if none of its tasks can change any more (after queueing its
    post hooks, which run once every other task ended). True if it ended."""
    left, failed, cancel = conn.execute(
        "SELECT tasks_left, tasks_failed, cancel_requested FROM runs WHERE id = ?",
        (run.id,),
    ).fetchone()
    posts = run.context.get("post_hooks", 0)
    if posts and left == posts and not cancel:
        for (task,) in conn.execute(
            "UPDATE run_tasks SET state = 'ready', ready_at = ? WHERE run_id = ?"
            " AND task LIKE ':post_execute:%' AND state = 'blocked' RETURNING task",
            (now, run.id),
        ).fetchall():
            queue_items(conn, run, task, now)
        return False
    if left > 0:
        return False
    state = dag.run_outcome(failed, cancel)
    reason = None
    if state == "failed":
        reason = f"{failed} task{'s' if failed != 1 else ''} did not succeed"
    conn.execute(
        "UPDATE runs SET state = ?, ended_at = ?, reason = coalesce(reason, ?)"
        " WHERE id = ?",
        (state, now, reason, run.id),
    )
    run.state = state
    event(
        conn,
        run,
        f"{run.event_kind}.{state}",
        now,
        seconds=round(now - _t0(conn, run), 3),
    )
    return True


def _t0(conn: sqlite3.Connection, run: Run) -> float:
    row = conn.execute("SELECT created_at FROM runs WHERE id = ?", (run.id,)).fetchone()
    return row[0] if row else time.time()
