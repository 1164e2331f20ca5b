"""Cancelling a running queue job (``xqute cancel``) gives its process group
one SIGTERM and the pool's ``kill_grace_s`` before SIGKILL, like the engine."""

import os
import subprocess
import sys
import textwrap
import time

import pytest
from service_helpers import wait_final, wait_for

pytestmark = pytest.mark.service

CHECKPOINTER = textwrap.dedent("""
    import pathlib, signal, sys, time
    out = pathlib.Path(sys.argv[1])
    terms = []
    signal.signal(signal.SIGTERM, lambda *_: terms.append(1))
    (out / "ready").write_text("")
    while not terms:
        time.sleep(0.01)
    time.sleep(1.5)  # saving its work
    (out / "saved").write_text(str(len(terms)))
""")


@pytest.mark.parametrize("shell", [False, True], ids=["argv", "shell"])
def test_cancel_gives_one_term_and_the_grace(daemon, store, db_path, tmp_path, shell):
    daemon(workers=1, cpus=1, backend_opts={"kill_grace_s": 5})
    script = tmp_path / "checkpointer.py"
    script.write_text(CHECKPOINTER)
    argv = [sys.executable, str(script), str(tmp_path)]
    job_id = store.submit_job(" ".join(argv) if shell else argv)
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
