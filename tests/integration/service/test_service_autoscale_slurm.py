"""A cluster pool's autoscaler on the real Slurm cluster: its replicas are the
jobs it keeps submitted; jobs sitting pending in Slurm make it scale down (it
submits no more), and a queue that moves makes it scale up again."""

from __future__ import annotations

import os
import subprocess
import threading

import pytest
from service_helpers import wait_final, wait_for

from xqute.orchestration import resource_api
from xqute.queue import WorkerPoolManager

pytestmark = [pytest.mark.service, pytest.mark.slurm, pytest.mark.timeout(300)]


def squeue(prefix: str) -> dict[str, str]:
    """{job id: state} of this test's Slurm jobs."""
    out = subprocess.run(
        ["squeue", "-h", "-o", "%i|%j|%T"], capture_output=True, text=True, check=True
    ).stdout
    jobs = {}
    for line in out.splitlines():
        jid, name, state = line.split("|")
        if name.startswith(prefix):
            jobs[jid] = state
    return jobs


def test_a_cluster_pool_scales_its_submission_window(slurm_cluster, store, tmp_path):
    prefix = f"xqas{os.getpid()}"
    resource_api.configure_autoscaling(
        store.db,
        {"name": "hpc", "target": "pool:hpc", "min_replicas": 1, "max_replicas": 4,
         "metrics": [{"queue_length": {"target": 1}}],
         "scale_up": {"duration": 0, "step": 4},
         "scale_down": {"duration": 1, "step": 1}},
    )  # fmt: skip
    pool = WorkerPoolManager(
        store, 4, backend="slurm", pool_name="hpc", workdir=tmp_path / "jobs",
        autoscale_interval_s=0.5, stall_after_s=2,
        backend_opts={"jobname_prefix": prefix, "hold": True,
                      "poll_interval_s": 0.3, "poll_interval_max_s": 1.0},
    )  # fmt: skip

    def replicas() -> int | None:
        rows = store.db.query(
            "SELECT current FROM autoscaler WHERE policy = 'hpc' AND kind = 'submitted'"
        )
        return rows[0][0] if rows else None

    stop = threading.Event()
    releaser = threading.Thread()
    try:
        pool.start_workers()
        ids = store.submit_jobs({"command": ["true"]} for _ in range(8))
        # 4 submitted (the window), all held by Slurm: stalled, so the window
        # shrinks to 1 and nothing more is submitted
        wait_for(lambda: replicas() == 1, 60, "the window to shrink to 1")
        assert len(squeue(prefix)) == 4
        assert set(squeue(prefix).values()) == {"PENDING"}
        assert store.count_jobs()["running"] == 4  # claimed, sitting in Slurm
        seen: list[int] = []

        def release() -> None:  # from now on the cluster starts what it gets
            while not stop.is_set():
                held = list(squeue(prefix))
                if held:
                    subprocess.run(["scontrol", "release", *held], check=False,
                                   capture_output=True)  # fmt: skip
                seen.append(replicas() or 0)
                stop.wait(0.3)

        releaser = threading.Thread(target=release)
        releaser.start()
        ended = wait_final(store, ids, timeout_s=180)
        assert all(job["state"] == "completed" for job in ended.values())
        assert max(seen) > 1  # the window grew again once jobs ran
    finally:
        stop.set()
        if releaser.is_alive():
            releaser.join()
        pool.stop_workers(now=True, timeout_s=60)
        leftover = list(squeue(prefix))
        if leftover:
            subprocess.run(["scancel", *leftover], check=False)
