"""The real services of the integration tests, one session fixture each.

Each starts its service through ``scripts/services/<name>.sh`` (only with
XQUTE_START_SERVICES=1, else it asks ``status``; idempotent: about a second when
it runs already) and skips the tests that need it, saying why, when it cannot
take jobs (fails them under XQUTE_REQUIRE_SERVICES=1). They live here,
above the per-backend folders, because the shared backend suite (``backends/``)
needs all of them. How each is reached: ``backend_services.py``.

Below them, the queue's own fixtures (``db_path``, ``store``, ``daemon``: real
daemons in a test's temp dir), shared by the service, workflows and web tests.
"""

from __future__ import annotations

import contextlib
import gc

import backend_services as bs
import pytest
from leftovers import kill_leftovers

from xqute.queue import SchedulerService, SqliteJobScheduler


@pytest.fixture(scope="session")
def slurm_cluster(services) -> None:
    services.require("slurm", lambda: services.run_script("slurm", needs=["sbatch"]))


@pytest.fixture(scope="session")
def sge_cluster(services) -> None:
    services.require("sge", lambda: services.run_script("sge", needs=["qsub"]))


@pytest.fixture(scope="session")
def htcondor_pool(services) -> None:
    services.require(
        "htcondor", lambda: services.run_script("htcondor", needs=["condor_submit"])
    )


@pytest.fixture(scope="session")
def sshd(services) -> bs.Sshd:
    """h1 = 127.0.0.1:2222 and h2 = 127.0.0.2:2223, key-only, root login."""
    services.require("sshd", lambda: bs.check_sshd(services.run_script))
    return bs.sshd_handle()


@pytest.fixture(scope="session")
def container_services(services) -> dict[str, object]:
    """{"engines": [...], "image": ..., "error": reason or None}."""
    return bs.setup_containers(services.run_script)


@pytest.fixture(scope="session")
def gcs(tmp_path_factory):
    """(buckets dir, client) for the session. One client that lives as long as
    the session: a cloudpathlib object collected by the cyclic GC while pytest
    parses a module trips a CPython 3.11.7 bug ("AST constructor recursion depth
    mismatch"), so leftovers are collected here, at the end."""
    buckets = tmp_path_factory.mktemp("buckets")
    (buckets / bs.GCS_BUCKET).mkdir()
    client = bs.gcs_client(buckets, tmp_path_factory.mktemp("gcs-cache"))
    yield buckets, client
    gc.collect()


@pytest.fixture
def small_fs(tmp_path):
    """``small_fs(size)``: a tmpfs of ``size`` ("256k", "4m") mounted in
    tmp_path, for tests that fill a disk for real (root only: skipped
    otherwise); unmounted at teardown whatever happened."""
    import os
    import subprocess

    mounts = []

    def mount(size: str):
        if os.geteuid() != 0:
            pytest.skip("mounting a small tmpfs needs root")
        mnt = tmp_path / f"fs-{len(mounts)}"
        mnt.mkdir()
        subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={size},mode=0700", "tmpfs", str(mnt)],
            check=True,
        )
        mounts.append(mnt)
        return mnt

    yield mount
    for mnt in mounts:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


CHECKPOINTER = """
import pathlib, signal, sys, time
out = pathlib.Path(sys.argv[1])
terms = []
signal.signal(signal.SIGTERM, lambda *_: terms.append(1))
(out / "ready").write_text("")
while not terms:
    time.sleep(0.01)
time.sleep(1.5)  # saving its work
(out / "saved").write_text(str(len(terms)))
"""


@pytest.fixture
def checkpointer(tmp_path):
    """(argv, shell string) of a job that writes tmp_path/ready once it handles
    SIGTERM; on TERM it saves its work for 1.5 s, then writes how many TERMs it
    got to tmp_path/saved (the kill rule: exactly one, and the grace)."""
    import sys

    script = tmp_path / "checkpointer.py"
    script.write_text(CHECKPOINTER)
    argv = [sys.executable, str(script), str(tmp_path)]
    return argv, " ".join(argv)


@pytest.fixture
def db_path(tmp_path):
    return tmp_path / "queue.db"


@pytest.fixture
def store(db_path):
    store = SqliteJobScheduler(db_path)
    yield store
    store.close()


@pytest.fixture
def daemon(db_path, tmp_path):
    """start(workers, **pool_opts) -> a running SchedulerService on db_path;
    teardown stops them and kills whatever mentions the test's folder."""
    services: list[SchedulerService] = []

    def start(workers: int = 4, **opts) -> SchedulerService:
        opts.setdefault("backend_opts", {"kill_grace_s": 1})
        service = SchedulerService(db_path, workers, **opts)
        service.start()
        services.append(service)
        return service

    yield start
    for service in services:
        with contextlib.suppress(Exception):
            service.stop(now=True, timeout_s=15)
    kill_leftovers(str(tmp_path))
