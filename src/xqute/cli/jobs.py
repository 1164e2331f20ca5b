"""``xqute status | cancel | logs | workers``: look at and act on queued jobs
(``xqute queue``, the listing, is in ``queue.py``). They work on the db
directly, with or without a daemon running.

Exit codes: 0 done, 1 the db could not be used, 2 bad input (a bad state name,
an unknown job id ...).
"""

from __future__ import annotations

import contextlib
import os
import shlex
import sys
import time
from typing import Any

import typer

from ..errors import ConfigError, StoreError
from ..queue.schema import FINAL_STATES, UNLIMITED
from . import _format as fmt
from ._format import existing_store
from .common import fail, print_json, stderr, stdout, table_console

DB_OPTION = typer.Option(
    None, "--db", envvar="XQUTE_DB", help="The queue db (default: per-user)."
)
JSON_OPTION = typer.Option(False, "--json", help="Print JSON instead of a table.")


def status(
    job_id: int = typer.Argument(..., help="The job's id."),
    db: str = DB_OPTION,
    json_out: bool = JSON_OPTION,
) -> None:
    """Everything about one job."""
    try:
        job = existing_store(db).get_job_status(job_id)
    except (ConfigError, StoreError) as exc:
        fail(exc)
    if json_out:
        print_json(job)
        return
    from rich.table import Table
    from rich.text import Text

    table = Table(show_header=False, show_edge=False, box=None)
    table.add_column(style="bold")
    table.add_column(overflow="fold")
    command = job["command"]
    rows = {
        "id": job["id"],
        "name": job["name"] or "-",
        "state": fmt.state(job),
        "command": command if isinstance(command, str) else shlex.join(command),
        "working dir": job["working_dir"] or "-",
        "request": f"cpus {job['cpus']}, mem {fmt.mem(job['mem_mb'])},"
        f" gpus {job['gpus']}, timeout {fmt.duration(job['timeout_s'])}"
        + (f", storage {fmt.mem(job['storage_mb'])}" if job["storage_mb"] else ""),
        "priority": job["priority"]
        if job["priority_class"] is None
        else f"{job['priority']} (class {job['priority_class']})",
        "namespace": job["namespace"],
        "submitted": fmt.when(job["submitted_at"]),
        "started": fmt.when(job["started_at"]),
        "ended": fmt.when(job["ended_at"]),
        "elapsed": fmt.elapsed(job),
        "return code": "-" if job["return_code"] is None else job["return_code"],
        "reason": job["reason"] or "-",
        "worker": job["worker"] or "-",
        "pid": job["pid"] or "-",
        "gpu ids": ",".join(map(str, job["gpu_ids"])) or "-",
        "cpu ids": ",".join(map(str, job["cpu_ids"])) or "-",
        "attempts": job["attempts"]
        if not job["preemptions"]
        else f"{job['attempts']} (preempted {job['preemptions']}x)",
        "used": "-"
        if job["max_rss_mb"] is None
        else f"peak RSS {fmt.mem(job['max_rss_mb'] or 1)}, cpu {job['cpu_s']:g}s"
        " (sampled)",
        "stdout": job["stdout"] or "-",
        "stderr": job["stderr"] or "-",
    }
    for key, value in rows.items():  # (the state is ours: markup; the rest text)
        table.add_row(key, value if key == "state" else Text(str(value)))
    table_console().print(table)


def cancel(
    job_ids: list[int] = typer.Argument(None, help="Ids of the jobs to cancel."),
    all_jobs: bool = typer.Option(False, "--all", help="Cancel every active job."),
    name: str = typer.Option(None, "--name", "-n", help="Cancel jobs matching a glob."),
    db: str = DB_OPTION,
    json_out: bool = JSON_OPTION,
) -> None:
    """Cancel jobs (pending: never start; running: killed within a second).

    A running job's whole process tree is killed by its pool, then recorded
    cancelled.
    """
    if not job_ids and not all_jobs and name is None:
        fail(ConfigError("give job ids, --name PATTERN or --all"))
    if job_ids and all_jobs:
        fail(ConfigError("give job ids or --all, not both"))
    try:
        result = existing_store(db).cancel_jobs(
            job_ids or None, name=name, all_jobs=all_jobs
        )
    except (ConfigError, StoreError) as exc:
        fail(exc)
    if json_out:
        print_json({str(k): v for k, v in result.items()})
        return
    if not result:
        stdout.print("[dim]no active job matched[/]")
    for job_id, what in sorted(result.items()):
        if what == "cancelling":
            what = "cancelling (its pool kills it)"
        stdout.print(f"{job_id}: {what}")


def logs(
    job_id: int = typer.Argument(..., help="The job's id."),
    follow: bool = typer.Option(
        False, "--follow", "-f", help="Keep printing until the job ends."
    ),
    stderr_stream: bool = typer.Option(
        False, "--stderr", help="Its stderr instead of its stdout."
    ),
    db: str = DB_OPTION,
) -> None:
    """Print a job's stdout (or stderr).

    Only these two files of the job's own folder, as recorded by the pool that
    ran it, can be read.
    """
    stream = "stderr" if stderr_stream else "stdout"
    try:
        store = existing_store(db)
        job = store.get_job_status(job_id)  # its log paths are in it, once it ran
        offset = 0
        while True:
            if job[stream] is not None:
                offset = _copy_from(job[stream], offset)
            if not follow or job["state"] in FINAL_STATES:
                break
            time.sleep(0.2)
            job = store.get_job_status(job_id)
        if job[stream] is not None:
            _copy_from(job[stream], offset)  # what it wrote while it ended
        elif not follow:
            stderr.print(
                f"job {job_id} is {job['state']}: it has no output yet", markup=False
            )
    except (ConfigError, StoreError) as exc:
        fail(exc)
    except KeyboardInterrupt:
        raise typer.Exit(130) from None


def _copy_from(path: Any, offset: int) -> int:
    """Write the file from ``offset`` to stdout; the new offset. A symlink is
    refused (O_NOFOLLOW): the log must be the job's own file."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except FileNotFoundError:
        return offset
    except OSError as exc:
        raise StoreError(f"cannot read {path}: {exc}") from exc
    with contextlib.closing(os.fdopen(fd, "rb")) as fh:
        fh.seek(offset)
        while chunk := fh.read(1 << 16):
            sys.stdout.buffer.write(chunk)
            offset += len(chunk)
    sys.stdout.flush()
    return offset


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
