"""Running one queue job through an engine backend, or following one adopted
from a dead worker, until it ends; and killing either kind.

A claimed job becomes an engine ``Job`` whose index is the queue id and whose
folder is ``<workdir>/<id>``; the backend's ``submit``/``wait_done``/
``job_result``/``kill_jobs`` do the rest, exactly as in the engine, so any
registered backend works. Local jobs run in sessions of their own and without
the orphan guard: they outlive the pool, and a restarted pool adopts them
(``follow_local``: a pidfd, else polling, on the recorded pid + create time).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

from ..deadline import wait_with_deadline
from ..errors import SubmitError
from ..job import Job
from ..schedulers import Scheduler
from ..status import JobOutcome, JobStatus
from .claims import ClaimedJob, Finished, Started
from .schema import CANCELLED, COMPLETED, FAILED, TIMEOUT

__all__ = ["Flight", "JobRunner"]

logger = logging.getLogger("xqute.queue")
_HAS_PIDFD = hasattr(os, "pidfd_open")


@dataclass(slots=True)
class Flight:
    """A job in flight in this pool."""

    claimed: ClaimedJob
    job: Job | None = None
    #: why we are killing it: "cancel" (a user asked), "stop" (stop --now)
    kill_reason: str | None = None
    adopted_pid: int | None = None
    task: asyncio.Task[None] | None = field(default=None, repr=False)
    escalation: asyncio.TimerHandle | None = field(default=None, repr=False)

    def done(self) -> None:
        """The job ended: a pending SIGKILL must not hit a reused process group."""
        if self.escalation is not None:
            self.escalation.cancel()
            self.escalation = None


class JobRunner:
    """Runs jobs of one pool through its backend."""

    def __init__(
        self,
        backend: Scheduler,
        local: bool,
        assign_devices: bool,
        on_started: Callable[[Started], None],
    ) -> None:
        self.backend = backend
        self.local = local
        self.assign_devices = assign_devices
        self.on_started = on_started
        self._pin_lock = asyncio.Lock()

    # ------------------------------------------------------------------ run
    def make_job(self, cj: ClaimedJob) -> Job:
        envs = dict(cj.env or {})
        if self.assign_devices:
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
        if cj.job_dir and str(job.metadir) != cj.job_dir:
            # adopted from a pool with another workdir: its files are there
            job.workdir = Path(cj.job_dir).parent
            job._metadir = None
        return job

    async def run(self, flight: Flight) -> Finished:
        """Submit a claimed job, wait for its end, say how it ended."""
        cj = flight.claimed
        job = flight.job = self.make_job(cj)
        try:
            await self._submit(job, cj.cpu_ids)
        except SubmitError as exc:
            job.append_stderr(f"xqute: {exc}\n")
            return Finished(cj.id, FAILED, None, str(exc), time.time())
        pid = _int_or_none(job.jid) if self.local else None
        self.on_started(
            Started(cj.id, pid, _create_time(pid) if pid else None, job.jid)
        )
        if flight.kill_reason is not None:  # cancelled while it was submitted
            await self.kill(flight)
        observation = await wait_with_deadline(self.backend, job, self._kill_jobs)
        rc, outcome, reason = self.backend.job_result(job, observation)
        return self.conclude(flight, rc, outcome, reason)

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
        """The final state: completed, timeout, cancelled (we killed it on request)
        or failed (anything else, with the reason)."""
        cj, now = flight.claimed, time.time()
        if outcome is JobOutcome.SUCCEEDED:
            return Finished(cj.id, COMPLETED, rc, None, now)
        if outcome is JobOutcome.TIMEOUT:
            limit = f"{cj.timeout_s:g}s" if cj.timeout_s else "its time limit"
            return Finished(cj.id, TIMEOUT, rc, f"ran past {limit}", now)
        if flight.kill_reason == "cancel":
            return Finished(cj.id, CANCELLED, rc, "cancelled while running", now)
        if flight.kill_reason == "stop":
            return Finished(
                cj.id, CANCELLED, rc, "killed by the pool's stop(now=True)", now
            )
        if outcome is JobOutcome.FAILED and reason is None:
            return Finished(cj.id, FAILED, rc, None, now)  # its rc says it all
        text = outcome.value if reason is None else f"{outcome.value}: {reason}"
        return Finished(cj.id, FAILED, rc, text, now)

    # ------------------------------------------------------------------ adopted
    async def follow(self, flight: Flight) -> Finished:
        """Follow a job a dead worker started, to its end."""
        cj = flight.claimed
        job = flight.job = self.make_job(cj)
        job.jid = cj.native_id
        job.advance(JobStatus.SUBMITTED)
        job.started_at = cj.started_at
        if self.local:
            assert flight.adopted_pid is not None
            await follow_local(flight.adopted_pid)
            observation = None
        else:
            await self.backend.mark_running(job)
            observation = await wait_with_deadline(self.backend, job, self._kill_jobs)
        rc, outcome, reason = self.backend.job_result(job, observation)
        return self.conclude(flight, rc, outcome, reason)

    # ------------------------------------------------------------------ kill
    async def kill(self, flight: Flight) -> None:
        """Kill a job's whole process tree through its backend (or its process
        group, for a local job this pool adopted rather than started)."""
        if flight.adopted_pid is not None:
            flight.escalation = kill_group(
                flight.adopted_pid, self.backend.kill_grace_s
            )
        elif flight.job is not None and flight.job.jid is not None:
            await self._kill_jobs([flight.job])

    async def _kill_jobs(self, jobs: list[Job]) -> None:
        for job in jobs:
            job.advance(JobStatus.KILLING)
        await self.backend.kill_jobs(jobs)


# ---------------------------------------------------------------------- local
def local_process(
    pid: int | None, create_time: float | None, job_dir: str | None, backend: str
) -> int | None:
    """The pid of a local job's wrapper if it still runs (pid reuse excluded by
    the recorded create time, or by the wrapper script on its command line)."""
    if pid is None and job_dir:  # crashed before recording it: the wrapper wrote it
        with contextlib.suppress(OSError, ValueError):
            pid = int((Path(job_dir) / "job.jid").read_text().strip())
    if not pid:
        return None
    try:
        proc = psutil.Process(pid)
        if proc.status() == psutil.STATUS_ZOMBIE:
            return None
        if create_time is not None:
            return pid if abs(proc.create_time() - create_time) < 1.0 else None
        script = str(Path(job_dir or "") / f"job.wrapped.{backend}")
        return pid if script in proc.cmdline() else None
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return None


async def follow_local(pid: int) -> None:
    """Return when a process that is not our child exits."""
    if _HAS_PIDFD:
        try:
            fd = os.pidfd_open(pid)
        except OSError:
            return  # already gone
        exited = asyncio.Event()
        loop = asyncio.get_running_loop()
        loop.add_reader(fd, exited.set)
        try:
            await exited.wait()
        finally:
            loop.remove_reader(fd)
            os.close(fd)
        return
    while True:
        try:
            if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
                return
        except psutil.NoSuchProcess:
            return
        await asyncio.sleep(0.2)


def kill_group(pgid: int, grace_s: float) -> asyncio.TimerHandle:
    """SIGTERM a process group now, SIGKILL it after the grace (a local job's
    wrapper leads its group, so this is its whole tree)."""
    _killpg(pgid, signal.SIGTERM)
    return asyncio.get_running_loop().call_later(
        grace_s + 1.0, _killpg, pgid, signal.SIGKILL
    )


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


def _killpg(pgid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def _create_time(pid: int) -> float | None:
    try:
        return psutil.Process(pid).create_time()
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return None


def _int_or_none(text: str | None) -> int | None:
    return int(text) if text and text.isdigit() else None
