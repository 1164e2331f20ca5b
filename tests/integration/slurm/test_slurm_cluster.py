"""The Slurm backend against a real single-node cluster, through the public API.

Each test is a few seconds, except ``test_cluster_side_outcomes``, which waits
for Slurm's time limit (whole minutes, checked every ~30 s: about 70 s); the
cancel and memory cases share that run.
"""

import asyncio
import subprocess
import time

import pytest
from cluster_helpers import halt_kills_the_rest, run, status_calls

from xqute import JobOutcome, Xqute

pytestmark = pytest.mark.slurm


async def test_jobs_succeed_and_fail_and_options_reach_directives(slurm, tmp_path):
    xqute = slurm.engine(
        tmp_path,
        forks=3,
        scheduler_opts={"partition": "debug", "time": "00:05:00", "comment": "a b"},
    )
    await xqute.feed("echo out; echo err >&2")
    await xqute.feed("echo failing; exit 3")
    await xqute.feed(
        ["printf", "%s|", "a b", "$HOME"], resources={"cpus": 2, "mem": 100}
    )
    await run(xqute)
    ok, fail, argv = xqute.jobs
    assert [j.rc for j in xqute.jobs] == [0, 3, 0]
    assert [j.outcome for j in xqute.jobs] == [
        JobOutcome.SUCCEEDED,
        JobOutcome.FAILED,
        JobOutcome.SUCCEEDED,
    ]
    assert ok.stdout_file.read_text() == "out\n"
    assert ok.stderr_file.read_text() == "err\n"
    assert fail.stdout_file.read_text() == "failing\n"
    assert argv.stdout_file.read_text() == "a b|$HOME|"
    shown = slurm.show(argv.jid)
    assert f"JobName={slurm.prefix}-2" in shown
    assert "Partition=debug" in shown and "TimeLimit=00:05:00" in shown
    assert "NumCPUs=2" in shown and "MinMemoryNode=100M" in shown
    assert "Comment=a b" in shown
    assert f"StdErr={argv.stderr_file}" in shown


async def test_old_spellings_warn_and_reach_directives(slurm, tmp_path):
    with pytest.warns(DeprecationWarning):
        xqute = Xqute(
            "slurm",
            workdir=str(tmp_path / "xq"),
            jobname_prefix=slurm.prefix,
            scheduler_forks=2,
            sbatch_partition="debug",
            slurm_time="00:07:00",
            slurm_poll_interval_s=0.3,
        )
    await xqute.feed(["true"])
    await run(xqute)
    assert xqute.jobs[0].rc == 0
    assert "TimeLimit=00:07:00" in slurm.show(xqute.jobs[0].jid)


async def test_hostile_job_name_and_command_cannot_break_the_script(slurm, tmp_path):
    marker = tmp_path / "pwned"
    hostile = f'{slurm.prefix}" --time=1 $(touch {marker}) `touch {marker}` #;\\ %j'
    xqute = slurm.engine(tmp_path, jobname_prefix=hostile)
    await xqute.feed(f"echo \"it's\" '$(touch {marker})'; echo '\"#'")
    await run(xqute)
    job = xqute.jobs[0]
    assert job.rc == 0 and not marker.exists()
    assert job.stdout_file.read_text() == f"it's $(touch {marker})\n\"#\n"
    shown = slurm.show(job.jid)
    assert f"JobName={hostile}-0" in shown and "TimeLimit=00:01:00" not in shown


