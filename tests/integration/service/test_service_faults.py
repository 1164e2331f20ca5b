"""The daemon under faults: garbage in a job's rc file found at recovery, and
a full disk under its db (a real, small tmpfs filled up): it keeps running,
logs the trouble, and goes on once there is space again."""

import os
import subprocess
import sys
import time

import pytest
from service_helpers import wait_final, wait_for

from xqute.queue import SchedulerService, SqliteJobScheduler

pytestmark = pytest.mark.service


def test_garbage_rc_of_a_dead_workers_job_does_not_stop_a_start(
    daemon, store, tmp_path
):
    job_id = store.submit_job(["true"])
    folder = tmp_path / "queue.jobs" / str(job_id)
    folder.mkdir(parents=True)
    (folder / "job.rc").write_bytes(b"\xff\xfe\x00garbage")
    store.db.write(  # it ran on a pool that died
        lambda conn: conn.execute(
            "UPDATE job_queue SET state = 'running', worker = 'elsewhere:1:dead',"
            " started_at = ?, job_dir = ?, attempts = 1 WHERE id = ?",
            (time.time(), str(folder), job_id),
        )
    )
    daemon(workers=1)  # it adopts the job at start: no UnicodeDecodeError
    job = wait_final(store, [job_id])[job_id]
    assert job["state"] == "failed"
    assert "job.rc holds no exit code" in job["reason"]
    later = store.submit_job(["true"])  # and the queue goes on
    assert wait_final(store, [later])[later]["state"] == "completed"


def test_the_daemon_survives_a_full_disk(small_fs):
    fs = small_fs("4m")
    db_path = fs / "queue.db"
    store = SqliteJobScheduler(db_path)
    first = store.submit_job(["true"])
    service = SchedulerService(
        db_path, 2, heartbeat_s=0.2, backend_opts={"kill_grace_s": 1}
    )
    service.start()
    try:
        wait_final(store, [first])
        filler = fs / "filler"
        subprocess.run(
            ["dd", "if=/dev/zero", f"of={filler}", "bs=64k"], capture_output=True
        )  # until the disk is full
        log = fs / "queue.log"
        time.sleep(3)  # heartbeats fail meanwhile
        assert service.status()["running"], log.read_text()[-2000:]
        filler.unlink()  # space again
        wait_for(lambda: "space again" in log.read_text(), 40, "the log to say so")
        assert "disk full" in log.read_text()
        later = store.submit_job(["true"])
        assert wait_final(store, [later])[later]["state"] == "completed"
        assert service.status()["running"]
    finally:
        service.stop(now=True, timeout_s=30)
        store.close()


def test_a_daemon_that_cannot_start_says_why_in_one_line(tmp_path):
    """(Its traceback goes to its log, not to the user.)"""
    env = {**os.environ, "PATH": str(tmp_path / "empty")}  # no bash for its jobs
    out = subprocess.run(
        [sys.executable, "-m", "xqute", "service", "start", "--db",
         str(tmp_path / "q.db")],
        capture_output=True, text=True, env=env, timeout=120,
    )  # fmt: skip
    assert out.returncode == 1
    assert "needs bash" in out.stderr and "Traceback" not in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1, out.stderr
