"""Array jobs without a cluster: task id parsing, the gathering window, the
array script, and the whole array path through a toy batch system."""

import asyncio
import os
import subprocess
import time

import pytest
from test_batch_base import ToyBatch

from xqute import JobOutcome, JobStatus, Xqute
from xqute.schedulers.arrays import ArrayBatcher, expand_ranges
from xqute.schedulers.slurm import SlurmScheduler, expand_slurm_ids


def test_expand_ranges_and_slurm_ids():
    assert expand_ranges("1") == [1]
    assert expand_ranges("2,3") == [2, 3]
    assert expand_ranges("1-4:1") == [1, 2, 3, 4]
    assert expand_ranges("1-7:2") == [1, 3, 5, 7]
    assert expand_ranges("2-3%1") == [2, 3]
    assert expand_ranges("1,5-6,x") == [1, 5, 6]
    assert expand_slurm_ids("42") == ["42"]
    assert expand_slurm_ids("42_3") == ["42_3"]
    assert expand_slurm_ids("297_[2-3%1]") == ["297_2", "297_3"]
    assert expand_slurm_ids("9_[1,4-5]") == ["9_1", "9_4", "9_5"]


class Recorder:
    def __init__(self, fail=False, delay=0.0):
        self.calls, self.killed, self.fail, self.delay = [], [], fail, delay

    async def submit_many(self, items):
        self.calls.append([job for job, _ in items])
        base = len(self.calls)
        await asyncio.sleep(self.delay)
        if self.fail:
            raise OSError("controller down")
        return [f"{base}_{i}" for i in range(len(items))]

    async def kill(self, ids):
        self.killed.extend(ids)


async def test_batcher_gathers_within_the_window_and_by_key():
    rec = Recorder()
    batcher = ArrayBatcher(rec.submit_many, rec.kill, window_s=0.05, max_size=10)
    ids = await asyncio.gather(
        *(batcher.submit(i % 2, f"job{i}", None) for i in range(6))
    )
    assert sorted(len(c) for c in rec.calls) == [3, 3]
    assert rec.calls[0] == ["job0", "job2", "job4"]
    assert ids[:2] == ["1_0", "2_0"]


async def test_batcher_flushes_at_max_size_without_waiting():
    rec = Recorder()
    batcher = ArrayBatcher(rec.submit_many, rec.kill, window_s=30, max_size=3)
    t0 = time.monotonic()
    ids = await asyncio.gather(*(batcher.submit(None, i, None) for i in range(3)))
    assert ids == ["1_0", "1_1", "1_2"] and time.monotonic() - t0 < 5
    await batcher.aclose()


async def test_batcher_failure_reaches_every_job():
    batcher = ArrayBatcher(Recorder(fail=True).submit_many, None, 0.01, 5)
    results = await asyncio.gather(
        *(batcher.submit(None, i, None) for i in range(2)), return_exceptions=True
    )
    assert [type(r) for r in results] == [OSError, OSError]


async def test_batcher_cancelled_submitters():
    rec = Recorder(delay=0.2)
    batcher = ArrayBatcher(rec.submit_many, rec.kill, window_s=0.05, max_size=10)
    waiting = asyncio.ensure_future(batcher.submit(None, "early", None))
    await asyncio.sleep(0)
    waiting.cancel()  # before the flush: never submitted
    kept = asyncio.ensure_future(batcher.submit(None, "kept", None))
    gone = asyncio.ensure_future(batcher.submit(None, "gone", None))
    await asyncio.sleep(0.1)  # flushed, submission under way
    gone.cancel()
    assert await kept == "1_0"
    await batcher.aclose()
    assert rec.calls == [["kept", "gone"]]
    assert rec.killed == ["1_1"]  # submitted for nobody: killed at once
    with pytest.raises(asyncio.CancelledError):
        await waiting


