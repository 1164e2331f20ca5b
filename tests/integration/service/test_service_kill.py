"""Cancelling a running queue job (``xqute cancel``) gives its process group
one SIGTERM and the pool's ``kill_grace_s`` before SIGKILL, like the engine."""

import os
import subprocess
import sys
import time

import pytest
from service_helpers import wait_final, wait_for

pytestmark = pytest.mark.service


@pytest.mark.parametrize("shell", [False, True], ids=["argv", "shell"])
def test_cancel_gives_one_term_and_the_grace(
    daemon, store, db_path, tmp_path, checkpointer, shell
):
    daemon(workers=1, cpus=1, backend_opts={"kill_grace_s": 5})
    job_id = store.submit_job(checkpointer[1] if shell else checkpointer[0])
    wait_for((tmp_path / "ready").exists, 30, "the job to start")
    out = subprocess.run(
        [sys.executable, "-m", "xqute", "cancel", "--db", str(db_path), str(job_id)],
        capture_output=True,
        text=True,
        env={**os.environ},
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    began = time.monotonic()
    job = wait_final(store, [job_id])[job_id]
    assert (tmp_path / "saved").read_text() == "1"  # one TERM; not KILLed early
    assert job["state"] == "cancelled"
    assert time.monotonic() - began < 5
