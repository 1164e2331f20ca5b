"""A real single-node HTCondor pool for the HTCondor backend's tests.

The session fixture asks ``scripts/services/htcondor.sh`` for the pool (started
only with XQUTE_START_SERVICES=1, see tests/conftest.py) and skips the tests
(fails them under XQUTE_REQUIRE_SERVICES=1) with the reason when it cannot take
jobs.

HTCondor refuses jobs from root, so the pool has a plain submit user: the
``condor_*`` tools the script installs run as that user when root calls them,
and the jobs run as that user. The job folders must be writable by it: each
test's folder is under the script's shared folder (/tmp/xqute-htcondor, whose
default ACL gives the submit user rwx on everything created beneath it), not
under pytest's own tmp_path (mode 0700). Each test gets a job-name prefix;
whatever it leaves in the queue under that prefix is removed afterwards.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from pathlib import Path

import pytest
from cluster_helpers import Cluster

SHARED = Path(os.environ.get("HTCONDOR_SHARED", "/tmp/xqute-htcondor"))
SUBMIT_USER = os.environ.get("HTCONDOR_USER", "xqute-condor")


@pytest.fixture(scope="session")
def htcondor_pool(services) -> None:
    services.require(
        "htcondor", lambda: services.run_script("htcondor", needs=["condor_submit"])
    )


class HTCondor(Cluster):
    scheduler = "htcondor"
    kill_tool = "condor_rm"

    def ads(self, *ids: str, attrs: str = "ClusterId,ProcId,JobBatchName") -> list:
        out = self.run("condor_q", *ids, "-json", "-attributes", attrs)
        return json.loads(out) if out.strip() else []

    def jobs(self) -> dict[str, str]:
        """{C.P: batch name} of every job in the queue (the submit user's)."""
        return {
            f"{a['ClusterId']}.{a['ProcId']}": a.get("JobBatchName", "")
            for a in self.ads()
        }

    def alive(self, ids: list[str]) -> list[str]:
        """Those of ``ids`` still in the queue (idle, running, held, leaving)."""
        listed = self.jobs()
        return [i for i in ids if i in listed]

    def show(self, jid: str) -> str:
        return self.run("condor_q", jid, "-long")


@pytest.fixture
def shared_path() -> Path:
    """A folder the pool's submit user may write to (see the module docstring)."""
    path = SHARED / "tests" / uuid.uuid4().hex[:8]
    path.mkdir(parents=True)
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def htcondor(htcondor_pool) -> HTCondor:
    cluster = HTCondor()
    yield cluster
    cluster.cleanup()
