"""``xqute apply -f FILE.yaml [--dry-run]``: define templates, jobs and
workflows from a YAML file (see docs/workflows.md, "YAML"). Idempotent:
applying an unchanged file changes nothing. Every problem is reported at once
as ``FILE:LINE: where: what``; nothing is stored unless the whole file is
valid. Exit codes: 0 applied, 1 the db could not be used, 2 a bad file.
"""

from __future__ import annotations

import os
import tempfile

import typer
from rich.markup import escape

from ..errors import XquteError
from .common import DB_OPTION, JSON_OPTION, fail, print_json, stdout

_MARK = {
    "created": "[green]+[/]",
    "updated": "[yellow]~[/]",
    "unchanged": " ",
    "deleted": "[red]-[/]",
}


def apply(
    file: str = typer.Option(..., "--file", "-f", help="The YAML file."),
    dry_run: bool = typer.Option(
        False,
        "--dry-run",
        help="Only say what would change (with a diff), store nothing.",
    ),
    db: str = DB_OPTION,
    json_out: bool = JSON_OPTION,
) -> None:
    """Create or update the definitions of a YAML file."""
    from ..orchestration.apply import apply as apply_file
    from ..queue.db import db_file
    from ..queue.store import JobStore

    try:
        # applying creates the db, as a submit does (a fresh machine's first
        # step); a dry run stores nothing, not even an empty db: where there
        # is none it compares the file with an empty one (all would be created)
        if dry_run and not os.path.exists(db_file(db)):
            with tempfile.TemporaryDirectory(prefix="xqute-dry-run-") as tmp:
                store = JobStore(os.path.join(tmp, "queue.db"))
                try:
                    result = apply_file(store.db, file, dry_run=True)
                finally:
                    store.close()
        else:
            result = apply_file(JobStore(db).db, file, dry_run=dry_run)
    except XquteError as exc:
        fail(exc)
    if json_out:
        print_json(result.as_dict())
        return
    would = "would be " if dry_run else ""
    for c in result.changes:
        version = f" (v{c.version})" if c.version else ""
        stdout.print(
            f"{_MARK[c.action]} {c.kind} {escape(c.name)}{version}: {would}{c.action}"
        )
        if c.diff:
            stdout.print(escape(c.diff), highlight=False)
    if not result.changes:
        stdout.print("nothing to apply")
