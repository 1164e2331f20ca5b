"""Choosing victims for a preemptor: which running jobs to end so that a queued
job of higher priority fits (Kueue's and Slurm's rules, on plain data).

The rule
--------
1. Candidates: running jobs that are not being killed already, have run at
   least their ``min_runtime_s`` and have been preempted fewer than their
   ``max_preemptions`` times, and either
   - have a lower priority and are ``preemptible``, when the preemptor's class
     may preempt (``QueuedJob.may_preempt``); or
   - belong to another namespace of the preemptor's cohort that is borrowing
     (holds more than its own quota), when the preemptor is within its own
     quota: a lender takes its quota back, whatever the priorities (reclaim).
2. Order: borrowed (reclaimable) first, then lowest priority, then most
   recently started (the least work lost).
3. Add candidates in that order until the preemptor fits, counting jobs that
   are already terminating as gone; then walk the list backwards and drop every
   victim the preemptor fits without. No victim of the result can be spared.

The caller gives the preemptor a reservation, so the room the victims free is
not taken by backfill while they terminate.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

from .quota import Amounts, QuotaBook
from .room import Room
from .snapshot import Preempt, QueuedJob, RunningJob

__all__ = ["Candidates", "candidates", "next_eligible_at", "plan", "preempts"]


class Candidates(NamedTuple):
    """The running jobs a preemptor may end, in the order they are taken;
    ``reclaim``: the ids among them taken as borrowed quota."""

    jobs: list[RunningJob]
    reclaim: frozenset[int]


def preempts(
    job: QueuedJob, victims: Sequence[RunningJob], reclaim: frozenset[int]
) -> tuple[Preempt, ...]:
    """The ``Preempt`` of each victim, its reason naming the preemptor."""
    out = []
    for v in victims:
        if v.id in reclaim:
            why = f"namespace {job.namespace} reclaims quota {v.namespace} borrowed"
        else:
            why = f"priority {job.priority} > {v.priority}"
        out.append(Preempt(v.id, job.id, f"preempted by job {job.id} ({why})"))
    return tuple(out)


def _eligible(r: RunningJob, now: float) -> bool:
    return (
        not r.terminating
        and now - r.started_at >= r.min_runtime_s
        and (r.max_preemptions is None or r.preemptions < r.max_preemptions)
    )


def candidates(
    job: QueuedJob,
    running: Sequence[RunningJob],
    now: float,
    book: QuotaBook | None,
) -> Candidates:
    """The running jobs ``job`` may preempt (rules 1 and 2)."""
    cohort = None
    if book is not None and book.lenders_need(job.namespace, job.amounts):
        cohort = book.cohort_of(job.namespace)
    out: list[tuple[tuple[int, int, float, int], RunningJob]] = []
    for r in running:
        if not _eligible(r, now):
            continue
        reclaim = (
            cohort is not None
            and r.namespace != job.namespace
            and book.cohort_of(r.namespace) == cohort  # type: ignore[union-attr]
            and book.borrowing(r.namespace)  # type: ignore[union-attr]
        )
        if reclaim or (job.may_preempt and r.preemptible and r.priority < job.priority):
            out.append(((0 if reclaim else 1, r.priority, -r.started_at, -r.id), r))
    out.sort(key=lambda pair: pair[0])
    reclaim = frozenset(r.id for key, r in out if key[0] == 0)
    return Candidates([r for _, r in out], reclaim)


def next_eligible_at(running: Sequence[RunningJob], now: float) -> float | None:
    """When the first running job still inside its ``min_runtime_s`` (and
    otherwise preemptible) leaves it."""
    times = [
        r.started_at + r.min_runtime_s
        for r in running
        if r.preemptible
        and not r.terminating
        and now - r.started_at < r.min_runtime_s
        and (r.max_preemptions is None or r.preemptions < r.max_preemptions)
    ]
    return min(times) if times else None


def _sum(total: list[float], a: Amounts, sign: int) -> None:
    for i, x in enumerate(a):
        total[i] += sign * x


def plan(
    job: QueuedJob,
    cands: Sequence[RunningJob],
    terminating: Sequence[RunningJob],
    room: Room,
    book: QuotaBook | None,
) -> list[RunningJob] | None:
    """The victims that make ``job`` fit (rule 3; none when the terminating
    jobs free enough), or None if no set of candidates does."""
    freed = [0.0] * len(Amounts._fields)
    by_ns: dict[str, list[float]] = {}

    def add(r: RunningJob, sign: int) -> None:
        _sum(freed, r.amounts, sign)
        _sum(by_ns.setdefault(r.namespace, [0.0] * len(freed)), r.amounts, sign)

    def fits() -> bool:
        if not room.fits(job, Amounts(*freed)):  # type: ignore[arg-type]
            return False
        if book is None:
            return True
        ns_freed = {ns: Amounts(*v) for ns, v in by_ns.items()}  # type: ignore[arg-type]
        return book.check(job.namespace, job.amounts, ns_freed)[0] is None

    for r in terminating:
        add(r, 1)
    victims: list[RunningJob] = []
    if not fits():
        for r in cands:
            victims.append(r)
            add(r, 1)
            if fits():
                break
        else:
            return None
    for r in reversed(victims[:]):
        add(r, -1)
        if fits():
            victims.remove(r)
        else:
            add(r, 1)
    return victims
