"""``xqute queue``: list jobs, running first, then pending by priority (like
squeue). People run it in loops (``watch``), so it has a fast path.

``show_queue`` is the verb's body, shared by ``fast_queue`` (without Typer,
which ``cli.main()`` tries first, see ``_fast.py``) and by the Typer command
(``build_command``, which imports Typer only when it is called). Only the
store, ``lines`` and this module are imported on the fast path, not rich:
its ``Table`` took ~200 ms of a 100-row listing, its import ~50 ms.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable

from . import _format as fmt
from ._fast import EXIT_FAILED, EXIT_USAGE, Spec, parse_options

TYPE_CHECKING = False  # typing is not imported at run time (xqute queue --json)
if TYPE_CHECKING:
    from typing import Any

SPEC: Spec = {
    "--state": ("state", "list"),
    "-s": ("state", "list"),
    "--name": ("name", "str"),
    "-n": ("name", "str"),
    "--namespace": ("namespace", "str"),
    "--all": ("all_states", "flag"),
    "-a": ("all_states", "flag"),
    "--limit": ("limit", "int"),
    "-l": ("limit", "int"),
    "--db": ("db", "str"),
    "--json": ("json_out", "flag"),
}
_COLUMNS = (
    ("ID", "right"), ("NAME", "left"), ("STATE", "left"), ("PRI", "right"),
    ("CPUS", "right"), ("MEM", "right"), ("GPUS", "left"), ("SUBMITTED", "left"),
    ("STARTED", "left"), ("TIME", "right"), ("RC", "right"), ("REASON", "left"),
)  # fmt: skip


def fast_queue(argv: list[str]) -> int | None:
    parsed = parse_options(argv, SPEC)
    if parsed is None or parsed[1]:
        return None  # --help, a bad value, stray words: Typer explains
    return show_queue(**parsed[0])


def show_queue(
    state: list[str] | None = None,
    name: str | None = None,
    all_states: bool = False,
    limit: int = 100,
    db: str | None = None,
    json_out: bool = False,
    namespace: str | None = None,
) -> int:
    """List jobs; the exit code (2: bad input, 1: the db failed)."""
    from ..checks import positive_int as check_positive_int
    from ..errors import ConfigError, StoreError

    try:
        limit = check_positive_int("--limit", limit, 0)
        states = ["all"] if all_states else (state or None)
        jobs = fmt.existing_store(db).list_jobs(
            state=states, name=name, limit=limit + 1, namespace=namespace
        )
    except (ConfigError, StoreError) as exc:
        sys.stderr.write(f"error: {exc}\n")
        return EXIT_USAGE if isinstance(exc, ConfigError) else EXIT_FAILED
    more = len(jobs) > limit
    jobs = jobs[:limit]
    if json_out:
        import json

        sys.stdout.write(json.dumps(jobs, indent=2, default=str) + "\n")
        return 0
    from .lines import show

    columns = list(_COLUMNS)
    # the namespace only when a job is outside the default one
    spaced = namespace is None and any(j["namespace"] != "default" for j in jobs)
    if spaced:
        columns.insert(2, ("NAMESPACE", "left"))
    now = time.time()
    rows = []
    for job in jobs:
        row = _row(job, now)
        if spaced:
            row.insert(2, (fmt.shorten(job["namespace"], 16), ""))
        rows.append(row)
    if more:
        footer = f"... more jobs not shown (--limit {limit})"
    else:
        footer = "" if jobs else "no jobs"
    show(columns, rows, footer)
    return 0


def _row(job: dict[str, Any], now: float) -> list[tuple[str, str]]:
    """The cells of a job's line: (text, rich style). User strings are plain
    text, never rich markup."""
    gpus = str(job["gpus"]) if job["gpus"] else "-"
    if job["gpu_ids"]:  # the indexes it was given
        gpus += f" [{','.join(map(str, job['gpu_ids']))}]"
    plain = ""
    return [
        (str(job["id"]), plain),
        (fmt.shorten(job["name"], 24), plain),
        (fmt.state_label(job), fmt.STATE_STYLES.get(job["state"], plain)),
        (str(job["priority"]), plain),
        (str(job["cpus"]), plain),
        (fmt.mem(job["mem_mb"]), plain),
        (gpus, plain),
        (fmt.when(job["submitted_at"], now), plain),
        (fmt.when(job["started_at"], now), plain),
        (fmt.elapsed(job, now), plain),
        ("" if job["return_code"] is None else str(job["return_code"]), plain),
        (fmt.shorten(job["reason"], 50), plain),
    ]


def build_command() -> Callable[..., None]:
    """The Typer command (its ``--help`` and usage errors); imports Typer."""
    import typer

    def queue(
        state: list[str] = typer.Option(
            [],
            "--state",
            "-s",
            help="Only jobs in these states (repeatable, or a,b); 'all' for every"
            " state. Default: pending and running.",
        ),
        name: str = typer.Option(
            None,
            "--name",
            "-n",
            help="Only names matching a glob (-n is the name here, like squeue;"
            " on submit it is the namespace).",
        ),
        namespace: str = typer.Option(
            None, "--namespace", help="Only the jobs of this namespace."
        ),
        all_states: bool = typer.Option(
            False, "--all", "-a", help="Same as --state all."
        ),
        limit: int = typer.Option(100, "--limit", "-l", help="At most this many rows."),
        db: str = typer.Option(
            None, "--db", envvar="XQUTE_DB", help="The queue db (default: per-user)."
        ),
        json_out: bool = typer.Option(
            False, "--json", help="Print JSON instead of a table."
        ),
    ) -> None:
        """List jobs: running first, then pending by priority (like squeue)."""
        code = show_queue(
            state or None, name, all_states, limit, db, json_out, namespace
        )
        if code:
            raise typer.Exit(code)

    return queue
