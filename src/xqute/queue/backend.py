"""``QueueScheduler``: the queue service as an engine backend.

``Xqute(scheduler="queue", scheduler_opts={"db_path": ...})`` submits each job
to the queue (``bash <metadir>/job.wrapped.queue``, so the engine's own wrapper
still writes job.rc/job.stdout in the engine's workdir and runs the plugins'
snippets) and follows all its jobs with one query per poll. The queue's pool
(the daemon, or any ``WorkerPoolManager`` on that db) runs them in priority
order as its resources allow; the engine's ``forks`` caps how many it has queued
or running at once.

Options: ``db_path`` (default: ``$XQUTE_DB`` or the per-user db), ``priority``
(default 0). A job's ``resources`` (cpus, mem_mb, gpus) become its request.
Killing a job (halt, signal, timeout backstop) cancels it in the queue.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any, ClassVar

from .. import checks
from ..deadline import DEADLINE_SLACK_S
from ..errors import BackendError, ConfigError, StoreError
from ..job import Job
from ..outcome import GONE, Observation, QueueState, Seen, observe_queue_state
from ..schedulers.base import Scheduler
from .store import JobStore

__all__ = ["QueueScheduler"]


class QueueScheduler(Scheduler):
    """Run the engine's jobs through the queue service."""

    name: ClassVar[str] = "queue"
    backend_options: ClassVar[dict[str, str]] = {
        "db_path": "the queue db (default: $XQUTE_DB or the per-user state dir)",
        "priority": "priority of the jobs in the queue (default 0; higher first)",
        "require_pool": "fail at start when no worker pool serves the db (default"
        " true; false: the jobs wait for one)",
    }

    # queue jobs start within a pool cycle: poll faster than a cluster
    default_poll_interval_s: ClassVar[float] = 0.2
    default_poll_interval_max_s: ClassVar[float] = 2.0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.priority = checks.integer("queue priority", self.config.get("priority", 0))
        self.store = JobStore(self.config.get("db_path"))
        self.require_pool = self.config.get("require_pool", True)
        if not isinstance(self.require_pool, bool):
            raise ConfigError(f"require_pool {self.require_pool!r} must be a bool")

    async def start(self) -> None:
        """A run whose jobs nothing would run is an error at once, not a wait
        for ever (``require_pool``)."""
        await super().start()
        if self.require_pool and not await asyncio.to_thread(self.store.notify_pools):
            db = self.store.db_path
            raise BackendError(
                f"no worker pool serves the queue db {db}: start one first"
                f" (xqute service start --db {db}), or give the backend the"
                " option require_pool=false to let the jobs wait for one"
            )

    async def submit_job(self, job: Job) -> int:
        script = await self.wrapped_job_script(job)
        res = job.resources
        timeout_s = self.job_timeout_s(job)
        try:
            return await asyncio.to_thread(
                self.store.submit_job,
                ["bash", str(script)],
                working_dir=job.cwd,
                job_name=self.job_name(job),
                cpus=res.cpus or 1,
                memory=res.mem_mb,
                gpus=res.gpus or 0,
                priority=self.priority,
                # the job's wrapper enforces its limit; this is the queue's backstop
                timeout=(
                    timeout_s + self.kill_grace_s + DEADLINE_SLACK_S
                    if timeout_s
                    else None
                ),
                metadata={"engine_workdir": str(self.workdir), "index": job.index},
                # like a local job: the driver's environment, not the pool's
                export_env="ALL",
            )
        except StoreError as exc:
            raise BackendError(f"cannot queue job {job.index}: {exc}") from exc

    async def kill_job(self, job: Job) -> None:
        await self.kill_jobs([job])

    async def kill_jobs(
        self, jobs: Sequence[Job], grace_s: float | None = None
    ) -> None:
        ids = [int(job.jid) for job in jobs if job.jid]
        if ids:
            await asyncio.to_thread(self.store.cancel_jobs, ids)

    async def job_is_running(self, job: Job) -> bool:
        return (await self.poll_jobs([job]))[job].state in (Seen.PENDING, Seen.RUNNING)

    async def poll_jobs(self, jobs: Sequence[Job]) -> dict[Job, Observation]:
        by_id = {int(job.jid): job for job in jobs if job.jid}
        try:
            states = await asyncio.to_thread(self.store.get_job_states, list(by_id))
        except StoreError as exc:
            raise BackendError(str(exc)) from exc
        out: dict[Job, Observation] = {}
        for job_id, job in by_id.items():
            row = states.get(job_id)
            out[job] = (
                GONE
                if row is None
                else observe_queue_state(
                    row["state"],
                    row["return_code"],
                    row["reason"],
                    # (read for a failed job only)
                    row["state"] == QueueState.FAILED
                    and job.read_rc_file() is not None,
                )
            )
        return out
