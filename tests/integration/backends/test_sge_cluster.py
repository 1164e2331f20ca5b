"""What only the SGE backend does, against the real single-node Grid Engine (4
slots; the shared scenarios run in test_scenarios.py): options reaching the
directives, the older spellings, outcomes SGE decides (h_rt, a job deleted
while queued, the error state), array jobs, one qstat per poll cycle. A trivial
SGE job takes ~1.5 s here; every test is a few seconds."""

import asyncio
import os
import subprocess
import time

import pytest
from targets import array_jobs, status_calls

from xqute import JobOutcome, Xqute

pytestmark = [pytest.mark.sge, pytest.mark.timeout(300)]


async def run(xqute, timeout_s=60):
    await asyncio.wait_for(xqute.run_until_complete(), timeout_s)


async def when_running(job):
    while job.read_status_file() != 3 or job.jid is None:
        await asyncio.sleep(0.1)


async def show_when_running(sge, job):
    await when_running(job)
    return sge.show(job.jid)


async def test_options_and_resources_reach_the_directives(sge):
    xqute = sge.engine(
        forks=2, scheduler_opts={"q": "all.q", "l": ["h_rt=600"], "notify": False}
    )
    here = await xqute.feed("pwd")
    shown = await xqute.feed(["sleep", "2"], resources={"cpus": 2, "mem": "100M"})
    details = asyncio.ensure_future(show_when_running(sge, shown))
    await run(xqute)
    assert [j.rc for j in xqute.jobs] == [0, 0]
    # -cwd by default: the driver's directory, as on Slurm (SGE's own is $HOME)
    assert here.stdout_file.read_text() == f"{os.getcwd()}\n"
    text = await details
    assert f"job_name:                   {sge.prefix}-1" in text
    assert "hard_queue_list:            all.q" in text
    assert "h_rt=600" in text and "h_vmem=50M" in text  # per slot: 100M in all
    assert "parallel environment:  smp range: 2" in text
    assert f"stdout_path_list:           NONE:NONE:{shown.stdout_file}" in text


async def test_old_spellings_warn_and_work(sge, tmp_path):
    with pytest.warns(DeprecationWarning):
        xqute = Xqute(
            "sge",
            workdir=str(tmp_path / "xq"),
            jobname_prefix=sge.prefix,
            scheduler_forks=2,
            sge_q="all.q",
            sge_l=["h_rt=500", "h_vmem=300M"],
            sge_poll_interval_s=0.3,
        )
    job = await xqute.feed(["sleep", "2"])
    details = asyncio.ensure_future(show_when_running(sge, job))
    await run(xqute)
    assert job.rc == 0
    text = await details
    assert "hard_queue_list:            all.q" in text
    assert "h_rt=500" in text and "h_vmem=300M" in text


async def test_cluster_side_outcomes(sge, tmp_path):
    """h_rt, deleted outside xqute while queued, Eqw."""
    xqute = sge.engine(forks=2)
    timeout = await xqute.feed(["sleep", "60"], resources={"time_limit_s": 3})
    queued = await xqute.feed(["true"], resources={"cpus": 50})  # never fits
    bad_output = sge.engine(
        str(tmp_path / "bad"), scheduler_opts={"o": "/nonexistent/x.out"}
    )
    eqw = await bad_output.feed(["true"])

    async def delete():
        while queued.jid is None:
            await asyncio.sleep(0.1)
        subprocess.run(["qdel", queued.jid], capture_output=True)

    deleter = asyncio.ensure_future(delete())
    t0 = time.monotonic()
    await asyncio.gather(run(xqute), run(bad_output))
    await deleter
    assert time.monotonic() - t0 < 40
    assert (timeout.outcome, timeout.rc) == (JobOutcome.TIMEOUT, 137)
    assert "h_rt=3" in timeout.reason
    assert "xqute: sge: timeout" in timeout.stderr_file.read_text()
    assert queued.outcome is JobOutcome.CANCELLED and "queued" in queued.reason
    assert eqw.outcome is JobOutcome.FAILED and "Eqw" in eqw.reason
    assert "/nonexistent/x.out" in eqw.reason
    assert sge.alive([eqw.jid]) == []  # deleted, not left waiting forever


async def test_array_jobs_run_and_retry_per_job(sge):
    jobs = await array_jobs(sge, 4, 2, " $SGE_TASK_ID")
    bases = {j.jid.split(".")[0] for j in jobs if j.index != 2}
    assert len(bases) == 1
    assert "." not in jobs[2].jid  # retried alone, as a plain job
    assert jobs[1].stdout_file.read_text() == "task 1 2\n"


async def test_one_qstat_per_poll_cycle(sge, tmp_path):
    calls = await status_calls(sge, tmp_path, "qstat", 12, ["true"])
    assert set(calls) == {"-xml"}  # qstat lists every job: xqute filters
