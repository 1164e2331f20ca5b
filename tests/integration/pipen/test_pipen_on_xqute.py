"""pipen, xqute's real client, runs unmodified on this xqute.

- pipen's own test suite (the registry's release, from its sdist) passes:
  scripts/pipen-tests.sh, whose header lists the tests that need Google Cloud
  Storage and fail on xqute 2.2.1 too;
- pipen's README pipeline runs on the local scheduler, on the real Slurm and
  Grid Engine clusters, in podman containers and over SSH (loopback sshd);
- a pipen scheduler plugin written the seed-001 way (subclassing
  ``xqute.schedulers.scheduler.Scheduler``, registered through pipen's
  ``pipen_sched`` entry point) runs a pipeline.

pipen runs in its own venv (conftest.py), with this checkout as its xqute.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess

import pytest
from pipen_helpers import run_pipeline, run_script

# making pipen's venv (first use) and pipen's whole suite take minutes
pytestmark = [pytest.mark.pipen, pytest.mark.timeout(1800)]


def _numbered(out, index: int | None = None) -> list[str]:
    folder = out / "P2" if index is None else out / "P2" / str(index)
    return (folder / "result.txt").read_text().splitlines()


def test_pipens_own_test_suite_passes(pipen_python):
    run = run_script(timeout_s=1500)
    tail = (run.stdout + run.stderr)[-4000:]
    assert run.returncode == 0, tail
    assert " passed" in run.stdout and " failed" not in run.stdout, tail


def test_readme_pipeline_on_the_local_scheduler(pipen_python, tmp_path):
    run = run_pipeline(pipen_python, "local", tmp_path)
    assert run.returncode == 0, run.stdout + run.stderr[-3000:]
    assert _numbered(tmp_path / "out") == ["1\t10", "2\t20", "3\t30"]
    # the wrapped script this xqute wrote ran pipen's job script
    meta = tmp_path / "wd" / "ReadmePipeline" / "P1" / "0"
    assert (meta / "job.wrapped.local").is_file() and (meta / "job.script").is_file()
    assert (meta / "job.rc").read_text().strip() == "0"


@pytest.mark.parametrize(
    ("scheduler", "tools"), [("slurm", ["sbatch"]), ("sge", ["qsub"])]
)
def test_readme_pipeline_on_a_real_cluster(
    pipen_python, tmp_path, services, scheduler, tools
):
    services.require(scheduler, lambda: services.run_script(scheduler, needs=tools))
    opts = '{"poll_interval_s": 0.5}'
    run = run_pipeline(
        pipen_python, scheduler, tmp_path, "--items=3", "--forks=3", f"--opts={opts}"
    )
    assert run.returncode == 0, run.stdout + run.stderr[-3000:]
    for i in range(3):
        assert _numbered(tmp_path / "out", i) == [f"1\t1{i}", f"2\t2{i}", f"3\t3{i}"]
        meta = tmp_path / "wd" / "ReadmePipeline" / "P2" / str(i)
        jid = (meta / "job.jid").read_text().strip()
        assert jid.isdigit(), jid  # a cluster job id, not a local pid file
        assert (meta / f"job.wrapped.{scheduler}").is_file()


def test_a_seed_way_scheduler_plugin_runs_a_pipeline(pipen_python, tmp_path):
    run = run_pipeline(pipen_python, "demo", tmp_path, "--items=2", "--forks=2")
    assert run.returncode == 0, run.stdout + run.stderr[-3000:]
    for i in range(2):
        assert _numbered(tmp_path / "out", i) == [f"1\t1{i}", f"2\t2{i}", f"3\t3{i}"]
        meta = tmp_path / "wd" / "ReadmePipeline" / "P1" / str(i)
        assert (meta / "ran-by").read_text() == "demo\n"
        assert (meta / "job.wrapped.demo").is_file()


@pytest.mark.container
def test_readme_pipeline_in_containers(pipen_python, tmp_path, services):
    """pipen's container scheduler: the workdir and pipen's output folder are
    mounted by the 2.x mount rules; the inputs through ``mount``."""
    image = os.environ.get("XQUTE_CT_IMAGE", "localhost/xqute-test:latest")

    def check() -> str | None:
        reason = services.run_script("containers", "setup", needs=["podman"])
        if reason is None and not shutil.which("podman"):
            reason = "podman is not installed"
        if reason is None:
            found = subprocess.run(["podman", "image", "exists", image], check=False)
            reason = None if found.returncode == 0 else f"no image {image!r}"
        return reason

    services.require("podman", check)
    data = tmp_path / "data"
    opts = {"image": image, "bin": "podman", "mount": [f"{data}:{data}"]}
    run = run_pipeline(
        pipen_python,
        "container",
        tmp_path,
        "--items=2",
        "--forks=2",
        f"--opts={json.dumps(opts)}",
    )
    assert run.returncode == 0, run.stdout + run.stderr[-3000:]
    for i in range(2):
        assert _numbered(tmp_path / "out", i) == [f"1\t1{i}", f"2\t2{i}", f"3\t3{i}"]
    meta = tmp_path / "wd" / "ReadmePipeline" / "P1" / "0"
    script = (meta / "job.wrapped.container").read_text()
    assert "/mnt/disks/.pipen/P1/0" in script  # where the job saw its folder


@pytest.mark.ssh
def test_readme_pipeline_over_ssh(pipen_python, tmp_path, sshd):
    """pipen's ssh scheduler: jobs spread over the two loopback sshd servers."""
    opts = {"servers": sshd.servers("h1", "h2"), "poll_interval_s": 0.5}
    run = run_pipeline(
        pipen_python,
        "ssh",
        tmp_path,
        "--items=4",
        "--forks=4",
        f"--opts={json.dumps(opts)}",
    )
    assert run.returncode == 0, run.stdout + run.stderr[-3000:]
    for i in range(4):
        assert _numbered(tmp_path / "out", i) == [f"1\t1{i}", f"2\t2{i}", f"3\t3{i}"]
    meta = tmp_path / "wd" / "ReadmePipeline" / "P1"
    assert all((meta / str(i) / "job.wrapped.ssh").is_file() for i in range(4))
    servers = {(meta / str(i) / "job.jid").read_text().split(":")[0] for i in range(4)}
    assert servers == {"h1", "h2"}  # the native ids name the server
