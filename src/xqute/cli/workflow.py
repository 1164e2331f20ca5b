"""``xqute workflow list | run | status | logs | cancel | retry | graph``.

xqute workflow run data-pipeline -p day=2026-12-01 --wait   # an embedded pool
xqute workflow status 12          # the DAG with each task's state (rich tree)
xqute workflow logs 12 --task load --follow
xqute workflow retry 12           # only what did not succeed runs again

They work on the db directly, with or without a daemon. Exit codes: 0 done
(``--wait``: the run succeeded), 1 the run did not succeed or the db could not
be used, 2 bad input (unknown workflow or run, bad parameter).
"""

from __future__ import annotations

import dataclasses
import os
import sys
import time
from typing import Any

import typer

from ..checks import digits
from ..errors import ConfigError, XquteError
from . import _format as fmt
from ._runview import dag_dot, dag_tree
from .common import (
    DB_OPTION,
    EXIT_FAILED,
    JSON_OPTION,
    fail,
    fail_usage,
    print_json,
    stderr,
    stdout,
    table_console,
)

app = typer.Typer(
    name="workflow",
    help="Run workflows (DAGs of tasks) and look at their runs.",
    no_args_is_help=True,
    add_completion=False,
)
RUN_ARG = typer.Argument(..., help="The run's id.")
PARAM_OPTION = typer.Option(
    [], "--param", "-p", help="A parameter, NAME=VALUE (repeatable)."
)
MANY_TASKS = 200  # status draws the whole tree up to this many tasks


def orchestrator(db: str | None) -> Any:
    """The orchestrator of an existing db (``_format.existing_db``)."""
    from ..orchestration import Orchestrator

    return Orchestrator(fmt.existing_db(db))


def wait_for(ex: Any) -> Any:
    """``ex.wait()``; on Ctrl-C (exit 130) say what becomes of the run: it is
    not cancelled, its queue jobs stay and run when a pool serves the db."""
    try:
        return ex.wait()
    except KeyboardInterrupt:
        stderr.print(
            f"interrupted: run {ex.id} goes on (not cancelled); its tasks run when"
            f" a pool serves the db (xqute service start); xqute workflow status"
            f" {ex.id} shows it, xqute workflow cancel {ex.id} stops it",
            soft_wrap=True,
            highlight=False,
            markup=False,
        )
        raise typer.Exit(130) from None


def params_of(items: list[str]) -> dict[str, str]:
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            fail_usage(f"--param {item!r} must look like NAME=VALUE")
        if key.strip() in out:
            fail_usage(f"--param {key.strip()!r} is given twice; give it once")
        out[key.strip()] = value
    return out


@app.command("list")
def list_(
    runs: bool = typer.Option(False, "--runs", help="List runs instead."),
    name: str = typer.Option(None, "--name", "-n", help="Runs of this workflow."),
    limit: int = typer.Option(50, "--limit", "-l", help="At most this many runs."),
    db: str = DB_OPTION,
    json_out: bool = JSON_OPTION,
) -> None:
    """The defined workflows (``--runs``: the latest runs)."""
    try:
        orch = orchestrator(db)
        if runs or name:
            show_runs(orch.list_workflow_runs(name, limit=limit), json_out)
            return
        items = orch.list_workflows()
    except XquteError as exc:
        fail(exc)
    if json_out:
        print_json([w.model_dump(mode="json", exclude_none=True) for w in items])
        return
    if not items:
        stdout.print("no workflows (xqute apply -f FILE.yaml defines some)")
        return
    from rich.table import Table
    from rich.text import Text

    table = Table(show_edge=False, box=None, pad_edge=False)
    for col in ("NAME", "NAMESPACE", "TASKS", "ON FAILURE", "TIMEOUT", "DESCRIPTION"):
        table.add_column(col, overflow="fold")
    for w in items:
        table.add_row(  # user strings as Text: never read as rich markup
            Text(w.name),
            Text(w.namespace),
            str(len(w.tasks)),
            w.on_failure,
            fmt.duration(w.timeout),
            Text(fmt.shorten(w.description, 50)),
        )
    table_console().print(table)


