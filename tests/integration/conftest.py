"""The real services of the integration tests, one session fixture each.

Each starts its service through ``scripts/services/<name>.sh`` (only with
XQUTE_START_SERVICES=1, else it asks ``status``; idempotent: about a second when
it runs already) and skips the tests that need it, saying why, when it cannot
take jobs (fails them under XQUTE_REQUIRE_SERVICES=1). They live here,
above the per-backend folders, because the shared backend suite (``backends/``)
needs all of them. How each is reached: ``backend_services.py``.
"""

from __future__ import annotations

import gc

import backend_services as bs
import pytest


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
