"""The queue with the engine on top (``Xqute(scheduler="queue")``) and with a
non-local backend underneath (a custom Scheduler written the seed way)."""

import asyncio
import contextlib
import os
import signal
import subprocess

import psutil
import pytest
from service_helpers import read, wait_final, wait_running

from xqute import JobOutcome, Scheduler, Xqute
from xqute.queue import WorkerPoolManager

pytestmark = pytest.mark.service


def test_engine_feeds_the_queue_and_follows_its_jobs(daemon, store, tmp_path):
    daemon(workers=4, cpus=4)

    async def main():
        xqute = Xqute(
            "queue",
            workdir=tmp_path / "engine",
            forks=10,
            scheduler_opts={"db_path": str(store.db_path), "priority": 3},
        )
        for i in range(5):
            await xqute.feed(["echo", str(i)], resources={"cpus": 1, "mem": "10M"})
        await xqute.feed("exit 4")
        await xqute.feed("sleep 30", timeout_s=1)
        await xqute.run_until_complete()
        return xqute

    xqute = asyncio.run(main())
    outcomes = [j.outcome for j in xqute.jobs]
    assert outcomes == [JobOutcome.SUCCEEDED] * 5 + [
        JobOutcome.FAILED,
        JobOutcome.TIMEOUT,
    ]
    assert [j.stdout_file.read_text() for j in xqute.jobs[:5]] == [
        f"{i}\n" for i in range(5)
    ]
    assert xqute.jobs[5].rc == 4
    queued = store.list_jobs(state="all", limit=None)
    assert len(queued) == 7
    assert {j["priority"] for j in queued} == {3}
    by_name = {j["name"]: j for j in queued}
    assert all(by_name[f"xqute-{i}"]["mem_mb"] == 10 for i in range(5))
    assert by_name["xqute-0"]["state"] == "completed"
    assert by_name["xqute-5"]["state"] == "failed"


def test_engine_halt_cancels_its_queued_jobs(daemon, store, tmp_path):
    daemon(workers=3, cpus=3)

    async def main():
        xqute = Xqute(
            "queue",
            workdir=tmp_path / "engine",
            forks=3,
            error_strategy="halt",
            scheduler_opts={"db_path": str(store.db_path)},
        )
        await xqute.feed(["sleep", "60"])
        await xqute.feed(["sleep", "60"])
        await xqute.feed("sleep 0.5; exit 1")
        await xqute.run_until_complete()
        return xqute

    xqute = asyncio.run(main())
    assert [j.outcome for j in xqute.jobs] == [
        JobOutcome.KILLED, JobOutcome.KILLED, JobOutcome.FAILED
    ]  # fmt: skip
    jobs = wait_final(store, [1, 2, 3], timeout_s=20)  # submitted in any order
    by_name = {j["name"]: j["state"] for j in jobs.values()}
    assert by_name == {
        "xqute-0": "cancelled",
        "xqute-1": "cancelled",
        "xqute-2": "failed",
    }


class SeedScheduler(Scheduler):
    """A non-local backend written the seed way: detached bash processes followed
    by pid (as a cluster backend would follow a job id)."""

    name = "seedtest"

    async def submit_job(self, job):
        script = await self.wrapped_job_script(job)
        proc = subprocess.Popen(
            ["bash", str(script)],
            start_new_session=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        return proc.pid

    async def kill_job(self, job):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(int(job.jid), signal.SIGTERM)

    async def job_is_running(self, job):
        pid = int(job.jid)
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)  # reap it if it ended
        try:
            return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
        except psutil.NoSuchProcess:
            return False


def test_pool_on_a_non_local_backend(store, tmp_path):
    pool = WorkerPoolManager(
        store,
        max_workers=2,
        backend=SeedScheduler,
        backend_opts={"poll_interval_s": 0.1, "kill_grace_s": 1},
    )
    ok = store.submit_job('echo "gpus=[$CUDA_VISIBLE_DEVICES]"', gpus=4, cpus=64)
    bad = store.submit_job("exit 2")
    victim = store.submit_job(["sleep", "60"])
    pool.start_workers()
    try:
        wait_running(store, [victim])
        store.cancel_job(victim)
        jobs = wait_final(store, [ok, bad, victim], timeout_s=20)
    finally:
        pool.stop_workers(now=True, timeout_s=20)
    # a cluster's resources are the cluster's: no local capacity, no GPU indexes
    assert jobs[ok]["state"] == "completed"
    assert read(jobs[ok]["stdout"]) == "gpus=[]\n"
    assert jobs[ok]["gpu_ids"] == []
    assert jobs[bad]["state"] == "failed" and jobs[bad]["return_code"] == 2
    assert jobs[victim]["state"] == "cancelled"
    assert jobs[victim]["native_id"].isdigit()
    status = pool.get_worker_status()
    assert status["backend"] == "seedtest" and status["state"] == "stopped"
