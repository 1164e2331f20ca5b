"""Signals to a real driver process: SIGINT/SIGTERM shut down cleanly, SIGKILL
leaves no orphans."""

import os
import signal
import subprocess
import sys
import textwrap
import time

import psutil
import pytest

DRIVER = textwrap.dedent("""
    import asyncio, json, sys
    from xqute import Xqute, Interrupted, simplug as pm

    workdir, events, njobs = sys.argv[1], sys.argv[2], int(sys.argv[3])
    veto = sys.argv[4] == "1"
    def log(*item):
        with open(events, "a") as fh:
            fh.write(json.dumps(item) + "\\n")

    class Recorder:
        name = "recorder"
        @pm.impl
        def on_shutdown(xqute, sig):
            log("shutdown", sig and sig.name)
            if veto and sig is not None:
                return False
        @pm.impl
        async def on_job_started(scheduler, job):
            log("started", job.index)
        @pm.impl
        async def on_job_killed(scheduler, job):
            log("killed", job.index)

    async def main():
        xqute = Xqute(workdir=workdir, forks=njobs, plugins=[Recorder],
                      scheduler_opts={"kill_grace_s": 1})
        for i in range(njobs):
            await xqute.feed(sys.argv[5])
        try:
            await xqute.run_until_complete()
        except Interrupted as exc:
            log("interrupted", exc.signal)
            sys.exit(128 + exc.signal)
    asyncio.run(main())
""")


@pytest.fixture
def start_driver(tmp_path):
    """Start a driver process; it is killed at teardown whatever the test did."""
    procs = []

    def start(njobs=3, veto=False, cmd="sleep 30.51"):
        events = tmp_path / "events"
        events.touch()
        script = tmp_path / "driver.py"
        script.write_text(DRIVER)
        proc = subprocess.Popen(
            [
                sys.executable,
                str(script),
                str(tmp_path / "wd"),
                str(events),
                str(njobs),
                "1" if veto else "0",
                cmd,
            ]
        )
        procs.append(proc)
        wait_for(
            lambda: len([e for e in read_events(events) if e[0] == "started"]) == njobs,
            20,
        )
        return proc, events

    yield start
    for proc in procs:
        if proc.poll() is None:
            proc.terminate()
            proc.wait(timeout=30)


def read_events(path):
    import json

    return [json.loads(line) for line in path.read_text().splitlines()]


def wait_for(predicate, timeout_s):
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting")
        time.sleep(0.05)


def job_processes(fragment):
    """Live `sleep` processes whose command line holds ``fragment``."""
    return [
        p
        for p in psutil.process_iter(["name", "cmdline", "status"])
        if p.info["name"] == "sleep"
        and fragment in " ".join(p.info["cmdline"] or [])
        and p.info["status"] != psutil.STATUS_ZOMBIE
    ]


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_signal_kills_jobs_and_shuts_down(tmp_path, start_driver, sig):
    proc, events = start_driver()
    proc.send_signal(sig)
    assert proc.wait(timeout=20) == 128 + sig
    ev = read_events(events)
    assert ["shutdown", sig.name] in ev
    assert sorted(e[1] for e in ev if e[0] == "killed") == [0, 1, 2]
    assert ["interrupted", int(sig)] in ev
    for i in range(3):
        assert (tmp_path / "wd" / str(i) / "job.rc").read_text().strip() == "143"
    assert not job_processes("sleep 30.51")


def test_shutdown_hook_can_refuse(tmp_path, start_driver):
    proc, events = start_driver(njobs=2, veto=True, cmd="sleep 1.5")
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=20) == 0
    assert ["shutdown", "SIGINT"] in read_events(events)
    for i in range(2):
        assert (tmp_path / "wd" / str(i) / "job.rc").read_text().strip() == "0"


def test_sigkill_of_the_driver_leaves_no_orphans(tmp_path, start_driver):
    proc, _ = start_driver(njobs=4, cmd="sleep 30.52 & sleep 30.52; wait")
    wait_for(lambda: len(job_processes("sleep 30.52")) == 8, 10)
    proc.kill()
    proc.wait()
    t0 = time.monotonic()
    wait_for(lambda: not job_processes("sleep 30.52"), 10)
    assert time.monotonic() - t0 < 5
    for i in range(4):  # the wrappers got TERM and recorded how they ended
        rc = tmp_path / "wd" / str(i) / "job.rc"  # (written, not only created)
        wait_for(lambda rc=rc: rc.exists() and rc.read_text().strip(), 5)
        assert (tmp_path / "wd" / str(i) / "job.rc").read_text().strip() == "143"


