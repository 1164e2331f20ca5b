"""The store's schema: versioned with ``PRAGMA user_version``, changed only by
appending a migration.

``MIGRATIONS[n]`` takes a db from version n to n + 1; a db written by an older
xqute is brought up to date when it is opened (in one write transaction, so that
two processes opening it at once migrate it once), and a db written by a newer
xqute is refused rather than misread. ``V1_DDL`` stays as the first migration
forever: the test suite builds a v1 db with it and opens it with today's code.

States of a job (``job_queue.state``)::

    waiting ──eligible_at passed──> pending ──claim──> running ──> completed |
       │                              │                   │   failed | timeout |
     held <──suspend/resume──>        │                   │   cancelled
       └────────────cancel────────────┴──> cancelled      (running: cancel_requested=1,
                                                           the pool kills it)

``waiting`` (v3): not eligible before ``eligible_at`` (a retry in backoff); the
pool promotes it to pending then (``claims.promote_waiting``). ``held`` (v3):
suspended; it moves only when resumed. Neither holds a worker or a reservation.

A running job whose worker died goes back to pending (``recovery_policy``
"requeue") or to failed ("fail"); see ``recovery.py``.
"""

from __future__ import annotations

from collections.abc import Sequence

from .active_jobs import ACTIVE_DDL
from .alerts_schema import ALERTS_DDL
from .policy_schema import POLICY_DDL
from .states import QueueState
from .submit_tokens import TOKENS_DDL

TYPE_CHECKING = False  # typing is not imported at run time (xqute submit)
if TYPE_CHECKING:
    import sqlite3

__all__ = [
    "FINAL_STATES",
    "MIGRATIONS",
    "SCHEMA_VERSION",
    "STATES",
    "UNLIMITED",
    "V1_DDL",
    "V2_DDL",
    "V3_DDL",
    "V4_DDL",
    "V5_DDL",
    "V8_DDL",
    "ids_text",
    "parse_ids",
]

# the states, by their names (``outcome.QueueState``: every vocabulary is
# mapped to the others there)
PENDING = QueueState.PENDING
RUNNING = QueueState.RUNNING
COMPLETED = QueueState.COMPLETED
FAILED = QueueState.FAILED
CANCELLED = QueueState.CANCELLED
TIMEOUT = QueueState.TIMEOUT
WAITING = QueueState.WAITING
HELD = QueueState.HELD
STATES = (PENDING, RUNNING, COMPLETED, FAILED, CANCELLED, TIMEOUT, WAITING, HELD)
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

