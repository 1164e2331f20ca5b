"""``xqute cancel``: cancel queued jobs by id, by name glob, or all of them."""

from __future__ import annotations

import typer

from ..errors import ConfigError, StoreError
from ._format import existing_store
from .common import DB_OPTION, JSON_OPTION, fail, print_json, stdout


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
