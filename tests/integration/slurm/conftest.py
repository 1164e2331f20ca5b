"""A real single-node Slurm cluster for the Slurm backend's tests.

The session fixture runs ``scripts/services/slurm.sh start`` (idempotent: ~0.3 s
on a running cluster) and skips the tests (fails them under
XQUTE_REQUIRE_SERVICES=1) with the reason when the cluster cannot take jobs.
Each test gets a job-name prefix; whatever it leaves in the queue under that
prefix is cancelled afterwards.
"""

from __future__ import annotations

import shutil
import subprocess
import uuid
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
SCRIPT = ROOT / "scripts" / "services" / "slurm.sh"


def _start() -> str | None:
    if shutil.which("sbatch") is None and shutil.which("apt-get") is None:
        return "sbatch is not installed and cannot be (no apt-get)"
    try:
        proc = subprocess.run(
            ["bash", str(SCRIPT), "start"], capture_output=True, text=True, timeout=600
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"{SCRIPT.name} start failed: {exc}"
    if proc.returncode != 0:
        return f"{SCRIPT.name} start failed: {proc.stderr.strip()[-300:]}"
    return None


@pytest.fixture(scope="session")
def slurm_cluster(request) -> None:
    root = str(ROOT / "tests" / "conftest.py")
    conftest = request.config.pluginmanager.get_plugin(root)
    conftest.require_service("slurm", _start)


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
