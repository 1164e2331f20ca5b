"""Fixtures shared by the backends' integration tests."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

INTERRUPTED_DRIVER = """
import asyncio, sys
from xqute import Xqute, Interrupted

async def main():
    xqute = Xqute(sys.argv[1], workdir=sys.argv[2], jobname_prefix=sys.argv[3],
                  forks=3, scheduler_opts={"poll_interval_s": 0.3})
    for _ in range(3):
        await xqute.feed(["sleep", "300"])
    try:
        await xqute.run_until_complete()
    except Interrupted:
        print("interrupted", flush=True)

asyncio.run(main())
"""


@pytest.fixture
def interrupt_driver(tmp_path):
    """A driver process with 3 long jobs on ``scheduler``: once all three run, it
    gets SIGINT. Returns (native ids, job.rc contents, the driver's stdout).
    ``base``: where the workdir goes (default: tmp_path)."""

    async def run(
        scheduler: str, prefix: str, base: Path | None = None
    ) -> tuple[list[str], list[str], str]:
        workdir = (base or tmp_path) / "xq"
        proc = subprocess.Popen(
            [sys.executable, "-c", INTERRUPTED_DRIVER, scheduler, str(workdir), prefix],
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            status = [workdir / str(i) / "job.status" for i in range(3)]
            deadline = time.monotonic() + 30
            while not all(_reads(p) == "3" for p in status):
                assert time.monotonic() < deadline and proc.poll() is None
                await asyncio.sleep(0.2)
            ids = [_reads(workdir / str(i) / "job.jid") for i in range(3)]
            proc.send_signal(signal.SIGINT)
            out, _ = proc.communicate(timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()
        rcs = [_reads(workdir / str(i) / "job.rc") for i in range(3)]
        return ids, rcs, out

    return run


def _reads(path: Path) -> str | None:
    return path.read_text().strip() if path.exists() else None
