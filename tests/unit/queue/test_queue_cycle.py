"""The db side of a pool's cycle (``queue/cycle.py``) and what it reads: the
pending window, read as the policy walks it; writes joining the cycle's
transaction."""

import pytest

from xqute.queue import SqliteJobScheduler, claims
from xqute.queue.cycle import DbCycle
from xqute.queue.dispatch import Dispatcher
from xqute.queue.extensions import PoolExtension
from xqute.queue.policy import Capacity, PolicyConfig
from xqute.queue.window import pending_window

CAP = Capacity(cpus=4, mem_mb=4096, max_workers=2)


@pytest.fixture
def store(tmp_path):
    s = SqliteJobScheduler(tmp_path / "q.db")
    yield s
    s.close()


def statements(store):
    """The statements this thread's connection runs from now on."""
    seen: list[str] = []
    store.db.conn().set_trace_callback(seen.append)
    return seen


def test_the_window_is_the_top_of_the_queue_in_dispatch_order(store):
    store.submit_jobs([{"command": "true", "priority": i % 3} for i in range(40)])
    order = [
        r[0]
        for r in store.db.query(
            "SELECT id FROM job_queue ORDER BY priority DESC, id LIMIT 30"
        )
    ]
    window = pending_window(store.db, 30, CAP)
    assert window[0].id == order[0]  # read before the rest
    assert [j.id for j in window] == order
    assert len(window) == 30 and window[-1].id == order[-1]
    assert [j.id for j in window[5:8]] == order[5:8]
    with pytest.raises(IndexError):
        window[30]


def test_the_window_reads_one_snapshot_and_close_ends_it(store, tmp_path):
    store.submit_jobs([{"command": "true"}] * 50)
    window = pending_window(store.db, 50, CAP)
    first = window[0].id
    other = SqliteJobScheduler(tmp_path / "q.db")  # another connection
    try:
        other.cancel_jobs(list(range(1, 51)))
        assert [j.id for j in window][:3] == [first, first + 1, first + 2]
        assert len(window) == 50  # what was pending when it was opened
    finally:
        other.close()
    window.close()
    assert store.db.write(lambda c: 1) == 1  # no statement left open
    assert len(pending_window(store.db, 50, CAP)) == 0


def test_a_write_inside_a_write_joins_its_transaction(store):
    (job,) = store.submit_jobs([{"command": "true"}])

    def outer(conn):
        store.db.write(
            lambda c: c.execute(
                "UPDATE job_queue SET reason = 'x' WHERE id = ?", (job,)
            )
        )
        raise RuntimeError("the outer transaction fails")

    with pytest.raises(RuntimeError, match="outer transaction fails"):
        store.db.write(outer)
    assert store.get_job_status(job)["reason"] is None  # rolled back with it


class Chain(PoolExtension):
    """When a job ends, queue the next one (a workflow's dependent)."""

    def __init__(self):
        self.queued = []

    def jobs_ended(self, conn, ended, now):
        for _ in ended:
            self.queued.append(
                conn.execute(
                    "INSERT INTO job_queue (name, command, submitted_at, run_id)"
                    " VALUES ('next', '[\"true\"]', ?, 1)",
                    (now,),
                ).lastrowid
            )
        return True


def test_a_dependent_is_claimed_in_the_transaction_that_records_the_end(
    store, tmp_path
):
    (first,) = store.submit_jobs([{"command": "true"}])
    store.db.write(lambda c: c.execute("UPDATE job_queue SET run_id = 1"))
    chain = Chain()
    cycle = DbCycle(store, "w", tmp_path, [chain], Dispatcher(8, PolicyConfig()))
    version, got, _ = cycle.run(None, [], [], [], False, False, CAP)
    assert [j.id for j in got] == [first]
    ran = statements(store)
    end = claims.Finished(first, "completed", 0, None, 1.0)
    _, got, _ = cycle.run(version, [end], [], [], True, False, CAP)
    assert [j.id for j in got] == chain.queued  # claimed at once
    assert sum(s.startswith("BEGIN") for s in ran) == 1  # in one transaction
    window_reads = [s for s in ran if "state = 'pending' AND cpus" in s]
    assert len(window_reads) == 1  # and one look at the queue
    state = store.get_job_status(chain.queued[0])["state"]
    assert state == "running"


