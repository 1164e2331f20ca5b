"""The plain data of the dispatch decision: what ``policy.decide`` reads (a
``Snapshot``) and what it returns (a ``Decision``). Frozen dataclasses with
defaults, so a test builds a case in one line and callers that know nothing of
namespaces, quotas or preemption build the same snapshots as before.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from .quota import Amounts, Quota

__all__ = [
    "Capacity",
    "Decision",
    "PolicyConfig",
    "Preempt",
    "QueuedJob",
    "RunningJob",
    "Snapshot",
    "Start",
]


@dataclass(frozen=True, slots=True)
class QueuedJob:
    """A pending job as the policy sees it.

    ``may_preempt``: its priority class may preempt lower priorities, once it
    has waited ``preempt_after_s`` (room for a scale-up first).
    """

    id: int
    priority: int = 0
    cpus: int = 1
    mem_mb: int = 0
    gpus: int = 0
    submitted_at: float = 0.0
    namespace: str = "default"
    storage_mb: int = 0
    may_preempt: bool = False
    preempt_after_s: float = 0.0

    @property
    def amounts(self) -> Amounts:
        return Amounts(self.cpus, self.mem_mb, self.gpus, self.storage_mb, 1)


@dataclass(frozen=True, slots=True)
class RunningJob:
    """A job this pool runs now, with what it was given.

    ``preemptible`` and the limits after it come from its priority class:
    never preempted before ``min_runtime_s``, nor more than ``max_preemptions``
    times (None: no limit). ``terminating``: being killed already (preempted or
    cancelled); it holds its resources until it is gone.
    """

    id: int
    cpus: int = 1
    mem_mb: int = 0
    gpu_ids: tuple[int, ...] = ()
    cpu_ids: tuple[int, ...] = ()
    priority: int = 0
    started_at: float = 0.0
    #: GPUs it holds when the pool counts GPUs without indexes (``Capacity.gpus``)
    gpus: int = 0
    namespace: str = "default"
    storage_mb: int = 0
    preemptible: bool = False
    min_runtime_s: float = 0.0
    preemptions: int = 0
    max_preemptions: int | None = None
    terminating: bool = False

    @property
    def gpu_count(self) -> int:
        return len(self.gpu_ids) or self.gpus

    @property
    def amounts(self) -> Amounts:
        return Amounts(self.cpus, self.mem_mb, self.gpu_count, self.storage_mb, 1)


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
    #: preemption plans tried per decision at most (each costs O(running))
    max_preemption_plans: int = 8


@dataclass(frozen=True, slots=True)
class Snapshot:
    """The input of ``decide``: ``queued`` in dispatch order (priority DESC, id).

    ``quotas``: per namespace; ``usage``: what the running jobs of each
    namespace hold in *all* pools of the db (None: only this pool runs jobs,
    so ``running`` says it).
    """

    queued: Sequence[QueuedJob]
    running: Sequence[RunningJob]
    capacity: Capacity
    now: float
    quotas: Mapping[str, Quota] = field(default_factory=dict)
    usage: Mapping[str, Amounts] | None = None


@dataclass(frozen=True, slots=True)
class Start:
    """Start job ``id`` with these device indexes."""

    id: int
    gpu_ids: tuple[int, ...] = ()
    cpu_ids: tuple[int, ...] = ()


@dataclass(frozen=True, slots=True)
class Preempt:
    """End running job ``id`` to make room for queued job ``for_job``."""

    id: int
    for_job: int
    reason: str


@dataclass(frozen=True, slots=True)
class Decision:
    """What to start and what to preempt. The queue is looked at only until no
    worker slot is left (or, when running jobs could be preempted, until a
    preemptor is found): ``reserved``, ``unfit`` and ``waiting`` cover the jobs
    looked at."""

    start: tuple[Start, ...] = ()
    #: jobs holding a reservation (waited past reserve_after_s, do not fit yet;
    #: or preemptors waiting for their victims to end)
    reserved: tuple[int, ...] = ()
    #: jobs that can never fit this pool's capacity
    unfit: tuple[int, ...] = ()
    #: why each queued job that did not start waits (for status displays)
    waiting: dict[int, str] = field(default_factory=dict)
    preempt: tuple[Preempt, ...] = ()
    #: decide again at this time even if nothing changes (a preemptor's
    #: ``preempt_after_s`` or a victim's ``min_runtime_s`` runs out then)
    retry_at: float | None = None
