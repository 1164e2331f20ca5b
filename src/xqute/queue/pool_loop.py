"""The asyncio side of ``WorkerPoolManager``: the dispatch loop, the jobs in
flight, recovery and teardown (see ``pool.py`` for the cycle it runs).

``PoolLoop`` is a component of the pool: it gets its configuration in its
constructor (validated by ``WorkerPoolManager``), runs on the pool's event
loop, and sends db work to the pool's one db thread (``_db``; its side of each
cycle: ``cycle.DbCycle``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from ..schedulers import Scheduler
from ..status import JobOutcome
from . import claims
from .capacity import build_capacity
from .claims import ClaimedJob, Finished, Started
from .cycle import DbCycle
from .db import make_private_dir
from .dispatch import Dispatcher
from .extensions import Reconciler
from .outage import call_db
from .policy import Capacity, Decision, PolicyConfig
from .pool_autoscale import AutoscaleLoop
from .pool_policy import PolicyLoop
from .recovery import dead_workers, triage
from .runner import Flight, JobRunner, local_pids, record_usage
from .store import JobStore
from .wake import WakePipe, listen, wait_woken

__all__ = ["PoolLoop"]

logger = logging.getLogger("xqute.queue")
RECORD_STARTS_S = 0.05  # a started job's pid reaches the db this soon at most


class PoolLoop(PolicyLoop, AutoscaleLoop):
    """The dispatch loop and the jobs in flight of one pool: a component of
    ``WorkerPoolManager``, which validates the configuration passed here and
    exposes the public API."""

    def __init__(
        self,
        *,
        store: JobStore,
        max_workers: int,
        backend_cls: type[Scheduler],
        backend: Scheduler,
        local: bool,
        policy: PolicyConfig,
        recovery_policy: str,
        max_attempts: int,
        lookahead: int,
        poll_interval_s: float,
        heartbeat_s: float,
        workdir: Path,
        worker_id: str,
        capacity_args: dict[str, Any],
        extensions: list[Any],
        pool_name: str,
        autoscale_interval_s: float,
        stall_after_s: float,
    ) -> None:
        self.store = store
        self.max_workers = max_workers
        self.backend_cls = backend_cls
        self.backend = backend
        self.local = local
        self.recovery_policy = recovery_policy
        self.max_attempts = max_attempts
        self.poll_interval_s = poll_interval_s
        self.heartbeat_s = heartbeat_s
        self.stale_after_s = max(30.0, 10 * heartbeat_s)
        self.workdir = workdir
        self.worker_id = worker_id
        self._capacity_args = capacity_args
        self.extensions = extensions  # loaded pool extensions (``extensions.py``)
        self.pool_name = pool_name
        self.autoscale_interval_s = autoscale_interval_s
        self.stall_after_s = stall_after_s
        self.capacity: Capacity | None = None
        self.runner: JobRunner | None = None
        self._flights: dict[int, Flight] = {}
        self._finished: list[Finished] = []
        self._started: list[Started] = []
        self._starts_due: asyncio.TimerHandle | None = None  # see _on_started
        self._state = "new"  # new, running, stopping, stopped
        self._stop_now = False
        self._counts = {"started": 0, "ended": 0, "adopted": 0}
        self._init_policy(Dispatcher(lookahead, policy))
        self._init_autoscale()
        self._cycle_db = DbCycle(
            store, worker_id, workdir, extensions, self._dispatcher
        )
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

    @property
    def state(self) -> str:
        """new, running, stopping, stopped."""
        return self._state

    async def serve_thread(self, ready: threading.Event) -> None:
        """``serve`` in a thread of its own (``ready`` is set once it claims)."""
        fut = asyncio.get_running_loop().create_future()
        fut.add_done_callback(lambda _: ready.set())
        await self.serve(fut)

    async def start(self) -> None:
        """Serve on the running loop; return once it claims jobs."""
        ready = asyncio.get_running_loop().create_future()
        self._main = asyncio.create_task(self.serve(ready), name="xqute-pool")
        done, _ = await asyncio.wait({ready, self._main}, return_when="FIRST_COMPLETED")
        if self._main in done:
            self._main.result()  # raises what went wrong
        await ready

    async def wait_stopped(self) -> None:
        """Return once it has stopped (``request_stop``, a signal ...)."""
        if self._main is not None:
            await asyncio.shield(self._main)

    def stop_threadsafe(self, now: bool) -> None:
        """``request_stop`` from another thread (the loop's, if it runs)."""
        loop = self._loop
        if loop is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(self.request_stop, now)

    @property
    def flights(self) -> dict[int, Flight]:
        """The jobs in flight, by queue id (read-only outside this class)."""
        return self._flights

    @property
    def decision(self) -> Decision:
        """The policy's last decision (what it reserved, why jobs wait)."""
        return self._dispatcher.last

    @property
    def counts(self) -> dict[str, int]:
        """Jobs started, ended and adopted by this pool."""
        return dict(self._counts)

    async def serve(self, ready: asyncio.Future[None]) -> None:
        """Run the cycles until stopped; ``ready`` is set once it claims."""
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
        cap = self.capacity
        await self._db(
            self._cycle_db.register,
            cap,
            self.backend_cls.name,
            self.max_workers,
            self.local,
            time.time(),
        )
        self._state = "running" if self._state == "new" else self._state
        if self._state == "running":  # wake on a submit, not at the next poll
            self._pipe = listen(self.store.db_path, self._loop, self._wake.set)  # type: ignore[arg-type,union-attr]
            if self._pipe is not None:
                self._cycle_db.own_pipe = str(self._pipe.path)
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
        seen: list[int | None] = [None, None]  # see _cycle
        next_beat = next_recovery = time.monotonic()
        while True:
            now = time.time()
            if self._state == "running" and self._reconciler.any_due(now):
                reconcile = self._reconciler.run_due
                self._dirty |= await self._db(reconcile, self.store.db, now)
            self._wake.clear()
            await self._cycle(seen)
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
                await self._db(self._cycle_db.note_unfit, self.capacity)
            if self._state == "running":
                await self._maybe_autoscale(self._db)
            if not self._finished:
                sleep_s = self._reconciler.wait_s(time.time(), self.poll_interval_s)
                await wait_woken(self._loop, self._wake, sleep_s)  # type: ignore[arg-type]

    async def _cycle(self, seen: list[int | None]) -> None:
        """One cycle: ``DbCycle.run`` records what ended and started, claims;
        on this loop unless the db is locked (a db thread trip is two thread
        switches, each a wait for a core on a busy machine); launch what it
        claimed, kill what was cancelled. ``seen``: data_version as the
        loop's and the db thread's connections saw it last."""
        finished, self._finished = self._finished, []
        started, self._started = self._started, []
        if self._starts_due is not None:  # recorded now: no wake-up for them
            self._starts_due.cancel()
            self._starts_due = None
        running = None  # None: do not dispatch (stopping, or no free slot)
        if self._state == "running":
            running = self._policy_running()
        dirty, self._dirty = self._dirty, False
        args = (finished, started, running, bool(self._flights), dirty, self.capacity)
        run = self._cycle_db.run
        try:  # one transaction or nothing: run again on the db thread if failed
            seen[0], claimed, cancels = self.store.db.try_now(run, seen[0], *args)
        except Exception:  # locked (DbBusy), or worse: the db thread's to handle
            seen[1], claimed, cancels = await self._db(run, seen[1], *args)
        for cj in claimed:
            self._launch(Flight(cj), adopted=False)
        self._after_decisions()
        for job_id in cancels:
            flight = self._flights.get(job_id)
            if flight is not None and flight.kill_reason is None:
                self._kill(flight, "cancel")

    def _on_started(self, started: Started) -> None:
        """Record starts (pids) in batches, soon even on an idle pool (a wake-up
        unless a cycle records them first: a third of a busy pool's cycles)."""
        if self._starts_due is None:
            self._starts_due = self._loop.call_later(RECORD_STARTS_S, self._wake.set)  # type: ignore[union-attr]
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
        preempting = await self._db(self._open_preemptions, [cj.id for cj in adopted])
        for cj in adopted:
            p = preempting.get(cj.id)
            flight, result = await triage(
                self.runner, cj, self.recovery_policy, self.max_attempts, now,
                p, self._preempt_rules(cj)[0],
            )  # fmt: skip
            if flight is not None:
                self._launch(flight, adopted=True)
                if flight.preempt is not None:
                    self._resume_preempt(flight)
            else:
                self._finished.append(result)
        if self._finished:
            self._wake.set()  # type: ignore[union-attr]

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
                    claims.sync_cycle, self.store.db, self.worker_id, time.time(),
                    self._finished, self._started, (), self.extensions,
                )  # fmt: skip
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
