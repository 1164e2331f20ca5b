"""How an engine's run stops early: a halt, a signal, an error, a cancelled
caller; and how it shuts down.

``Stopper`` is a component of ``Xqute``: it owns whether the run is halting,
the signal that stopped it, the jobs a second signal abandoned, and the
background tasks its kills run in. A halt submits nothing more and kills every
job in flight (the plugins may keep one alive: ``on_job_killing``). The first
SIGINT/SIGTERM asks the plugins (``on_shutdown`` may refuse it), then halts; a
second one kills the jobs in flight at once, without their grace, and ends the
run without waiting for them; those the backend still says run afterwards are
named by ``Interrupted``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from .errors import PluginError, XquteError
from .job import Job
from .status import JobStatus

if TYPE_CHECKING:
    from .engine import Xqute

__all__ = ["ABANDON_CHECK_S", "Stopper"]

logger = logging.getLogger("xqute")
ABANDON_CHECK_S = 3.0  # after a second signal: how long kills and checks may take


class Stopper:
    """The stopping side of one engine (see the module docstring)."""

    def __init__(self, engine: Xqute) -> None:
        self.engine = engine
        self.halting = False
        self.signal: int | None = None
        #: jobs in flight when a second signal ended the run without their end
        self.abandoned: list[Job] | None = None
        #: of those, the ones the backend still said run at shutdown
        self.still_running: list[Job] = []
        self._background: set[asyncio.Task[Any]] = set()

    async def halt(self) -> None:
        """Submit nothing more and kill every job in flight."""
        if self.halting:
            return
        self.halting = True
        self.engine._retries.cancel()
        await self.kill(list(self.engine._inflight))
        self.engine._check_done()

    async def kill(self, jobs: Sequence[Job]) -> None:
        """Kill jobs through the backend, unless a plugin keeps one alive."""
        engine = self.engine
        sched, hooks = engine.scheduler, engine.hooks
        doomed = []
        for job in jobs:
            if job.is_done or job.status == JobStatus.KILLING:
                continue
            if hooks.vetoed(await hooks.acall("on_job_killing", sched, job)):
                continue
            job.advance(JobStatus.KILLING)
            doomed.append(job)
        if not doomed:
            return
        try:
            await sched.kill_jobs(doomed)
        except XquteError as exc:
            logger.error("killing %d job(s) failed: %s", len(doomed), exc)
        for job in doomed:
            await hooks.acall("on_job_killed", sched, job)

    def on_signal(self, signum: int) -> None:
        """SIGINT/SIGTERM: halt, unless a plugin refuses; a second one abandons."""
        if self.signal is not None:
            self._abandon(signum)
            return
        engine = self.engine
        name = signal.Signals(signum).name
        try:
            answers = engine.hooks.call("on_shutdown", engine, signal.Signals(signum))
        except PluginError as exc:
            logger.error("%s", exc)
            answers = []
        if engine.hooks.vetoed(answers):
            logger.warning("%s ignored: a plugin cancelled the shutdown", name)
            return
        logger.warning(
            "%s received: killing %d job(s) in flight", name, len(engine._inflight)
        )
        self.signal = signum
        self.spawn(self.halt())

    def _abandon(self, signum: int) -> None:
        """A second signal: kill the jobs in flight at once (no grace) and end
        the run without waiting for them, whatever their backend does."""
        if self.abandoned is not None:
            return
        engine = self.engine
        self.abandoned = [job for job in engine._inflight if not job.is_done]
        logger.warning(
            "%s again: killing %d job(s) at once and not waiting for them",
            signal.Signals(signum).name,
            len(self.abandoned),
        )
        self.spawn(engine.scheduler.kill_jobs(self.abandoned))
        engine._check_done()

    def spawn(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def emergency_stop(self) -> None:
        """The engine's caller was cancelled: leave nothing running."""
        self.halting = True
        with contextlib.suppress(Exception):
            await self.kill(list(self.engine._inflight))

    async def settle(self, workers: Sequence[asyncio.Task[None]]) -> None:
        """At shutdown: stop the workers, let the kills finish (a moment only
        after a second signal), and name the abandoned jobs still running."""
        for worker in workers:
            worker.cancel()
        if self.abandoned is not None and self._background:
            # give the kills a moment, no more
            await asyncio.wait(self._background, timeout=ABANDON_CHECK_S)
            for task in self._background:
                task.cancel()
        await asyncio.gather(*workers, *self._background, return_exceptions=True)
        if self.abandoned is not None:
            self.still_running = await self._find_still_running()

    async def _find_still_running(self) -> list[Job]:
        """Of the abandoned jobs, those the backend still says run (all of them
        if it cannot say within a few seconds)."""
        sched = self.engine.scheduler
        jobs = [job for job in self.abandoned or () if job.jid is not None]

        async def runs(job: Job) -> bool:
            try:
                return await sched.job_is_running(job)
            except Exception:  # cannot tell: say it may
                return True

        try:
            found = await asyncio.wait_for(
                asyncio.gather(*(runs(job) for job in jobs)), ABANDON_CHECK_S
            )
        except TimeoutError:
            return jobs
        return [job for job, running in zip(jobs, found, strict=True) if running]
