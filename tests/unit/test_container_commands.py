"""The container backend without any engine: options, command lines, ps parsing.

The ps captures in tests/data/container/ are real output of podman 4.3.1 and
docker 20.10 (client 28.2) for running, exited (0, 3, 137), created and paused
containers.
"""

import asyncio
import contextlib
import os
import re
import shlex
import signal
import subprocess
from pathlib import Path

import psutil
import pytest

from xqute import ConfigError, JobOutcome, Xqute
from xqute.schedulers import make_scheduler
from xqute.schedulers.container import ApptainerScheduler
from xqute.schedulers.container.commands import (
    apptainer_exec_argv,
    parse_ps,
    rm_argv,
    stop_argv,
)
from xqute.schedulers.container.spec import (
    container_name,
    parse_container_options,
    parse_volume,
)

DATA = Path(__file__).parent.parent / "data" / "container"
IMG = "localhost/xqute-test:latest"
NAME_RE = re.compile(r"^[a-z][a-z0-9-]*[a-z0-9]$")


def make(workdir="/w", **opts):
    # the class for the options (ContainerScheduler, or ApptainerScheduler)
    return make_scheduler("container", workdir=workdir, **{"image": IMG, **opts})


@pytest.mark.parametrize(
    ("opts", "message"),
    [
        ({"bin": "lxc"}, "'docker', 'podman', 'apptainer'"),
        ({"image": None}, "must be a string"),
        ({"image": "--privileged"}, "must not start with '-'"),
        ({"volumes": ["/a"]}, "malformed"),
        ({"volumes": ["rel:/b"]}, "must be an absolute path"),
        ({"volumes": ["/a:/b:rx"]}, "must be 'ro' or 'rw'"),
        ({"volumes": ["/a:/"]}, "cannot mount over '/'"),
        ({"volumes": ["/a::ro"]}, "malformed"),
        ({"envs": {"1BAD": "x"}}, "is invalid"),
        ({"envs": ["A=1"]}, "must be a dict"),
        ({"bin_args": "--hostname h"}, "must be a list"),
        ({"pull": "newer"}, "pull policy for docker"),
        ({"pull": "sometimes", "bin": "podman"}, "'never', 'missing'"),
        ({"entrypoint": "/bin/bash -c"}, "must be one executable"),
        ({"remove": "yes"}, "true or false"),
        ({"mounted_workdir": "work"}, "absolute path"),
        ({"imgae": IMG}, "'image', 'bin', 'entrypoint'"),
    ],
)
def test_bad_options_are_clear_errors(opts, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        make(**opts)


def test_missing_image_and_errors_through_the_public_api():
    with pytest.raises(ConfigError, match="needs an image"):
        Xqute(scheduler="container", scheduler_opts={"bin": "podman"})
    with pytest.raises(ConfigError, match="'docker', 'podman', 'apptainer'"):
        Xqute(scheduler="container", scheduler_opts={"image": IMG, "bin": "rkt"})


def test_apptainer_never_pulls_a_registry_image():
    with pytest.raises(ConfigError, match="pulled from a registry"):
        make(bin="apptainer", image="docker://busybox")
    sched = make(bin="apptainer", image="docker://busybox", pull="missing")
    assert isinstance(sched, ApptainerScheduler)


def test_volume_parsing():
    assert parse_volume("/a//b/:/c:ro").spec() == "/a/b:/c:ro"
    assert parse_volume("/a:/c").mode is None
    with pytest.raises(ConfigError, match="','"):
        parse_volume("/a,b:/c", "apptainer")


def test_run_argv_for_docker_and_podman(workdir):
    for engine in ("docker", "podman", "/usr/local/bin/docker"):
        sched = make(
            workdir,
            bin=engine,
            volumes=["/data:/data:ro"],
            envs={"A": "1 2", "B": "$(id); rm -rf /"},
            bin_args=["--hostname", "h"],
            jobname_prefix="Pipe;line Run",
        )
        job = sched.create_job(3, ["echo", "hi"], resources={"cpus": 2, "mem": "1G"})
        argv = sched.submit_argv(job, job.wrapped_script_file("container"))
        name = sched.container_name(job)
        assert name == f"pipe-line-run-{sched.run_id}-3-0" and NAME_RE.match(name)
        wd = str(sched.workdir)
        assert argv == [
            engine,
            "run",
            "--detach",
            f"--name={name}",
            "--pull=never",
            f"--label=xqute.run={sched.run_id}",
            "--label=xqute.job=3",
            f"--volume={wd}:{wd}",
            "--volume=/data:/data:ro",
            f"--workdir={wd}/3",
            "--env=A=1 2",
            "--env=B=$(id); rm -rf /",  # one argv item: no shell ever sees it
            "--cpus=2",
            "--memory=1024m",
            "--hostname",
            "h",
            "--entrypoint=/bin/bash",
            IMG,
            f"{wd}/3/job.wrapped.container",
        ]


def test_mounted_workdir_maps_the_script_paths(workdir):
    sched = make(workdir, mounted_workdir="/xq/", pull="missing")
    job = sched.create_job(0, ["true"])
    assert sched.script_paths(job) == ("/xq", "/xq/0")
    argv = sched.submit_argv(job, job.wrapped_script_file("container"))
    assert f"--volume={workdir.resolve()}:/xq" in argv and "--pull=missing" in argv
    assert argv[-1] == "/xq/0/job.wrapped.container"
    text = sched.wrapped_script_text(job)
    assert "export XQUTE_JOB_METADIR=/xq/0" in text and str(workdir) not in text


def test_container_names_are_valid_and_unique():
    names = {
        container_name("xqute", "ab12cd34", i, t) for i in range(3) for t in (0, 1)
    }
    assert len(names) == 6
    long = container_name("A" * 200 + "!", "ab12cd34", 123456, 12)
    assert len(long) <= 63 and NAME_RE.match(long) and long.endswith("-123456-12")
    for prefix in ("-x", "9lives", "__", "ÄÖ"):
        assert NAME_RE.match(container_name(prefix, "ab12cd34", 0, 0))


def test_stop_and_rm_commands_differ_per_engine():
    podman = parse_container_options({"image": IMG, "bin": "podman"})
    docker = parse_container_options({"image": IMG})
    assert stop_argv(podman, ["a", "b"], 5.2) == [
        "podman",
        "stop",
        "--time=5",
        "--ignore",
        "a",
        "b",
    ]
    assert stop_argv(docker, ["a"], 0.2) == ["docker", "stop", "--time=1", "a"]
    assert rm_argv(podman, ["a"]) == ["podman", "rm", "--force", "--time=0", "a"]
    assert rm_argv(docker, ["a"]) == ["docker", "rm", "--force", "a"]


@pytest.mark.parametrize("engine", ["podman", "docker"])
def test_parse_ps_captures(engine):
    seen = parse_ps((DATA / f"{engine}-ps.txt").read_text())
    assert seen["xqc-run"].state == "running"
    assert seen["xqc-paused"].state == "running"
    assert seen["xqc-created"].state == "pending"
    ok, fail, killed = seen["xqc-ok"], seen["xqc-fail"], seen["xqc-killed"]
    assert (ok.state, ok.outcome, ok.rc) == ("done", JobOutcome.SUCCEEDED, 0)
    assert (fail.state, fail.outcome, fail.rc) == ("done", JobOutcome.FAILED, 3)
    assert killed.rc == 137 and "SIGKILL" in killed.reason
    assert parse_ps("") == {} and parse_ps("garbage without tab\n") == {}
    assert parse_ps("x\tDead\n")["x"].outcome is JobOutcome.LOST


def test_status_is_one_ps_for_the_run(workdir):
    sched = make(workdir, bin="podman")
    assert sched.status_argv(["a", "b"]) == [
        "podman",
        "ps",
        "--all",
        f"--filter=label=xqute.run={sched.run_id}",
        "--format={{.Names}}\t{{.Status}}",
    ]


def test_apptainer_command_line(workdir):
    sched = Xqute(
        scheduler="container",
        workdir=str(workdir),
        scheduler_opts={
            "bin": "/opt/apptainer/bin/apptainer",
            "image": "/images/tool.sif",
            "volumes": ["/ref:/ref:ro"],
            "envs": {"PLAIN": "a b", "CSV": "k=v,w", "QUOTED": 'say "hi"'},
            "bin_args": ["--cleanenv"],
        },
    ).scheduler
    assert isinstance(sched, ApptainerScheduler)
    job = sched.create_job(2, ["true"])
    script = job.wrapped_script_file("container")
    wd = str(workdir.resolve())
    argv = sched.launch_argv(job, script)
    # apptainer's own errors go to job.stderr; the rest is apptainer exec
    assert argv[1:4] == ["-c", 'exec "$@" 2>>"$0"', f"{wd}/2/job.stderr"]
    assert argv[4:] == [
        "env",
        "APPTAINERENV_CSV=k=v,w",  # --env would split it on ','
        'APPTAINERENV_QUOTED=say "hi"',  # --env would strip the quotes
        "/opt/apptainer/bin/apptainer",
        "exec",
        f"--bind={wd}:{wd}",
        "--bind=/ref:/ref:ro",
        f"--pwd={wd}/2",
        "--env=PLAIN=a b",
        "--cleanenv",
        "/images/tool.sif",
        "/bin/bash",
        f"{wd}/2/job.wrapped.container",
    ]
    assert not sched.own_process_group and not sched.jid_is_wrapper_pid


def test_apptainer_argv_without_awkward_envs():
    spec = parse_container_options(
        {"image": "/i.sif", "bin": "apptainer", "entrypoint": "/usr/bin/bash"}
    )
    argv = apptainer_exec_argv(
        spec, workdir="/w", mounted_workdir="/m", cwd="/m/0", script="/m/0/s"
    )
    assert argv == [
        "apptainer",
        "exec",
        "--bind=/w:/m",
        "--pwd=/m/0",
        "/i.sif",
        "/usr/bin/bash",
        "/m/0/s",
    ]


@pytest.mark.parametrize(
    ("bin_", "folder", "sep"),
    [("docker", "w:1", ":"), ("apptainer", "w:1", ":"), ("apptainer", "w,1", ",")],
)
async def test_a_workdir_the_mount_flag_would_split_fails_at_start(
    tmp_path, bin_, folder, sep
):
    image = IMG if bin_ == "docker" else "/images/tool.sif"
    sched = make(tmp_path / folder, bin=bin_, image=image)
    flag = "--bind" if bin_ == "apptainer" else "--volume"
    with pytest.raises(ConfigError, match=re.escape(f"{sep!r}, which {flag} reads")):
        await sched.start()
    assert not (tmp_path / folder).exists()  # before anything was made
    await sched.aclose()


def _spawn(argv, **env):
    return subprocess.Popen(argv, env={**os.environ, **env}, start_new_session=True)


async def test_apptainer_follows_and_kills_a_job_it_did_not_start(workdir):
    """A restarted driver re-attaches by pid. Real apptainer re-executes itself
    as "Apptainer runtime parent" and runs the entrypoint with the script's
    CONTAINER path (mounted_workdir) as its child: played here by bash."""
    sched = make(workdir, bin="apptainer", image="/i.sif", mounted_workdir="/xq")
    job = sched.create_job(0, ["true"])
    job.metadir.mkdir(parents=True)
    script = "/xq/0/job.wrapped.container"
    assert sched.job_script_path(job) == script
    child = "bash -c 'sleep 30; :' \"$S\"; :"  # the entrypoint, given the script
    parent = f'exec -a "Apptainer runtime parent" bash -c {shlex.quote(child)}'
    procs = [_spawn(["bash", "-c", parent], S=script), _spawn(["sleep", "30"])]
    try:
        runs_script = psutil.Process(procs[0].pid)
        while not any(script in c.cmdline() for c in runs_script.children(True)):
            await asyncio.sleep(0.01)
        assert script not in runs_script.cmdline()
        job.jid_file.write_text(f"{procs[1].pid}\n")  # a pid running something else
        assert not await sched.job_is_running(job)
        job.jid_file.write_text(f"{procs[0].pid}\n")
        assert await sched.job_is_running(job)
        await sched.kill_jobs([job])  # TERM to apptainer's process group
        assert procs[0].wait(5) == -signal.SIGTERM
        assert not await sched.job_is_running(job)
    finally:
        for proc in procs:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    await sched.aclose()
