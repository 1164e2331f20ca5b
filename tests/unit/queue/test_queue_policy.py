"""The dispatch function on plain data: no db, no processes, no clock."""

from xqute.queue.policy import (
    Capacity,
    PolicyConfig,
    QueuedJob,
    RunningJob,
    Snapshot,
    decide,
)

CAP = Capacity(cpus=4, mem_mb=8000, gpu_ids=(0, 1), max_workers=8)


def queued(*jobs):
    """Jobs in dispatch order: priority DESC, then id (what the store returns)."""
    return sorted(jobs, key=lambda j: (-j.priority, j.id))


def started(snapshot, config=None):
    return [s.id for s in decide(snapshot, config).start]


def test_priority_then_submission_order():
    jobs = queued(
        QueuedJob(1, priority=0),
        QueuedJob(2, priority=5),
        QueuedJob(3, priority=5),
        QueuedJob(4, priority=1),
    )
    cap = Capacity(cpus=3, mem_mb=100, max_workers=8)
    assert started(Snapshot(jobs, [], cap, now=0)) == [2, 3, 4]


def test_jobs_start_only_when_they_fit():
    jobs = queued(
        QueuedJob(1, cpus=2, mem_mb=6000),
        QueuedJob(2, cpus=2, mem_mb=3000),  # memory is short after job 1
        QueuedJob(3, cpus=1, mem_mb=1000),
        QueuedJob(4, cpus=2),  # one cpu left
    )
    assert started(Snapshot(jobs, [], CAP, now=0)) == [1, 3]


def test_running_jobs_use_capacity():
    running = [RunningJob(9, cpus=3, mem_mb=1000, gpu_ids=(0,))]
    jobs = queued(QueuedJob(1, cpus=2), QueuedJob(2, gpus=2), QueuedJob(3, gpus=1))
    decision = decide(Snapshot(jobs, running, CAP, now=0))
    assert [(s.id, s.gpu_ids) for s in decision.start] == [(3, (1,))]


def test_max_workers_caps_concurrency():
    cap = Capacity(cpus=64, mem_mb=10**6, max_workers=2)
    running = [RunningJob(9)]
    jobs = queued(*(QueuedJob(i) for i in range(1, 5)))
    assert started(Snapshot(jobs, running, cap, now=0)) == [1]


def test_gpus_are_assigned_by_lowest_free_index():
    cap = Capacity(cpus=8, mem_mb=1000, gpu_ids=(0, 1, 2, 3), max_workers=8)
    running = [RunningJob(9, gpu_ids=(1,))]
    jobs = queued(QueuedJob(1, gpus=2), QueuedJob(2, gpus=0), QueuedJob(3, gpus=1))
    decision = decide(Snapshot(jobs, running, cap, now=0))
    assert [(s.id, s.gpu_ids) for s in decision.start] == [
        (1, (0, 2)),
        (2, ()),
        (3, (3,)),
    ]


def test_cpu_pinning_gives_distinct_cpus():
    cap = Capacity(cpus=4, mem_mb=1000, max_workers=8, cpu_ids=(0, 1, 2, 3))
    running = [RunningJob(9, cpus=1, cpu_ids=(0,))]
    jobs = queued(QueuedJob(1, cpus=2), QueuedJob(2, cpus=1), QueuedJob(3, cpus=1))
    decision = decide(Snapshot(jobs, running, cap, now=0))
    assert [(s.id, s.cpu_ids) for s in decision.start] == [(1, (1, 2)), (2, (3,))]


def test_backfill_before_the_reservation_time():
    # job 1 needs all 4 cpus; 2 are busy: small jobs behind it may pass it
    running = [RunningJob(9, cpus=2)]
    jobs = queued(
        QueuedJob(1, cpus=4, submitted_at=100), QueuedJob(2, submitted_at=101)
    )
    decision = decide(
        Snapshot(jobs, running, CAP, now=110), PolicyConfig(reserve_after_s=30)
    )
    assert [s.id for s in decision.start] == [2]
    assert decision.reserved == ()
    assert decision.waiting[1] == "waiting for resources"


