"""How the queue verbs show jobs and workers: times, sizes, states, tables.
Typer-free: the fast path of ``queue.py`` uses it (their exit codes: ``_fast.py``).
"""

from __future__ import annotations

import time

from ..queue.schema import RUNNING, UNLIMITED

TYPE_CHECKING = False  # typing is not imported at run time (xqute submit)

if TYPE_CHECKING:
    from typing import Any

    from rich.console import Console


STATE_STYLES = {
    "pending": "yellow",
    "running": "cyan",
    "completed": "green",
    "failed": "red",
    "timeout": "magenta",
    "cancelled": "dim",
}


def when(ts: float | None, now: float | None = None) -> str:
    """``14:03:22`` today, ``11-20 14:03`` another day, ``-`` never."""
    if ts is None:
        return "-"
    now = time.time() if now is None else now
    then = time.localtime(ts)
    if time.localtime(now)[:3] == then[:3]:
        return time.strftime("%H:%M:%S", then)
    return time.strftime("%m-%d %H:%M", then)


def duration(seconds: float | None) -> str:
    """``0:00:07``, ``1:02:03``, ``2-03:00:00`` (like squeue's TIME)."""
    if seconds is None:
        return "-"
    days, rest = divmod(max(0, int(seconds)), 86400)
    from ..units import format_duration_s  # (xqute submit needs no units)

    text = format_duration_s(rest)
    return f"{days}-{text}" if days else text


def elapsed(job: dict[str, Any], now: float | None = None) -> str:
    start = job.get("started_at")
    if start is None:
        return "-"
    end = job.get("ended_at") or (time.time() if now is None else now)
    return duration(end - start)


def mem(mb: int | None) -> str:
    """``512M``, ``4G``, ``12.5G``; ``-`` for none, ``unlimited`` for a pool's
    unlimited memory."""
    if not mb:
        return "-"
    if mb >= UNLIMITED:
        return "unlimited"
    if mb >= 10 * 1024 and mb % 1024:
        return f"{mb / 1024:.1f}G"
    from ..units import format_mem_mb

    return format_mem_mb(mb)


def state_label(job: dict[str, Any]) -> str:
    """A job's state as shown: a running job being cancelled is cancelling."""
    if job.get("cancel_requested") and job["state"] == RUNNING:
        return "cancelling"
    return job["state"]


def state(job: dict[str, Any]) -> str:
    """``state_label`` as rich markup, in the state's color."""
    style = STATE_STYLES.get(job["state"], "")
    return f"[{style}]{state_label(job)}[/]" if style else state_label(job)


def shorten(text: str | None, width: int = 40) -> str:
    if not text:
        return ""
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


def table_console() -> Console:
    """Where tables go: stdout, or, when it is not a terminal (a pipe, a file),
    a console wide enough that columns are not cut to fit 80 characters. No
    ``:emoji:`` codes: a job named ``:x:`` is shown as such (and ``xqute
    queue`` does not load rich's emoji table, ~3 ms)."""
    from rich.console import Console

    console = Console(highlight=False, soft_wrap=True, emoji=False)
    if console.is_terminal:
        return console
    width = max(console.width, 200)
    return Console(highlight=False, soft_wrap=True, emoji=False, width=width)


def existing_db(db: str | None, hint: str = "nothing was ever submitted there") -> str:
    """The path of the queue db a verb works on (``--db``, else ``$XQUTE_DB``,
    else the per-user one), which must exist: every verb but ``submit``,
    ``apply`` and ``service start`` only reads or acts on what is there, and
    must not create an empty db where none is (a mistyped --db, a wrong
    $XQUTE_DB). ``ConfigError`` (exit 2) names the path it looked at."""
    import os

    from ..queue.db import db_file

    path = db_file(db)
    if not os.path.exists(path):
        from ..errors import ConfigError

        raise ConfigError(f"no queue db at {path}: {hint} (check --db or $XQUTE_DB)")
    return path


def existing_store(db: str | None, hint: str | None = None) -> Any:
    """The store (``JobStore``) of an existing db (``existing_db``)."""
    from ..queue.store import JobStore

    return JobStore(existing_db(db) if hint is None else existing_db(db, hint))
