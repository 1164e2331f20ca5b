"""The free capacity of a pool during one decision: what is free, what is
reserved, and the device indexes still to hand out.

``Room`` starts from the pool's capacity minus its running jobs; ``decide``
takes from it the jobs it starts and the requests it reserves, and asks it
whether a job fits now (beside every reservation made before it) or would fit
once some running jobs end (a preemption plan). Pure bookkeeping, no I/O.
"""

from __future__ import annotations

from collections.abc import Sequence

from .quota import Amounts
from .snapshot import Capacity, QueuedJob, RunningJob, Start

__all__ = ["Room", "unfit_reason"]


class Room:
    """Free capacity and reservations (see the module docstring)."""

    __slots__ = (
        "by_index",
        "cap",
        "free_cpu_ids",
        "free_cpus",
        "free_gpu_ids",
        "free_gpus",
        "free_mem",
        "pinning",
        "res_cpus",
        "res_gpus",
        "res_mem",
        "res_slots",
        "slots",
    )

    def __init__(self, cap: Capacity, running: Sequence[RunningJob]) -> None:
        self.cap = cap
        self.pinning = bool(cap.cpu_ids)
        self.by_index = cap.gpus is None
        self.free_cpus = cap.cpus - sum(r.cpus for r in running)
        self.free_mem = cap.mem_mb - sum(r.mem_mb for r in running)
        used_gpus = {g for r in running for g in r.gpu_ids}
        self.free_gpu_ids = [g for g in cap.gpu_ids if g not in used_gpus]
        self.free_gpus = (
            len(self.free_gpu_ids)
            if self.by_index
            else cap.gpus - sum(r.gpus for r in running)  # type: ignore[operator]
        )
        used_cpus = {c for r in running for c in r.cpu_ids}
        self.free_cpu_ids = [c for c in cap.cpu_ids if c not in used_cpus]
        self.slots = cap.max_workers - len(running)
        # reserved amounts, taken out of what later jobs may use
        self.res_cpus = self.res_mem = self.res_gpus = self.res_slots = 0

    def no_slot(self) -> bool:
        """No worker slot is left beside the reservations: nothing can start."""
        return self.slots - self.res_slots < 1

    def unfit(self, job: QueuedJob) -> bool:
        """``job`` asks for more than the whole capacity: it never starts here."""
        cap = self.cap
        return (
            job.cpus > cap.cpus
            or job.mem_mb > cap.mem_mb
            or job.gpus > cap.gpu_count
            or (self.pinning and job.cpus > len(cap.cpu_ids))
        )

    def fits(self, job: QueuedJob, freed: Amounts | None = None) -> bool:
        """``job`` fits beside every reservation, now or (``freed``) once
        running jobs holding ``freed`` have ended."""
        f = freed or Amounts()
        return (
            job.cpus <= max(0, self.free_cpus + f.cpus - self.res_cpus)
            and job.mem_mb <= max(0, self.free_mem + f.mem_mb - self.res_mem)
            and job.gpus <= max(0, self.free_gpus + f.gpus - self.res_gpus)
            and self.slots + f.jobs - self.res_slots >= 1
            and (
                not self.pinning
                or job.cpus <= max(0, len(self.free_cpu_ids) + f.cpus - self.res_cpus)
            )
        )

    def take(self, job: QueuedJob) -> Start:
        """Start ``job``: take its request and the lowest free indexes."""
        gpus: list[int] = []
        if self.by_index:
            gpus = self.free_gpu_ids[: job.gpus]
            self.free_gpu_ids = self.free_gpu_ids[job.gpus :]
        self.free_gpus -= job.gpus
        cpus: list[int] = []
        if self.pinning:
            cpus = self.free_cpu_ids[: job.cpus]
            self.free_cpu_ids = self.free_cpu_ids[job.cpus :]
        self.free_cpus -= job.cpus
        self.free_mem -= job.mem_mb
        self.slots -= 1
        return Start(job.id, tuple(gpus), tuple(cpus))

    def reserve(self, job: QueuedJob) -> None:
        """Hold ``job``'s request (and a worker slot) against later jobs."""
        self.res_cpus += job.cpus
        self.res_mem += job.mem_mb
        self.res_gpus += job.gpus
        self.res_slots += 1


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
