"""What only the Slurm backend does, against the real single-node cluster (the
shared scenarios run in test_scenarios.py): options reaching the directives,
the older spellings, outcomes Slurm itself decides, array jobs, one squeue per
poll cycle. ``test_cluster_side_outcomes`` waits for Slurm's time limit (whole
minutes, checked every ~30 s: about 70 s); the others take a few seconds."""

import asyncio
import time

import pytest
from targets import array_jobs, status_calls

from xqute import JobOutcome, Xqute

pytestmark = [pytest.mark.slurm, pytest.mark.timeout(300)]


async def run(xqute, timeout_s=60):
    await asyncio.wait_for(xqute.run_until_complete(), timeout_s)


async def test_options_and_resources_reach_the_directives(slurm):
    xqute = slurm.engine(
        scheduler_opts={"partition": "debug", "time": "00:05:00", "comment": "a b"}
    )
    job = await xqute.feed(["true"], resources={"cpus": 2, "mem": 100})
    await run(xqute)
    assert job.rc == 0
    shown = slurm.show(job.jid)
    assert f"JobName={slurm.prefix}-0" in shown
    assert "Partition=debug" in shown and "TimeLimit=00:05:00" in shown
    assert "NumCPUs=2" in shown and "MinMemoryNode=100M" in shown
    assert "Comment=a b" in shown
    assert f"StdErr={job.stderr_file}" in shown


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


async def test_cluster_side_outcomes(slurm):
    """Slurm's time limit, and its memory limit."""
    xqute = slurm.engine(forks=2)
    timeout = await xqute.feed(["sleep", "300"], resources={"time_limit_s": 30})
    hog = (
        "import time; x = bytearray(400 << 20); x[::4096] = b'1' * len(x[::4096]);"
        " time.sleep(60)"
    )
    memory = await xqute.feed(["python3", "-c", hog], resources={"mem": "50M"})
    t0 = time.monotonic()
    await run(xqute, timeout_s=150)
    assert "TimeLimit=00:01:00" in slurm.show(timeout.jid)  # whole minutes
    assert (timeout.outcome, timeout.rc) == (JobOutcome.TIMEOUT, 143)
    assert "DUE TO TIME LIMIT" in timeout.stderr_file.read_text()
    assert memory.outcome is JobOutcome.OUT_OF_MEMORY and memory.rc == 137
    assert "exceeded memory limit" in memory.reason
    assert time.monotonic() - t0 < 130


async def test_array_jobs_run_and_retry_per_job(slurm):
    jobs = await array_jobs(slurm, 5, 3, " $SLURM_ARRAY_TASK_ID")
    bases = {j.jid.split("_")[0] for j in jobs if j.index != 3}
    assert len(bases) == 1  # one array job
    assert "_" not in jobs[3].jid  # retried alone, as a plain job
    assert jobs[1].stdout_file.read_text() == "task 1 1\n"
    first = (jobs[3].retry_dir / "1" / "job.jid").read_text().strip()
    assert first == f"{bases.pop()}_3"


async def test_one_squeue_per_poll_cycle(slurm, tmp_path):
    n = 30
    calls = await status_calls(slurm, tmp_path, "squeue", n, ["sleep", "1"])
    widest = max(len(c.split("--jobs=")[1].split()[0].split(",")) for c in calls)
    assert widest == n
