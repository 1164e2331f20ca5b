"""Crash recovery with real processes and kill -9: every job ends exactly once in
a final state; nothing stays running."""

import os
import signal
import time

import psutil
import pytest
from service_helpers import wait_final, wait_for, wait_running

pytestmark = pytest.mark.service


def test_kill_9_the_daemon_with_100_queued_and_4_running(daemon, store, tmp_path):
    marks = tmp_path / "marks"
    marks.mkdir()
    ran = tmp_path / "ran"
    flag = tmp_path / "flag"

    once = f"[ -e {flag} ] || {{ touch {flag}; sleep 60; }}"

    def long_job(name, body):
        mark = marks / name
        return {
            "command": f"echo start >> {mark}; {body}; echo end >> {mark}",
            "name": name,
            "priority": 10,
        }

    service = daemon(workers=4, cpus=4)
    long_ids = store.submit_jobs(
        [
            long_job("ends-while-down", "sleep 1"),
            long_job("outlives-the-crash", "sleep 4"),
            # killed -9 while the daemon is down: no rc file, so it is
            # re-queued, and its second run finishes at once
            long_job("killed-while-down", once),
            long_job("cancelled-while-down", "sleep 30"),
        ]
    )  # fmt: skip
    wait_running(store, long_ids)
    short_ids = store.submit_jobs(
        [{"command": f"echo $XQUTE_JOB_INDEX >> {ran}", "name": "short"}] * 100
    )
    assert store.count_jobs()["pending"] == 100
    daemon_pid = service.status()["pid"]
    pids = {i: store.get_job_status(i)["pid"] for i in long_ids}

    os.kill(daemon_pid, signal.SIGKILL)
    wait_for(lambda: not service.status()["running"], 10, "the daemon to die")
    for pid in pids.values():  # the jobs outlive their daemon
        assert psutil.pid_exists(pid)
    ends, outlives, killed, cancelled = long_ids
    os.killpg(pids[killed], signal.SIGKILL)  # its wrapper cannot write an rc
    assert store.cancel_job(cancelled) == "cancelling"
    wait_for(lambda: (marks / "ends-while-down").read_text() == "start\nend\n", 10)
    assert store.get_job_status(ends)["state"] == "running"  # nobody recorded it

    daemon(workers=4, cpus=4)  # the restart adopts the dead daemon's jobs
    jobs = wait_final(store, long_ids + short_ids, timeout_s=40)

    assert jobs[ends]["state"] == "completed" and jobs[ends]["attempts"] == 1
    assert (marks / "ends-while-down").read_text() == "start\nend\n"  # not re-run
    assert jobs[outlives]["state"] == "completed" and jobs[outlives]["attempts"] == 1
    assert (marks / "outlives-the-crash").read_text() == "start\nend\n"
    assert jobs[killed]["state"] == "completed" and jobs[killed]["attempts"] == 2
    assert (marks / "killed-while-down").read_text() == "start\nstart\nend\n"
    assert jobs[cancelled]["state"] == "cancelled"
    assert not psutil.pid_exists(pids[cancelled])
    assert all(jobs[i]["state"] == "completed" for i in short_ids)
    assert sorted(map(int, ran.read_text().split())) == short_ids  # once each
    assert store.count_jobs()["running"] == 0
    states = {w["state"] for w in store.list_workers()}
    assert "dead" in states and "running" in states


def test_recovery_policy_fail(daemon, store, tmp_path):
    service = daemon(workers=1, cpus=1, recovery_policy="fail")
    job = store.submit_job("sleep 60")
    wait_running(store, [job])
    pid = store.get_job_status(job)["pid"]
    os.kill(service.status()["pid"], signal.SIGKILL)
    wait_for(lambda: not service.status()["running"], 10, "the daemon to die")
    os.killpg(pid, signal.SIGKILL)
    wait_for(lambda: not psutil.pid_exists(pid), 5, "the job to die")
    daemon(workers=1, cpus=1, recovery_policy="fail")
    status = wait_final(store, [job], 20)[job]
    assert status["state"] == "failed"
    assert status["reason"].startswith("lost: its worker died")


