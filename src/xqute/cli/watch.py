"""``xqute watch``: the event stream (every transition of runs, tasks and
definitions; later layers add schedules, alerts ...), from any cursor.

xqute watch                       # from now on, until Ctrl-C
xqute watch --run 12              # a run's events from its first; ends with it
xqute watch --since 4031 --type 'task.*' --json
"""

from __future__ import annotations

import json
import sys
import time

import typer
from rich.markup import escape

from ..checks import digits
from ..errors import XquteError
from ._format import existing_store
from .common import DB_OPTION, fail, fail_usage, stdout

_STYLE = {
    "succeeded": "green",
    "failed": "red",
    "upstream_failed": "red",
    "timeout": "magenta",
    "cancelled": "dim",
    "skipped": "dim",
    "retrying": "yellow",
    "started": "cyan",
}


def watch(
    run: int = typer.Option(
        None,
        "--run",
        "-r",
        help="Only this run's events (from its first; ends with the run).",
    ),
    types: list[str] = typer.Option(
        [], "--type", "-t", help="Event types, globs like 'task.*' (repeatable)."
    ),
    since: str = typer.Option(
        None,
        "--since",
        help="An event id (the cursor) or 'now' (default; 0 with --run).",
    ),
    follow: bool = typer.Option(
        True, "--follow/--no-follow", help="Wait for new events."
    ),
    timeout: str = typer.Option(
        None, "--timeout", help="Stop after this long (30, 30s, 5m, 1h)."
    ),
    db: str = DB_OPTION,
    json_out: bool = typer.Option(False, "--json", help="One JSON object a line."),
) -> None:
    """Stream events; each has an id to resume from (--since ID)."""
    from ..orchestration.events import watch as watch_events

    cursor: int | str = "now" if run is None else 0
    if since is not None:
        if since != "now" and not digits(since):
            fail_usage(f"--since {since!r} must be an event id or 'now'")
        cursor = since if since == "now" else int(since)
    try:
        from ..units import parse_timeout_s

        timeout_s = parse_timeout_s(timeout, "--timeout")
        stream = watch_events(
            existing_store(db).db,
            since=cursor,
            run_id=run,
            types=types or None,
            follow=follow,
            timeout_s=timeout_s,
        )
        for event in stream:
            if json_out:
                sys.stdout.write(json.dumps(event.as_dict()) + "\n")
                sys.stdout.flush()
                continue
            what = event.type.rpartition(".")[2]
            style = _STYLE.get(what, "")
            kind = f"[{style}]{event.type}[/]" if style else event.type
            at = time.strftime("%H:%M:%S", time.localtime(event.ts))
            parts = [f"[dim]{event.id:>6} {at}[/]", kind]
            if event.run_id is not None:
                parts.append(f"run {event.run_id}")
            if event.task:
                parts.append(escape(event.task))
            if event.data:
                parts.append(f"[dim]{escape(json.dumps(event.data))}[/]")
            stdout.print(" ".join(parts))
    except XquteError as exc:
        fail(exc)
    except KeyboardInterrupt:
        raise typer.Exit(130) from None
