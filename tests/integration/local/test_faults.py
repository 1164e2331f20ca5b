"""Faults a run must survive: a full disk under the workdir (a real, small
tmpfs that the jobs fill up), and garbage in a job's rc file. The jobs that
cannot write end FAILED with a reason; the run ends normally."""

import subprocess
import sys
from collections import Counter

import pytest

from xqute import Xqute
from xqute.status import JobOutcome, JobStatus

# each job writes 16 KiB: the filesystem is full after about 15 of them
JOB = "head -c 16384 /dev/zero; echo done"


@pytest.mark.parametrize("strategy", ["ignore", "halt", "retry"])
async def test_a_full_disk_fails_the_jobs_that_cannot_write(small_fs, strategy):
    fs = small_fs("256k")
    xqute = Xqute(
        workdir=fs / "wd",
        forks=4,
        error_strategy=strategy,
        num_retries=1,
        retry_backoff_s=0,
    )
    for _ in range(150):
        await xqute.feed(JOB)
    await xqute.run_until_complete()  # no OSError
    states = Counter(job.status for job in xqute.jobs)
    failed = [j for j in xqute.jobs if j.outcome and j.outcome.is_failure]
    assert failed and any(j.outcome is JobOutcome.SUCCEEDED for j in xqute.jobs)
    disk_full = [j for j in failed if (j.reason or "").startswith("disk full: ")]
    assert disk_full, [(j.outcome, j.reason) for j in failed]
    killed = [j for j in failed if j.outcome is JobOutcome.KILLED]
    if strategy == "halt":  # the first failure kills the jobs in flight
        assert xqute.halted and len(failed) - len(killed) == 1
        assert states[JobStatus.QUEUED] > 0  # never submitted, as halting says
    else:
        assert not killed  # no innocent job is killed
        assert states[JobStatus.QUEUED] == 0 and states[JobStatus.RUNNING] == 0
        assert len(failed) + states[JobStatus.FINISHED] == 150


def test_the_cli_on_a_full_disk_says_so(small_fs, tmp_path):
    fs = small_fs("256k")
    jobs = tmp_path / "jobs.txt"
    jobs.write_text(f"{JOB}\n" * 40)
    out = subprocess.run(
        [sys.executable, "-m", "xqute", "run", str(jobs), "-w", str(fs / "wd"),
         "-j", "2", "--json"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert out.returncode == 1, out.stderr
    assert "Traceback" not in out.stderr
    assert '"reason": "disk full: ' in out.stdout


async def test_garbage_in_a_jobs_rc_file_fails_it_with_a_reason(tmp_path):
    """The job writes garbage into its job.rc and SIGKILLs its wrapper."""
    xqute = Xqute(workdir=tmp_path / "wd", forks=2)
    bad = await xqute.feed(
        "printf '\\377\\376\\000garbage' > \"$XQUTE_JOB_METADIR/job.rc\";"
        ' kill -KILL "$(cat "$XQUTE_JOB_METADIR/job.jid")"; sleep 5'
    )
    good = await xqute.feed(["true"])
    await xqute.run_until_complete()  # no UnicodeDecodeError
    assert good.outcome is JobOutcome.SUCCEEDED
    assert bad.outcome is not None and bad.outcome.is_failure
    assert bad.status is JobStatus.FAILED and bad.reason
