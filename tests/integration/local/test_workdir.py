"""One run per workdir: a second one fails naming the first one's pid; a run
leaves no job folder of an older, longer run behind; job folders are
user-only; a workdir that cannot be one is bad input (exit 2)."""

import os
import stat
import subprocess
import sys
import textwrap
import time

import pytest

from xqute import ConfigError, WorkdirBusy, Xqute

HOLDER = textwrap.dedent("""
    import asyncio, sys
    from xqute import Xqute
    async def main():
        xqute = Xqute(workdir=sys.argv[1])
        await xqute.feed(["sleep", "30.81"])
        await xqute.run_until_complete()
    asyncio.run(main())
""")


@pytest.fixture
def holder(tmp_path):
    """Another driver process that runs in tmp_path/wd until killed."""
    wd = tmp_path / "wd"
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(wd)])
    deadline = time.monotonic() + 30
    while not (wd / "0" / "job.jid").exists():
        assert time.monotonic() < deadline and proc.poll() is None
        time.sleep(0.05)
    yield wd, proc
    proc.terminate()
    proc.wait(timeout=30)


async def test_a_second_run_in_a_workdir_is_refused(holder):
    wd, proc = holder
    xqute = Xqute(workdir=wd)
    with pytest.raises(WorkdirBusy, match=rf"in use by another run \(pid {proc.pid}"):
        await xqute.feed(["true"])
    assert not (wd / "1").exists()
    # once the first run is over, the workdir is free
    proc.terminate()
    proc.wait(timeout=30)
    xqute = Xqute(workdir=wd)
    await xqute.feed(["true"])
    await xqute.run_until_complete()


def test_a_second_xqute_run_says_who_holds_the_workdir(holder, tmp_path):
    wd, proc = holder
    jobs = tmp_path / "jobs.txt"
    jobs.write_text("true\n")
    out = subprocess.run(
        [sys.executable, "-m", "xqute", "run", str(jobs), "-w", str(wd)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert out.returncode == 1
    assert f"pid {proc.pid}" in out.stderr and "Traceback" not in out.stderr


async def test_no_folder_of_an_older_longer_run_is_left(tmp_path):
    wd = tmp_path / "wd"
    xqute = Xqute(workdir=wd)
    for i in range(5):
        await xqute.feed(["echo", f"old {i}"])
    await xqute.run_until_complete()
    (wd / "3" / "client.txt").write_text("a client's own file")
    xqute = Xqute(workdir=wd)
    for i in range(2):
        await xqute.feed(["echo", f"new {i}"])
    await xqute.run_until_complete()
    assert sorted(p.name for p in wd.iterdir() if p.name.isdigit()) == ["0", "1", "3"]
    assert os.listdir(wd / "3") == ["client.txt"]  # xqute's files only went
    assert (wd / "1" / "job.stdout").read_text() == "new 1\n"


async def test_job_folders_and_scripts_are_user_only(tmp_path):
    wd = tmp_path / "wd"
    (wd / "0").mkdir(parents=True, mode=0o755)  # an older xqute's
    (wd / "0" / "job.wrapped.local").write_text("old")
    os.chmod(wd / "0" / "job.wrapped.local", 0o644)
    xqute = Xqute(workdir=wd)
    await xqute.feed(["true"], envs={"SECRET": "x"})
    await xqute.feed(["true"])
    await xqute.run_until_complete()
    for i in (0, 1):
        assert stat.S_IMODE(os.stat(wd / str(i)).st_mode) == 0o700
        script = wd / str(i) / "job.wrapped.local"
        assert stat.S_IMODE(os.stat(script).st_mode) == 0o600


async def test_a_workdir_that_is_a_file_is_bad_input(tmp_path):
    afile = tmp_path / "afile"
    afile.write_text("")
    xqute = Xqute(workdir=afile)
    with pytest.raises(ConfigError, match="is a file, not a folder"):
        await xqute.feed(["true"])
    jobs = tmp_path / "jobs.txt"
    jobs.write_text("true\n")
    for bad in (str(afile), "/proc/xqute-no-such"):
        out = subprocess.run(
            [sys.executable, "-m", "xqute", "run", str(jobs), "-w", bad],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert out.returncode == 2, out.stderr
        assert "Traceback" not in out.stderr and bad in out.stderr
