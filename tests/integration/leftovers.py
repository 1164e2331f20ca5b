"""Processes a test left behind: found by a text in their command line (a test's
folder, or the unique token in its job commands), and killed by pid.

Every job of every backend the tests use runs on this machine (single-node
clusters, loopback ssh servers, local containers), so a test can check that
none of its processes outlived the run, whatever the backend.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time

import psutil


def kill_leftovers(text: str) -> None:
    """SIGKILL every process (its group, for group leaders) whose command line
    mentions ``text``."""
    me = os.getpid()
    for proc in psutil.process_iter(["pid", "cmdline"]):
        if proc.pid == me or text not in " ".join(proc.info["cmdline"] or []):
            continue
        with contextlib.suppress(ProcessLookupError, PermissionError, psutil.Error):
            if os.getpgid(proc.pid) == proc.pid:
                os.killpg(proc.pid, signal.SIGKILL)
            else:
                proc.kill()


def processes(text: str) -> list[str]:
    """Command lines of live processes (not zombies) that mention ``text``."""
    found = []
    for proc in psutil.process_iter(["cmdline", "status"]):
        try:
            if proc.info["status"] == psutil.STATUS_ZOMBIE:
                continue
            cmdline = " ".join(proc.info["cmdline"] or ())
        except psutil.Error:
            continue
        if text in cmdline:
            found.append(f"{proc.pid}: {cmdline}")
    return found


def wait_gone(text: str, timeout_s: float = 10.0) -> list[str]:
    """Wait until no process mentions ``text``; return those left after it."""
    deadline = time.monotonic() + timeout_s
    while (left := processes(text)) and time.monotonic() < deadline:
        time.sleep(0.1)
    return left


async def no_processes(text: str, timeout_s: float = 20.0) -> list[str]:
    """Wait until no process mentions ``text``; return those left after the wait."""
    deadline = time.monotonic() + timeout_s
    while (left := processes(text)) and time.monotonic() < deadline:
        await asyncio.sleep(0.2)
    return left
