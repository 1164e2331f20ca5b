"""One run per workdir at a time, and no job folders of an older run mixed in.

Two engines running in one workdir would write the same job folders
(``<workdir>/<index>/``) and both report success. So a run holds an
``fcntl.flock`` on ``<workdir>/.xqute.lock`` from its start to its end (the
kernel drops it if the driver dies, even by SIGKILL); a second run fails at
once with ``WorkdirBusy``, naming the pid, the command and the start time the
holder wrote into the lock file.

Each job's folder is cleared of an older run's files before the job starts
(``Job.prepare_metadir``); when the run ends, the folders an older, longer run
left beyond this run's jobs lose xqute's files too (and go if nothing else is
in them), so the workdir shows this run only. Only xqute's own files are
removed: a client (pipen) may keep its own there.

Local workdirs only: an object store (gs://) has no locks.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import sys
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from .errors import ConfigError, WorkdirBusy
from .job import JOB_FILES

__all__ = ["LOCK_NAME", "WorkdirLock", "clear_stale_folders", "job_folders"]

LOCK_NAME = ".xqute.lock"


class WorkdirLock:
    """The lock of one run on its workdir (``acquire`` at start, ``release``
    at the end)."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.path = workdir / LOCK_NAME
        self._fd: int | None = None

    def acquire(self) -> None:
        """Take the lock, or raise ``WorkdirBusy`` naming the run that holds
        it (``ConfigError`` if the workdir cannot be written)."""
        import fcntl

        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as exc:
            raise ConfigError(
                f"workdir {str(self.workdir)!r} cannot be used: cannot create"
                f" {LOCK_NAME} in it ({exc.strerror or exc})"
            ) from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _describe(_read(fd))
            os.close(fd)
            raise WorkdirBusy(
                f"workdir {str(self.workdir)!r} is in use by another run ({holder});"
                " wait for it to end, or use another workdir"
            ) from None
        me = {"pid": os.getpid(), "started_at": time.time(), "argv": sys.argv}
        with contextlib.suppress(OSError):  # a full disk: the lock holds anyway
            os.ftruncate(fd, 0)
            os.pwrite(fd, json.dumps(me).encode(), 0)
        self._fd = fd

    def release(self) -> None:
        """Drop the lock (the file stays: removing it would race a new run)."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def _read(fd: int) -> dict[str, object]:
    try:
        return json.loads(os.pread(fd, 65536, 0) or b"{}")
    except (OSError, ValueError):
        return {}


def _describe(holder: dict[str, object]) -> str:
    pid = holder.get("pid", "unknown")
    text = f"pid {pid}"
    argv = holder.get("argv")
    if isinstance(argv, list) and argv:
        text += f": {' '.join(map(str, argv))[:120]}"
    started = holder.get("started_at")
    if isinstance(started, int | float):
        text += f", since {time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(started))}"
    return text


def job_folders(workdir: Path) -> set[int]:
    """The indexes of the job folders (``<workdir>/<digits>/``) there now."""
    try:
        with os.scandir(workdir) as entries:
            return {
                int(e.name)
                for e in entries
                if e.name.isdigit() and e.is_dir(follow_symlinks=False)
            }
    except OSError:
        return set()


def clear_stale_folders(workdir: Path, stale: Iterable[int]) -> None:
    """Remove xqute's files from the job folders ``stale`` (an older run's), and
    each folder that is then empty. Never raises (a cleanup)."""
    for index in stale:
        folder = workdir / str(index)
        try:
            entries = list(os.scandir(folder))
        except OSError:
            continue
        for entry in entries:
            name = entry.name
            with contextlib.suppress(OSError):
                if name in ("job.retry",) and entry.is_dir(follow_symlinks=False):
                    shutil.rmtree(entry.path)
                elif name in JOB_FILES or name.startswith("job.wrapped."):
                    os.unlink(entry.path)
        with contextlib.suppress(OSError):
            folder.rmdir()  # only if nothing of the client's is left


def lock_run(workdir: Any) -> tuple[WorkdirLock | None, set[int]]:
    """Lock a local workdir for one run (a cloud one is not locked); return
    the lock and the job folders an older run left there."""
    if not isinstance(workdir, Path):
        return None, set()
    lock = WorkdirLock(workdir)
    lock.acquire()
    return lock, job_folders(workdir)


def unlock_run(lock: WorkdirLock | None, stale: set[int]) -> None:
    """End a run: clear the ``stale`` folders (an older, longer run's: not to
    be taken for this run's), release the lock."""
    if lock is None:
        return
    if stale:
        clear_stale_folders(lock.workdir, stale)
    lock.release()
