"""The db side of a pool's cycle: record, dispatch, claim, in one trip to the
pool's db thread.

``PoolLoop`` (the asyncio side) hands each cycle what ended and started since
the last one; ``DbCycle.run`` records it and, when the db changed or a slot
freed up, asks the policy which pending jobs to start (``dispatch.Dispatcher``:
the window, the quotas, ``policy.decide``) and claims them, all in one write
transaction (``claims.sync_cycle``).
Everything here runs on the db thread, never on the event loop.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import psutil

from . import claims
from .claims import ClaimedJob, Finished, Started
from .dispatch import Dispatcher
from .policy import Capacity, RunningJob, unfit_reason
from .recovery import HOST
from .stats import POOLS, PoolTimings
from .store import JobStore
from .wake import notify
from .window import unfit_pending

__all__ = ["DbCycle"]

PRUNE_AFTER_S = 3 * 86400  # stopped or dead pools are forgotten after 3 days


class DbCycle:
    """One pool's db work: its registration, each cycle, the unfit notes."""

    def __init__(
        self,
        store: JobStore,
        worker_id: str,
        workdir: Path,
        extensions: list[Any],
        dispatcher: Dispatcher,
    ) -> None:
        self.store = store
        self.worker_id = worker_id
        self.workdir = workdir
        self._job_dir_prefix = str(workdir).rstrip("/") + "/"  # + the job's id
        self.extensions = extensions
        #: the policy's inputs and its last decision (shared with the loop side)
        self.dispatcher = dispatcher
        self._unfit_after = 0  # jobs up to this id were checked for "never fits"
        #: this pool's wake pipe (``wake.py``), not woken by its own notify
        self.own_pipe: str | None = None
        self.timings = POOLS.setdefault(worker_id, PoolTimings())

    def register(
        self, cap: Capacity, backend: str, max_workers: int, local: bool, now: float
    ) -> None:
        """This pool's row in ``worker_nodes``; forget the pools that stopped
        long ago (a row per pool start otherwise)."""
        self.timings.backend = backend
        claims.register_worker(
            self.store.db,
            {
                "id": self.worker_id,
                "host": HOST,
                "pid": os.getpid(),
                "pid_started_at": psutil.Process().create_time(),
                "backend": backend,
                "max_workers": max_workers,
                "cpus": cap.cpus,
                "mem_mb": cap.mem_mb,
                "gpu_ids": ",".join(map(str, cap.gpu_ids)) if local else None,
                "state": "running",
                "started_at": now,
                "heartbeat_at": now,
                "running_jobs": 0,
            },
        )
        claims.prune_workers(self.store.db, now - PRUNE_AFTER_S)

    def note_unfit(self, cap: Capacity) -> None:
        """Say in their reason why new pending jobs can never start here."""
        jobs, self._unfit_after = unfit_pending(self.store.db, cap, self._unfit_after)
        if jobs:
            reasons = {job.id: unfit_reason(job, cap) for job in jobs}
            claims.note_unfit(self.store.db, reasons)

    def run(
        self,
        last_version: int | None,
        finished: list[Finished],
        started: list[Started],
        running: list[RunningJob] | None,
        have_flights: bool,
        dirty: bool,
        cap: Capacity,
    ) -> tuple[int, list[ClaimedJob], list[int]]:
        """The db side of a cycle, in one write transaction: record ends (and
        what the extensions do about them: a workflow queues its next tasks)
        and starts; if the db changed (``PRAGMA data_version``) or a slot freed
        up, read the top of the queue, ask the policy and claim, after the ends
        (so that the policy sees the jobs queued for them); if the db changed,
        read this worker's cancel requests; once committed, wake the listeners
        when jobs ended. Nothing is written before or after that transaction:
        the whole cycle may be run again when it failed (the pool runs it on
        its loop, with ``Database.try_now``, and on its db thread when that
        finds the db locked). ``dirty``: the pool queued work itself (dispatch
        although the db did not change); ``cap``: the pool's capacity now (the
        autoscaler changes its slots). ``last_version``: this connection's
        (thread's) version at its last cycle."""
        db = self.store.db
        version = claims.data_version(db)
        changed = version != last_version or dirty
        dispatch = running is not None and (changed or bool(finished))
        timed = {"dispatch": 0.0}

        def choose() -> list[tuple[Any, str]]:
            t0 = time.perf_counter()
            try:
                return self._dispatch(running, cap, changed)  # type: ignore[arg-type]
            finally:
                timed["dispatch"] = time.perf_counter() - t0

        def transact(conn: Any = None) -> tuple[list[ClaimedJob], list[int]]:
            claimed, _ = claims.sync_cycle(
                db, self.worker_id, time.time(), finished, started, (),
                self.extensions, choose if dispatch else None,
            )  # fmt: skip
            # (a job claimed just now carries its own cancel flag: see _launch)
            cancels = []
            if changed and have_flights:
                cancels = claims.cancel_requests(db, self.worker_id)
            return claimed, cancels

        t1 = time.perf_counter()
        if finished or started or dispatch:
            claimed, cancels = db.write(transact)
            self.timings.transaction.observe(time.perf_counter() - t1)
        else:  # reads only
            claimed, cancels = transact()
        if dispatch:
            self.timings.dispatch.observe(timed["dispatch"])
        if finished:  # for listeners that wait on job ends (workflows)
            notify(self.store.db.path, self.own_pipe)
        return version, claimed, cancels

    def _dispatch(
        self, running: list[RunningJob], cap: Capacity, changed: bool
    ) -> list[tuple[Any, str]]:
        """Ask the policy which pending jobs to claim (db thread); ``changed``:
        another connection committed since the last cycle (the policy's
        definitions are looked at again only then)."""
        decision = self.dispatcher.dispatch(
            self.store.db, cap, running, self.worker_id, refresh=changed
        )
        prefix = self._job_dir_prefix
        return [(s, f"{prefix}{s.id}") for s in decision.start]
