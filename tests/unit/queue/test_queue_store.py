"""The store through its public API, on real SQLite files."""

import json
import sqlite3
import stat
import threading
import time

import pytest

from xqute import ConfigError, StoreError
from xqute.queue import JobNotFoundError, SqliteJobScheduler, claims, window
from xqute.queue import db as dbmod
from xqute.queue.db import Database, default_db_path
from xqute.queue.policy import Capacity, Start
from xqute.queue.schema import SCHEMA_VERSION, V1_DDL


@pytest.fixture
def store(tmp_path):
    s = SqliteJobScheduler(tmp_path / "state" / "queue.db")
    yield s
    s.close()


def test_submit_status_list_cancel(store):
    a = store.submit_job(
        command="python process.py 1",
        working_dir="/data/1",
        job_name="process_1",
        cpus=2,
        memory="4G",
        gpus=1,
        priority=5,
        timeout="1h",
        env={"K": "V"},
        metadata={"owner": "me"},
    )
    b = store.submit_job(["echo", "a b"], job_name="echo")
    st = store.get_job_status(a)
    assert st["state"] == "pending" and st["return_code"] is None
    assert st["command"] == "python process.py 1"
    assert (st["cpus"], st["mem_mb"], st["gpus"], st["timeout_s"]) == (2, 4096, 1, 3600)
    assert st["env"] == {"K": "V"} and st["metadata"] == {"owner": "me"}
    assert st["stdout"] is None and st["submitted_at"] <= time.time()
    assert store.get_job_status(b)["command"] == ["echo", "a b"]
    # listing: priority first
    assert [j["id"] for j in store.list_jobs()] == [a, b]
    assert [j["id"] for j in store.list_jobs(name="proc*")] == [a]
    assert store.list_jobs(state="completed") == []
    assert store.cancel_job(a) == "cancelled"
    assert store.cancel_job(a) == "already cancelled"  # not cancelled twice
    assert store.get_job_status(a)["state"] == "cancelled"
    assert [j["id"] for j in store.list_jobs()] == [b]
    assert [j["id"] for j in store.list_jobs(state="all")] == [b, a]
    assert store.count_jobs()["cancelled"] == 1


def test_submit_jobs_in_one_batch(store):
    ids = store.submit_jobs(
        [{"command": ["true"], "name": f"j{i}", "priority": i % 3} for i in range(500)]
    )
    assert ids == list(range(1, 501))
    assert store.count_jobs()["pending"] == 500
    top = store.list_jobs(limit=3)
    assert [(j["id"], j["priority"]) for j in top] == [(3, 2), (6, 2), (9, 2)]
    with pytest.raises(ConfigError, match="bogus"):
        store.submit_jobs([{"command": "true"}, {"command": "x", "bogus": 1}])
    assert store.count_jobs()["pending"] == 500  # all or nothing


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"command": ""}, "empty"),
        ({"command": []}, "empty"),
        ({"command": 3}, "str"),
        ({"command": "x", "memory": "4X"}, "memory '4X'"),
        ({"command": "x", "timeout": "soon"}, "timeout 'soon'"),
        ({"command": "x", "timeout": -1}, "positive"),
        ({"command": "x", "cpus": 0}, "cpus"),
        ({"command": "x", "gpus": -1}, "gpus"),
        ({"command": "x", "priority": "high"}, "priority"),
        ({"command": "x", "env": {"1A": "v"}}, "environment variable"),
        ({"command": "x", "metadata": {"f": object()}}, "JSON"),
    ],
)
def test_bad_requests_are_config_errors(store, kwargs, match):
    with pytest.raises(ConfigError, match=match):
        store.submit_job(**kwargs)


def test_unknown_ids_and_states(store):
    with pytest.raises(JobNotFoundError, match="no job 7"):
        store.get_job_status(7)
    job = store.submit_job("true")
    with pytest.raises(JobNotFoundError, match="no job 7"):
        store.cancel_jobs([job, 7])
    assert store.get_job_status(job)["state"] == "pending"  # nothing cancelled
    with pytest.raises(ConfigError, match="'bogus' is not allowed"):
        store.list_jobs(state="bogus")
    with pytest.raises(ConfigError, match="'bogus' is not allowed"):
        store.list_jobs(state="all,bogus")  # 'all' does not hide a typo
    with pytest.raises(ConfigError):
        store.get_job_status(0)