def test_a_cycle_on_a_locked_db_fails_at_once_and_writes_nothing(store, tmp_path):
    """The pool runs its cycle on its event loop with ``Database.try_now``:
    another writer's lock raises DbBusy at once (the loop must not wait), the
    cycle wrote nothing, and run again (the db thread's turn) it claims."""
    from xqute.errors import DbBusy
    from xqute.queue.db import Database

    (job,) = store.submit_jobs([{"command": "true"}])
    cycle = DbCycle(store, "w", tmp_path, [], Dispatcher(8, PolicyConfig()))
    other = Database(store.db.path)
    holder = other.conn()
    holder.execute("BEGIN IMMEDIATE")
    try:
        with pytest.raises(DbBusy):
            store.db.try_now(cycle.run, None, [], [], [], False, False, CAP)
        assert store.get_job_status(job)["state"] == "pending"
        # the connection waits again outside try_now (SQLite's busy handler)
        assert store.db.conn().execute("PRAGMA busy_timeout").fetchone()[0] > 0
    finally:
        holder.execute("ROLLBACK")
        other.close()
    _, got, _ = store.db.try_now(cycle.run, None, [], [], [], False, False, CAP)
    assert [j.id for j in got] == [job]


ONE = Capacity(cpus=1, mem_mb=4096, max_workers=1)


def preempting(store, tmp_path):
    """Pool "old" runs a batch job (the victim) and has just decided to
    preempt it for an urgent job: (old, victim, urgent, data_version)."""
    from xqute.orchestration import resource_api

    resource_api.create_priority_class(
        store.db, {"name": "batch", "value": 0, "preemptible": True}
    )
    resource_api.create_priority_class(store.db, {"name": "urgent", "value": 1000})
    old = DbCycle(store, "old", tmp_path, [], Dispatcher(8, PolicyConfig()))
    (victim,) = store.submit_jobs([{"command": "true", "priority_class": "batch"}])
    version, got, _ = old.run(None, [], [], [], False, False, ONE)
    assert [j.id for j in got] == [victim]
    (urgent,) = store.submit_jobs([{"command": "true", "priority_class": "urgent"}])
    running = [old.dispatcher.running_job(got[0], False)]
    # (dirty: this connection's own submit does not change data_version)
    version, got, _ = old.run(version, [], [], running, True, True, ONE)
    assert got == [] and [p.id for p in old.dispatcher.take()[0]] == [victim]
    return old, victim, urgent, version


def test_a_preemptor_re_queued_after_a_crash_starts_before_its_victim(store, tmp_path):
    """The pool that preempted a victim for an urgent job dies just after it
    claimed the urgent job (the victim re-queued), before the urgent job ran:
    the pool that adopts it re-queues it (its run was lost) and, in the same
    cycle, starts it -- not the victim waiting behind it, which the urgent job
    would then preempt a second time (seen in CI when the cycle decided before
    it recorded the re-queue)."""
    old, victim, urgent, version = preempting(store, tmp_path)
    requeued = claims.Finished(victim, "pending", 143, "preempted", 1.0, urgent)
    _, got, _ = old.run(version, [requeued], [], [], False, False, ONE)
    assert [j.id for j in got] == [urgent]
    # "old" is killed -9 here; "new" adopts the urgent job, which never ran
    new = DbCycle(store, "new", tmp_path, [], Dispatcher(8, PolicyConfig()))
    assert [j.id for j in claims.adopt_jobs(store.db, ["old"], "new")] == [urgent]
    lost = claims.Finished(urgent, "pending", None, "re-queued: lost", 2.0)
    _, got, _ = new.run(None, [lost], [], [], False, False, ONE)
    assert [j.id for j in got] == [urgent]
    victim_row = store.get_job_status(victim)
    assert victim_row["state"] == "pending" and victim_row["preemptions"] == 1


def test_an_end_recorded_by_a_pool_that_lost_the_job_changes_nothing(store, tmp_path):
    """A pool taken for dead (its heartbeat went stale) while it preempted a
    job, whose adopter carries the preemption on: the stale pool's late record
    of the victim's end neither re-queues it nor counts the preemption (nor
    ends the run's resource usage); the adopter's record does, once."""
    old, victim, urgent, version = preempting(store, tmp_path)
    assert [j.id for j in claims.adopt_jobs(store.db, ["old"], "new")] == [victim]
    requeued = claims.Finished(victim, "pending", 143, "preempted", 1.0, urgent)
    old.run(version, [requeued], [], None, False, False, ONE)  # (no dispatch)

    def seen():
        row = store.get_job_status(victim)
        return (row["state"], row["worker"], row["preemptions"], row["attempts"],
                store.db.query("SELECT outcome FROM preemptions"),
                store.db.query("SELECT count(*) FROM events WHERE"
                               " type = 'job.preempted'")[0][0],
                store.db.query("SELECT ended_at FROM resource_usage"
                               " WHERE job_id = ?", (victim,)))  # fmt: skip

    assert seen() == ("running", "new", 0, 1, [(None,)], 0, [(None,)])
    new = DbCycle(store, "new", tmp_path, [], Dispatcher(8, PolicyConfig()))
    new.run(None, [requeued], [], None, False, False, ONE)
    assert seen() == ("pending", None, 1, 0, [("requeued",)], 1, [(1.0,)])
