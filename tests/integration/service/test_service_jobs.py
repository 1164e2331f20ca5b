"""A real daemon runs queued jobs: states, cancel, timeout, priority order,
resources, GPUs (faked by a list of device indexes) and cpu pinning."""

import os
import stat
import sys
import time

import psutil
import pytest
from service_helpers import read, wait_final, wait_for, wait_running

pytestmark = pytest.mark.service


def test_states_cancel_and_timeout(daemon, store, tmp_path):
    daemon(workers=4, cpus=4)
    ok = store.submit_job(["echo", "hello"], job_name="ok")
    bad = store.submit_job("echo oops >&2; exit 3", job_name="bad")
    slow = store.submit_job("sleep 30", timeout="1s", job_name="slow")
    victim = store.submit_job(["sleep", "30"], job_name="victim")
    wait_running(store, [victim])
    pid = store.get_job_status(victim)["pid"]
    # a pending job that cannot start (all 4 cpus are taken), then cancelled
    blocked = store.submit_job("touch started", cpus=4, working_dir=tmp_path)
    assert store.cancel_job(blocked) == "cancelled"
    began = time.monotonic()
    assert store.cancel_job(victim) == "cancelling"
    wait_final(store, [victim], timeout_s=5)
    assert time.monotonic() - began < 1.5  # noticed within a cycle, killed at once
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == "zombie"
    jobs = wait_final(store, [ok, bad, slow, victim, blocked])
    assert jobs[ok]["state"] == "completed" and jobs[ok]["return_code"] == 0
    assert read(jobs[ok]["stdout"]) == "hello\n"
    assert jobs[bad]["state"] == "failed" and jobs[bad]["return_code"] == 3
    assert read(jobs[bad]["stderr"]) == "oops\n"
    assert jobs[slow]["state"] == "timeout" and jobs[slow]["return_code"] == 124
    assert jobs[victim]["state"] == "cancelled"
    assert jobs[victim]["reason"] == "cancelled while running"
    assert jobs[blocked]["state"] == "cancelled" and jobs[blocked]["started_at"] is None
    assert not (tmp_path / "started").exists()
    for job in jobs.values():
        if job["started_at"]:
            assert job["worker"] and job["attempts"] == 1
            assert job["stdout"].startswith(str(tmp_path / "queue.jobs"))
            # the job's folder holds its script, with its environment: user-only
            folder = os.path.dirname(job["stdout"])
            assert stat.S_IMODE(os.stat(folder).st_mode) == 0o700


def test_priority_then_submission_order(daemon, store, tmp_path):
    daemon(workers=1, cpus=1)
    order = tmp_path / "order"
    blocker = store.submit_job("sleep 0.5", job_name="blocker")
    wait_running(store, [blocker])
    names = [("p1", 1), ("p5a", 5), ("p3", 3), ("p5b", 5), ("p0", 0)]
    ids = store.submit_jobs(
        {"command": f"echo {n} >> {order}", "name": n, "priority": p} for n, p in names
    )
    wait_final(store, ids)
    assert order.read_text().split() == ["p5a", "p5b", "p3", "p1", "p0"]


def test_resources_are_never_oversubscribed(daemon, store):
    daemon(workers=4, cpus=2, memory="1000M")
    jobs = store.submit_jobs(
        [
            {"command": "sleep 0.4", "name": "all-cpus", "cpus": 2},
            {"command": "sleep 0.4", "name": "one-a", "cpus": 1},
            {"command": "sleep 0.4", "name": "one-b", "cpus": 1},
            {"command": "sleep 0.4", "name": "mem-a", "memory": "800M"},
            {"command": "sleep 0.4", "name": "mem-b", "memory": "800M"},
            {"command": "true", "name": "huge", "memory": "2G"},
        ]
    )
    done = wait_final(store, jobs[:5])
    spans = [(j["started_at"], j["ended_at"], j) for j in done.values()]
    for t, _, job in spans:  # usage peaks when a job starts
        assert job["state"] == "completed"
        at_once = [j for s0, s1, j in spans if s0 <= t < s1]
        assert sum(j["cpus"] for j in at_once) <= 2, [j["name"] for j in at_once]
        assert sum(j["mem_mb"] for j in at_once) <= 1000, [j["name"] for j in at_once]
    huge = store.get_job_status(jobs[5])
    assert huge["state"] == "pending"

    def noted():
        return (store.get_job_status(jobs[5])["reason"] or "").startswith("never")

    wait_for(noted, 10, "the unfit job's reason")
    assert "mem 2048M > 1000M" in store.get_job_status(jobs[5])["reason"]


def test_gpus_by_index(daemon, store):
    daemon(workers=4, cpus=4, gpu_ids=[0, 1])
    cmd = 'echo "[$CUDA_VISIBLE_DEVICES]"; sleep 0.3'
    one = store.submit_jobs([{"command": cmd, "gpus": 1} for _ in range(3)])
    none = store.submit_job(cmd, gpus=0)
    both = store.submit_job(cmd, gpus=2)
    jobs = wait_final(store, [*one, none, both])
    seen = {i: read(j["stdout"]).strip() for i, j in jobs.items()}
    assert all(seen[i] in ("[0]", "[1]") for i in one)
    assert seen[none] == "[]"  # a job that asked for no GPU sees none
    assert seen[both] == "[0,1]"
    spans = [(j["started_at"], j["ended_at"], j) for j in jobs.values()]
    for t, _, _ in spans:  # no GPU is given to two jobs at once
        at_once = [j for s0, s1, j in spans if s0 <= t < s1]
        held = [g for j in at_once for g in j["gpu_ids"]]
        assert len(held) == len(set(held)), at_once


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux affinity")
def test_cpu_pinning(daemon, store):
    daemon(workers=2, cpus=2, pin_cpus=True)
    cmd = "grep Cpus_allowed_list /proc/self/status | cut -f2; sleep 0.3"
    ids = store.submit_jobs([{"command": cmd} for _ in range(4)])
    jobs = wait_final(store, ids)
    for job in jobs.values():
        assert read(job["stdout"]).strip() == str(job["cpu_ids"][0])
        assert len(job["cpu_ids"]) == 1


def test_usage_is_sampled(daemon, store):
    daemon(workers=1, cpus=1, heartbeat_s=0.3)
    job = store.submit_job(
        [sys.executable, "-c", "x = bytearray(200 << 20); import time; time.sleep(1.5)"]
    )
    status = wait_final(store, [job])[job]
    assert status["state"] == "completed"
    assert 150 <= status["max_rss_mb"] < 1000
    assert status["cpu_s"] is not None
