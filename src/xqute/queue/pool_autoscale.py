"""The pool's autoscaler (a base of ``PoolLoop``): every ``autoscale_interval_s``
it takes a sample, asks the pure ``autoscale.decide`` and applies the answer.

What a replica is, honestly for this product:

- a local pool's replicas are its worker slots (jobs it runs at once), sampled
  with the machine's measured cpu and memory use (psutil): use above a
  policy's target means fewer slots, below it more while jobs wait
  (``autoscale.py``, rule 1);
- a cluster pool's replicas are the jobs it keeps submitted to Slurm/SGE (its
  submission window); its "utilization" is how many of them run, and jobs that
  sit pending in the cluster longer than ``stall_after_s`` count as stalled:
  no point in submitting more (and fairness to the cluster's other users).

The pool's ``max_workers`` is the ceiling (and the count when no policy
applies); a change is applied by setting the capacity's ``max_workers``, so
scaling down never kills a running job: the pool stops claiming until it runs
fewer jobs than its replicas. A policy applies to the pool whose name its
target names (``pool:NAME``; ``workflow:NAME`` means the pool serving it: the
``default`` one). Each evaluation is recorded in the ``autoscaler`` table
(``xqute autoscale show``) and each change as an ``autoscale.scaled`` event.
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import json
import logging
import time
from typing import Any

import psutil

from ..status import JobStatus
from .autoscale import Sample, ScaleDecision, decide
from .db import Database
from .dispatch import Dispatcher
from .runner import Flight
from .scaling import AutoscalingPolicy, QueueLength
from .snapshot import Capacity

__all__ = ["AutoscaleLoop", "applies_to", "eligible_pending", "forget", "record"]

logger = logging.getLogger("xqute.queue")


def applies_to(policy: AutoscalingPolicy, pool_name: str) -> bool:
    kind, _, name = policy.target.partition(":")
    return name == pool_name if kind == "pool" else pool_name == "default"


class AutoscaleLoop:
    """Mixed into ``PoolLoop``; uses its capacity, flights, db thread, wake."""

    capacity: Capacity | None
    max_workers: int
    pool_name: str
    local: bool
    worker_id: str
    autoscale_interval_s: float
    stall_after_s: float
    _flights: dict[int, Flight]
    _dispatcher: Dispatcher
    _wake: asyncio.Event | None
    _dirty: bool
    store: Any

    def _init_autoscale(self) -> None:
        self._next_scale = 0.0
        self._scaling: AutoscalingPolicy | None = None
        self._samples: collections.deque[Sample] = collections.deque()
        self._last_change: float | None = None
        psutil.cpu_percent(None)  # the first reading is meaningless

    async def _maybe_autoscale(self, run_db: Any) -> None:
        """Evaluate if it is time (``run_db``: the pool's db-thread runner)."""
        mono = time.monotonic()
        if mono < self._next_scale or self.capacity is None:
            return
        self._next_scale = mono + self.autoscale_interval_s
        policy = await run_db(self._policy_now)
        if policy != self._scaling:
            self._scaling, self._samples = policy, collections.deque()
            if policy is None:  # no policy (any more): back to max_workers
                self._set_slots(self.max_workers)
                await run_db(forget, self.store.db, self.worker_id)
                return
        if policy is None:
            return
        now = time.time()
        pending = await run_db(self._count_pending, policy)
        self._samples.append(self._sample(now, pending))
        keep = max(policy.scale_up.duration_s, policy.scale_down.duration_s)
        while len(self._samples) > 2 and self._samples[1].t < now - keep - 1:
            self._samples.popleft()
        decision = decide(list(self._samples), policy, now)
        if decision.desired != decision.current:
            self._set_slots(decision.desired)
            self._last_change = now
            logger.info(
                "autoscaler %s: %s -> %s (%s)",
                policy.name, decision.current, decision.desired, decision.reason,
            )  # fmt: skip
        await run_db(
            record, self.store.db, self.worker_id, policy, decision,
            "slots" if self.local else "submitted", now, self._last_change,
        )  # fmt: skip

    def _policy_now(self) -> AutoscalingPolicy | None:
        """The policy for this pool, capped at ``max_workers`` (db thread)."""
        self._dispatcher.refresh(self.store.db)
        found = [p for name, p in sorted(self._dispatcher.catalog.autoscaling.items())
                 if applies_to(p, self.pool_name)]  # fmt: skip
        if not found:
            return None
        policy = found[0]
        hi = min(policy.max_replicas, self.max_workers)
        return dataclasses.replace(
            policy, max_replicas=hi, min_replicas=min(policy.min_replicas, hi)
        )

    def _count_pending(self, policy: AutoscalingPolicy) -> int:
        """Eligible pending jobs this pool could run, counted up to a cap."""
        assert self.capacity is not None
        targets = [m.target for m in policy.metrics if isinstance(m, QueueLength)]
        limit = int(4 * policy.max_replicas * max(targets or [10]))
        return eligible_pending(self.store.db, self.capacity, limit)

    def _sample(self, now: float, pending: int) -> Sample:
        replicas = self.capacity.max_workers  # type: ignore[union-attr]
        busy = len(self._flights)
        if self.local:
            utilization = {  # GPU use is not measured: no "gpu" opinion
                "cpu": psutil.cpu_percent(None),
                "memory": psutil.virtual_memory().percent,
            }
            return Sample(now, replicas, pending, busy, 0, utilization, slots=True)
        stalled = sum(
            1 for f in self._flights.values()
            if f.job is not None and f.job.status == JobStatus.SUBMITTED
            and f.job.submitted_at and now - f.job.submitted_at > self.stall_after_s
        )  # fmt: skip
        occupancy = 100.0 * (busy - stalled) / replicas if replicas else 0.0
        utilization = dict.fromkeys(("cpu", "memory", "gpu"), occupancy)
        return Sample(now, replicas, pending, busy, stalled, utilization)

    def _set_slots(self, slots: int) -> None:
        cap = self.capacity
        if cap is None or cap.max_workers == slots:
            return
        self.capacity = dataclasses.replace(cap, max_workers=slots)
        self._dirty = True  # more room: dispatch now
        if self._wake is not None:
            self._wake.set()


def eligible_pending(db: Database, cap: Capacity, limit: int) -> int:
    """Pending jobs that fit ``cap`` and do not wait on their namespace's quota
    (the dispatcher wrote that reason: more replicas would not start them),
    counted up to ``limit``."""
    return db.query(
        "SELECT count(*) FROM (SELECT 1 FROM job_queue WHERE state = 'pending'"
        " AND cpus <= ? AND mem_mb <= ? AND gpus <= ?"
        " AND (reason IS NULL OR reason NOT LIKE 'quota %') LIMIT ?)",
        (cap.cpus, cap.mem_mb, cap.gpu_count, limit),
    )[0][0]


def record(
    db: Database,
    worker: str,
    policy: AutoscalingPolicy,
    decision: ScaleDecision,
    kind: str,
    now: float,
    last_change: float | None,
) -> None:
    """The policy's last decision for this pool (and an event if it changed)."""

    def write(conn: Any) -> None:
        conn.execute(
            "INSERT OR REPLACE INTO autoscaler (policy, worker, target, kind, current,"
            " desired, min_replicas, max_replicas, direction, reason, updated_at,"
            " last_change_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (policy.name, worker, policy.target, kind, decision.current,
             decision.desired, policy.min_replicas, policy.max_replicas,
             decision.direction, decision.reason, now, last_change),
        )  # fmt: skip
        if decision.desired != decision.current:
            conn.execute(
                "UPDATE worker_nodes SET max_workers = ? WHERE id = ?",
                (decision.desired, worker),
            )
            data = {"policy": policy.name, "worker": worker, "from": decision.current,
                    "to": decision.desired, "reason": decision.reason}  # fmt: skip
            conn.execute(
                "INSERT INTO events (ts, type, data) VALUES (?, 'autoscale.scaled', ?)",
                (now, json.dumps(data)),
            )

    db.write(write)


def forget(db: Database, worker: str) -> None:
    """No policy applies to this pool any more."""
    db.write(lambda conn: conn.execute(
        "DELETE FROM autoscaler WHERE worker = ?", (worker,)))  # fmt: skip
