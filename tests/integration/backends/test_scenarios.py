"""One behaviour suite for every backend (the ``backend`` fixture, see conftest):
the same scenarios through the public API, each run against local, Slurm, SGE,
ssh, podman, docker, the gcloud batch simulator and the queue daemon.

What a backend does differently (the rc of a job it killed, whether a job can
wait in its queue) is a setting of its ``Target``; everything else must hold
for all of them alike.
"""

from __future__ import annotations

import asyncio
import re
import shlex
import time

import pytest
from leftovers import no_processes

from xqute import JobOutcome, JobStatus, Xqute, simplug

pytestmark = pytest.mark.timeout(180)

#: arguments that a shell, a directive parser or a quoting bug would mangle
HOSTILE = [
    "a b",
    "  lead and trail  ",
    "it's",
    '"dq"',
    "$(touch $XQUTE_JOB_METADIR/pwned)",
    "`touch $XQUTE_JOB_METADIR/pwned`",
    "x\ny",
    "tab\there",
    "ünï ☃ 日本",
    "$HOME",
    ";|&><",
    "*",
    "\\",
    "#",
    "-n",
    "",
]


async def run(xqute: Xqute, timeout_s: float = 90) -> None:
    await asyncio.wait_for(xqute.run_until_complete(), timeout_s)


async def started(job, timeout_s: float = 60) -> None:
    """Until the job's command runs (its wrapper wrote RUNNING, the engine knows
    its native id), plus a moment for the command itself to start."""
    deadline = time.monotonic() + timeout_s
    while job.jid is None or job.read_status_file() != JobStatus.RUNNING:
        assert time.monotonic() < deadline, f"job {job.index} did not start"
        await asyncio.sleep(0.2)
    await asyncio.sleep(1)


async def left_in_backend(backend, ids: list[str], timeout_s: float = 15) -> list:
    """Those of ``ids`` the backend still lists after a short wait (a kill may
    take the backend a moment to finish: HTCondor lists removed jobs until they
    have left)."""
    deadline = time.monotonic() + timeout_s
    while (alive := backend.alive(ids)) and time.monotonic() < deadline:
        await asyncio.sleep(0.5)
    return alive


class Failures:
    """Records each failed trial: (index, outcome, rc, reason), one list per test."""

    name = "backend_suite_failures"
    seen: list[tuple[int, JobOutcome, int | None, str | None]] = []

    @simplug.impl
    async def on_job_failed(scheduler, job):
        Failures.seen.append((job.index, job.outcome, job.rc, job.reason))


async def test_rc_and_output(backend):
    xqute = backend.engine(forks=3)
    ok = await xqute.feed("echo out; echo err >&2")
    failed = await xqute.feed("echo failing; exit 3")
    env = await xqute.feed(
        ["sh", "-c", 'echo "$XQUTE_JOB_INDEX|$K"'], envs={"K": "v  w"}
    )
    await run(xqute)
    assert [j.rc for j in xqute.jobs] == [0, 3, 0]
    assert [j.outcome for j in xqute.jobs] == [
        JobOutcome.SUCCEEDED,
        JobOutcome.FAILED,
        JobOutcome.SUCCEEDED,
    ]
    assert [j.status for j in xqute.jobs] == [
        JobStatus.FINISHED,
        JobStatus.FAILED,
        JobStatus.FINISHED,
    ]
    assert ok.stdout_file.read_text() == "out\n"
    assert ok.stderr_file.read_text() == "err\n"
    assert failed.stdout_file.read_text() == "failing\n"
    assert env.stdout_file.read_text() == "2|v  w\n"
    for job in xqute.jobs:
        assert job.rc_file.read_text() == f"{job.rc}\n"
        assert job.jid_file.read_text().strip() == job.jid
    assert xqute.counts()["succeeded"] == 2 and xqute.counts()["failed"] == 1


async def test_hostile_arguments(backend, tmp_path):
    """User strings are data: as argv items, as shell words, as env values and
    in the job name, nothing is interpreted and nothing is lost."""
    marker = tmp_path / "pwned"
    hostile_name = (
        f'{backend.prefix}" --time=1 $(touch {marker}) `touch {marker}` #;\\ %j:@*?/'
    )
    xqute = backend.engine(forks=4, jobname_prefix=hostile_name)
    expected = "".join(f"{a}|" for a in HOSTILE)
    argv = await xqute.feed(["printf", "%s|", *HOSTILE])
    shell = await xqute.feed(shlex.join(["printf", "%s|", *HOSTILE]))
    raw = await xqute.feed(
        "echo \"it's\" '$(touch $XQUTE_JOB_METADIR/pwned)'; echo '\"#'"
    )
    env = await xqute.feed('printf "%s|" "$H"', envs={"H": "\n".join(HOSTILE)})
    await run(xqute)
    assert [j.rc for j in xqute.jobs] == [0] * 4, [j.reason for j in xqute.jobs]
    assert argv.stdout_file.read_text() == expected
    assert shell.stdout_file.read_text() == expected
    assert raw.stdout_file.read_text() == (
        "it's $(touch $XQUTE_JOB_METADIR/pwned)\n\"#\n"
    )
    assert env.stdout_file.read_text() == "\n".join(HOSTILE) + "|"
    assert not marker.exists()
    backend.check_job_name(argv.jid, f"{hostile_name}-0")
    assert not any((j.metadir / "pwned").exists() for j in xqute.jobs)


