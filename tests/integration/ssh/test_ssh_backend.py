"""The ssh backend against two real sshd servers, through the public API.

Both servers run on this machine (127.0.0.1:2222 and 127.0.0.2:2223), so the
"remote" jobs are local processes: the tests can see them, and check that none
is left behind (the ``marker`` fixture).
"""

import asyncio
import collections
import logging
import subprocess
import time

import pytest

from xqute import BackendError, JobOutcome, JobStatus, Xqute

pytestmark = [pytest.mark.ssh, pytest.mark.timeout(60)]

FAST = {"poll_interval_s": 0.2, "poll_interval_max_s": 0.5}


def tcp_connections(port: int) -> int:
    out = subprocess.run(
        ["ss", "-Htn", "state", "established", f"( dport = :{port} )"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return len(out.splitlines())


async def wait_for(predicate, timeout_s=20.0, step_s=0.05):
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(step_s)


async def test_jobs_spread_over_two_servers_reusing_one_connection_each(
    sshd, workdir, marker, procs, tmp_path
):
    xqute = Xqute(
        "ssh",
        workdir=workdir,
        forks=8,
        scheduler_opts={"servers": sshd.servers(), **FAST},
    )
    for i in range(8):
        await xqute.feed(
            f'sleep 2.{marker}; echo "out-$XQUTE_JOB_INDEX $K $PWD"; echo err-{i} >&2;'
            f" exit {i % 3}",
            envs={"K": "v w"},
            cwd=tmp_path,
        )
    sched = xqute.scheduler
    t0 = time.monotonic()
    task = asyncio.ensure_future(xqute.run_until_complete())
    await wait_for(lambda: all(j.status == JobStatus.RUNNING for j in xqute.jobs))
    # 8 jobs in flight, 4 per server: ONE TCP connection per server (the master)
    assert (tcp_connections(2222), tcp_connections(2223)) == (1, 1)
    ctrl_dir = sched.clients["h1"].ctrl_path.rsplit("/", 1)[0]
    masters = [p for p in procs(ctrl_dir) if "[mux]" in p]
    assert len(masters) == 2  # "ssh: <ctrl_dir>/s0 [mux]": one master per server
    await task
    elapsed = time.monotonic() - t0

    servers = collections.Counter(j.jid.split(":")[0] for j in xqute.jobs)
    assert servers == {"h1": 4, "h2": 4}
    assert [j.rc for j in xqute.jobs] == [i % 3 for i in range(8)]
    assert [j.outcome for j in xqute.jobs[:2]] == [
        JobOutcome.SUCCEEDED,
        JobOutcome.FAILED,
    ]
    for i, job in enumerate(xqute.jobs):
        assert job.stdout_file.read_text() == f"out-{i} v w {tmp_path}\n"
        assert job.stderr_file.read_text() == f"err-{i}\n"
        assert job.rc_file.read_text() == f"{i % 3}\n"
        assert job.jid_file.read_text().strip() == job.jid
    # one status call per server per poll cycle, whatever the number of jobs
    for client in sched.clients.values():
        calls = client.calls  # by kind
        assert calls["check"] == 1 and "kill" not in calls  # the check at start
        assert 1 <= calls["launch"] <= 3  # 4 submissions at once: batched
        assert 1 <= calls["status"] <= elapsed / FAST["poll_interval_s"] + 2
    # the masters were closed with the run: no connection, no ssh process left
    assert (tcp_connections(2222), tcp_connections(2223)) == (0, 0)
    assert procs(ctrl_dir) == []


async def test_halt_kills_the_remote_process_groups(sshd, workdir, marker, procs):
    xqute = Xqute(
        "ssh",
        workdir=workdir,
        forks=5,
        error_strategy="halt",
        scheduler_opts={"servers": sshd.servers(), "kill_grace_s": 1, **FAST},
    )
    await xqute.feed("sleep 1; exit 1")
    for _ in range(3):  # a child in the background, another in the foreground
        await xqute.feed(f"sleep 30.{marker} & sleep 30.{marker}; wait")
    await xqute.feed(f"trap '' TERM; sleep 31.{marker}")  # needs the SIGKILL
    t0 = time.monotonic()
    await asyncio.wait_for(xqute.run_until_complete(), 30)
    assert time.monotonic() - t0 < 12
    first, *killed = xqute.jobs
    assert first.outcome is JobOutcome.FAILED and first.rc == 1
    assert [j.outcome for j in killed] == [JobOutcome.KILLED] * 4
    assert [j.rc for j in killed[:3]] == [143] * 3  # recorded by the wrapper
    assert {j.jid.split(":")[0] for j in killed} == {"h1", "h2"}
    assert all(c.calls["kill"] >= 1 for c in xqute.scheduler.clients.values())
    assert procs(f".{marker}") == []  # every process of every group is gone


async def test_server_down_at_start(sshd, workdir, marker, procs, servers_ctl, caplog):
    servers_ctl("stop", "h2")
    caplog.set_level(logging.WARNING, logger="xqute")
    xqute = Xqute(
        "ssh",
        workdir=workdir,
        forks=4,
        scheduler_opts={"servers": sshd.servers(), **FAST},
    )
    for i in range(4):
        await xqute.feed(["echo", f"job {i}"])
    await xqute.run_until_complete()
    assert [j.rc for j in xqute.jobs] == [0] * 4
    assert {j.jid.split(":")[0] for j in xqute.jobs} == {"h1"}
    assert (
        "ssh server h2 (root@127.0.0.2:2223) is unreachable, taking it out of"
        " rotation: ssh: connect to host 127.0.0.2 port 2223: Connection refused"
    ) in caplog.text

    # no server reachable at all: the run fails at once, saying why for each
    servers = sshd.servers()
    servers["h1"]["port"] = 2299  # nothing listens there
    xqute = Xqute("ssh", workdir=workdir, scheduler_opts={"servers": servers})
    with pytest.raises(BackendError) as info:
        await xqute.feed(["true"])
    assert str(info.value) == (
        "no ssh server is reachable:"
        " h1 (ssh: connect to host 127.0.0.1 port 2299: Connection refused);"
        " h2 (ssh: connect to host 127.0.0.2 port 2223: Connection refused)"
    )
    assert procs(str(workdir)) == []


async def test_server_stopped_mid_run(sshd, workdir, marker, servers_ctl, caplog):
    """h2's sshd dies while a job runs there: the job keeps running and ends by
    its rc file (the filesystem is shared); a job submitted then fails clearly,
    since no server is left."""
    caplog.set_level(logging.WARNING, logger="xqute")
    xqute = Xqute(
        "ssh", workdir=workdir, scheduler_opts={"servers": sshd.servers("h2"), **FAST}
    )
    await xqute.run_until_complete(keep_feeding=True)
    first = await xqute.feed(f"sleep 2.{marker}; echo done")
    await wait_for(lambda: first.status == JobStatus.RUNNING)
    servers_ctl("stop", "h2")
    second = await xqute.feed(["true"])
    await xqute.stop_feeding()
    assert first.outcome is JobOutcome.SUCCEEDED and first.trial_count == 0
    assert first.stdout_file.read_text() == "done\n"
    assert second.outcome is JobOutcome.SUBMIT_FAILED
    assert "no ssh server is left in rotation: h2 (ssh: connect to host" in (
        second.reason
    )
    assert "no ssh server is left in rotation" in second.stderr_file.read_text()
    assert "ssh server h2 (root@127.0.0.2:2223) stopped answering" in caplog.text


async def test_server_that_goes_away_mid_run(
    sshd, workdir, marker, procs, servers_ctl, caplog
):
    """h2 hangs while 2 of 4 jobs run there: they are failed as lost and retried
    on h1; when h2 answers again, the originals are killed (without writing into
    their retry's folder) and h2 rejoins."""
    caplog.set_level(logging.WARNING, logger="xqute")
    xqute = Xqute(
        "ssh",
        workdir=workdir,
        forks=4,
        error_strategy="retry",
        retry_backoff_s=0,
        scheduler_opts={
            "servers": sshd.servers(),
            "lost_grace_s": 1,
            "down_retry_s": 1,
            **FAST,
        },
    )
    await xqute.run_until_complete(keep_feeding=True)
    # the first trial runs long; a retry ends at once
    cmd = f'[ -d "$XQUTE_JOB_METADIR/job.retry" ] && exit 0; sleep 40.{marker}'
    jobs = [await xqute.feed(cmd) for _ in range(4)]
    await wait_for(lambda: all(j.status == JobStatus.RUNNING for j in jobs))
    on_h2 = [j for j in jobs if j.jid.startswith("h2:")]
    assert len(on_h2) == 2
    servers_ctl("pause", "h2")
    await wait_for(lambda: all(j.is_done for j in on_h2), timeout_s=25)
    for job in on_h2:
        assert job.outcome is JobOutcome.SUCCEEDED and job.trial_count == 1
        assert job.jid.startswith("h1:")  # retried on the server still up
    assert "ssh server h2 (root@127.0.0.2:2223) stopped answering" in caplog.text
    assert len(procs(f"40.{marker}")) == 4  # 2 on h1, 2 abandoned on h2

    servers_ctl("resume", "h2")
    await wait_for(lambda: xqute.scheduler.pool.is_up("h2"), timeout_s=15)
    assert "ssh server h2: killed 2 job(s) given up on there" in caplog.text
    assert "ssh server h2 answers again: back in rotation" in caplog.text
    await wait_for(lambda: len(procs(f"40.{marker}")) == 2, timeout_s=5)
    for job in on_h2:  # SIGKILLed: nothing written into the retry's files
        assert job.rc_file.read_text() == "0\n"
    late = await xqute.feed(["true"])
    await wait_for(lambda: late.is_done)
    assert late.jid.startswith("h2:")  # fewest running there: h2 is used again
    # cancel the run: the two long jobs still on h1 are killed
    stopping = asyncio.ensure_future(xqute.stop_feeding())
    await asyncio.sleep(0.1)
    stopping.cancel()
    with pytest.raises(asyncio.CancelledError):
        await stopping


async def test_older_spelling(sshd, workdir, marker):
    with pytest.warns(DeprecationWarning):
        xqute = Xqute(
            "ssh",
            workdir=workdir,
            scheduler_forks=3,
            ssh="ssh",
            ssh_servers=sshd.servers(),
            ssh_poll_interval_s=0.2,
        )
    await xqute.feed(["echo", "a"])
    await xqute.feed("echo b")
    await xqute.feed(f"sleep 30.{marker}", timeout_s=0.5)  # the wrapper times it out
    await xqute.run_until_complete()
    assert [j.stdout_file.read_text() for j in xqute.jobs[:2]] == ["a\n", "b\n"]
    assert [j.jid.split(":")[0] for j in xqute.jobs] == ["h1", "h2", "h1"]
    assert xqute.jobs[2].outcome is JobOutcome.TIMEOUT and xqute.jobs[2].rc == 124


async def test_a_server_that_does_not_see_the_workdir_is_an_error(sshd, workdir):
    # pytest's tmp dirs are 0700 root: a non-root login cannot see inside
    servers = sshd.servers("h1", fast=False)
    servers["h1"]["user"] = "xqute-ssh-test"
    xqute = Xqute("ssh", workdir=workdir, scheduler_opts={"servers": servers})
    with pytest.raises(BackendError) as info:
        await xqute.feed(["true"])
    assert str(info.value) == (
        f"ssh server 'h1' (xqute-ssh-test@127.0.0.1:2222) does not see the workdir"
        f" {workdir}: the ssh servers must share the filesystem with the driver, at"
        " the same paths"
    )
    assert [p.name for p in workdir.iterdir()] == []  # the marker was removed
