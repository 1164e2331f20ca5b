"""``xqute submit`` hands its job to a running daemon over the daemon's socket
(queue/submit_wire.py): the job is the one a submit into the db makes, and a
daemon killed while a submit waits for its answer neither loses nor doubles
it (the client submits itself, with the request's token)."""

import os
import signal
import subprocess
import sys
import time

import pytest
from service_helpers import read, wait_final

from xqute.queue.paths import socket_path

pytestmark = pytest.mark.service


def submit(db_path, *args, **kw):
    return subprocess.Popen(
        [sys.executable, "-m", "xqute", "submit", "--db", str(db_path), *args],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw,
    )  # fmt: skip


def tokens(store):
    return store.db.query("SELECT ids FROM submit_tokens ORDER BY at")


def test_a_submit_goes_through_the_daemon(daemon, store, db_path, tmp_path):
    service = daemon(workers=1, cpus=1)
    sock = socket_path(str(db_path))
    assert os.stat(sock).st_mode & 0o777 == 0o600
    here = tmp_path / "here"
    here.mkdir()
    env = {**os.environ, "ONLY_MINE": 'it\'s "mine" $(not run)'}
    proc = submit(db_path, "--shell", 'echo "$ONLY_MINE|$PWD"', env=env, cwd=here)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    job_id = int(out)
    assert tokens(store) == [(f"{job_id}-{job_id}",)]  # the daemon queued it
    job = wait_final(store, [job_id])[job_id]
    assert job["state"] == "completed"
    assert read(job["stdout"]).strip() == f'it\'s "mine" $(not run)|{here}'
    service.stop(timeout_s=30)
    assert not os.path.exists(sock)  # gone with its daemon: submits go direct


def test_a_daemon_killed_while_a_submit_waits_loses_and_doubles_nothing(
    daemon, store, db_path
):
    service = daemon(workers=1, cpus=1)
    pid = service.status()["pid"]
    os.kill(pid, signal.SIGSTOP)  # it accepts (the kernel does) but never answers
    try:
        proc = submit(db_path, "--", "echo", "once")
        time.sleep(1.0)
        assert proc.poll() is None  # waiting for the answer
    finally:
        os.kill(pid, signal.SIGKILL)
        os.kill(pid, signal.SIGCONT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    (job,) = store.db.query("SELECT id, command, state FROM job_queue")
    assert job == (int(out), '["echo", "once"]', "pending")
    assert tokens(store) == [(f"{job[0]}-{job[0]}",)]  # the client's own, once
    # the next daemon runs it, and takes the dead one's socket over
    daemon(workers=1, cpus=1)
    assert wait_final(store, [job[0]])[job[0]]["state"] == "completed"
    again = submit(db_path, "--", "true")
    out, err = again.communicate(timeout=60)
    assert again.returncode == 0 and len(tokens(store)) == 2, err
