"""Running one queue job through an engine backend, or following one adopted
from a dead worker, until it ends; and killing either kind.

A claimed job becomes an engine ``Job`` whose index is the queue id and whose
folder is ``<workdir>/<id>``; the backend's ``submit``/``wait_done``/
``job_result``/``kill_jobs`` do the rest, exactly as in the engine, so any
registered backend works. A job adopted from a dead worker goes through the same
backend calls with the native id that worker recorded: the local backend follows
and kills a process it did not start (checking that the pid still runs the job's
script), a cluster backend polls its job id. Local jobs run in sessions of their
own and without the orphan guard: they outlive the pool, and a restarted pool
adopts them.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

from ..deadline import wait_with_deadline
from ..diskfull import disk_full_reason, is_disk_full
from ..errors import SubmitError
from ..job import Job
from ..outcome import QueueState, queue_ending
from ..schedulers import Scheduler
from ..status import JobOutcome, JobStatus
from . import claims
from .claims import ClaimedJob, Finished, Started
from .db import Database
from .exports import split_env
from .schema import FAILED
from .snapshot import Preempt

__all__ = [
    "Flight",
    "JobRunner",
    "local_pid",
    "local_pids",
    "record_usage",
    "sample_usage",
]

#: where a workflow task writes its output ($XQUTE_OUTPUT), in its job's folder
#: (read by ``orchestration/advance.py``)
OUTPUT_FILE = "output"


@dataclass(slots=True)
class Flight:
    """A job in flight in this pool."""

    claimed: ClaimedJob
    job: Job | None = None
    #: why we are killing it: "cancel" (a user asked), "stop" (stop --now),
    #: "preempt" (for ``preempt``, then re-queued or cancelled: ``on_preempt``)
    kill_reason: str | None = None
    task: asyncio.Task[None] | None = field(default=None, repr=False)
    preempt: Preempt | None = None
    on_preempt: str = "requeue"


class JobRunner:
    """Runs jobs of one pool through its backend.

    ``local``: the backend runs jobs as processes of this machine: they get
    the pool's device indexes (``CUDA_VISIBLE_DEVICES``, pinned cpus), private
    folders, and their pid recorded.
    """

    def __init__(
        self, backend: Scheduler, local: bool, on_started: Callable[[Started], None]
    ) -> None:
        self.backend = backend
        self.local = local
        self.on_started = on_started
        self._pin_lock = asyncio.Lock()

    # ------------------------------------------------------------------ run
    def make_job(self, cj: ClaimedJob) -> Job:
        envs, exact = split_env(cj.env)  # exact: the submitter's, and only it
        if self.local:
            # the job sees only its GPUs (none when it asked for none)
            envs["CUDA_VISIBLE_DEVICES"] = ",".join(map(str, cj.gpu_ids))
            if cj.cpu_ids:
                envs["XQUTE_CPU_IDS"] = ",".join(map(str, cj.cpu_ids))
        resources: dict[str, Any] = {"cpus": cj.cpus, "gpus": cj.gpus}
        if cj.mem_mb:
            resources["mem_mb"] = cj.mem_mb
        if cj.timeout_s:
            resources["time_limit_s"] = cj.timeout_s
        # a job without a working dir runs in its own folder
        cwd = cj.working_dir or cj.job_dir
        job = self.backend.create_job(
            cj.id, cj.command, envs, cwd=cwd, timeout_s=cj.timeout_s,
            resources=resources,
        )  # fmt: skip
        if cj.job_dir and os.path.dirname(cj.job_dir) != str(job.workdir):
            # adopted from a pool with another workdir: its files are there (set
            # before anything asks for the job's metadir, which derives from it)
            job.workdir = Path(cj.job_dir).parent
        job.inherit_env = not exact
        if cj.run_id is not None:  # a workflow task: where it writes its output
            metadir = self.backend.script_paths(job)[1]
            job.envs = {**(job.envs or {}), "XQUTE_OUTPUT": f"{metadir}/{OUTPUT_FILE}"}
        return job

    async def run(self, flight: Flight) -> Finished:
        """Submit a claimed job, wait for its end, say how it ended."""
        cj = flight.claimed
        job = flight.job = self.make_job(cj)
        try:
            if self.local and cj.run_id is not None:
                # a re-queued task's old output goes (the folder, user-only, is
                # made or cleared by the submission: ``Job.prepare_metadir``)
                with contextlib.suppress(FileNotFoundError, NotADirectoryError):
                    os.unlink(job.metadir / OUTPUT_FILE)
            await self._submit(job, cj.cpu_ids)
        except (SubmitError, OSError) as exc:
            reason = str(exc)
            if isinstance(exc, OSError):
                what = f"job {cj.id} cannot clear its output in {job.metadir}"
                full = is_disk_full(exc)
                reason = disk_full_reason(exc, what) if full else f"{what}: {exc}"
            job.append_stderr(f"xqute: {reason}\n")
            return Finished(cj.id, FAILED, None, reason, time.time())
        pid = local_pid(job) if self.local else None
        self.on_started(Started(cj.id, pid, job.jid))
        if flight.kill_reason is not None:  # cancelled while it was submitted
            await self.kill(flight)
        observation = await wait_with_deadline(self.backend, job, self._kill_jobs)
        end = self.backend.ending(job, observation)
        return self.conclude(flight, end.rc, end.outcome, end.reason)

    async def _submit(self, job: Job, cpu_ids: tuple[int, ...]) -> None:
        if not cpu_ids:
            await self.backend.submit(job)
            return
        # The wrapper inherits the affinity of the thread that forks it: pin this
        # thread for the fork, under a lock so no other job forks meanwhile.
        async with self._pin_lock:
            before = os.sched_getaffinity(0)
            os.sched_setaffinity(0, cpu_ids)
            try:
                await self.backend.submit(job)
            finally:
                os.sched_setaffinity(0, before)

    def conclude(
        self, flight: Flight, rc: int | None, outcome: JobOutcome, reason: str | None
    ) -> Finished:
        """The final state by ``outcome.queue_ending``: completed, timeout,
        preempted, cancelled (we killed it on request) or failed."""
        cj = flight.claimed
        preempted = None
        if flight.preempt is not None:
            preempted = (flight.preempt.reason, flight.on_preempt == "requeue")
        state, rc, text = queue_ending(
            outcome, rc, reason, flight.kill_reason, cj.timeout_s, preempted
        )
        by = None  # the job that preempted it, if it was
        preempting = flight.kill_reason == "preempt" and flight.preempt is not None
        if preempting and state in (QueueState.PENDING, QueueState.CANCELLED):
            by = flight.preempt.for_job  # type: ignore[union-attr]
        return Finished(cj.id, state, rc, text, time.time(), preempted_by=by)

    # ------------------------------------------------------------------ adopted
    async def adopt(self, cj: ClaimedJob) -> Job:
        """The engine job of a job a dead worker started, with the native id it
        recorded (a local job's wrapper wrote its pid in job.jid, in case the
        worker died before recording it)."""
        job = self.make_job(cj)
        job.jid = cj.native_id
        if job.jid is None and self.local:
            job.jid = await job.get_jid()
        job.advance(JobStatus.SUBMITTED)
        job.started_at = cj.started_at
        return job

    async def still_runs(self, job: Job) -> bool:
        """Whether an adopted job may still run: a local one is asked of the
        backend (pid + script, so a reused pid is not taken for it); a job of
        another backend with a native id is followed by its poller, which also
        finds its end if it is over."""
        if job.jid is None:
            return False
        return await self.backend.job_is_running(job) if self.local else True

    async def follow(self, flight: Flight) -> Finished:
        """Follow an adopted job (``flight.job``, from ``adopt``) to its end."""
        job = flight.job
        assert job is not None
        started = job.started_at
        await self.backend.mark_running(job)
        if self.local and started:  # a local job started when it was claimed
            job.started_at = started  # (for the deadline backstop)
        observation = await wait_with_deadline(self.backend, job, self._kill_jobs)
        end = self.backend.ending(job, observation)
        return self.conclude(flight, end.rc, end.outcome, end.reason)

    # ------------------------------------------------------------------ kill
    async def kill(self, flight: Flight, grace_s: float | None = None) -> None:
        """Kill a job's whole process tree through its backend (started here or
        adopted: the backend kills both): one SIGTERM, SIGKILL after ``grace_s``
        (default: the backend's ``kill_grace_s``) if it is still alive."""
        if flight.job is not None and flight.job.jid is not None:
            await self._kill_jobs([flight.job], grace_s)

    async def _kill_jobs(self, jobs: list[Job], grace_s: float | None = None) -> None:
        for job in jobs:
            job.advance(JobStatus.KILLING)
        await self.backend.kill_jobs(jobs, grace_s)


def local_pids(flights: Mapping[int, Flight]) -> dict[int, int]:
    """job id -> pid of the local jobs in flight."""
    pids = {}
    for job_id, flight in list(flights.items()):
        pid = local_pid(flight.job) if flight.job is not None else None
        if pid:
            pids[job_id] = pid
    return pids


def record_usage(db: Database, pids: Mapping[int, int]) -> None:
    """Sample what the running local jobs use (db thread: psutil blocks)."""
    usage = [
        (job_id, *sample)
        for job_id, pid in pids.items()
        if (sample := sample_usage(pid)) is not None
    ]
    if usage:
        claims.record_usage(db, usage)


def sample_usage(pid: int) -> tuple[int, float] | None:
    """(RSS MB, cpu seconds) of a local job's process tree now: the wrapper, its
    descendants, and the children it has reaped. None once it is gone."""
    try:
        root = psutil.Process(pid)
        procs = [root, *root.children(recursive=True)]
    except psutil.Error:
        return None
    rss = cpu = 0.0
    for proc in procs:
        try:
            with proc.oneshot():
                rss += proc.memory_info().rss
                times = proc.cpu_times()
                cpu += times.user + times.system
                cpu += times.children_user + times.children_system
        except psutil.Error:
            continue
    return int(rss / (1024 * 1024)), round(cpu, 2)


def local_pid(job: Job) -> int | None:
    """The pid a local backend gave as the job's native id."""
    return int(job.jid) if job.jid and job.jid.isdigit() else None
