"""``xqute job list | status | run | suspend | resume | delete`` and ``xqute
template list | show``: defined jobs (a named command, or a template with
parameters) and templates.

xqute job run data-processing -p input=/data --wait
xqute job status data-processing     # its latest run (or: a run's id)

Exit codes: 0 done (``run --wait``: it succeeded), 1 it did not or the db could
not be used, 2 bad input.
"""

from __future__ import annotations

import shlex

import typer

from ..errors import XquteError
from . import _format as fmt
from .common import (
    DB_OPTION,
    EXIT_FAILED,
    JSON_OPTION,
    fail,
    print_json,
    stdout,
    table_console,
)
from .workflow import (
    PARAM_OPTION,
    orchestrator,
    params_of,
    show_runs,
    show_status,
    wait_for,
)

app = typer.Typer(
    name="job",
    help="Defined jobs and their runs.",
    no_args_is_help=True,
    add_completion=False,
)
templates = typer.Typer(
    name="template", help="Job templates.", no_args_is_help=True, add_completion=False
)
NAME_ARG = typer.Argument(..., help="The job's name.")
NAMESPACE_OPTION = typer.Option("default", "--namespace", help="Its namespace.")


def _what(spec: object) -> str:
    if getattr(spec, "template", None):
        return f"template {spec.template}"  # type: ignore[attr-defined]
    cmd = spec.command  # type: ignore[attr-defined]
    return spec.shell if cmd is None else shlex.join(cmd)  # type: ignore[attr-defined]


@app.command("list")
def list_(db: str = DB_OPTION, json_out: bool = JSON_OPTION) -> None:
    """The defined jobs."""
    try:
        jobs = orchestrator(db).list_jobs()
    except XquteError as exc:
        fail(exc)
    if json_out:
        print_json([j.model_dump(mode="json", exclude_none=True) for j in jobs])
        return
    if not jobs:
        stdout.print("no jobs (xqute apply -f FILE.yaml defines some)")
        return
    from rich.table import Table
    from rich.text import Text

    table = Table(show_edge=False, box=None, pad_edge=False)
    for col in ("NAME", "NAMESPACE", "RUNS", "TIMEOUT", "SCHEDULE"):
        table.add_column(col, overflow="fold")
    for j in jobs:
        table.add_row(  # user strings as Text: never read as rich markup
            Text(j.name),
            Text(j.namespace),
            Text(fmt.shorten(_what(j), 50)),
            fmt.duration(j.timeout),
            "yes" if j.schedule else "-",
        )
    table_console().print(table)


@app.command()
def status(
    target: str = typer.Argument(
        ..., help="A job's name (its latest run) or a run id."
    ),
    namespace: str = NAMESPACE_OPTION,
    runs: bool = typer.Option(False, "--runs", help="List its runs instead."),
    db: str = DB_OPTION,
    json_out: bool = JSON_OPTION,
) -> None:
    """A job run's state, attempts, rc, reason (the seed's ``job status``)."""
    try:
        orch = orchestrator(db)
        if runs:
            show_runs(orch.list_runs(target, kind="job"), json_out)
            return
        st = orch.get_job_status(target, namespace)
    except XquteError as exc:
        fail(exc)
    show_status(st, json_out, all_tasks=True)


@app.command()
def run(
    name: str = NAME_ARG,
    param: list[str] = PARAM_OPTION,
    namespace: str = NAMESPACE_OPTION,
    wait: bool = typer.Option(
        False,
        "--wait",
        "-w",
        help="Wait for its end (an embedded pool when no daemon serves the db).",
    ),
    db: str = DB_OPTION,
    json_out: bool = JSON_OPTION,
) -> None:
    """Run a defined job now; print the run's id."""
    try:
        ex = orchestrator(db).run_job(
            name, namespace=namespace, parameters=params_of(param)
        )
        st = wait_for(ex) if wait else None
    except XquteError as exc:
        fail(exc)
    if st is None:
        print_json({"id": ex.id}) if json_out else stdout.print(ex.id)
        return
    show_status(st, json_out, all_tasks=True)
    if st.state != "succeeded":
        raise typer.Exit(EXIT_FAILED)


@app.command()
def suspend(
    name: str = NAME_ARG, namespace: str = NAMESPACE_OPTION, db: str = DB_OPTION
) -> None:
    """No new runs; the queue jobs of its runs that wait are held."""
    try:
        orchestrator(db).suspend_job(name, namespace)
    except XquteError as exc:
        fail(exc)
    stdout.print(f"job {name}: suspended")


@app.command()
def resume(
    name: str = NAME_ARG, namespace: str = NAMESPACE_OPTION, db: str = DB_OPTION
) -> None:
    """Undo ``suspend``."""
    try:
        orchestrator(db).resume_job(name, namespace)
    except XquteError as exc:
        fail(exc)
    stdout.print(f"job {name}: resumed")


@app.command()
def delete(
    name: str = NAME_ARG,
    namespace: str = NAMESPACE_OPTION,
    cascade: bool = typer.Option(False, "--cascade", help="Cancel its active runs."),
    db: str = DB_OPTION,
) -> None:
    """Delete a job (refused while it has active runs, unless ``--cascade``)."""
    try:
        orchestrator(db).delete_job(name, namespace, cascade=cascade)
    except XquteError as exc:
        fail(exc)
    stdout.print(f"job {name}: deleted")


@templates.command("list")
def template_list(db: str = DB_OPTION, json_out: bool = JSON_OPTION) -> None:
    """The job templates."""
    try:
        items = orchestrator(db).list_job_templates()
    except XquteError as exc:
        fail(exc)
    if json_out:
        print_json([t.model_dump(mode="json", exclude_none=True) for t in items])
        return
    if not items:
        stdout.print("no templates")
        return
    from rich.table import Table
    from rich.text import Text

    table = Table(show_edge=False, box=None, pad_edge=False)
    for col in ("NAME", "NAMESPACE", "PARAMETERS", "COMMAND"):
        table.add_column(col, overflow="fold")
    for t in items:
        params = ", ".join(p.name + ("*" if p.required else "") for p in t.parameters)
        cells = (t.name, t.namespace, params, fmt.shorten(_what(t), 60))
        table.add_row(*map(Text, cells))  # user strings: never rich markup
    table_console().print(table)


@templates.command("show")
def template_show(
    name: str = typer.Argument(..., help="The template's name."),
    namespace: str = NAMESPACE_OPTION,
    db: str = DB_OPTION,
    json_out: bool = JSON_OPTION,
) -> None:
    """A template: its command, parameters, resources."""
    try:
        t = orchestrator(db).get_job_template(name, namespace)
    except XquteError as exc:
        fail(exc)
    data = t.model_dump(mode="json", exclude_none=True)
    if json_out:
        print_json(data)
        return
    import yaml

    stdout.print(yaml.safe_dump(data, sort_keys=False).rstrip(), markup=False)
