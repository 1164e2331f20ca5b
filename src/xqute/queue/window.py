"""What a pool reads of the pending queue for a dispatch decision: the window
(the top of the queue), and with quotas the top of each namespace's queue and
what each namespace's running jobs hold; and the jobs too big for it.

Without quotas the pool reads the first ``lookahead`` pending jobs in dispatch
order (``pending_window``): an index range scan, so it costs the same with 10
or 10 million jobs queued. With quotas that window could be filled by one
namespace waiting on its quota while others wait behind it, so the pool reads
the first ``k`` jobs of *each* namespace that has pending jobs, merged in
dispatch order (``ns_window``): a namespace at its limit never holds the others
back, and the cost stays bounded whatever the size of the queue.

- The namespaces with pending jobs come from a skip-scan of the partial index
  ``job_queue_ns_pending`` (one index seek per namespace).
- ``k`` is ``lookahead / namespaces``, at least ``MIN_PER_NAMESPACE``: a
  namespace's later jobs are looked at once its first ones have started.
- ``namespace_usage`` sums the running jobs of every pool by namespace (an
  index range over the running jobs), which quotas are checked against.

Measured on this box with 1,000,000 pending jobs in 50 namespaces: the
namespace scan takes ~0.1 ms and the merged window ~1 ms.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, overload

from .classes import PriorityClass
from .db import Database
from .quota import Amounts
from .scopes import SCOPE_SQL, scope_key
from .snapshot import Capacity, QueuedJob

__all__ = [
    "MIN_PER_NAMESPACE",
    "namespace_usage",
    "ns_window",
    "pending_namespaces",
    "pending_window",
    "unfit_pending",
]

MIN_PER_NAMESPACE = 4
#: SQLite caps the terms of a compound SELECT (500): namespaces per statement
_CHUNK = 200
_COLS = (
    "id, priority, cpus, mem_mb, gpus, submitted_at, namespace, storage_mb,"
    f" priority_class, {SCOPE_SQL}"
)
_NAMESPACES = (
    "WITH RECURSIVE ns(n) AS ("
    " SELECT (SELECT min(namespace) FROM job_queue INDEXED BY job_queue_ns_pending"
    "  WHERE state = 'pending')"
    " UNION ALL SELECT (SELECT min(namespace) FROM job_queue"
    "  INDEXED BY job_queue_ns_pending WHERE state = 'pending' AND namespace > ns.n)"
    " FROM ns WHERE ns.n IS NOT NULL)"
    " SELECT n FROM ns WHERE n IS NOT NULL"
)


def pending_window(
    db: Database,
    limit: int,
    cap: Capacity,
    classes: Mapping[str, PriorityClass] | None = None,
    scopes: Mapping[str, tuple[str, ...]] | None = None,
) -> Window:
    """The first ``limit`` pending jobs in dispatch order that could ever fit
    ``cap`` (jobs too big for this pool are skipped, not looked at every
    cycle), with their classes' preemption rights. Rows are read as the policy
    looks at them: ``close()`` the window once decided (on the same thread)."""
    cursor = db.cursor(
        f"SELECT {_COLS} FROM job_queue WHERE state = 'pending' AND cpus <= ?"
        " AND mem_mb <= ? AND gpus <= ? ORDER BY priority DESC, id LIMIT ?",
        (_cpu_limit(cap), cap.mem_mb, cap.gpu_count, limit),
    )
    return Window(cursor, queued_maker(classes or {}, scopes))


class Window(Sequence[QueuedJob]):
    """The top of the queue as the policy walks it: rows are read from the
    statement in growing chunks and become ``QueuedJob``s only when looked at.
    The policy usually stops after a job or two (no free slot left), and
    reading the whole window (256 rows, a table lookup each) cost more than
    the rest of the dispatch. One statement, so one consistent snapshot of the
    queue however far the policy reads. ``rows`` may also be a list."""

    __slots__ = ("_cursor", "_jobs", "_make", "_rows")

    def __init__(self, rows: Any, make: Callable[[Any], QueuedJob]) -> None:
        if isinstance(rows, list):
            self._rows, self._cursor = rows, None
        else:  # a cursor: read on demand
            self._rows, self._cursor = [], rows
        self._make = make
        self._jobs: list[QueuedJob | None] = []

    def _fill(self, upto: int | None) -> None:
        """Read rows until there are more than ``upto`` (None: all)."""
        cursor = self._cursor
        while cursor is not None and (upto is None or len(self._rows) <= upto):
            if upto is None:
                self._rows += cursor.fetchall()
                chunk = []
            else:
                chunk = cursor.fetchmany(max(8, len(self._rows)))
                self._rows += chunk
            if not chunk:
                self.close()
                cursor = None

    def close(self) -> None:
        """Stop reading (ends the statement and its read snapshot)."""
        if self._cursor is not None:
            self._cursor.close()
            self._cursor = None

    def __len__(self) -> int:
        self._fill(None)
        return len(self._rows)

    @overload
    def __getitem__(self, i: int) -> QueuedJob: ...
    @overload
    def __getitem__(self, i: slice) -> list[QueuedJob]: ...
    def __getitem__(self, i: int | slice) -> QueuedJob | list[QueuedJob]:
        if isinstance(i, slice) or i < 0:
            self._fill(None)
            if isinstance(i, slice):
                return [self[j] for j in range(*i.indices(len(self._rows)))]
            i += len(self._rows)
        self._fill(i)
        if i >= len(self._rows):
            raise IndexError("window index out of range")
        jobs = self._jobs
        if len(jobs) <= i:
            jobs += [None] * (len(self._rows) - len(jobs))
        job = jobs[i]
        if job is None:
            job = jobs[i] = self._make(self._rows[i])
        return job

    def __iter__(self) -> Iterator[QueuedJob]:
        i = 0
        while True:
            self._fill(i)
            if i >= len(self._rows):
                return
            yield self[i]
            i += 1


def unfit_pending(
    db: Database, cap: Capacity, after: int, step: int = 50_000, limit: int = 100
) -> tuple[list[QueuedJob], int]:
    """Pending jobs with ids above ``after`` that can never fit ``cap`` (to say
    why they wait), and the id to go on from next time.

    A pool's capacity never changes, so it looks at each job once, as it
    arrives: a range of ids (at most ``step`` of them per call), whatever the
    size of the queue. (``+state``: the id range, not the state index.)
    """
    top = db.query("SELECT max(id) FROM job_queue")[0][0] or 0
    upto = min(top, after + step)
    rows = db.query(
        "SELECT id, priority, cpus, mem_mb, gpus, submitted_at FROM job_queue"
        " WHERE id > ? AND id <= ? AND +state = 'pending'"
        " AND (cpus > ? OR mem_mb > ? OR gpus > ?) ORDER BY id LIMIT ?",
        (after, upto, _cpu_limit(cap), cap.mem_mb, cap.gpu_count, limit),
    )
    jobs = [QueuedJob(*row) for row in rows]
    return jobs, jobs[-1].id if len(jobs) == limit else upto


def _cpu_limit(cap: Capacity) -> int:
    return min(cap.cpus, len(cap.cpu_ids)) if cap.cpu_ids else cap.cpus


def pending_namespaces(db: Database) -> list[str]:
    """The namespaces that have pending jobs (sorted)."""
    return [row[0] for row in db.query(_NAMESPACES)]


def ns_window(
    db: Database,
    lookahead: int,
    cap: Capacity,
    classes: Mapping[str, PriorityClass],
    scopes: Mapping[str, tuple[str, ...]] | None = None,
) -> Window:
    """The first jobs of each namespace that could ever fit ``cap``, merged in
    dispatch order (priority DESC, id), as the policy sees them: about
    ``lookahead`` jobs in all."""
    namespaces = pending_namespaces(db)
    if not namespaces:
        return Window([], queued_maker(classes, scopes))
    per_ns = max(MIN_PER_NAMESPACE, math.ceil(lookahead / len(namespaces)))
    cpu_limit = _cpu_limit(cap)
    fits = "cpus <= ? AND mem_mb <= ? AND gpus <= ?"
    term = (
        f"SELECT * FROM (SELECT {_COLS} FROM job_queue INDEXED BY job_queue_ns_pending"
        f" WHERE state = 'pending' AND namespace = ? AND {fits}"
        f" ORDER BY priority DESC, id LIMIT {per_ns})"
    )
    streams = []
    for start in range(0, len(namespaces), _CHUNK):
        chunk = namespaces[start : start + _CHUNK]
        sql = " UNION ALL ".join([term] * len(chunk))
        params: list[Any] = []
        for ns in chunk:
            params += [ns, cpu_limit, cap.mem_mb, cap.gpu_count]
        streams.append(
            db.query(f"SELECT * FROM ({sql}) ORDER BY priority DESC, id", params)
        )
    rows = heapq.merge(*streams, key=_order) if len(streams) > 1 else streams[0]
    return Window(list(rows), queued_maker(classes, scopes))


def _order(row: Any) -> tuple[int, int]:
    return -row[1], row[0]


def queued_maker(
    classes: Mapping[str, PriorityClass],
    scopes: Mapping[str, tuple[str, ...]] | None = None,
) -> Callable[[Any], QueuedJob]:
    """A row of ``_COLS`` -> ``QueuedJob``, with its class's preemption rights
    and its namespace as the policy sees it (``scopes.py``)."""

    def make(row: Any) -> QueuedJob:
        job_id, priority, cpus, mem_mb, gpus, submitted, ns, storage, name, scope = row
        if scopes:
            ns = scope_key(ns, scope, scopes)
        pc = classes.get(name) if name is not None else None
        if pc is None:
            return QueuedJob(job_id, priority, cpus, mem_mb, gpus, submitted, ns,
                             storage)  # fmt: skip
        return QueuedJob(job_id, priority, cpus, mem_mb, gpus, submitted, ns, storage,
                         pc.may_preempt, pc.preempt_after_s)  # fmt: skip

    return make


def namespace_usage(
    db: Database, scopes: Mapping[str, tuple[str, ...]] | None = None
) -> dict[str, Amounts]:
    """What the running jobs of all pools hold, per namespace (as the policy
    sees namespaces: ``scopes.py``)."""
    if not scopes:
        return {
            ns: Amounts(cpus, mem, gpus, storage, count)
            for ns, cpus, mem, gpus, storage, count in db.query(
                "SELECT namespace, sum(cpus), sum(mem_mb), sum(gpus), sum(storage_mb),"
                " count(*) FROM job_queue WHERE state = 'running' GROUP BY namespace"
            )
        }
    out: dict[str, Amounts] = {}
    for ns, scope, *amounts in db.query(
        f"SELECT namespace, {SCOPE_SQL}, sum(cpus), sum(mem_mb), sum(gpus),"
        " sum(storage_mb), count(*) FROM job_queue WHERE state = 'running'"
        " GROUP BY 1, 2"
    ):
        key = scope_key(ns, scope, scopes)
        before = out.get(key, Amounts())
        out[key] = Amounts(*(a + b for a, b in zip(before, amounts, strict=True)))
    return out
