"""What only the HTCondor backend does, against the real single-node pool (8
CPUs advertised; the shared scenarios run in test_scenarios.py): options
reaching the submit description, attribute values it refuses, outcomes the pool
decides (a time limit, removal while idle, holds, a removal by SIGXCPU), array
jobs, one condor_q per poll cycle, and the queue service on top of it. Driven
as root: the pool's tools submit as its plain submit user (see
``targets.HTCondor``). A trivial HTCondor job takes ~1-3 s here."""

import asyncio
import subprocess
import time
from pathlib import Path

import pytest
from targets import array_jobs, status_calls

from xqute import ConfigError, JobOutcome
from xqute.queue import SqliteJobScheduler, WorkerPoolManager

pytestmark = [pytest.mark.htcondor, pytest.mark.timeout(300)]


async def run(xqute, timeout_s=60):
    await asyncio.wait_for(xqute.run_until_complete(), timeout_s)


async def when_running(job):
    while job.read_status_file() != 3 or job.jid is None:
        await asyncio.sleep(0.1)


async def test_options_and_resources_reach_the_description(htcondor):
    xqute = htcondor.engine(
        forks=2,
        scheduler_opts={
            "+XqProject": 'it\'s "mine" $HOME #1',
            "requirements": "TARGET.Cpus >= 1",
            "rank": "TARGET.Memory",
        },
    )
    (htcondor.shared / "cwd").mkdir()
    here = await xqute.feed("pwd", cwd=str(htcondor.shared / "cwd"))
    shown = await xqute.feed(["sleep", "2"], resources={"cpus": 2, "mem": "100M"})

    async def look():
        await when_running(shown)
        return htcondor.ads(
            shown.jid,
            attrs="JobBatchName,RequestCpus,RequestMemory,XqProject,Requirements,"
            "Rank,Cmd,Args,Arguments,JobUniverse,AllowedExecuteDuration",
        )[0]

    details = asyncio.ensure_future(look())
    await run(xqute)
    assert [j.rc for j in xqute.jobs] == [0, 0]
    assert here.stdout_file.read_text() == f"{htcondor.shared / 'cwd'}\n"
    ad = await details
    assert ad["JobBatchName"] == f"{htcondor.prefix}-1"
    assert (ad["RequestCpus"], ad["RequestMemory"]) == (2, 100)
    assert ad["XqProject"] == 'it\'s "mine" $HOME #1'
    assert "TARGET.Cpus >= 1" in ad["Requirements"]
    assert ad["Cmd"] == str(shown.wrapped_script_file("htcondor"))
    assert not ad.get("Args") and not ad.get("Arguments")  # the script, no args
    assert ad["JobUniverse"] == 5  # vanilla
    assert "AllowedExecuteDuration" not in ad


async def test_hostile_job_name_reaches_the_pool_whole(htcondor):
    marker = htcondor.shared / "pwned"
    hostile = f'{htcondor.prefix} "$(touch {marker})" $ENV(HOME) #x'
    xqute = htcondor.engine(jobname_prefix=hostile)
    job = await xqute.feed(["sleep", "1"])
    names = asyncio.ensure_future(_batch_name_when_submitted(htcondor, job))
    await run(xqute)
    assert job.rc == 0 and not marker.exists()
    assert await names in ([], [f"{hostile}-0"])  # it may have ended already
    for bad in ("a\nqueue", "$$(Cpus)", " padded", "x\\", "$(DOLLAR)"):
        with pytest.raises(ConfigError, match="cannot be written safely"):
            htcondor.engine(scheduler_opts={"+XqAttr": bad})


async def _batch_name_when_submitted(htcondor, job):
    while job.jid is None:
        await asyncio.sleep(0.05)
    return [a.get("JobBatchName") for a in htcondor.ads(job.jid)]


