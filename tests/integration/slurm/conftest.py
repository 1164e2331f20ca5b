"""A real single-node Slurm cluster for the Slurm backend's tests.

The session fixture runs ``scripts/services/slurm.sh start`` (idempotent: ~0.3 s
on a running cluster) and skips the tests (fails them under
XQUTE_REQUIRE_SERVICES=1) with the reason when the cluster cannot take jobs.
Each test gets a job-name prefix; whatever it leaves in the queue under that
prefix is cancelled afterwards.
"""

from __future__ import annotations

import subprocess
import uuid

import pytest


@pytest.fixture(scope="session")
def slurm_cluster(services) -> None:
    services.require("slurm", lambda: services.run_script("slurm", needs=["sbatch"]))


class Slurm:
    """Looks at the cluster the way a user would."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix

    def run(self, *argv: str) -> str:
        return subprocess.run(argv, capture_output=True, text=True).stdout

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

    def cancel_leftovers(self) -> None:
        lines = self.run("squeue", "-h", "-r", "-o", "%i|%j").splitlines()
        ids = [
            i
            for i, _, n in (ln.partition("|") for ln in lines)
            if n.startswith(self.prefix)
        ]
        if ids:
            subprocess.run(["scancel", *ids], capture_output=True)


@pytest.fixture
def slurm(slurm_cluster) -> Slurm:
    cluster = Slurm(f"xqt{uuid.uuid4().hex[:6]}")
    yield cluster
    cluster.cancel_leftovers()
