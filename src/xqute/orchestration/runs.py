"""Creating, cancelling, stopping and retrying runs: each one transaction on
the caller's connection (a client's ``db.write``, the daemon's reconcile, a
schedule's fire), so a run and its first queue jobs, or a cancel and all it
touches, commit together.

- ``create_run``: pin the definition's latest version, compile the plans, bind
  the parameters (every problem in one error), insert the run and its tasks,
  queue the tasks that are ready.
- ``request_cancel``: nothing new starts; queue jobs not started are cancelled
  at once, running ones are killed by their pool (TERM, grace, KILL); the run
  ends ``cancelled`` (``timeout`` for a deadline) once nothing of it runs.
- ``stop_after_failure``: ``on_failure: stop``.
- ``retry_run``: resume a finished run: its failed, cancelled, skipped and
  upstream-failed tasks run again (a fresh retry budget); succeeded ones keep
  their outputs and do not run again.
"""

from __future__ import annotations

import json
import sqlite3
from collections import Counter
from collections.abc import Mapping
from typing import Any

from ..errors import (
    ConfigError,
    DefinitionNotFoundError,
    RunNotFoundError,
    WorkflowError,
)
from . import dag
from . import definitions as defs
from . import events as ev
from .plan import bind_params, compile_job, compile_workflow
from .runctx import Run, event, load_run
from .tasks import NOT_STARTED, maybe_end_run, start_ready

__all__ = [
    "active_runs",
    "create_run",
    "request_cancel",
    "retry_run",
    "stop_after_failure",
]


def create_run(
    conn: sqlite3.Connection,
    kind: str,
    name: str,
    now: float,
    *,
    namespace: str = "default",
    params: Mapping[str, Any] | None = None,
    triggered_by: str = "manual",
    schedule_id: int | None = None,
    scheduled_for: float | None = None,
    extra_env: Mapping[str, str] | None = None,
    extra_refs: Mapping[str, str] | None = None,
    timeout_s: float | None = None,
    idempotency_key: str | None = None,
    priority_class: str | None = None,
) -> int:
    """Start a run of the job or workflow ``name`` (inside the caller's write
    transaction); returns its id. ``ConfigError`` for bad parameters,
    ``DefinitionNotFoundError``/``WorkflowError`` for what cannot run."""
    if kind not in ("job", "workflow"):
        raise ConfigError.choice("run kind", kind, ["job", "workflow"])
    if idempotency_key is not None:
        row = conn.execute(
            "SELECT id FROM runs WHERE idempotency_key = ?", (idempotency_key,)
        ).fetchone()
        if row is not None:
            return row[0]
    d = defs.get(conn, kind, name, namespace)
    if d is None:
        raise DefinitionNotFoundError(f"no {kind} {name!r} in namespace {namespace!r}")
    if d.suspended:
        raise WorkflowError(f"{kind} {name!r} is suspended; resume it first")
    spec, given = d.spec, dict(params or {})
    templates = _referenced(conn, spec, namespace)
    if kind == "workflow":
        plans = compile_workflow(spec, templates["template"], templates["job"])
        values, problems = bind_params(spec.get("parameters", []), given, free=True)
        timeout_s = timeout_s or spec.get("timeout")
    else:
        plans = compile_job(spec, templates["template"])
        plan = plans[0][1]
        if plan["bind"] is None and given:
            problems = [f"job {name!r} takes no parameters (it is not a template)"]
        else:
            plan["bind"] = {**(plan["bind"] or {}), **given}
            problems = bind_params(plan["decls"], plan["bind"])[1]
        values = {}
    if problems:
        raise ConfigError(f"{kind} {name!r}: " + "; ".join(problems))
    posts = sum(1 for task, _ in plans if task.startswith(":post_execute:"))
    context = {
        "env": dict(extra_env or {}),
        "refs": dict(extra_refs or {}),
        "post_hooks": posts,
        "version": d.version,
        "queue": spec.get("queue"),  # its tasks' jobs' named queue
    }
    run_id = conn.execute(
        "INSERT INTO runs (kind, def_id, namespace, name, state, params,"
        " priority_class, parallelism, failure_policy, timeout_s, deadline_at,"
        " triggered_by, schedule_id, scheduled_for, idempotency_key, created_at,"
        " started_at, tasks_total, tasks_left, context)"
        " VALUES (?, ?, ?, ?, 'running', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            kind,
            d.id,
            namespace,
            name,
            json.dumps(values),
            priority_class or spec.get("priority_class"),
            # a workflow's cap on tasks at once (a job's is its items')
            spec.get("parallelism") if kind == "workflow" else None,
            spec.get("on_failure", "stop"),
            timeout_s,
            now + timeout_s if timeout_s else None,
            triggered_by,
            schedule_id,
            scheduled_for,
            idempotency_key,
            now,
            now,
            len(plans),
            len(plans),
            json.dumps(context),
        ),
    ).lastrowid
    conn.executemany(
        "INSERT INTO run_tasks (run_id, task, seq, state, max_attempts, trigger_rule,"
        " deps_total, completions, max_concurrent, plan, ready_at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            (
                run_id,
                task,
                p["seq"],
                _initial_state(task, p),
                _max_attempts(p),
                p["rule"],
                len(p["deps"]),
                p["completions"],
                p["max_concurrent"],
                json.dumps(p),
                now if _initial_state(task, p) == "ready" else None,
            )
            for task, p in plans
        ],
    )
    run = load_run(conn, run_id)  # type: ignore[arg-type]
    assert run is not None
    event(
        conn,
        run,
        f"{run.event_kind}.started",
        now,
        version=d.version,
        trigger=triggered_by,
        tasks=len(plans),
    )
    roots = [t for t, p in plans if _initial_state(t, p) == "ready"]
    _ready_events(conn, run, roots, now)
    start_ready(conn, run, now)
    maybe_end_run(conn, run, now)
    return run_id  # type: ignore[return-value]