def test_cli_ctrl_c_exits_130_with_a_summary(tmp_path):
    jobs = tmp_path / "jobs.txt"
    jobs.write_text("sleep 30.53\n" * 2)
    proc = subprocess.Popen(
        ["xqute", "run", str(jobs), "-w", str(tmp_path / "wd"), "-j", "2"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "COLUMNS": "200"},
    )
    try:
        wait_for(lambda: len(job_processes("sleep 30.53")) == 2, 20)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err
    assert "interrupted by SIGINT" in err
    assert "killed" in out
    assert not job_processes("sleep 30.53")


def test_without_orphan_guard_jobs_outlive_the_driver(tmp_path):
    script = tmp_path / "driver.py"
    script.write_text(
        textwrap.dedent("""
        import asyncio, sys
        from xqute import Xqute
        async def main():
            xqute = Xqute(workdir=sys.argv[1], scheduler_opts={"orphan_guard": False})
            await xqute.feed("sleep 1.5; echo survived")
            await xqute.run_until_complete()
        asyncio.run(main())
    """)
    )
    proc = subprocess.Popen([sys.executable, str(script), str(tmp_path / "wd")])
    try:
        wait_for(lambda: (tmp_path / "wd" / "0" / "job.jid").exists(), 20)
        proc.kill()
        proc.wait()
        rc_file = tmp_path / "wd" / "0" / "job.rc"
        wait_for(rc_file.exists, 10)
        assert rc_file.read_text().strip() == "0"
        assert (tmp_path / "wd" / "0" / "job.stdout").read_text() == "survived\n"
    finally:
        if proc.poll() is None:
            proc.kill()


def test_second_sigint_kills_at_once(tmp_path, start_driver):
    proc, _ = start_driver(njobs=2, cmd="trap '' TERM INT; sleep 30.54")
    proc.send_signal(signal.SIGINT)
    time.sleep(0.5)
    t0 = time.monotonic()
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=20) == 130
    assert time.monotonic() - t0 < 1.5  # the kill grace (1 s + 1) was cut short
    assert not job_processes("sleep 30.54")


TWO_ENGINES = textwrap.dedent("""
    import asyncio, signal, sys
    from xqute import Xqute, Interrupted

    async def run(name):
        xqute = Xqute(workdir=sys.argv[1] + "/" + name)
        await xqute.feed(["sleep", "30.55"])
        try:
            await xqute.run_until_complete()
        except Interrupted:
            return name + " interrupted"
        return name + " finished"

    async def main():
        before = signal.getsignal(signal.SIGINT)  # asyncio.run's own handler
        results = await asyncio.gather(run("a"), run("b"))
        print(*results, signal.getsignal(signal.SIGINT) is before)

    asyncio.run(main())
""")


def test_two_engines_on_one_loop_both_stop_and_handlers_are_restored(tmp_path):
    script = tmp_path / "two.py"
    script.write_text(TWO_ENGINES)
    proc = subprocess.Popen(
        [sys.executable, str(script), str(tmp_path)], stdout=subprocess.PIPE, text=True
    )
    try:
        wait_for(lambda: len(job_processes("sleep 30.55")) == 2, 20)
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert out.split() == ["a", "interrupted", "b", "interrupted", "True"]
    assert not job_processes("sleep 30.55")


STUCK_DRIVER = textwrap.dedent("""
    import asyncio, sys
    from xqute import Xqute, Interrupted
    from xqute.schedulers.local import LocalScheduler

    class Stuck(LocalScheduler):
        \"\"\"A backend whose kill has no effect.\"\"\"
        name = "stuck"
        async def kill_jobs(self, jobs, grace_s=None):
            pass

    async def main():
        xqute = Xqute(Stuck, workdir=sys.argv[1], forks=2,
                      scheduler_opts={"orphan_guard": False})
        for _ in range(2):
            await xqute.feed(["sleep", "30.56"])
        try:
            await xqute.run_until_complete()
        except Interrupted as exc:
            print(exc, flush=True)
            sys.exit(128 + exc.signal)
    asyncio.run(main())
""")


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_a_second_signal_ends_a_driver_whose_kills_do_nothing(tmp_path, sig):
    proc = subprocess.Popen(
        [sys.executable, "-c", STUCK_DRIVER, str(tmp_path / "wd")],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        wait_for(lambda: len(job_processes("sleep 30.56")) == 2, 20)
        jids = [
            (tmp_path / "wd" / str(i) / "job.jid").read_text().strip() for i in (0, 1)
        ]
        proc.send_signal(sig)
        time.sleep(1)
        assert proc.poll() is None  # the first one waits for the jobs to end
        t0 = time.monotonic()
        proc.send_signal(sig)
        out, _ = proc.communicate(timeout=20)
        assert time.monotonic() - t0 < 5
        assert proc.returncode == 128 + sig
        assert "these may still run" in out
        for i, jid in enumerate(jids):
            assert f"job {i} (id {jid})" in out
    finally:
        if proc.poll() is None:
            proc.kill()
        for p in job_processes("sleep 30.56"):
            p.kill()
