"""What the batch base and the poller add for cluster backends: waiting for
the rc of a job the cluster reports ended while its wrapper still records,
a limit on concurrent submit commands, and merged option spellings."""

import asyncio
import time

import psutil
import pytest
from test_batch_base import ToyBatch

from xqute import CommandFailed, ConfigError, JobOutcome, JobStatus, Xqute
from xqute.outcome import Observation
from xqute.schedulers.base import Scheduler

CANCELLED = Observation("done", JobOutcome.CANCELLED, "cancelled outside")


class Reporting(Scheduler):
    """Says every job was cancelled, at once."""

    name = "reporting"

    async def poll_jobs(self, jobs):
        return {job: CANCELLED for job in jobs}


def started_job(sched, status):
    job = sched.create_job(0, ["true"])
    job.prepare_metadir()
    job.write_status(status)
    job.status = JobStatus.RUNNING
    return job


async def test_waits_for_the_rc_of_a_job_still_recording(tmp_path):
    sched = Reporting(
        workdir=tmp_path, poll_interval_s=0.05, poll_interval_max_s=0.05, kill_grace_s=5
    )
    job = started_job(sched, JobStatus.RUNNING)
    loop = asyncio.get_running_loop()
    loop.call_later(0.2, job.rc_file.write_text, "143\n")
    t0 = time.monotonic()
    obs = await asyncio.wait_for(sched.wait_done(job), 5)
    assert 0.15 < time.monotonic() - t0 < 3
    assert sched.job_result(job, obs)[:2] == (143, JobOutcome.CANCELLED)
    await sched.aclose()


async def test_no_wait_when_the_wrapper_never_started_or_gives_up(tmp_path):
    sched = Reporting(
        workdir=tmp_path,
        poll_interval_s=0.05,
        poll_interval_max_s=0.05,
        lost_grace_s=0.3,
    )
    job = started_job(sched, JobStatus.SUBMITTED)
    t0 = time.monotonic()
    assert await asyncio.wait_for(sched.wait_done(job), 5) is CANCELLED
    assert time.monotonic() - t0 < 0.25
    job = started_job(sched, JobStatus.RUNNING)  # SIGKILLed: never writes an rc
    t0 = time.monotonic()
    assert await asyncio.wait_for(sched.wait_done(job), 5) is CANCELLED
    assert 0.25 < time.monotonic() - t0 < 3
    await sched.aclose()


async def test_submit_concurrency_limits_submit_commands(workdir):
    class Slow(ToyBatch):
        running = peak = 0

        async def run(self, argv, check=True):
            if argv[0] != "sh":
                return await super().run(argv, check)
            Slow.running += 1
            Slow.peak = max(Slow.peak, Slow.running)
            try:
                await asyncio.sleep(0.05)
                return await super().run(argv, check)
            finally:
                Slow.running -= 1

    xqute = Xqute(
        Slow,
        workdir=workdir,
        forks=8,
        scheduler_opts={
            "submit_concurrency": 2,
            "poll_interval_s": 0.1,
            "poll_interval_max_s": 0.1,
        },
    )
    for _ in range(8):
        await xqute.feed(["true"])
    await asyncio.wait_for(xqute.run_until_complete(), 20)
    assert Slow.peak == 2
    assert {j.outcome for j in xqute.jobs} == {JobOutcome.SUCCEEDED}
    with pytest.raises(ConfigError, match="submit_concurrency"):
        Xqute(Slow, scheduler_opts={"submit_concurrency": 0})
    with pytest.raises(ConfigError, match="cannot submit array jobs"):
        Xqute(Slow, scheduler_opts={"array": True})


async def test_a_job_killed_while_being_submitted_is_killed_once_submitted(workdir):
    class SlowSubmit(ToyBatch):
        async def submit_job(self, job):
            if job.index == 1:
                await asyncio.sleep(0.3)  # halted meanwhile
            return await super().submit_job(job)

    xqute = Xqute(
        scheduler=SlowSubmit,
        workdir=workdir,
        forks=2,
        error_strategy="halt",
        scheduler_opts={
            "poll_interval_s": 0.1,
            "poll_interval_max_s": 0.1,
            "kill_grace_s": 0.5,
        },
    )
    await xqute.feed("exit 1")
    await xqute.feed(["sleep", "30"])
    await asyncio.wait_for(xqute.run_until_complete(), 15)
    job = xqute.jobs[1]
    assert job.outcome is JobOutcome.KILLED
    for _ in range(250):
        try:
            if psutil.Process(int(job.jid)).status() == psutil.STATUS_ZOMBIE:
                break
        except psutil.NoSuchProcess:
            break
        await asyncio.sleep(0.02)
    else:
        pytest.fail("the job submitted after its kill is still running")


async def test_failing_accounting_does_not_stop_the_poller(tmp_path):
    class NoAccounting(Scheduler):
        name = "noaccounting"

        async def poll_jobs(self, jobs):
            return {job: Observation("gone") for job in jobs}

        async def resolve_gone(self, jobs):
            raise OSError("sacct: not found")

    sched = NoAccounting(
        workdir=tmp_path,
        poll_interval_s=0.05,
        poll_interval_max_s=0.05,
        lost_grace_s=0.1,
    )
    job = started_job(sched, JobStatus.RUNNING)
    obs = await asyncio.wait_for(sched.wait_done(job), 5)
    assert obs.outcome is JobOutcome.LOST
    await sched.aclose()


def test_a_timed_out_submission_is_retried_only_where_a_copy_is_detectable():
    """sbatch/qsub may have submitted the job before timing out: a retry would
    run it twice, the copy unseen. A backend that names its jobs can tell."""
    timed_out = CommandFailed(["submit"], None, "", "timed out after 60s")

    class Named(ToyBatch):
        already_submitted_errors = (r"already in use",)

    assert not ToyBatch().is_transient(timed_out)
    assert Named().is_transient(timed_out)