def test_array_script_runs_each_tasks_own_script(tmp_path):
    sched = ToyArrays(workdir=tmp_path)
    scripts = []
    for i in range(3):
        script = tmp_path / f"s{i}.sh"
        script.write_text(f"echo job {i} $0\n")
        scripts.append(script)
    text = sched.array_script_text([None] * 3, scripts, tmp_path)
    array = tmp_path / "array.sh"
    array.write_text(text)
    for task, i in ((5, 0), (7, 2)):
        out = subprocess.run(
            ["bash", str(array)],
            env={**os.environ, "TOY_TASK": str(task)},
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        assert out == f"job {i} {scripts[i]}\n"


class ToyArrays(ToyBatch):
    """Array tasks are detached bash processes with TOY_TASK set."""

    name = "toyarrays"
    supports_arrays = True
    array_task_env = "TOY_TASK"
    arrays = 0

    def array_task_ids(self, count):
        return list(range(5, 5 + count))

    def array_header(self, jobs, array_dir):
        return [f"# {len(jobs)} tasks"]

    def array_submit_argv(self, jobs, script):
        ToyArrays.arrays += 1
        first, last = 5, 4 + len(jobs)
        loop = (
            f"for t in $(seq {first} {last}); do TOY_TASK=$t setsid bash {script}"
            " </dev/null >/dev/null 2>&1 & echo $!; done"
        )
        return ["sh", "-c", loop]

    def parse_array_submit(self, result, task_ids):
        return result.stdout.split()


async def test_array_path_end_to_end(workdir):
    ToyArrays.arrays = 0
    xqute = Xqute(
        ToyArrays,
        workdir=workdir,
        forks=6,
        error_strategy="retry",
        num_retries=1,
        retry_backoff_s=0,
        scheduler_opts={
            "array": True,
            "poll_interval_s": 0.1,
            "poll_interval_max_s": 0.1,
        },
    )
    for i in range(6):
        retried = '[ -e "$XQUTE_JOB_METADIR/job.retry" ]'
        await xqute.feed(f"echo {i}; {retried} || exit {int(i == 4)}")
    await asyncio.wait_for(xqute.run_until_complete(), 20)
    assert [j.outcome for j in xqute.jobs] == [JobOutcome.SUCCEEDED] * 6
    assert xqute.jobs[4].trial_count == 1  # retried alone, not with the array
    assert ToyArrays.arrays == 1
    assert [j.stdout_file.read_text() for j in xqute.jobs] == [
        f"{i}\n" for i in range(6)
    ]


async def test_jobs_killed_during_an_array_submission_cost_one_kill(workdir):
    """A halt while an array is being submitted: one kill command for the group;
    the engine's own kill of each job, which follows, sends nothing more."""

    class Slow(ToyArrays):
        kills = []

        def array_submit_argv(self, jobs, script):
            sh, flag, loop = super().array_submit_argv(jobs, script)
            return [sh, flag, f"sleep 0.2; {loop}"]

        def kill_argv(self, native_ids):
            Slow.kills.append(list(native_ids))
            return super().kill_argv(native_ids)

    sched = Slow(workdir=workdir, forks=4, kill_grace_s=0.5, array=True)
    await sched.start()
    jobs = [sched.create_job(i, ["sleep", "30"]) for i in range(4)]
    submitting = [asyncio.ensure_future(sched.submit(job)) for job in jobs]
    await asyncio.sleep(0.15)  # gathered, the array command under way
    for job in jobs:
        job.advance(JobStatus.KILLING)  # what the engine does on halt
    for job, submission in zip(jobs, submitting, strict=True):
        await submission
        await sched.kill_jobs([job])  # what the engine does next
    assert Slow.kills == [[job.jid for job in jobs]]  # each job's wrapper: TERM
    await sched.kill_jobs(jobs)  # a later kill is sent again
    assert len(Slow.kills) == 2
    await sched.aclose()


def test_directives_are_rendered_once_per_resources(tmp_path, monkeypatch):
    calls = []
    real = SlurmScheduler.job_directives
    monkeypatch.setattr(
        SlurmScheduler,
        "job_directives",
        lambda self, job: calls.append(job) or real(self, job),
    )
    sched = SlurmScheduler(workdir=tmp_path, array=True, forks=5)
    jobs = [sched.create_job(i, ["true"], resources={"cpus": 2}) for i in range(5)]
    keys = {sched.array_key(job) for job in jobs}
    headers = [sched.script_header(job) for job in jobs]
    assert len(keys) == 1 and len(calls) == 1
    assert '#SBATCH --cpus-per-task="2"' in headers[4]
    assert '#SBATCH --job-name="xqute-4"' in headers[4]
    sched.array_key(sched.create_job(5, ["true"]))  # other resources
    assert len(calls) == 2
