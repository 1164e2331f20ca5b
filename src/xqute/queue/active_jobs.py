"""The jobs not ended, counted from one small index (schema v9, appended to
``MIGRATIONS`` in schema.py).

``/metrics`` (``xqute_jobs``), the dashboard's overview and the
``queue_threshold`` alert count the jobs not ended by state, namespace and
priority class. Without this index each count looks up every such row in the
table: 1.6-7 s for a million waiting jobs, 0.1-0.3 s for 100,000. The index is
partial (only the rows not ended: a queue of a million finished jobs and a few
thousand active ones keeps it small) and covers the three columns, so a count
reads only index entries, in their order (no sort): 0.1-0.15 s for a million
active jobs, ~1 ms for 10,000 (2 cores, this VM; ``bench/web.py``).

Its price: a submit writes one more index entry, and a state change among the
active states moves it (an end removes it).

The queries name the index (``INDEXED BY``) and repeat its ``WHERE`` term word
for word: SQLite uses a partial index only for a query whose ``WHERE`` holds
that term itself.
"""

from __future__ import annotations

TYPE_CHECKING = False  # typing is not imported at run time (xqute submit)
if TYPE_CHECKING:
    from .db import Database

__all__ = ["ACTIVE_DDL", "ACTIVE_STATES_SQL", "count_active", "count_pending"]

#: the states that are not final, as the index's WHERE term spells them
ACTIVE_STATES_SQL = "state IN ('pending', 'running', 'waiting', 'held')"

# v9: the jobs not ended, by state, namespace and priority class
ACTIVE_DDL = f"""
CREATE INDEX job_queue_active ON job_queue (state, namespace, priority_class)
    WHERE {ACTIVE_STATES_SQL};
"""

_FROM = f"FROM job_queue INDEXED BY job_queue_active WHERE {ACTIVE_STATES_SQL}"


def count_active(db: Database) -> list[tuple[str, str, str | None, int]]:
    """(state, namespace, priority class, count) of the jobs not ended, in
    index order; ``db``: the store's ``Database``. Reads index entries only."""
    sql = f"SELECT state, namespace, priority_class, count(*) {_FROM} GROUP BY 1, 2, 3"
    return [tuple(row) for row in db.query(sql)]  # type: ignore[misc]


def count_pending(db: Database, namespace: str | None = None) -> int:
    """How many jobs are pending (in ``namespace``, or in all): one index range."""
    sql = f"SELECT count(*) {_FROM} AND state = 'pending'"
    params: list[str] = []
    if namespace is not None:
        sql += " AND namespace = ?"
        params.append(namespace)
    return int(db.query(sql, params)[0][0])
