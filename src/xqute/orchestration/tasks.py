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
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..errors import ConfigError, RenderError
from ..queue.requests import job_row
from . import dag
from . import definitions as defs
from . import events as ev
from .plan import hook_argv, render_task

__all__ = [
    "Run",
    "end_task",
    "insert_job",
    "load_run",
    "maybe_end_run",
    "queue_items",
    "render_item",
    "start_ready",
]

_RUN_COLS = (
    "id, kind, def_id, namespace, name, state, params, attempt, failure_policy,"
    " parallelism, cancel_requested, stopping, priority_class, context"
)
_INSERT_JOB = (
    "INSERT INTO job_queue (name, command, working_dir, env, metadata, cpus,"
    " mem_mb, gpus, priority, timeout_s, submitted_at, state, eligible_at, run_id,"
    " task, run_attempt, item_index, namespace, priority_class)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
NOT_STARTED = "('pending', 'waiting', 'held')"


@dataclass(slots=True)
class Run:
    """The fixed facts of a run (counters live in the db)."""

    id: int
    kind: str
    def_id: int
    namespace: str
    name: str
    state: str
    params: dict[str, str]
    attempt: int
    failure_policy: str
    parallelism: int | None
    cancel_requested: int
    stopping: int
    priority_class: str | None
    context: dict[str, Any] = field(default_factory=dict)

    @property
    def final(self) -> bool:
        return self.state not in ("pending", "running")

    @property
    def event_kind(self) -> str:
        return "job" if self.kind == "job" else "workflow"


def load_run(conn: sqlite3.Connection, run_id: int) -> Run | None:
    row = conn.execute(
        f"SELECT {_RUN_COLS} FROM runs WHERE id = ?", (run_id,)
    ).fetchone()
    if row is None:
        return None
    values = list(row)
    values[6] = json.loads(values[6]) if values[6] else {}
    values[13] = json.loads(values[13]) if values[13] else {}
    return Run(*values)


def event(
    conn: sqlite3.Connection,
    run: Run,
    type_: str,
    now: float,
    task: str | None = None,
    **data: Any,
) -> None:
    attempt = data.pop("attempt", None)
    job_id = data.pop("job_id", None)
    ev.append(
        conn,
        type_,
        now,
        namespace=run.namespace,
        run_id=run.id,
        task=task,
        attempt=attempt,
        job_id=job_id,
        data=data or None,
    )


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


def insert_job(
    conn: sqlite3.Connection,
    run: Run,
    task: str,
    plan: Mapping[str, Any],
    command: Any,
    env: dict[str, str],
    item: int,
    attempt: int,
    now: float,
    eligible_at: float | None = None,
) -> int:
    """One queue job for one attempt of one item; ``eligible_at``: waits until
    then (a retry in backoff)."""
    name = f"{run.name}.{run.id}.{task}" + (
        f"[{item}]" if plan["completions"] > 1 else ""
    )
    base = job_row(
        now,
        command=command,
        working_dir=plan["cwd"],
        job_name=name,
        cpus=plan["cpus"],
        memory=plan["mem_mb"],
        gpus=plan["gpus"],
        priority=plan["priority"],
        timeout=plan["timeout_s"],
        env=env,
    )
    state = "waiting" if eligible_at is not None and eligible_at > now else "pending"
    job_id = conn.execute(
        _INSERT_JOB,
        (
            *base,
            state,
            eligible_at if state == "waiting" else None,
            run.id,
            task,
            run.attempt,
            item,
            run.namespace,
            run.priority_class,
        ),
    ).lastrowid
    conn.execute(
        "INSERT INTO task_attempts (queue_job_id, run_id, task, run_attempt,"
        " item_index, attempt, state, queued_at)"
        " VALUES (?, ?, ?, ?, ?, ?, 'queued', ?)",
        (job_id, run.id, task, run.attempt, item, attempt, now),
    )
    return job_id  # type: ignore[return-value]


def render_item(
    conn: sqlite3.Connection, run: Run, task: str, plan: Mapping[str, Any], item: int
) -> tuple[Any, dict[str, str]]:
    """The command and env of one item of a task (its inputs read now)."""
    outputs = _outputs(conn, run.id, plan["needs"])
    info = {
        "id": run.id,
        "name": run.name,
        "refs": run.context.get("refs"),
        "env": run.context.get("env"),
    }
    command, env = render_task(plan, run.params, outputs, info, item)
    env["XQUTE_TASK"] = task
    if plan.get("hook"):
        env["XQUTE_RUN_JSON"] = run_json(conn, run, plan["hook"])
        command = hook_argv(command)
    return command, env


def _outputs(conn: sqlite3.Connection, run_id: int, tasks: list[str]) -> dict[str, str]:
    if not tasks:
        return {}
    marks = ",".join("?" * len(tasks))
    rows = conn.execute(
        f"SELECT task, value FROM task_outputs WHERE run_id = ? AND name = 'output'"
        f" AND task IN ({marks})",
        (run_id, *tasks),
    )
    return dict(rows.fetchall())


def run_json(conn: sqlite3.Connection, run: Run, which: str) -> str:
    """What a hook gets on stdin: the run, and for a post hook its outcome and
    its tasks' states (a whole-run read, once per hook)."""
    data: dict[str, Any] = {
        "id": run.id,
        "kind": run.kind,
        "name": run.name,
        "namespace": run.namespace,
        "params": run.params,
        "attempt": run.attempt,
        "hook": which,
    }
    if which == "post":
        failed = conn.execute("SELECT tasks_failed FROM runs WHERE id = ?", (run.id,))
        data["state"] = dag.run_outcome(failed.fetchone()[0], 0)
        data["tasks"] = dict(
            conn.execute(
                "SELECT task, state FROM run_tasks WHERE run_id = ?"
                " AND task NOT LIKE ':%'",
                (run.id,),
            ).fetchall()
        )
    return json.dumps(data)


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
            "SELECT state FROM run_tasks WHERE run_id = ? AND task = ?", (run.id, name)
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
