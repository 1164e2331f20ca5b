"""``WorkerPoolManager``: claims queued jobs as resources allow and runs them.

One asyncio loop (in a thread of its own for the sync API, or the daemon's main
loop) repeats a cycle:

1. one read of the store: the top ``lookahead`` pending jobs (an index range,
   whatever the queue's size, read only as far as the policy looks) --
   skipped when nothing changed since the last cycle (``PRAGMA
   data_version``) and no job of ours ended;
2. the pure dispatch function (``policy.decide``) picks the jobs that fit;
3. one write transaction records the jobs that ended and started since the last
   cycle and claims the chosen ones atomically (steps 1-2 run inside it, after
   the ends: the policy sees the jobs the extensions queued for them, a
   workflow's next tasks);
4. each claimed job runs through the engine backend (``runner.py``); when one
   ends, the loop wakes at once to fill its slot.

Steps 1-3 (and reading the cancel requests) are that one transaction
(``cycle.DbCycle``), run on the loop itself unless another writer holds the
db's lock (``Database.try_now`` then fails at once, nothing written, and the
cycle runs on the pool's db thread, which waits): a freed slot is refilled in
the loop's next turn after the job's end.

Between cycles it sleeps ``poll_interval_s`` at most; it checks its running jobs'
cancel flags whenever the db changed (so a cancel is acted on within a cycle),
beats its heartbeat in ``worker_nodes`` every ``heartbeat_s``, and adopts the
running jobs of dead workers (``recovery.py``) at start and every few seconds.
All other db work happens on one dedicated thread, so a writer holding the
lock never stalls the loop that follows the jobs.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ..checks import positive_int as check_positive_int
from ..errors import ConfigError, XquteError
from ..schedulers import Scheduler, get_scheduler, make_scheduler
from ..schedulers.local import LocalScheduler
from . import claims
from .array_jobs import ArrayThrottle
from .capacity import check_capacity_args
from .extensions import load_extensions
from .policy import Capacity, PolicyConfig
from .pool_loop import PoolLoop
from .recovery import HOST, check_recovery_policy
from .requests import check_name
from .store import JobStore

__all__ = ["WorkerPoolManager"]

logger = logging.getLogger("xqute.queue")


class WorkerPoolManager:
    """Runs the jobs of a ``JobStore`` on a backend (local by default).

    Args:
        scheduler: the store to take jobs from.
        max_workers: jobs run at once, at most (default: the cpu count).
        backend: an engine backend name ("local", "slurm", ...) or class.
        backend_opts: its options (the local backend gets ``orphan_guard=False``
            so that jobs survive the pool; a restarted pool adopts them).
        cpus, memory, gpu_ids: the capacity to hand out (default for local:
            detected; for other backends: unlimited). ``gpu_ids=[0, 1]`` fakes
            or restricts GPUs; each job sees its own in ``CUDA_VISIBLE_DEVICES``.
        pin_cpus: pin each local job to ``cpus`` cpu indexes of its own (Linux).
        reserve_after_s: a job that does not fit reserves its resources after
            waiting this long (see ``policy.py``).
        recovery_policy: "requeue" or "fail" a job whose worker died and that
            left no rc file; ``max_attempts`` bounds the requeues.
        workdir: where job folders go (default: next to the db, ``<db>.jobs``).
        extensions: pool extensions (``extensions.py``) by name, or extension
            objects; None (the default) loads every registered one: the
            workflows of the db advance only in pools that load
            ``"orchestration"``.
        pool_name: what autoscaling policies target (``pool:NAME``); an
            autoscaled pool runs between the policy's replicas and
            ``max_workers``, evaluated every ``autoscale_interval_s``
            (``pool_autoscale.py``); a cluster pool's jobs pending in the
            cluster for ``stall_after_s`` count as stalled.
    """

    def __init__(
        self,
        scheduler: JobStore,
        max_workers: int | None = None,
        *,
        backend: str | type[Scheduler] = "local",
        backend_opts: Mapping[str, Any] | None = None,
        cpus: int | None = None,
        memory: str | int | None = None,
        gpu_ids: Any = None,
        pin_cpus: bool = False,
        reserve_after_s: float = 30.0,
        recovery_policy: str = "requeue",
        max_attempts: int = 3,
        lookahead: int = 256,
        poll_interval_s: float = 0.1,
        heartbeat_s: float = 2.0,
        workdir: str | os.PathLike[str] | None = None,
        extensions: Sequence[Any] | None = None,
        pool_name: str = "default",
        autoscale_interval_s: float = 5.0,
        stall_after_s: float = 60.0,
    ) -> None:
        if not isinstance(scheduler, JobStore):
            raise ConfigError(
                f"scheduler {scheduler!r} must be a JobStore (SqliteJobScheduler)"
            )
        self.store = scheduler
        self.max_workers = check_positive_int(
            "max_workers", max_workers if max_workers is not None else os.cpu_count()
        )
        self.backend_cls = get_scheduler(backend)
        self.local = issubclass(self.backend_cls, LocalScheduler)
        self.backend_opts = dict(backend_opts or {})
        if self.local:
            self.backend_opts.setdefault("orphan_guard", False)
        self._capacity_args = {
            "cpus": cpus,
            "memory": memory,
            "gpu_ids": gpu_ids,
            "pin_cpus": bool(pin_cpus),
        }
        self.policy = PolicyConfig(reserve_after_s=float(reserve_after_s))
        self.recovery_policy = check_recovery_policy(recovery_policy)
        self.max_attempts = check_positive_int("max_attempts", max_attempts)
        self.lookahead = check_positive_int("lookahead", lookahead)
        self.poll_interval_s = float(poll_interval_s)
        self.heartbeat_s = float(heartbeat_s)
        self.workdir = Path(
            os.path.abspath(workdir) if workdir is not None else scheduler.jobs_dir
        )
        self.worker_id = f"{HOST}:{os.getpid()}:{secrets.token_hex(3)}"
        self.extensions = [
            claims.PromoteWaiting(),
            ArrayThrottle(),
            *load_extensions(extensions),
        ]
        self.pool_name = check_name("pool_name", pool_name)
        self.autoscale_interval_s = float(autoscale_interval_s)
        self.stall_after_s = float(stall_after_s)
        check_capacity_args(local=self.local, **self._capacity_args)
        # built now so that bad backend options fail here (constructors do no I/O)
        self.backend = make_scheduler(
            self.backend_cls,
            workdir=self.workdir,
            forks=self.max_workers,
            **self.backend_opts,
        )
        self._cycles = PoolLoop(
            store=self.store,
            max_workers=self.max_workers,
            backend_cls=self.backend_cls,
            backend=self.backend,
            local=self.local,
            policy=self.policy,
            recovery_policy=self.recovery_policy,
            max_attempts=self.max_attempts,
            lookahead=self.lookahead,
            poll_interval_s=self.poll_interval_s,
            heartbeat_s=self.heartbeat_s,
            workdir=self.workdir,
            worker_id=self.worker_id,
            capacity_args=self._capacity_args,
            extensions=self.extensions,
            pool_name=self.pool_name,
            autoscale_interval_s=self.autoscale_interval_s,
            stall_after_s=self.stall_after_s,
        )
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None

    def __repr__(self) -> str:
        return f"<WorkerPoolManager {self.worker_id} {self.state}>"

    # ------------------------------------------------------------------ sync API
    def start_workers(self, timeout_s: float = 60.0) -> None:
        """Start the pool in a background thread; return once it claims jobs.

        Needs no event loop from the caller.
        """
        if self._thread is not None:
            raise XquteError("this pool was started already")
        ready = threading.Event()

        def run() -> None:
            try:
                asyncio.run(self._cycles.serve_thread(ready))
            except BaseException as exc:  # reported to start_workers / stop_workers
                logger.exception("pool %s failed", self.worker_id)
                self._error = exc
            finally:
                ready.set()

        self._thread = threading.Thread(target=run, name="xqute-pool", daemon=True)
        self._thread.start()
        if not ready.wait(timeout_s):
            raise XquteError(f"the worker pool did not start within {timeout_s:g}s")
        if self._error is not None:
            raise self._error

    def stop_workers(self, now: bool = False, timeout_s: float | None = None) -> None:
        """Stop claiming jobs; wait for the ones in flight (``now``: kill them,
        recorded cancelled). Safe to call more than once."""
        thread = self._thread
        if thread is None:
            return
        self._cycles.stop_threadsafe(now)
        thread.join(timeout_s)
        if thread.is_alive():
            raise XquteError(f"the worker pool did not stop within {timeout_s:g}s")
        if self._error is not None and not isinstance(
            self._error, asyncio.CancelledError
        ):
            raise self._error

    def wait_idle(self, timeout_s: float | None = None, poll_s: float = 0.05) -> bool:
        """Block until nothing is pending that this pool could run and none of
        its jobs runs (per the db). False on timeout."""
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        while self.state != "stopped":
            if self.state == "running" and claims.idle(
                self.store.db, self.worker_id, self.capacity
            ):
                return True
            if deadline is not None and time.monotonic() > deadline:
                return False
            time.sleep(poll_s)
        return True

    def get_worker_status(self) -> dict[str, Any]:
        """This pool: state, capacity, what is in use, its running jobs."""
        loop = self._cycles
        cap = loop.capacity
        flights = list(loop.flights.values())
        used = {
            "cpus": sum(f.claimed.cpus for f in flights),
            "mem_mb": sum(f.claimed.mem_mb for f in flights),
            "gpu_ids": sorted(g for f in flights for g in f.claimed.gpu_ids),
        }
        return {
            "worker_id": self.worker_id,
            "state": loop.state,
            "backend": self.backend_cls.name,
            "max_workers": self.max_workers,
            "slots": cap.max_workers if cap is not None else self.max_workers,
            "capacity": None
            if cap is None
            else {
                "cpus": cap.cpus,
                "mem_mb": cap.mem_mb,
                "gpus": cap.gpu_count,
                "gpu_ids": list(cap.gpu_ids),
            },
            "used": used,
            "running_jobs": sorted(loop.flights),
            "reserved_jobs": list(loop.decision.reserved),
            # why the first pending jobs it looked at last wait (per the policy)
            "waiting_jobs": dict(loop.decision.waiting),
            **loop.counts,
        }

    @property
    def capacity(self) -> Capacity | None:
        """What it hands out (None until it started: detecting it is I/O)."""
        return self._cycles.capacity

    def request_stop(self, now: bool = False) -> None:
        """Stop claiming; with ``now``, kill the jobs in flight. Loop thread only."""
        self._cycles.request_stop(now)

    # ------------------------------------------------------------------ async API
    async def astart(self) -> None:
        """Start the pool on the running loop; return once it claims jobs."""
        await self._cycles.start()

    async def astop(self, now: bool = False) -> None:
        """Stop (see ``stop_workers``) and wait until stopped."""
        self.request_stop(now)
        await self._cycles.wait_stopped()

    async def wait_stopped(self) -> None:
        """Return once the pool has stopped (``request_stop``, a signal ...)."""
        await self._cycles.wait_stopped()

    @property
    def state(self) -> str:
        """new, running, stopping, stopped."""
        return self._cycles.state
