"""``xqute run``: each line of a file (or stdin) is a job.

Shows a live progress bar (done/failed/running, rate), then a summary table that
lists failed jobs with their rc and the path of their stderr; ``--json`` prints a
machine-readable summary instead. Exit code 0 when every job succeeded, 1 when
any failed, 2 on bad input, 128+N when stopped by signal N.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from pathlib import Path
from typing import Any

import typer
from rich.progress import (
    BarColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from ..engine import Xqute
from ..errors import ConfigError, Interrupted, XquteError
from ..job import Job
from ..status import JobOutcome
from ..units import parse_duration_s
from .common import (
    EXIT_FAILED,
    fail_usage,
    parse_opts,
    print_json,
    setup_logging,
    stderr,
    table_console,
)

MAX_FAILED_SHOWN = 20


def read_commands(file: str | None) -> list[str]:
    """Non-empty lines that are not comments (``# ...``)."""
    if file in (None, "-"):
        text = sys.stdin.read()
    else:
        path = Path(file)
        if not path.is_file():
            raise ConfigError(f"file {file!r} does not exist or is not a file")
        text = path.read_text()
    return [
        ln for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")
    ]


def run(
    file: str = typer.Argument(
        None, help="File with one command per line; stdin if omitted or '-'."
    ),
    forks: int = typer.Option(
        os.cpu_count() or 1, "--forks", "-j", help="Jobs in flight at once."
    ),
    scheduler: str = typer.Option(
        "local", "--scheduler", "-s", help="Backend: local, slurm, sge, ..."
    ),
    opt: list[str] = typer.Option(
        [], "--opt", "-o", help="Scheduler option key=value (repeatable)."
    ),
    retries: int = typer.Option(
        0, "--retries", help="Retry a failed job up to N times."
    ),
    halt_on_error: bool = typer.Option(
        False, "--halt-on-error", help="Kill everything on the first failure."
    ),
    timeout: str = typer.Option(
        None, "--timeout", help="Per-job time limit: 90, 90s, 15m, 1h."
    ),
    workdir: str = typer.Option(
        "./.xqute", "--workdir", "-w", help="Where job folders go."
    ),
    json_out: bool = typer.Option(
        False, "--json", help="Print a JSON summary instead of a table."
    ),
    verbose: int = typer.Option(
        0, "--verbose", "-v", count=True, help="More logging (-vv: debug)."
    ),
) -> None:
    """Run each line of FILE as a shell command, in parallel."""
    setup_logging(verbose)
    try:
        if retries < 0:
            raise ConfigError(f"--retries {retries} must be >= 0")
        if retries and halt_on_error:
            raise ConfigError("--retries and --halt-on-error cannot be combined")
        opts = parse_opts(opt)
        if timeout is not None:
            opts["timeout"] = parse_duration_s(timeout, "--timeout")
        commands = read_commands(file)
        xqute = Xqute(
            scheduler,
            workdir=workdir,
            forks=forks,
            error_strategy="halt"
            if halt_on_error
            else ("retry" if retries else "ignore"),
            num_retries=retries,
            retry_backoff_s=0.5,
            scheduler_opts=opts,
        )
    except ConfigError as exc:
        fail_usage(str(exc))
    started = time.monotonic()
    try:
        asyncio.run(_run(xqute, commands, show_progress=not json_out))
    except Interrupted as exc:
        _report(xqute, time.monotonic() - started, json_out)
        stderr.print(f"[bold red]{exc}[/]")
        raise typer.Exit(128 + exc.signal) from None
    except ConfigError as exc:
        fail_usage(str(exc))
    except XquteError as exc:
        stderr.print(f"[bold red]error:[/] {exc}")
        raise typer.Exit(EXIT_FAILED) from None
    failed = _report(xqute, time.monotonic() - started, json_out)
    if failed:
        raise typer.Exit(EXIT_FAILED)


async def _run(xqute: Xqute, commands: list[str], show_progress: bool) -> None:
    progress = Progress(
        SpinnerColumn(),
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TextColumn(
            "[green]{task.fields[ok]} ok[/] [red]{task.fields[failed]} failed[/]"
            " [cyan]{task.fields[running]} running[/]"
        ),
        TextColumn("{task.fields[rate]:.1f} jobs/s"),
        TimeElapsedColumn(),
        console=stderr,
        disable=not show_progress or not stderr.is_terminal,
        transient=False,
    )
    with progress:
        task = progress.add_task(
            "jobs", total=len(commands), ok=0, failed=0, running=0, rate=0.0
        )
        began = time.monotonic()

        def refresh() -> None:
            c = xqute.counts()
            done = c["succeeded"] + c["failed"] + c["skipped"]
            elapsed = max(time.monotonic() - began, 1e-9)
            progress.update(
                task,
                completed=done,
                ok=c["succeeded"],
                failed=c["failed"],
                running=c["running"],
                rate=done / elapsed,
            )

        async def ticker() -> None:
            while True:
                refresh()
                await asyncio.sleep(0.1)

        ticking = asyncio.create_task(ticker())
        try:
            for command in commands:
                await xqute.feed(command)
            await xqute.run_until_complete()
        finally:
            ticking.cancel()
            refresh()


def _failed_jobs(xqute: Xqute) -> list[Job]:
    return [j for j in xqute.jobs if j.outcome is not None and j.outcome.is_failure]


def _report(xqute: Xqute, elapsed_s: float, json_out: bool) -> int:
    counts = xqute.counts()
    failed = _failed_jobs(xqute)
    not_run = [j for j in xqute.jobs if j.outcome is None]
    if json_out:
        print_json(
            {
                **counts,
                "not_run": len(not_run),
                "elapsed_s": round(elapsed_s, 3),
                "workdir": str(xqute.scheduler.workdir),
                "failed_jobs": [_job_json(j) for j in failed],
            }
        )
        return len(failed)
    table = Table(
        title="xqute run",
        show_edge=False,
        caption=f"job folders: {xqute.scheduler.workdir}",
    )
    for column in (
        "jobs",
        "succeeded",
        "failed",
        "skipped",
        "retried",
        "not run",
        "time",
    ):
        table.add_column(column, justify="right")
    table.add_row(
        str(counts["total"]),
        f"[green]{counts['succeeded']}",
        f"[red]{counts['failed']}",
        str(counts["skipped"]),
        str(counts["retried"]),
        str(len(not_run)),
        f"{elapsed_s:.2f}s",
    )
    console = table_console()
    console.print(table)
    if failed:
        ftable = Table(title="failed jobs", show_edge=False)
        ftable.add_column("index", justify="right")
        ftable.add_column("rc", justify="right")
        ftable.add_column("outcome", overflow="fold")
        ftable.add_column("command", overflow="ellipsis", no_wrap=True, max_width=40)
        ftable.add_column("stderr", no_wrap=True, overflow="fold")  # keep it copyable
        for job in failed[:MAX_FAILED_SHOWN]:
            ftable.add_row(
                str(job.index),
                str(job.rc),
                _outcome_text(job),
                _cmd_text(job),
                str(job.stderr_file),
            )
        console.print(ftable)
        if len(failed) > MAX_FAILED_SHOWN:
            console.print(
                f"... and {len(failed) - MAX_FAILED_SHOWN} more (use --json for all)"
            )
    return len(failed)


def _outcome_text(job: Job) -> str:
    text = job.outcome.value if job.outcome else ""
    if job.reason and job.outcome not in (JobOutcome.FAILED,):
        text += f" ({job.reason})"
    return text


def _cmd_text(job: Job) -> str:
    cmd = job.cmd if isinstance(job.cmd, str) else " ".join(job.cmd)
    return cmd if len(cmd) <= 60 else cmd[:57] + "..."


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
