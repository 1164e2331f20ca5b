"""The dispatch decision: a pure function over a snapshot of the queue.

``decide(snapshot, config) -> Decision`` says which queued jobs to start now,
which GPU (and cpu) indexes each one gets, and which running jobs to preempt.
It does no I/O and reads no clock (the snapshot carries ``now``), so every
scheduling rule is unit-tested on plain data. The pool takes the snapshot (the
top of the pending queue, its running jobs, its capacity, the namespaces'
quotas and usage), calls this, then claims the chosen jobs atomically in the
store and kills the victims.

The rule
--------
1. Jobs are considered in priority order (higher first), then submission order.
   A priority class sets a job's priority (its ``value``).
2. Quota: a job starts only if its namespace's running jobs (all pools), plus
   the reservations made for that namespace, plus the job stay within the
   namespace's quota -- or within its cohort's idle quota and its borrowing
   limit (``quota.py``). Otherwise it waits with the reason ("quota team-a:
   cpu 30+4 > 32") and takes no reservation, so a namespace at its limit never
   holds the machine back for others.
3. A job starts when its cpus, memory and GPUs fit the free capacity and a
   worker slot is free (``max_workers``). GPUs and pinned cpus are given by
   index, lowest free indexes first.
4. Backfill: a job that does not fit may be passed by later (lower-priority or
   younger) jobs that do fit, so small jobs keep the machine busy...
5. ...until it has waited ``reserve_after_s``. From then on its request is
   *reserved*: a later job starts only if it fits beside every reservation made
   before it (and leaves a worker slot per reservation), so running jobs drain
   until the reserved job fits. Reservations stack in queue order, so the oldest
   highest-priority big job is the next to get the machine. A reservation also
   holds the job's share of its namespace's quota.
6. Preemption (``preempt.py``): a job that does not fit (capacity, or its own
   namespace's quota), whose class may preempt and that has waited its
   ``preempt_after_s``, ends running jobs of lower priority that are
   preemptible, have run their ``min_runtime_s`` and were preempted fewer than
   ``max_preemptions`` times; a lender within its quota may also reclaim the
   jobs of a cohort namespace that borrows. The victim set is minimal, and the
   preemptor gets a reservation at once, so backfill cannot take the room the
   victims free while they terminate (terminating jobs still hold it). At most
   one preemptor per decision.
7. A job whose request exceeds the whole capacity can never start here; it is
   reported in ``Decision.unfit`` and takes no reservation.

Jobs of higher priority still start before a reserved job of lower priority:
priority is strict, reservations only stop jobs *behind* the reserved one.

Cost: O(window + running), plus at most ``max_preemption_plans`` preemption
plans of O(running log running) each.
"""

from __future__ import annotations

from .preempt import candidates, next_eligible_at, plan, preempts
from .quota import Amounts, Quota, QuotaBook, usage_of
from .room import Room, unfit_reason
from .snapshot import (
    Capacity,
    Decision,
    PolicyConfig,
    Preempt,
    QueuedJob,
    RunningJob,
    Snapshot,
    Start,
)

__all__ = [
    "Amounts",
    "Capacity",
    "Decision",
    "PolicyConfig",
    "Preempt",
    "QueuedJob",
    "Quota",
    "RunningJob",
    "Snapshot",
    "Start",
    "decide",
    "unfit_reason",
]


def decide(snapshot: Snapshot, config: PolicyConfig | None = None) -> Decision:
    """Which queued jobs to start now (see the module docstring for the rule)."""
    config = config or PolicyConfig()
    cap, now, running = snapshot.capacity, snapshot.now, snapshot.running
    room = Room(cap, running)
    book = None
    if snapshot.quotas:
        usage = snapshot.usage
        if usage is None:
            usage = usage_of((r.namespace, r.amounts) for r in running)
        book = QuotaBook(snapshot.quotas, usage)
    # preemption is looked for only if some running job could ever be a victim
    reclaim_possible = book is not None and book.has_cohorts
    victims_possible = any(
        (r.preemptible or reclaim_possible) and not r.terminating for r in running
    )
    terminating = [r for r in running if r.terminating]
    plans_left = config.max_preemption_plans if victims_possible else 0
    starts: list[Start] = []
    reserved: list[int] = []
    unfit: list[int] = []
    waiting: dict[int, str] = {}
    preempt: tuple[Preempt, ...] = ()
    retry_at: float | None = None

    for job in snapshot.queued:
        no_slot = room.no_slot()
        if no_slot and plans_left < 1:
            break  # nothing more can start: the rest need not be looked at
        if room.unfit(job):
            unfit.append(job.id)
            waiting[job.id] = unfit_reason(job, cap)
            continue
        quota_reason = None
        if book is not None:
            quota_reason = book.check(job.namespace, job.amounts)[0]
        if quota_reason is None and not no_slot and room.fits(job):
            starts.append(room.take(job))
            if book is not None:
                book.take(job.namespace, job.amounts)
            continue
        if quota_reason is not None:
            waiting[job.id] = quota_reason
        elif no_slot:
            waiting[job.id] = "waiting for a worker slot"
        else:
            waiting[job.id] = (
                "behind a reservation" if reserved else "waiting for resources"
            )
        # preemption (a quota-blocked job can only free its own namespace's)
        may_plan = job.may_preempt or (
            quota_reason is None
            and book is not None
            and book.lenders_need(job.namespace, job.amounts)
        )
        if plans_left > 0 and may_plan:
            if now - job.submitted_at < job.preempt_after_s:
                retry_at = _earliest(retry_at, job.submitted_at + job.preempt_after_s)
            else:
                plans_left -= 1
                cands = candidates(job, running, now, book)
                victims = plan(job, cands.jobs, terminating, room, book)
                if victims is None:
                    retry_at = _earliest(retry_at, next_eligible_at(running, now))
                else:
                    if victims:
                        preempt = preempts(job, victims, cands.reclaim)
                        plans_left = 0  # one preemptor per decision
                        waiting[job.id] = f"preempting {_ids(victims)}"
                    else:
                        waiting[job.id] = "waiting for preempted jobs to end"
                    _reserve(job, room, book, reserved)
                    continue
        if no_slot or quota_reason is not None:
            continue  # no reservation: see the module docstring, rules 2 and 5
        if now - job.submitted_at >= config.reserve_after_s:
            _reserve(job, room, book, reserved)
            waiting[job.id] = "resources reserved, waiting for running jobs to end"
    return Decision(
        tuple(starts), tuple(reserved), tuple(unfit), waiting, preempt, retry_at
    )


def _reserve(
    job: QueuedJob, room: Room, book: QuotaBook | None, reserved: list[int]
) -> None:
    reserved.append(job.id)
    room.reserve(job)
    if book is not None:
        book.take(job.namespace, job.amounts)


def _earliest(a: float | None, b: float | None) -> float | None:
    if a is None:
        return b
    return a if b is None else min(a, b)


def _ids(jobs: list[RunningJob]) -> str:
    return ", ".join(str(r.id) for r in jobs)
