"""``xqute run``: run shell jobs in parallel, as GNU parallel users expect.

    xqute run jobs.txt -j 8                  # each line of a file is a job
    producer | xqute run                     # from stdin, started as lines arrive
    xqute run 'gzip -9 {}' ::: *.txt         # a template and its values
    xqute run -a names.txt 'echo hi {}'      # values from a file ('-': stdin)
    xqute run jobs.txt --joblog log --resume # skip what an earlier run did

Each job's output is printed when it ends (``--group``; see ``run_output.py``
for --keep-order, --line-buffer, --tag, --quiet), above a live progress bar
(done/failed/running, rate) on a terminal; then a summary table with the
failed jobs (``run_report.py``); ``--json`` prints a machine-readable summary
instead (and no job output). Exit code 0 when every job succeeded, 1 when any
failed or was killed, 2 on bad input, 128+N when stopped by signal N.
"""

from __future__ import annotations

import asyncio
import os
import time
from typing import Any

import typer
from rich.progress import (
    BarColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)
from rich.text import Text

from ..engine import Xqute
from ..errors import ConfigError, Interrupted, XquteError
from ..job import Job
from ..units import parse_duration_s
from .common import (
    EXIT_FAILED,
    fail_usage,
    parse_opts,
    print_error,
    setup_logging,
    stderr,
)
from .run_args import render, split_sources
from .run_inputs import Inputs, open_inputs
from .run_joblog import JobLog, read_joblog
from .run_output import RunPlugin
from .run_report import report

#: the ``:::`` sources of this process's command line, split off before the
#: option parser sees them (``take_sources``, called by ``cli.main``)
_SOURCES: list[list[str]] = []


def take_sources(argv: list[str]) -> list[str]:
    """Keep the ``:::``/``::::`` sources of ``xqute run ARGV`` for ``run`` and
    return the rest: a value that looks like an option stays a value."""
    head, sources = split_sources(argv)
    _SOURCES[:] = sources
    return head


