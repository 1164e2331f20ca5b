"""The fire transaction on a real db (no pool runs the jobs): at most one run
per scheduled time (again, concurrently, after a crash mid-fire), catch-up
records, runs that cannot be created, and the extension's clock handling."""

from __future__ import annotations

import threading

import pytest

from xqute.orchestration import Every, JobSpec, Orchestrator, catalog
from xqute.orchestration import definitions as defs
from xqute.orchestration import schedule_store as store
from xqute.orchestration.fire_loop import ScheduleExtension, fire_schedules
from xqute.orchestration.fires import REASON_DEADLINE
from xqute.orchestration.schedule_ops import fire_now
from xqute.orchestration.schedule_view import row_view
from xqute.queue.store import SqliteJobScheduler


@pytest.fixture
def orch(tmp_path):
    o = Orchestrator(tmp_path / "q.db")
    yield o
    o.close()


def define(orch, name: str = "tick", **policies) -> float:
    spec = JobSpec(name=name, command=["true"], schedule=Every("1s", **policies))
    catalog.create(orch.db, "job", spec)
    return store.find(orch.db, name).settled_until


def runs(orch) -> list[tuple]:
    return orch.db.query(
        "SELECT name, scheduled_for, triggered_by FROM runs ORDER BY scheduled_for"
    )


def outcomes(orch) -> list[tuple]:
    return orch.db.query(
        "SELECT outcome, count FROM schedule_fires ORDER BY scheduled_for"
    )


def test_a_time_fires_once_however_often_it_is_looked_at(orch):
    t0 = define(orch)
    now = float(int(t0) + 1) + 0.02
    nxt = fire_schedules(orch.db, now, store.to_dt(t0))
    assert nxt == int(t0) + 2
    assert runs(orch) == [("tick", int(t0) + 1, "schedule")]
    for _ in range(3):
        fire_schedules(orch.db, now, store.to_dt(now - 0.5))
    assert len(runs(orch)) == 1
    (row,) = store.list_rows(orch.db)
    assert row.fired == 1 and row.last_run_id is not None
    (lateness,) = orch.db.query("SELECT lateness_s FROM schedule_fires")[0]
    assert 0.02 <= lateness < 1  # plus the time to create the run
    types = [r[0] for r in orch.db.query("SELECT type FROM events ORDER BY id")]
    assert "schedule.fired" in types and "job.started" in types


