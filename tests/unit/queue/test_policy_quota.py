"""Namespace quotas in the dispatch function, on plain data."""

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
from xqute.queue.quota import Amounts, Limits

BIG = Capacity(cpus=64, mem_mb=256_000, gpu_ids=(0, 1, 2, 3), max_workers=64)


def queued(*jobs):
    return sorted(jobs, key=lambda j: (-j.priority, j.id))


def run(jobs, running=(), quotas=None, usage=None, now=0, cap=BIG, config=None):
    snap = Snapshot(queued(*jobs), list(running), cap, now, quotas or {}, usage)
    return decide(snap, config)


def started(decision):
    return [s.id for s in decision.start]


@pytest.mark.parametrize(
    "quota, jobs, running, expect_started, reason",
    [
        # cpu: 30 running + 4 asked > 32
        (
            Quota(cpus=32),
            [QueuedJob(1, cpus=4, namespace="team-a")],
            [RunningJob(9, cpus=30, namespace="team-a")],
            [],
            "quota team-a: cpu 30+4 > 32",
        ),
        (
            Quota(cpus=32),
            [QueuedJob(1, cpus=2, namespace="team-a")],
            [RunningJob(9, cpus=30, namespace="team-a")],
            [1],
            None,
        ),
        (
            Quota(jobs=2),
            [QueuedJob(i, namespace="team-a") for i in (1, 2, 3)],
            [RunningJob(9, namespace="team-a")],
            [1],
            "quota team-a: jobs 2+1 > 2",
        ),
        (
            Quota(mem_mb=4096),
            [QueuedJob(1, mem_mb=3000, namespace="team-a")],
            [RunningJob(9, mem_mb=2000, namespace="team-a")],
            [],
            "quota team-a: mem 2000M+3000M > 4096M",
        ),
        (
            Quota(gpus=1),
            [
                QueuedJob(1, gpus=1, namespace="team-a"),
                QueuedJob(2, namespace="team-a"),
            ],
            [RunningJob(9, gpu_ids=(0,), namespace="team-a")],
            [2],  # a cpu-only job is not held by the gpu limit
            "quota team-a: gpu 1+1 > 1",
        ),
        (
            Quota(storage_mb=1000),
            [QueuedJob(1, storage_mb=600, namespace="team-a")],
            [RunningJob(9, storage_mb=500, namespace="team-a")],
            [],
            "quota team-a: storage 500M+600M > 1000M",
        ),
        # another namespace's jobs do not count
        (
            Quota(cpus=4),
            [QueuedJob(1, cpus=4, namespace="team-a")],
            [RunningJob(9, cpus=30, namespace="team-b")],
            [1],
            None,
        ),
    ],
)
def test_quota_limits(quota, jobs, running, expect_started, reason):
    decision = run(jobs, running, {"team-a": quota})
    assert started(decision) == expect_started
    if reason:
        assert reason in decision.waiting.values()


def test_quota_counts_jobs_started_in_the_same_decision():
    jobs = [QueuedJob(i, cpus=2, namespace="a") for i in range(1, 6)]
    decision = run(jobs, quotas={"a": Quota(cpus=5)})
    assert started(decision) == [1, 2]
    assert decision.waiting[3] == "quota a: cpu 4+2 > 5"


def test_usage_of_other_pools_counts():
    # this pool runs nothing, but the namespace holds 7 cpus elsewhere
    decision = run(
        [QueuedJob(1, cpus=2, namespace="a")],
        quotas={"a": Quota(cpus=8)},
        usage={"a": Amounts(cpus=7, jobs=3)},
    )
    assert started(decision) == []
    assert decision.waiting[1] == "quota a: cpu 7+2 > 8"


def test_a_namespace_at_its_limit_holds_nobody_back():
    """Jobs over quota take no reservation, even after waiting for ages."""
    cap = Capacity(cpus=4, mem_mb=8000, max_workers=4)
    jobs = [
        QueuedJob(1, cpus=4, priority=9, namespace="a", submitted_at=0),
        QueuedJob(2, cpus=1, namespace="b", submitted_at=0),
    ]
    decision = run(
        jobs,
        [RunningJob(9, cpus=2, namespace="a")],
        {"a": Quota(cpus=4)},
        now=1000,
        cap=cap,
        config=PolicyConfig(reserve_after_s=30),
    )
    assert decision.reserved == ()
    assert started(decision) == [2]


