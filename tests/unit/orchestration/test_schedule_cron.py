"""Cron expressions: Debian semantics, DST in Europe/Berlin and America/New_York,
leap days, L and steps; and the searches the fire decision relies on."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from xqute.errors import ConfigError
from xqute.orchestration import Cron, Every
from xqute.orchestration.cron import CronTimeline, dst_note, get_zone, normalize_cron

BERLIN = "Europe/Berlin"
NEW_YORK = "America/New_York"


def fires(expr: str, zone: str, start: str, n: int) -> list[str]:
    """The next ``n`` fires after ``start`` (local wall time), as local text."""
    z = ZoneInfo(zone)
    timeline = Cron(expr, timezone=zone).timeline()
    t = datetime.fromisoformat(start).replace(tzinfo=z).astimezone(UTC)
    out = []
    for _ in range(n):
        t = timeline.first_after(t)
        out.append(t.astimezone(z).strftime("%m-%d %H:%M %Z"))
    return out


# (zone, expr, start (local), expected fires (local wall time and zone))
DST_TABLE = [
    # fixed-time entry in the spring-forward gap: once, right after the jump
    (BERLIN, "30 2 * * *", "2026-03-28 12:00",
     ["03-29 03:00 CEST", "03-30 02:30 CEST", "03-31 02:30 CEST"]),
    (BERLIN, "0 2 * * *", "2026-03-28 12:00",
     ["03-29 03:00 CEST", "03-30 02:00 CEST"]),
    # two times of one entry in the gap: one run, as Debian cron does
    (BERLIN, "0,30 2 * * *", "2026-03-28 12:00",
     ["03-29 03:00 CEST", "03-30 02:00 CEST", "03-30 02:30 CEST"]),
    # fixed-time entry in the fall-back overlap: once (the first 02:30)
    (BERLIN, "30 2 * * *", "2026-10-24 12:00",
     ["10-25 02:30 CEST", "10-26 02:30 CET"]),
    (BERLIN, "5 1-3 * * *", "2026-10-25 00:00",
     ["10-25 01:05 CEST", "10-25 02:05 CEST", "10-25 03:05 CET", "10-26 01:05 CET"]),
    # wildcard entries follow real time: nothing in the gap...
    (BERLIN, "*/30 * * * *", "2026-03-29 01:15",
     ["03-29 01:30 CET", "03-29 03:00 CEST", "03-29 03:30 CEST"]),
    # ...and both copies of the repeated hour
    (BERLIN, "*/30 * * * *", "2026-10-25 01:45",
     ["10-25 02:00 CEST", "10-25 02:30 CEST", "10-25 02:00 CET", "10-25 02:30 CET",
      "10-25 03:00 CET"]),
    (BERLIN, "15 * * * *", "2026-10-25 01:30",
     ["10-25 02:15 CEST", "10-25 02:15 CET", "10-25 03:15 CET"]),
    # the hour that is not repeated, an alias, a step across the gap
    (BERLIN, "0 2 * * *", "2026-10-24 12:00", ["10-25 02:00 CEST", "10-26 02:00 CET"]),
    (BERLIN, "@hourly", "2026-10-25 01:30",
     ["10-25 02:00 CEST", "10-25 02:00 CET", "10-25 03:00 CET"]),
    (BERLIN, "@hourly", "2026-03-29 01:30", ["03-29 03:00 CEST", "03-29 04:00 CEST"]),
    (NEW_YORK, "*/15 * * * *", "2026-03-08 01:40",
     ["03-08 01:45 EST", "03-08 03:00 EDT", "03-08 03:15 EDT"]),
    (NEW_YORK, "0 2 * * *", "2026-03-07 12:00", ["03-08 03:00 EDT", "03-09 02:00 EDT"]),
    (NEW_YORK, "30 2 * * *", "2026-03-07 12:00",
     ["03-08 03:00 EDT", "03-09 02:30 EDT"]),
    (NEW_YORK, "30 1 * * *", "2026-10-31 12:00",
     ["11-01 01:30 EDT", "11-02 01:30 EST"]),
    (NEW_YORK, "0 2 * * *", "2026-10-31 12:00",
     ["11-01 02:00 EST", "11-02 02:00 EST"]),
    (NEW_YORK, "*/20 * * * *", "2026-11-01 00:50",
     ["11-01 01:00 EDT", "11-01 01:20 EDT", "11-01 01:40 EDT", "11-01 01:00 EST",
      "11-01 01:20 EST", "11-01 01:40 EST", "11-01 02:00 EST"]),
    (NEW_YORK, "0 */1 * * *", "2026-03-08 00:30",
     ["03-08 01:00 EST", "03-08 03:00 EDT", "03-08 04:00 EDT"]),
    # leap days, L, steps, names, the day-of-month OR day-of-week rule
    ("UTC", "0 0 29 2 *", "2026-01-01 00:00",
     ["02-29 00:00 UTC", "02-29 00:00 UTC"]),
    ("UTC", "0 0 L * *", "2028-01-15 00:00",
     ["01-31 00:00 UTC", "02-29 00:00 UTC", "03-31 00:00 UTC", "04-30 00:00 UTC"]),
    ("UTC", "0 0 L 2 *", "2026-01-01 00:00",
     ["02-28 00:00 UTC", "02-28 00:00 UTC", "02-29 00:00 UTC"]),
    ("UTC", "0 12 * * 5L", "2026-01-01 00:00",
     ["01-30 12:00 UTC", "02-27 12:00 UTC", "03-27 12:00 UTC"]),
    ("UTC", "0 9 * * MON#1", "2026-01-01 00:00",
     ["01-05 09:00 UTC", "02-02 09:00 UTC"]),
    ("UTC", "*/20 9-10 * * mon-fri", "2026-01-02 10:30",
     ["01-02 10:40 UTC", "01-05 09:00 UTC", "01-05 09:20 UTC"]),
    ("UTC", "0 0 1-10/3 * *", "2026-01-01 12:00",
     ["01-04 00:00 UTC", "01-07 00:00 UTC", "01-10 00:00 UTC", "02-01 00:00 UTC"]),
    ("UTC", "0 0 13 * 5", "2026-02-01 00:00",  # the 13th OR a Friday
     ["02-06 00:00 UTC", "02-13 00:00 UTC", "02-20 00:00 UTC", "02-27 00:00 UTC",
      "03-06 00:00 UTC"]),
    ("UTC", "0 0 * * 7", "2026-01-01 00:00", ["01-04 00:00 UTC", "01-11 00:00 UTC"]),
    ("UTC", "@weekly", "2026-01-01 00:00", ["01-04 00:00 UTC", "01-11 00:00 UTC"]),
    ("UTC", "@monthly", "2026-01-15 00:00", ["02-01 00:00 UTC", "03-01 00:00 UTC"]),
    ("UTC", "0 0 1 jan,jul *", "2026-01-15 00:00",
     ["07-01 00:00 UTC", "01-01 00:00 UTC"]),
]  # fmt: skip


@pytest.mark.parametrize(("zone", "expr", "start", "expected"), DST_TABLE)
def test_fire_times(zone, expr, start, expected):
    assert fires(expr, zone, start, len(expected)) == expected


@pytest.mark.parametrize(
    ("expr", "normal"),
    [
        ("0  0 * * *", "0 0 * * *"),
        ("@daily", "0 0 * * *"),
        ("@MIDNIGHT", "0 0 * * *"),
        ("@hourly", "0 * * * *"),
        ("@yearly", "0 0 1 1 *"),
        ("@annually", "0 0 1 1 *"),
        ("*/5 1-3,7 * JAN-mar Mon-Fri", "*/5 1-3,7 * JAN-mar Mon-Fri"),
    ],
)
def test_normalized_forms(expr, normal):
    assert normalize_cron(expr) == normal


@pytest.mark.parametrize(
    ("expr", "message"),
    [
        ("61 * * * *", "bad minute field '61'"),
        ("0 24 * * *", "bad hour field '24'"),
        ("0 0 32 * *", "bad day-of-month field '32'"),
        ("0 0 * 13 *", "bad month field '13'"),
        ("0 0 * * 8", "bad day-of-week field '8'"),
        ("0 0 30 2 *", "bad day-of-month field '30'"),  # never fires
        ("*/0 * * * *", "bad minute field '*/0'"),
        ("0 0 * *", "has 4 fields"),
        ("0 0 0 * * *", "for seconds use Every"),
        ("", "has 0 fields"),
        ("@reboot", "not a time schedule"),
        ("@often", "is not allowed"),
    ],
)
def test_bad_expressions_name_the_field(expr, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        Cron(expr)


def test_timezone_errors_suggest_a_zone():
    with pytest.raises(ConfigError, match="did you mean 'Europe/Berlin'"):
        Cron("0 0 * * *", timezone="Europe/Berln")
    with pytest.raises(ConfigError, match="not an IANA zone"):
        get_zone("/etc/passwd")
    assert get_zone("UTC").key == "UTC"


WINDOW_EXPRS = ["30 2 * * *", "0,30 1-2 * * *", "*/10 * * * *", "15 * * * *",
                "5 1-3 * * *"]  # fmt: skip


@pytest.mark.parametrize("zone", [BERLIN, NEW_YORK])
def test_latest_until_agrees_with_walking_forward(zone):
    """The search for the latest fire <= t (used for missed runs) finds what
    walking forward finds, around every 2026 DST change, also inside the
    repeated hour where cronsim's own reverse walk gets it wrong."""
    z = ZoneInfo(zone)
    days = [(2026, 3, 29), (2026, 10, 25)] if zone == BERLIN else [
        (2026, 3, 8), (2026, 11, 1)]  # fmt: skip
    for expr in WINDOW_EXPRS:
        timeline = CronTimeline(expr, z)
        for day in days:
            start = datetime(*day, tzinfo=z).astimezone(UTC) - timedelta(hours=4)
            walked = [start - timedelta(hours=26)]
            while walked[-1] < start + timedelta(hours=9):
                walked.append(timeline.first_after(walked[-1]))
            walked = walked[1:]
            assert walked == sorted(set(walked)), (expr, day)  # strictly forward
            t = start + timedelta(hours=3)  # local ~23:00 to ~04:00
            while t < start + timedelta(hours=8):
                expected = max(f for f in walked if f <= t)
                floor = start - timedelta(hours=26)
                assert timeline.latest_until(t, floor) == expected, (expr, t)
                t += timedelta(minutes=17, seconds=13)
            # exactly on a fire time, and with a hint that is wrong
            near = [f for f in walked if start + timedelta(hours=3) <= f]
            for fire in near[:5]:
                assert timeline.latest_until(fire, walked[0]) == fire
                assert (
                    timeline.latest_until(fire, walked[0], timedelta(hours=5)) == fire
                )