def test_two_firers_at_once_create_one_run(orch, tmp_path):
    t0 = define(orch)
    now = float(int(t0) + 3) + 0.5
    barrier = threading.Barrier(4)
    errors = []

    def fire() -> None:
        db = SqliteJobScheduler(tmp_path / "q.db").db  # a process of its own, say
        barrier.wait()
        try:
            fire_schedules(db, now, None)
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            db.close()

    threads = [threading.Thread(target=fire) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert runs(orch) == [("tick", int(t0) + 3, "schedule")]  # once: the latest
    assert outcomes(orch) == [("coalesced", 2), ("started", 1)]


def test_a_crash_mid_fire_leaves_nothing_and_fires_once_after(orch, monkeypatch):
    t0 = define(orch)
    now = float(int(t0) + 1) + 0.1

    class Killed(BaseException):  # like a kill: nothing in the process handles it
        pass

    def crash(*args, **kwargs):
        raise Killed

    with monkeypatch.context() as m:  # after the run was created, before the record
        m.setattr(store, "record", crash)
        with pytest.raises(Killed):
            fire_schedules(orch.db, now, store.to_dt(t0))
    assert runs(orch) == [] and outcomes(orch) == []
    assert orch.db.query("SELECT count(*) FROM job_queue")[0][0] == 0
    assert store.find(orch.db, "tick").settled_until == t0
    fire_schedules(orch.db, now, None)
    assert runs(orch) == [("tick", int(t0) + 1, "schedule")]


def test_catch_up_is_recorded_and_summarized(orch):
    t0 = define(orch, "once")
    define(orch, "all", missed_runs="all", concurrency="allow")
    define(orch, "skip", missed_runs="skip")
    now = float(int(t0) + 7) + 0.3  # 7 times came due while nobody watched
    fire_schedules(orch.db, now, None)
    by_name: dict[str, list] = {}
    for name, when, _ in runs(orch):
        by_name.setdefault(name, []).append(when)
    assert by_name["once"] == [int(t0) + 7]
    assert len(by_name["all"]) == 7 and "skip" not in by_name
    views = {v["name"]: v for v in map(row_view, store.list_rows(orch.db))}
    assert views["once"]["last_catchup"].startswith(
        "missed 7, coalesced into 1 run at "
    )
    assert views["all"]["last_catchup"].startswith("missed 7, ran 7 late, oldest")
    assert views["skip"]["last_catchup"] == "missed 7, none run (missed_runs=skip)"
    assert (views["once"]["fired"], views["once"]["coalesced"]) == (1, 6)
    assert (views["skip"]["fired"], views["skip"]["missed"]) == (0, 7)


def test_all_with_forbid_waits_its_turn(orch):
    t0 = define(orch, missed_runs="all")
    now = float(int(t0) + 3) + 0.3
    fire_schedules(orch.db, now, None)
    assert len(runs(orch)) == 1  # the oldest; two wait for it
    (row,) = store.list_rows(orch.db)
    assert [int(f.scheduled_for.timestamp()) for f in row.backlog] == [
        int(t0) + 2, int(t0) + 3
    ]  # fmt: skip
    assert row.next_fire_at <= now + 1
    fire_schedules(orch.db, now + 1, store.to_dt(now))  # still active: still waiting
    assert len(runs(orch)) == 1
    orch.db.write(lambda c: c.execute("UPDATE runs SET state = 'succeeded'"))
    fire_schedules(orch.db, now + 2, store.to_dt(now + 1))
    assert [r[1] for r in runs(orch)] == [int(t0) + 1, int(t0) + 2]


def test_a_fire_waiting_past_its_starting_deadline_is_missed(orch):
    t0 = define(orch, missed_runs="all", starting_deadline="2s")
    now = float(int(t0) + 1) + 0.3
    fire_schedules(orch.db, now, None)  # the run for t0+1 starts
    for k in (1, 2):  # t0+2, t0+3 wait for it
        fire_schedules(orch.db, now + k, store.to_dt(now + k - 1))
    assert len(store.find(orch.db, "tick").backlog) == 2
    orch.db.write(lambda c: c.execute("UPDATE runs SET state = 'succeeded'"))
    later = now + 60  # the active run ended a minute later
    fire_schedules(orch.db, later, store.to_dt(later - 1))
    assert [r[1] for r in runs(orch)] == [int(t0) + 1, int(later) - 1]
    row = store.find(orch.db, "tick")  # the newest waits for the one started
    assert [f.scheduled_for for f in row.backlog] == [store.to_dt(int(later))]
    assert (row.fired, row.missed) == (2, 2 + int(later) - 2 - (int(t0) + 3))
    missed = orch.db.query(
        "SELECT scheduled_for, reason FROM schedule_fires WHERE outcome = 'missed'"
        " AND scheduled_for <= ? ORDER BY scheduled_for",
        (int(t0) + 3,),
    )
    assert missed == [(int(t0) + 2, REASON_DEADLINE), (int(t0) + 3, REASON_DEADLINE)]


def test_a_run_that_cannot_start_is_recorded_failed(orch):
    define(orch, "broken")
    t0 = define(orch, "fine")  # the later one: a second may pass between the two
    orch.db.write(lambda c: defs.set_suspended(c, "job", "broken", True))
    fire_schedules(orch.db, float(int(t0) + 1) + 0.1, store.to_dt(t0))
    assert [r[0] for r in runs(orch)] == ["fine"]
    (reason,) = orch.db.query(
        "SELECT reason FROM schedule_fires WHERE outcome = 'failed'"
    )[0]
    assert "suspended" in reason
    assert store.find(orch.db, "broken").settled_until > t0  # not retried forever


def test_a_schedule_that_cannot_be_read_does_not_stop_the_others(orch):
    define(orch, "broken")
    t0 = define(orch, "fine")  # the later one: a second may pass between the two
    bad = '{"cron": "0 0 * * *", "timezone": "Nowhere/Gone"}'  # say, a tzdata update
    orch.db.write(lambda c: c.execute(
        "UPDATE schedules SET spec = ? WHERE name = 'broken'", (bad,)
    ))  # fmt: skip
    now = float(int(t0) + 1) + 0.1
    fire_schedules(orch.db, now, store.to_dt(t0))
    assert [r[0] for r in runs(orch)] == ["fine"]
    (retry,) = orch.db.query(
        "SELECT next_fire_at FROM schedules WHERE name = 'broken'"
    )[0]
    assert retry > now + 10  # looked at again later, not every second


def test_a_manual_fire_never_takes_a_scheduled_time(orch, monkeypatch):
    from xqute.orchestration import schedule_ops

    t0 = define(orch, concurrency="allow")
    due_at = float(int(t0) + 1)  # a scheduled time, to the microsecond
    monkeypatch.setattr(schedule_ops.time, "time", lambda: due_at)
    fire_now(orch.db, "tick")
    monkeypatch.undo()
    fire_schedules(orch.db, due_at + 0.1, store.to_dt(t0))
    assert orch.db.query(
        "SELECT outcome FROM schedule_fires ORDER BY scheduled_for"
    ) == [("started",), ("manual",)]  # fmt: skip


def test_fire_now_is_a_manual_fire(orch):
    define(orch)
    run_id = fire_now(orch.db, "tick")
    assert orch.db.query("SELECT triggered_by FROM runs WHERE id = ?", (run_id,)) == [
        ("schedule",)
    ]
    assert outcomes(orch) == [("manual", 1)]
    assert store.find(orch.db, "tick").fired == 0


def test_the_extension_watches_between_looks_unless_the_clock_jumped(orch):
    t0 = define(orch, missed_runs="skip")
    base = int(t0)
    ext = ScheduleExtension()
    start = base + 2.5
    ext.reconcile(orch.db, start)  # first look: what came due was not watched
    ext.reconcile(orch.db, start + 0.9)  # ~like the monotonic clock: watched
    ext.reconcile(orch.db, start + 3.2)  # 3.2 s of wall time at once: a jump
    assert [r[1] for r in runs(orch)] == [base + 3]
    assert outcomes(orch) == [("missed", 2), ("started", 1), ("missed", 2)]


def test_a_backward_clock_step_fires_nothing_again(orch):
    t0 = define(orch, missed_runs="all", concurrency="allow")
    base = int(t0)
    fire_schedules(orch.db, base + 3.5, store.to_dt(base + 2.5))
    assert [r[1] for r in runs(orch)] == [base + 1, base + 2, base + 3]
    for back in (base + 1.2, base + 3.0, base + 3.9):  # the clock went back
        fire_schedules(orch.db, back, store.to_dt(back - 0.5))
    assert len(runs(orch)) == 3
    fire_schedules(orch.db, base + 4.1, store.to_dt(base + 3.9))
    assert [r[1] for r in runs(orch)][-1] == base + 4 and len(runs(orch)) == 4


def test_old_fires_are_pruned(orch, monkeypatch):
    from xqute.orchestration import fire_loop

    t0 = define(orch, concurrency="allow")
    base = int(t0)
    for k in range(1, 4):
        fire_schedules(orch.db, base + k + 0.1, store.to_dt(base + k - 0.9))
    assert len(outcomes(orch)) == 3
    monkeypatch.setattr(fire_loop, "FIRES_KEPT_S", 1.5)
    monkeypatch.setattr(fire_loop, "_last_prune", {})
    fire_schedules(orch.db, base + 4.1, store.to_dt(base + 3.1))
    kept = orch.db.query("SELECT scheduled_for FROM schedule_fires")
    assert [r[0] for r in kept] == [base + 3, base + 4]
