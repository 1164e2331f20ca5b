"""Who serves a db: the queue daemon's lock and pid file.

One daemon per db: it holds an ``fcntl.flock`` on ``<db stem>.lock`` for its
whole life (the kernel drops it if the daemon dies, even by SIGKILL) and names
itself in ``<db stem>.pid`` (pid and create time, so that a stale file whose pid
was reused since is told apart). The daemon takes the lock (``acquire``); its
clients (``SchedulerService``: status, stop, a second start) only look
(``running_pid``). Lock, pid and log files are user-only.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil

from ..errors import AlreadyRunningError
from ..processes import process_alive
from .db import make_private_dir
from .store import JobStore

__all__ = ["LOCK_WAIT_S", "DaemonLock", "private_append"]

LOCK_WAIT_S = 1.0  # a busy lock with no live daemon named: retried this long


class DaemonLock:
    """The lock, pid and log files of the daemon of ``store``'s db."""

    def __init__(self, store: JobStore) -> None:
        self.db_path = store.db_path
        self.lock_path = store.sibling(".lock")
        self.pid_path = store.sibling(".pid")
        self.log_path = store.sibling(".log")

    def running_pid(self) -> int | None:
        """The daemon's pid if one holds the lock (-1 while its pid file is not
        written yet), else None."""
        try:
            fd = os.open(self.lock_path, os.O_RDONLY)
        except FileNotFoundError:
            return None
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return self.live_pid() or -1
        else:
            fcntl.flock(fd, fcntl.LOCK_UN)
            return None
        finally:
            os.close(fd)

    def live_pid(self) -> int | None:
        """The pid in the pid file if that process still runs (a stale pid file,
        its daemon SIGKILLed, may name a pid reused since: the create time says)."""
        info = self.pidfile()
        pid = info.get("pid")
        if not isinstance(pid, int) or pid <= 0:
            return None
        return pid if process_alive(pid, info.get("create_time")) else None

    def pidfile(self) -> dict[str, Any]:
        try:
            return json.loads(self.pid_path.read_text())
        except (OSError, ValueError):
            return {}

    def already_running_message(self, pid: int | str) -> str:
        return (
            f"a queue daemon already runs on {self.db_path} (pid {pid});"
            " stop it first: xqute service stop"
        )

    def acquire(self) -> int:
        """Take the daemon lock (an fd held for life) or raise AlreadyRunningError.

        The lock is busy when a daemon holds it, but also for the microseconds a
        ``status()`` call holds it shared, so a busy lock means "already
        running" at once only if the pid file names a live daemon; otherwise
        (no pid file, or a stale one left by a SIGKILLed daemon) it is tried
        again for up to ``LOCK_WAIT_S``.
        """
        make_private_dir(self.lock_path.parent)
        fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        deadline = time.monotonic() + LOCK_WAIT_S
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                pid = self.live_pid()
                if pid is not None or time.monotonic() > deadline:
                    os.close(fd)
                    raise AlreadyRunningError(
                        self.already_running_message(pid or "unknown")
                    ) from None
                time.sleep(0.02)
        me = psutil.Process()
        data = {
            "pid": me.pid,
            "create_time": me.create_time(),
            "started_at": time.time(),
            "db": str(self.db_path),
            "log": str(self.log_path),
        }
        tmp = self.pid_path.with_name(self.pid_path.name + ".tmp")
        with private_write(tmp) as fh:
            fh.write(json.dumps(data).encode())
        os.replace(tmp, self.pid_path)
        return fd

    def release(self, fd: int) -> None:
        if self.pidfile().get("pid") == os.getpid():
            with contextlib.suppress(FileNotFoundError):
                self.pid_path.unlink()
        os.close(fd)  # releases the flock


@contextlib.contextmanager
def private_append(path: Path) -> Iterator[Any]:
    """Open ``path`` to append, created user-only."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    with os.fdopen(fd, "ab") as fh:
        yield fh


@contextlib.contextmanager
def private_write(path: Path) -> Iterator[Any]:
    """Open ``path`` to write, created user-only."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        yield fh
