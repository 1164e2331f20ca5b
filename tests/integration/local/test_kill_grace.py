"""A killed job's process group gets ONE SIGTERM, and SIGKILL only after
``kill_grace_s`` if still alive (Slurm's KillWait): a job that checkpoints on
TERM finishes its checkpoint, whether it is a shell string or an argv, and
whether it is killed by a halt, a timeout or a signal to the driver."""

import asyncio
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from xqute import Xqute
from xqute.schedulers.local import LocalScheduler
from xqute.status import JobOutcome


def wait_ready(tmp_path):
    return f"while [ ! -e {tmp_path}/ready ]; do sleep 0.05; done"


@pytest.mark.parametrize("shell", [False, True], ids=["argv", "shell"])
async def test_halt_gives_one_term_and_the_grace(tmp_path, checkpointer, shell):
    xqute = Xqute(
        workdir=tmp_path / "wd",
        forks=2,
        error_strategy="halt",
        scheduler_opts={"kill_grace_s": 5},
    )
    victim = await xqute.feed(checkpointer[1] if shell else checkpointer[0])
    await xqute.feed(f"{wait_ready(tmp_path)}; exit 1")
    began = time.monotonic()
    await xqute.run_until_complete()
    assert (tmp_path / "saved").read_text() == "1"  # one TERM, and not KILLed
    assert time.monotonic() - began < 5  # it ended when it was done, not at grace
    assert victim.outcome is JobOutcome.KILLED and victim.rc == 143


@pytest.mark.parametrize("shell", [False, True], ids=["argv", "shell"])
async def test_timeout_gives_one_term_and_the_grace(tmp_path, checkpointer, shell):
    xqute = Xqute(workdir=tmp_path / "wd", scheduler_opts={"kill_grace_s": 5})
    victim = await xqute.feed(
        checkpointer[1] if shell else checkpointer[0], timeout_s=1
    )
    await xqute.run_until_complete()
    assert (tmp_path / "saved").read_text() == "1"
    assert victim.outcome is JobOutcome.TIMEOUT and victim.rc == 124


@pytest.mark.parametrize("shell", [False, True], ids=["argv", "shell"])
async def test_kill_after_the_grace_only(tmp_path, shell):
    """A job that ignores TERM is SIGKILLed once the grace is over, not before."""
    cmd = (
        "trap '' TERM; sleep 30.61"
        if shell
        else ["bash", "-c", "trap '' TERM; sleep 30.61"]
    )
    xqute = Xqute(
        workdir=tmp_path / "wd",
        forks=2,
        error_strategy="halt",
        scheduler_opts={"kill_grace_s": 1.5},
    )
    victim = await xqute.feed(cmd)
    await xqute.feed("sleep 0.5; exit 1")
    await xqute.run_until_complete()
    took = victim.ended_at - victim.started_at
    assert victim.outcome is JobOutcome.KILLED
    assert took >= 0.5 + 1.5 - 0.1 and took < 10


DRIVER = textwrap.dedent("""
    import asyncio, sys
    from xqute import Xqute, Interrupted
    async def main():
        xqute = Xqute(workdir=sys.argv[1], scheduler_opts={"kill_grace_s": 5})
        await xqute.feed(sys.argv[2:])
        try:
            await xqute.run_until_complete()
        except Interrupted:
            print("interrupted", flush=True)
    asyncio.run(main())
""")


def test_a_signal_to_the_driver_gives_one_term_and_the_grace(tmp_path, checkpointer):
    proc = subprocess.Popen(
        [sys.executable, "-c", DRIVER, str(tmp_path / "wd"), *checkpointer[0]],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        while not (tmp_path / "ready").exists():
            assert time.monotonic() < deadline and proc.poll() is None
            time.sleep(0.05)
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert "interrupted" in out
    assert (tmp_path / "saved").read_text() == "1"
    assert (tmp_path / "wd" / "0" / "job.rc").read_text().strip() == "143"


async def test_many_kills_at_once_all_end(tmp_path):
    """Jobs killed while their wrapper starts them still end (one TERM each)."""
    xqute = Xqute(
        workdir=tmp_path / "wd",
        forks=21,
        error_strategy="halt",
        scheduler_opts={"kill_grace_s": 2},
    )
    for _ in range(20):
        await xqute.feed(["sleep", "30.62"])
    await xqute.feed("exit 1")
    began = time.monotonic()
    await asyncio.wait_for(xqute.run_until_complete(), 60)
    assert time.monotonic() - began < 15


async def test_a_job_killed_as_it_starts_ends_on_its_term(tmp_path):
    """A TERM that lands while the wrapper forks the command (bash blocks TERM
    around a fork; the child's exec drops it) is sent again: no job killed as it
    starts waits for its SIGKILL (about 1 in 5 did, at the end of the grace)."""
    sched = LocalScheduler(workdir=tmp_path / "wd", kill_grace_s=60)
    await sched.start()
    jobs = [sched.create_job(i, ["sleep", "30.64"]) for i in range(40)]
    for i, job in enumerate(jobs):
        await sched.submit(job)
        await asyncio.sleep(i % 10 * 0.002)  # sweep the wrapper's first ms
        await sched.kill_jobs([job])
    began = time.monotonic()
    await asyncio.wait_for(asyncio.gather(*map(sched.wait_done, jobs)), 50)
    assert time.monotonic() - began < 20
    assert {job.read_rc_file() for job in jobs} == {143}
    await sched.aclose()


async def test_a_kill_may_give_its_own_grace(tmp_path):
    """``kill_jobs(jobs, grace_s=...)`` (preemption with a priority class's
    grace): SIGKILL after that grace, not the backend's."""
    xqute = Xqute(workdir=tmp_path / "wd", scheduler_opts={"kill_grace_s": 60})
    job = await xqute.feed("trap '' TERM; sleep 30.63")
    run = asyncio.create_task(xqute.run_until_complete())
    while job.jid is None:
        await asyncio.sleep(0.05)
    await asyncio.sleep(0.3)
    began = time.monotonic()
    await xqute.scheduler.kill_jobs([job], grace_s=1)
    await asyncio.wait_for(run, 30)
    assert 0.9 <= time.monotonic() - began < 10
