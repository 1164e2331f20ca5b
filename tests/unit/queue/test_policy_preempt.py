"""Priority classes and preemption in the dispatch function, on plain data."""

import dataclasses

import pytest

from xqute.queue.policy import (
    Capacity,
    PolicyConfig,
    QueuedJob,
    Quota,
    RunningJob,
    Snapshot,
    decide,
)

CAP = Capacity(cpus=4, mem_mb=8000, gpu_ids=(0, 1), max_workers=4)
HIGH = dict(priority=1000, may_preempt=True)


def batch(id, started_at=0.0, **kw):
    """A running job of a preemptible class (priority 0)."""
    return RunningJob(id, started_at=started_at, preemptible=True, **kw)


def decide_on(jobs, running, now=100.0, cap=CAP, quotas=None, config=None):
    jobs = sorted(jobs, key=lambda j: (-j.priority, j.id))
    return decide(Snapshot(jobs, running, cap, now, quotas or {}), config)


def victims(decision):
    return [p.id for p in decision.preempt]


def test_a_full_pool_of_batch_jobs_yields_one_victim():
    running = [batch(i, started_at=i) for i in range(1, 5)]  # 4 slots full
    decision = decide_on([QueuedJob(10, **HIGH)], running)
    # the most recently started goes: the least work lost
    assert victims(decision) == [4]
    assert decision.preempt[0].for_job == 10
    assert decision.preempt[0].reason == "preempted by job 10 (priority 1000 > 0)"
    assert decision.reserved == (10,)
    assert decision.start == ()
    assert decision.waiting[10] == "preempting 4"


@pytest.mark.parametrize(
    "victim, why",
    [
        (RunningJob(1), "not preemptible"),
        (batch(1, priority=1000), "same priority"),
        (batch(1, priority=2000), "higher priority"),
        (batch(1, min_runtime_s=600), "inside its min_runtime"),
        (batch(1, preemptions=3, max_preemptions=3), "preempted often enough"),
        (batch(1, terminating=True), "being killed already"),
    ],
)
def test_who_is_never_a_victim(victim, why):
    cap = Capacity(cpus=1, mem_mb=8000, max_workers=4)
    decision = decide_on([QueuedJob(10, **HIGH)], [victim], cap=cap)
    assert decision.preempt == (), why


def test_a_class_that_may_not_preempt_waits():
    running = [batch(i) for i in range(1, 5)]
    decision = decide_on([QueuedJob(10, priority=1000)], running)
    assert decision.preempt == ()


def test_lowest_priority_first_then_most_recent():
    cap = Capacity(cpus=3, mem_mb=8000, max_workers=8)
    running = [
        batch(1, priority=5, started_at=50),
        batch(2, priority=0, started_at=10),
        batch(3, priority=0, started_at=20),
    ]
    decision = decide_on([QueuedJob(10, cpus=2, **HIGH)], running, cap=cap)
    assert victims(decision) == [3, 2]


def test_the_victim_set_is_minimal():
    """Greedy order takes the small recent job first; it turns out unneeded once
    the big one is in, so it is spared."""
    cap = Capacity(cpus=4, mem_mb=8000, max_workers=8)
    running = [batch(1, cpus=3, started_at=10), batch(2, cpus=1, started_at=20)]
    decision = decide_on([QueuedJob(10, cpus=3, **HIGH)], running, cap=cap)
    assert victims(decision) == [1]


def test_victims_are_chosen_for_what_is_short():
    # the preemptor needs a GPU: the cpu-only job is spared
    cap = Capacity(cpus=8, mem_mb=8000, gpu_ids=(0,), max_workers=8)
    running = [batch(1, gpu_ids=(0,), started_at=0), batch(2, cpus=7, started_at=50)]
    decision = decide_on([QueuedJob(10, gpus=1, cpus=1, **HIGH)], running, cap=cap)
    assert victims(decision) == [1]


def test_no_victims_when_even_all_candidates_are_not_enough():
    cap = Capacity(cpus=4, mem_mb=8000, max_workers=8)
    running = [batch(1, cpus=2), RunningJob(2, cpus=2)]  # job 2 is not preemptible
    decision = decide_on([QueuedJob(10, cpus=4, **HIGH)], running, cap=cap)
    assert decision.preempt == ()


def test_preempt_after_waits_then_preempts():
    running = [batch(i) for i in range(1, 5)]
    job = QueuedJob(10, submitted_at=100, preempt_after_s=120, **HIGH)
    decision = decide_on([job], running, now=150)
    assert decision.preempt == ()
    assert decision.retry_at == 220  # decide again then, even if nothing changes
    assert victims(decide_on([job], running, now=220)) == [4]


