"""``SeedThroughEngineAPI``: the seed API (``kill_job``, ``job_is_running``)
answered by the engine API, for a backend whose ``kill_jobs`` and ``poll_jobs``
handle many jobs with one command or call (mix it in before ``Scheduler``:
``class SshScheduler(SeedThroughEngineAPI, Scheduler)``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..job import Job
from ..outcome import Seen

if TYPE_CHECKING:
    from .base import Scheduler

__all__ = ["SeedThroughEngineAPI"]


class SeedThroughEngineAPI:
    """The seed API answered by the engine API, for a backend whose ``kill_jobs``
    and ``poll_jobs`` handle many jobs with one command or call (mix it in
    before ``Scheduler``)."""

    async def kill_job(self: Scheduler, job: Job) -> None:
        await self.kill_jobs([job])

    async def job_is_running(self: Scheduler, job: Job) -> bool:
        observation = (await self.poll_jobs([job]))[job]
        return observation.state in (Seen.PENDING, Seen.RUNNING)
