"""The container backend against real podman and docker (every test runs with
both), through the public API."""

from __future__ import annotations

import socket
import subprocess
import time

import pytest

from xqute import ConfigError, JobOutcome, Xqute

pytestmark = pytest.mark.container

PREFIX = "xqtest"  # conftest removes containers named like this after each test

FAST = {"poll_interval_s": 0.1, "poll_interval_max_s": 0.3, "kill_grace_s": 1}


def xqute(tmp_path, bin_, image, forks=4, **kwargs):
    opts = {"bin": bin_, "image": image, **FAST, **kwargs.pop("opts", {})}
    return Xqute(
        scheduler="container",
        workdir=str(tmp_path / "wd"),
        forks=forks,
        jobname_prefix=PREFIX,
        scheduler_opts=opts,
        **kwargs,
    )


def engine_ps(engine: str, label: str) -> list[str]:
    """Names of the containers with a label (any state)."""
    out = subprocess.run(
        [engine, "ps", "--all", f"--filter=label={label}", "--format={{.Names}}"],
        capture_output=True,
        text=True,
        timeout=60,
    ).stdout
    return [line for line in out.splitlines() if line.strip()]


async def test_rc_output_env_and_volumes(engine, image, tmp_path):
    data, out = tmp_path / "data", tmp_path / "out"
    data.mkdir()
    out.mkdir()
    (data / "in.txt").write_text("payload\n")
    x = xqute(
        tmp_path,
        engine,
        image,
        opts={
            "volumes": [f"{data}:/data:ro", f"{out}:/out"],
            "envs": {"CT_VAR": "from option", "SPACED": "a  b $(id)"},
        },
    )
    await x.feed("echo out; echo err >&2; exit 3")
    await x.feed('echo "$CT_VAR|$SPACED|$JOB_VAR"', envs={"JOB_VAR": "from job"})
    await x.feed("cat /data/in.txt > /out/copy.txt && touch /data/x")
    await x.feed(["bash", "-c", 'echo "$(pwd)|$XQUTE_JOB_METADIR|$HOSTNAME"'])
    await x.run_until_complete()
    fail, env, vol, where = x.jobs
    assert (fail.rc, fail.outcome) == (3, JobOutcome.FAILED)
    assert fail.stdout_file.read_text() == "out\n"
    assert fail.stderr_file.read_text() == "err\n"
    assert env.stdout_file.read_text() == "from option|a  b $(id)|from job\n"
    assert (out / "copy.txt").read_text() == "payload\n"  # the volume is mounted
    assert vol.rc == 1 and "Read-only file system" in vol.stderr_file.read_text()
    pwd, metadir, hostname = where.stdout_file.read_text().strip().split("|")
    assert pwd == metadir == str(where.metadir)  # same path inside and out
    assert hostname and hostname != socket.gethostname()
    assert engine_ps(engine, f"xqute.run={x.scheduler.run_id}") == []  # removed


async def test_timeout(engine, image, tmp_path):
    x = xqute(tmp_path, engine, image, opts={"timeout": 1})
    await x.feed(["sleep", "30"])
    t0 = time.monotonic()
    await x.run_until_complete()
    job = x.jobs[0]
    assert (job.rc, job.outcome) == (124, JobOutcome.TIMEOUT)
    assert time.monotonic() - t0 < 15


async def test_kill_on_halt_leaves_no_container(engine, image, tmp_path):
    x = xqute(tmp_path, engine, image, error_strategy="halt")
    await x.feed("sleep 0.5; exit 1")
    await x.feed(["sleep", "30"])
    await x.feed("trap '' TERM; sleep 30")  # ignores TERM: KILLed after the grace
    t0 = time.monotonic()
    await x.run_until_complete()
    assert time.monotonic() - t0 < 15
    first, slept, stubborn = x.jobs
    assert first.outcome is JobOutcome.FAILED and x.halted
    assert slept.outcome is stubborn.outcome is JobOutcome.KILLED
    assert slept.rc == 143
    assert engine_ps(engine, f"xqute.run={x.scheduler.run_id}") == []


