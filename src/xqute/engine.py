"""The engine: feeds jobs to a backend under a concurrency limit.

``forks`` worker tasks each take the next queued job, submit it, wait for its end
(event-driven for local processes, batched polls for remote backends), then apply
the error strategy. Bookkeeping is O(1) per job event: counters and a set of
in-flight jobs, never a scan of all jobs, so a run of 100,000 jobs costs the same
per job as a run of 10.

SIGINT/SIGTERM kill every job in flight and end the run (``Interrupted`` is raised
once everything is cleaned up); a cancelled ``run_until_complete`` does the same.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import time
from collections.abc import Mapping, Sequence
from typing import Any

from . import trial
from .errors import Interrupted, PluginError, XquteError
from .hooks import HookCaller
from .job import Job
from .options import engine_args
from .outcome import Evidence, decide
from .resources import Resources
from .retry import RetryTimers, backoff_delay_s, keep_for_retry
from .schedulers import Scheduler, make_scheduler
from .signals import SignalHandlers
from .status import JobErrorStrategy, JobOutcome, JobStatus
from .stopping import Stopper
from .workdir import WorkdirLock, lock_run, unlock_run

__all__ = ["Xqute"]

logger = logging.getLogger("xqute")


_DEFAULTS = {
    "workdir": "./.xqute",
    "submission_batch": None,
    "error_strategy": "ignore",
    "num_retries": 3,
    "forks": 1,
}


class Xqute:
    """Run jobs through a scheduler backend.

    Args:
        scheduler: a backend name ("local", "slurm", ...) or a Scheduler subclass.
        plugins: plugins for this engine: objects to enable, names to enable only
            them, or "+name"/"-name" to add to or remove from the global set.
        workdir: where each job's folder (``<workdir>/<index>``) goes.
        submission_batch: how many submissions may run at once (default: forks).
        error_strategy: "ignore", "retry" or "halt" (see JobErrorStrategy).
        num_retries: retries per job under "retry".
        forks: how many jobs may be in flight at once.
        scheduler_opts: backend options, e.g. ``{"timeout": 30}``.
        jobname_prefix: job names are ``<prefix>-<index>``.
        retry_backoff_s: first retry delay; doubles per retry, with jitter; 0 = none.
        retry_backoff_max_s: the longest retry delay.
    """

    def __init__(
        self,
        scheduler: str | type[Scheduler] = "local",
        plugins: Sequence[Any] | None = None,
        workdir: str = _DEFAULTS["workdir"],
        submission_batch: int | None = None,
        error_strategy: str | JobErrorStrategy = _DEFAULTS["error_strategy"],
        num_retries: int = _DEFAULTS["num_retries"],
        forks: int = _DEFAULTS["forks"],
        scheduler_opts: Mapping[str, Any] | None = None,
        jobname_prefix: str | None = None,
        *,
        retry_backoff_s: float = 1.0,
        retry_backoff_max_s: float = 60.0,
        **kwargs: Any,
    ) -> None:
        args = engine_args(
            {
                "workdir": workdir,
                "submission_batch": submission_batch,
                "error_strategy": error_strategy,
                "num_retries": num_retries,
                "forks": forks,
            },
            _DEFAULTS,
            kwargs,
            scheduler_opts,
            (retry_backoff_s, retry_backoff_max_s, jobname_prefix),
        )
        self.forks, self.num_retries = args.forks, args.num_retries
        self.error_strategy = args.error_strategy
        self.submission_batch = args.submission_batch
        self.retry_backoff_s, self.retry_backoff_max_s = args.retry_backoff_s
        self.scheduler: Scheduler = make_scheduler(
            scheduler,
            workdir=args.workdir,
            forks=self.forks,
            error_strategy=self.error_strategy,
            num_retries=self.num_retries,
            jobname_prefix=jobname_prefix,
            submission_batch=self.submission_batch,
            **args.scheduler_opts,
        )
        self.hooks = HookCaller(plugins)
        self.scheduler.hooks = self.hooks
        self.jobs: list[Job] = []

        self._loop: asyncio.AbstractEventLoop | None = None
        self._queue: asyncio.Queue[Job] | None = None
        self._done: asyncio.Event | None = None
        self._submit_slots: asyncio.Semaphore | None = None
        self._workers: list[asyncio.Task[None]] = []
        self._retries = RetryTimers(self._requeue)
        self._inflight: set[Job] = set()
        self._active = 0  # workers between taking a job and concluding it
        self._unfinished = 0  # fed jobs without a final outcome
        self._counts = {"succeeded": 0, "failed": 0, "skipped": 0, "retried": 0}
        self._feeding = False
        self._started = False
        self._start_lock = asyncio.Lock()
        self._closed = False
        self._stop = Stopper(self)
        self._error: BaseException | None = None
        self._signals = SignalHandlers()
        self._workdir_lock: WorkdirLock | None = None
        self._old_folders: set[int] = set()
        self.hooks.call("on_init", self)

    # ------------------------------------------------------------------ public
    async def feed(
        self,
        cmd: str | Sequence[Any] | Job,
        envs: Mapping[str, Any] | None = None,
        *,
        cwd: str | None = None,
        timeout_s: float | None = None,
        resources: Resources | Mapping[str, Any] | None = None,
    ) -> Job:
        """Queue a job: an argv list (passed literally) or a shell command string.

        A ``Job`` made by ``scheduler.create_job`` (xqute 2.x's way: pipen
        creates its jobs, prepares them, then feeds them) is queued as it is,
        ``envs`` added to its own.
        """
        if self._closed:
            raise XquteError("this Xqute has finished its run; create a new one")
        if self._stop.halting:  # nothing fed now would run
            if self._stop.signal is not None:
                raise Interrupted(self._stop.signal)
            raise XquteError("this Xqute halted (a job failed); it runs no more jobs")
        if not self._started:
            await self._start()
        kw = {"cwd": cwd, "timeout_s": timeout_s, "resources": resources}
        job = trial.new_job(self.scheduler, len(self.jobs), cmd, envs, **kw)
        if inspect.isawaitable(job):  # a scheduler of the 2.x surface
            job = await job
        self.jobs.append(job)
        self._unfinished += 1
        self._done.clear()  # type: ignore[union-attr]
        await self.hooks.acall("on_job_init", self.scheduler, job)
        job.advance(JobStatus.QUEUED)
        await self.hooks.acall("on_job_queued", self.scheduler, job)
        self._queue.put_nowait(job)  # type: ignore[union-attr]
        return job

    async def put(
        self, cmd: str | Sequence[Any], envs: Mapping[str, Any] | None = None
    ) -> Job:
        """Deprecated name of ``feed``."""
        import warnings

        warnings.warn(
            "Xqute.put() is deprecated; use feed()", DeprecationWarning, stacklevel=2
        )
        return await self.feed(cmd, envs)

    async def run_until_complete(self, keep_feeding: bool = False) -> None:
        """Wait for every fed job to end; with ``keep_feeding``, return at once and
        keep running jobs fed later, until ``stop_feeding()``."""
        if not self._started:
            await self._start()
        if keep_feeding:
            self._feeding = True
            return
        await self.stop_feeding()

    async def stop_feeding(self) -> None:
        """No more jobs will come: wait for the ones fed so far, then shut down."""
        if not self._started:
            await self._start()
        self._feeding = False
        try:
            self._check_done()
            await self._done.wait()  # type: ignore[union-attr]
        except asyncio.CancelledError:
            await asyncio.shield(self._stop.emergency_stop())
            raise
        finally:
            await asyncio.shield(self._shutdown())
        if self._error is not None:
            raise self._error
        if self._stop.signal is not None:
            raise Interrupted(self._stop.signal, self._stop.still_running)

    def is_feeding(self) -> bool:
        return self._feeding

    def counts(self) -> dict[str, int]:
        """Job counts now: total, queued, running, succeeded, failed, skipped,
        retried (failed trials that were run again)."""
        done = (
            self._counts["succeeded"] + self._counts["failed"] + self._counts["skipped"]
        )
        running = len(self._inflight)
        return {
            "total": len(self.jobs),
            "queued": len(self.jobs) - done - running,
            "running": running,
            **self._counts,
        }

    @property
    def halted(self) -> bool:
        """Whether the run stopped early (halt strategy, a signal, an error)."""
        return self._stop.halting

    # ------------------------------------------------------------------ run
    async def _start(self) -> None:
        async with self._start_lock:
            if self._started:
                return
            await self.scheduler.start()  # may fail (no bash ...): then nothing runs
            try:  # one run per workdir (see ``workdir.py``)
                self._workdir_lock, self._old_folders = lock_run(self.scheduler.workdir)
            except BaseException:
                await self.scheduler.aclose()
                raise
            self._loop = asyncio.get_running_loop()
            self._queue = asyncio.Queue()
            self._done = asyncio.Event()
            self._submit_slots = asyncio.Semaphore(self.submission_batch)
            self._started = True
        self._workers = [
            asyncio.create_task(self._worker(), name=f"xqute-worker-{i}")
            for i in range(self.forks)
        ]
        self._signals.install(self._loop, self._stop.on_signal)

    def _unlock_workdir(self) -> None:
        lock, self._workdir_lock = self._workdir_lock, None
        stale = self._old_folders - {job.index for job in self.jobs}
        unlock_run(lock, stale - self.scheduler.unfed_job_indices())

    async def _worker(self) -> None:
        queue = self._queue
        assert queue is not None
        while True:
            job = await queue.get()
            if self._stop.halting:
                continue  # stays QUEUED: never submitted
            self._active += 1
            try:
                await self._run_job(job)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # a plugin or backend bug: stop, report it
                if self._error is None:
                    self._error = exc
                logger.error("job %s: %s", job.index, exc)
                await self._stop.halt()
            finally:
                self._active -= 1
                self._check_done()

    async def _run_job(self, job: Job) -> None:
        sched, hooks = self.scheduler, self.hooks
        if hooks.vetoed(await hooks.acall("on_job_submitting", sched, job)):
            job.settle(decide(Evidence(skipped=True)))
            job.advance(JobStatus.FINISHED)
            self._counts["skipped"] += 1
            self._finish(job)
            return
        if self._stop.halting:
            return
        self._inflight.add(job)
        try:
            async with self._submit_slots:  # type: ignore[union-attr]
                if self._stop.halting:  # halted while this job waited for a slot
                    self._inflight.discard(job)
                    job.status = JobStatus.QUEUED  # never submitted
                    return
                submitted = await trial.submit(sched, job)
            if submitted:
                await trial.follow(sched, hooks, job, self._stop.kill)
        except Exception as exc:
            await trial.abort(sched, job, self._stop.kill, exc)
            job.ended_at = time.time()
            job.advance(JobStatus.FAILED)
            self._counts["failed"] += 1
            self._finish(job)
            raise
        finally:
            self._inflight.discard(job)
        await self._conclude(job)

    async def _conclude(self, job: Job) -> None:
        sched, hooks = self.scheduler, self.hooks
        outcome = job.outcome or JobOutcome.LOST
        job.ended_at = time.time()
        if not outcome.is_failure:
            job.advance(JobStatus.FINISHED)
            self._counts["succeeded"] += 1
            self._finish(job)
            await hooks.acall("on_job_succeeded", sched, job)
            return
        job.advance(JobStatus.FAILED)
        logger.debug(
            "job %s failed: %s (rc=%s) %s",
            job.index,
            outcome.value,
            job.rc,
            job.reason or "",
        )
        await hooks.acall("on_job_failed", sched, job)
        if self.will_retry(job) and keep_for_retry(job):
            self._counts["retried"] += 1
            delay_s = backoff_delay_s(
                job.trial_count, self.retry_backoff_s, self.retry_backoff_max_s
            )
            await hooks.acall("on_job_queued", sched, job)
            self._retries.add(job, delay_s)
            return
        self._counts["failed"] += 1
        self._finish(job)
        if (
            self.error_strategy is JobErrorStrategy.HALT
            and outcome is not JobOutcome.KILLED
        ):
            logger.error("job %s failed (%s); halting", job.index, outcome.value)
            await self._stop.halt()

    def will_retry(self, job: Job) -> bool:
        """Whether a job that just failed runs again: the retry strategy, a
        trial left, and neither a halt nor a kill by xqute (``on_job_failed``
        can tell its last trial by it)."""
        return (
            self.error_strategy is JobErrorStrategy.RETRY
            and job.trial_count < self.num_retries
            and not self._stop.halting
            and job.outcome is not JobOutcome.KILLED
        )

    def _requeue(self, job: Job) -> None:
        if not self._stop.halting:
            self._queue.put_nowait(job)  # type: ignore[union-attr]

    def _finish(self, job: Job) -> None:
        self._unfinished -= 1
        self._check_done()

    def _check_done(self) -> None:
        if self._done is None or self._feeding:
            return
        # a worker still concluding a job (awaiting its hooks) keeps the run open
        if self._stop.abandoned is not None or (
            self._active == 0 and (self._unfinished == 0 or self._stop.halting)
        ):
            self._done.set()

    # ------------------------------------------------------------------ stopping
    async def _shutdown(self) -> None:
        if self._closed:
            return
        self._closed = True
        await self._stop.settle(self._workers)
        self._retries.cancel()
        try:
            await self.scheduler.aclose()
        finally:
            self._signals.restore()
            self._unlock_workdir()
        if self._stop.signal is None:
            try:
                self.hooks.call("on_shutdown", self, None)
            except PluginError as exc:
                if self._error is None:
                    self._error = exc
