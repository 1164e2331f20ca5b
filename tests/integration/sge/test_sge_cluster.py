"""The SGE backend against a real single-node Grid Engine (4 slots), through the
public API. A trivial SGE job takes ~1.5 s here; every test is a few seconds."""

import asyncio
import os
import subprocess
import time

import pytest
from cluster_helpers import halt_kills_the_rest, run, status_calls

from xqute import JobOutcome, Xqute

pytestmark = pytest.mark.sge


async def when_running(job):
    while job.read_status_file() != 3 or job.jid is None:
        await asyncio.sleep(0.1)


async def test_jobs_succeed_and_fail_and_options_reach_directives(sge, tmp_path):
    xqute = sge.engine(
        tmp_path,
        forks=3,
        scheduler_opts={"q": "all.q", "l": ["h_rt=600"], "notify": False},
    )
    await xqute.feed("echo out; echo err >&2; pwd")
    await xqute.feed("echo failing; exit 3")
    shown = await xqute.feed(
        ["sh", "-c", "sleep 2; printf '%s|' \"$@\"", "_", "a b", "$HOME"],
        resources={"cpus": 2, "mem": "100M"},
    )

    async def look():
        await when_running(shown)
        return sge.show(shown.jid)

    details = asyncio.ensure_future(look())
    await run(xqute)
    ok, fail, _ = xqute.jobs
    assert [j.rc for j in xqute.jobs] == [0, 3, 0]
    assert [j.outcome for j in xqute.jobs] == [
        JobOutcome.SUCCEEDED,
        JobOutcome.FAILED,
        JobOutcome.SUCCEEDED,
    ]
    # -cwd by default: the driver's directory, as on Slurm (SGE's own is $HOME)
    assert ok.stdout_file.read_text().splitlines() == ["out", os.getcwd()]
    assert ok.stderr_file.read_text() == "err\n"
    assert fail.stdout_file.read_text() == "failing\n"
    assert shown.stdout_file.read_text() == "a b|$HOME|"
    text = await details
    assert f"job_name:                   {sge.prefix}-2" in text
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
    details = asyncio.ensure_future(_show_when_running(sge, job))
    await run(xqute)
    assert job.rc == 0
    text = await details
    assert "hard_queue_list:            all.q" in text
    assert "h_rt=500" in text and "h_vmem=300M" in text


async def _show_when_running(sge, job):
    await when_running(job)
    return sge.show(job.jid)


async def test_hostile_job_name_and_command_cannot_break_the_script(sge, tmp_path):
    marker = tmp_path / "pwned"
    hostile = f'{sge.prefix} "$(touch {marker})" #:@*?/\\'
    xqute = sge.engine(tmp_path, jobname_prefix=hostile)
    await xqute.feed(f"echo \"it's\" '$(touch {marker})'; echo '\"#'")
    await run(xqute)
    job = xqute.jobs[0]
    assert job.rc == 0 and not marker.exists()
    assert job.stdout_file.read_text() == f"it's $(touch {marker})\n\"#\n"


async def test_cluster_side_outcomes(sge, tmp_path):
    """h_rt, deleted outside xqute while running and while queued, Eqw."""
    xqute = sge.engine(tmp_path, forks=5)
    timeout = await xqute.feed(["sleep", "60"], resources={"time_limit_s": 3})
    running = await xqute.feed(["sleep", "60"])
    queued = await xqute.feed(["true"], resources={"cpus": 50})  # never fits
    bad_output = sge.engine(tmp_path, "bad", scheduler_opts={"o": "/nonexistent/x.out"})
    eqw = await bad_output.feed(["true"])

    async def delete():
        await when_running(running)
        while queued.jid is None:
            await asyncio.sleep(0.1)
        subprocess.run(["qdel", running.jid, queued.jid], capture_output=True)

    deleter = asyncio.ensure_future(delete())
    t0 = time.monotonic()
    await asyncio.gather(run(xqute), run(bad_output))
    await deleter
    assert time.monotonic() - t0 < 40
    assert (timeout.outcome, timeout.rc) == (JobOutcome.TIMEOUT, 137)
    assert "h_rt=3" in timeout.reason
    assert "xqute: sge: timeout" in timeout.stderr_file.read_text()
    assert (running.outcome, running.rc) == (JobOutcome.CANCELLED, 137)
    assert "qdel outside xqute" in running.stderr_file.read_text()
    assert queued.outcome is JobOutcome.CANCELLED and "queued" in queued.reason
    assert eqw.outcome is JobOutcome.FAILED and "Eqw" in eqw.reason
    assert "/nonexistent/x.out" in eqw.reason
    assert sge.alive([eqw.jid]) == []  # deleted, not left waiting forever


async def test_halt_kills_the_rest_in_the_cluster(sge, tmp_path):
    running, queued = await halt_kills_the_rest(sge, tmp_path, {"cpus": 50})
    # recorded by the driver: qdel is a SIGKILL, no trap runs
    assert [j.rc for j in running] == [137] * 3
    assert [j.read_rc_file() for j in running] == [137] * 3
    assert queued.rc == 137 and queued.read_rc_file() == 137


async def test_retries_resubmit(sge, tmp_path):
    xqute = sge.engine(
        tmp_path, error_strategy="retry", num_retries=1, retry_backoff_s=0
    )
    job = await xqute.feed('[ -e "$XQUTE_JOB_METADIR/job.retry/1" ] || exit 5')
    await run(xqute)
    first = (job.retry_dir / "1" / "job.jid").read_text().strip()
    assert job.rc == 0 and job.trial_count == 1 and first != job.jid


async def test_array_jobs_run_and_retry_per_job(sge, tmp_path):
    xqute = sge.engine(
        tmp_path,
        forks=4,
        error_strategy="retry",
        num_retries=1,
        retry_backoff_s=0,
        scheduler_opts={"array": True},
    )
    retried = '[ -e "$XQUTE_JOB_METADIR/job.retry" ]'
    for i in range(4):
        await xqute.feed(f"echo task {i} $SGE_TASK_ID; {retried} || exit {int(i == 2)}")
    await run(xqute)
    assert [j.outcome for j in xqute.jobs] == [JobOutcome.SUCCEEDED] * 4
    bases = {j.jid.split(".")[0] for j in xqute.jobs if j.index != 2}
    assert len(bases) == 1
    assert "." not in xqute.jobs[2].jid  # retried alone, as a plain job
    assert xqute.jobs[1].stdout_file.read_text() == "task 1 2\n"


async def test_one_qstat_per_poll_cycle(sge, tmp_path):
    calls = await status_calls(sge, tmp_path, "qstat", 12, ["true"])
    assert set(calls) == {"-xml"}  # qstat lists every job: xqute filters


async def test_sigint_deletes_every_job_in_the_cluster(sge, interrupt_driver):
    ids, rcs, out = await interrupt_driver("sge", sge.prefix)
    assert "interrupted" in out
    assert sge.alive(ids) == []
    assert rcs == ["137"] * 3
