"""What the dashboard's overview (``/``, ``GET /api/overview``) shows: jobs by
state and namespace, the pools with their slots in use and heartbeats, quota
bars, the active workflow runs, the next schedule fires, firing alerts.

Each part is an index range or a read of a small table (live pools, running
jobs, active runs, schedules), so a visit costs the same with a million jobs
finished; the counts of every state, finished ones included, come through a
``Refreshed`` (``job_counts``). A part whose tables this db does not have is
empty.
"""

from __future__ import annotations

import time
from typing import Any

from ..monitoring import alert_store
from ..queue.active_jobs import count_active
from ..queue.schema import FINAL_STATES, PENDING, RUNNING, STATES
from ..queue.store import SqliteJobScheduler
from .queries import Features

__all__ = ["active_runs", "job_counts", "next_fires", "overview", "quota_bars"]

SHOWN = 8  # active runs and next fires listed


def job_counts(
    store: SqliteJobScheduler, features: Features
) -> tuple[dict[str, int], dict[str, dict[str, int]]]:
    """Jobs by state, and the pending and running ones by namespace (reads an
    index entry per job: the overview takes it through a ``Refreshed``, so a
    huge queue is counted in the background)."""
    by_namespace: dict[str, dict[str, int]] = {}
    for state, ns, _pclass, n in count_active(store.db):
        if state in (PENDING, RUNNING):
            counts = by_namespace.setdefault(ns or "default", {})
            counts[state] = counts.get(state, 0) + n
    return store.count_jobs(), by_namespace


def overview(
    store: SqliteJobScheduler,
    features: Features,
    counts: tuple[dict[str, int], dict[str, dict[str, int]]],
) -> dict[str, Any]:
    """Everything the overview shows (see the module docstring)."""
    now = time.time()
    counts, by_namespace = counts
    workers = store.list_workers(include_stopped=False)
    for w in workers:
        w["heartbeat_age_s"] = round(now - w["heartbeat_at"], 1)
    alerts = (
        alert_store.list_alerts(store.db, firing_only=True) if features.alerts else []
    )
    return {
        "time": now,
        "jobs": counts,
        "active": sum(counts.get(s, 0) for s in STATES if s not in FINAL_STATES),
        "jobs_by_namespace": by_namespace,
        "workers": workers,
        "quotas": quota_bars(store.db) if features.quotas else [],
        "runs_active": active_runs(store.db) if features.runs else [],
        "next_fires": next_fires(store.db) if features.schedules else [],
        "alerts_firing": alerts,
        "features": {
            "namespaces": features.namespaces,
            "runs": features.runs,
            "schedules": features.schedules,
            "quotas": features.quotas,
            "events": features.events,
        },
    }


def active_runs(db: Any, limit: int = SHOWN) -> list[dict[str, Any]]:
    """The newest runs not ended, with how many of their tasks are done."""
    cols = ("id", "kind", "name", "namespace", "state", "attempt", "created_at",
            "started_at", "tasks_total", "tasks_left", "tasks_failed")  # fmt: skip
    rows = db.query(
        f"SELECT {', '.join(cols)} FROM runs WHERE state IN ('pending', 'running')"
        " ORDER BY id DESC LIMIT ?",
        (limit,),
    )
    return [dict(zip(cols, row, strict=True)) for row in rows]


def next_fires(db: Any, limit: int = SHOWN) -> list[dict[str, Any]]:
    """The schedules that fire next (not suspended), soonest first."""
    rows = db.query(
        "SELECT kind, namespace, name, next_fire_at FROM schedules"
        " WHERE deleted_at IS NULL AND suspended = 0 AND next_fire_at IS NOT NULL"
        " ORDER BY next_fire_at LIMIT ?",
        (limit,),
    )
    return [
        {"schedule": f"{kind}/{name}", "namespace": ns, "next_fire_at": at}
        for kind, ns, name, at in rows
    ]


def quota_bars(db: Any) -> list[dict[str, Any]]:
    """Each quota's limits against what the namespace's running jobs hold
    (memory in MB, as quotas say it)."""
    from ..queue.policy_store import load_catalog

    quotas = load_catalog(db).quotas
    if not quotas:
        return []
    held = {
        ns: (cpu or 0, mem or 0, gpu or 0, n)
        for ns, cpu, mem, gpu, n in db.query(
            "SELECT namespace, sum(cpus), sum(mem_mb), sum(gpus), count(*)"
            " FROM job_queue WHERE state = 'running' GROUP BY namespace"
        )
    }
    out = []
    for ns, quota in sorted(quotas.items()):
        limits = quota.limits.to_spec()
        used = held.get(ns, (0, 0, 0, 0))
        for i, resource in enumerate(("cpu", "memory", "gpu", "jobs")):
            if limits.get(resource) is not None:
                out.append({
                    "namespace": ns, "quota": quota.name, "resource": resource,
                    "used": used[i], "limit": limits[resource],
                })  # fmt: skip
    return out
