"""The asyncio side of ``WorkerPoolManager``: the dispatch loop, the jobs in
flight, recovery and teardown (see ``pool.py`` for the cycle it runs).

Everything here runs on the pool's event loop; db work goes to the pool's one
db thread (``_db``). ``WorkerPoolManager`` sets the configuration attributes
declared below and exposes the public API.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import psutil

from ..schedulers import Scheduler
from ..status import JobOutcome
from . import claims
from .capacity import build_capacity
from .claims import ClaimedJob, Finished, Started
from .db import make_private_dir
from .dispatch import Dispatcher
from .extensions import Reconciler
from .outage import call_db
from .policy import Capacity, PolicyConfig, RunningJob, unfit_reason
from .pool_autoscale import AutoscaleLoop
from .pool_policy import PolicyLoop
from .recovery import HOST, dead_workers, triage
from .runner import Flight, JobRunner, local_pids, record_usage
from .store import SqliteJobScheduler
from .wake import WakePipe, listen, notify
from .window import unfit_pending

__all__ = ["PoolLoop"]

logger = logging.getLogger("xqute.queue")
PRUNE_AFTER_S = 3 * 86400  # stopped or dead pools are forgotten after 3 days
RECORD_STARTS_S = 0.05  # a started job's pid reaches the db this soon at most


class PoolLoop(PolicyLoop, AutoscaleLoop):
    """The dispatch loop and the jobs in flight (base of WorkerPoolManager)."""

    # configuration, set by WorkerPoolManager.__init__
    store: SqliteJobScheduler
    max_workers: int
    backend_cls: type[Scheduler]
    local: bool
    backend_opts: dict[str, Any]
    policy: PolicyConfig
    recovery_policy: str
    max_attempts: int
    lookahead: int
    poll_interval_s: float
    heartbeat_s: float
    stale_after_s: float
    workdir: Path
    worker_id: str
    backend: Scheduler
    _capacity_args: dict[str, Any]
    extensions: list[Any]  # loaded pool extensions (``extensions.py``)

    def _init_loop_state(self) -> None:
        self.capacity: Capacity | None = None
        self.runner: JobRunner | None = None
        self._flights: dict[int, Flight] = {}
        self._finished: list[Finished] = []
        self._started: list[Started] = []
        self._unfit_after = 0  # jobs up to this id were checked for "never fits"
        self._state = "new"  # new, running, stopping, stopped
        self._stop_now = False
        self._counts = {"started": 0, "ended": 0, "adopted": 0}
        self._init_policy(Dispatcher(self.lookahead, self.policy))
        self._init_autoscale()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake: asyncio.Event | None = None
        self._main: asyncio.Task[None] | None = None
        self._executor: ThreadPoolExecutor | None = None
        self._dirty = False  # this pool queued work itself: dispatch next cycle
        self._reconciler = Reconciler(self.extensions)
        self._pipe: WakePipe | None = None

    def request_stop(self, now: bool = False) -> None:
        """Stop claiming; with ``now``, kill the jobs in flight. Loop thread only."""
        if self._state in ("new", "running"):
            self._state = "stopping"
        if self._pipe is not None:  # it claims nothing more: submitters know
            self._pipe.close()
        if now and not self._stop_now:
            self._stop_now = True
            for flight in self._flights.values():
                self._kill(flight, "stop")
        if self._wake is not None:
            self._wake.set()

    async def _serve_thread(self, ready: threading.Event) -> None:
        fut = asyncio.get_running_loop().create_future()
        fut.add_done_callback(lambda _: ready.set())
        await self._serve(fut)

    async def _serve(self, ready: asyncio.Future[None]) -> None:
        self._loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="xqute-pool-db")
        try:
            await self._setup()
            if not ready.done():
                ready.set_result(None)
            await self._run_cycles()
        finally:
            await self._teardown()

    async def _db(self, fn: Any, *args: Any) -> Any:
        return await call_db(  # a full disk is waited out while running
            self._executor, fn, *args, retry_while=lambda: self._state == "running"
        )

    async def _setup(self) -> None:
        self.capacity = await self._db(
            lambda: build_capacity(
                local=self.local, max_workers=self.max_workers, **self._capacity_args
            )
        )
        assert self.backend is not None
        if self.local:
            await self._db(make_private_dir, self.workdir)
        await self.backend.start()
        self.runner = JobRunner(self.backend, self.local, self._on_started)
        cap, now = self.capacity, time.time()
        await self._db(
            claims.register_worker,
            self.store.db,
            {
                "id": self.worker_id,
                "host": HOST,
                "pid": os.getpid(),
                "pid_started_at": psutil.Process().create_time(),
                "backend": self.backend_cls.name,
                "max_workers": self.max_workers,
                "cpus": cap.cpus,
                "mem_mb": cap.mem_mb,
                "gpu_ids": ",".join(map(str, cap.gpu_ids)) if self.local else None,
                "state": "running",
                "started_at": now,
                "heartbeat_at": now,
                "running_jobs": 0,
            },
        )
        # forget the pools that stopped long ago (a row per pool start otherwise)
        await self._db(claims.prune_workers, self.store.db, now - PRUNE_AFTER_S)
        self._state = "running" if self._state == "new" else self._state
        if self._state == "running":  # wake on a submit, not at the next poll
            self._pipe = listen(self.store.db_path, self._loop, self._wake.set)  # type: ignore[arg-type,union-attr]
        await self._recover()
        logger.info(
            "pool %s: %s backend, %d workers, %d cpus, %d MB, gpus %s",
            self.worker_id,
            self.backend_cls.name,
            self.max_workers,
            cap.cpus,
            cap.mem_mb,
            list(cap.gpu_ids) if self.local else "-",
        )

    async def _run_cycles(self) -> None:
        assert self._wake is not None
        last_version: int | None = None
        next_beat = next_recovery = time.monotonic()
        while True:
            if self._state == "running" and self._reconciler.extensions:
                reconcile = self._reconciler.run_due
                self._dirty |= await self._db(reconcile, self.store.db, time.time())
            self._wake.clear()
            last_version = await self._cycle(last_version)
            if self._state == "stopping" and not self._flights and not self._finished:
                break
            mono = time.monotonic()
            if mono >= next_beat:
                next_beat = mono + self.heartbeat_s
                if self.local and self._flights:
                    pids = local_pids(self._flights)
                    await self._db(record_usage, self.store.db, pids)
                await self._db(
                    claims.heartbeat,
                    self.store.db,
                    self.worker_id,
                    time.time(),
                    len(self._flights),
                    self._state,
                )
            if mono >= next_recovery:
                next_recovery = mono + max(1.0, 2 * self.heartbeat_s)
                await self._recover()
                await self._note_unfit()
            if self._state == "running":
                await self._maybe_autoscale(self._db)
            if not self._finished:
                sleep_s = self._reconciler.wait_s(time.time(), self.poll_interval_s)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), sleep_s)

    async def _cycle(self, last_version: int | None) -> int:
        """One cycle: hand what ended and started since the last one to the db
        thread, which records it, dispatches and claims (``_cycle_db``); launch
        what it claimed, kill what was cancelled. Returns the db's data_version.
        """
        finished, self._finished = self._finished, []
        started, self._started = self._started, []
        running = None  # None: do not dispatch (stopping, or no free slot)
        if self._state == "running":
            running = self._policy_running()
        version, claimed, cancels = await self._db(
            self._cycle_db, last_version, finished, started, running,
            bool(self._flights),
        )  # fmt: skip
        if finished:  # for listeners that wait on job ends (workflows)
            own = str(self._pipe.path) if self._pipe is not None else None
            await self._db(notify, self.store.db_path, own)
        for cj in claimed:
            self._launch(Flight(cj), adopted=False)
        self._after_decisions()
        for job_id in cancels:
            flight = self._flights.get(job_id)
            if flight is not None and flight.kill_reason is None:
                self._kill(flight, "cancel")
        return version

    def _cycle_db(
        self,
        last_version: int | None,
        finished: list[Finished],
        started: list[Started],
        running: list[RunningJob] | None,
        have_flights: bool,
    ) -> tuple[int, list[ClaimedJob], list[int]]:
        """The db side of a cycle, in one trip to the db thread: if the db changed
        (``PRAGMA data_version``) or a slot freed up, read the top of the queue and
        ask the policy; record ends and starts and claim in one transaction; if
        the db changed, read this worker's cancel requests."""
        db = self.store.db
        version = claims.data_version(db)
        changed = version != last_version or self._dirty
        self._dirty = False
        claimed: list[ClaimedJob] = []
        while True:
            to_claim = []
            if running is not None and (changed or finished):
                to_claim = self._dispatch(running)
            got, more = claims.sync_cycle(
                db, self.worker_id, time.time(), finished, started, to_claim,
                self.extensions,
            )  # fmt: skip
            claimed += got
            if not more or running is None:
                break
            # an extension queued jobs as others ended (a workflow's next tasks):
            # dispatch again now, in this trip, rather than a cycle later
            running = running + [self._dispatcher.running_job(cj, False) for cj in got]
            finished, started, changed = [], [], True
        # (a job claimed just now carries its own cancel flag: see _launch)
        cancels = []
        if changed and have_flights:
            cancels = claims.cancel_requests(db, self.worker_id)
        return version, claimed, cancels

    def _dispatch(self, running: list[RunningJob]) -> list[tuple[Any, str]]:
        """Ask the policy which pending jobs to claim (db thread)."""
        cap: Capacity = self.capacity  # type: ignore[assignment]
        decision = self._dispatcher.dispatch(
            self.store.db, cap, running, self.worker_id
        )
        return [(s, str(self.workdir / str(s.id))) for s in decision.start]

    def _on_started(self, started: Started) -> None:
        """Record starts (pids) in batches, but soon, even on an idle pool."""
        if not self._started:
            self._loop.call_later(RECORD_STARTS_S, self._wake.set)  # type: ignore[union-attr]
        self._started.append(started)

    def _launch(self, flight: Flight, adopted: bool) -> None:
        self._flights[flight.claimed.id] = flight
        self._counts["adopted" if adopted else "started"] += 1
        coro = self.runner.follow(flight) if adopted else self.runner.run(flight)
        flight.task = asyncio.create_task(self._guard(flight, coro))
        if self._stop_now or flight.claimed.cancel_requested:
            self._kill(flight, "stop" if self._stop_now else "cancel")

    async def _guard(self, flight: Flight, coro: Any) -> None:
        """Run a job's coroutine; whatever happens, record an end for it."""
        cj = flight.claimed
        try:
            result = await coro
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            logger.exception("job %s: the pool failed to run it", cj.id)
            result = self.runner.conclude(
                flight, None, JobOutcome.LOST, f"the pool failed to run it: {exc!r}"
            )
        self._flights.pop(cj.id, None)
        self._finished.append(result)
        self._counts["ended"] += 1
        self._wake.set()  # type: ignore[union-attr]

    def _kill(self, flight: Flight, why: str, grace_s: float | None = None) -> None:
        flight.kill_reason = why
        if flight.job is not None and flight.job.jid:
            task = asyncio.ensure_future(self.runner.kill(flight, grace_s))
            task.add_done_callback(_log_failure)

    # ------------------------------------------------------------------ recovery
    async def _recover(self) -> None:
        db = self.store.db
        workers = await self._db(claims.live_workers, db)
        with_jobs = await self._db(claims.workers_with_running_jobs, db)
        dead = dead_workers(
            workers, with_jobs, self.worker_id, time.time(), self.stale_after_s
        )
        if not dead:
            return
        adopted: list[ClaimedJob] = await self._db(
            claims.adopt_jobs, db, dead, self.worker_id
        )
        if adopted:
            logger.warning(
                "adopting %d running job(s) of dead worker(s) %s",
                len(adopted),
                ", ".join(dead),
            )
        now = time.time()
        for cj in adopted:
            flight, result = await triage(
                self.runner, cj, self.recovery_policy, self.max_attempts, now
            )
            if flight is not None:
                self._launch(flight, adopted=True)
            else:
                self._finished.append(result)
        if self._finished:
            self._wake.set()  # type: ignore[union-attr]

    async def _note_unfit(self) -> None:
        """Say in their reason why new pending jobs can never start here."""
        cap = self.capacity
        jobs, self._unfit_after = await self._db(
            unfit_pending, self.store.db, cap, self._unfit_after
        )
        if jobs:
            reasons = {job.id: unfit_reason(job, cap) for job in jobs}
            await self._db(claims.note_unfit, self.store.db, reasons)

    # ------------------------------------------------------------------ teardown
    async def _teardown(self) -> None:
        if self._pipe is not None:
            self._pipe.close()
        flights = list(self._flights.values())
        for flight in flights:
            if flight.task is not None:
                flight.task.cancel()
        await asyncio.gather(
            *(f.task for f in flights if f.task is not None), return_exceptions=True
        )
        try:
            # local jobs still in flight here (the pool was cancelled, not
            # stopped) keep running for the next pool to adopt: aclose would
            # kill them
            if self.backend is not None and not (self.local and flights):
                await self.backend.aclose()
            if self._finished or self._started:
                await self._db(
                    claims.sync_cycle,
                    self.store.db,
                    self.worker_id,
                    time.time(),
                    self._finished,
                    self._started,
                    (),
                    self.extensions,
                )
                self._finished, self._started = [], []
            final = "stopped" if not flights else "dead"
            await self._db(
                claims.heartbeat, self.store.db, self.worker_id, time.time(), 0, final
            )
        finally:
            self._state = "stopped"
            if self._executor is not None:
                self._executor.shutdown(wait=True)


def _log_failure(task: asyncio.Future[Any]) -> None:
    if not task.cancelled() and task.exception() is not None:
        logger.error("killing a job failed: %s", task.exception())
