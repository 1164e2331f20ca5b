"""The engine's backstop for per-job time limits.

A job's wrapper enforces its timeout itself (watchdog, TERM, then KILL). The
engine steps in only when a job outlives timeout + kill grace + a slack, counted
from when the job started running (a cluster job may wait in a queue for hours
first): a wrapper that cannot act, a node that froze. Then the job is killed
through the backend and reported as timed out either way.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING

from .job import Job
from .outcome import Observation, Seen
from .status import JobOutcome

if TYPE_CHECKING:
    from .schedulers.base import Scheduler

__all__ = ["DEADLINE_SLACK_S", "wait_with_deadline"]

logger = logging.getLogger("xqute")
DEADLINE_SLACK_S = 10.0


async def wait_with_deadline(
    scheduler: Scheduler,
    job: Job,
    kill: Callable[[Sequence[Job]], Awaitable[None]],
) -> Observation | None:
    """``scheduler.wait_done(job)``, killing the job with ``kill`` if it runs
    past its time limit."""
    timeout_s = scheduler.job_timeout_s(job)
    if not timeout_s:
        return await scheduler.wait_done(job)
    waiting = asyncio.ensure_future(scheduler.wait_done(job))
    try:
        limit_s = timeout_s + scheduler.kill_grace_s + DEADLINE_SLACK_S
        while True:
            started = job.started_at
            left_s = (
                limit_s - (time.time() - started)
                if started
                else scheduler.poll_interval_s
            )
            done, _ = await asyncio.wait({waiting}, timeout=max(left_s, 0.01))
            if done:
                return waiting.result()
            if started and time.time() - started >= limit_s:
                break
        logger.warning(
            "job %s outlived its %ss time limit; killing it", job.index, timeout_s
        )
        await kill([job])
        done, _ = await asyncio.wait(
            {waiting}, timeout=scheduler.kill_grace_s + DEADLINE_SLACK_S
        )
        observation = waiting.result() if done else None
        return Observation(
            Seen.DONE,
            JobOutcome.TIMEOUT,
            f"exceeded its time limit of {timeout_s:g}s",
            observation.rc if observation else None,
        )
    finally:
        if not waiting.done():
            waiting.cancel()