def test_files_are_user_only(tmp_path):
    store = SqliteJobScheduler(tmp_path / "new" / "dir" / "queue.db")
    store.submit_job("true")
    assert stat.S_IMODE((tmp_path / "new").stat().st_mode) == 0o700
    assert stat.S_IMODE((tmp_path / "new" / "dir").stat().st_mode) == 0o700
    for name in ("queue.db", "queue.db-wal", "queue.db-shm"):
        path = tmp_path / "new" / "dir" / name
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, name
    assert store.sibling(".lock") == tmp_path / "new" / "dir" / "queue.lock"
    assert store.jobs_dir == tmp_path / "new" / "dir" / "queue.jobs"


def test_default_db_path(monkeypatch, tmp_path):
    monkeypatch.delenv("XQUTE_DB", raising=False)
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    assert default_db_path() == tmp_path / "state" / "xqute" / "queue.db"
    monkeypatch.setenv("XDG_STATE_HOME", "relative/ignored")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert default_db_path() == tmp_path / "home/.local/state/xqute/queue.db"
    monkeypatch.setenv("XQUTE_DB", str(tmp_path / "x.db"))
    assert default_db_path() == tmp_path / "x.db"
    assert default_db_path(tmp_path / "y.db") == tmp_path / "y.db"
    assert SqliteJobScheduler().db_path == tmp_path / "x.db"


def test_wal_mode_and_pragmas(store):
    store.submit_job("true")
    conn = store.db.conn()
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA synchronous").fetchone()[0] == 1  # NORMAL
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION


def test_next_jobs_query_uses_the_index(store):
    store.submit_job("true")
    plan = store.db.query(
        "EXPLAIN QUERY PLAN SELECT id FROM job_queue WHERE state = 'pending'"
        " AND cpus <= 4 AND mem_mb <= 10 AND gpus <= 0"
        " ORDER BY priority DESC, id LIMIT 5"
    )
    text = " ".join(str(row[-1]) for row in plan)
    assert "job_queue_state" in text and "TEMP B-TREE" not in text


def test_a_v1_db_opens_with_todays_code(tmp_path):
    path = tmp_path / "old.db"
    conn = sqlite3.connect(path)
    conn.executescript(V1_DDL)
    conn.execute("PRAGMA user_version = 1")
    conn.execute(
        "INSERT INTO job_queue (name, command, cpus, priority, submitted_at)"
        " VALUES ('old', ?, 1, 3, 1.0)",
        (json.dumps(["echo", "hi"]),),
    )
    conn.commit()
    conn.close()
    store = SqliteJobScheduler(path)
    old = store.get_job_status(1)
    assert old["name"] == "old" and old["command"] == ["echo", "hi"]
    assert old["max_rss_mb"] is None  # v2's columns exist, empty
    new = store.submit_job("true", memory="1G")
    assert [j["id"] for j in store.list_jobs()] == [1, new]
    cap = Capacity(cpus=4, mem_mb=4096, max_workers=4)
    assert [j.id for j in window.pending_window(store.db, 10, cap)] == [1, new]
    version = store.db.query("PRAGMA user_version")[0][0]
    assert version == SCHEMA_VERSION >= 2
    columns = {row[1] for row in store.db.query("PRAGMA table_info(resource_usage)")}
    assert {"max_rss_mb", "cpu_s"} <= columns


def test_a_db_from_a_newer_xqute_is_refused(tmp_path):
    path = tmp_path / "new.db"
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.close()
    with pytest.raises(StoreError, match="newer than this xqute"):
        SqliteJobScheduler(path).submit_job("true")


def test_claims_are_atomic_between_racing_pools(store):
    ids = store.submit_jobs([{"command": "true"} for _ in range(300)])
    got: dict[str, list[int]] = {"a": [], "b": []}
    barrier = threading.Barrier(2)

    def claimer(worker):
        db = Database(store.db_path)  # connections of its own, like a process
        barrier.wait()
        # opposite orders: the two meet in the middle and race for the same jobs
        for job_id in ids if worker == "a" else reversed(ids):
            claimed, _ = claims.sync_cycle(
                db, worker, time.time(), claims=[(Start(job_id), f"/x/{job_id}")]
            )
            got[worker] += [c.id for c in claimed]
            time.sleep(0.0002)  # let the other one in: SQLite's lock is not fair
        db.close()

    threads = [threading.Thread(target=claimer, args=(w,)) for w in got]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(got["a"] + got["b"]) == ids  # every job claimed exactly once
    assert not set(got["a"]) & set(got["b"])
    assert got["a"] and got["b"]
    assert store.count_jobs()["running"] == 300


