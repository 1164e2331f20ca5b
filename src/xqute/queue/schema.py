"""The store's schema: versioned with ``PRAGMA user_version``, changed only by
appending a migration.

``MIGRATIONS[n]`` takes a db from version n to n + 1; a db written by an older
xqute is brought up to date when it is opened (in one write transaction, so that
two processes opening it at once migrate it once), and a db written by a newer
xqute is refused rather than misread. ``V1_DDL`` stays as the first migration
forever: the test suite builds a v1 db with it and opens it with today's code.

States of a job (``job_queue.state``)::

    pending ──claim──> running ──> completed | failed | timeout | cancelled
       │                  │
       └──cancel──> cancelled      (running: cancel_requested=1, then the pool
                                    kills it and records cancelled)

A running job whose worker died goes back to pending (``recovery_policy``
"requeue") or to failed ("fail"); see ``recovery.py``.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

__all__ = [
    "ALERTS_DDL",
    "FINAL_STATES",
    "MIGRATIONS",
    "SCHEMA_VERSION",
    "STATES",
    "UNLIMITED",
    "V1_DDL",
    "V2_DDL",
    "ids_text",
    "parse_ids",
]

PENDING = "pending"
RUNNING = "running"
COMPLETED = "completed"
FAILED = "failed"
CANCELLED = "cancelled"
TIMEOUT = "timeout"
STATES = (PENDING, RUNNING, COMPLETED, FAILED, CANCELLED, TIMEOUT)
FINAL_STATES = frozenset({COMPLETED, FAILED, CANCELLED, TIMEOUT})
#: a pool's cpus or memory (MB) when it has no limit (a cluster backend's pool)
UNLIMITED = 1 << 40

V1_DDL = """
CREATE TABLE job_queue (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,  -- ids are never reused
    name             TEXT NOT NULL DEFAULT '',
    command          TEXT NOT NULL,      -- JSON: a string (shell code) or a list (argv)
    working_dir      TEXT,
    env              TEXT,               -- JSON object, or NULL
    metadata         TEXT,               -- JSON object, or NULL
    cpus             INTEGER NOT NULL DEFAULT 1,
    mem_mb           INTEGER NOT NULL DEFAULT 0,
    gpus             INTEGER NOT NULL DEFAULT 0,
    priority         INTEGER NOT NULL DEFAULT 0,
    timeout_s        REAL,
    state            TEXT NOT NULL DEFAULT 'pending',
    submitted_at     REAL NOT NULL,      -- unix times (time.time())
    started_at       REAL,
    ended_at         REAL,
    return_code      INTEGER,
    reason           TEXT,
    worker           TEXT,               -- worker_nodes.id of the pool running it
    pid              INTEGER,            -- local jobs: the wrapper's pid
    pid_started_at   REAL,               -- its create time, against pid reuse
    native_id        TEXT,               -- the backend's id (a pid, a Slurm id ...)
    job_dir          TEXT,               -- job.stdout, job.stderr, job.rc live here
    gpu_ids          TEXT,               -- assigned GPU indexes, "0,1"
    cpu_ids          TEXT,               -- pinned cpus, "2,3"
    cancel_requested INTEGER NOT NULL DEFAULT 0,
    attempts         INTEGER NOT NULL DEFAULT 0  -- times it was claimed
);
-- the pool's "next jobs" query and every listing by state walk this index
CREATE INDEX job_queue_state ON job_queue (state, priority DESC, id);
CREATE INDEX job_queue_name ON job_queue (name);

CREATE TABLE worker_nodes (
    id             TEXT PRIMARY KEY,    -- host:pid:token
    host           TEXT NOT NULL,
    pid            INTEGER NOT NULL,
    pid_started_at REAL,
    backend        TEXT NOT NULL,
    max_workers    INTEGER NOT NULL,
    cpus           INTEGER,
    mem_mb         INTEGER,
    gpu_ids        TEXT,
    state          TEXT NOT NULL,        -- running, stopping, stopped, dead
    started_at     REAL NOT NULL,
    heartbeat_at   REAL NOT NULL,
    running_jobs   INTEGER NOT NULL DEFAULT 0
);

