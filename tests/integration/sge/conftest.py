"""A real single-node Grid Engine cluster for the SGE backend's tests.

The session fixture runs ``scripts/services/sge.sh start`` (idempotent: ~1 s on a
running cluster) and skips the tests (fails them under XQUTE_REQUIRE_SERVICES=1)
with the reason when the queue cannot take jobs. Each test gets a job-name
prefix; whatever it leaves in the queue under that prefix is deleted afterwards
(``cluster_helpers.Cluster``).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest
from cluster_helpers import Cluster


@pytest.fixture(scope="session")
def sge_cluster(services) -> None:
    services.require("sge", lambda: services.run_script("sge", needs=["qsub"]))


class Sge(Cluster):
    scheduler = "sge"
    kill_tool = "qdel"
    # a job deleted while queued leaves no trace: it is resolved when the lost
    # grace ends (SGE flushes accounting every 1 s on the test cluster)
    options = {"lost_grace_s": 3}

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


@pytest.fixture
def sge(sge_cluster) -> Sge:
    cluster = Sge()
    yield cluster
    cluster.cleanup()
