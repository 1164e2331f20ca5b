"""Quotas and preemption on a real daemon: real processes, the real db."""

from __future__ import annotations

import json
import os
import signal
import threading
import time

import psutil
import pytest
from service_helpers import wait_final, wait_for, wait_running

from xqute.orchestration import resource_api

pytestmark = pytest.mark.service


def running_in(store, namespace: str) -> int:
    return store.db.query(
        "SELECT count(*) FROM job_queue WHERE state = 'running' AND namespace = ?",
        (namespace,),
    )[0][0]


def test_a_one_cpu_quota_runs_one_job_at_a_time(daemon, store):
    """Namespace a (1 cpu) never has two jobs running, sampled 10x/s, while the
    unlimited namespace b runs beside it."""
    resource_api.create_resource_quota(
        store.db, {"name": "a-quota", "namespace": "a", "cpu": 1}
    )
    daemon(4, cpus=4)
    a_ids = store.submit_jobs(
        {"command": ["sleep", "0.2"], "namespace": "a"} for _ in range(20)
    )
    b_ids = store.submit_jobs(
        {"command": ["sleep", "1"], "namespace": "b"} for _ in range(3)
    )
    samples: list[tuple[int, int]] = []
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            samples.append((running_in(store, "a"), running_in(store, "b")))
            time.sleep(0.1)

    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        ended = wait_final(store, a_ids + b_ids, timeout_s=90)
    finally:
        done.set()
        sampler.join()
    assert all(job["state"] == "completed" for job in ended.values())
    assert len(samples) >= 40  # 20 jobs of 0.2 s one at a time: 4 s at least
    assert max(a for a, _ in samples) == 1
    assert max(b for _, b in samples) >= 2  # the quota held only namespace a
    # the quota reasons written while they waited are gone once they ran
    assert {job["reason"] for job in ended.values()} == {None}


def test_a_job_over_quota_says_why(daemon, store):
    resource_api.create_resource_quota(
        store.db, {"name": "a-quota", "namespace": "a", "cpu": 1}
    )
    daemon(2, cpus=4)
    first = store.submit_job(["sleep", "30"], namespace="a")
    wait_running(store, [first])
    second = store.submit_job(["true"], namespace="a")
    other = store.submit_job(["true"], namespace="b")
    wait_for(
        lambda: store.get_job_status(second)["reason"] is not None,
        what="the pool to say why the job waits",
    )
    assert store.get_job_status(second)["reason"] == "quota a: cpu 1+1 > 1"
    assert wait_final(store, [other])[other]["state"] == "completed"
    store.cancel_job(first)
    ended = wait_final(store, [first, second])
    assert ended[second]["state"] == "completed" and ended[second]["reason"] is None


def test_preemption_starts_the_urgent_job_within_the_grace(daemon, store):
    """A full pool of preemptible jobs that ignore TERM: the high-priority job
    starts within grace + 1 s; one victim (the most recent) is killed after the
    grace, re-queued without spending a retry, and completes later."""
    grace_s = 2.0
    resource_api.create_priority_class(
        store.db,
        {"name": "batch", "value": 0, "preemptible": True,
         "grace_period": grace_s, "on_preempt": "requeue"},
    )  # fmt: skip
    resource_api.create_priority_class(store.db, {"name": "urgent", "value": 1000})
    daemon(2, cpus=2, backend_opts={"kill_grace_s": 30})
    # a TERM does not stop them: only the KILL after the grace does
    batch = [
        store.submit_job("trap '' TERM; sleep 3", priority_class="batch")
        for _ in range(2)
    ]
    wait_running(store, batch)
    submitted = time.time()
    urgent = store.submit_job(["true"], priority_class="urgent")
    ended = wait_final(store, [urgent, *batch], timeout_s=60)
    assert ended[urgent]["state"] == "completed"
    waited = ended[urgent]["started_at"] - submitted
    assert grace_s - 0.5 < waited <= grace_s + 1.0, waited
    preempted = store.db.query(
        "SELECT job_id, by_job, outcome FROM preemptions ORDER BY id"
    )
    assert [(by, outcome) for _, by, outcome in preempted] == [(urgent, "requeued")]
    victim = preempted[0][0]
    assert victim == batch[1]  # the most recently started one
    assert ended[victim]["state"] == "completed"
    assert ended[victim]["attempts"] == 1  # the preempted run did not count
    events = store.db.query(
        "SELECT job_id, data FROM events WHERE type = 'job.preempted'"
    )
    assert [(job, json.loads(data)["by_job"]) for job, data in events] == [
        (victim, urgent)
    ]


