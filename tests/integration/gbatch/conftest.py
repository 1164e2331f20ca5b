"""The gcloud batch simulator (tests/tools/gcloud) for the gbatch backend's tests.

Each test gets its own simulator state dir and a workdir prefix in one bucket;
the buckets dir is shared by the session, and so is the cloudpathlib client that
maps gs:// to it: the driver (through the client) and the simulated VMs (through
the simulator's mounts) see the same files. At teardown every simulated job
still running is killed (``gcloud simulator reap --purge``).
"""

from __future__ import annotations

import gc
import json
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
SIM_BIN = ROOT / "tests" / "tools" / "gcloud"
GCLOUD = SIM_BIN / "gcloud"
BUCKET = "xqute-test"


def _check_simulator() -> str | None:
    try:
        import cloudpathlib  # noqa: F401
    except ImportError:
        return "cloudpathlib is not installed (pip install -e '.[test]')"
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        return "the simulator's per-job mounts (namespace mode) need root and unshare"
    try:
        proc = subprocess.run(
            [str(GCLOUD), "version"], capture_output=True, text=True, timeout=30
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"{GCLOUD} does not run: {exc}"
    return None if proc.returncode == 0 else proc.stderr.strip()


@pytest.fixture(scope="session")
def gcs(tmp_path_factory):
    """(buckets dir, client) for the session. One client that lives as long as
    the session: a cloudpathlib object collected by the cyclic GC while pytest
    parses a module trips a CPython 3.11.7 bug ("AST constructor recursion depth
    mismatch"), so leftovers are collected here, at the end."""
    from cloudpathlib.enums import FileCacheMode
    from cloudpathlib.local import LocalGSClient

    buckets = tmp_path_factory.mktemp("buckets")
    (buckets / BUCKET).mkdir()
    client = LocalGSClient(
        local_storage_dir=buckets,
        file_cache_mode=FileCacheMode.close_file,
        # not the default TemporaryDirectory, which warns when collected
        local_cache_dir=tmp_path_factory.mktemp("gcs-cache"),
    )
    yield buckets, client
    gc.collect()


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
    services.require("gcloud simulator", _check_simulator)
    buckets, client = gcs
    state = tmp_path / "sim-state"
    for key, value in {
        "GBATCH_SIM_DIR": str(state),
        "GBATCH_SIM_BUCKETS_DIR": str(buckets),
        "GBATCH_SIM_QUEUE_DELAY_S": "0.05",
        "GBATCH_SIM_SCHEDULE_DELAY_S": "0.05",
        "GBATCH_SIM_DELETE_DELAY_S": "0.5",
        "GBATCH_SIM_KILL_GRACE_S": "1",
        "GBATCH_SIM_MOUNT_MODE": "namespace",
        "PATH": f"{SIM_BIN}{os.pathsep}{os.environ['PATH']}",
    }.items():
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
