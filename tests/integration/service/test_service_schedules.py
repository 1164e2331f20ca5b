"""Schedules fired by a real queue daemon: cadence, kill -9 downtime with each
missed-run policy, suspend/resume, overlap, and two pools on one db."""

from __future__ import annotations

import itertools
import json
import os
import signal
import sys
import time
from datetime import datetime

import psutil
import pytest
from service_helpers import wait_for

from xqute.orchestration import Every, JobSpec, Orchestrator
from xqute.orchestration.schedule_ops import set_suspended

pytestmark = pytest.mark.service


@pytest.fixture
def orch(db_path):
    o = Orchestrator(db_path)
    yield o
    o.close()


def scheduled_runs(orch, name: str) -> list[tuple[int, float, str]]:
    """(run id, scheduled_for, state) of the scheduled runs of job ``name``."""
    return [
        tuple(r)
        for r in orch.db.query(
            "SELECT id, scheduled_for, state FROM runs WHERE name = ? AND"
            " triggered_by = 'schedule' ORDER BY scheduled_for",
            (name,),
        )
    ]


def fire_events(orch) -> list[dict]:
    return [
        json.loads(r[0])
        for r in orch.db.query(
            "SELECT data FROM events WHERE type = 'schedule.fired' ORDER BY id"
        )
    ]


def groups(orch, outcome: str) -> list[tuple[int, str]]:
    return [
        tuple(r)
        for r in orch.db.query(
            "SELECT count, reason FROM schedule_fires WHERE outcome = ?", (outcome,)
        )
    ]


def kill9(service) -> None:
    pid = service.status()["pid"]
    os.kill(pid, signal.SIGKILL)
    wait_for(lambda: not psutil.pid_exists(pid) or _zombie(pid), 10, "daemon death")


