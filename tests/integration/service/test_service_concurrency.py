"""Many processes on one db at once: submitters and pools."""

import json
import subprocess
import sys
import textwrap
from collections import Counter

import pytest
from service_helpers import wait_final, wait_for

pytestmark = pytest.mark.service

SUBMITTER = textwrap.dedent("""
    import os, sys, time
    from xqute.queue import SqliteJobScheduler
    db, go, proc, count = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    store = SqliteJobScheduler(db)
    print("ready", flush=True)
    while not os.path.exists(go):
        time.sleep(0.005)
    for i in range(count):
        store.submit_job(["true"], job_name=f"p{proc}-{i}",
                         metadata={"proc": proc, "i": i})
""")

POOL = textwrap.dedent("""
    import sys, time
    from xqute.queue import SqliteJobScheduler, WorkerPoolManager
    db, stop = sys.argv[1], sys.argv[2]
    pool = WorkerPoolManager(SqliteJobScheduler(db), 3, cpus=3)
    pool.start_workers()
    print("ready", flush=True)
    import os
    while not os.path.exists(stop):
        time.sleep(0.05)
    pool.stop_workers()
""")


def test_20_processes_submit_500_jobs_each_at_once(store, tmp_path):
    script = tmp_path / "submit.py"
    script.write_text(SUBMITTER)
    go = tmp_path / "go"
    store.submit_job("true")  # the db exists: the race is on the writes
    procs = [
        subprocess.Popen(
            [sys.executable, str(script), str(store.db_path), str(go), str(p), "500"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for p in range(20)
    ]
    for proc in procs:  # all have imported and wait on the go file
        assert proc.stdout.readline().strip() == "ready"
    go.touch()
    outputs = [proc.communicate(timeout=120) for proc in procs]
    for proc, (_, err) in zip(procs, outputs, strict=True):
        assert proc.returncode == 0, err
        assert "locked" not in err and not err.strip(), err
    rows = store.db.query("SELECT metadata FROM job_queue WHERE id > 1")
    keys = Counter((m["proc"], m["i"]) for m in (json.loads(r[0]) for r in rows))
    assert len(rows) == 10_000
    assert len(keys) == 10_000 and max(keys.values()) == 1  # all stored, none twice


def test_two_pools_on_one_db_never_run_a_job_twice(store, tmp_path):
    script = tmp_path / "pool.py"
    script.write_text(POOL)
    stop = tmp_path / "stop"
    out = tmp_path / "ran"
    pools = [
        subprocess.Popen(
            [sys.executable, str(script), str(store.db_path), str(stop)],
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    try:
        for pool in pools:
            assert pool.stdout.readline().strip() == "ready"
        ids = store.submit_jobs(
            [{"command": f"echo $XQUTE_JOB_INDEX >> {out}"} for _ in range(300)]
        )
        jobs = wait_final(store, ids, timeout_s=90)
        stop.touch()
        for pool in pools:
            pool.wait(timeout=30)
    finally:
        for pool in pools:
            pool.kill()
            pool.wait()
            pool.stdout.close()
    ran = Counter(int(x) for x in out.read_text().split())
    assert sorted(ran) == ids and max(ran.values()) == 1
    assert all(j["state"] == "completed" and j["attempts"] == 1 for j in jobs.values())
    workers = Counter(j["worker"] for j in jobs.values())
    assert len(workers) == 2, workers  # both pools took part
    wait_for(
        lambda: {w["state"] for w in store.list_workers()} == {"stopped"},
        10,
        "both pools to record their stop",
    )
