"""An idle pool starts a job when it is submitted, not at its next poll:
submitters wake it through its pipe (queue/wake.py), from this process or
another one (the CLI)."""

import os
import subprocess
import sys
import time

import pytest
from service_helpers import wait_final

from xqute.queue import WorkerPoolManager

pytestmark = pytest.mark.service

# so long that a job started within seconds was woken, not polled for
POLL_S = 60.0


def test_a_submit_wakes_an_idle_pool_in_this_process(store):
    pool = WorkerPoolManager(store, 2, cpus=2, poll_interval_s=POLL_S)
    pool.start_workers()
    try:
        time.sleep(0.3)  # idle: asleep in its poll wait
        began = time.monotonic()
        job_id = store.submit_job(["true"])
        assert store.pools_woken == 1
        wait_final(store, [job_id], timeout_s=10)
        assert time.monotonic() - began < 5
        # a cancel wakes it too: a running job is killed at once
        victim = store.submit_job(["sleep", "30"])
        deadline = time.monotonic() + 10
        while store.get_job_status(victim)["pid"] is None:
            assert time.monotonic() < deadline
            time.sleep(0.02)
        began = time.monotonic()
        store.cancel_job(victim)
        assert wait_final(store, [victim])[victim]["state"] == "cancelled"
        assert time.monotonic() - began < 5
    finally:
        pool.stop_workers(now=True, timeout_s=30)
    assert store.notify_pools() == 0  # a stopped pool no longer listens


def test_a_cli_submit_wakes_the_daemon(daemon, store, db_path, tmp_path):
    daemon(workers=2, cpus=2, poll_interval_s=POLL_S)
    time.sleep(0.3)
    began = time.monotonic()
    out = subprocess.run(
        [sys.executable, "-m", "xqute", "submit", "--db", str(db_path), "--", "true"],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ},
        cwd=tmp_path,
    )
    job_id = int(out.stdout)
    assert wait_final(store, [job_id])[job_id]["state"] == "completed"
    assert time.monotonic() - began < 10
