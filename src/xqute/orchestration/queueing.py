"""Making a task's queue jobs: render one item's command and environment
(reading the outputs it needs, and for a hook the run's JSON) and insert the
queue job with its ``task_attempts`` row. Used when a task is queued and when
a failed item is retried."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
from collections.abc import Mapping
from typing import Any

from ..errors import RenderError
from ..queue.requests import job_row
from ..queue.states import QueueState
from ..queue.submit_policy import read, resolve
from . import dag
from .plan import hook_argv, in_container, render_task
from .runctx import Run

__all__ = ["insert_job", "render_item", "run_json"]

_INSERT_JOB = (
    "INSERT INTO job_queue (name, command, working_dir, env, metadata, cpus,"
    " mem_mb, gpus, priority, timeout_s, submitted_at, namespace, priority_class,"
    " storage_mb, state, eligible_at, run_id, task, run_attempt, item_index)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)


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
        timeout=plan["timeout_s"],
        env=env,
        namespace=run.namespace,
        **_policy(conn, plan, run),
    )
    waits = eligible_at is not None and eligible_at > now
    state = QueueState.WAITING if waits else QueueState.PENDING
    job_id = conn.execute(
        _INSERT_JOB,
        (
            *base,
            state,
            eligible_at if waits else None,
            run.id,
            task,
            run.attempt,
            item,
        ),
    ).lastrowid
    conn.execute(
        "INSERT INTO task_attempts (queue_job_id, run_id, task, run_attempt,"
        " item_index, attempt, state, queued_at)"
        " VALUES (?, ?, ?, ?, ?, ?, 'queued', ?)",
        (job_id, run.id, task, run.attempt, item, attempt, now),
    )
    return job_id  # type: ignore[return-value]


def _policy(
    conn: sqlite3.Connection, plan: Mapping[str, Any], run: Run
) -> dict[str, Any]:
    """The job's request, priority and class, as a submit resolves them
    (``submit_policy.resolve``): the task's priority class (its job's or
    template's, else the run's), the run's named queue (its priority and
    class), the task's resource class (its bundle), the class's value when the
    definition gives no priority (0), the global default class when it names
    none. A queue or resource class deleted since the definition was made has
    no effect; a priority class is kept by name, without effect."""
    policy = read(conn)
    pc = plan.get("priority_class") or run.priority_class
    spec: dict[str, Any] = {
        "cpus": plan["cpus"],
        "memory": plan["mem_mb"],
        "gpus": plan["gpus"],
        "priority": plan["priority"] or None,
        "priority_class": pc,
    }
    queue = run.context.get("queue")
    if queue in policy["queue"]:
        spec["queue"] = queue
    bundle = plan.get("resource_class")
    if bundle in policy["resource_class"]:
        spec.update(resource_class=bundle, cpus=None, memory=None, gpus=None)
    if pc is not None and pc not in policy["priority_class"]:
        policy["priority_class"][pc] = {}  # deleted since: no value, no default
    return resolve(spec, policy)


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
    if plan.get("image"):
        runtime = container_runtime()
        command = in_container(runtime, plan["image"], command, list(env))
    return command, env


def container_runtime() -> str:
    """The container runtime of a task with ``image=``: $XQUTE_CONTAINER_RUNTIME
    (of the pool's process), else podman, else docker."""
    for name in (os.environ.get("XQUTE_CONTAINER_RUNTIME"), "podman", "docker"):
        if name and shutil.which(name):
            return name
    raise RenderError("image= needs podman or docker on the pool's machine")


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
