"""The end of ``xqute run``: a summary table and the failed jobs (or JSON).

The summary counts jobs that succeeded, failed (their own failure), were
killed (by xqute: a halt after another job failed, a signal), skipped
(``--resume``), retried, and never ran. The failed-jobs table fits an
80-column terminal: index, rc and outcome keep their width, the command is
cut short, and the stderr path folds over lines (whole, so it can be copied).
Every user string (commands, reasons, paths) is shown as text, never as rich
markup.
"""

from __future__ import annotations

from typing import Any

from rich.table import Table
from rich.text import Text

from ..engine import Xqute
from ..job import Job
from ..status import JobOutcome
from .common import print_json, table_console

__all__ = ["report"]

MAX_FAILED_SHOWN = 20
COMMAND_WIDTH = 24


def report(xqute: Xqute, elapsed_s: float, json_out: bool) -> int:
    """Print the summary; the number of jobs that did not succeed (failed or
    killed), which makes the exit code."""
    counts = xqute.counts()
    failures = [j for j in xqute.jobs if j.outcome is not None and j.outcome.is_failure]
    killed = [j for j in failures if j.outcome is JobOutcome.KILLED]
    failed = [j for j in failures if j.outcome is not JobOutcome.KILLED]
    not_run = sum(1 for j in xqute.jobs if j.outcome is None)
    if json_out:
        print_json(
            {
                **counts,
                "failed": len(failed),
                "killed": len(killed),
                "not_run": not_run,
                "elapsed_s": round(elapsed_s, 3),
                "workdir": str(xqute.scheduler.workdir),
                "failed_jobs": [_job_json(j) for j in failures],
            }
        )
        return len(failures)
    console = table_console()
    table = Table(title="xqute run", show_edge=False)
    columns = ("jobs", "succeeded", "failed", "killed", "skipped", "retried",
               "not run", "time")  # fmt: skip
    for column in columns:
        table.add_column(column, justify="right")
    table.add_row(
        str(counts["total"]),
        Text(str(counts["succeeded"]), style="green"),
        Text(str(len(failed)), style="red"),
        Text(str(len(killed)), style="magenta"),
        str(counts["skipped"]),
        str(counts["retried"]),
        str(not_run),
        f"{elapsed_s:.2f}s",
    )
    console.print(table)
    # the path folds on a terminal (whole: it can be copied)
    folders = Text(f"job folders: {xqute.scheduler.workdir}", overflow="fold")
    console.print(folders, soft_wrap=not console.is_terminal)
    if failed:
        console.print(_failed_table(failed[:MAX_FAILED_SHOWN]))
        if len(failed) > MAX_FAILED_SHOWN:
            more = len(failed) - MAX_FAILED_SHOWN
            console.print(Text(f"... and {more} more (use --json for all)"))
    return len(failures)


def _failed_table(jobs: list[Job]) -> Table:
    table = Table(title="failed jobs", show_edge=False)
    table.add_column("index", justify="right", no_wrap=True)
    table.add_column("rc", justify="right", no_wrap=True)
    table.add_column("outcome", overflow="fold", min_width=8)
    table.add_column(
        "command", overflow="ellipsis", no_wrap=True, max_width=COMMAND_WIDTH
    )
    table.add_column("stderr", overflow="fold", min_width=12)  # folds, stays whole
    for job in jobs:
        table.add_row(
            str(job.index),
            "-" if job.rc is None else str(job.rc),
            Text(_outcome_text(job)),
            Text(_cmd_text(job)),
            Text(str(job.stderr_file)),
        )
    return table


def _outcome_text(job: Job) -> str:
    text = job.outcome.value if job.outcome else ""
    if job.reason and job.outcome is not JobOutcome.FAILED:
        text += f" ({job.reason})"
    elif job.reason:  # a plain failure with something to say (disk full)
        text += f": {job.reason}"
    return text


def _cmd_text(job: Job) -> str:
    return job.cmd if isinstance(job.cmd, str) else " ".join(job.cmd)


def _job_json(job: Job) -> dict[str, Any]:
    return {
        "index": job.index,
        "cmd": job.cmd if isinstance(job.cmd, str) else list(job.cmd),
        "rc": job.rc,
        "outcome": job.outcome.value if job.outcome else None,
        "reason": job.reason,
        "trials": job.trial_count + 1,
        "stdout": str(job.stdout_file),
        "stderr": str(job.stderr_file),
    }