def test_a_reservation_holds_its_namespace_quota():
    """A reserved job's share of the quota is not given to jobs behind it."""
    jobs = [
        QueuedJob(1, cpus=4, gpus=4, namespace="a", submitted_at=0),  # GPUs busy
        QueuedJob(2, cpus=2, namespace="a", submitted_at=0),
        QueuedJob(3, cpus=1, namespace="a", submitted_at=0),
    ]
    busy = [RunningJob(9, gpu_ids=(0,), namespace="x")]
    quotas = {"a": Quota(cpus=5)}
    decision = run(jobs, busy, quotas, now=100, config=PolicyConfig(30))
    assert decision.reserved == (1,)
    assert started(decision) == [3]  # 4 reserved + 1 <= 5
    assert decision.waiting[2] == "quota a: cpu 4+2 > 5"
    # before job 1 reserves, backfill takes the quota
    decision = run(jobs, busy, quotas, now=10, config=PolicyConfig(30))
    assert started(decision) == [2, 3]


def ra(cpus, id=9):
    return RunningJob(id, cpus=cpus, namespace="a")


def rb(cpus, id=8):
    return RunningJob(id, cpus=cpus, namespace="b")


COHORT = {
    "a": Quota(cpus=4, cohort="shared", borrowing_limit=Limits(cpus=4)),
    "b": Quota(cpus=8, cohort="shared"),
}


@pytest.mark.parametrize(
    "running, job, expect",
    [
        # b is idle: a borrows 2 cpus
        (
            [RunningJob(9, cpus=4, namespace="a")],
            QueuedJob(1, cpus=2, namespace="a"),
            True,
        ),
        # at most 4 above its own 4
        (
            [ra(4)],
            QueuedJob(1, cpus=5, namespace="a"),
            "quota a: cpu 4+5 > 4 (borrowing limit 4)",
        ),
        # b uses its 8: nothing idle to borrow
        (
            [
                RunningJob(9, cpus=4, namespace="a"),
                RunningJob(8, cpus=8, namespace="b"),
            ],
            QueuedJob(1, cpus=1, namespace="a"),
            "quota a: cpu 4+1 > 4 (cohort shared has no idle quota)",
        ),
        # b uses 6 of 8: 2 idle
        (
            [
                RunningJob(9, cpus=4, namespace="a"),
                RunningJob(8, cpus=6, namespace="b"),
            ],
            QueuedJob(1, cpus=3, namespace="a"),
            "quota a: cpu 4+3 > 4 (cohort shared has no idle quota)",
        ),
        (
            [
                RunningJob(9, cpus=4, namespace="a"),
                RunningJob(8, cpus=6, namespace="b"),
            ],
            QueuedJob(1, cpus=2, namespace="a"),
            True,
        ),
    ],
)
def test_cohort_borrowing(running, job, expect):
    decision = run([job], running, COHORT)
    if expect is True:
        assert started(decision) == [1]
    else:
        assert started(decision) == []
        assert decision.waiting[1] == expect


def test_lender_reclaims_borrowed_capacity_at_any_priority():
    cap = Capacity(cpus=8, mem_mb=8000, max_workers=8)
    running = [
        RunningJob(7, cpus=4, namespace="a", priority=50, started_at=0),
        RunningJob(8, cpus=2, namespace="a", priority=50, started_at=5),  # borrowed
        RunningJob(9, cpus=2, namespace="b", priority=0, started_at=0),
    ]
    quotas = {"a": Quota(cpus=4, cohort="c"), "b": Quota(cpus=4, cohort="c")}
    job = QueuedJob(1, cpus=2, namespace="b", priority=0)  # within b's own 4
    decision = run([job], running, quotas, cap=cap, now=10)
    assert [(p.id, p.for_job) for p in decision.preempt] == [(8, 1)]
    assert "reclaims quota a borrowed" in decision.preempt[0].reason
    assert decision.reserved == (1,)


def test_a_borrower_does_not_reclaim():
    cap = Capacity(cpus=8, mem_mb=8000, max_workers=8)
    running = [
        RunningJob(7, cpus=6, namespace="a", started_at=0),  # a borrows 2
        RunningJob(9, cpus=2, namespace="b", started_at=0),
    ]
    quotas = {"a": Quota(cpus=4, cohort="c"), "b": Quota(cpus=4, cohort="c")}
    # b asking 4 more would itself borrow: no reclaim for it
    decision = run([QueuedJob(1, cpus=4, namespace="b")], running, quotas, cap=cap)
    assert decision.preempt == ()
