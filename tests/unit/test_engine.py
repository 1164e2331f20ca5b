"""The engine through its public API, on the local backend (real processes)."""

import asyncio
import os
import time
import warnings

import psutil
import pytest

from xqute import ConfigError, JobOutcome, JobStatus, Xqute, XquteError


async def run_jobs(workdir, cmds, **kw):
    xqute = Xqute(workdir=workdir, **kw)
    for cmd in cmds:
        await xqute.feed(cmd)
    await xqute.run_until_complete()
    return xqute


async def test_hello(workdir):
    xqute = Xqute(workdir=workdir, forks=4, error_strategy="retry", num_retries=3)
    await xqute.feed(["echo", "Hello"], envs={"MY_VAR": "v"})
    await xqute.feed('echo "Hi $MY_VAR"', envs={"MY_VAR": "v"})
    await xqute.run_until_complete()
    job = xqute.jobs[0]
    assert await job.get_rc() == 0
    assert await job.get_status() == JobStatus.FINISHED
    assert job.stdout_file.read_text() == "Hello\n"
    assert xqute.jobs[1].stdout_file.read_text() == "Hi v\n"
    assert job.outcome is JobOutcome.SUCCEEDED


async def test_metadir_layout(workdir):
    xqute = await run_jobs(workdir, [["true"]])
    job = xqute.jobs[0]
    assert job.metadir == workdir / "0"
    names = {p.name for p in job.metadir.iterdir()}
    assert {
        "job.stdout",
        "job.stderr",
        "job.status",
        "job.rc",
        "job.jid",
        "job.wrapped.local",
        "job.info",  # written once, at the end (start, end, host, pid)
    } <= names
    assert job.status_file.read_text().strip() == str(JobStatus.FINISHED.value)
    assert (await job.get_jid()).isdigit()
    for attr in ("stdout_file", "stderr_file", "status_file", "rc_file", "jid_file"):
        assert getattr(job, attr).parent == job.metadir


async def test_arguments_are_passed_literally(workdir):
    argv = ["printf", "%s\n", "a b", "$HOME", "`id`", "x;echo hi"]
    xqute = await run_jobs(workdir, [argv])
    assert xqute.jobs[0].stdout_file.read_text() == "a b\n$HOME\n`id`\nx;echo hi\n"


async def test_job_environment_and_cwd(workdir, tmp_path):
    xqute = Xqute(workdir=workdir)
    await xqute.feed(
        'echo "$XQUTE_JOB_INDEX|$XQUTE_METADIR|$XQUTE_JOB_METADIR|$K|$PWD"',
        envs={"K": "v w"},
        cwd=tmp_path,
    )
    await xqute.run_until_complete()
    out = xqute.jobs[0].stdout_file.read_text().strip()
    assert out == f"0|{workdir}|{workdir}/0|v w|{tmp_path}"


async def test_missing_command_is_a_failed_job(workdir):
    xqute = await run_jobs(workdir, [["no-such-command-xq"], "exit 3"])
    bad, three = xqute.jobs
    assert bad.status == JobStatus.FAILED and await bad.get_rc() == 127
    assert "no-such-command-xq" in bad.stderr_file.read_text()
    assert await three.get_rc() == 3 and three.outcome is JobOutcome.FAILED


async def test_retry_moves_files_of_each_trial(workdir):
    counter = workdir.parent / "count"
    cmd = (
        f"n=$(cat {counter} 2>/dev/null || echo 0); echo $((n+1)) > {counter};"
        ' echo "try $n"; exit 2'
    )
    xqute = await run_jobs(
        workdir, [cmd], error_strategy="retry", num_retries=2, retry_backoff_s=0
    )
    job = xqute.jobs[0]
    assert counter.read_text().strip() == "3"  # 1 run + 2 retries
    assert job.trial_count == 2 and job.status == JobStatus.FAILED
    assert (job.retry_dir / "1" / "job.stdout").read_text() == "try 0\n"
    assert (job.retry_dir / "2" / "job.stdout").read_text() == "try 1\n"
    assert job.stdout_file.read_text() == "try 2\n"
    assert xqute.counts()["retried"] == 2 and xqute.counts()["failed"] == 1