# v3: the orchestration layer (job/template/workflow definitions, runs, their
# tasks and outputs, events) and the job_queue columns layers 3 needs: a job
# may be one attempt of one item of a run's task; namespaces, priority classes,
# eligibility (waiting), preemption counts. See docs/workflows.md.
V3_DDL = """
ALTER TABLE job_queue ADD COLUMN run_id INTEGER;       -- runs.id, for a run's task
ALTER TABLE job_queue ADD COLUMN task TEXT;            -- run_tasks.task
ALTER TABLE job_queue ADD COLUMN run_attempt INTEGER;  -- runs.attempt it belongs to
ALTER TABLE job_queue ADD COLUMN item_index INTEGER;   -- parallel item index
ALTER TABLE job_queue ADD COLUMN namespace TEXT NOT NULL DEFAULT 'default';
ALTER TABLE job_queue ADD COLUMN priority_class TEXT;
ALTER TABLE job_queue ADD COLUMN eligible_at REAL;     -- waiting: pending from then on
ALTER TABLE job_queue ADD COLUMN preemptions INTEGER NOT NULL DEFAULT 0;
CREATE INDEX job_queue_eligible ON job_queue (state, eligible_at);
CREATE INDEX job_queue_run ON job_queue (run_id) WHERE run_id IS NOT NULL;

-- versioned definitions; a run pins the version (row) it started with
CREATE TABLE definitions (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    kind       TEXT NOT NULL,     -- job, template, workflow, quota ...
    namespace  TEXT NOT NULL DEFAULT 'default',
    name       TEXT NOT NULL,
    version    INTEGER NOT NULL,  -- 1, 2, ... per (kind, namespace, name)
    spec       TEXT NOT NULL,     -- JSON
    spec_hash  TEXT NOT NULL,     -- sha256 of the canonical JSON
    created_at REAL NOT NULL,
    deleted_at REAL,              -- set on every version of a deleted name
    suspended  INTEGER NOT NULL DEFAULT 0,
    UNIQUE (kind, namespace, name, version)
);

-- the edges of a workflow version: children of a task in one index range
CREATE TABLE def_edges (
    def_id INTEGER NOT NULL,
    parent TEXT NOT NULL,
    child  TEXT NOT NULL,
    PRIMARY KEY (def_id, parent, child)
) WITHOUT ROWID;
CREATE INDEX def_edges_child ON def_edges (def_id, child);

-- one execution of a workflow (or of a job: a one-task workflow)
CREATE TABLE runs (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    kind             TEXT NOT NULL,              -- job | workflow
    def_id           INTEGER NOT NULL,           -- definitions.id (the pinned version)
    namespace        TEXT NOT NULL DEFAULT 'default',
    name             TEXT NOT NULL,
    state            TEXT NOT NULL DEFAULT 'pending',
    params           TEXT,                       -- JSON object
    priority_class   TEXT,
    parallelism      INTEGER,                    -- tasks queued or running at once
    failure_policy   TEXT NOT NULL DEFAULT 'stop',
    timeout_s        REAL,
    deadline_at      REAL,
    triggered_by     TEXT NOT NULL DEFAULT 'manual',  -- manual | schedule | api
    schedule_id      INTEGER,
    scheduled_for    REAL,
    idempotency_key  TEXT UNIQUE,
    attempt          INTEGER NOT NULL DEFAULT 1, -- + 1 per retry_workflow
    created_at       REAL NOT NULL,
    started_at       REAL,
    ended_at         REAL,
    reason           TEXT,
    suspended        INTEGER NOT NULL DEFAULT 0,
    cancel_requested INTEGER NOT NULL DEFAULT 0,
    tasks_total      INTEGER NOT NULL DEFAULT 0,
    tasks_left       INTEGER NOT NULL DEFAULT 0, -- not final yet: the run ends at 0
    tasks_failed     INTEGER NOT NULL DEFAULT 0,
    active           INTEGER NOT NULL DEFAULT 0, -- tasks queued or running
    stopping         INTEGER NOT NULL DEFAULT 0  -- failure_policy stop: a task failed
);
CREATE INDEX runs_state ON runs (state, id);
CREATE INDEX runs_name ON runs (name, id);

CREATE TABLE run_tasks (
    run_id         INTEGER NOT NULL,
    task           TEXT NOT NULL,
    seq            INTEGER NOT NULL,   -- its place in the definition
    state          TEXT NOT NULL DEFAULT 'blocked',
    attempt        INTEGER NOT NULL DEFAULT 0,  -- queue jobs made (this run attempt)
    max_attempts   INTEGER NOT NULL DEFAULT 1,  -- per item
    trigger_rule   TEXT NOT NULL DEFAULT 'all_success',
    deps_total     INTEGER NOT NULL DEFAULT 0,  -- readiness counters, bumped as
    deps_succeeded INTEGER NOT NULL DEFAULT 0,  -- parents end (no scan of the run)
    deps_failed    INTEGER NOT NULL DEFAULT 0,
    deps_done      INTEGER NOT NULL DEFAULT 0,
    completions    INTEGER NOT NULL DEFAULT 1,  -- parallel items
    max_concurrent INTEGER,
    next_item      INTEGER NOT NULL DEFAULT 0,
    succeeded      INTEGER NOT NULL DEFAULT 0,  -- items
    failed         INTEGER NOT NULL DEFAULT 0,
    active         INTEGER NOT NULL DEFAULT 0,
    ready_at       REAL,
    started_at     REAL,
    ended_at       REAL,
    rc             INTEGER,
    reason         TEXT,
    plan           TEXT NOT NULL,      -- JSON: what to run, #{} unresolved
    rendered       TEXT,               -- JSON: its last queue job's command and env
    PRIMARY KEY (run_id, task)
);
CREATE INDEX run_tasks_state ON run_tasks (run_id, state, seq);

-- one row per queue job made for a task (every attempt of every item)
CREATE TABLE task_attempts (
    queue_job_id INTEGER PRIMARY KEY,
    run_id       INTEGER NOT NULL,
    task         TEXT NOT NULL,
    run_attempt  INTEGER NOT NULL,
    item_index   INTEGER,
    attempt      INTEGER NOT NULL,     -- 1, 2, ... per item
    state        TEXT NOT NULL,        -- queued, running, succeeded, failed, cancelled
    rc           INTEGER,
    queued_at    REAL NOT NULL,
    started_at   REAL,
    ended_at     REAL,
    reason       TEXT,
    preempted    INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX task_attempts_task ON task_attempts (run_id, task);

CREATE TABLE task_outputs (
    run_id INTEGER NOT NULL,
    task   TEXT NOT NULL,
    name   TEXT NOT NULL,     -- "output" ($XQUTE_OUTPUT)
    kind   TEXT NOT NULL DEFAULT 'value',
    value  TEXT NOT NULL,
    size   INTEGER NOT NULL,
    sha256 TEXT,
    PRIMARY KEY (run_id, task, name)
);

-- every transition, in order: the id is the cursor of ``watch``
CREATE TABLE events (
    id        INTEGER PRIMARY KEY AUTOINCREMENT,
    ts        REAL NOT NULL,
    type      TEXT NOT NULL,     -- workflow.started, task.succeeded, ...
    namespace TEXT NOT NULL DEFAULT 'default',
    run_id    INTEGER,
    task      TEXT,
    attempt   INTEGER,
    job_id    INTEGER,
    data      TEXT               -- JSON object
);
CREATE INDEX events_run ON events (run_id, id) WHERE run_id IS NOT NULL;
"""