def test_a_pool_adopts_the_jobs_of_another_that_died(daemon, store, tmp_path):
    """Two pools on one db: when one is SIGKILLed, the other takes its jobs over
    within its recovery interval, with no restart needed."""
    import subprocess
    import sys
    import textwrap

    script = tmp_path / "pool.py"
    script.write_text(
        textwrap.dedent(f"""
        import time
        from xqute.queue import SqliteJobScheduler, WorkerPoolManager
        pool = WorkerPoolManager(SqliteJobScheduler({str(store.db_path)!r}), 2,
                                 cpus=2, heartbeat_s=0.5)
        pool.start_workers()
        print("ready", flush=True)
        time.sleep(600)
        """)
    )
    proc = subprocess.Popen(
        [sys.executable, str(script)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout.readline().strip() == "ready"
        ids = store.submit_jobs([{"command": "sleep 2"}] * 2)
        wait_running(store, ids)
        survivor = daemon(workers=2, cpus=2, heartbeat_s=0.5)
        assert survivor.status()["running"]
        proc.kill()
        proc.wait()
        jobs = wait_final(store, ids, timeout_s=20)
        assert all(
            j["state"] == "completed" and j["attempts"] == 1 for j in jobs.values()
        )
        assert len({j["worker"] for j in jobs.values()}) == 1
    finally:
        proc.kill()
        proc.wait()
        proc.stdout.close()
    time.sleep(0)


def test_an_adopted_local_job_is_followed_through_the_backend(
    store, tmp_path, monkeypatch
):
    """A job whose worker vanished is re-attached through the local backend:
    it gets the deadline backstop like any job (here its "wrapper" ignores its
    time limit), and the pool's start forgets pools that stopped long ago."""
    import subprocess

    from xqute import deadline
    from xqute.queue import WorkerPoolManager, claims
    from xqute.queue.claims import Started
    from xqute.queue.policy import Start

    monkeypatch.setattr(deadline, "DEADLINE_SLACK_S", 0.0)
    now = time.time()
    for name, age_s in (("old", 4 * 86400), ("recent", 3600)):
        claims.register_worker(
            store.db,
            {"id": name, "host": "elsewhere", "pid": 1, "backend": "local",
             "max_workers": 1, "state": "stopped", "started_at": now - age_s,
             "heartbeat_at": now - age_s},
        )  # fmt: skip
    job = store.submit_job("sleep 30", timeout="1.5s")
    job_dir = tmp_path / "queue.jobs" / str(job)
    job_dir.mkdir(parents=True)
    script = job_dir / "job.wrapped.local"
    script.write_text("sleep 30\n")  # a wrapper that does not enforce its limit
    proc = subprocess.Popen(["bash", str(script)], start_new_session=True)
    try:
        claims.sync_cycle(store.db, "ghost", now, claims=[(Start(job), str(job_dir))])
        claims.sync_cycle(
            store.db, "ghost", now, started=[Started(job, proc.pid, str(proc.pid))]
        )
        waiting = store.submit_job("true")
        pool = WorkerPoolManager(store, 2, cpus=1, backend_opts={"kill_grace_s": 0.2})
        pool.start_workers()
        try:
            assert {w["id"] for w in store.list_workers()} >= {"recent"}
            assert "old" not in {w["id"] for w in store.list_workers()}
            wait_for(lambda: pool.get_worker_status()["waiting_jobs"], 5, "a decision")
            status = pool.get_worker_status()
            assert status["adopted"] == 1
            assert status["waiting_jobs"] == {waiting: "waiting for resources"}
            final = wait_final(store, [job, waiting], timeout_s=10)
        finally:
            pool.stop_workers(now=True, timeout_s=20)
        assert final[job]["state"] == "timeout"
        assert final[job]["reason"] == "ran past 1.5s"
        assert final[waiting]["state"] == "completed"
        assert proc.wait(5) < 0  # killed by the backend
    finally:
        proc.kill()
        proc.wait()