def test_retry_at_when_victims_leave_their_min_runtime():
    running = [batch(1, started_at=90, min_runtime_s=60, cpus=4)]
    cap = Capacity(cpus=4, mem_mb=8000, max_workers=4)
    decision = decide_on([QueuedJob(10, **HIGH)], running, now=100, cap=cap)
    assert decision.preempt == () and decision.retry_at == 150
    assert victims(decide_on([QueuedJob(10, **HIGH)], running, now=150, cap=cap)) == [1]


def test_terminating_victims_are_waited_for_not_doubled():
    """Next cycle, the victim still runs (terminating): the preemptor keeps its
    reservation and picks no further victim."""
    running = [batch(i, started_at=i) for i in range(1, 4)]
    running.append(batch(4, started_at=4, terminating=True))
    decision = decide_on([QueuedJob(10, **HIGH), QueuedJob(11)], running)
    assert decision.preempt == ()
    assert decision.reserved == (10,)
    assert decision.waiting[10] == "waiting for preempted jobs to end"


def test_backfill_cannot_take_the_freed_room():
    """Room frees up as victims end; the preemptor's reservation keeps it."""
    cap = Capacity(cpus=4, mem_mb=8000, max_workers=8)
    running = [batch(1, cpus=2, started_at=1), batch(2, cpus=1, started_at=2)]
    jobs = [QueuedJob(10, cpus=4, **HIGH), QueuedJob(11, cpus=1)]
    decision = decide_on(jobs, running, cap=cap)
    assert sorted(victims(decision)) == [1, 2]
    assert decision.start == ()  # job 11 would fit the free cpu, but it is held
    # victim 1 ended, 2 terminates: still held
    running = [dataclasses.replace(running[1], terminating=True)]
    decision = decide_on(jobs, running, cap=cap)
    assert decision.start == () and decision.preempt == ()
    # both gone: the preemptor starts first
    assert [s.id for s in decide_on(jobs, [], cap=cap).start] == [10]


def test_one_preemptor_per_decision():
    running = [batch(i, started_at=i) for i in range(1, 5)]
    jobs = [QueuedJob(10, **HIGH), QueuedJob(11, **HIGH)]
    decision = decide_on(jobs, running)
    assert {p.for_job for p in decision.preempt} == {10}


def test_preemption_plans_per_decision_are_capped():
    cap = Capacity(cpus=2, mem_mb=8000, gpu_ids=(0,), max_workers=8)
    # job 2 holds the only GPU and cannot be preempted
    running = [batch(1, cpus=2), RunningJob(2, cpus=0, gpu_ids=(0,))]
    # ten preemptors that no victim can help (fresh: no reservations), then one
    jobs = [QueuedJob(i, gpus=1, submitted_at=100, **HIGH) for i in range(10, 20)]
    jobs.append(QueuedJob(30, priority=999, may_preempt=True))
    config = PolicyConfig(max_preemption_plans=3)
    assert decide_on(jobs, running, cap=cap, config=config).preempt == ()
    config = PolicyConfig(max_preemption_plans=11)
    assert victims(decide_on(jobs, running, cap=cap, config=config)) == [1]


def test_a_preemptor_over_its_quota_preempts_its_own_namespace():
    cap = Capacity(cpus=8, mem_mb=8000, max_workers=8)
    running = [
        batch(1, cpus=2, namespace="a", started_at=1),
        batch(2, cpus=2, namespace="b", started_at=2),  # lower, newer, other ns
    ]
    quotas = {"a": Quota(cpus=2)}
    job = QueuedJob(10, cpus=2, namespace="a", **HIGH)
    decision = decide_on([job], running, cap=cap, quotas=quotas)
    # the machine has room; the quota has not: only a's job helps
    assert victims(decision) == [1]


def test_slots_are_freed_by_preemption_too():
    cap = Capacity(cpus=64, mem_mb=64000, max_workers=2)
    running = [batch(1, started_at=5), RunningJob(2, started_at=9)]
    decision = decide_on([QueuedJob(10, **HIGH)], running, cap=cap)
    assert victims(decision) == [1]


def test_without_preemptible_jobs_a_full_pool_looks_no_further():
    """The fast path: no candidate victims, no free slot: nothing is looked at."""
    running = [RunningJob(i) for i in range(1, 5)]
    decision = decide_on([QueuedJob(10, **HIGH), QueuedJob(11)], running)
    assert decision.waiting == {} and decision.preempt == ()
