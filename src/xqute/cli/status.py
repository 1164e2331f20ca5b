"""``xqute status ID``: everything about one queued job (state, rc, times,
resources, where its logs are); the db directly, with or without a daemon."""

from __future__ import annotations

import shlex

import typer

from ..errors import ConfigError, StoreError
from . import _format as fmt
from ._format import existing_store
from .common import (
    DB_OPTION,
    JSON_OPTION,
    fail,
    print_json,
    table_console,
)


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
