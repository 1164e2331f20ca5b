"""The driver's side of the orphan guard (see ``_reaper.py``).

A job started by a local driver must not outlive it, even when the driver is
SIGKILLed and runs no cleanup. ``PR_SET_PDEATHSIG`` would need a ``preexec_fn``
(which costs the fast vfork spawn path and only covers the direct child), so
instead one small watcher process per driver holds the read end of a pipe: the
kernel closes the write end when the driver dies, and the watcher then kills every
job process group it was told about. Telling it costs one ``write`` per job start
and one per job end.
"""

from __future__ import annotations

import contextlib
import logging
import os
import subprocess
import sys
import threading
from pathlib import Path

__all__ = ["ProcessGroupGuard"]

logger = logging.getLogger("xqute")
_REAPER = Path(__file__).with_name("_reaper.py")


class ProcessGroupGuard:
    """Registers process groups with a watcher that kills them if we die."""

    def __init__(self, grace_s: float = 5.0) -> None:
        self.grace_s = grace_s
        self._proc: subprocess.Popen[bytes] | None = None
        self._wfd: int | None = None
        self._groups: set[int] = set()
        self._ended = b""  # "-PGID" lines not yet sent: they ride on the next write

    def _spawn(self) -> None:
        rfd, wfd = os.pipe()  # both non-inheritable: jobs never hold the write end
        try:
            self._proc = subprocess.Popen(
                [sys.executable, "-I", "-S", str(_REAPER), f"{self.grace_s + 1:g}"],
                stdin=rfd,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,  # out of reach of a Ctrl-C to our group
            )
        except OSError:
            os.close(wfd)
            raise
        finally:
            os.close(rfd)
        self._wfd = wfd

    def _send(self, line: bytes) -> None:
        if self._wfd is None:
            self._spawn()
        try:
            os.write(self._wfd, line)  # type: ignore[arg-type]
        except OSError as exc:  # the watcher died: start a new one, tell it all
            logger.warning("orphan guard lost (%s); restarting it", exc)
            self._close_pipe()
            self._spawn()
            payload = b"".join(b"+%d\n" % g for g in self._groups)
            if payload:
                os.write(self._wfd, payload)  # type: ignore[arg-type]

    def add(self, pgid: int) -> None:
        """Register a new group: sent at once, so no job runs unguarded."""
        self._groups.add(pgid)
        line, self._ended = self._ended + b"+%d\n" % pgid, b""
        self._send(line)

    def discard(self, pgid: int) -> None:
        """Forget an ended group; sent with the next registration (the group is
        gone, so telling the watcher late only risks killing nothing)."""
        if pgid in self._groups:
            self._groups.discard(pgid)
            self._ended += b"-%d\n" % pgid
            if len(self._ended) > 4096:
                line, self._ended = self._ended, b""
                self._send(line)

    def _close_pipe(self) -> None:
        if self._wfd is not None:
            with contextlib.suppress(OSError):
                os.close(self._wfd)
            self._wfd = None

    def close(self) -> None:
        """Stop the watcher; groups still registered are killed by it on the way.

        Does not wait: the watcher may still be starting up (a short run would pay
        its interpreter start-up), so a daemon thread reaps it."""
        if self._ended and self._wfd is not None:
            with contextlib.suppress(OSError):
                os.write(self._wfd, self._ended)
        self._ended = b""
        self._close_pipe()
        proc, self._proc = self._proc, None
        if proc is not None:
            threading.Thread(
                target=proc.wait, name="xqute-guard-reaper", daemon=True
            ).start()
        self._groups.clear()
