"""The dispatch decision: a pure function over a snapshot of the queue.

``decide(snapshot, config) -> Decision`` says which queued jobs to start now and
which GPU (and cpu) indexes each one gets. It does no I/O and reads no clock (the
snapshot carries ``now``), so every scheduling rule is unit-tested on plain data.
The pool takes the snapshot (the top of the pending queue, its running jobs, its
capacity), calls this, then claims the chosen jobs atomically in the store.

The rule
--------
1. Jobs are considered in priority order (higher first), then submission order.
2. A job starts when its cpus, memory and GPUs fit the free capacity and a worker
   slot is free (``max_workers``). GPUs and pinned cpus are given by index,
   lowest free indexes first.
3. Backfill: a job that does not fit may be passed by later (lower-priority or
   younger) jobs that do fit, so small jobs keep the machine busy...
4. ...until it has waited ``reserve_after_s``. From then on its request is
   *reserved*: a later job starts only if it fits beside every reservation made
   before it (and leaves a worker slot per reservation), so running jobs drain
   until the reserved job fits. Reservations stack in queue order, so the oldest
   highest-priority big job is the next to get the machine.
5. A job whose request exceeds the whole capacity can never start here; it is
   reported in ``Decision.unfit`` and takes no reservation.

Jobs of higher priority still start before a reserved job of lower priority:
priority is strict, reservations only stop jobs *behind* the reserved one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

__all__ = [
    "Capacity",
    "Decision",
    "PolicyConfig",
    "QueuedJob",
    "RunningJob",
    "Snapshot",
    "Start",
    "decide",
    "unfit_reason",
]


@dataclass(frozen=True, slots=True)
class QueuedJob:
    """A pending job as the policy sees it."""

    id: int
    priority: int = 0
    cpus: int = 1
    mem_mb: int = 0
    gpus: int = 0
    submitted_at: float = 0.0


@dataclass(frozen=True, slots=True)
class RunningJob:
    """A job this pool runs now, with what it was given."""

    id: int
    cpus: int = 1
    mem_mb: int = 0
    gpu_ids: tuple[int, ...] = ()
    cpu_ids: tuple[int, ...] = ()
    priority: int = 0
    started_at: float = 0.0
    #: GPUs it holds when the pool counts GPUs without indexes (``Capacity.gpus``)
    gpus: int = 0


@dataclass(frozen=True, slots=True)
class Capacity:
    """What the pool may hand out.

    GPUs are handed out by index (``gpu_ids``, this machine's devices), or only
    counted when ``gpus`` is set (a cluster's GPUs: the cluster picks them).
    ``cpu_ids`` non-empty means "pin each job to cpus of its own".
    """

    cpus: int
    mem_mb: int
    gpu_ids: tuple[int, ...] = ()
    max_workers: int = 1
    cpu_ids: tuple[int, ...] = ()
    gpus: int | None = None

    @property
    def gpu_count(self) -> int:
        return len(self.gpu_ids) if self.gpus is None else self.gpus


@dataclass(frozen=True, slots=True)
class PolicyConfig:
    reserve_after_s: float = 30.0


@dataclass(frozen=True, slots=True)
class Snapshot:
    """The input of ``decide``: ``queued`` in dispatch order (priority DESC, id)."""

    queued: Sequence[QueuedJob]
    running: Sequence[RunningJob]
    capacity: Capacity
    now: float


@dataclass(frozen=True, slots=True)
class Start:
    """Start job ``id`` with these device indexes."""

    id: int
    gpu_ids: tuple[int, ...] = ()
    cpu_ids: tuple[int, ...] = ()


@dataclass(frozen=True, slots=True)
class Decision:
    """What to start. The queue is looked at only until no worker slot is left:
    ``reserved``, ``unfit`` and ``waiting`` cover the jobs looked at."""

    start: tuple[Start, ...] = ()
    #: jobs holding a reservation (waited past reserve_after_s, do not fit yet)
    reserved: tuple[int, ...] = ()
    #: jobs that can never fit this pool's capacity
    unfit: tuple[int, ...] = ()
    #: why each queued job that did not start waits (for status displays)
    waiting: dict[int, str] = field(default_factory=dict)


def decide(snapshot: Snapshot, config: PolicyConfig | None = None) -> Decision:
    """Which queued jobs to start now (see the module docstring for the rule)."""
    config = config or PolicyConfig()
    cap = snapshot.capacity
    pinning = bool(cap.cpu_ids)
    free_cpus = cap.cpus - sum(r.cpus for r in snapshot.running)
    free_mem = cap.mem_mb - sum(r.mem_mb for r in snapshot.running)
    by_index = cap.gpus is None
    used_gpus = {g for r in snapshot.running for g in r.gpu_ids}
    free_gpu_ids = [g for g in cap.gpu_ids if g not in used_gpus]
    free_gpus = (
        len(free_gpu_ids)
        if by_index
        else cap.gpus - sum(r.gpus for r in snapshot.running)  # type: ignore[operator]
    )
    used_cpus = {c for r in snapshot.running for c in r.cpu_ids}
    free_cpu_ids = [c for c in cap.cpu_ids if c not in used_cpus]
    slots = cap.max_workers - len(snapshot.running)
    # reserved amounts, taken out of what later jobs may use
    res_cpus = res_mem = res_gpus = res_slots = 0
    starts: list[Start] = []
    reserved: list[int] = []
    unfit: list[int] = []
    waiting: dict[int, str] = {}

    gpu_count = cap.gpu_count
    for job in snapshot.queued:
        if slots - res_slots < 1:
            break  # nothing more can start: the rest need not be looked at
        if (
            job.cpus > cap.cpus
            or job.mem_mb > cap.mem_mb
            or job.gpus > gpu_count
            or (pinning and job.cpus > len(cap.cpu_ids))
        ):
            unfit.append(job.id)
            waiting[job.id] = unfit_reason(job, cap)
            continue
        fits = (
            job.cpus <= max(0, free_cpus - res_cpus)
            and job.mem_mb <= max(0, free_mem - res_mem)
            and job.gpus <= max(0, free_gpus - res_gpus)
            and slots - res_slots >= 1
            and (not pinning or job.cpus <= max(0, len(free_cpu_ids) - res_cpus))
        )
        if fits:
            gpus: list[int] = []
            if by_index:
                gpus, free_gpu_ids = free_gpu_ids[: job.gpus], free_gpu_ids[job.gpus :]
            free_gpus -= job.gpus
            cpus: list[int] = []
            if pinning:
                cpus, free_cpu_ids = free_cpu_ids[: job.cpus], free_cpu_ids[job.cpus :]
            starts.append(Start(job.id, tuple(gpus), tuple(cpus)))
            free_cpus -= job.cpus
            free_mem -= job.mem_mb
            slots -= 1
            continue
        waiting[job.id] = (
            "behind a reservation" if reserved else "waiting for resources"
        )
        if snapshot.now - job.submitted_at >= config.reserve_after_s:
            reserved.append(job.id)
            res_cpus += job.cpus
            res_mem += job.mem_mb
            res_gpus += job.gpus
            res_slots += 1
            waiting[job.id] = "resources reserved, waiting for running jobs to end"
    return Decision(tuple(starts), tuple(reserved), tuple(unfit), waiting)


def unfit_reason(job: QueuedJob, cap: Capacity) -> str:
    """Why ``job`` can never start with capacity ``cap``."""
    parts = []
    if job.cpus > cap.cpus:
        parts.append(f"cpus {job.cpus} > {cap.cpus}")
    if job.mem_mb > cap.mem_mb:
        parts.append(f"mem {job.mem_mb}M > {cap.mem_mb}M")
    if job.gpus > cap.gpu_count:
        parts.append(f"gpus {job.gpus} > {cap.gpu_count}")
    if cap.cpu_ids and job.cpus > len(cap.cpu_ids):
        parts.append(f"cpus {job.cpus} > {len(cap.cpu_ids)} pinnable")
    return "never fits this pool: " + ", ".join(parts)