async def test_retry(backend):
    xqute = backend.engine(error_strategy="retry", num_retries=2, retry_backoff_s=0)
    job = await xqute.feed('[ -e "$XQUTE_JOB_METADIR/job.retry/2" ] || exit 5')
    await run(xqute)
    assert (job.rc, job.outcome, job.trial_count) == (0, JobOutcome.SUCCEEDED, 2)
    assert (job.retry_dir / "1" / "job.rc").read_text() == "5\n"
    first = (job.retry_dir / "1" / "job.jid").read_text().strip()
    second = (job.retry_dir / "2" / "job.jid").read_text().strip()
    assert len({first, second, job.jid}) == 3  # each trial a new submission
    assert xqute.counts()["retried"] == 2


async def test_timeout(backend):
    xqute = backend.engine(forks=2)
    slow = await xqute.feed(["sleep", f"300.{backend.token}"], timeout_s=2)
    quick = await xqute.feed(["true"], timeout_s=60)
    t0 = time.monotonic()
    await run(xqute)
    assert time.monotonic() - t0 < 60
    assert (slow.rc, slow.outcome) == (124, JobOutcome.TIMEOUT)
    assert (quick.rc, quick.outcome) == (0, JobOutcome.SUCCEEDED)
    assert await no_processes(f"300.{backend.token}") == []


async def test_cancel_outside(backend):
    """A job cancelled with the backend's own tool (scancel, qdel, kill, stop,
    delete, xqute cancel) ends CANCELLED, which the retry strategy retries."""
    Failures.seen = []
    xqute = backend.engine(
        error_strategy="retry", num_retries=1, retry_backoff_s=0, plugins=[Failures]
    )
    job = await xqute.feed(
        f'[ -e "$XQUTE_JOB_METADIR/job.retry/1" ] && exit 0; sleep 300.{backend.token}'
    )
    running = asyncio.ensure_future(run(xqute))
    await started(job)
    first_jid = job.jid
    backend.cancel_outside(first_jid)
    await running
    ((index, outcome, rc, reason),) = Failures.seen
    assert (index, outcome, rc) == (0, JobOutcome.CANCELLED, backend.cancelled_rc)
    assert re.search(backend.cancelled_reason, reason), reason
    # what the backend (or xqute for it) said in the trial's stderr
    assert backend.cancelled_stderr in (job.retry_dir / "1" / "job.stderr").read_text()
    assert (job.outcome, job.trial_count, job.rc) == (JobOutcome.SUCCEEDED, 1, 0)
    assert await left_in_backend(backend, [first_jid]) == []
    assert await no_processes(f"300.{backend.token}") == []


async def test_halt(backend):
    """A failure under "halt" kills every job in flight, in the backend too:
    running ones, one that ignores SIGTERM, and one still queued there."""
    xqute = backend.engine(forks=5, error_strategy="halt")
    failing = await xqute.feed("sleep 2; exit 1")
    running = [await xqute.feed(["sleep", f"300.{backend.token}"]) for _ in range(2)]
    stubborn = await xqute.feed(f"trap '' TERM; sleep 300.{backend.token}")
    queued = None
    if backend.never_fits is not None:
        queued = await xqute.feed(["true"], resources=backend.never_fits)
    t0 = time.monotonic()
    await run(xqute)
    assert time.monotonic() - t0 < 40
    assert xqute.halted
    assert (failing.outcome, failing.rc) == (JobOutcome.FAILED, 1)
    killed = [*running, stubborn]
    assert [j.outcome for j in killed] == [JobOutcome.KILLED] * 3
    assert [j.rc for j in killed] == [backend.killed_rc] * 2 + [backend.stubborn_rc]
    # recorded in the job's folder (by the wrapper, or the driver for it)
    assert [j.read_rc_file() for j in killed] == [j.rc for j in killed]
    if queued is not None:
        assert queued.outcome is JobOutcome.KILLED
        assert "start" not in queued.read_info()  # it never ran
        assert queued.rc == queued.read_rc_file() == backend.killed_queued_rc
    assert await left_in_backend(backend, [j.jid for j in xqute.jobs if j.jid]) == []
    assert await no_processes(f"300.{backend.token}") == []


async def test_driver_interrupted(backend, run_driver):
    """SIGINT to the driver kills every job in the backend, then it ends."""
    ids, rcs, out = await run_driver([["sleep", f"300.{backend.token}"]] * 3)
    assert "interrupted" in out
    assert await left_in_backend(backend, ids) == []
    assert rcs == [str(backend.killed_rc)] * 3
    assert await no_processes(f"300.{backend.token}") == []
