"""The command runner and the BatchScheduler base, with a toy batch system made
of real tools: `setsid` to submit, `ps` for status, `kill` to kill."""

import asyncio
import time

import pytest

from xqute import CommandFailed, JobOutcome, Xqute
from xqute.outcome import Observation
from xqute.schedulers.batch import BatchScheduler
from xqute.schedulers.helpers.command import run_command


async def test_run_command_ok_and_failure():
    result = await run_command(["sh", "-c", "echo out; echo err >&2"])
    assert (result.rc, result.stdout, result.stderr) == (0, "out\n", "err\n")
    with pytest.raises(CommandFailed) as info:
        await run_command(["sh", "-c", "echo boom >&2; exit 3"])
    assert info.value.rc == 3 and info.value.stderr == "boom\n"
    assert info.value.argv == ["sh", "-c", "echo boom >&2; exit 3"]
    result = await run_command(["sh", "-c", "exit 4"], check=False)
    assert result.rc == 4


async def test_run_command_missing_tool_and_timeout():
    with pytest.raises(CommandFailed) as info:
        await run_command(["/no/such/tool"])
    assert info.value.rc == 127 and "not found" in str(info.value)
    t0 = time.monotonic()
    with pytest.raises(CommandFailed, match="timed out") as info:
        await run_command(["sh", "-c", "sleep 30 & sleep 30"], timeout_s=0.1)
    assert info.value.rc is None and time.monotonic() - t0 < 5


class ToyBatch(BatchScheduler):
    """Jobs are detached bash processes; status is one `ps` for all pids."""

    name = "toy"
    tools = {"ps": "ps", "kill": "kill"}
    backend_options = {"ps": "", "kill": ""}
    status_calls = 0

    def submit_argv(self, job, script):
        return [
            "sh",
            "-c",
            'setsid bash "$1" </dev/null >/dev/null 2>&1 & echo $!',
            "_",
            str(script),
        ]

    def parse_submit(self, result):
        return result.stdout.strip()

    def status_argv(self, native_ids):
        ToyBatch.status_calls += 1
        return [self.tool("ps"), "-o", "pid=,stat=", "-p", ",".join(native_ids)]

    def check_status(self, result):
        if result.rc not in (0, 1):  # ps exits 1 when some pid is gone
            super().check_status(result)

    def parse_status(self, result, native_ids):
        out = {}
        for line in result.stdout.splitlines():
            pid, stat = line.split()
            out[pid] = (
                Observation("gone") if stat.startswith("Z") else Observation("running")
            )
        return out

    def kill_argv(self, native_ids):
        return [self.tool("kill"), "-TERM", *native_ids]

    def check_kill(self, result, native_ids):
        if result.rc not in (0, 1):  # kill exits 1 when some pid is gone
            super().check_kill(result, native_ids)


async def test_batch_base_end_to_end(workdir):
    ToyBatch.status_calls = 0
    xqute = Xqute(
        scheduler=ToyBatch,
        workdir=workdir,
        forks=20,
        scheduler_opts={"poll_interval_s": 0.1, "poll_interval_max_s": 0.2},
    )
    for i in range(20):
        await xqute.feed(f"sleep 0.3; echo {i}; exit {i % 2}")
    t0 = time.monotonic()
    await xqute.run_until_complete()
    elapsed = time.monotonic() - t0
    assert [j.rc for j in xqute.jobs] == [i % 2 for i in range(20)]
    assert xqute.jobs[3].stdout_file.read_text() == "3\n"
    assert [j.outcome for j in xqute.jobs[:2]] == [
        JobOutcome.SUCCEEDED,
        JobOutcome.FAILED,
    ]
    # one status command per cycle for all 20 jobs, not one per job
    assert ToyBatch.status_calls <= elapsed / 0.1 + 2


async def test_batch_base_kills_with_one_command(workdir):
    xqute = Xqute(
        scheduler=ToyBatch,
        workdir=workdir,
        forks=4,
        error_strategy="halt",
        scheduler_opts={
            "poll_interval_s": 0.1,
            "poll_interval_max_s": 0.1,
            "kill_grace_s": 1,
        },
    )
    await xqute.feed("sleep 0.2; exit 1")
    for _ in range(3):
        await xqute.feed(["sleep", "30.61"])
    await asyncio.wait_for(xqute.run_until_complete(), 20)
    assert [j.outcome for j in xqute.jobs[1:]] == [JobOutcome.KILLED] * 3
    assert {j.rc for j in xqute.jobs[1:]} == {143}


async def test_vanished_job_without_rc_is_lost(workdir):
    class Vanishing(ToyBatch):
        def submit_argv(self, job, script):  # a "job" that never runs the wrapper
            return ["sh", "-c", "setsid sleep 0.1 </dev/null >/dev/null 2>&1 & echo $!"]

    xqute = Xqute(
        scheduler=Vanishing,
        workdir=workdir,
        scheduler_opts={
            "poll_interval_s": 0.05,
            "poll_interval_max_s": 0.05,
            "lost_grace_s": 0.2,
        },
    )
    await xqute.feed(["true"])
    await asyncio.wait_for(xqute.run_until_complete(), 10)
    job = xqute.jobs[0]
    assert job.outcome is JobOutcome.LOST and "wrote no rc file" in job.reason