def _ready_events(conn: Any, run: Any, tasks: list[str], now: float) -> None:
    """``task.ready`` of the tasks ready from the run's (or a retry's) start."""
    ready = (now, "task.ready", run.namespace, run.id)
    ev.append_many(conn, [(*ready, t, None, None, None) for t in tasks])


def _initial_state(task: str, plan: Mapping[str, Any]) -> str:
    if plan.get("hook") == "post" or plan["deps"]:
        return "blocked"
    return "ready"


def _max_attempts(plan: Mapping[str, Any]) -> int:
    restart = plan.get("restart") or {}
    if restart.get("policy") != "on_failure":
        return 1
    return 1 + int(restart.get("max_retries", 0))


def _referenced(
    conn: sqlite3.Connection, spec: Mapping[str, Any], namespace: str
) -> dict[str, dict[str, Any]]:
    """The templates and jobs a spec names (and the templates those jobs name)."""
    out: dict[str, dict[str, Any]] = {"template": {}, "job": {}}
    names = [t.get("job") for t in spec.get("tasks", ())] + [spec.get("template")]
    while names:
        name = names.pop()
        if name is None or name in out["template"] or name in out["job"]:
            continue
        for kind in ("template", "job"):
            d = defs.get(conn, kind, name, namespace)
            if d is not None:
                out[kind][name] = d.spec
                names.append(d.spec.get("template"))
                break
        else:
            raise DefinitionNotFoundError(f"no template or job {name!r}")
    return out


def active_runs(
    conn: sqlite3.Connection, kind: str, name: str, namespace: str = "default"
) -> list[int]:
    """Ids of the runs of a definition that have not ended."""
    rows = conn.execute(
        "SELECT id FROM runs WHERE name = ? AND kind = ? AND namespace = ?"
        " AND state IN ('pending', 'running') ORDER BY id",
        (name, kind, namespace),
    )
    return [row[0] for row in rows]


def _cancel_not_started(
    conn: sqlite3.Connection, run: Run, now: float, reason: str, keep_posts: bool
) -> Counter[str]:
    """Cancel the run's queue jobs that did not start; per task, how many."""
    post = " AND task NOT LIKE ':post_execute:%'" if keep_posts else ""
    rows = conn.execute(
        "UPDATE job_queue SET state = 'cancelled', ended_at = ?, reason = ?"
        f" WHERE run_id = ? AND state IN {NOT_STARTED}{post} RETURNING id, task",
        (now, reason, run.id),
    ).fetchall()
    conn.executemany(
        "UPDATE task_attempts SET state = 'cancelled', ended_at = ?"
        " WHERE queue_job_id = ?",
        [(now, job_id) for job_id, _ in rows],
    )
    per_task = Counter(task for _, task in rows)
    for task, n in per_task.items():
        conn.execute(
            "UPDATE run_tasks SET active = active - ? WHERE run_id = ? AND task = ?",
            (n, run.id, task),
        )
    return per_task


def _close_tasks(
    conn: sqlite3.Connection,
    run: Run,
    now: float,
    state: str,
    reason: str,
    keep_posts: bool,
) -> None:
    """Every task of the run that is not final and has no item running ends in
    ``state`` at once (one scan of the run; no readiness to propagate: nothing
    new starts in a stopped or cancelled run, and a retry recounts)."""
    rows = conn.execute(
        "SELECT task, state, active, succeeded + failed FROM run_tasks"
        " WHERE run_id = ? AND state NOT IN ('succeeded', 'failed',"
        " 'upstream_failed', 'skipped', 'cancelled')",
        (run.id,),
    ).fetchall()
    closing = [
        (task, "failed" if ended and state == "skipped" else state, prev)
        for task, prev, active, ended in rows
        if active == 0 and not (keep_posts and task.startswith(":post_execute:"))
    ]
    if not closing:
        return
    conn.executemany(
        "UPDATE run_tasks SET state = ?, ended_at = ?, reason = ? WHERE run_id = ?"
        " AND task = ?",
        [(final, now, reason, run.id, task) for task, final, _ in closing],
    )
    was_active = sum(1 for _, _, prev in closing if prev in ("queued", "running"))
    conn.execute(
        "UPDATE runs SET tasks_left = tasks_left - ?, tasks_failed = tasks_failed + ?,"
        " active = active - ? WHERE id = ?",
        (len(closing), len(closing), was_active, run.id),
    )
    ev.append_many(
        conn,
        [
            (
                now,
                f"task.{final}",
                run.namespace,
                run.id,
                task,
                None,
                None,
                {"reason": reason},
            )
            for task, final, _ in closing
        ],
    )


