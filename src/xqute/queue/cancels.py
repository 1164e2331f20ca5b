"""Cancelling queue jobs: the write transaction of ``JobStore.cancel_jobs``.

A job not started yet (pending, waiting, held) is cancelled at once; a running
one gets ``cancel_requested`` and its pool kills it (``pool_loop.py``). Ids
that are not in the db fail the whole transaction: nothing is cancelled.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from ..errors import JobNotFoundError
from .schema import CANCELLED, FINAL_STATES

TYPE_CHECKING = False  # typing is not imported at run time (xqute submit)
if TYPE_CHECKING:
    import sqlite3
    from typing import Any

__all__ = ["ACTIVE", "cancel_in", "chunks"]

ACTIVE = "'pending', 'waiting', 'held', 'running'"  # what a cancel acts on


def cancel_in(
    conn: sqlite3.Connection,
    now: float,
    ids: list[int] | None,
    name: str | None,
    given: bool,
    db_path: object,
) -> dict[int, str]:
    """Cancel ``ids`` (None: every active job) in the caller's transaction;
    {id: outcome}. ``given``: the ids were the caller's (each must exist, and
    ``name``, if any, must match too); else they were found by ``name``."""
    out: dict[int, str] = {}
    if ids is None:  # every active job
        _cancel_where(conn, now, f"state IN ({ACTIVE})", [], out)
        return out
    if given:
        known = _existing(conn, ids)
        missing = [i for i in ids if i not in known]
        if missing:
            raise JobNotFoundError(
                f"no job {', '.join(map(str, missing))} in the queue db {db_path}"
            )
        out.update({i: _already(known[i]) for i in ids})
    also = " AND name GLOB ?" if given and name is not None else ""
    for chunk, marks in chunks(ids):
        params = [*chunk, name] if also else chunk
        _cancel_where(conn, now, f"id IN ({marks}){also}", params, out)
    return out


def chunks(ids: Sequence[int], size: int = 500) -> Iterator[tuple[list[int], str]]:
    """``ids`` in chunks of at most ``size`` (SQLite caps the parameters of a
    statement), each with its ``?,?,...`` marks."""
    for start in range(0, len(ids), size):
        chunk = list(ids[start : start + size])
        yield chunk, ",".join("?" * len(chunk))


def _cancel_where(
    conn: sqlite3.Connection, now: float, cond: str, params: list[Any], out: dict
) -> None:
    """Cancel the jobs matching ``cond`` not started yet, ask the pools to kill the
    running ones, record each outcome in ``out`` (``+state``: by ``cond`` only)."""
    for (job_id,) in conn.execute(
        "UPDATE job_queue SET state = 'cancelled', ended_at = ?,"
        f" reason = 'cancelled while ' || state WHERE {cond}"
        " AND +state IN ('pending', 'waiting', 'held') RETURNING id",
        [now, *params],
    ):
        out[job_id] = CANCELLED
    for (job_id,) in conn.execute(
        "UPDATE job_queue SET cancel_requested = 1"
        f" WHERE {cond} AND +state = 'running' RETURNING id",
        params,
    ):
        out[job_id] = "cancelling"


def _existing(conn: sqlite3.Connection, ids: list[int]) -> dict[int, str]:
    out = {}
    for chunk, marks in chunks(ids):
        sql = f"SELECT id, state FROM job_queue WHERE id IN ({marks})"
        out.update(conn.execute(sql, chunk).fetchall())
    return out


def _already(state: str) -> str:
    """What cancelling a job in ``state`` did if no update matched it."""
    return f"already {state}" if state in FINAL_STATES else state
