"""v3 queue states and pool extensions, through the store's functions."""

import time

import pytest

from xqute import ConfigError
from xqute.queue import SqliteJobScheduler, claims
from xqute.queue.extensions import PoolExtension, load_extensions
from xqute.queue.policy import Start


@pytest.fixture
def store(tmp_path):
    s = SqliteJobScheduler(tmp_path / "q.db")
    yield s
    s.close()


def set_state(store, job_id, state, **cols):
    sets = ", ".join(f"{k} = ?" for k in ["state", *cols])
    store.db.write(
        lambda c: c.execute(
            f"UPDATE job_queue SET {sets} WHERE id = ?", [state, *cols.values(), job_id]
        )
    )


def test_waiting_and_held_jobs_cancel_like_pending_ones(store):
    a, b, c = store.submit_jobs([{"command": "true"}] * 3)
    set_state(store, a, "waiting", eligible_at=time.time() + 60)
    set_state(store, b, "held")
    assert store.count_jobs()["waiting"] == 1
    assert store.cancel_jobs(all_jobs=True) == {
        a: "cancelled",
        b: "cancelled",
        c: "cancelled",
    }
    assert store.get_job_status(a)["reason"] == "cancelled while waiting"
    assert store.get_job_status(b)["reason"] == "cancelled while held"


def test_promote_waiting_is_an_index_range(store):
    now = time.time()
    a, b = store.submit_jobs([{"command": "true"}] * 2)
    set_state(store, a, "waiting", eligible_at=now - 1)
    set_state(store, b, "waiting", eligible_at=now + 30)
    assert claims.promote_waiting(store.db, now) == (1, now + 30)
    assert store.get_job_status(a)["state"] == "pending"
    assert claims.promote_waiting(store.db, now) == (0, now + 30)  # nothing due
    assert claims.promote_waiting(store.db, now + 31) == (1, None)
    plan = store.db.query(
        "EXPLAIN QUERY PLAN SELECT eligible_at FROM job_queue WHERE state = 'waiting'"
        " ORDER BY eligible_at LIMIT 1"
    )
    assert "job_queue_eligible" in str([tuple(r) for r in plan])


class Follower(PoolExtension):
    """Queues job 'next' when a job of run 1 ends (in the same transaction)."""

    def __init__(self):
        self.ended, self.claimed = [], []

    def jobs_ended(self, conn, ended, now):
        self.ended += ended
        conn.execute(
            "INSERT INTO job_queue (name, command, submitted_at, run_id)"
            " VALUES ('next', '\"true\"', ?, 1)",
            (now,),
        )
        return True

    def jobs_claimed(self, conn, claimed, now):
        self.claimed += claimed


def test_extensions_run_inside_the_finish_and_claim_transactions(store):
    ext = Follower()
    plain = store.submit_job("true")
    of_run = store.submit_job("true")
    set_state(store, of_run, "pending", run_id=1)
    got, more = claims.sync_cycle(
        store.db,
        "w",
        1.0,
        claims=[(Start(plain), "/x"), (Start(of_run), "/y")],
        extensions=[ext],
    )
    assert [j.id for j in got] == [plain, of_run] and not more
    assert ext.claimed == [(of_run, 1)] and got[1].run_id == 1
    done = [claims.Finished(j, "completed", 0, None, 2.0) for j in (plain, of_run)]
    got, more = claims.sync_cycle(store.db, "w", 2.0, finished=done, extensions=[ext])
    assert more and [e.id for e in ext.ended] == [of_run]  # only jobs of runs
    assert ext.ended[0].job_dir == "/y" and ext.ended[0].state == "completed"
    assert [j["name"] for j in store.list_jobs(state="pending")] == ["next"]


def test_a_failing_extension_rolls_the_finish_back(store):
    class Broken(PoolExtension):
        def jobs_ended(self, conn, ended, now):
            raise RuntimeError("boom")

    job = store.submit_job("true")
    set_state(store, job, "pending", run_id=1)
    claims.sync_cycle(store.db, "w", 1.0, claims=[(Start(job), "/x")])
    with pytest.raises(RuntimeError):
        claims.sync_cycle(
            store.db,
            "w",
            2.0,
            finished=[claims.Finished(job, "completed", 0, None, 2.0)],
            extensions=[Broken()],
        )
    assert store.get_job_status(job)["state"] == "running"  # nothing half-done


def test_load_extensions_by_name_or_object():
    ext = Follower()
    assert load_extensions([ext]) == [ext]
    with pytest.raises(ConfigError, match="pool extension 'nope' is not allowed"):
        load_extensions(["nope"])


def test_reconcile_runs_again_after_the_clock_steps_back():
    """The next reconcile is due at the time the previous call returned, at
    most its interval ahead; after a backward step of the wall clock it runs
    at once, not when the wall clock is back where it was (an hour later)."""
    from xqute.queue.extensions import Reconciler

    class Ext(PoolExtension):
        calls: list[float] = []

        def reconcile(self, db, now):
            self.calls.append(now)
            return now + 0.5

    ext = Ext()
    reconciler = Reconciler([ext])
    assert reconciler.any_due(1000.0) and reconciler.run_due(None, 1000.0)
    assert not reconciler.any_due(1000.2)  # the pool's loop stays off the db
    assert not reconciler.run_due(None, 1000.2)  # not due yet
    assert reconciler.any_due(1000.0 - 3600)
    assert reconciler.run_due(None, 1000.0 - 3600)  # the clock stepped back
    assert reconciler.wait_s(1000.0 - 3600, 5.0) == 0.5
    assert ext.calls == [1000.0, 1000.0 - 3600]
