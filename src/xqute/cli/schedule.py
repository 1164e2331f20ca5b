"""``xqute schedule list | next | fire | suspend | resume``: the schedules of
the jobs and workflows defined in a db (they fire in the queue daemon).

xqute schedule list                  # next fire, last fire, missed/coalesced
xqute schedule next nightly -n 10    # coming fire times, with DST notes
xqute schedule fire nightly          # one run now (outside the schedule)
xqute schedule suspend nightly       # no fires until resumed
xqute schedule resume nightly        # what came due meanwhile is skipped

NAME is the job's or workflow's name (``job/NAME`` or ``workflow/NAME`` when
both exist). Exit codes: 0 done, 1 the db could not be used, 2 bad input.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import typer

from ..errors import XquteError
from ._format import existing_store
from .common import (
    DB_OPTION,
    JSON_OPTION,
    fail,
    fail_usage,
    print_json,
    stdout,
    table_console,
)

app = typer.Typer(
    name="schedule",
    help="Look at and act on the schedules of jobs and workflows.",
    no_args_is_help=True,
    add_completion=False,
)
NAME_ARG = typer.Argument(..., help="The job's or workflow's name (or job/NAME).")
NAMESPACE_OPTION = typer.Option("default", "--namespace", help="Its namespace.")


def _db(db: str | None):  # type: ignore[no-untyped-def]
    return existing_store(db).db


@app.command("list")
def list_(db: str = DB_OPTION, json_out: bool = JSON_OPTION) -> None:
    """Every schedule: next fire, last fire, what was missed or coalesced."""
    from ..orchestration import schedule_store as store
    from ..orchestration.schedule_view import display_zone, row_view

    try:
        rows = store.list_rows(_db(db))
        views = [row_view(r) for r in rows]
    except XquteError as exc:
        fail(exc)
    if json_out:
        print_json(views)
        return
    if not views:
        stdout.print("no schedules (define a job or workflow with schedule=)")
        return
    from rich.table import Table

    table = Table(show_edge=False, box=None, pad_edge=False)
    for col in ("SCHEDULE", "WHEN", "NEXT", "LAST", "FIRED", "MISSED", "NOTE"):
        table.add_column(col, overflow="fold")
    for row, v in zip(rows, views, strict=True):
        zone = display_zone(row.schedule)
        last = "-"
        if v["last_scheduled_for"]:
            last = f"{_short(v['last_scheduled_for'], zone)} (run {v['last_run_id']})"
        table.add_row(
            v["schedule"],
            v["describe"],
            "suspended" if v["suspended"] else _short(v["next_fire"], zone),
            last,
            str(v["fired"]),
            str(v["missed"] + v["coalesced"]),
            "; ".join(x for x in (
                v["last_catchup"],
                f"{v['skipped']} skipped (overlap)" if v["skipped"] else "",
                f"{v['waiting']} waiting" if v["waiting"] else "",
            ) if x),
        )  # fmt: skip
    table_console().print(table)


@app.command("next")
def next_(
    name: str = NAME_ARG,
    count: int = typer.Option(10, "-n", "--count", help="How many fire times."),
    db: str = DB_OPTION,
    namespace: str = NAMESPACE_OPTION,
    json_out: bool = JSON_OPTION,
) -> None:
    """The coming fire times, noting where daylight saving time matters."""
    from ..orchestration import schedule_store as store
    from ..orchestration.schedule_view import MAX_SHOWN, upcoming

    if not 1 <= count <= MAX_SHOWN:
        fail_usage(f"-n {count} must be from 1 to {MAX_SHOWN}")
    try:
        row = store.find(_db(db), name, namespace)
        after = max(datetime.now(UTC), store.to_dt(row.settled_until))
        times = upcoming(row.schedule, count, after)
    except XquteError as exc:
        fail(exc)
    if json_out:
        print_json([{"time": t.isoformat(), "note": note} for t, note in times])
        return
    header = f"{row.ref}: {row.schedule.describe()}"
    stdout.print(header + (" (suspended)" if row.suspended else ""))
    for t, note in times:
        line = f"  {t:%Y-%m-%d %H:%M %Z}" + (f": {note}" if note else "")
        stdout.print(line, highlight=False, markup=False)


@app.command()
def fire(
    name: str = NAME_ARG,
    db: str = DB_OPTION,
    namespace: str = NAMESPACE_OPTION,
    json_out: bool = JSON_OPTION,
) -> None:
    """Start one run now (recorded as a manual fire; the schedule is unchanged)."""
    from ..orchestration.schedule_ops import fire_now

    try:
        run_id = fire_now(_db(db), name, namespace)
    except XquteError as exc:
        fail(exc)
    if json_out:
        print_json({"schedule": name, "run_id": run_id})
    else:
        stdout.print(f"started run {run_id}")


@app.command()
def suspend(
    name: str = NAME_ARG,
    db: str = DB_OPTION,
    namespace: str = NAMESPACE_OPTION,
    json_out: bool = JSON_OPTION,
) -> None:
    """No more fires until resumed (runs already going are not touched)."""
    _suspend(name, db, namespace, True, json_out)


@app.command()
def resume(
    name: str = NAME_ARG,
    db: str = DB_OPTION,
    namespace: str = NAMESPACE_OPTION,
    json_out: bool = JSON_OPTION,
) -> None:
    """Fire again from now on; what came due while suspended is skipped."""
    _suspend(name, db, namespace, False, json_out)


def _suspend(
    name: str, db: str | None, namespace: str, suspended: bool, json_out: bool
) -> None:
    from ..orchestration.schedule_ops import set_suspended

    try:
        changed = set_suspended(_db(db), name, suspended, namespace)
    except XquteError as exc:
        fail(exc)
    if json_out:
        print_json({"schedule": name, "suspended": suspended, "changed": changed})
        return
    word = "suspended" if suspended else "resumed"
    stdout.print(f"{name}: {word}" if changed else f"{name}: already {word}")


def _short(iso: str | None, zone: Any) -> str:
    """``2026-12-05 00:00:00 CET``: an ISO time shown in ``zone``."""
    if not iso:
        return "-"
    return f"{datetime.fromisoformat(iso).astimezone(zone):%Y-%m-%d %H:%M:%S %Z}"