def stop_after_failure(
    conn: sqlite3.Connection, run: Run, task: str, now: float
) -> None:
    """``on_failure: stop``: after ``task`` failed, nothing new starts; running
    tasks finish; the others end ``skipped`` (post hooks still run)."""
    conn.execute("UPDATE runs SET stopping = 1 WHERE id = ?", (run.id,))
    run.stopping = 1
    reason = f"not started: task {task!r} failed (on_failure: stop)"
    _cancel_not_started(conn, run, now, reason, keep_posts=True)
    _close_tasks(conn, run, now, "skipped", reason, keep_posts=True)


def request_cancel(
    conn: sqlite3.Connection,
    run_id: int,
    now: float,
    reason: str | None = None,
    code: int = 1,
) -> bool:
    """Cancel a run (``code`` 2: its deadline passed, it ends ``timeout``).
    False if it had ended or is being cancelled already."""
    run = load_run(conn, run_id)
    if run is None:
        raise RunNotFoundError(f"no run {run_id}")
    if run.final or run.cancel_requested:
        return False
    reason = reason or ("cancelled" if code == 1 else "the run's timeout passed")
    conn.execute(
        "UPDATE runs SET cancel_requested = ?, reason = ? WHERE id = ?",
        (code, reason, run_id),
    )
    run.cancel_requested = code
    _cancel_not_started(conn, run, now, reason, keep_posts=False)
    conn.execute(
        "UPDATE job_queue SET cancel_requested = 1 WHERE run_id = ?"
        " AND state = 'running'",
        (run_id,),
    )
    _close_tasks(conn, run, now, "cancelled", reason, keep_posts=False)
    maybe_end_run(conn, run, now)
    return True


def retry_run(conn: sqlite3.Connection, run_id: int, now: float) -> int:
    """Resume a finished run; returns its new attempt number."""
    run = load_run(conn, run_id)
    if run is None:
        raise RunNotFoundError(f"no run {run_id}")
    if not run.final:
        raise WorkflowError(f"run {run_id} is still {run.state}; cancel it first")
    rows = conn.execute(
        "SELECT task, state, plan FROM run_tasks WHERE run_id = ?", (run_id,)
    ).fetchall()
    done = {task for task, state, _ in rows if state == "succeeded"}
    if len(done) == len(rows):
        raise WorkflowError(f"run {run_id} succeeded: nothing to retry")
    again = [(task, json.loads(plan)) for task, state, plan in rows if task not in done]
    conn.executemany(
        "DELETE FROM task_outputs WHERE run_id = ? AND task = ?",
        [(run_id, task) for task, _ in again],
    )
    resets = []
    for task, plan in again:
        ok = sum(1 for dep in plan["deps"] if dep in done)
        verdict = dag.readiness(plan["rule"], len(plan["deps"]), ok, 0, ok)
        state = (
            "ready" if verdict == "ready" and plan.get("hook") != "post" else "blocked"
        )
        resets.append((state, ok, ok, now if state == "ready" else None, run_id, task))
    conn.executemany(
        "UPDATE run_tasks SET state = ?, attempt = 0, deps_succeeded = ?,"
        " deps_failed = 0, deps_done = ?, next_item = 0, succeeded = 0, failed = 0,"
        " active = 0, ready_at = ?, started_at = NULL, ended_at = NULL, rc = NULL,"
        " reason = NULL WHERE run_id = ? AND task = ?",
        resets,
    )
    conn.execute(
        "UPDATE runs SET attempt = attempt + 1, state = 'running', ended_at = NULL,"
        " reason = NULL, cancel_requested = 0, stopping = 0, tasks_left = ?,"
        " tasks_failed = 0, active = 0, deadline_at = CASE WHEN timeout_s IS NULL"
        " THEN NULL ELSE ? + timeout_s END WHERE id = ?",
        (len(again), now, run_id),
    )
    run = load_run(conn, run_id)
    assert run is not None
    event(
        conn,
        run,
        f"{run.event_kind}.retried",
        now,
        attempt=run.attempt,
        tasks=[task for task, _ in again][:100],
    )
    _ready_events(conn, run, [r[-1] for r in resets if r[0] == "ready"], now)
    start_ready(conn, run, now)
    maybe_end_run(conn, run, now)
    return run.attempt