async def test_pool_side_outcomes(htcondor):
    """A time limit, removals outside xqute (running, idle), a hold xqute
    cannot fix (unwritable error file), and one it waits on (hold = true)."""
    xqute = htcondor.engine(forks=5)
    timeout = await xqute.feed(["sleep", "60"], resources={"time_limit_s": 2})
    running = await xqute.feed(["sleep", "60"])
    idle = await xqute.feed(["true"], resources={"cpus": 64})  # never matches
    bad = htcondor.engine(
        htcondor.workdir("bad"), scheduler_opts={"error": "/nonexistent/dir/x.err"}
    )
    unwritable = await bad.feed(["true"])
    held = htcondor.engine(htcondor.workdir("held"), scheduler_opts={"hold": True})
    released = await held.feed(["echo", "released"])

    async def outside():
        await when_running(running)
        while idle.jid is None or released.jid is None:
            await asyncio.sleep(0.1)
        await asyncio.sleep(1)  # the held job waits, as if queued
        assert released.read_status_file() != 3
        subprocess.run(["condor_rm", running.jid, idle.jid], capture_output=True)
        subprocess.run(["condor_release", released.jid], capture_output=True)

    actions = asyncio.ensure_future(outside())
    t0 = time.monotonic()
    await asyncio.gather(run(xqute), run(bad), run(held))
    await actions
    assert time.monotonic() - t0 < 45
    assert (timeout.outcome, timeout.rc) == (JobOutcome.TIMEOUT, 143)
    assert "time limit" in timeout.reason
    assert "xqute: htcondor: timeout" in timeout.stderr_file.read_text()
    assert (running.outcome, running.rc) == (JobOutcome.CANCELLED, 143)
    assert idle.outcome is JobOutcome.CANCELLED and "condor_rm" in idle.reason
    assert unwritable.outcome is JobOutcome.FAILED
    assert "held by HTCondor" in unwritable.reason
    assert "/nonexistent/dir/x.err" in unwritable.reason
    assert htcondor.alive([unwritable.jid, timeout.jid]) == []  # removed
    assert (released.outcome, released.rc) == (JobOutcome.SUCCEEDED, 0)
    assert released.stdout_file.read_text() == "released\n"


async def test_a_removal_by_another_signal_is_no_success(htcondor):
    """``kill_sig = SIGXCPU``: condor_rm sends XCPU, which bash catches to run
    the wrapper's EXIT trap (it used to record rc 0: succeeded)."""
    xqute = htcondor.engine(scheduler_opts={"kill_sig": "SIGXCPU"})
    job = await xqute.feed(["sleep", "60"])

    async def remove():
        await when_running(job)
        await asyncio.sleep(0.5)  # the wrapper's traps are set
        htcondor.cancel_outside(job.jid)

    removal = asyncio.ensure_future(remove())
    await run(xqute)
    await removal
    assert job.outcome in (JobOutcome.FAILED, JobOutcome.CANCELLED), job.reason
    assert job.rc == 152  # 128 + SIGXCPU
    assert job.outcome is JobOutcome.CANCELLED or "SIGXCPU" in job.reason


async def test_array_jobs_run_and_retry_per_job(htcondor):
    jobs = await array_jobs(htcondor, 4, 2, "")
    clusters = {j.jid.split(".")[0] for j in jobs if j.index != 2}
    assert len(clusters) == 1  # one cluster, queue 4
    assert {j.jid.split(".")[1] for j in jobs if j.index != 2} == {"0", "1", "3"}
    assert jobs[2].jid.split(".")[0] not in clusters  # retried alone
    assert jobs[1].stdout_file.read_text() == "task 1\n"


async def test_one_condor_q_per_poll_cycle(htcondor):
    calls = await status_calls(htcondor, htcondor.shared, "condor_q", 12, ["true"])
    assert all("-json" in call for call in calls)
    assert max(len(call.split()) - 3 for call in calls) == 12  # all ids in one


def test_the_queue_runs_its_jobs_on_htcondor(htcondor):
    """A queue pool with ``backend="htcondor"`` (``xqute service start
    --backend htcondor``): jobs run, fail and are cancelled in the pool."""
    store = SqliteJobScheduler(htcondor.shared / "queue.db")
    pool = WorkerPoolManager(
        store,
        max_workers=3,
        backend="htcondor",
        backend_opts={"poll_interval_s": 0.3, "kill_grace_s": 1},
    )
    ok = store.submit_job(["echo", "hi"], cpus=2, memory="64M")
    bad = store.submit_job("exit 2")
    victim = store.submit_job(["sleep", "60"])
    state = lambda i: store.get_job_status(i)["state"]  # noqa: E731
    pool.start_workers()
    try:
        deadline = time.monotonic() + 60
        while state(victim) != "running":
            assert time.monotonic() < deadline
            time.sleep(0.2)
        store.cancel_job(victim)
        while any(state(i) in ("queued", "running") for i in (ok, bad, victim)):
            assert time.monotonic() < deadline
            time.sleep(0.2)
        jobs = {i: store.get_job_status(i) for i in (ok, bad, victim)}
    finally:
        pool.stop_workers(now=True, timeout_s=30)
        store.close()
    assert jobs[ok]["state"] == "completed"
    assert Path(jobs[ok]["stdout"]).read_text() == "hi\n"
    assert jobs[bad]["state"] == "failed" and jobs[bad]["return_code"] == 2
    assert jobs[victim]["state"] == "cancelled"
    assert all(j["native_id"].count(".") == 1 for j in jobs.values())