def test_local_slots_follow_the_queue_and_never_kill(daemon, store):
    """Worker slots grow with the queue (at most the policy's max), come back
    down when it is empty, and a scale-down lets running jobs finish."""
    resource_api.configure_autoscaling(
        store.db,
        {"name": "slots", "min_replicas": 1, "max_replicas": 3,
         "metrics": [{"queue_length": {"target": 2}}],
         "scale_up": {"duration": 1, "step": 2},
         "scale_down": {"duration": 2, "step": 1}},
    )  # fmt: skip
    daemon(4, cpus=4, autoscale_interval_s=0.3)

    def slots() -> int | None:
        rows = store.db.query("SELECT current FROM autoscaler WHERE policy = 'slots'")
        return rows[0][0] if rows else None

    wait_for(lambda: slots() == 1, what="an idle pool to go down to 1 slot")
    ids = store.submit_jobs({"command": ["sleep", "1"]} for _ in range(12))
    most = 0
    while not all(
        s["state"] == "completed" for s in store.get_job_states(ids).values()
    ):
        most = max(most, running_in(store, "default"))
        time.sleep(0.1)
    assert most == 3  # grew from 1, never past the policy's max
    wait_for(lambda: slots() == 1, what="the slots to come back down")
    # scaling down while jobs run: they run to their end
    resource_api.configure_autoscaling(
        store.db,
        {"name": "slots", "min_replicas": 3, "max_replicas": 3,
         "metrics": [{"queue_length": {"target": 2}}]},
    )  # fmt: skip
    wait_for(lambda: slots() == 3, what="3 slots")
    long = store.submit_jobs({"command": ["sleep", "4"]} for _ in range(3))
    wait_running(store, long)
    resource_api.configure_autoscaling(
        store.db,
        {"name": "slots", "min_replicas": 1, "max_replicas": 1,
         "metrics": [{"queue_length": {"target": 2}}]},
    )  # fmt: skip
    wait_for(lambda: slots() == 1, what="1 slot")
    extra = store.submit_job(["true"])
    ended = wait_final(store, [*long, extra])
    assert all(ended[i]["state"] == "completed" for i in long)
    assert ended[extra]["started_at"] >= max(ended[i]["ended_at"] for i in long) - 0.5
    events = store.db.query(
        "SELECT count(*) FROM events WHERE type = 'autoscale.scaled'"
    )
    assert events[0][0] >= 4


def test_local_slots_follow_the_machine_s_memory_headroom(daemon, store):
    """Memory use well below the target with jobs waiting: more slots; far
    above it (a target below what the machine uses): fewer, and the jobs
    running then finish."""
    import psutil

    used = psutil.virtual_memory().percent
    if used > 60:
        pytest.skip(f"the machine uses {used}% of its memory")

    def policy(lo: int, hi: int, target: float) -> None:
        resource_api.configure_autoscaling(
            store.db,
            {"name": "mem", "min_replicas": lo, "max_replicas": hi,
             "metrics": [{"resource_utilization":
                          {"resource": "memory", "target_percentage": target}}],
             "scale_up": {"duration": 0.5, "step": 1},
             "scale_down": {"duration": 0.5, "step": 1}},
        )  # fmt: skip

    def slots() -> int | None:
        rows = store.db.query("SELECT current FROM autoscaler WHERE policy = 'mem'")
        return rows[0][0] if rows else None

    policy(1, 1, used + 30)
    daemon(3, cpus=3, autoscale_interval_s=0.3)
    wait_for(lambda: slots() == 1, what="1 slot")
    policy(1, 3, used + 30)  # headroom: ~used/(used+30) of the target
    ids = store.submit_jobs({"command": ["sleep", "2"]} for _ in range(9))
    wait_for(lambda: running_in(store, "default") == 3, what="3 jobs running")
    policy(1, 3, max(0.5, used / 4))  # pressure: 4x the target
    wait_for(lambda: slots() == 1, what="fewer slots under pressure")
    ended = wait_final(store, ids)
    assert all(e["state"] == "completed" for e in ended.values())