-- what each job was given (one row per job, for its latest run); v2 adds
-- what it used
CREATE TABLE resource_usage (
    job_id     INTEGER PRIMARY KEY,
    worker     TEXT NOT NULL,
    cpus       INTEGER NOT NULL,
    mem_mb     INTEGER NOT NULL,
    gpu_ids    TEXT,
    cpu_ids    TEXT,
    started_at REAL NOT NULL,
    ended_at   REAL
);
"""

# v2: what local jobs used, sampled by their pool (peak RSS of the process tree,
# cpu seconds of the tree and of the children it reaped)
V2_DDL = """
ALTER TABLE resource_usage ADD COLUMN max_rss_mb INTEGER;
ALTER TABLE resource_usage ADD COLUMN cpu_s REAL;
"""

# alerts (monitoring/alert_store.py): the state of each alert, the notifications
# still to deliver (an outbox: committed with the transition, deleted once sent),
# and an index on ended_at for "jobs that ended in the last N minutes" (failure
# rate, duration metrics); partial, so a submit does not write it
ALERTS_DDL = """
CREATE TABLE alerts (
    rule        TEXT NOT NULL,
    key         TEXT NOT NULL,          -- the instance: a namespace, job, pool, run
    state       TEXT NOT NULL,          -- pending, firing, resolved
    since       REAL NOT NULL,          -- entered this state
    active_at   REAL NOT NULL,          -- the condition started to hold
    value       REAL,
    labels      TEXT,                   -- JSON object
    summary     TEXT,
    fired_at    REAL,
    resolved_at REAL,
    notified    TEXT,                   -- JSON {notifier: last notified at}
    PRIMARY KEY (rule, key)
);
CREATE TABLE alert_outbox (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    created_at  REAL NOT NULL,
    notifier    TEXT NOT NULL,
    kind        TEXT NOT NULL,          -- firing, resolved, repeat
    payload     TEXT NOT NULL,          -- the alert JSON
    attempts    INTEGER NOT NULL DEFAULT 0,
    next_at     REAL NOT NULL,          -- next delivery attempt
    error       TEXT                    -- why the last attempt failed
);
CREATE INDEX job_queue_ended ON job_queue (ended_at) WHERE ended_at IS NOT NULL;
"""

MIGRATIONS: tuple[str, ...] = (V1_DDL, V2_DDL, ALERTS_DDL)
SCHEMA_VERSION = len(MIGRATIONS)


def parse_ids(text: str | None) -> tuple[int, ...]:
    """Device indexes as stored (``gpu_ids``, ``cpu_ids``): ``"0,1"`` -> (0, 1)."""
    return tuple(int(x) for x in text.split(",")) if text else ()


def ids_text(ids: Sequence[int]) -> str | None:
    """Device indexes as stored: (0, 1) -> ``"0,1"``; none -> NULL."""
    return ",".join(map(str, ids)) if ids else None


def schema_version(conn: sqlite3.Connection) -> int:
    return conn.execute("PRAGMA user_version").fetchone()[0]


def apply_migrations(conn: sqlite3.Connection, current: int) -> None:
    """Bring a db from ``current`` to ``SCHEMA_VERSION``; the caller holds a write
    transaction (``executescript`` would commit it, so statements run one by one).
    """
    for version in range(current, SCHEMA_VERSION):
        for statement in _statements(MIGRATIONS[version]):
            conn.execute(statement)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")


def _statements(script: str) -> list[str]:
    """Split a migration into statements (they hold no ';' inside literals)."""
    lines = [line.split("--", 1)[0] for line in script.splitlines()]
    return [s.strip() for s in "\n".join(lines).split(";") if s.strip()]
