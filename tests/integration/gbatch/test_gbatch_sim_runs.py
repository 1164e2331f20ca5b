"""The gbatch backend end to end through the gcloud batch simulator, with a gs://
workdir, through the public API."""

from __future__ import annotations

import asyncio
import json
import time

import psutil
import pytest

from xqute import ConfigError, JobOutcome, Xqute

pytestmark = pytest.mark.gbatch

FAST = {"poll_interval_s": 0.1, "poll_interval_max_s": 0.3, "kill_grace_s": 1}
WHERE = {"project": "xq-proj", "location": "us-central1"}


def xqute(sim, forks=4, **kwargs):
    opts = {**WHERE, "gs_client": sim.client, **FAST, **kwargs.pop("opts", {})}
    return Xqute(
        scheduler="gbatch",
        workdir=sim.workdir,
        forks=forks,
        jobname_prefix="xqtest",
        scheduler_opts=opts,
        **kwargs,
    )


def verbs(sim):
    return [argv[2] for argv in sim.calls() if argv[:2] == ["batch", "jobs"]]


async def test_end_to_end_with_a_gs_workdir(sim):
    outdir = f"gs://xqute-test/{sim.prefix}/out"
    ref = sim.local(f"gs://xqute-test/{sim.prefix}/ref")
    ref.mkdir(parents=True)
    (ref / "genome.fa").write_text(">chr1\nACGT\n")
    x = xqute(
        sim,
        opts={
            "outdir": outdir,
            "fast_mount": f"gs://xqute-test/{sim.prefix}/ref:/mnt/ref",
            "taskGroups": [
                {"taskSpec": {"environment": {"variables": {"FROM_CONFIG": "cfg"}}}}
            ],
            "labels": {"team": "qa"},
        },
    )
    await x.feed("echo out; echo err >&2; exit 3")
    await x.feed('echo "$FROM_CONFIG|$JOB_VAR|$(pwd)"', envs={"JOB_VAR": "job"})
    await x.feed('cat /mnt/ref/genome.fa > "$XQUTE_OUTDIR/copy.fa"')
    await x.run_until_complete()
    fail, env, mounts = x.jobs
    assert (fail.rc, fail.outcome) == (3, JobOutcome.FAILED)
    assert fail.stdout_file.read_text() == "out\n"  # read through cloudpathlib
    assert fail.stderr_file.read_text() == "err\n"
    assert str(fail.stdout_file) == f"{sim.workdir}/0/job.stdout"
    assert env.outcome is JobOutcome.SUCCEEDED
    assert env.stdout_file.read_text().startswith("cfg|job|")
    assert mounts.rc == 0
    assert sim.local(outdir).joinpath("copy.fa").read_text() == ">chr1\nACGT\n"
    # the bucket folder holds the job files the VM wrote
    local = sim.local(sim.workdir) / "0"
    assert (local / "job.rc").read_text() == "3\n"
    assert (local / "job.wrapped.gbatch").exists()
    # the Batch job as submitted
    proc = sim.gcloud(
        "batch", "jobs", "describe", env.jid, "--project=xq-proj",
        "--location=us-central1", "--format=json",
    )  # fmt: skip
    job = json.loads(proc.stdout)
    spec = job["taskGroups"][0]["taskSpec"]
    assert [v["gcs"]["remotePath"] for v in spec["volumes"]] == [
        f"xqute-test/{sim.prefix}/wd",
        f"xqute-test/{sim.prefix}/out",
        f"xqute-test/{sim.prefix}/ref",
    ]
    assert job["labels"] == {
        "team": "qa",
        "xqute-run": x.scheduler.run_id,
        "xqute-job": "1",
        "xqute-trial": "0",
    }
    assert verbs(sim).count("submit") == 3


async def test_a_mounted_workdir_with_a_space(sim):
    x = xqute(sim, opts={"mounted_workdir": "/mnt/disks/xq work"})
    await x.feed('echo "$XQUTE_JOB_METADIR"; ls "$XQUTE_JOB_METADIR"')
    await x.run_until_complete()
    (job,) = x.jobs
    assert (job.rc, job.outcome) == (0, JobOutcome.SUCCEEDED)  # the rc file came
    lines = job.stdout_file.read_text().splitlines()
    assert lines[0] == "/mnt/disks/xq work/0" and "job.wrapped.gbatch" in lines