# v4: schedules (orchestration/schedule_store.py, docs/schedules.md): one row per
# scheduled job or workflow, one per settled scheduled time; the primary key of
# schedule_fires makes a second run for one scheduled time impossible
V4_DDL = """
CREATE TABLE schedules (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    kind           TEXT NOT NULL,               -- job | workflow (the definition's)
    namespace      TEXT NOT NULL DEFAULT 'default',
    name           TEXT NOT NULL,
    spec           TEXT NOT NULL,               -- JSON {cron|every, timezone, policies}
    timezone       TEXT,                        -- a cron schedule's zone, resolved
    suspended      INTEGER NOT NULL DEFAULT 0,
    suspended_at   REAL,
    settled_until  REAL NOT NULL,               -- every time <= this was handled
    backlog        TEXT,                        -- JSON [[time, catchup], ...]: waiting
    next_fire_at   REAL,                        -- the first time after settled_until
    fired          INTEGER NOT NULL DEFAULT 0,  -- scheduled times, by outcome
    coalesced      INTEGER NOT NULL DEFAULT 0,
    missed         INTEGER NOT NULL DEFAULT 0,
    skipped        INTEGER NOT NULL DEFAULT 0,  -- overlap: skipped or replaced
    last_scheduled_for REAL,                    -- the latest run it started
    last_fired_at  REAL,
    last_run_id    INTEGER,
    last_catchup   TEXT,                        -- JSON: the latest catch-up, for `list`
    created_at     REAL NOT NULL,
    updated_at     REAL NOT NULL,
    deleted_at     REAL,
    UNIQUE (kind, namespace, name)
);
CREATE INDEX schedules_due ON schedules (next_fire_at)
    WHERE deleted_at IS NULL AND suspended = 0;

CREATE TABLE schedule_fires (
    schedule_id    INTEGER NOT NULL,
    scheduled_for  REAL NOT NULL,
    until          REAL,                        -- a group's last time
    outcome        TEXT NOT NULL,               -- started, manual, coalesced, missed,
                                                -- skipped_overlap, replaced
    count          INTEGER NOT NULL DEFAULT 1,
    exact          INTEGER NOT NULL DEFAULT 1,  -- 0: more than count - 1
    reason         TEXT,
    run_id         INTEGER,
    fired_at       REAL NOT NULL,
    lateness_s     REAL,                        -- fired_at - scheduled_for (started)
    PRIMARY KEY (schedule_id, scheduled_for)
) WITHOUT ROWID;

CREATE INDEX runs_schedule ON runs (schedule_id, state) WHERE schedule_id IS NOT NULL;
"""

# v5: what a run carries besides its parameters (JSON: extra env and #{...}
# references given by its trigger, e.g. a schedule's time; its version)
V5_DDL = """
ALTER TABLE runs ADD COLUMN context TEXT;
"""

# v6: the resource policy (quotas, preemption, autoscaling): policy_schema.py
# v8: the queue jobs of runs that have not ended yet, in one small index (the
# orchestration's reconciler settles those that ended without the pool's
# finish hook: a pending one cancelled with ``xqute cancel``)
V8_DDL = """
CREATE INDEX task_attempts_open ON task_attempts (queue_job_id)
    WHERE state IN ('queued', 'running');
"""

MIGRATIONS: tuple[str, ...] = (
    V1_DDL,
    V2_DDL,
    V3_DDL,
    V4_DDL,
    V5_DDL,
    POLICY_DDL,
    ALERTS_DDL,
    V8_DDL,
    ACTIVE_DDL,  # v9: active_jobs.py
    TOKENS_DDL,  # v10: submit_tokens.py
)
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