@pytest.mark.parametrize("victim_ends", [True, False], ids=["ends", "runs-on"])
def test_kill_9_the_daemon_during_a_preemption(daemon, store, tmp_path, victim_ends):
    """The daemon dies after its victim got TERM: the restarted daemon carries
    the preemption on -- a victim that ended meanwhile is re-queued, not
    failed; one that ignores TERM is killed after its grace -- with one
    preemption, no job lost or run twice at once, no process left."""
    # "ends": the victim says it got TERM, then takes 3 s to exit 7, so the
    # daemon is killed while the victim still runs (it cannot have recorded
    # its end and started the urgent job: that is another scenario) and the
    # victim ends while no daemon runs; its grace (20 s) is never reached.
    # "runs-on": the victim ignores TERM; the new daemon kills it after 3 s.
    grace_s = 20 if victim_ends else 3
    resource_api.create_priority_class(
        store.db,
        {"name": "batch", "value": 0, "preemptible": True, "grace_period": grace_s},
    )  # fmt: skip
    resource_api.create_priority_class(store.db, {"name": "urgent", "value": 1000})
    service = daemon(1, cpus=1, backend_opts={"kill_grace_s": 30})
    marks = tmp_path / "marks"
    on_term = f"echo term >> {marks}; sleep 3; exit 7" if victim_ends else ""
    victim = store.submit_job(
        f"echo start >> {marks}; trap '{on_term}' TERM; sleep 12; echo end >> {marks}",
        priority_class="batch",
    )
    wait_running(store, [victim])
    pid = store.get_job_status(victim)["pid"]
    urgent = store.submit_job(["true"], priority_class="urgent")
    if victim_ends:  # the TERM arrived (the reason is written before it is sent)
        wait_for(
            lambda: marks.exists() and "term" in marks.read_text(),
            what="the victim's TERM",
        )
    else:
        wait_for(
            lambda: "preempted by" in (store.get_job_status(victim)["reason"] or ""),
            what="the preemption",
        )
    os.kill(service.status()["pid"], signal.SIGKILL)
    wait_for(lambda: not service.status()["running"], 10, "the daemon to die")
    if victim_ends:
        assert psutil.pid_exists(pid)  # the daemon died before the victim ended
        wait_for(lambda: not psutil.pid_exists(pid), 10, "the victim to end")
        assert store.get_job_status(victim)["state"] == "running"  # unrecorded
    else:
        time.sleep(1)
        assert psutil.pid_exists(pid)  # TERM did not stop it
    daemon(1, cpus=1, backend_opts={"kill_grace_s": 30})
    ended = wait_final(store, [victim, urgent], timeout_s=60)
    assert ended[urgent]["state"] == "completed"
    assert ended[victim]["state"] == "completed"
    assert ended[victim]["preemptions"] == 1 and ended[victim]["attempts"] == 1
    # ran again, to its end, after the urgent job; TERMed once
    assert ended[victim]["started_at"] >= ended[urgent]["ended_at"]
    runs = "start\nterm\nstart\nend\n" if victim_ends else "start\nstart\nend\n"
    assert marks.read_text() == runs
    rows = store.db.query("SELECT job_id, by_job, outcome FROM preemptions")
    assert rows == [(victim, urgent, "requeued")]
    assert not psutil.pid_exists(pid)
