"""Crash recovery: nothing stays "running" after its worker died.

When a pool starts, and every few seconds while it runs, it looks for workers
that are gone: a worker on this host whose process (pid + create time) no longer
exists, or any worker whose heartbeat is older than ``stale_after_s``. It adopts
their running jobs (one conditional UPDATE, so two survivors never both adopt a
job), then for each:

1. the job still runs (asked of the backend with the native id the dead worker
   recorded: for a local job, its pid must still run the job's script, so a
   reused pid is not taken for it; a cluster job is followed by its poller) ->
   re-attach: follow it through the backend to its end, which its rc file
   (``job.rc``) tells;
2. it has ended and left ``job.rc`` -> record how it ended (completed, failed,
   timeout), without running it again; a ``job.rc`` that holds no exit code
   (garbage) -> failed, saying so;
3. it left nothing (the worker died before starting it, or the job was SIGKILLed
   with it) -> ``recovery_policy``: "requeue" (default) puts it back to pending
   (it runs again, from scratch); "fail" records it failed. A job requeued
   ``max_attempts`` times is failed instead, so a job that kills its pool
   cannot loop forever.

A job the dead worker was preempting (``preempt``) is still being preempted:
if it ended, or left nothing, it is re-queued or cancelled as its class says
(``on_preempt``), not failed; if it still runs, the adopting pool kills it
again (``preemption.py``).

Workers are the queue's own processes: one on this host is gone when its pid
with the recorded create time no longer runs (``process_alive``).
"""

from __future__ import annotations

import socket
from collections.abc import Iterable, Sequence
from typing import Any

from ..errors import ConfigError
from ..processes import process_alive
from ..status import JobOutcome
from .claims import ClaimedJob, Finished
from .runner import Flight, JobRunner
from .schema import CANCELLED, FAILED, PENDING
from .snapshot import Preempt

__all__ = ["RECOVERY_POLICIES", "check_recovery_policy", "dead_workers", "triage"]

RECOVERY_POLICIES = ("requeue", "fail")
HOST = socket.gethostname()


def check_recovery_policy(value: str) -> str:
    if value not in RECOVERY_POLICIES:
        raise ConfigError.choice("recovery_policy", value, RECOVERY_POLICIES)
    return value


def dead_workers(
    workers: Sequence[dict[str, Any]],
    with_running_jobs: Iterable[str],
    me: str,
    now: float,
    stale_after_s: float,
) -> list[str]:
    """Workers whose running jobs must be adopted."""
    live = set()
    dead = []
    for w in workers:
        if w["id"] == me:
            live.add(me)
            continue
        if w["host"] == HOST:
            gone = not process_alive(w["pid"], w["pid_started_at"])
        else:
            gone = now - w["heartbeat_at"] > stale_after_s
        if gone:
            dead.append(w["id"])
        else:
            live.add(w["id"])
    # running jobs of a worker with no live row (stopped uncleanly, pruned ...)
    dead += [w for w in with_running_jobs if w not in live and w not in dead]
    return dead


async def triage(
    runner: JobRunner,
    cj: ClaimedJob,
    recovery_policy: str,
    max_attempts: int,
    now: float,
    preempt: Preempt | None = None,
    on_preempt: str = "requeue",
) -> tuple[Flight | None, Finished | None]:
    """(a flight to follow, or None; else how the job ends now)."""
    flight = Flight(cj)
    if preempt is not None and not cj.cancel_requested:
        flight.preempt, flight.on_preempt = preempt, on_preempt
        flight.kill_reason = "preempt"
    job = flight.job = await runner.adopt(cj)
    if await runner.still_runs(job):
        return flight, None
    if job.read_rc_file() is not None or job.unreadable_rc() is not None:
        # (an rc file that holds garbage: failed, saying so, never re-run)
        end = runner.backend.ending(job, None)
        return None, runner.conclude(flight, end.rc, end.outcome, end.reason)
    if flight.preempt is not None:  # killed with its worker, or after the grace
        return None, runner.conclude(flight, None, JobOutcome.KILLED, None)
    if cj.cancel_requested:
        return None, Finished(
            cj.id, CANCELLED, None, "cancelled; its run was lost", now
        )
    if recovery_policy == "requeue" and cj.attempts < max_attempts:
        reason = f"re-queued: its worker died before it ended (attempt {cj.attempts})"
        return None, Finished(cj.id, PENDING, None, reason, now)
    reason = (
        f"lost: its worker died and it left no rc file (attempt {cj.attempts},"
        f" recovery_policy {recovery_policy!r})"
    )
    return None, Finished(cj.id, FAILED, None, reason, now)