def _zombie(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.Error:
        return True


def test_every_2s_fires_about_five_runs_in_10s(daemon, orch, tmp_path):
    out = tmp_path / "times.txt"
    script = (
        "import os, sys; open(sys.argv[1], 'a').write("
        "os.environ['XQUTE_SCHEDULED_FOR'] + ' ' + sys.argv[2] + '\\n')"
    )
    daemon(workers=2)
    orch.create_job(JobSpec(
        name="tick", schedule=Every("2s"),
        command=[sys.executable, "-c", script, str(out), "#{schedule.time}"],
    ))  # fmt: skip
    start = time.time()
    time.sleep(10)
    runs = [r for r in scheduled_runs(orch, "tick") if start < r[1] <= start + 10]
    assert 4 <= len(runs) <= 6, runs
    times = [r[1] for r in runs]
    assert all(t % 2 == 0 for t in times)  # Every("2s"): even unix seconds
    assert all(b - a == 2 for a, b in itertools.pairwise(times))

    def succeeded() -> bool:
        done = [r for r in scheduled_runs(orch, "tick") if r[0] <= runs[-1][0]]
        return all(r[2] == "succeeded" for r in done)

    wait_for(succeeded, 30, "the runs to succeed")
    lines = out.read_text().splitlines()
    assert len(lines) >= len(runs)
    for line in lines:  # the env and #{schedule.time}: the same scheduled time
        env, ref = line.split()
        assert env == ref and env.endswith("+00:00")
    fired = [e for e in fire_events(orch) if not e.get("catchup")]
    assert fired and all(e["lateness_s"] < 5 for e in fired)


@pytest.mark.parametrize(("policy", "catchups"), [("once", 1), ("skip", 0)])
def test_kill9_for_7s(daemon, orch, policy, catchups):
    service = daemon(workers=2)
    orch.create_job(JobSpec(
        name="tick", command=["true"], schedule=Every("2s", missed_runs=policy),
    ))  # fmt: skip

    # kill it between runs (a run in flight when it dies is re-queued and
    # still active at the restart, and forbid would then skip the catch-up)
    def idle() -> bool:
        runs = scheduled_runs(orch, "tick")
        return bool(runs) and runs[-1][2] == "succeeded" and 0.3 < time.time() % 2 < 1.5

    wait_for(idle, 30, "a first run to end")
    kill9(service)
    killed_at = time.time()
    time.sleep(7)
    restarted_at = time.time()
    daemon(workers=2)
    time.sleep(3)
    catchup = [e for e in fire_events(orch) if e.get("catchup")]
    assert len(catchup) == catchups, catchup
    # the times that came due until the new daemon's first look: only the
    # catch-up run (for the latest of them), if any
    first_look = orch.db.query(
        "SELECT min(fired_at) FROM schedule_fires WHERE fired_at > ?", (restarted_at,)
    )[0][0]
    down = [r for r in scheduled_runs(orch, "tick") if killed_at < r[1] <= first_look]
    assert [r[1] for r in down] == [
        datetime.fromisoformat(e["scheduled_for"]).timestamp() for e in catchup
    ]
    if policy == "once":
        ((count, _),) = groups(orch, "coalesced")
        assert count >= 2  # 3-4 times came due while it was down: one ran
    else:
        ((count, reason),) = groups(orch, "missed")
        assert count >= 3 and reason == "missed_runs=skip"
    # and it goes on firing on time afterwards
    after = [r for r in scheduled_runs(orch, "tick") if r[1] > restarted_at + 1]
    assert after
    times = [r[1] for r in scheduled_runs(orch, "tick")]
    assert len(times) == len(set(times))


def test_suspend_stops_fires_and_resume_skips_them(daemon, orch):
    daemon(workers=2)
    orch.create_job(JobSpec(name="tick", command=["true"], schedule=Every("1s")))
    wait_for(lambda: len(scheduled_runs(orch, "tick")) >= 2, 20, "two fires")
    assert set_suspended(orch.db, "tick", True)
    suspended_at = time.time()
    before = len(scheduled_runs(orch, "tick"))
    time.sleep(4)
    assert len(scheduled_runs(orch, "tick")) == before
    assert set_suspended(orch.db, "tick", False)
    resumed_at = time.time()
    wait_for(lambda: len(scheduled_runs(orch, "tick")) > before, 20, "a fire after")
    runs = scheduled_runs(orch, "tick")
    assert not [r for r in runs if suspended_at < r[1] <= resumed_at - 0.001]
    ((count, reason),) = groups(orch, "missed")
    assert reason == "suspended" and count >= 3


def test_forbid_skips_and_replace_cancels(daemon, orch):
    daemon(workers=4)
    orch.create_job(JobSpec(name="slow", command=["sleep", "30"],
                            schedule=Every("1s", concurrency="forbid")))  # fmt: skip
    orch.create_job(JobSpec(name="newest", command=["sleep", "30"],
                            schedule=Every("2s", concurrency="replace")))  # fmt: skip
    wait_for(lambda: len(scheduled_runs(orch, "newest")) >= 3, 40, "three fires")
    # forbid: one run, every other time skipped and recorded so
    slow = scheduled_runs(orch, "slow")
    assert len(slow) == 1 and slow[0][2] == "running"
    skipped = orch.db.query(
        "SELECT count(*), min(reason) FROM schedule_fires f JOIN schedules s ON"
        " s.id = f.schedule_id WHERE s.name = 'slow' AND f.outcome = 'skipped_overlap'"
    )[0]
    assert skipped[0] >= 3 and skipped[1] == f"run {slow[0][0]} was still active"
    # replace: each run is cancelled, and the next starts only once it ended
    rows = orch.db.query(
        "SELECT id, state, created_at, ended_at FROM runs WHERE name = 'newest'"
        " ORDER BY id"
    )
    for older, newer in itertools.pairwise(rows):
        assert older[1] == "cancelled"
        assert newer[2] >= older[3]
    assert rows[-1][1] == "running"


def test_two_pools_never_fire_a_time_twice(daemon, orch, store):
    from xqute.queue import WorkerPoolManager

    daemon(workers=2)
    pool = WorkerPoolManager(store, 2)  # a second pool on the db: fires too
    pool.start_workers()
    try:
        for i in range(5):
            orch.create_job(JobSpec(name=f"t{i}", command=["true"],
                                    schedule=Every("1s")))  # fmt: skip
        start = time.time()
        time.sleep(6)
    finally:
        pool.stop_workers(now=True, timeout_s=30)
    end = time.time()
    rows = orch.db.query(
        "SELECT schedule_id, scheduled_for, count(*) FROM runs WHERE schedule_id IS"
        " NOT NULL GROUP BY 1, 2"
    )
    assert rows and all(n == 1 for _, _, n in rows)
    for i in range(5):  # and none was lost between the two
        times = {r[1] for r in scheduled_runs(orch, f"t{i}")}
        wanted = set(range(int(start) + 2, int(end) - 1))
        assert wanted <= times, sorted(wanted - times)