def show_runs(runs: list[Any], json_out: bool) -> None:
    if json_out:
        print_json([r.as_dict() for r in runs])
        return
    if not runs:
        stdout.print("no runs")
        return
    from rich.table import Table
    from rich.text import Text

    table = Table(show_edge=False, box=None, pad_edge=False)
    for col in (
        "RUN",
        "KIND",
        "NAME",
        "STATE",
        "ATTEMPT",
        "CREATED",
        "ELAPSED",
        "REASON",
    ):
        table.add_column(col, overflow="fold")
    for r in runs:
        table.add_row(
            str(r.id),
            r.kind,
            Text(r.name),
            _run_state(r.state),
            str(r.attempt),
            fmt.when(r.created_at),
            fmt.elapsed({"started_at": r.started_at, "ended_at": r.ended_at}),
            Text(fmt.shorten(r.reason, 50)),
        )
    table_console().print(table)


def _run_state(state: str) -> str:
    from ._runview import TASK_STYLES

    style = {"timeout": "magenta", "pending": "yellow"}.get(
        state, TASK_STYLES.get(state)
    )
    return f"[{style}]{state}[/]" if style else state


@app.command()
def run(
    name: str = typer.Argument(..., help="The workflow's name."),
    param: list[str] = PARAM_OPTION,
    timeout: str = typer.Option(None, "--timeout", help="Run timeout (90s, 2h ...)."),
    wait: bool = typer.Option(
        False,
        "--wait",
        "-w",
        help="Wait for its end; runs an embedded pool when no daemon serves the db.",
    ),
    namespace: str = typer.Option("default", "--namespace"),
    db: str = DB_OPTION,
    json_out: bool = JSON_OPTION,
) -> None:
    """Start a run; print its id (``--wait``: its status at the end)."""
    try:
        orch = orchestrator(db)
        ex = orch.execute_workflow(
            name, params_of(param), namespace=namespace, timeout=timeout
        )
        if not wait:
            if json_out:
                print_json({"id": ex.id})
            else:
                stdout.print(ex.id)
            return
        status = wait_for(ex)
    except XquteError as exc:
        fail(exc)
    show_status(status, json_out, all_tasks=False)
    if status.state != "succeeded":
        raise typer.Exit(EXIT_FAILED)


@app.command()
def status(
    run_id: int = RUN_ARG,
    all_tasks: bool = typer.Option(
        False,
        "--all",
        help=f"Draw every task, even of a run with more than {MANY_TASKS}.",
    ),
    db: str = DB_OPTION,
    json_out: bool = JSON_OPTION,
) -> None:
    """The run's state and its DAG with each task's state, attempts, rc, output."""
    try:
        st = orchestrator(db).get_workflow_status(run_id)
    except XquteError as exc:
        fail(exc)
    show_status(st, json_out, all_tasks)


def show_status(st: Any, json_out: bool, all_tasks: bool) -> None:
    if json_out:
        print_json(st.as_dict())
        return
    from rich.markup import escape

    counts = ", ".join(f"{n} {s}" for s, n in sorted(st.counts.items()))
    title = (
        f"[bold]{st.kind} {escape(st.name)}[/] run {st.id} (v{st.version},"
        f" attempt {st.attempt}): {_run_state(st.state)}  [dim]{counts}[/]"
    )
    if st.reason:
        title += f"\n[dim]{escape(st.reason)}[/]"
    tasks = st.tasks
    if len(tasks) > MANY_TASKS and not all_tasks:
        tasks = [t for t in tasks if t.state not in ("succeeded", "blocked")][
            :MANY_TASKS
        ]
        title += (
            f"\n[dim]{len(st.tasks)} tasks: showing those not succeeded or"
            " blocked (--all: every one)[/]"
        )
        tasks = [dataclasses.replace(t, dependencies=[]) for t in tasks]
    table_console().print(dag_tree(title, tasks))


