"""Edges of the engine found in review: hooks at the very end, kills during a
submission, outside kills, a halted engine, a backend that fails to start."""

import asyncio
import os
import signal
import time

import pytest

from xqute import BackendError, JobOutcome, JobStatus, Xqute, XquteError
from xqute import simplug as pm
from xqute.outcome import Observation
from xqute.schedulers.local import LocalScheduler


async def test_the_last_jobs_async_hooks_finish(workdir):
    done = []

    class Slow:
        name = "slow-hook"

        @pm.impl
        async def on_job_succeeded(scheduler, job):
            await asyncio.sleep(0.1)
            done.append(job.index)

    xqute = Xqute(workdir=workdir, forks=3, plugins=[Slow])
    for _ in range(3):
        await xqute.feed(["true"])
    await xqute.run_until_complete()
    assert sorted(done) == [0, 1, 2]


class SlowSubmit(LocalScheduler):
    """Job 1's submission takes a while (a slow cluster controller)."""

    async def submit_job(self, job):
        if job.index == 1:
            await asyncio.sleep(0.3)
        return await super().submit_job(job)


async def test_a_job_killed_while_being_submitted_does_not_run_on(workdir):
    xqute = Xqute(
        scheduler=SlowSubmit,
        workdir=workdir,
        forks=2,
        error_strategy="halt",
        scheduler_opts={"kill_grace_s": 1},
    )
    await xqute.feed("exit 1")
    await xqute.feed(["sleep", "30.71"])
    t0 = time.monotonic()
    await xqute.run_until_complete()
    assert time.monotonic() - t0 < 6
    assert xqute.jobs[1].outcome is JobOutcome.KILLED


async def test_an_outside_kill_is_cancelled_and_retried(workdir):
    xqute = Xqute(
        workdir=workdir, error_strategy="retry", num_retries=1, retry_backoff_s=0
    )
    again = workdir.parent / "again"
    job = await xqute.feed(f"[ -e {again} ] && exit 0; touch {again}; sleep 30")
    run = asyncio.create_task(xqute.run_until_complete())
    while job.jid is None or job.status != JobStatus.RUNNING or not again.exists():
        await asyncio.sleep(0.02)
    os.killpg(int(job.jid), signal.SIGTERM)  # somebody else's kill
    await asyncio.wait_for(run, 15)
    assert job.trial_count == 1 and job.outcome is JobOutcome.SUCCEEDED
    first = (job.retry_dir / "1" / "job.info").read_text()
    assert "reason=killed" in first


async def test_feeding_a_halted_engine_is_an_error(workdir):
    xqute = Xqute(workdir=workdir, error_strategy="halt")
    await xqute.run_until_complete(keep_feeding=True)
    await xqute.feed("exit 1")
    while not xqute.halted:
        await asyncio.sleep(0.05)
    with pytest.raises(XquteError, match="halted"):
        await xqute.feed(["true"])
    await xqute.stop_feeding()


class NoStart(LocalScheduler):
    async def start(self):
        raise BackendError("the backend is not reachable")


async def test_a_backend_that_cannot_start_fails_every_feed(workdir):
    xqute = Xqute(scheduler=NoStart, workdir=workdir)
    for _ in range(2):  # no half-started engine that would hang
        with pytest.raises(BackendError, match="not reachable"):
            await asyncio.wait_for(xqute.feed(["true"]), 5)


def test_a_plain_backend_failure_keeps_the_wrappers_reason(workdir):
    """A cluster says FAILED for any non-zero exit; the wrapper knows it was its
    own timeout. A LOST (a dead container) is contradicted by an rc file."""
    sched = LocalScheduler(workdir=workdir)
    job = sched.create_job(0, ["true"])
    job.metadir.mkdir(parents=True)
    job.rc_file.write_text("124\n")
    job.info_file.write_text("start=1\nreason=timeout\nend=2\n")
    failed = Observation("done", JobOutcome.FAILED, "NonZeroExitCode", 124)
    assert sched.job_result(job, failed)[1] is JobOutcome.TIMEOUT
    oom = Observation("done", JobOutcome.OUT_OF_MEMORY, "exceeded memory limit")
    assert sched.job_result(job, oom)[1] is JobOutcome.OUT_OF_MEMORY
    job.info_file.write_text("start=1\nend=2\n")
    dead = Observation("done", JobOutcome.LOST, "the container is dead (Dead)")
    assert sched.job_result(job, dead) == (124, JobOutcome.FAILED, None)
    job.rc_file.unlink()  # no record at all: the backend's word stands
    assert sched.job_result(job, failed)[1] is JobOutcome.FAILED
    assert sched.job_result(job, dead)[1] is JobOutcome.LOST


async def test_local_backend_follows_and_kills_a_job_it_did_not_start(workdir):
    """What a restarted queue daemon does: the job outlived its first driver."""
    first = LocalScheduler(workdir=workdir, orphan_guard=False)
    await first.start()
    job = first.create_job(0, "sleep 30.72")
    await first.submit(job)
    while adopted_jid(job) is None:  # the wrapper writes its own pid
        await asyncio.sleep(0.02)
    second = LocalScheduler(workdir=workdir)  # knows nothing of that process
    adopted = second.create_job(0, "sleep 30.72")
    await second.start()
    assert await second.job_is_running(adopted)
    waiting = asyncio.create_task(second.wait_done(adopted))
    await asyncio.sleep(0.2)
    assert not waiting.done()
    await second.kill_jobs([adopted])
    await asyncio.wait_for(waiting, 5)  # event-driven, not after a poll interval
    assert adopted.read_rc_file() == 143
    assert not await second.job_is_running(adopted)
    await first.aclose()
    await second.aclose()


def adopted_jid(job):
    text = job.jid_file.read_text().strip() if job.jid_file.exists() else ""
    return text or None


async def test_a_local_job_writes_its_job_info(workdir):
    """README and docs/backends/local.md: every job's folder has job.info."""
    xqute = Xqute(workdir=workdir)
    job = await xqute.feed(["true"])
    await xqute.run_until_complete()
    info = job.read_info()
    assert set(info) >= {"start", "end", "host", "pid"}, info
    assert float(info["start"]) <= float(info["end"])
    assert info["pid"] == job.jid