async def test_cluster_side_outcomes(slurm, tmp_path):
    """Time limit, cancelled outside xqute, and over the memory limit."""
    xqute = slurm.engine(tmp_path, forks=3, scheduler_opts={"kill_grace_s": 1})
    timeout = await xqute.feed(["sleep", "300"], resources={"time_limit_s": 30})
    cancelled = await xqute.feed(["sleep", "300"])
    hog = (
        "import time; x = bytearray(400 << 20); x[::4096] = b'1' * len(x[::4096]);"
        " time.sleep(60)"
    )
    memory = await xqute.feed(["python3", "-c", hog], resources={"mem": "50M"})

    async def cancel_when_running():
        while cancelled.read_status_file() is None or cancelled.jid is None:
            await asyncio.sleep(0.2)
        await asyncio.sleep(1)
        subprocess.run(["scancel", cancelled.jid], check=True)

    canceller = asyncio.ensure_future(cancel_when_running())
    t0 = time.monotonic()
    await run(xqute, timeout_s=150)
    await canceller
    assert "TimeLimit=00:01:00" in slurm.show(timeout.jid)  # whole minutes
    assert (timeout.outcome, timeout.rc) == (JobOutcome.TIMEOUT, 143)
    assert "DUE TO TIME LIMIT" in timeout.stderr_file.read_text()
    assert (cancelled.outcome, cancelled.rc) == (JobOutcome.CANCELLED, 143)
    assert "outside xqute" in cancelled.reason
    assert "CANCELLED AT" in cancelled.stderr_file.read_text()
    assert memory.outcome is JobOutcome.OUT_OF_MEMORY and memory.rc == 137
    assert "exceeded memory limit" in memory.reason
    assert time.monotonic() - t0 < 130


async def test_halt_kills_the_rest_in_the_cluster(slurm, tmp_path):
    # 8 CPUs, 4 in use: the last job stays pending
    running, queued = await halt_kills_the_rest(slurm, tmp_path, {"cpus": 8})
    assert all(j.rc and j.rc > 128 for j in running)
    # cancelled while pending: Slurm says CANCELLED 0:0, the rc is xqute's
    assert queued.rc == 143 and queued.read_rc_file() == 143


async def test_retries_resubmit(slurm, tmp_path):
    xqute = slurm.engine(
        tmp_path, error_strategy="retry", num_retries=2, retry_backoff_s=0
    )
    job = await xqute.feed('[ -e "$XQUTE_JOB_METADIR/job.retry/2" ] || exit 5')
    await run(xqute)
    first = (job.retry_dir / "1" / "job.jid").read_text().strip()
    second = (job.retry_dir / "2" / "job.jid").read_text().strip()
    assert job.rc == 0 and job.trial_count == 2
    assert len({first, second, job.jid}) == 3


async def test_array_jobs_run_and_retry_per_job(slurm, tmp_path):
    xqute = slurm.engine(
        tmp_path,
        forks=5,
        error_strategy="retry",
        num_retries=1,
        retry_backoff_s=0,
        scheduler_opts={"array": True},
    )
    retried = '[ -e "$XQUTE_JOB_METADIR/job.retry" ]'
    for i in range(5):
        await xqute.feed(
            f"echo task {i} $SLURM_ARRAY_TASK_ID; {retried} || exit {int(i == 3)}"
        )
    await run(xqute)
    assert [j.outcome for j in xqute.jobs] == [JobOutcome.SUCCEEDED] * 5
    bases = {j.jid.split("_")[0] for j in xqute.jobs if j.index != 3}
    assert len(bases) == 1  # one array job
    assert "_" not in xqute.jobs[3].jid  # retried alone, as a plain job
    assert xqute.jobs[1].stdout_file.read_text() == "task 1 1\n"
    first = (xqute.jobs[3].retry_dir / "1" / "job.jid").read_text().strip()
    assert first == f"{bases.pop()}_3"


async def test_one_squeue_per_poll_cycle(slurm, tmp_path):
    n = 30
    calls = await status_calls(slurm, tmp_path, "squeue", n, ["sleep", "1"])
    widest = max(len(c.split("--jobs=")[1].split()[0].split(",")) for c in calls)
    assert widest == n


async def test_sigint_kills_every_job_in_the_cluster(slurm, interrupt_driver):
    ids, rcs, out = await interrupt_driver("slurm", slurm.prefix)
    assert "interrupted" in out
    assert slurm.alive(ids) == []
    assert rcs == ["143"] * 3
