"""``xqute logs ID``: a queued job's stdout or stderr, followed as it grows."""

from __future__ import annotations

import contextlib
import os
import sys
import time
from typing import Any

import typer

from ..errors import ConfigError, StoreError
from ..queue.schema import FINAL_STATES
from ._format import existing_store
from .common import DB_OPTION, fail, stderr


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
