"""The ``backend`` fixture: one shared behaviour suite, every backend.

``backend`` is parametrized over ``targets.TARGETS`` (ids: local, slurm, sge,
htcondor, ssh, podman, docker, gbatch, queue), each marked with its service's marker, so
``pytest -m sge`` runs the suite on SGE alone and ``-k podman`` on podman alone.
It starts the service (or skips saying why, see tests/conftest.py), gives the
test a ``Target`` with a job-name prefix of its own, and afterwards removes what
the test left in the backend and kills any process that mentions its folder.

``run_driver`` runs an engine in a driver process of its own, for the scenarios
that signal the driver.
"""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from leftovers import kill_leftovers
from targets import TARGETS, HTCondor, Sge, Slurm, Target


def _param(target: type[Target]) -> object:
    marks = [getattr(pytest.mark, target.marker)] if target.marker else []
    return pytest.param(target, id=target.name, marks=marks)


def _use(cls: type[Target], request, tmp_path):
    target = cls(request, tmp_path)
    target.setup()
    yield target
    try:
        target.cleanup()
    finally:
        kill_leftovers(str(tmp_path))


@pytest.fixture(params=[_param(t) for t in TARGETS])
def backend(request, tmp_path) -> Target:
    yield from _use(request.param, request, tmp_path)


@pytest.fixture
def slurm(request, tmp_path) -> Slurm:
    """The Slurm target alone, for its own tests (test_slurm_cluster.py)."""
    yield from _use(Slurm, request, tmp_path)


@pytest.fixture
def htcondor(request, tmp_path) -> HTCondor:
    """The HTCondor target alone, for its own tests (test_htcondor_cluster.py)."""
    yield from _use(HTCondor, request, tmp_path)


@pytest.fixture
def sge(request, tmp_path) -> Sge:
    """The SGE target alone, for its own tests (test_sge_cluster.py)."""
    yield from _use(Sge, request, tmp_path)


DRIVER = textwrap.dedent("""
    import asyncio, json, sys
    from xqute import Xqute, Interrupted

    config = json.loads(sys.argv[1])
    opts = config["opts"]
    if config.get("gcs"):
        from cloudpathlib.local import LocalGSClient
        opts["gs_client"] = LocalGSClient(local_storage_dir=config["gcs"])

    async def main():
        xqute = Xqute(config["scheduler"], workdir=config["workdir"],
                      jobname_prefix=config["prefix"], forks=len(config["cmds"]),
                      scheduler_opts=opts)
        for cmd in config["cmds"]:
            await xqute.feed(cmd)
        try:
            await xqute.run_until_complete()
        except Interrupted:
            print("interrupted", flush=True)

    asyncio.run(main())
""")


@pytest.fixture
def run_driver(backend):
    """``await run_driver(cmds)``: a driver process feeds ``cmds`` to ``backend``;
    once every job runs, it gets SIGINT. Returns (native ids, the contents of
    each job.rc, the driver's stdout)."""

    async def start(cmds: list) -> tuple[list[str], list[str | None], str]:
        workdir = backend.workdir("driven")
        files = backend.files(workdir)
        config = {**backend.driver_config(workdir), "cmds": cmds}
        proc = subprocess.Popen(
            [sys.executable, "-c", DRIVER, json.dumps(config)],
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            status = [files / str(i) / "job.status" for i in range(len(cmds))]
            deadline = time.monotonic() + 60
            while not all(_reads(p) == "3" for p in status):
                assert proc.poll() is None, "the driver ended before its jobs ran"
                assert time.monotonic() < deadline, "the jobs did not all start"
                await asyncio.sleep(0.2)
            ids = [_reads(files / str(i) / "job.jid") for i in range(len(cmds))]
            proc.send_signal(signal.SIGINT)
            out, _ = proc.communicate(timeout=60)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        rcs = [_reads(files / str(i) / "job.rc") for i in range(len(cmds))]
        return ids, rcs, out

    return start


def _reads(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except OSError:
        return None
