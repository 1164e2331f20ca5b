"""One poll per cycle for all of a backend's in-flight jobs.

A backend that cannot tell the engine when a job ends (every one but local) is
asked about all its in-flight jobs at once, every ``poll_interval_s``, backing off
to ``poll_interval_max_s`` while nothing changes. A job the backend no longer
knows is finished from the rc file its wrapper wrote, else from what the backend
knows without asking (``gone_observation``: e.g. a job xqute was killing), else
from what ``resolve_gone`` finds (accounting), else, after ``lost_grace_s``, as
``lost_observation`` says (lost, by default): the engine never waits forever for
a job the backend killed before its wrapper could write anything. A few failed
status queries in a row are tolerated; after five, the jobs being followed are
failed (and then killed by the engine).

A backend may say a job ended before the wrapper has written its rc: Slurm marks a
cancelled or timed-out job CANCELLED/TIMEOUT at once while the wrapper is still
in its kill grace, and a shared filesystem may show the rc file late. So when the
backend reports a failed end, no rc is known, and the wrapper's status file says
it is still running, the job is settled only once the rc file appears or
``kill_grace_s`` + 2 s have passed (at most ``lost_grace_s``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..errors import BackendError
from ..job import Job
from ..outcome import GONE, PENDING, RUNNING, Observation, Seen
from ..status import JobOutcome, JobStatus

if TYPE_CHECKING:
    from .base import Scheduler

__all__ = ["GONE", "PENDING", "RUNNING", "Observation", "Poller"]

logger = logging.getLogger("xqute")
MAX_POLL_ERRORS = 5


@dataclass(slots=True)
class _Watch:
    future: asyncio.Future[None]
    gone_since: float | None = None
    observation: Observation | None = None
    ended_since: float | None = None  # the backend said "done", rc not yet seen


class Poller:
    """Follows in-flight jobs for one scheduler (started on the first wait)."""

    def __init__(self, scheduler: Scheduler) -> None:
        self.scheduler = scheduler
        self._watches: dict[Job, _Watch] = {}
        self._task: asyncio.Task[None] | None = None
        self._counter = 0

    async def wait(self, job: Job) -> Observation | None:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        watch = self._watches[job] = _Watch(future)
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(
                self._loop(), name=f"{self.scheduler.name}-poller"
            )
        try:
            await future
        finally:
            self._watches.pop(job, None)
        return watch.observation

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        for watch in self._watches.values():
            if not watch.future.done():
                watch.future.cancel()
        self._watches.clear()

    async def _loop(self) -> None:
        sched = self.scheduler
        interval = sched.poll_interval_s
        errors = 0
        while self._watches:
            await asyncio.sleep(interval)
            jobs = [j for j, w in self._watches.items() if not w.future.done()]
            if not jobs:
                continue
            try:
                observations = await sched.poll_jobs(jobs)
                errors = 0
            except (BackendError, OSError) as exc:
                errors += 1
                logger.warning(
                    "%s: status query failed (%d in a row): %s", sched.name, errors, exc
                )
                if errors >= MAX_POLL_ERRORS:
                    self._fail_watches(
                        jobs, f"status queries failed {errors} times: {exc}"
                    )
                    errors = 0
                interval = min(interval * 2, sched.poll_interval_max_s)
                continue
            self._counter += 1
            changed = await self._apply(jobs, observations)
            interval = (
                sched.poll_interval_s
                if changed
                else min(interval * 1.5, sched.poll_interval_max_s)
            )

    async def _apply(
        self, jobs: list[Job], observations: Mapping[Job, Observation]
    ) -> bool:
        sched = self.scheduler
        changed = False
        left: list[Job] = []
        polling = sched.hooks.implements("on_job_polling")
        for job in jobs:
            obs = observations.get(job, GONE)
            if obs.state in (Seen.DONE, Seen.GONE):
                if obs.state is Seen.DONE:
                    self._watches[job].observation = obs
                left.append(job)
                continue
            # seen again (a host that hiccupped): the lost-job grace starts over
            self._watches[job].gone_since = None
            if obs.state is Seen.RUNNING and job.status < JobStatus.RUNNING:
                changed = True
                await sched.mark_running(job)
            if polling:
                await sched.hooks.acall("on_job_polling", sched, job, self._counter)
        if left:
            changed |= await self._settle(left)
        return changed

    async def _settle(self, jobs: list[Job]) -> bool:
        """Finish jobs that left the backend once their rc is known (or lost)."""
        sched = self.scheduler
        now = time.monotonic()
        unresolved = []
        waiting = 0
        for job in jobs:
            watch = self._watches[job]
            obs = watch.observation
            if await sched.file_io(job.read_rc_file) is not None:
                watch.future.set_result(None)
            elif obs is not None and obs.outcome is not None:
                if self._wrapper_still_recording(job, watch, obs, now):
                    waiting += 1
                    continue
                watch.future.set_result(None)
            elif (known := sched.gone_observation(job)) is not None:
                watch.observation = known
                watch.future.set_result(None)
            else:
                unresolved.append(job)
        if unresolved:
            try:
                found = await sched.resolve_gone(unresolved)
            except (BackendError, OSError) as exc:
                # no accounting (tool missing, timed out): the grace still ends it
                logger.warning("%s: accounting query failed: %s", sched.name, exc)
                found = {}
            for job, obs in found.items():
                self._watches[job].observation = obs
                self._watches[job].future.set_result(None)
            for job in unresolved:
                watch = self._watches[job]
                if watch.future.done():
                    continue
                if watch.gone_since is None:
                    watch.gone_since = now
                elif now - watch.gone_since >= sched.lost_grace_s:
                    watch.observation = sched.lost_observation(job)
                    watch.future.set_result(None)
        return len(unresolved) + waiting < len(jobs)

    def _wrapper_still_recording(
        self, job: Job, watch: _Watch, obs: Observation, now: float
    ) -> bool:
        """Whether to wait a little for the rc of a job the backend says failed."""
        if obs.rc is not None or not obs.outcome or not obs.outcome.is_failure:
            return False
        if job.read_status_file() != JobStatus.RUNNING:
            return False  # never started, or already recorded its end
        sched = self.scheduler
        if watch.ended_since is None:
            watch.ended_since = now
        grace_s = min(sched.kill_grace_s + 2.0, sched.lost_grace_s)
        return now - watch.ended_since < grace_s

    def _fail_watches(self, jobs: Iterable[Job], reason: str) -> None:
        for job in jobs:
            watch = self._watches.get(job)
            if watch and not watch.future.done():
                watch.observation = Observation(Seen.DONE, JobOutcome.LOST, reason)
                watch.future.set_result(None)