async def test_retry_succeeds_eventually(workdir):
    flag = workdir.parent / "flag"
    cmd = f"[ -e {flag} ] || {{ touch {flag}; exit 1; }}"
    xqute = await run_jobs(
        workdir, [cmd], error_strategy="retry", num_retries=3, retry_backoff_s=0
    )
    assert (
        xqute.jobs[0].outcome is JobOutcome.SUCCEEDED and xqute.jobs[0].trial_count == 1
    )


async def test_retry_backoff_waits(workdir):
    t0 = time.monotonic()
    await run_jobs(
        workdir,
        ["exit 1"],
        error_strategy="retry",
        num_retries=2,
        retry_backoff_s=0.2,
        retry_backoff_max_s=1,
    )
    # two retries: delays in [0.1, 0.2] and [0.2, 0.4]
    assert 0.3 <= time.monotonic() - t0 < 5


async def test_ignore_goes_on(workdir):
    xqute = await run_jobs(workdir, ["exit 1", "true", "true"], error_strategy="ignore")
    assert [j.outcome for j in xqute.jobs] == [
        JobOutcome.FAILED,
        JobOutcome.SUCCEEDED,
        JobOutcome.SUCCEEDED,
    ]


async def test_halt_kills_in_flight_and_submits_nothing_more(workdir):
    t0 = time.monotonic()
    xqute = await run_jobs(
        workdir,
        ["sleep 0.3; exit 1", "sleep 30.11", "sleep 30.11", "true"],
        forks=3,
        error_strategy="halt",
    )
    assert time.monotonic() - t0 < 5
    first, long1, long2, last = xqute.jobs
    assert first.outcome is JobOutcome.FAILED
    assert long1.outcome is JobOutcome.KILLED and long2.outcome is JobOutcome.KILLED
    assert long1.rc != 0 and await long1.get_rc() != 0
    assert last.status == JobStatus.QUEUED and last.outcome is None
    assert xqute.halted
    await assert_no_process_matching("sleep 30.11")


async def test_timeout_per_job_kills_the_tree(workdir):
    marker = workdir.parent / "grandchild"
    xqute = Xqute(workdir=workdir, forks=2)
    await xqute.feed(f"(sleep 30.13; touch {marker}) & sleep 30", timeout_s=0.3)
    await xqute.feed(["true"], timeout_s=5)
    await xqute.run_until_complete()
    slow, quick = xqute.jobs
    assert slow.status == JobStatus.FAILED and slow.outcome is JobOutcome.TIMEOUT
    assert slow.rc != 0 and quick.rc == 0
    await assert_no_process_matching("sleep 30.13")  # the grandchild too
    assert not marker.exists()


async def test_timeout_from_scheduler_opts(workdir):
    t0 = time.monotonic()
    xqute = await run_jobs(workdir, ["sleep 30"], scheduler_opts={"timeout": 0.2})
    assert xqute.jobs[0].outcome is JobOutcome.TIMEOUT and xqute.jobs[0].rc == 124
    assert time.monotonic() - t0 < 5


async def test_daemon_mode_keep_feeding(workdir):
    xqute = Xqute(workdir=workdir, forks=2)
    await xqute.run_until_complete(keep_feeding=True)
    assert xqute.is_feeding()
    await xqute.feed(["echo", "a"])
    await asyncio.sleep(0.1)
    await xqute.feed(["echo", "b"])
    await xqute.stop_feeding()
    assert not xqute.is_feeding()
    assert [j.stdout_file.read_text() for j in xqute.jobs] == ["a\n", "b\n"]
    with pytest.raises(XquteError, match="finished"):
        await xqute.feed(["true"])


async def test_no_jobs_completes_at_once(workdir):
    xqute = Xqute(workdir=workdir)
    await asyncio.wait_for(xqute.run_until_complete(), 5)


async def test_concurrency_limit(workdir):
    log = workdir.parent / "log"
    cmd = f"echo start >> {log}; sleep 0.25; echo end >> {log}"
    await run_jobs(workdir, [cmd] * 4, forks=2)
    depth = peak = 0
    for line in log.read_text().split():
        depth += 1 if line == "start" else -1
        peak = max(peak, depth)
    assert peak == 2


