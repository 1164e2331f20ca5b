"""Processes by pid: is it still the one we mean, signal its group, wait for it.

A pid outlives nothing: once a process is gone, the kernel may give its pid to
another. So everything that finds a process again by a pid recorded earlier
(the queue daemon in its pid file, a worker pool in the db, a job's wrapper in
``job.jid``) checks that the pid still runs what it should: the create time
recorded with it, or the job's script in its command line. The local and
apptainer backends, the queue's recovery and its daemon all use these.
"""

from __future__ import annotations

import contextlib
import os
import time
from typing import Any

import psutil

__all__ = [
    "boot_ticks",
    "child_missed_term",
    "has_exited",
    "killpg",
    "process_alive",
    "runs_script",
    "wait_no_reap",
]


def process_alive(pid: int, create_time: Any = None) -> bool:
    """Whether the process ``pid`` runs (not a zombie) and, when ``create_time``
    is a number, is the one created then (not a later process given the pid)."""
    try:
        proc = psutil.Process(pid)
        if proc.status() == psutil.STATUS_ZOMBIE:
            return False
        started = proc.create_time()
    except psutil.Error:
        return False
    return not isinstance(create_time, int | float) or abs(started - create_time) < 1


def runs_script(pid: int, script: str, *, in_tree: bool = False) -> bool:
    """Whether ``pid`` runs (not a zombie) with ``script`` in its command line;
    with ``in_tree``, in its own or in one of its descendants' (a launcher such
    as apptainer re-executes itself and runs the script in a child)."""
    try:
        process = psutil.Process(pid)
        if process.status() == psutil.STATUS_ZOMBIE:
            return False
        tree = [process, *process.children(recursive=True)] if in_tree else [process]
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return False
    for proc in tree:
        with contextlib.suppress(psutil.Error):
            if script in proc.cmdline():
                return True
    return False


def killpg(pgid: int, sig: int) -> None:
    """Signal a process group; one that is gone (or not ours) is no error."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def wait_no_reap(pid: int) -> None:
    """Block until our child ``pid`` exits, leaving it a zombie (so that its
    pgid stays ours to signal until it is reaped)."""
    with contextlib.suppress(ChildProcessError):
        os.waitid(os.P_PID, pid, os.WEXITED | os.WNOWAIT)


def has_exited(pid: int) -> bool:
    """Whether our child ``pid`` has exited (without reaping it)."""
    try:
        flags = os.WEXITED | os.WNOHANG | os.WNOWAIT
        return os.waitid(os.P_PID, pid, flags) is not None
    except ChildProcessError:
        return True


def boot_ticks() -> int | None:
    """Now, in clock ticks since boot (the unit of a process's start time in
    /proc/PID/stat); None where that is not known."""
    try:
        return int(time.clock_gettime(time.CLOCK_BOOTTIME) * os.sysconf("SC_CLK_TCK"))
    except (AttributeError, OSError, ValueError):
        return None


def child_missed_term(pid: int, tick: int | None) -> bool:
    """Whether a child of ``pid`` may have missed a SIGTERM sent at ``tick``.

    Either it started at or after ``tick`` (a start in that very tick is
    counted, so such a command may get a second TERM: it has had no time to do
    any work), or it lives on although a TERM would have ended it: it neither
    catches, ignores, blocks nor has TERM pending (a stopped process keeps it
    pending until it is continued). That one was forked before the TERM and
    got it before its exec, which dropped it (bash forks with TERM blocked, and
    the child unblocks it while it still has the wrapper's trap handler)."""
    if tick is None:
        return False
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as fh:
            children = fh.read().split()
        for child in children:
            with open(f"/proc/{child}/stat") as fh:
                fields = fh.read().rpartition(")")[2].split()
            if int(fields[19]) >= tick:  # field 22: start time, in ticks
                return True
            if fields[0] not in ("Z", "X") and _term_would_end(child):
                return True
    except (OSError, ValueError, IndexError):
        return False
    return False


_SIGNAL_MASKS = ("SigPnd", "ShdPnd", "SigBlk", "SigIgn", "SigCgt")


def _term_would_end(pid: str) -> bool:
    """Whether SIGTERM, sent now, would end process ``pid`` (its default
    action) and none is pending there."""
    term = 1 << (15 - 1)
    with open(f"/proc/{pid}/status") as fh:
        masks = {
            key: int(value, 16)
            for key, _, value in (line.partition(":\t") for line in fh)
            if key in _SIGNAL_MASKS
        }
    return len(masks) == len(_SIGNAL_MASKS) and not any(
        mask & term for mask in masks.values()
    )
