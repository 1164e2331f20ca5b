"""Retry backoff: exponential, capped, with jitter (shared by engine and queue).

Jitter keeps a thousand jobs that failed together (a full disk, a flapping
controller) from coming back together.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable

from . import checks
from .diskfull import disk_full_reason, is_disk_full
from .job import Job

__all__ = ["RetryTimers", "backoff_delay_s", "check_backoff", "keep_for_retry"]

logger = logging.getLogger("xqute")


def check_backoff(base_s: float, max_s: float) -> None:
    checks.seconds("retry_backoff_s", base_s, zero_ok=True)
    checks.seconds("retry_backoff_max_s", max_s, zero_ok=True)


def backoff_delay_s(
    retry: int, base_s: float, max_s: float, rng: random.Random | None = None
) -> float:
    """Seconds to wait before retry number ``retry`` (1, 2, ...).

    ``base_s * 2**(retry-1)``, capped at ``max_s``, then drawn uniformly from the
    upper half of that ("equal jitter"); 0 when ``base_s`` is 0.
    """
    if base_s <= 0 or retry < 1:
        return 0.0
    cap = min(max_s, base_s * 2.0 ** min(retry - 1, 62))
    return cap / 2 + (rng or random).uniform(0, cap / 2)


def keep_for_retry(job: Job) -> bool:
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


class RetryTimers:
    """Failed jobs waiting out their backoff before they are queued again
    (``put``) on the running loop; a halt cancels them all."""

    def __init__(self, put: Callable[[Job], None]) -> None:
        self._put = put
        self._timers: dict[Job, asyncio.TimerHandle] = {}

    def add(self, job: Job, delay_s: float) -> None:
        if delay_s <= 0:
            self._put(job)
            return
        loop = asyncio.get_running_loop()
        self._timers[job] = loop.call_later(delay_s, self._due, job)

    def _due(self, job: Job) -> None:
        self._timers.pop(job, None)
        self._put(job)

    def cancel(self) -> None:
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()
