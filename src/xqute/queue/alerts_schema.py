"""The alerts' tables (schema v7; ``schema.MIGRATIONS`` appends it).

See ``monitoring/alert_store.py`` for how they are used.
"""

__all__ = ["ALERTS_DDL"]

# v7: alerts (monitoring/alert_store.py): the state of each alert, the
# notifications still to deliver (an outbox: committed with the transition,
# deleted once sent), and an index on ended_at for "jobs that ended in the last
# N minutes" (failure rate, duration metrics); partial, so a submit does not
# write it
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
