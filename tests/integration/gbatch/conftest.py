"""The gcloud batch simulator (tests/tools/gcloud) for the gbatch backend's tests.

Each test gets its own simulator state dir and a workdir prefix in one bucket;
the buckets dir is shared by the session (the ``gcs`` fixture in
tests/integration/conftest.py), and so is the cloudpathlib client that maps
gs:// to it: the driver (through the client) and the simulated VMs (through the
simulator's mounts) see the same files. At teardown every simulated job still
running is killed (``gcloud simulator reap --purge``).
"""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest
from backend_services import (
    GCLOUD,
    GCS_BUCKET,
    check_gcloud_simulator,
    gcloud_sim_env,
)

BUCKET = GCS_BUCKET


@dataclass
class Sim:
    state: Path
    buckets: Path
    client: object
    prefix: str  # this test's folder in the bucket

    @property
    def workdir(self) -> str:
        return f"gs://{BUCKET}/{self.prefix}/wd"

    def local(self, url: str) -> Path:
        """The local folder that stands in for a gs:// URL."""
        return self.buckets / url.removeprefix("gs://")

    def calls(self) -> list[list[str]]:
        """argv (after "gcloud") of every simulator call, in order."""
        path = self.state / "calls.jsonl"
        if not path.exists():
            return []
        return [json.loads(line)["argv"] for line in path.read_text().splitlines()]

    def gcloud(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(GCLOUD), *args], capture_output=True, text=True, timeout=60
        )


@pytest.fixture
def sim(request, tmp_path, monkeypatch, gcs, services):
    services.require("gcloud simulator", check_gcloud_simulator)
    buckets, client = gcs
    state = tmp_path / "sim-state"
    for key, value in gcloud_sim_env(state, buckets).items():
        monkeypatch.setenv(key, value)
    for key in ("CLOUDSDK_CORE_PROJECT", "CLOUDSDK_BATCH_LOCATION"):
        monkeypatch.delenv(key, raising=False)
    prefix = request.node.name.replace("[", "-").replace("]", "")
    yield Sim(state, buckets, client, prefix)
    subprocess.run(
        [str(GCLOUD), "simulator", "reap", "--purge"],
        capture_output=True,
        timeout=60,
    )
