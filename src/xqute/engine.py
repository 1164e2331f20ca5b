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
import contextlib
import inspect
import logging
import signal
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from . import _log  # noqa: F401  (the NullHandler of xqute's logger)
from .deadline import wait_with_deadline
from .diskfull import disk_full_reason, is_disk_full
from .errors import ConfigError, Interrupted, PluginError, SubmitError, XquteError
from .hooks import HookCaller
from .job import Job, check_command
from .options import check_positive_int, merge_scheduler_opts, resolve_engine_kwargs
from .outcome import Evidence, decide
from .resources import Resources
from .retry import backoff_delay_s, check_backoff
from .schedulers import Scheduler, make_scheduler
from .signals import SignalHandlers
from .status import JobErrorStrategy, JobOutcome, JobStatus
from .workdir import WorkdirLock, clear_stale_folders, job_folders

__all__ = ["Xqute"]

logger = logging.getLogger("xqute")
ABANDON_CHECK_S = 3.0  # after a second signal: how long kills and checks may take


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
        args, opts_from_kwargs = resolve_engine_kwargs(
            {
                "workdir": workdir,
                "submission_batch": submission_batch,
                "error_strategy": error_strategy,
                "num_retries": num_retries,
                "forks": forks,
            },
            _DEFAULTS,
            kwargs,
        )
        self.forks = check_positive_int("forks", args["forks"])
        self.num_retries = check_positive_int("num_retries", args["num_retries"], 0)
        self.error_strategy = JobErrorStrategy.parse(args["error_strategy"])
        self.submission_batch = (
            check_positive_int("submission_batch", args["submission_batch"])
            if args["submission_batch"] is not None
            else self.forks
        )
        check_backoff(retry_backoff_s, retry_backoff_max_s)
        self.retry_backoff_s = float(retry_backoff_s)
        self.retry_backoff_max_s = float(retry_backoff_max_s)
        if jobname_prefix is not None and not isinstance(jobname_prefix, str):
            raise ConfigError(f"jobname_prefix {jobname_prefix!r} must be a string")

        self.scheduler: Scheduler = make_scheduler(
            scheduler,
            workdir=args["workdir"],
            forks=self.forks,
            error_strategy=self.error_strategy,
            num_retries=self.num_retries,
            jobname_prefix=jobname_prefix,
            submission_batch=self.submission_batch,
            **merge_scheduler_opts(scheduler_opts, opts_from_kwargs),
        )
        self.hooks = HookCaller(plugins)
        self.scheduler.hooks = self.hooks
        self.jobs: list[Job] = []

        self._loop: asyncio.AbstractEventLoop | None = None
        self._queue: asyncio.Queue[Job] | None = None
        self._done: asyncio.Event | None = None
        self._submit_slots: asyncio.Semaphore | None = None
        self._workers: list[asyncio.Task[None]] = []
        self._background: set[asyncio.Task[Any]] = set()
        self._retry_timers: dict[Job, asyncio.TimerHandle] = {}
        self._inflight: set[Job] = set()
        self._active = 0  # workers between taking a job and concluding it
        self._unfinished = 0  # fed jobs without a final outcome
        self._counts = {"succeeded": 0, "failed": 0, "skipped": 0, "retried": 0}
        self._feeding = False
        self._started = False
        self._start_lock = asyncio.Lock()
        self._closed = False
        self._halting = False
        self._signal: int | None = None
        # jobs in flight when a second signal ended the run without their end
        self._abandoned: list[Job] | None = None
        self._still_running: list[Job] = []
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
        if self._halting:  # nothing fed now would run
            if self._signal is not None:
                raise Interrupted(self._signal)
            raise XquteError("this Xqute halted (a job failed); it runs no more jobs")
        if not self._started:
            await self._start()
        if isinstance(cmd, Job):
            job = cmd
            job.add_envs(envs)
        else:
            check_command(cmd)
            job = self.scheduler.create_job(
                len(self.jobs),
                cmd,
                envs,
                cwd=cwd,
                timeout_s=timeout_s,
                resources=resources,
            )
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
            await asyncio.shield(self._emergency_stop())
            raise
        finally:
            await asyncio.shield(self._shutdown())
        if self._error is not None:
            raise self._error
        if self._signal is not None:
            raise Interrupted(self._signal, self._still_running)

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
        return self._halting

    # ------------------------------------------------------------------ run
    async def _start(self) -> None:
        async with self._start_lock:
            if self._started:
                return
            await self.scheduler.start()  # may fail (no bash ...): then nothing runs
            try:
                self._lock_workdir()
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
        self._signals.install(self._loop, self._on_signal)

    def _lock_workdir(self) -> None:
        """One run per workdir (see ``workdir.py``); a local workdir only."""
        workdir = self.scheduler.workdir
        if not isinstance(workdir, Path):
            return
        lock = WorkdirLock(workdir)
        lock.acquire()
        self._workdir_lock = lock
        self._old_folders = job_folders(workdir)

    def _unlock_workdir(self) -> None:
        lock, self._workdir_lock = self._workdir_lock, None
        if lock is None:
            return
        stale = self._old_folders - {job.index for job in self.jobs}
        stale -= self.scheduler.unfed_job_indices()
        if stale:  # an older, longer run's: not to be taken for this run's
            clear_stale_folders(lock.workdir, stale)
        lock.release()

    async def _worker(self) -> None:
        queue = self._queue
        assert queue is not None
        while True:
            job = await queue.get()
            if self._halting:
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
                await self._halt()
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
        if self._halting:
            return
        self._inflight.add(job)
        try:
            try:
                async with self._submit_slots:  # type: ignore[union-attr]
                    if self._halting:  # halted while this job waited for a slot
                        self._inflight.discard(job)
                        job.status = JobStatus.QUEUED  # never submitted
                        return
                    await sched.submit(job)
                if job.status is JobStatus.KILLING:
                    await sched.kill_jobs([job])  # killed while being submitted
            except SubmitError as exc:
                job.settle(decide(Evidence(submit_error=str(exc))))
                job.append_stderr(f"xqute: {exc}\n")
            else:
                await hooks.acall("on_job_submitted", sched, job)
                observation = await wait_with_deadline(sched, job, self._kill)
                job.settle(sched.ending(job, observation))
                if job.rc is not None and job.status < JobStatus.RUNNING:
                    await sched.mark_running(job)  # it ran between two polls
        except Exception as exc:
            await self._abort(job, exc)
            raise
        finally:
            self._inflight.discard(job)
        await self._conclude(job)

    async def _abort(self, job: Job, exc: Exception) -> None:
        """A plugin or backend failed mid-job: leave the job neither running nor
        unaccounted for."""
        sched = self.scheduler
        if job.status >= JobStatus.SUBMITTED and not job.is_done:
            with contextlib.suppress(Exception):
                await self._kill([job])
                await asyncio.wait_for(sched.wait_done(job), sched.kill_grace_s + 5)
        job.settle(decide(Evidence(error=str(exc), rc_file=job.read_rc_file())))
        job.ended_at = time.time()
        job.advance(JobStatus.FAILED)
        self._counts["failed"] += 1
        self._finish(job)

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
        if self.will_retry(job) and _reset_for_retry(job):
            self._counts["retried"] += 1
            delay_s = backoff_delay_s(
                job.trial_count, self.retry_backoff_s, self.retry_backoff_max_s
            )
            await hooks.acall("on_job_queued", sched, job)
            if delay_s > 0:
                self._retry_timers[job] = self._loop.call_later(  # type: ignore[union-attr]
                    delay_s, self._requeue, job
                )
            else:
                self._queue.put_nowait(job)  # type: ignore[union-attr]
            return
        self._counts["failed"] += 1
        self._finish(job)
        if (
            self.error_strategy is JobErrorStrategy.HALT
            and outcome is not JobOutcome.KILLED
        ):
            logger.error("job %s failed (%s); halting", job.index, outcome.value)
            await self._halt()

    def will_retry(self, job: Job) -> bool:
        """Whether a job that just failed runs again: the retry strategy, a
        trial left, and neither a halt nor a kill by xqute (``on_job_failed``
        can tell its last trial by it)."""
        return (
            self.error_strategy is JobErrorStrategy.RETRY
            and job.trial_count < self.num_retries
            and not self._halting
            and job.outcome is not JobOutcome.KILLED
        )

    def _requeue(self, job: Job) -> None:
        self._retry_timers.pop(job, None)
        if not self._halting:
            self._queue.put_nowait(job)  # type: ignore[union-attr]

    def _finish(self, job: Job) -> None:
        self._unfinished -= 1
        self._check_done()

    def _check_done(self) -> None:
        if self._done is None or self._feeding:
            return
        # a worker still concluding a job (awaiting its hooks) keeps the run open
        if self._abandoned is not None or (
            self._active == 0 and (self._unfinished == 0 or self._halting)
        ):
            self._done.set()

    # ------------------------------------------------------------------ stopping
    async def _halt(self) -> None:
        """Submit nothing more and kill every job in flight."""
        if self._halting:
            return
        self._halting = True
        for timer in self._retry_timers.values():
            timer.cancel()
        self._retry_timers.clear()
        await self._kill(list(self._inflight))
        self._check_done()

    async def _kill(self, jobs: Sequence[Job]) -> None:
        sched, hooks = self.scheduler, self.hooks
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

    def _on_signal(self, signum: int) -> None:
        if self._signal is not None:
            self._abandon(signum)
            return
        try:
            answers = self.hooks.call("on_shutdown", self, signal.Signals(signum))
        except PluginError as exc:
            logger.error("%s", exc)
            answers = []
        if self.hooks.vetoed(answers):
            logger.warning(
                "%s ignored: a plugin cancelled the shutdown",
                signal.Signals(signum).name,
            )
            return
        logger.warning(
            "%s received: killing %d job(s) in flight",
            signal.Signals(signum).name,
            len(self._inflight),
        )
        self._signal = signum
        self._spawn(self._halt())

    def _abandon(self, signum: int) -> None:
        """A second signal: kill the jobs in flight at once (no grace) and end
        the run without waiting for them, whatever their backend does."""
        if self._abandoned is not None:
            return
        self._abandoned = [job for job in self._inflight if not job.is_done]
        logger.warning(
            "%s again: killing %d job(s) at once and not waiting for them",
            signal.Signals(signum).name,
            len(self._abandoned),
        )
        self._spawn(self.scheduler.kill_jobs(self._abandoned))
        self._check_done()

    async def _find_still_running(self) -> list[Job]:
        """Of the abandoned jobs, those the backend still says run (all of them
        if it cannot say within a few seconds)."""
        jobs = [job for job in self._abandoned or () if job.jid is not None]

        async def runs(job: Job) -> bool:
            try:
                return await self.scheduler.job_is_running(job)
            except Exception:  # cannot tell: say it may
                return True

        try:
            found = await asyncio.wait_for(
                asyncio.gather(*(runs(job) for job in jobs)), ABANDON_CHECK_S
            )
        except TimeoutError:
            return jobs
        return [job for job, running in zip(jobs, found, strict=True) if running]

    def _spawn(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _emergency_stop(self) -> None:
        """Our caller was cancelled: leave nothing running."""
        self._halting = True
        with contextlib.suppress(Exception):
            await self._kill(list(self._inflight))

    async def _shutdown(self) -> None:
        if self._closed:
            return
        self._closed = True
        for worker in self._workers:
            worker.cancel()
        if self._abandoned is not None and self._background:
            # give the kills a moment, no more
            await asyncio.wait(self._background, timeout=ABANDON_CHECK_S)
            for task in self._background:
                task.cancel()
        await asyncio.gather(*self._workers, *self._background, return_exceptions=True)
        if self._abandoned is not None:
            self._still_running = await self._find_still_running()
        for timer in self._retry_timers.values():
            timer.cancel()
        self._retry_timers.clear()
        try:
            await self.scheduler.aclose()
        finally:
            self._signals.restore()
            self._unlock_workdir()
        if self._signal is None:
            try:
                self.hooks.call("on_shutdown", self, None)
            except PluginError as exc:
                if self._error is None:
                    self._error = exc


def _reset_for_retry(job: Job) -> bool:
    """Keep a failed trial's files and make the job ready to run again; False
    (the job stays failed, saying why) when its files cannot be moved."""
    try:
        job.reset_for_retry()
    except OSError as exc:
        what = f"job {job.index} cannot keep its files for a retry"
        job.reason = (
            disk_full_reason(exc, what) if is_disk_full(exc) else f"{what}: {exc}"
        )
        logger.error("%s", job.reason)
        return False
    return True
