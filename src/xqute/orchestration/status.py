"""Reading runs: a run's status with every task, listings, a task's queue jobs
and log files. Plain reads of the db (a few queries per call, whatever the
number of runs), shared by the Python API, the CLI and (later) the web API.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

from ..checks import is_row_id
from ..errors import RunNotFoundError
from ..queue.db import Database

__all__ = [
    "RunStatus",
    "TaskStatus",
    "WorkflowStatus",
    "list_runs",
    "run_status",
    "task_jobs",
]

_RUN_COLS = (
    "id, kind, name, namespace, state, attempt, params, created_at, started_at,"
    " ended_at, reason, triggered_by, tasks_total, tasks_left, tasks_failed,"
    " deadline_at, cancel_requested, context, def_id"
)


@dataclass(frozen=True, slots=True)
class TaskStatus:
    """One task of a run: its state, attempts (queue jobs made), exit code,
    why it ended so, its output, its dependencies and parallel items."""

    name: str
    state: str
    attempts: int
    rc: int | None
    reason: str | None
    output: str | None
    dependencies: list[str]
    ready_at: float | None
    started_at: float | None
    ended_at: float | None
    completions: int = 1
    succeeded_items: int = 0
    failed_items: int = 0
    hook: str | None = None


@dataclass(frozen=True, slots=True)
class RunStatus:
    """A workflow or job run (``WorkflowStatus``/``JobStatus`` of the seed)."""

    id: int
    kind: str
    name: str
    namespace: str
    state: str
    attempt: int
    params: dict[str, str]
    created_at: float
    started_at: float | None
    ended_at: float | None
    reason: str | None
    triggered_by: str
    version: int | None
    deadline_at: float | None
    tasks: list[TaskStatus] = field(default_factory=list)

    @property
    def final(self) -> bool:
        return self.state not in ("pending", "running")

    @property
    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for t in self.tasks:
            out[t.state] = out.get(t.state, 0) + 1
        return out

    def task(self, name: str) -> TaskStatus:
        for t in self.tasks:
            if t.name == name:
                return t
        raise KeyError(f"run {self.id} has no task {name!r}")

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["counts"] = self.counts
        return data


#: the seed's name for a workflow run's status
WorkflowStatus = RunStatus


def run_status(db: Database, run_id: int, with_tasks: bool = True) -> RunStatus:
    rows = is_row_id(run_id) and db.query(
        f"SELECT {_RUN_COLS} FROM runs WHERE id = ?", (run_id,)
    )
    if not rows:
        raise RunNotFoundError(f"no run {run_id} in {db.path}")
    r = rows[0]
    context = json.loads(r[17]) if r[17] else {}
    status = RunStatus(
        id=r[0], kind=r[1], name=r[2], namespace=r[3], state=r[4], attempt=r[5],
        params=json.loads(r[6]) if r[6] else {}, created_at=r[7], started_at=r[8],
        ended_at=r[9], reason=r[10], triggered_by=r[11],
        version=context.get("version"), deadline_at=r[15],
    )  # fmt: skip
    if with_tasks:
        status.tasks.extend(_tasks(db, run_id))
    return status


def _tasks(db: Database, run_id: int) -> list[TaskStatus]:
    outputs = dict(
        db.query(
            "SELECT task, value FROM task_outputs WHERE run_id = ? AND name = 'output'",
            (run_id,),
        )
    )
    out = []
    for row in db.query(
        "SELECT task, state, attempt, rc, reason, plan, ready_at, started_at,"
        " ended_at, completions, succeeded, failed FROM run_tasks WHERE run_id = ?"
        " ORDER BY seq",
        (run_id,),
    ):
        plan = json.loads(row[5])
        out.append(
            TaskStatus(
                name=row[0], state=row[1], attempts=row[2], rc=row[3], reason=row[4],
                output=outputs.get(row[0]), dependencies=plan["deps"],
                ready_at=row[6], started_at=row[7], ended_at=row[8],
                completions=row[9], succeeded_items=row[10], failed_items=row[11],
                hook=plan.get("hook"),
            )
        )  # fmt: skip
    return out


def list_runs(
    db: Database,
    name: str | None = None,
    *,
    kind: str | None = None,
    state: str | None = None,
    limit: int = 100,
) -> list[RunStatus]:
    """Runs, newest first (without their tasks)."""
    where, params = [], []
    for col, value in (("name", name), ("kind", kind), ("state", state)):
        if value is not None:
            where.append(f"{col} = ?")
            params.append(value)
    clause = f"WHERE {' AND '.join(where)}" if where else ""
    ids = db.query(
        f"SELECT id FROM runs {clause} ORDER BY id DESC LIMIT ?", (*params, limit)
    )
    return [run_status(db, row[0], with_tasks=False) for row in ids]


def task_jobs(
    db: Database, run_id: int, task: str | None = None
) -> list[dict[str, Any]]:
    """The queue jobs made for a run's tasks (every attempt of every item), with
    their state and log paths, in order."""
    sql = (
        "SELECT a.queue_job_id, a.task, a.run_attempt, a.item_index, a.attempt,"
        " a.state, a.rc, q.job_dir, q.state FROM task_attempts a"
        " LEFT JOIN job_queue q ON q.id = a.queue_job_id WHERE a.run_id = ?"
    )
    params: list[Any] = [run_id]
    if task is not None:
        sql += " AND a.task = ?"
        params.append(task)
    out = []
    for row in db.query(sql + " ORDER BY a.queue_job_id", params):
        job_dir = row[7]
        out.append({
            "job_id": row[0], "task": row[1], "run_attempt": row[2], "item": row[3],
            "attempt": row[4], "state": row[5], "rc": row[6], "queue_state": row[8],
            "stdout": f"{job_dir}/job.stdout" if job_dir else None,
            "stderr": f"{job_dir}/job.stderr" if job_dir else None,
        })  # fmt: skip
    return out