@app.command()
def cancel(
    run_id: int = RUN_ARG,
    reason: str = typer.Option(None, "--reason", help="Recorded as the run's reason."),
    db: str = DB_OPTION,
) -> None:
    """Cancel a run: what did not start never will; what runs gets TERM, then
    KILL after the grace period."""
    try:
        done = orchestrator(db).cancel_workflow(run_id, reason=reason)
    except XquteError as exc:
        fail(exc)
    stdout.print(f"run {run_id}: " + ("cancelling" if done else "already ended"))


@app.command()
def retry(
    run_id: int = RUN_ARG,
    wait: bool = typer.Option(False, "--wait", "-w", help="Wait for its end."),
    db: str = DB_OPTION,
    json_out: bool = JSON_OPTION,
) -> None:
    """Resume a finished run: its failed, cancelled and upstream-failed tasks
    run again; succeeded ones keep their outputs."""
    try:
        ex = orchestrator(db).retry_workflow(run_id)
        st = wait_for(ex) if wait else ex.status()
    except XquteError as exc:
        fail(exc)
    if wait:
        show_status(st, json_out, all_tasks=False)
        if st.state != "succeeded":
            raise typer.Exit(EXIT_FAILED)
    elif json_out:
        print_json({"id": run_id, "attempt": st.attempt})
    else:
        stdout.print(f"run {run_id}: attempt {st.attempt} started")


@app.command()
def graph(
    target: str = typer.Argument(..., help="A workflow's name, or a run's id."),
    dot: bool = typer.Option(False, "--dot", help="Graphviz DOT instead of a tree."),
    db: str = DB_OPTION,
) -> None:
    """Draw a workflow's DAG (a run's: with each task's state)."""
    try:
        orch = orchestrator(db)
        if digits(target):
            st = orch.get_workflow_status(int(target))
            name, tasks, title = st.name, st.tasks, f"run {st.id} of {st.name}"
        else:
            wf = orch.get_workflow(target)
            name, tasks, title = wf.name, wf.tasks, f"workflow {wf.name}"
    except XquteError as exc:
        fail(exc)
    if dot:
        sys.stdout.write(dag_dot(name, tasks) + "\n")
    else:
        from rich.markup import escape

        table_console().print(dag_tree(escape(title), tasks))


@app.command()
def logs(
    run_id: int = RUN_ARG,
    task: str = typer.Option(None, "--task", "-t", help="Only this task."),
    stderr_: bool = typer.Option(False, "--stderr", help="Show stderr, not stdout."),
    follow: bool = typer.Option(False, "--follow", "-f", help="Until the run ends."),
    db: str = DB_OPTION,
) -> None:
    """The output of the run's queue jobs, each after a header line."""
    from ..orchestration.status import task_jobs

    stream = "stderr" if stderr_ else "stdout"
    try:
        orch = orchestrator(db)
        names = [t.name for t in orch.get_workflow_status(run_id).tasks]
        if task is not None and task not in names:
            raise ConfigError(
                f"run {run_id} has no task {task!r}; its tasks: {', '.join(names)}"
            )
    except XquteError as exc:
        fail(exc)
    offsets: dict[int, int] = {}
    while True:
        final = orch.get_workflow_status(run_id).final
        for job in task_jobs(orch.db, run_id, task):
            _print_new(job, stream, offsets)
        if not follow or final:
            return
        time.sleep(0.2)


def _print_new(job: dict[str, Any], stream: str, offsets: dict[int, int]) -> None:
    path = job[stream]
    if path is None:
        return
    try:  # only the job's own files, never a symlink (the rule of `xqute logs`)
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError:
        return
    with os.fdopen(fd, "rb") as fh:
        start = offsets.get(job["job_id"])
        fh.seek(start or 0)
        data = fh.read()
    if start is None:
        item = f"[{job['item']}]" if job["item"] else ""
        # after a retry of the run its tasks count attempts from 1 again
        run = f"run attempt {job['run_attempt']}, " if job["run_attempt"] > 1 else ""
        sys.stdout.write(
            f"==> {job['task']}{item} attempt {job['attempt']}"
            f" ({run}job {job['job_id']}, {job['state']}) <==\n"
        )
    offsets[job["job_id"]] = (start or 0) + len(data)
    sys.stdout.write(data.decode(errors="replace"))
    sys.stdout.flush()
