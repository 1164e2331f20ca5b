"""Schedules as stored with their definitions (real SQLite files): created,
kept, changed and retired with the definition; suspend/resume; lookups; what
``xqute schedule list|next|suspend|resume`` print."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime

import pytest
from typer.testing import CliRunner

from xqute.cli import app
from xqute.errors import ConfigError, DefinitionError, ScheduleNotFoundError
from xqute.orchestration import (
    Cron,
    Every,
    JobSpec,
    Orchestrator,
    Task,
    Workflow,
    catalog,
)
from xqute.orchestration import schedule_store as store
from xqute.orchestration.schedule_ops import set_suspended, set_suspended_in_tx
from xqute.orchestration.schedule_view import catchup_text, row_view

BERLIN = "Europe/Berlin"


@pytest.fixture
def orch(tmp_path):
    o = Orchestrator(tmp_path / "q.db")
    yield o
    o.close()


def job(name: str = "nightly", schedule=None, **kw) -> JobSpec:
    return JobSpec(name=name, command=["true"], schedule=schedule, **kw)


def fires(orch) -> list[tuple]:
    return orch.db.query(
        "SELECT outcome, count, reason FROM schedule_fires ORDER BY scheduled_for"
    )


def test_a_schedule_lives_and_dies_with_its_definition(orch):
    catalog.create(orch.db, "job", job(schedule=Cron("30 2 * * *", timezone=BERLIN)))
    (row,) = store.list_rows(orch.db)
    assert (row.ref, row.timezone, row.fired) == ("job/nightly", BERLIN, 0)
    assert row.next_fire_at > row.settled_until
    local = store.to_dt(row.next_fire_at).astimezone(row.schedule.timeline().zone)
    assert (local.hour, local.minute) in ((2, 30), (3, 0))  # 03:00 on a gap day
    # the same spec again keeps the state; a changed one starts from now
    catalog.create(orch.db, "job", job(schedule=Cron("30 2 * * *", timezone=BERLIN)))
    assert store.list_rows(orch.db)[0].settled_until == row.settled_until
    catalog.create(orch.db, "job", job(schedule={"every": "6h"}))
    (changed,) = store.list_rows(orch.db)
    assert changed.id == row.id and changed.schedule == Every("6h")
    assert changed.settled_until > row.settled_until
    assert changed.next_fire_at % 21600 == 0  # aligned to the epoch
    # no schedule any more: retired; back: the same row, from now
    catalog.create(orch.db, "job", job())
    assert store.list_rows(orch.db) == []
    catalog.create(orch.db, "job", job(schedule=Every("1h")))
    assert [r.id for r in store.list_rows(orch.db)] == [row.id]
    set_suspended(orch.db, "nightly", True)
    catalog.delete(orch.db, "job", "nightly")
    assert store.list_rows(orch.db) == []
    catalog.create(orch.db, "job", job(schedule=Every("1h")))  # a new job again
    assert not store.find(orch.db, "nightly").suspended


def test_schedule_fields_accept_objects_and_mappings(orch):
    spec = job(schedule={"cron": "@daily", "timezone": "UTC", "missed_runs": "all"})
    assert spec.schedule == Cron("0 0 * * *", timezone="UTC", missed_runs="all")
    dumped = spec.model_dump(mode="json")["schedule"]
    assert dumped == {"cron": "0 0 * * *", "timezone": "UTC", "missed_runs": "all",
                      "concurrency": "forbid", "max_catchup": 10}  # fmt: skip
    assert JobSpec.model_validate(spec.model_dump(mode="json")) == spec
    wf = Workflow(name="etl", tasks=[Task("a", command=["true"])], schedule=Every("6h"))
    assert Workflow.model_validate(wf.model_dump()) == wf
    with pytest.raises(DefinitionError, match=r"schedule.cron: .*bad minute field"):
        bad = {"name": "x", "command": ["true"], "schedule": {"cron": "61 * * * *"}}
        catalog.create(orch.db, "job", bad)
    with pytest.raises(DefinitionError, match=r"schedule\.anchor: unknown key 'anch"):
        bad = {"name": "x", "command": ["true"], "schedule": {"cron": "@daily"}}
        bad["schedule"]["anchor"] = 1
        catalog.create(orch.db, "job", bad)


def test_a_cron_without_a_zone_is_stored_with_this_machines_zone(orch, monkeypatch):
    monkeypatch.setenv("TZ", "America/New_York")
    catalog.create(orch.db, "job", job(schedule=Cron("0 9 * * *")))
    (row,) = store.list_rows(orch.db)
    assert row.timezone == "America/New_York" == row.schedule.timezone


def test_resume_skips_what_came_due_while_suspended(orch):
    catalog.create(orch.db, "job", job("tick", schedule=Every("1s")))
    assert set_suspended(orch.db, "tick", True) is True
    assert set_suspended(orch.db, "tick", True) is False
    (row,) = store.list_rows(orch.db)
    assert row.suspended and row_view(row)["next_fire"] is None
    later = float(int(row.settled_until) + 10) + 0.5  # 10 fire times later
    assert orch.db.write(lambda c: set_suspended_in_tx(c, "job", "tick", False, later))
    (row,) = store.list_rows(orch.db)
    assert not row.suspended and row.settled_until == pytest.approx(later, abs=1e-6)
    assert row.missed == 10 and row.next_fire_at == int(later) + 1
    assert fires(orch) == [("missed", 10, "suspended")]
    text = catchup_text(row.last_catchup, UTC, datetime.now(UTC))
    assert text == "missed 10, none run (suspended)"
    kinds = [r[0] for r in orch.db.query("SELECT type FROM events ORDER BY id")]
    assert kinds[-3:] == ["schedule.suspended", "schedule.missed", "schedule.resumed"]
    nope = orch.db.write(lambda c: set_suspended_in_tx(c, "job", "no", True, later))
    assert nope is False


def test_find_names_what_there_is(orch):
    catalog.create(orch.db, "job", job("daily", schedule=Every("1d")))
    catalog.create(
        orch.db,
        "workflow",
        Workflow(
            name="daily", tasks=[Task("a", command=["true"])], schedule=Every("1h")
        ),
    )
    with pytest.raises(Exception, match="ambiguous: say job/daily or workflow/daily"):
        store.find(orch.db, "daily")
    assert store.find(orch.db, "workflow/daily").kind == "workflow"
    with pytest.raises(ScheduleNotFoundError, match="did you mean 'daily'"):
        store.find(orch.db, "dialy")
    with pytest.raises(ScheduleNotFoundError):
        store.find(orch.db, "daily", namespace="team-a")


@pytest.mark.parametrize(
    ("summary", "text"),
    [
        (None, ""),
        ({"missed": 7, "ran": 1, "coalesced": 6, "run_for": 1780308420.0},
         "missed 7, coalesced into 1 run at 10:07"),
        ({"missed": 7, "ran": 7, "coalesced": 0, "run_for": 1780308420.0},
         "missed 7, ran 7 late, oldest first (the last for 10:07)"),
        ({"missed": 30, "ran": 10, "coalesced": 0, "run_for": 1780308420.0,
          "reasons": ["beyond max_catchup"]},
         "missed 30, ran 10 late, oldest first (the last for 10:07), 20 not"
         " run (beyond max_catchup)"),
        ({"missed": 7, "ran": 0, "coalesced": 0, "reasons": ["missed_runs=skip"]},
         "missed 7, none run (missed_runs=skip)"),
        ({"missed": 11, "exact": False, "ran": 1, "coalesced": 10,
          "run_for": 1780308420.0},
         "missed more than 10, coalesced into 1 run at 10:07"),
    ],
)  # fmt: skip
def test_catchup_text(summary, text):
    today = datetime(2026, 6, 1, 12, tzinfo=UTC)
    assert catchup_text(summary, UTC, today) == text


def test_cli_list_next_suspend_resume(orch, monkeypatch):
    monkeypatch.setenv("XQUTE_DB", str(orch.store.db_path))
    catalog.create(orch.db, "job", job(schedule=Cron("30 2 * * *", timezone=BERLIN)))
    runner = CliRunner()
    result = runner.invoke(app, ["schedule", "list", "--json"])
    assert result.exit_code == 0, result.output
    (view,) = json.loads(result.output)
    assert view["schedule"] == "job/nightly" and view["next_fire"].endswith(
        ("+01:00", "+02:00")
    )
    result = runner.invoke(app, ["schedule", "list"])
    assert "job/nightly" in result.output and "Europe/Berlin" in result.output
    result = runner.invoke(app, ["schedule", "next", "nightly", "-n", "3", "--json"])
    assert result.exit_code == 0
    times = [datetime.fromisoformat(t["time"]) for t in json.loads(result.output)]
    assert len(times) == 3 and times == sorted(times)
    assert times[0].timestamp() > time.time()
    result = runner.invoke(app, ["schedule", "next", "nightly", "-n", "2"])
    assert result.output.startswith("job/nightly: cron '30 2 * * *' Europe/Berlin")
    assert runner.invoke(app, ["schedule", "suspend", "nightly"]).output.strip() == (
        "nightly: suspended"
    )
    assert "suspended" in runner.invoke(app, ["schedule", "list"]).output
    resumed = runner.invoke(app, ["schedule", "resume", "nightly", "--json"])
    assert json.loads(resumed.output) == {
        "schedule": "nightly",
        "suspended": False,
        "changed": True,
    }
    bad = runner.invoke(app, ["schedule", "next", "nightli"])
    assert bad.exit_code == 2 and "did you mean 'nightly'" in bad.output
    assert runner.invoke(app, ["schedule", "next", "nightly", "-n", "0"]).exit_code == 2


def test_orchestrator_next_fires_and_suspend_job(orch):
    orch.create_job(job(schedule=Cron("30 2 * * *", timezone=BERLIN)))
    fires_ = orch.next_fires("nightly", n=3)
    assert len(fires_) == 3 and all(t.tzinfo is not None for t in fires_)
    assert {str(t.tzinfo) for t in fires_} == {BERLIN}
    assert all((t.hour, t.minute) in ((2, 30), (3, 0)) for t in fires_)
    with pytest.raises(ConfigError):
        orch.next_fires("nightly", n=0)
    orch.suspend_job("nightly")  # the job's schedule is suspended with it
    assert store.find(orch.db, "nightly").suspended
    orch.resume_job("nightly")
    assert not store.find(orch.db, "nightly").suspended
    assert orch.list_jobs()[0].schedule == Cron("30 2 * * *", timezone=BERLIN)


SCHEDULED_YAML = """\
scheduler:
  timezone: Europe/Berlin
  schedule_defaults: {missed_runs: all, starting_deadline: 1h}