def test_latest_until_respects_the_floor():
    timeline = Cron("0 0 * * *", timezone="UTC").timeline()
    t = datetime(2026, 5, 3, 12, tzinfo=UTC)
    assert timeline.latest_until(t, datetime(2026, 5, 3, tzinfo=UTC)) is None
    assert timeline.latest_until(t, datetime(2026, 5, 2, 23, tzinfo=UTC)) == datetime(
        2026, 5, 3, tzinfo=UTC
    )
    hint = timedelta(days=1)
    assert timeline.latest_until(t, datetime(2026, 5, 3, tzinfo=UTC), hint) is None


def test_count_stops_at_the_cap():
    timeline = Cron("* * * * *", timezone="UTC").timeline()
    floor = datetime(2026, 1, 1, tzinfo=UTC)
    assert timeline.count(floor, floor + timedelta(minutes=7), 10) == (7, True)
    assert timeline.count(floor, floor + timedelta(days=3650), 10) == (11, False)


@pytest.mark.parametrize(
    ("zone", "expr", "fire_local", "note"),
    [
        (BERLIN, "30 2 * * *", "2026-03-29T03:00:00+02:00",
         "02:30 does not exist that day (clocks go forward at 02:00): runs once,"
         " at 03:00 CEST"),
        (NEW_YORK, "30 2 * * *", "2026-03-08T03:00:00-04:00",
         "02:30 does not exist that day"),
        (BERLIN, "0 3 * * *", "2026-03-29T03:00:00+02:00", None),
        (BERLIN, "30 2 * * *", "2026-03-30T02:30:00+02:00", None),
        (BERLIN, "30 2 * * *", "2026-10-25T02:30:00+02:00",
         "02:30 happens twice that night (clocks go back): runs once, at the first"
         " (CEST)"),
        (BERLIN, "*/30 * * * *", "2026-10-25T02:30:00+02:00",
         "the first 02:30 (CEST) of two"),
        (BERLIN, "*/30 * * * *", "2026-10-25T02:30:00+01:00",
         "the second 02:30 (CET) of two"),
        (BERLIN, "*/30 * * * *", "2026-10-25T03:00:00+01:00", None),
    ],
)  # fmt: skip
def test_dst_notes(zone, expr, fire_local, note):
    fire = datetime.fromisoformat(fire_local).astimezone(UTC)
    got = dst_note(expr, ZoneInfo(zone), fire)
    if note is None:
        assert got is None
    else:
        assert got is not None and note in got


def test_every_is_absolute_across_dst():
    timeline = Every("1d", anchor="2026-03-28T00:30:00Z").timeline()
    t = datetime(2026, 3, 28, 12, tzinfo=UTC)
    first = timeline.first_after(t)
    second = timeline.first_after(first)
    assert second - first == timedelta(days=1)
    z = ZoneInfo(BERLIN)
    assert (first.astimezone(z).hour, second.astimezone(z).hour) == (1, 2)
