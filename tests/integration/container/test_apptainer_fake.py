"""bin="apptainer" with a FAKE apptainer (none can be installed here): checks
that the backend's process handling works end to end (launch, rc, env, apptainer's
own errors in job.stderr, kill), not apptainer itself. The fake understands the
flags the backend passes (--bind, --pwd, --env, APPTAINERENV_*) and runs the
command on the host."""

from __future__ import annotations

import time

import psutil
import pytest

from xqute import JobOutcome, Xqute

pytestmark = pytest.mark.container

FAKE = r"""#!/usr/bin/env bash
[ "$1" = exec ] || { echo "FATAL: fake apptainer knows only exec" >&2; exit 255; }
shift
while [ $# -gt 0 ]; do
    case $1 in
        --bind=*) printf '%s\n' "${1#--bind=}" >> "$FAKE_APPTAINER_LOG" ;;
        --pwd=*) cd "${1#--pwd=}" || exit 255 ;;
        --env=*) export "${1#--env=}" ;;
        -*) ;;
        *) break ;;
    esac
    shift
done
image=$1
shift
[ -s "$image" ] || { echo "FATAL: could not open image $image" >&2; exit 255; }
for v in ${!APPTAINERENV_*}; do export "${v#APPTAINERENV_}=${!v}"; unset "$v"; done
exec "$@"
"""


@pytest.fixture
def fake(tmp_path, monkeypatch):
    folder = tmp_path / "fakebin"
    folder.mkdir()
    exe = folder / "apptainer"
    exe.write_text(FAKE)
    exe.chmod(0o755)
    image = tmp_path / "tool.sif"
    image.write_text("not really an image\n")
    log = tmp_path / "binds.log"
    monkeypatch.setenv("FAKE_APPTAINER_LOG", str(log))
    return {"bin": str(exe), "image": str(image), "log": log}


def xqute(tmp_path, fake, **opts):
    return Xqute(
        scheduler="container",
        workdir=str(tmp_path / "wd"),
        forks=3,
        error_strategy=opts.pop("error_strategy", "ignore"),
        scheduler_opts={
            "bin": fake["bin"],
            "image": fake["image"],
            "kill_grace_s": 1,
            **opts,
        },
    )


async def test_jobs_run_through_apptainer_exec(tmp_path, fake):
    ref = tmp_path / "ref"
    ref.mkdir()
    x = xqute(
        tmp_path,
        fake,
        volumes=[f"{ref}:/ref:ro"],
        envs={"PLAIN": "a b", "CSV": "k=v,w", "QUOTED": 'say "hi"'},
    )
    await x.feed("echo out; echo err >&2; exit 3")
    await x.feed('echo "$PLAIN|$CSV|$QUOTED|$(pwd)"')
    await x.run_until_complete()
    fail, env = x.jobs
    assert (fail.rc, fail.outcome) == (3, JobOutcome.FAILED)
    assert fail.stderr_file.read_text() == "err\n"
    assert env.rc == 0
    assert env.stdout_file.read_text() == f'a b|k=v,w|say "hi"|{env.metadir}\n'
    wd = x.scheduler.workdir
    assert fake["log"].read_text().splitlines()[:2] == [f"{wd}:{wd}", f"{ref}:/ref:ro"]


async def test_apptainer_errors_land_in_job_stderr(tmp_path, fake):
    x = xqute(tmp_path, fake)
    (tmp_path / "tool.sif").write_text("")  # the fake refuses an empty image
    await x.feed(["true"])
    await x.run_until_complete()
    job = x.jobs[0]
    assert (job.rc, job.outcome) == (255, JobOutcome.FAILED)
    assert "FATAL: could not open image" in job.stderr_file.read_text()


async def test_kill_on_halt(tmp_path, fake):
    x = xqute(tmp_path, fake, error_strategy="halt")
    await x.feed("sleep 0.3; exit 1")
    await x.feed(["sleep", "30.73"])
    t0 = time.monotonic()
    await x.run_until_complete()
    assert time.monotonic() - t0 < 10
    assert x.jobs[1].outcome is JobOutcome.KILLED and x.jobs[1].rc == 143
    left = [
        p
        for p in psutil.process_iter(["cmdline"])
        if "30.73" in (p.info["cmdline"] or [])
    ]
    assert left == []
