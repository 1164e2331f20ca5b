"""``get_resource_usage``: what the pools can hand out, what each namespace
holds against its quota, what waits, and what the policy did lately
(preemptions, autoscalers). The data of ``xqute resources show`` and of the
dashboard's resources page; plain dicts, ready for JSON.

Reads only: the live pools (``worker_nodes``), one aggregate over the running
jobs and one over the waiting ones (``pending``/``waiting``: the demand), the
policy definitions, the ``preemptions`` log and the ``autoscaler`` table.
"""

from __future__ import annotations

from typing import Any

from ..queue.db import Database
from ..queue.policy_store import load_catalog
from ..queue.preemption import recent
from ..queue.schema import UNLIMITED

__all__ = ["resource_usage"]

_AMOUNTS = ("cpu", "memory", "gpu", "storage", "jobs")


def _amounts(row: Any) -> dict[str, int | float]:
    return dict(zip(_AMOUNTS, (v or 0 for v in row), strict=True))


def resource_usage(db: Database, namespace: str | None = None) -> dict[str, Any]:
    """The report (see the module docstring), for one namespace or all."""
    catalog = load_catalog(db)
    pools = []
    for wid, backend, slots, cpus, mem_mb, gpu_ids, running in db.query(
        "SELECT id, backend, max_workers, cpus, mem_mb, gpu_ids, running_jobs"
        " FROM worker_nodes WHERE state IN ('running', 'stopping') ORDER BY id"
    ):
        pools.append({
            "id": wid, "backend": backend, "slots": slots, "running": running,
            "cpu": None if (cpus or 0) >= UNLIMITED else cpus,
            "memory": None if (mem_mb or 0) >= UNLIMITED else mem_mb,
            "gpu": len(gpu_ids.split(",")) if gpu_ids else 0,
        })  # fmt: skip
    where, params = "", []
    if namespace is not None:
        where, params = " AND namespace = ?", [namespace]
    allocated = {
        ns: _amounts(rest)
        for ns, *rest in db.query(
            "SELECT namespace, sum(cpus), sum(mem_mb), sum(gpus), sum(storage_mb),"
            f" count(*) FROM job_queue WHERE state = 'running'{where}"
            " GROUP BY namespace",
            params,
        )
    }
    pending = {
        ns: _amounts(rest)
        for ns, *rest in db.query(
            "SELECT namespace, sum(cpus), sum(mem_mb), sum(gpus), sum(storage_mb),"
            " count(*) FROM job_queue WHERE state IN ('pending', 'waiting')"
            f"{where} GROUP BY namespace",
            params,
        )
    }
    names = set(allocated) | set(pending) | set(catalog.quotas)
    if namespace is not None:
        names = {namespace}
    namespaces = {}
    for ns in sorted(names):
        quota = catalog.quotas.get(ns)
        namespaces[ns] = {
            "allocated": allocated.get(ns, _amounts((0,) * 5)),
            "pending": pending.get(ns, _amounts((0,) * 5)),
            "quota": None if quota is None else {
                "name": quota.name, "limits": quota.limits.to_spec(),
                "cohort": quota.cohort,
                "borrowing_limit": quota.borrowing_limit
                and quota.borrowing_limit.to_spec(),
            },
        }  # fmt: skip
    capacity = {
        "slots": sum(p["slots"] for p in pools),
        "cpu": None if any(p["cpu"] is None for p in pools)
        else sum(p["cpu"] for p in pools),
        "memory": None if any(p["memory"] is None for p in pools)
        else sum(p["memory"] for p in pools),
        "gpu": sum(p["gpu"] for p in pools),
    }  # fmt: skip
    autoscalers = [
        dict(zip(_SCALER_COLS, row, strict=True))
        for row in db.query(
            f"SELECT {', '.join('a.' + c for c in _SCALER_COLS)} FROM autoscaler a"
            " JOIN worker_nodes w ON w.id = a.worker"
            " AND w.state IN ('running', 'stopping') ORDER BY a.policy, a.worker"
        )
    ]
    return {
        "capacity": capacity,
        "pools": pools,
        "namespaces": namespaces,
        "priority_classes": {
            name: pc.to_spec() for name, pc in sorted(catalog.priority_classes.items())
        },
        "queues": {n: q.to_spec() for n, q in sorted(catalog.queues.items())},
        "resource_classes": {
            n: rc.to_spec() for n, rc in sorted(catalog.resource_classes.items())
        },
        "preemptions": recent(db, 20, namespace),
        "autoscaling": {n: p.to_spec() for n, p in sorted(catalog.autoscaling.items())},
        "autoscalers": autoscalers,
    }


_SCALER_COLS = (
    "policy", "worker", "target", "kind", "current", "desired", "min_replicas",
    "max_replicas", "direction", "reason", "updated_at", "last_change_at",
)  # fmt: skip
