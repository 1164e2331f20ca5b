"""The fixed facts of a run as the engine needs them in one transaction, and
the events it appends for it."""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass, field
from typing import Any

from ..checks import is_row_id
from . import events as ev

__all__ = ["Run", "event", "load_run"]

_RUN_COLS = (
    "id, kind, def_id, namespace, name, state, params, attempt, failure_policy,"
    " parallelism, cancel_requested, stopping, priority_class, context"
)


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
    if not is_row_id(run_id):
        return None  # no run's id (a user's 10**30 never reaches SQLite)
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
