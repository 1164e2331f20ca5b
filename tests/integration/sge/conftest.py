"""A real single-node Grid Engine cluster for the SGE backend's tests.

The session fixture runs ``scripts/services/sge.sh start`` (idempotent: ~1 s on a
running cluster) and skips the tests (fails them under XQUTE_REQUIRE_SERVICES=1)
with the reason when the queue cannot take jobs. Each test gets a job-name
prefix; whatever it leaves in the queue under that prefix is deleted afterwards.
"""

from __future__ import annotations

import subprocess
import uuid
import xml.etree.ElementTree as ET

import pytest


@pytest.fixture(scope="session")
def sge_cluster(services) -> None:
    services.require("sge", lambda: services.run_script("sge", needs=["qsub"]))


class Sge:
    """Looks at the cluster the way a user would."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix

    def run(self, *argv: str) -> str:
        return subprocess.run(argv, capture_output=True, text=True).stdout

    def jobs(self) -> dict[str, str]:
        """{job number: full name} of every job in qstat."""
        root = ET.fromstring(self.run("qstat", "-xml"))
        return {
            e.findtext("JB_job_number"): e.findtext("JB_name")
            for e in root.iter("job_list")
        }

    def alive(self, ids: list[str]) -> list[str]:
        numbers = self.jobs()
        return [i for i in ids if i.split(".")[0] in numbers]

    def show(self, jid: str) -> str:
        return self.run("qstat", "-j", jid.split(".")[0])

    def delete_leftovers(self) -> None:
        ids = [n for n, name in self.jobs().items() if name.startswith(self.prefix)]
        if ids:
            subprocess.run(["qdel", *ids], capture_output=True)


@pytest.fixture
def sge(sge_cluster) -> Sge:
    cluster = Sge(f"xqt{uuid.uuid4().hex[:6]}")
    yield cluster
    cluster.delete_leftovers()
