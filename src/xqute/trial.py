"""An engine's job on its backend: made (``new_job``), then each trial handed to
the backend, followed to its end and settled (``outcome.decide``, through
``Job.settle``).

The engine calls these around its own bookkeeping (the submission slots, the
jobs in flight, the error strategy); ``kill`` is the engine's kill, which asks
the plugins first. A submission that failed, an end the backend reported, and
an error that stopped the trial each settle the job once.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

from .deadline import wait_with_deadline
from .errors import SubmitError
from .hooks import HookCaller
from .job import Job, check_command
from .outcome import Evidence, decide
from .schedulers import Scheduler
from .status import JobStatus

__all__ = ["abort", "follow", "new_job", "submit"]

Kill = Callable[[Sequence[Job]], Awaitable[None]]


def new_job(
    sched: Scheduler, index: int, cmd: Any, envs: Mapping[str, Any] | None, **kw: Any
) -> Job | Awaitable[Job]:
    """The job ``Xqute.feed`` queues: made by the backend from a command (an
    awaitable with a scheduler of the 2.x surface), or one it made before
    (xqute 2.x's way: pipen creates its jobs with ``scheduler.create_job``,
    prepares them, then feeds them), ``envs`` added. Not a coroutine: feeding
    100,000 jobs pays for each call."""
    if isinstance(cmd, Job):
        cmd.add_envs(envs)
        return cmd
    if not cmd or (isinstance(cmd, str) and not cmd.strip()):
        check_command(cmd)  # feed refuses an empty command (a Job takes one)
    return sched.create_job(index, cmd, envs, **kw)


async def submit(sched: Scheduler, job: Job) -> bool:
    """Submit ``job``; False (it is settled as ``submit_failed``, why in its
    stderr) when it could not be."""
    try:
        await sched.submit(job)
    except SubmitError as exc:
        job.settle(decide(Evidence(submit_error=str(exc))))
        job.append_stderr(f"xqute: {exc}\n")
        return False
    return True


async def follow(sched: Scheduler, hooks: HookCaller, job: Job, kill: Kill) -> None:
    """Follow a submitted job to its end (its time limit enforced) and settle
    how it ended."""
    if job.status is JobStatus.KILLING:
        await sched.kill_jobs([job])  # killed while it was being submitted
    await hooks.acall("on_job_submitted", sched, job)
    observation = await wait_with_deadline(sched, job, kill)
    job.settle(sched.ending(job, observation))
    if job.rc is not None and job.status < JobStatus.RUNNING:
        await sched.mark_running(job)  # it ran between two polls


async def abort(sched: Scheduler, job: Job, kill: Kill, exc: Exception) -> None:
    """A plugin or backend failed mid-trial: leave the job neither running nor
    unsettled (killed, with the rc its wrapper wrote, if any)."""
    if job.status >= JobStatus.SUBMITTED and not job.is_done:
        with contextlib.suppress(Exception):
            await kill([job])
            await asyncio.wait_for(sched.wait_done(job), sched.kill_grace_s + 5)
    job.settle(decide(Evidence(error=str(exc), rc_file=job.read_rc_file())))