async def test_old_spellings_warn_and_work(workdir):
    with pytest.warns(DeprecationWarning):
        xqute = Xqute(
            scheduler_forks=3,
            job_metadir=str(workdir),
            job_error_strategy="retry",
            job_num_retries=1,
            job_submission_batch=2,
        )
    assert (
        xqute.forks,
        xqute.error_strategy,
        xqute.num_retries,
        xqute.submission_batch,
    ) == (3, "retry", 1, 2)
    assert xqute.scheduler.workdir == workdir
    with pytest.warns(DeprecationWarning, match="put"):
        await xqute.put(["true"])
    await xqute.run_until_complete()
    assert xqute.jobs[0].rc == 0


def test_scheduler_options_as_keywords_warn(workdir):
    with pytest.warns(DeprecationWarning, match="scheduler_opts"):
        xqute = Xqute(workdir=workdir, timeout=3)
    assert xqute.scheduler.timeout_s == 3


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        # the list grows with the backends: only its start is fixed
        ({"scheduler": "nosuch"}, "'nosuch' is not allowed; choose one of: '"),
        ({"forks": 0}, "forks 0 must be an integer >= 1"),
        ({"forks": "4"}, "forks '4'"),
        (
            {"error_strategy": "explode"},
            "'explode' is not allowed; choose one of: 'ignore', 'retry', 'halt'",
        ),
        ({"num_retries": -1}, "num_retries -1"),
        ({"scheduler_opts": {"bogus": 1}}, "'bogus' is not allowed"),
        ({"scheduler_opts": {"timeout": "soon"}}, "timeout 'soon' is not a duration"),
        ({"plugins": "justone"}, "must be a list"),
        ({"plugins": ["no-such-plugin"]}, "'no-such-plugin' is not allowed"),
        ({"scheduler": 42}, "must be a name or a Scheduler subclass"),
    ],
)
def test_bad_arguments_are_clear(workdir, kw, message):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        with pytest.raises(ConfigError) as info:
            Xqute(workdir=workdir, **kw)
    assert message in str(info.value)


@pytest.mark.parametrize(
    ("cmd", "message"),
    [
        (42, "command 42 is a int"),
        (None, "is a NoneType"),
        ("", "empty"),
        ([], "empty"),
        (b"ls", "is a bytes"),
    ],
)
async def test_bad_commands_are_clear(workdir, cmd, message):
    xqute = Xqute(workdir=workdir)
    with pytest.raises(ConfigError, match=message):
        await xqute.feed(cmd)
    with pytest.raises(ConfigError, match="environment variable name '1X'"):
        await xqute.feed(["true"], envs={"1X": "v"})
    await xqute.run_until_complete()


async def test_rerun_over_an_old_workdir_clears_old_files(workdir):
    await run_jobs(
        workdir,
        ["echo old; exit 1"],
        error_strategy="retry",
        num_retries=1,
        retry_backoff_s=0,
    )
    assert (workdir / "0" / "job.retry").exists()
    xqute = await run_jobs(workdir, ["echo new"])
    assert xqute.jobs[0].stdout_file.read_text() == "new\n"
    assert not (workdir / "0" / "job.retry").exists()


async def test_cancelling_the_run_kills_jobs(workdir):
    xqute = Xqute(workdir=workdir, forks=2)
    await xqute.feed("sleep 30.12")
    run = asyncio.create_task(xqute.run_until_complete())
    await until(lambda: xqute.jobs[0].status == JobStatus.RUNNING)
    run.cancel()
    with pytest.raises(asyncio.CancelledError):
        await run
    await assert_no_process_matching("sleep 30.12")


async def until(condition, within_s=10.0):
    """Wait (polling briefly) until ``condition()`` holds; fail after ``within_s``."""
    deadline = time.monotonic() + within_s
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.02)


async def assert_no_process_matching(fragment, within_s=8.0):
    me = os.getpid()
    deadline = time.monotonic() + within_s
    while True:
        found = [
            p
            for p in psutil.process_iter(["cmdline", "ppid", "status"])
            if fragment in " ".join(p.info["cmdline"] or [])
            and p.info["status"] != psutil.STATUS_ZOMBIE
            and _descends_from(p, me)
        ]
        if not found or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.1)
    assert not found, found


def _descends_from(proc, pid):
    """Ours: a child of this test process, or an orphan that used to be one.

    Orphans are re-parented to init, so also count processes whose session leader
    was started by us (jobs run in sessions of their own)."""
    try:
        if any(p.pid == pid for p in proc.parents()):
            return True
        return proc.ppid() == 1
    except psutil.NoSuchProcess:
        return False