def test_a_cancelled_job_cannot_be_claimed(store):
    job = store.submit_job("true")
    store.cancel_job(job)
    claimed, _ = claims.sync_cycle(store.db, "w", 0.0, claims=[(Start(job), "/x")])
    assert claimed == []
    running = store.submit_job("sleep 1")
    claims.sync_cycle(store.db, "w", 0.0, claims=[(Start(running), "/x")])
    assert store.cancel_job(running) == "cancelling"
    assert claims.cancel_requests(store.db, "w") == [running]
    assert store.get_job_status(running)["state"] == "running"


def test_busy_db_is_retried_not_reported(store, monkeypatch):
    monkeypatch.setattr(dbmod, "_HANDLER_TIMEOUT_S", 0.01)
    store.submit_job("true")
    store.close()
    holder = sqlite3.connect(
        store.db_path, isolation_level=None, check_same_thread=False
    )
    holder.execute("BEGIN IMMEDIATE")
    threading.Timer(0.15, holder.execute, ("COMMIT",)).start()
    assert store.submit_job("true") == 2  # waited for the lock, no error
    holder.close()


def test_busy_db_past_the_timeout_is_a_store_error(tmp_path, monkeypatch):
    monkeypatch.setattr(dbmod, "_HANDLER_TIMEOUT_S", 0.01)
    store = SqliteJobScheduler(tmp_path / "q.db", busy_timeout_s=0.1)
    store.submit_job("true")
    holder = sqlite3.connect(store.db_path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    with pytest.raises(StoreError, match="stayed locked"):
        store.submit_job("true")
    holder.execute("ROLLBACK")
    holder.close()


@pytest.mark.parametrize("probe", [3, 2000])
def test_name_globs_use_the_name_index_only_when_few_names_match(
    store, monkeypatch, probe
):
    from xqute.queue import requests

    monkeypatch.setattr(requests, "NAME_PROBE", probe)
    store.submit_jobs(
        [{"command": "true", "name": f"job{i}", "priority": i % 2} for i in range(6)]
        + [{"command": "true", "name": "other"}]
    )
    claims.sync_cycle(store.db, "w", 0.0, claims=[(Start(2), "/x/2")])
    index, cond, _ = requests.name_filter(store.db, "job*")
    few = probe > 6
    assert ("INDEXED BY" in index, cond.startswith("+")) == (few, not few)
    assert requests.name_filter(store.db, "*b1")[:2] == ("", "+name GLOB ?")
    # either way, the same rows in the same order
    assert [j["id"] for j in store.list_jobs(name="job*")] == [2, 4, 6, 1, 3, 5]
    assert [j["id"] for j in store.list_jobs(name="job*", limit=2)] == [2, 4]
    assert [j["id"] for j in store.list_jobs("all", name="job[15]")] == [6, 2]
    assert store.list_jobs("completed", name="job*") == []
    # names job1..job3 are ids 2..4; 2 runs
    assert store.cancel_jobs(name="job[1-3]") == {
        2: "cancelling",
        3: "cancelled",
        4: "cancelled",
    }
    assert store.cancel_jobs([1, 4, 7], name="job*") == {
        1: "cancelled",
        4: "already cancelled",
        7: "pending",  # not named job*: left alone
    }


def test_limits_must_not_be_negative(store):
    store.submit_job("true")
    with pytest.raises(ConfigError, match="limit -3 must be an integer >= 0"):
        store.list_jobs("all", limit=-3)
    assert store.list_jobs(limit=0) == []


def test_unfit_jobs_are_looked_at_once_by_id_range(store):
    cap = Capacity(cpus=2, mem_mb=1000, max_workers=2)
    store.submit_jobs(
        [{"command": "true"}, {"command": "true", "cpus": 4}, {"command": "true"}]
        + [{"command": "true", "memory": "2G"}] * 3
    )
    store.cancel_job(6)
    jobs, after = window.unfit_pending(store.db, cap, 0, limit=1)
    assert ([j.id for j in jobs], after) == ([2], 2)  # more next time
    jobs, after = window.unfit_pending(store.db, cap, after, step=2)
    assert ([j.id for j in jobs], after) == ([4], 4)  # at most `step` ids a call
    jobs, after = window.unfit_pending(store.db, cap, after)
    assert ([j.id for j in jobs], after) == ([5], 6)  # 6 is no longer pending
    assert window.unfit_pending(store.db, cap, after) == ([], 6)  # nothing new
    store.submit_job("true", gpus=1)
    assert [j.id for j in window.unfit_pending(store.db, cap, after)[0]] == [7]