def run(
    words: list[str] = typer.Argument(
        None,
        metavar="[FILE | COMMAND]",
        help="A file of commands, one a line (stdin if omitted or '-'); or, with"
        " ::: values or -a FILE, a command template ({} {.} {/} {//} {/.} {#}).",
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
    arg_file: list[str] = typer.Option(
        [], "--arg-file", "-a", help="Values for the template, one a line."
    ),
    keep_order: bool = typer.Option(
        False, "--keep-order", "-k", help="Print outputs in the order of the jobs."
    ),
    line_buffer: bool = typer.Option(
        False, "--line-buffer", help="Print lines as jobs write them."
    ),
    group: bool = typer.Option(
        False, "--group", help="Print each job's output whole at its end (default)."
    ),
    quiet: bool = typer.Option(False, "--quiet", help="Print no job output."),
    tag: bool = typer.Option(
        False, "--tag", help="Prefix output lines with the job's values or command."
    ),
    tagstring: str = typer.Option(
        None, "--tagstring", help="Prefix output lines with this ({#}, {} ...)."
    ),
    joblog: str = typer.Option(
        None, "--joblog", help="Log every job's end to this file (GNU parallel's)."
    ),
    resume: bool = typer.Option(
        False, "--resume", help="Skip the jobs --joblog lists."
    ),
    resume_failed: bool = typer.Option(
        False, "--resume-failed", help="Skip the jobs --joblog lists as succeeded."
    ),
    json_out: bool = typer.Option(
        False, "--json", help="Print a JSON summary (and no job output)."
    ),
    verbose: int = typer.Option(
        0, "--verbose", "-v", count=True, help="More logging (-vv: debug)."
    ),
) -> None:
    """Run shell commands in parallel: each line of FILE, or COMMAND with values."""
    setup_logging(verbose)
    words = list(words or [])
    sources, _SOURCES[:] = list(_SOURCES), []
    if not sources:  # not split by cli.main (called in-process)
        words, sources = split_sources(words)
    try:
        if retries < 0:
            raise ConfigError(f"--retries {retries} must be >= 0")
        if retries and halt_on_error:
            raise ConfigError("--retries and --halt-on-error cannot be combined")
        mode = _output_mode(group, line_buffer, quiet or json_out, keep_order)
        if (resume or resume_failed) and not joblog:
            raise ConfigError("--resume and --resume-failed need --joblog FILE")
        opts = parse_opts(opt)
        if timeout is not None:
            opts["timeout"] = parse_duration_s(timeout, "--timeout")
        inputs = open_inputs(words, sources, arg_file)
        values: dict[int, list[str]] = {}  # a template job's values, by index
        plugin = RunPlugin(
            mode=mode,
            keep_order=keep_order,
            tag=_tagger(tag, tagstring, values),
            skip=_skipper(joblog, resume, resume_failed),
        )
        xqute = Xqute(
            scheduler,
            plugins=[plugin],
            workdir=workdir,
            forks=forks,
            error_strategy="halt"
            if halt_on_error
            else ("retry" if retries else "ignore"),
            num_retries=retries,
            retry_backoff_s=0.5,
            scheduler_opts=opts,
        )
        plugin.will_retry = xqute.will_retry
        if joblog:
            host = ":" if scheduler == "local" else scheduler
            plugin.joblog = JobLog(joblog, host, append=resume or resume_failed)
    except ConfigError as exc:
        fail_usage(str(exc))
    started = time.monotonic()
    try:
        asyncio.run(_run(xqute, inputs, plugin, values, show_progress=not json_out))
    except Interrupted as exc:
        report(xqute, time.monotonic() - started, json_out)
        stderr.print(Text(str(exc), style="bold red"), soft_wrap=True)
        raise typer.Exit(128 + exc.signal) from None
    except ConfigError as exc:
        fail_usage(str(exc))
    except XquteError as exc:
        print_error(exc)
        raise typer.Exit(EXIT_FAILED) from None
    if report(xqute, time.monotonic() - started, json_out):
        raise typer.Exit(EXIT_FAILED)


def _output_mode(group: bool, line_buffer: bool, quiet: bool, keep: bool) -> str:
    if group and line_buffer:
        raise ConfigError("--group and --line-buffer cannot be combined")
    if line_buffer and keep:
        raise ConfigError("--line-buffer and --keep-order cannot be combined")
    if quiet:
        return "quiet"
    return "line" if line_buffer else "group"


def _tagger(tag: bool, tagstring: str | None, values: dict[int, list[str]]) -> Any:
    """How a job's output lines are tagged: its values (a template's), else its
    command (--tag), or --tagstring filled like a template."""
    if tagstring is not None:
        return lambda job: _fill_tag(tagstring, values.get(job.index), job)
    if not tag:
        return None

    def tag_of(job: Job) -> str:
        if job.index in values:
            return " ".join(values[job.index])
        return job.cmd if isinstance(job.cmd, str) else " ".join(job.cmd)

    return tag_of


def _fill_tag(template: str, vals: list[str] | None, job: Job) -> str:
    return render(template, vals or [], job.index + 1, quote=False, append=False)


def _skipper(joblog: str | None, resume: bool, resume_failed: bool) -> Any:
    if not joblog or not (resume or resume_failed):
        return None
    done = read_joblog(joblog)
    if resume_failed:
        done = {seq: end for seq, end in done.items() if end == (0, 0)}
    return lambda job: (job.index + 1) in done


async def _run(
    xqute: Xqute,
    inputs: Inputs,
    plugin: RunPlugin,
    values: dict[int, list[str]],
    show_progress: bool,
) -> None:
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
        redirect_stdout=False,
        redirect_stderr=False,
    )
    with progress:
        if not progress.disable:  # job output goes above the bar
            plugin.sink.console = progress.console
        task = progress.add_task(
            "jobs", total=inputs.total, ok=0, failed=0, running=0, rate=0.0
        )
        began = time.monotonic()

        def refresh() -> None:
            c = xqute.counts()
            done = c["succeeded"] + c["failed"] + c["skipped"]
            elapsed = max(time.monotonic() - began, 1e-9)
            progress.update(
                task,
                total=inputs.total if inputs.total is not None else c["total"],
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
            # jobs start as they are fed (a stream: as its lines arrive)
            await xqute.run_until_complete(keep_feeding=True)
            bad_input = None
            try:
                async for command, vals in inputs.jobs:
                    if xqute.halted:  # a failure halted it, or a signal
                        break
                    job = await xqute.feed(command)
                    if vals is not None:
                        values[job.index] = vals
            except ConfigError as exc:  # a bad line: no more jobs; wait for these
                bad_input = exc
            await xqute.stop_feeding()
            if bad_input is not None:
                raise bad_input
        finally:
            ticking.cancel()
            refresh()
            plugin.finish()
