"""The queries that must stay cheap on a queue of a million jobs: counting the
jobs not ended (``/metrics``, the overview, the queue_threshold alert),
listing jobs by state, the daemon's once-a-second look for run jobs that ended
unseen. Checked by their results and by SQLite's plan of the statements they
actually run (without statistics SQLite plans the same on an empty db as on a
huge one: a temp B-tree sorts every row of a state, a scan of the state index
reads every ended job)."""

import time

import pytest

from xqute.queue import SqliteJobScheduler, requests
from xqute.queue.active_jobs import ACTIVE_STATES_SQL, count_active, count_pending


@pytest.fixture
def store(tmp_path):
    s = SqliteJobScheduler(tmp_path / "queue.db")
    yield s
    s.close()


def set_state(store, ids, state, **extra):
    sets = ", ".join(["state = ?", *(f"{k} = ?" for k in extra)])
    store.db.write(
        lambda c: c.executemany(
            f"UPDATE job_queue SET {sets} WHERE id = ?",
            [(state, *extra.values(), i) for i in ids],
        )
    )


def plans_of(store, call):
    """The result of ``call()`` and the query plans of the SELECTs it ran."""
    conn = store.db.conn()
    seen: list[str] = []
    conn.set_trace_callback(seen.append)
    try:
        result = call()
    finally:
        conn.set_trace_callback(None)
    plans = [
        " ".join(str(r[-1]) for r in store.db.query(f"EXPLAIN QUERY PLAN {sql}"))
        for sql in seen
        if sql.lstrip().upper().startswith("SELECT") and "job_queue" in sql
    ]
    return result, plans


def test_the_active_jobs_are_counted_from_their_index_alone(store):
    ids = store.submit_jobs(
        [{"command": "true", "namespace": ns} for ns in ["a", "a", "b", "b", "b"]]
        + [{"command": "true"} for _ in range(4)]
    )
    set_state(store, ids[2:4], "waiting", eligible_at=2e9)
    set_state(store, ids[4:5], "held")
    set_state(store, ids[5:6], "running", started_at=1.0)
    set_state(store, ids[6:8], "completed", ended_at=2.0)  # not counted
    rows, plans = plans_of(store, lambda: count_active(store.db))
    assert sorted(rows) == [
        ("held", "b", None, 1),
        ("pending", "a", None, 2),
        ("pending", "default", None, 1),
        ("running", "default", None, 1),
        ("waiting", "b", None, 2),
    ]
    assert len(plans) == 1
    assert "COVERING INDEX job_queue_active" in plans[0], plans
    assert "TEMP B-TREE" not in plans[0], plans
    # finished jobs leave the index: it stays the size of the active queue
    (entries,) = store.db.query(
        "SELECT count(*) FROM job_queue INDEXED BY job_queue_active"
        f" WHERE {ACTIVE_STATES_SQL}"
    )[0]
    assert entries == 7
    assert count_pending(store.db) == 3
    assert count_pending(store.db, "a") == 2 and count_pending(store.db, "b") == 0


def test_waiting_and_held_jobs_list_in_dispatch_order_without_a_sort(store):
    ids = store.submit_jobs(
        [{"command": "true", "priority": p} for p in (0, 5, 0, 5, 1, 1)]
    )
    set_state(store, ids[:4], "waiting", eligible_at=2e9)
    set_state(store, ids[4:], "held")
    jobs, plans = plans_of(store, lambda: store.list_jobs("waiting"))
    assert [j["id"] for j in jobs] == [ids[1], ids[3], ids[0], ids[2]]
    assert all("TEMP B-TREE" not in p for p in plans), plans
    both = store.list_jobs(["held", "waiting"], limit=5)
    assert [j["id"] for j in both] == [ids[1], ids[3], ids[0], ids[2], ids[4]]


@pytest.mark.parametrize("probe", [3, 5000])
def test_finished_jobs_list_newest_first_whichever_plan(store, monkeypatch, probe):
    monkeypatch.setattr(requests, "STATE_PROBE", probe)
    ids = store.submit_jobs(
        [{"command": "true", "priority": i % 3, "name": f"j{i}"} for i in range(12)]
    )
    done = ids[:5] + ids[8:11]
    set_state(store, done, "completed", ended_at=1.0)
    set_state(store, [ids[5]], "failed", ended_at=1.0)
    jobs, plans = plans_of(store, lambda: store.list_jobs("completed", limit=4))
    assert [j["id"] for j in jobs] == done[::-1][:4]
    many = probe < len(done)
    # many of them: the table from its newest row, no sort; few: their index
    listing = plans[-1]
    assert ("TEMP B-TREE" in listing) == (not many), plans
    assert [j["id"] for j in store.list_jobs(["failed", "completed"])] == sorted(
        [*done, ids[5]], reverse=True
    )
    named = store.list_jobs("completed", name="j1*")
    assert [j["id"] for j in named] == [ids[10], ids[1]]


def test_the_look_for_run_jobs_ended_unseen_reads_open_attempts_only(store):
    from xqute.orchestration.pool_hooks import settle_orphans

    done = store.submit_jobs([{"command": "true"} for _ in range(3)])
    set_state(store, done, "completed", ended_at=1.0)
    settled, plans = plans_of(store, lambda: settle_orphans(store.db, time.time()))
    assert settled == 0
    (plan,) = plans
    # the open attempts (a small partial index) outside, each job by its id
    assert plan.startswith("SCAN a USING INDEX task_attempts_open"), plan
    assert "SEARCH q USING INTEGER PRIMARY KEY" in plan, plan
