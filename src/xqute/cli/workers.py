"""``xqute workers``: the worker pools serving a db, with their heartbeats."""

from __future__ import annotations

import time

import typer

from ..errors import ConfigError, StoreError
from ..queue.schema import UNLIMITED
from . import _format as fmt
from ._format import existing_store
from .common import DB_OPTION, JSON_OPTION, fail, print_json, stdout, table_console


def workers(
    all_workers: bool = typer.Option(
        False, "--all", "-a", help="Also stopped and dead workers."
    ),
    db: str = DB_OPTION,
    json_out: bool = JSON_OPTION,
) -> None:
    """The worker pools serving this db, with their heartbeats."""
    try:
        rows = existing_store(db).list_workers(include_stopped=all_workers)
    except (ConfigError, StoreError) as exc:
        fail(exc)
    if json_out:
        print_json(rows)
        return
    from rich.table import Table

    now = time.time()
    table = Table(show_edge=False, box=None, header_style="bold")
    for column in ("WORKER", "STATE", "BACKEND", "SLOTS", "RUNNING", "CPUS", "MEM",
                   "GPUS", "STARTED", "HEARTBEAT"):  # fmt: skip
        table.add_column(column, no_wrap=True)
    for w in rows:
        table.add_row(
            w["id"],
            w["state"],
            w["backend"],
            str(w["max_workers"]),
            str(w["running_jobs"]),
            "-" if (w["cpus"] or 0) >= UNLIMITED else str(w["cpus"]),
            fmt.mem(w["mem_mb"]),
            w["gpu_ids"] or "-",
            fmt.when(w["started_at"], now),
            f"{now - w['heartbeat_at']:.0f}s ago",
        )
    table_console().print(table)
    if not rows:
        stdout.print("[dim]no worker pool is running (xqute service start)[/]")