async def test_retry_gets_a_new_container_name(logged_engine, image, tmp_path):
    bin_, log = logged_engine
    out = tmp_path / "out"
    out.mkdir()
    x = xqute(
        tmp_path,
        bin_,
        image,
        error_strategy="retry",
        num_retries=1,
        retry_backoff_s=0,
        opts={"volumes": [f"{out}:/out"]},
    )
    await x.feed("test -e /out/marker || { touch /out/marker; exit 5; }")
    await x.run_until_complete()
    job = x.jobs[0]
    assert (job.rc, job.outcome, job.trial_count) == (0, JobOutcome.SUCCEEDED, 1)
    assert (job.retry_dir / "1" / "job.rc").read_text() == "5\n"
    calls = [line.split() for line in log.read_text().splitlines()]
    runs = [argv for argv in calls if argv[0] == "run"]
    names = [
        a.partition("=")[2] for argv in runs for a in argv if a.startswith("--name=")
    ]
    run_id = x.scheduler.run_id
    assert names == [f"{PREFIX}-{run_id}-0-0", f"{PREFIX}-{run_id}-0-1"]
    assert all("--pull=never" in argv for argv in runs)


async def test_missing_image_fails_before_any_run(logged_engine, tmp_path):
    bin_, log = logged_engine
    x = xqute(tmp_path, bin_, "localhost/xqute-no-such-image:latest")
    with pytest.raises(ConfigError, match="pull is 'never'"):
        await x.feed(["true"])
    calls = log.read_text().splitlines()
    assert calls and all(c.startswith("image inspect") for c in calls)


async def test_one_ps_per_poll_cycle(logged_engine, image, tmp_path):
    bin_, log = logged_engine
    x = xqute(
        tmp_path,
        bin_,
        image,
        forks=6,
        opts={"poll_interval_s": 0.2, "poll_interval_max_s": 0.2},
    )
    for _ in range(6):
        await x.feed(["sleep", "1.5"])
    t0 = time.monotonic()
    await x.run_until_complete()
    elapsed = time.monotonic() - t0
    assert all(j.outcome is JobOutcome.SUCCEEDED for j in x.jobs)
    calls = [line.split()[0] for line in log.read_text().splitlines()]
    ps = calls.count("ps")
    assert 1 <= ps <= elapsed / 0.2 + 2, (ps, elapsed)
    assert calls.count("run") == 6 and "inspect" not in calls and "wait" not in calls
    assert calls.count("rm") <= 3  # removals are batched


async def test_bad_entrypoint_is_a_clear_submit_failure(engine, image, tmp_path):
    x = xqute(tmp_path, engine, image, opts={"entrypoint": "/no/such/entrypoint"})
    await x.feed(["true"])
    await x.run_until_complete()
    job = x.jobs[0]
    assert job.outcome is JobOutcome.SUBMIT_FAILED
    assert "no such file or directory" in job.reason.lower()
    assert engine_ps(engine, f"xqute.run={x.scheduler.run_id}") == []


async def test_container_that_skips_the_wrapper(engine, image, tmp_path):
    # /bin/false never runs the wrapped script: the exit code and the container's
    # own output are all there is
    x = xqute(tmp_path, engine, image, opts={"entrypoint": "/bin/false"})
    await x.feed(["true"])
    await x.run_until_complete()
    job = x.jobs[0]
    assert (job.rc, job.outcome) == (1, JobOutcome.FAILED)
    assert "the container exited with 1" in job.reason


async def test_remove_false_keeps_the_container(engine, image, tmp_path):
    x = xqute(tmp_path, engine, image, opts={"remove": False})
    await x.feed(["true"])
    await x.run_until_complete()
    name = f"{PREFIX}-{x.scheduler.run_id}-0-0"
    assert engine_ps(engine, f"xqute.run={x.scheduler.run_id}") == [name]
    status = subprocess.run(
        [engine, "inspect", "--format={{.State.Status}} {{.State.ExitCode}}", name],
        capture_output=True,
        text=True,
    ).stdout.strip()
    assert status == "exited 0"
