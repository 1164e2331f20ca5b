"""The fire decision on plain data: on-time fires, each missed-run policy,
starting deadlines, DST through the decision, clock steps, overlap, resume."""

from __future__ import annotations

import random
import time
from datetime import UTC, datetime, timedelta

import pytest

from xqute.errors import ConfigError
from xqute.orchestration import Cron, Every
from xqute.orchestration.fires import (
    REASON_CAP,
    REASON_DEADLINE,
    REASON_SKIP,
    REASON_SUSPENDED,
    Fire,
    ScheduleState,
    admit,
    due,
    resume,
    watching_since,
)
from xqute.orchestration.schedules import schedule_from_dict


def T(text: str, day: str = "2026-06-01") -> datetime:
    """``"10:07"`` or ``"10:07:20.5"`` on ``day``, UTC."""
    return datetime.fromisoformat(f"{day}T{text}").replace(tzinfo=UTC)


def minutely(**policies) -> Every:
    return Every("1m", **policies)


def hm(t: datetime) -> str:
    return t.strftime("%H:%M")


# (schedule, settled, now, watching, fires [(HH:MM, catchup)],
#  groups [(outcome, reason, first HH:MM, last HH:MM, count)])
DUE_TABLE = [
    pytest.param(minutely(), "10:00:30", "10:01:00.02", "10:00:30",
                 [("10:01", False)], [], id="on-time"),
    pytest.param(minutely(), "10:00:30", "10:00:59", "10:00:30", [], [],
                 id="nothing-due"),
    pytest.param(minutely(), "10:05:00", "10:01:00", "10:00:59", [], [],
                 id="clock-stepped-back"),
    pytest.param(minutely(), "10:00:30", "10:07:20", None,
                 [("10:07", True)],
                 [("coalesced", None, "10:01", "10:06", 6)], id="down-7min-once"),
    pytest.param(minutely(missed_runs="all"), "10:00:30", "10:07:20", None,
                 [(f"10:0{m}", True) for m in range(1, 8)], [], id="down-7min-all"),
    pytest.param(minutely(missed_runs="skip"), "10:00:30", "10:07:20", None, [],
                 [("missed", REASON_SKIP, "10:01", "10:07", 7)], id="down-7min-skip"),
    pytest.param(minutely(missed_runs="all"), "10:00:30", "10:30:20", None,
                 [(f"10:{m}", True) for m in range(21, 31)],
                 [("missed", REASON_CAP, "10:01", "10:20", 20)],
                 id="down-30min-all-cap"),
    pytest.param(minutely(missed_runs="all", max_catchup=2), "10:00:30", "10:07:20",
                 None, [("10:06", True), ("10:07", True)],
                 [("missed", REASON_CAP, "10:01", "10:05", 5)], id="all-cap-2"),
    pytest.param(minutely(starting_deadline="3m"), "10:00:30", "10:07:20", None,
                 [("10:07", True)],
                 [("missed", REASON_DEADLINE, "10:01", "10:04", 4),
                  ("coalesced", None, "10:05", "10:06", 2)], id="deadline-once"),
    pytest.param(minutely(starting_deadline="3m", missed_runs="all"), "10:00:30",
                 "10:07:20", None, [("10:05", True), ("10:06", True), ("10:07", True)],
                 [("missed", REASON_DEADLINE, "10:01", "10:04", 4)], id="deadline-all"),
    pytest.param(minutely(starting_deadline="10s"), "10:00:30", "10:07:20", None, [],
                 [("missed", REASON_DEADLINE, "10:01", "10:07", 7)],
                 id="deadline-all-too-old"),
    pytest.param(minutely(missed_runs="skip"), "10:00:30", "10:07:20", "10:05:30",
                 [("10:06", False), ("10:07", False)],
                 [("missed", REASON_SKIP, "10:01", "10:05", 5)],
                 id="skip-watched-since-a-jump"),
    pytest.param(minutely(missed_runs="skip"), "10:00:30", "10:01:00.1", "10:00:30",
                 [("10:01", False)], [], id="skip-on-time"),
    pytest.param(Cron("*/5 * * * *", timezone="UTC"), "10:00:30", "10:30:20", None,
                 [("10:30", True)],
                 [("coalesced", None, "10:05", "10:25", 5)], id="cron-once"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("schedule", "settled", "now", "watching", "fires", "groups"), DUE_TABLE
)
def test_due(schedule, settled, now, watching, fires, groups):
    plan = due(
        schedule, ScheduleState(T(settled)), T(now), T(watching) if watching else None
    )
    assert [(hm(f.scheduled_for), f.catchup) for f in plan.fires] == fires
    got = [(g.outcome, g.reason, hm(g.first), hm(g.last), g.count) for g in plan.groups]
    expected = [
        (o, r if r is not None else got[i][1], a, b, n)
        for i, (o, r, a, b, n) in enumerate(groups)
    ]
    assert got == expected
    assert all(g.exact for g in plan.groups)
    assert plan.settled_until == max(T(settled), T(now))
    assert plan.next_fire is not None and plan.next_fire > T(now)


def test_a_backward_step_never_fires_again():
    schedule = minutely(missed_runs="all")
    plan = due(schedule, ScheduleState(T("10:00:30")), T("10:05:10"))
    assert len(plan.fires) == 5
    state = ScheduleState(plan.settled_until)
    for now in ("09:00:00", "10:01:00", "10:05:00", "10:05:10"):  # clock went back
        again = due(schedule, state, T(now), T(now))
        assert again.fires == () and again.groups == ()
        assert again.settled_until == state.settled_until
        assert again.next_fire == T("10:06")
    assert [hm(f.scheduled_for) for f in due(schedule, state, T("10:06:01")).fires] == [
        "10:06"
    ]


DST_DUE_TABLE = [
    # a fixed-time entry down across the fall-back night: one run for that night
    pytest.param(Cron("30 2 * * *", timezone="Europe/Berlin", missed_runs="all"),
                 "2026-10-24T12:00:00Z", "2026-10-26T12:00:00Z",
                 ["2026-10-25T00:30:00+00:00", "2026-10-26T01:30:00+00:00"],
                 id="berlin-fixed-fall"),
    # in the spring-forward gap: one run right after the jump
    pytest.param(Cron("30 2 * * *", timezone="Europe/Berlin", missed_runs="all"),
                 "2026-03-28T12:00:00Z", "2026-03-29T12:00:00Z",
                 ["2026-03-29T01:00:00+00:00"], id="berlin-fixed-spring"),
    # a wildcard entry runs in both copies of the repeated hour
    pytest.param(Cron("*/30 * * * *", timezone="Europe/Berlin", missed_runs="all"),
                 "2026-10-24T23:45:00Z", "2026-10-25T01:10:00Z",
                 ["2026-10-25T00:00:00+00:00", "2026-10-25T00:30:00+00:00",
                  "2026-10-25T01:00:00+00:00"], id="berlin-wildcard-fall"),
    pytest.param(Cron("30 1 * * *", timezone="America/New_York", missed_runs="all"),
                 "2026-10-31T12:00:00Z", "2026-11-02T12:00:00Z",
                 ["2026-11-01T05:30:00+00:00", "2026-11-02T06:30:00+00:00"],
                 id="new-york-fixed-fall"),
    pytest.param(Cron("30 2 * * *", timezone="America/New_York", missed_runs="all"),
                 "2026-03-07T12:00:00Z", "2026-03-09T12:00:00Z",
                 ["2026-03-08T07:00:00+00:00", "2026-03-09T06:30:00+00:00"],
                 id="new-york-fixed-spring"),
    # leap day
    pytest.param(Cron("0 0 29 2 *", timezone="UTC", missed_runs="all"),
                 "2026-01-01T00:00:00Z", "2033-01-01T00:00:00Z",
                 ["2028-02-29T00:00:00+00:00", "2032-02-29T00:00:00+00:00"],
                 id="leap-days"),
]  # fmt: skip


@pytest.mark.parametrize(("schedule", "settled", "now", "fires"), DST_DUE_TABLE)
def test_dst_through_the_decision(schedule, settled, now, fires):
    state = ScheduleState(datetime.fromisoformat(settled))
    plan = due(schedule, state, datetime.fromisoformat(now))
    assert [f.scheduled_for.isoformat() for f in plan.fires] == fires
    assert plan.groups == ()


@pytest.mark.parametrize(
    "schedule",
    [Every("1s", missed_runs=p) for p in ("once", "all", "skip")]
    + [
        Cron("* * * * *", timezone="Europe/Berlin", missed_runs=p)
        for p in ("once", "all", "skip")
    ],
    ids=lambda s: f"{s.kind}-{s.missed_runs}",
)
def test_ten_years_down_costs_milliseconds(schedule):
    state = ScheduleState(T("00:00:00", "2026-01-01"))
    now = T("00:00:00.5", "2036-01-01")
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        plan = due(schedule, state, now)
        best = min(best, time.perf_counter() - start)
    assert best < 0.010, f"{best * 1000:.1f} ms"
    total = len(plan.fires) + sum(g.count for g in plan.groups)
    if schedule.kind == "every":  # counts are exact for intervals
        assert total == (10 * 365 + 2) * 86400  # 2028, 2032: leap years
    else:
        assert any(not g.exact and g.count == 11 for g in plan.groups)
        assert "more than 10" in [g.count_text() for g in plan.groups]
    assert len(plan.fires) <= schedule.max_catchup


@pytest.mark.parametrize(
    ("zone", "night"),
    [("Europe/Berlin", "2026-03-28T22:00Z"), ("Europe/Berlin", "2026-10-24T22:00Z"),
     ("America/New_York", "2026-03-08T03:00Z"),
     ("America/New_York", "2026-11-01T03:00Z")],
)  # fmt: skip
def test_looks_at_random_times_settle_every_time_once(zone, night):
    """Looked at at random times across a DST night (some looks right after
    a fire, some after hours down, some after a clock jump), each policy and
    deadline settles every fire time exactly once: a run, or counted in a
    group; never a run twice, never one the deadline forbids."""
    rng = random.Random(f"{zone}{night}")
    start = datetime.fromisoformat(night)
    end = start + timedelta(hours=8)
    for expr in ("0 2 * * *", "30 2 * * *", "*/15 * * * *", "@hourly", "30 1 * * *"):
        for policy in ("once", "all", "skip"):
            deadline = rng.choice([None, 600, 5400])
            schedule = Cron(expr, timezone=zone, missed_runs=policy,
                            starting_deadline=deadline, max_catchup=100)  # fmt: skip
            timeline, walked, t = schedule.timeline(), [], start
            while (t := timeline.first_after(t)) <= end:
                walked.append(t)
            state, now, watching = ScheduleState(start), start, None
            ran, grouped = [], 0
            while now < end:
                step = rng.choice([1, 61, 900, 3600, 4 * 3600]) + rng.random()
                now = min(end, now + timedelta(seconds=step))
                plan = due(schedule, state, now, watching)
                ran += [f.scheduled_for for f in plan.fires]
                grouped += sum(g.count for g in plan.groups)
                if deadline is not None:
                    late = [now - f.scheduled_for for f in plan.fires]
                    assert all(d <= timedelta(seconds=deadline) for d in late)
                state = ScheduleState(plan.settled_until)
                watching = now if rng.random() < 0.8 else None
            assert len(ran) == len(set(ran)) and set(ran) <= set(walked), expr
            assert len(ran) + grouped == len(walked), (expr, policy, deadline)


ADMIT_TABLE = [
    # (concurrency, missed_runs, candidates, active,
    #  start, skipped, replaced, dropped, cancel, backlog)
    ("allow", "once", 3, [5], [0, 1, 2], [], [], [], [], []),
    ("forbid", "once", 1, [5], [], [0], [], [], [], []),
    ("forbid", "once", 1, [], [0], [], [], [], [], []),
    ("forbid", "skip", 2, [], [1], [0], [], [], [], []),
    ("forbid", "all", 3, [5], [], [], [], [], [], [0, 1, 2]),
    ("forbid", "all", 3, [], [0], [], [], [], [], [1, 2]),
    ("forbid", "all", 12, [5], [], [], [], [0, 1], [], list(range(2, 12))),
    ("allow", "all", 12, [5], list(range(2, 12)), [], [], [0, 1], [], []),
    ("replace", "once", 3, [5, 6], [], [], [0, 1], [], [5, 6], [2]),
    ("replace", "once", 3, [], [2], [], [0, 1], [], [], []),
    ("forbid", "once", 0, [5], [], [], [], [], [], []),
]


@pytest.mark.parametrize(
    ("concurrency", "missed", "n", "active", "start", "skipped", "replaced",
     "dropped", "cancel", "backlog"),
    ADMIT_TABLE,
)  # fmt: skip
def test_admit(concurrency, missed, n, active, start, skipped, replaced, dropped,
               cancel, backlog):  # fmt: skip
    schedule = minutely(concurrency=concurrency, missed_runs=missed)
    fires = [Fire(T("10:00") + timedelta(minutes=i)) for i in range(n)]
    got = admit(schedule, fires, active)

    def index(items):
        return [fires.index(f) for f in items]

    assert index(got.start) == start
    assert index(got.skipped) == skipped
    assert index(got.replaced) == replaced
    assert index(got.dropped) == dropped
    assert list(got.cancel) == cancel
    assert index(got.backlog) == backlog


@pytest.mark.parametrize(
    ("concurrency", "active", "start", "backlog"),
    [("forbid", [], ["10:05"], ["10:06"]), ("forbid", [5], [], ["10:05", "10:06"]),
     ("allow", [5], ["10:05", "10:06"], []), ("replace", [], ["10:06"], [])],
)  # fmt: skip
def test_a_waiting_fire_past_its_starting_deadline_is_missed(
    concurrency, active, start, backlog
):
    """Fires waiting in the backlog (forbid + all, replace) are held to the
    deadline too: at 10:06:30 with a 2-minute deadline, 10:01-10:04 are missed."""
    schedule = minutely(missed_runs="all", starting_deadline="2m",
                        concurrency=concurrency)  # fmt: skip
    fires = [Fire(T(f"10:0{m}")) for m in range(1, 7)]
    got = admit(schedule, fires, active, now=T("10:06:30"))
    expired = [hm(f.scheduled_for) for f in got.expired]
    assert expired == ["10:01", "10:02", "10:03", "10:04"]
    assert [hm(f.scheduled_for) for f in got.start] == start
    assert [hm(f.scheduled_for) for f in got.backlog] == backlog
    assert admit(schedule, fires, active).expired == ()  # no time, no deadline


def test_resume_skips_what_came_due_while_suspended():
    schedule = minutely(missed_runs="all")
    state = ScheduleState(T("10:00:30"), backlog=(Fire(T("09:58")),))
    new, groups = resume(schedule, state, T("10:07:20"))
    assert new == ScheduleState(T("10:07:20"))
    assert [
        (g.outcome, g.reason, hm(g.first), hm(g.last), g.count) for g in groups
    ] == [
        ("missed", REASON_SUSPENDED, "09:58", "09:58", 1),
        ("missed", REASON_SUSPENDED, "10:01", "10:07", 7),
    ]
    assert due(schedule, new, T("10:07:50"), T("10:07:20")).fires == ()
    again, nothing = resume(schedule, new, T("10:07:40"))
    assert nothing == () and again.settled_until == T("10:07:40")


@pytest.mark.parametrize(
    ("previous", "now", "mono", "expected"),
    [
        (None, "10:00:01", 101.0, None),
        (("10:00:00", 100.0), "10:00:01", 101.0, "10:00:00"),
        (("10:00:00", 100.0), "10:00:01.9", 101.0, "10:00:00"),  # within tolerance
        (("10:00:00", 100.0), "11:00:01", 101.0, None),  # NTP step or suspend
        (("10:00:00", 100.0), "09:00:01", 101.0, None),  # stepped back
    ],
)
def test_watching_since(previous, now, mono, expected):
    prev = (T(previous[0]), previous[1]) if previous else None
    got = watching_since(prev, T(now), mono)
    assert got == (T(expected) if expected else None)


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ({"cron": "0 0 * * *"}, Cron("0 0 * * *", timezone="Europe/Berlin")),
        ({"cron": "@daily", "timezone": "UTC", "missed_runs": "skip"},
         Cron("0 0 * * *", timezone="UTC", missed_runs="skip")),
        ({"every": "6h"}, Every(timedelta(hours=6))),
        ({"every": 90, "anchor": "2026-01-01T00:00:00Z", "starting_deadline": "1h"},
         Every("90s", anchor=datetime(2026, 1, 1, tzinfo=UTC), starting_deadline=3600)),
    ],
)  # fmt: skip
def test_schedule_from_yaml_data(data, expected):
    got = schedule_from_dict(data, defaults={"timezone": "Europe/Berlin"})
    assert got == expected


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ("0 0 * * *", "must be a mapping"),
        ({"cron": "0 0 * * *", "every": "1h"}, "exactly one of"),
        ({"cron": "0 0 * * *", "anchor": "x"}, "unknown key 'anchor'"),
        ({"every": "6x"}, "interval '6x' is not a duration"),
        ({"every": "0.5s"}, "at least 1s"),
        ({"every": "1h", "anchor": "2026-01-01T00:00:00"}, "has no timezone"),
        ({"every": "1h", "missed_runs": "twice"}, "missed_runs 'twice' is not allowed"),
        ({"cron": "0 0 * * *", "concurrency": "queue"}, "concurrency 'queue'"),
        ({"cron": "0 0 * * *", "max_catchup": 0}, "max_catchup 0"),
        ({"cron": "0 0 * * *", "starting_deadline": "-1h"}, "starting_deadline"),
    ],
)
def test_schedule_errors_name_where(data, message):
    with pytest.raises(ConfigError, match=message) as info:
        schedule_from_dict(data, where="jobs.nightly.schedule")
    assert str(info.value).startswith("jobs.nightly.schedule: ")
