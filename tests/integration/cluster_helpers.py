"""What the Slurm and SGE integration tests share (bench/cluster.py too).

``Cluster`` looks at a real cluster the way a user would, with a job-name prefix
per test (whatever is left in the queue under it is killed afterwards); each
backend's conftest subclasses it. The scenarios both backends run the same way
(halt, one status call per cycle) are here; each test adds its backend's own
assertions.
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import time
import uuid
from pathlib import Path
from typing import Any, ClassVar

from xqute import Job, JobOutcome, Xqute

FAST = {"poll_interval_s": 0.3, "poll_interval_max_s": 2}


class Cluster:
    scheduler: ClassVar[str]
    kill_tool: ClassVar[str]
    #: scheduler options of every test's engine (on top of FAST)
    options: ClassVar[dict[str, Any]] = {}

    def __init__(self) -> None:
        self.prefix = f"xqt{uuid.uuid4().hex[:6]}"

    def run(self, *argv: str) -> str:
        return subprocess.run(argv, capture_output=True, text=True).stdout

    def jobs(self) -> dict[str, str]:
        """{native id: job name} of every job the queue lists."""
        raise NotImplementedError

    def alive(self, ids: list[str]) -> list[str]:
        """Those of ``ids`` still in the queue (not finished)."""
        raise NotImplementedError

    def cleanup(self) -> None:
        """Kill what a test left in the queue under its prefix."""
        ids = [i for i, name in self.jobs().items() if name.startswith(self.prefix)]
        if ids:
            subprocess.run([self.kill_tool, *ids], capture_output=True)

    def engine(self, tmp_path: Path, workdir: str = "xq", **kwargs: Any) -> Xqute:
        opts = {**FAST, **self.options, **kwargs.pop("scheduler_opts", {})}
        kwargs.setdefault("jobname_prefix", self.prefix)
        return Xqute(
            self.scheduler,
            workdir=str(tmp_path / workdir),
            scheduler_opts=opts,
            **kwargs,
        )


async def run(xqute: Xqute, timeout_s: float = 60) -> None:
    await asyncio.wait_for(xqute.run_until_complete(), timeout_s)


def logging_wrapper(tool: str, folder: Path) -> tuple[Path, Path]:
    """An executable ``folder/tool`` that logs its arguments to the returned log
    file, one call a line, then execs the real ``tool``."""
    real = shutil.which(tool)
    if real is None:
        raise FileNotFoundError(f"{tool} not found: is the cluster installed?")
    log = folder / f"{tool}.calls"
    wrapper = folder / tool
    wrapper.write_text(f'#!/bin/sh\necho "$*" >> "{log}"\nexec "{real}" "$@"\n')
    wrapper.chmod(0o755)
    return wrapper, log


async def halt_kills_the_rest(
    cluster: Cluster, tmp_path: Path, never_fits: dict[str, Any]
) -> tuple[list[Job], Job]:
    """A job fails under error_strategy="halt" while three run and one waits in
    the queue (its ``never_fits`` resources): all four are killed in the cluster
    and end KILLED. Returns (the running ones, the queued one)."""
    xqute = cluster.engine(tmp_path, forks=5, error_strategy="halt")
    await xqute.feed("sleep 2; exit 1")
    running = [await xqute.feed(["sleep", "300"]) for _ in range(3)]
    queued = await xqute.feed(["true"], resources=never_fits)
    t0 = time.monotonic()
    await run(xqute)
    assert time.monotonic() - t0 < 30
    assert queued.read_status_file() is not None and "start" not in queued.read_info()
    assert [j.outcome for j in xqute.jobs[1:]] == [JobOutcome.KILLED] * 4
    assert cluster.alive([j.jid for j in xqute.jobs]) == []
    return running, queued


async def status_calls(
    cluster: Cluster, tmp_path: Path, tool: str, n: int, command: Any
) -> list[str]:
    """Run ``n`` jobs with ``tool`` (the status command) logging its calls:
    one call per poll cycle, not one per job. Returns the calls' arguments."""
    wrapper, log = logging_wrapper(tool, tmp_path)
    xqute = cluster.engine(
        tmp_path, forks=n, scheduler_opts={tool: str(wrapper), "poll_interval_s": 0.5}
    )
    for _ in range(n):
        await xqute.feed(command)
    t0 = time.monotonic()
    await run(xqute)
    elapsed = time.monotonic() - t0
    calls = log.read_text().splitlines()
    assert {j.rc for j in xqute.jobs} == {0}
    assert len(calls) <= elapsed / 0.5 + 2  # one per cycle, not one per job
    return calls