async def test_one_list_per_poll_cycle(sim):
    x = xqute(sim, forks=5, opts={"poll_interval_s": 0.2, "poll_interval_max_s": 0.2})
    for _ in range(5):
        await x.feed(["sleep", "1.5"])
    t0 = time.monotonic()
    await x.run_until_complete()
    elapsed = time.monotonic() - t0
    assert all(j.outcome is JobOutcome.SUCCEEDED for j in x.jobs)
    calls = verbs(sim)
    lists = calls.count("list")
    assert 1 <= lists <= elapsed / 0.2 + 2, (lists, elapsed)
    assert calls.count("submit") == 5 and "describe" not in calls


async def test_kill_on_halt(sim):
    x = xqute(sim, error_strategy="halt")
    await x.feed("sleep 0.5; exit 1")
    await x.feed(["sleep", "30.41"])
    await x.feed("trap '' TERM; sleep 30.42")
    t0 = time.monotonic()
    await x.run_until_complete()
    assert time.monotonic() - t0 < 20
    first, slept, stubborn = x.jobs
    assert first.outcome is JobOutcome.FAILED and x.halted
    assert slept.outcome is stubborn.outcome is JobOutcome.KILLED
    assert verbs(sim).count("delete") == 2
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        left = [
            p.pid
            for p in psutil.process_iter(["cmdline"])
            if {"30.41", "30.42"} & set(p.info["cmdline"] or [])
        ]
        if not left:
            break
        time.sleep(0.2)
    assert left == []


async def test_timeouts(sim):
    # the wrapper's own timeout, and Batch's maxRunDuration (exit code 50005)
    x = xqute(sim, opts={"timeout": 1})
    await x.feed(["sleep", "30"])
    await x.run_until_complete()
    assert (x.jobs[0].rc, x.jobs[0].outcome) == (124, JobOutcome.TIMEOUT)

    x = xqute(sim, opts={"taskGroups": [{"taskSpec": {"maxRunDuration": "1s"}}]})
    await x.feed(["sleep", "30"])
    await x.run_until_complete()
    job = x.jobs[0]
    assert job.outcome is JobOutcome.TIMEOUT and "maxRunDuration" in job.reason


async def test_retry_submits_a_new_batch_job(sim):
    x = xqute(sim, error_strategy="retry", num_retries=1, retry_backoff_s=0)
    await x.feed(
        'test -e "$XQUTE_METADIR/marker" || { touch "$XQUTE_METADIR/marker"; exit 5; }'
    )
    await x.run_until_complete()
    job = x.jobs[0]
    assert (job.rc, job.outcome, job.trial_count) == (0, JobOutcome.SUCCEEDED, 1)
    assert (job.retry_dir / "1" / "job.rc").read_text() == "5\n"
    run_id = x.scheduler.run_id
    submitted = [argv[3] for argv in sim.calls() if argv[2:3] == ["submit"]]
    assert submitted == [f"xqtest-{run_id}-0-0", f"xqtest-{run_id}-0-1"]


async def test_job_that_never_ran_is_resolved_by_batch(sim):
    # a mount of a missing bucket fails the task before the wrapper starts (the
    # simulator's exit code 50000): no rc file, so Batch's word is all there is
    x = xqute(sim, opts={"fast_mount": "gs://no-such-bucket/x:/mnt/x"})
    await x.feed(["true"])
    await x.run_until_complete()
    job = x.jobs[0]
    assert (job.rc, job.outcome) == (50000, JobOutcome.FAILED)
    assert "exit code 50000" in job.reason


async def test_missing_project_submits_nothing(sim):
    with pytest.raises(ConfigError, match="needs a project"):
        Xqute(
            scheduler="gbatch",
            workdir=sim.workdir,
            scheduler_opts={"location": "us-central1", "gs_client": sim.client},
        )
    assert sim.calls() == []


async def test_accounting_finds_a_job_gone_without_rc(sim):
    # a succeeded job is not in the status list; with no rc file (lost on the
    # way), the scheduler asks gcloud about it by name
    x = xqute(sim)
    sched = x.scheduler
    await sched.start()
    try:
        job = sched.create_job(0, ["true"])
        await sched.submit(job)
        deadline = time.monotonic() + 20
        while (await sched.poll_jobs([job]))[job].state != "gone":
            assert time.monotonic() < deadline
            await asyncio.sleep(0.1)
        assert job.read_rc_file() == 0
        job.rc_file.unlink()
        found = await sched.resolve_gone([job])
        assert found[job].outcome is JobOutcome.SUCCEEDED
        assert "name:(" in sim.calls()[-1][5]
    finally:
        await sched.aclose()