definitions:
  jobs:
    nightly: {command: [report, "#{schedule.time}"], schedule: {cron: "0 0 * * *"}}
    tick: {command: ["true"], schedule: {every: 6h, missed_runs: skip}}
  workflows:
    pipe:
      tasks: [{name: a, command: ["true"]}]
      schedule: {cron: "@hourly", timezone: UTC}
"""


def test_apply_reads_schedules_with_the_files_defaults(orch, tmp_path):
    from xqute.orchestration.apply import apply

    path = tmp_path / "x.yaml"
    path.write_text(SCHEDULED_YAML)
    assert [c.action for c in apply(orch.db, str(path)).changes] == ["created"] * 3
    assert orch.get_job("nightly").schedule == Cron(
        "0 0 * * *", timezone=BERLIN, missed_runs="all", starting_deadline="1h"
    )
    assert orch.get_job("tick").schedule == Every(
        "6h", missed_runs="skip", starting_deadline=3600
    )
    assert orch.get_workflow("pipe").schedule.timezone == "UTC"
    rows = {r.ref: r for r in store.list_rows(orch.db)}
    assert set(rows) == {"job/nightly", "job/tick", "workflow/pipe"}
    assert rows["job/nightly"].timezone == BERLIN
    assert [c.action for c in apply(orch.db, str(path)).changes] == ["unchanged"] * 3
    assert {r.ref: r.settled_until for r in store.list_rows(orch.db)} == {
        ref: r.settled_until for ref, r in rows.items()
    }


TICK = '    tick: {command: ["true"], schedule: {every: 6h, missed_runs: skip}}'
TICK_BLOCK = """    tick:
      command: ["true"]
      schedule:
        every: 6h"""


@pytest.mark.parametrize(
    ("edit", "problem"),
    [
        (("zone: Europe/Berlin", "zone: Europe/Berln"),
         ":2: scheduler.timezone: timezone 'Europe/Berln' is not an IANA zone name;"
         " did you mean 'Europe/Berlin'?"),
        (("{missed_runs: all,", "{missed: all,"),
         ":3: scheduler.schedule_defaults.missed: unknown key"),
        (("{missed_runs: all,", "{missed_runs: most,"),
         ":3: scheduler.schedule_defaults.missed_runs: missed_runs 'most' is not"),
        (('"0 0 * * *"', '"0 24 * * *"'),
         ":6: definitions.jobs.nightly.schedule.cron: cron expression '0 24 * * *':"
         " bad hour field '24'"),
        (("starting_deadline: 1h", "starting_deadline: soon"),
         ":3: scheduler.schedule_defaults.starting_deadline: starting_deadline"
         " 'soon' is not a duration"),
        # a block mapping: the line of the bad key, not of `schedule:`
        (("schedule: {cron: \"@hourly\", timezone: UTC}",
          "schedule:\n        cron: \"@hourly\"\n        timezone: UTC/Mars"),
         ":13: definitions.workflows.pipe.schedule.timezone: timezone 'UTC/Mars'"),
        ((TICK, TICK_BLOCK + "\n        skip: true"),
         ":11: definitions.jobs.tick.schedule.skip: unknown key 'skip'; allowed:"),
        ((TICK, TICK_BLOCK.replace("6h", "6x")),
         ":10: definitions.jobs.tick.schedule.every: interval '6x' is not a"),
    ],
)  # fmt: skip
def test_apply_names_the_line_of_a_bad_schedule(orch, tmp_path, edit, problem):
    from xqute.orchestration.apply import apply

    path = tmp_path / "x.yaml"
    path.write_text(SCHEDULED_YAML.replace(*edit))
    with pytest.raises(DefinitionError) as info:
        apply(orch.db, str(path))
    got = [f"{where}: {msg}" for where, msg in info.value.problems]
    assert len(got) == 1 and problem in got[0], got
    assert store.list_rows(orch.db) == []


async def test_async_orchestrator_next_fires(tmp_path):
    from xqute.orchestration import AsyncOrchestrator

    aorch = AsyncOrchestrator(tmp_path / "q.db")
    await aorch.create_job(job("tick", schedule=Every("6h")))
    fires_ = await aorch.next_fires("tick", n=2)
    assert [t.timestamp() % 21600 for t in fires_] == [0, 0]  # 00/06/12/18 UTC
    assert (fires_[1] - fires_[0]).total_seconds() == 21600
    await aorch.aclose()


def test_next_notes_when_an_interval_crosses_a_clock_change(monkeypatch):
    from xqute.orchestration.schedule_view import upcoming

    monkeypatch.setenv("TZ", BERLIN)  # intervals are shown in this machine's zone
    every = Every("1d", anchor="2026-03-28T00:30:00Z")
    got = upcoming(every, 3, datetime(2026, 3, 27, 12, tzinfo=UTC))
    assert [f"{t:%m-%d %H:%M %Z}" for t, _ in got] == [
        "03-28 01:30 CET", "03-29 01:30 CET", "03-30 02:30 CEST"
    ]  # fmt: skip
    notes = [n for _, n in got]
    assert notes[:2] == [None, None]
    assert notes[2].startswith("clocks changed (CET -> CEST)")


def test_cli_apply_of_a_bad_schedule_is_one_line(orch, tmp_path, monkeypatch):
    monkeypatch.setenv("XQUTE_DB", str(orch.store.db_path))
    monkeypatch.setenv("COLUMNS", "300")
    path = tmp_path / "bad.yaml"
    path.write_text(
        "definitions:\n  jobs:\n    a:\n      command: [x]\n      schedule:\n"
        "        cron: '0 0 * * *'\n        missed_runs: twice\n"
    )
    result = CliRunner().invoke(app, ["apply", "-f", str(path)])
    assert result.exit_code == 2
    assert result.output.strip() == (
        f"error: {path}:7: definitions.jobs.a.schedule.missed_runs: missed_runs"
        " 'twice' is not allowed; choose one of: 'once', 'all', 'skip'"
    )
