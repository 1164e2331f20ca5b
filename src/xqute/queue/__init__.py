"""The queue service: a persistent SQLite job queue, a worker pool, a daemon.

A small Slurm for one machine::

    from xqute.queue import SqliteJobScheduler, WorkerPoolManager, SchedulerService

    scheduler = SqliteJobScheduler()          # ~/.local/state/xqute/queue.db
    job_id = scheduler.submit_job(command="python process.py 1", cpus=2,
                                  memory="4G", priority=5, timeout="1h")
    pool = WorkerPoolManager(scheduler, max_workers=4)
    pool.start_workers()                      # or: SchedulerService().start()
    scheduler.get_job_status(job_id)

Submodules are imported on first use: submitting a job loads only the store
(``xqute submit`` must answer fast); the pool loads the engine and its backends.
See docs/queue.md.
"""

from __future__ import annotations

TYPE_CHECKING = False  # typing is not imported at run time (xqute submit)

if TYPE_CHECKING:
    from typing import Any

    from .backend import QueueScheduler
    from .policy import (
        Capacity,
        Decision,
        PolicyConfig,
        Preempt,
        QueuedJob,
        Quota,
        RunningJob,
        Snapshot,
        Start,
        decide,
    )
    from .pool import WorkerPoolManager
    from .schema import FINAL_STATES, STATES
    from .service import AlreadyRunningError, SchedulerService, ServiceError
    from .store import JobNotFoundError, JobStore, SqliteJobScheduler

_LAZY = {
    "JobStore": ".store",
    "SqliteJobScheduler": ".store",
    "JobNotFoundError": ".store",
    "WorkerPoolManager": ".pool",
    "SchedulerService": ".service",
    "ServiceError": ".service",
    "AlreadyRunningError": ".service",
    "QueueScheduler": ".backend",
    "STATES": ".schema",
    "FINAL_STATES": ".schema",
    "Capacity": ".policy",
    "Decision": ".policy",
    "PolicyConfig": ".policy",
    "Preempt": ".policy",
    "Quota": ".policy",
    "QueuedJob": ".policy",
    "RunningJob": ".policy",
    "Snapshot": ".policy",
    "Start": ".policy",
    "decide": ".policy",
}

__all__ = [
    "FINAL_STATES",
    "STATES",
    "AlreadyRunningError",
    "Capacity",
    "Decision",
    "JobNotFoundError",
    "JobStore",
    "PolicyConfig",
    "Preempt",
    "QueueScheduler",
    "QueuedJob",
    "Quota",
    "RunningJob",
    "SchedulerService",
    "ServiceError",
    "Snapshot",
    "SqliteJobScheduler",
    "Start",
    "WorkerPoolManager",
    "decide",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'xqute.queue' has no attribute {name!r}")
    from importlib import import_module  # (not at import: xqute submit)

    value = getattr(import_module(module, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})
