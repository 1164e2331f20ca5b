"""The tables of the resource policy (schema v6, appended to ``MIGRATIONS``
in schema.py): declared storage on jobs, the per-namespace pending index the
pools read when quotas apply, the preemption log and the autoscalers' state.

Quotas, priority classes, named queues, resource classes and autoscaling
policies themselves are rows of ``definitions`` (v3), read by
``policy_store.py``.
"""

from __future__ import annotations

__all__ = ["POLICY_DDL"]

POLICY_DDL = """
ALTER TABLE job_queue ADD COLUMN storage_mb INTEGER NOT NULL DEFAULT 0;  -- declared

-- the top of each namespace's queue, when quotas keep some namespaces waiting
-- (only pending rows: it costs nothing once a job started)
CREATE INDEX job_queue_ns_pending ON job_queue (namespace, priority DESC, id)
    WHERE state = 'pending';

-- who evicted whom (xqute resources show); one row per victim
CREATE TABLE preemptions (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    ts             REAL NOT NULL,
    job_id         INTEGER NOT NULL,     -- the victim
    namespace      TEXT NOT NULL,
    priority       INTEGER NOT NULL,
    by_job         INTEGER NOT NULL,     -- the preemptor
    by_namespace   TEXT NOT NULL,
    by_priority    INTEGER NOT NULL,
    worker         TEXT,                 -- the pool that killed it
    reason         TEXT NOT NULL,
    outcome        TEXT                  -- requeued | cancelled, once it ended
);
CREATE INDEX preemptions_job ON preemptions (job_id);

-- each autoscaling policy's last decision, per pool applying it
CREATE TABLE autoscaler (
    policy         TEXT NOT NULL,
    worker         TEXT NOT NULL,        -- worker_nodes.id
    target         TEXT NOT NULL,
    kind           TEXT NOT NULL,        -- slots (local) | submitted (cluster)
    current        INTEGER NOT NULL,
    desired        INTEGER NOT NULL,
    min_replicas   INTEGER NOT NULL,
    max_replicas   INTEGER NOT NULL,
    direction      TEXT NOT NULL,        -- up | down | none
    reason         TEXT,
    updated_at     REAL NOT NULL,
    last_change_at REAL,
    PRIMARY KEY (policy, worker)
);
"""
