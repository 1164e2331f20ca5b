"""The daemon's life: start, refuse a second one, stop (wait or --now), the CLI."""

import json
import os
import subprocess
import sys
import time

import psutil
import pytest
from service_helpers import wait_final, wait_running

from xqute.queue import AlreadyRunningError, SchedulerService

pytestmark = pytest.mark.service


def cli(*args, db):
    return subprocess.run(
        [sys.executable, "-m", "xqute", *args],
        capture_output=True,
        text=True,
        env={**os.environ, "XQUTE_DB": str(db), "COLUMNS": "200"},
        timeout=60,
        check=False,
    )


def test_refuses_to_start_twice(daemon, db_path):
    service = daemon(workers=1)
    pid = service.status()["pid"]
    with pytest.raises(AlreadyRunningError, match=f"pid {pid}"):
        SchedulerService(db_path).start()
    # the same from a process that slips past the first check (foreground run)
    result = cli("service", "start", "--foreground", db=db_path)
    assert result.returncode == 1 and f"pid {pid}" in result.stderr
    assert service.status()["running"] and service.status()["pid"] == pid
    assert oct(db_path.with_suffix(".lock").stat().st_mode & 0o777) == "0o600"
    assert oct(db_path.with_suffix(".pid").stat().st_mode & 0o777) == "0o600"
    assert oct(db_path.with_suffix(".log").stat().st_mode & 0o777) == "0o600"


def test_stop_waits_for_jobs_in_flight(daemon, store):
    service = daemon(workers=2, cpus=2)
    ids = store.submit_jobs([{"command": "sleep 1; echo done"}] * 2)
    wait_running(store, ids)
    later = store.submit_job("echo later")  # pending: no slot
    began = time.monotonic()
    assert service.stop() is True
    assert time.monotonic() - began > 0.5
    assert not service.status()["running"]
    jobs = wait_final(store, ids, timeout_s=1)
    assert all(j["state"] == "completed" for j in jobs.values())
    assert store.get_job_status(later)["state"] == "pending"  # never claimed
    assert {w["state"] for w in store.list_workers()} == {"stopped"}
    assert service.stop() is False  # nothing to stop


def test_stop_now_kills_jobs_in_flight(daemon, store):
    service = daemon(workers=2, cpus=2)
    ids = store.submit_jobs([{"command": ["sleep", "60"]}] * 2)
    wait_running(store, ids)
    pids = [store.get_job_status(i)["pid"] for i in ids]
    began = time.monotonic()
    service.stop(now=True, timeout_s=20)
    assert time.monotonic() - began < 5
    jobs = wait_final(store, ids, timeout_s=1)
    for job in jobs.values():
        assert job["state"] == "cancelled"
        assert "stop(now=True)" in job["reason"]
    assert not any(psutil.pid_exists(p) for p in pids)


def test_the_cli_end_to_end(daemon, db_path, tmp_path):
    result = cli("service", "start", "--workers", "2", "--cpus", "2", db=db_path)
    assert result.returncode == 0, result.stderr
    assert "queue daemon started" in result.stdout
    try:
        result = cli("submit", "--name", "hi", "--", "echo", "hello", db=db_path)
        assert result.returncode == 0
        job_id = int(result.stdout)
        result = cli("logs", str(job_id), "--follow", db=db_path)
        assert result.stdout == "hello\n"
        result = cli("queue", "--all", "--json", db=db_path)
        [job] = json.loads(result.stdout)
        assert job["name"] == "hi" and job["state"] == "completed"
        result = cli("workers", db=db_path)
        assert "running" in result.stdout and "local" in result.stdout
        result = cli("service", "status", "--json", db=db_path)
        assert json.loads(result.stdout)["running"] is True
        result = cli("submit", "--", "sleep", "60", db=db_path)
        sleeper = result.stdout.strip()
        for _ in range(100):
            if '"running"' in cli("status", sleeper, "--json", db=db_path).stdout:
                break
            time.sleep(0.1)
        result = cli("service", "stop", "--now", db=db_path)
        assert result.returncode == 0 and "stopped" in result.stdout
        result = cli("status", sleeper, "--json", db=db_path)
        assert json.loads(result.stdout)["state"] == "cancelled"
    finally:
        cli("service", "stop", "--now", db=db_path)