async def test_transient_submit_failures_are_retried(workdir, tmp_path):
    counter = tmp_path / "attempts"

    class Flaky(ToyBatch):
        transient_errors = (r"unable to contact controller",)
        submit_backoff_s = 0.05

        def submit_argv(self, job, script):
            return [
                "sh",
                "-c",
                f"n=$(cat {counter} 2>/dev/null || echo 0); echo $((n+1)) > {counter};"
                ' if [ "$n" -lt 2 ]; then'
                ' echo "error: Unable to contact controller" >&2;'
                ' exit 1; fi; setsid bash "$1" </dev/null >/dev/null 2>&1 & echo $!',
                "_",
                str(script),
            ]

    xqute = Xqute(
        scheduler=Flaky,
        workdir=workdir,
        scheduler_opts={"poll_interval_s": 0.1, "poll_interval_max_s": 0.1},
    )
    await xqute.feed(["true"])
    await xqute.run_until_complete()
    assert counter.read_text().strip() == "3" and xqute.jobs[0].rc == 0


async def test_permanent_submit_failure_fails_the_job_with_stderr(workdir):
    class Broken(ToyBatch):
        def submit_argv(self, job, script):
            return [
                "sh",
                "-c",
                "echo 'sbatch: error: invalid partition specified' >&2; exit 1",
            ]

    xqute = Xqute(scheduler=Broken, workdir=workdir)
    await xqute.feed(["true"])
    await xqute.run_until_complete()
    job = xqute.jobs[0]
    assert job.outcome is JobOutcome.SUBMIT_FAILED
    assert "invalid partition specified" in job.reason
    assert "invalid partition specified" in job.stderr_file.read_text()


async def test_a_job_seen_again_gets_a_fresh_lost_grace(workdir, tmp_path):
    """gone, then running again, then gone: the grace counts from the 2nd time."""
    flaky = tmp_path / "hide"
    done = tmp_path / "done"
    polls = []  # per status poll: whether the job was seen

    class Hiccup(ToyBatch):
        def parse_status(self, result, native_ids):
            seen = super().parse_status(result, native_ids)
            seen = {} if flaky.exists() else seen  # every job looks gone
            polls.append(bool(seen))
            return seen

    async def polls_until(seen, n, since=None):
        """Until n more polls have (or have not) seen the job and, if given,
        ``since`` + 0.65 s has passed (which is more than the grace)."""
        start = len(polls)
        for _ in range(1000):
            if [*polls[start:]].count(seen) >= n and (
                since is None or time.monotonic() - since >= 0.65
            ):
                return
            await asyncio.sleep(0.01)
        raise AssertionError(f"not {n} polls with seen={seen}: {polls}")

    xqute = Xqute(
        scheduler=Hiccup,
        workdir=workdir,
        scheduler_opts={
            "poll_interval_s": 0.05,
            "poll_interval_max_s": 0.05,
            "lost_grace_s": 0.5,
        },
    )
    await xqute.feed(f"while [ ! -e {done} ]; do sleep 0.02; done")
    run = asyncio.create_task(xqute.run_until_complete())
    try:
        await polls_until(True, 1)
        flaky.touch()  # gone for 0.25 s (< grace)
        first_gone = time.monotonic()
        await asyncio.sleep(0.25)
        flaky.unlink()  # running again, for two polls
        await polls_until(True, 2)
        flaky.touch()  # gone again, until more than the grace since it was first
        await polls_until(False, 2, since=first_gone)  # gone (~0.3 s < grace):
        flaky.unlink()  # it must not be failed as lost
        await polls_until(True, 1)
    finally:  # the job is detached (setsid): a failed check must not leave it looping
        done.touch()
    await asyncio.wait_for(run, 10)
    assert xqute.jobs[0].outcome is JobOutcome.SUCCEEDED


async def test_a_killed_job_gone_without_rc_is_settled_at_once(workdir):
    """A kill can land before the wrapper set its traps: it then writes nothing.
    The job was ours to kill; no waiting for the lost grace."""

    class NoWrapper(ToyBatch):
        def submit_argv(self, job, script):
            if job.index == 0:  # a "job" that never runs the wrapper
                return [
                    "sh",
                    "-c",
                    "setsid sleep 30.62 </dev/null >/dev/null 2>&1 & echo $!",
                ]
            return super().submit_argv(job, script)

    xqute = Xqute(
        scheduler=NoWrapper,
        workdir=workdir,
        forks=2,
        error_strategy="halt",
        scheduler_opts={
            "poll_interval_s": 0.1,
            "poll_interval_max_s": 0.1,
            "lost_grace_s": 30,
        },
    )
    await xqute.feed(["true"])
    await xqute.feed("sleep 0.2; exit 1")
    t0 = time.monotonic()
    await asyncio.wait_for(xqute.run_until_complete(), 10)
    assert time.monotonic() - t0 < 5
    assert xqute.jobs[0].outcome is JobOutcome.KILLED
