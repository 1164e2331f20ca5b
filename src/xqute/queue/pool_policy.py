"""The pool's resource-policy steps, on its event loop (a base of ``PoolLoop``):
which running jobs the policy sees, carrying out preemptions, and deciding
again when time alone changes the decision.

- ``_policy_running``: the jobs in flight as ``RunningJob`` with their
  classes' preemption rules; a job being killed is ``terminating`` (it still
  holds its resources until it is gone).
- ``_preempt``: a victim gets TERM now and KILL after its class's
  ``grace_period`` (``runner.kill(flight, grace_s)``); how it ended is recorded
  by the finish transaction (``preemption.py``).
- ``_retry_later``: ``Decision.retry_at`` (a preemptor's ``preempt_after``, a
  victim's ``min_runtime`` running out) wakes the loop then, marked dirty, so
  the policy is asked although the db did not change.
- ``_open_preemptions``/``_resume_preempt``: a job adopted from a dead worker
  that was preempting it is still being preempted (``recovery.triage``; a
  victim still running gets TERM again, KILL after its grace).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

from . import preemption
from .claims import ClaimedJob
from .dispatch import Dispatcher
from .policy import RunningJob
from .runner import Flight, JobRunner
from .snapshot import Capacity, Preempt

__all__ = ["PolicyLoop"]

logger = logging.getLogger("xqute.queue")
#: grace between TERM and KILL for a victim whose class says none
DEFAULT_GRACE_S = 30.0


class PolicyLoop:
    """Mixed into ``PoolLoop``; uses its flights, runner, loop and wake."""

    _flights: dict[int, Flight]
    _loop: asyncio.AbstractEventLoop | None
    _wake: asyncio.Event | None
    _dirty: bool
    _dispatcher: Dispatcher
    runner: JobRunner | None
    store: Any
    max_workers: int
    capacity: Capacity | None
    _kill: Callable[[Flight, str, float | None], None]  # PoolLoop's

    def _init_policy(self, dispatcher: Dispatcher) -> None:
        self._dispatcher = dispatcher
        self._retry_handle: asyncio.TimerHandle | None = None

    def _policy_running(self) -> list[RunningJob] | None:
        """The running jobs for the policy, or None when it need not be asked
        (no free slot, and nothing could be preempted)."""
        slots = self.capacity.max_workers if self.capacity else self.max_workers
        if len(self._flights) >= slots and not (self._dispatcher.victims_possible()):
            return None
        running = self._dispatcher.running_job
        return [
            running(f.claimed, f.kill_reason is not None)
            for f in self._flights.values()
        ]

    def _after_decisions(self) -> None:
        """Carry out the preemptions decided on the db thread since the last
        call; wake at the retry time they asked for."""
        preempts, retry_at = self._dispatcher.take()
        for p in preempts:
            self._preempt(p)
        if retry_at is not None:
            self._retry_later(retry_at)

    def _preempt(self, p: Preempt) -> None:
        flight = self._flights.get(p.id)
        if flight is None or flight.kill_reason is not None:
            return  # it ended, or is being killed already
        flight.preempt = p
        flight.on_preempt, grace_s = self._preempt_rules(flight.claimed)
        logger.info("job %s: %s (grace %gs)", p.id, p.reason, grace_s)
        self._kill(flight, "preempt", grace_s)

    def _preempt_rules(self, cj: ClaimedJob) -> tuple[str, float]:
        """(on_preempt, grace_period_s) of a victim's class."""
        pc = self._dispatcher.class_of(cj)
        if pc is None:
            return "requeue", DEFAULT_GRACE_S
        return pc.on_preempt, pc.grace_period_s

    def _open_preemptions(self, ids: list[int]) -> dict[int, Preempt]:
        """The preemptions a dead worker left open on jobs ``ids`` (db thread)."""
        self._dispatcher.refresh(self.store.db)
        return preemption.open_for(self.store.db, ids)

    def _resume_preempt(self, flight: Flight) -> None:
        """Go on killing an adopted victim (``flight.preempt`` set by triage)."""
        grace_s = self._preempt_rules(flight.claimed)[1]
        logger.info("job %s: still %s (grace %gs)", flight.claimed.id,
                    flight.preempt.reason, grace_s)  # type: ignore[union-attr]  # fmt: skip
        self._kill(flight, "preempt", grace_s)

    def _retry_later(self, at: float) -> None:
        if self._retry_handle is not None:
            self._retry_handle.cancel()
        self._retry_handle = self._loop.call_later(  # type: ignore[union-attr]
            max(0.0, at - time.time()), self._retry_now
        )

    def _retry_now(self) -> None:
        self._retry_handle = None
        self._dirty = True
        if self._wake is not None:
            self._wake.set()