def test_reservation_after_waiting_drains_running_jobs():
    running = [RunningJob(9, cpus=2)]
    jobs = queued(
        QueuedJob(1, cpus=4, submitted_at=100), QueuedJob(2, submitted_at=120)
    )
    decision = decide(
        Snapshot(jobs, running, CAP, now=131), PolicyConfig(reserve_after_s=30)
    )
    assert decision.start == ()
    assert decision.reserved == (1,)
    assert decision.waiting[2] == "behind a reservation"
    # once job 9 ends, job 1 starts before anything behind it
    decision = decide(Snapshot(jobs, [], CAP, now=140), PolicyConfig(30))
    assert [s.id for s in decision.start] == [1]


def test_jobs_that_fit_beside_a_reservation_still_start():
    # job 1 waits for 2 GPUs (one is busy); cpu-only jobs fit beside it
    cap = Capacity(cpus=8, mem_mb=8000, gpu_ids=(0, 1), max_workers=8)
    running = [RunningJob(9, cpus=1, gpu_ids=(0,))]
    jobs = queued(
        QueuedJob(1, cpus=2, gpus=2, submitted_at=0),
        QueuedJob(2, cpus=4, submitted_at=1),  # 8-1-2 = 5 cpus beside it: fits
        QueuedJob(3, cpus=2, submitted_at=90),  # 1 cpu left beside it: waits
        QueuedJob(4, gpus=1, submitted_at=90),  # the free GPU is reserved: waits
    )
    decision = decide(Snapshot(jobs, running, cap, now=100), PolicyConfig(30))
    assert [s.id for s in decision.start] == [2]
    assert decision.reserved == (1,)


def test_reservation_keeps_a_worker_slot():
    cap = Capacity(cpus=8, mem_mb=8000, max_workers=2)
    running = [RunningJob(9, cpus=6)]
    jobs = queued(QueuedJob(1, cpus=4, submitted_at=0), QueuedJob(2, submitted_at=1))
    assert started(Snapshot(jobs, running, cap, now=100), PolicyConfig(30)) == []
    assert started(Snapshot(jobs, running, cap, now=10), PolicyConfig(30)) == [2]


def test_higher_priority_is_not_blocked_by_a_reservation_behind_it():
    running = [RunningJob(9, cpus=2)]
    jobs = queued(
        QueuedJob(1, cpus=4, priority=0, submitted_at=0),
        QueuedJob(2, cpus=1, priority=9, submitted_at=50),
    )
    assert started(Snapshot(jobs, running, CAP, now=100), PolicyConfig(30)) == [2]


def test_reservations_stack_in_queue_order():
    """Every job that waited past reserve_after_s reserves, oldest first, so no
    job starves, not only the first big one."""
    cap = Capacity(cpus=8, mem_mb=8000, max_workers=8)
    running = [RunningJob(9, cpus=6)]
    jobs = queued(
        QueuedJob(1, cpus=8, submitted_at=0),
        QueuedJob(2, cpus=3, submitted_at=0),  # reserved too, behind job 1
        QueuedJob(3, cpus=1, submitted_at=99),
    )
    decision = decide(Snapshot(jobs, running, cap, now=100), PolicyConfig(30))
    assert decision.reserved == (1, 2) and decision.start == ()


def test_jobs_that_can_never_fit_are_reported_not_reserved():
    jobs = queued(
        QueuedJob(1, cpus=16, submitted_at=0),
        QueuedJob(2, gpus=3, submitted_at=0),
        QueuedJob(3, submitted_at=0),
    )
    decision = decide(Snapshot(jobs, [], CAP, now=1000), PolicyConfig(30))
    assert decision.unfit == (1, 2)
    assert decision.reserved == ()
    assert [s.id for s in decision.start] == [3]
    assert "cpus 16 > 4" in decision.waiting[1]
    assert "gpus 3 > 2" in decision.waiting[2]


def test_empty_queue_and_full_pool():
    assert decide(Snapshot([], [], CAP, now=0)).start == ()
    cap = Capacity(cpus=1, mem_mb=10, max_workers=1)
    assert started(Snapshot([QueuedJob(1)], [RunningJob(2)], cap, now=0)) == []


def test_gpus_counted_without_indexes_for_a_cluster():
    cap = Capacity(cpus=100, mem_mb=10**6, max_workers=8, gpus=4)
    running = [RunningJob(9, gpus=3)]
    jobs = queued(QueuedJob(1, gpus=2), QueuedJob(2, gpus=1), QueuedJob(3, gpus=5))
    decision = decide(Snapshot(jobs, running, cap, now=0))
    assert [(s.id, s.gpu_ids) for s in decision.start] == [(2, ())]
    assert decision.unfit == (3,)
