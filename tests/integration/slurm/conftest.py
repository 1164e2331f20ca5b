"""A real single-node Slurm cluster for the Slurm backend's tests.

The session fixture runs ``scripts/services/slurm.sh start`` (idempotent: ~0.3 s
on a running cluster) and skips the tests (fails them under
XQUTE_REQUIRE_SERVICES=1) with the reason when the cluster cannot take jobs.
Each test gets a job-name prefix; whatever it leaves in the queue under that
prefix is cancelled afterwards (``cluster_helpers.Cluster``).
"""

from __future__ import annotations

import pytest
from cluster_helpers import Cluster


@pytest.fixture(scope="session")
def slurm_cluster(services) -> None:
    services.require("slurm", lambda: services.run_script("slurm", needs=["sbatch"]))


class Slurm(Cluster):
    scheduler = "slurm"
    kill_tool = "scancel"

    def jobs(self) -> dict[str, str]:
        lines = self.run("squeue", "-h", "-r", "-o", "%i|%j").splitlines()
        return dict(line.partition("|")[::2] for line in lines)

    def alive(self, ids: list[str]) -> list[str]:
        """Those of ``ids`` still pending, running or completing."""
        out = self.run(
            "squeue",
            "-h",
            "-r",
            "-t",
            "PD,R,CG,S",
            "--jobs=" + ",".join(ids),
            "-o",
            "%i",
        )
        return out.split()

    def show(self, jid: str) -> str:
        return self.run("scontrol", "show", "job", jid)


@pytest.fixture
def slurm(slurm_cluster) -> Slurm:
    cluster = Slurm()
    yield cluster
    cluster.cleanup()
