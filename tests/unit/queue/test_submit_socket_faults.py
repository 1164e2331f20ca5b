"""The submit socket when something is off: a listener of another user is
never sent a job, a stuck client does not hold the others, a request that
fails does not end the serving, another db of the same stem is written
directly, and a file in the socket's place is left alone."""

from __future__ import annotations

import os
import socket
import threading
import time

import pytest

from xqute.cli.submit import do_submit
from xqute.queue import JobStore, submit_server
from xqute.queue.paths import socket_path
from xqute.queue.submit_server import SubmitServer


@pytest.fixture
def db(tmp_path):
    path = str(tmp_path / "q.db")
    JobStore(path).db.query("SELECT 1")  # the db exists
    return path


@pytest.fixture
def server(db):
    srv = SubmitServer(db)
    assert srv.start()
    yield srv
    srv.close()


def served_ids(db: str) -> list[str]:
    rows = JobStore(db).db.query("SELECT ids FROM submit_tokens")
    return sorted(r[0] for r in rows)


def test_a_stuck_client_does_not_hold_the_others(db, server, capsys, monkeypatch):
    monkeypatch.setattr(submit_server, "READ_DEADLINE_S", 0.3)
    stop = threading.Event()

    def dribble() -> None:  # a byte every 0.1 s: each read is quick, the whole not
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as stuck:
            stuck.connect(server.path)
            while not stop.wait(0.1):
                try:
                    stuck.sendall(b" ")
                except OSError:
                    return

    thread = threading.Thread(target=dribble)
    thread.start()
    try:
        time.sleep(0.1)  # it holds the server's thread
        began = time.monotonic()
        assert do_submit(["true"], db=db) == 0
        assert time.monotonic() - began < 2
    finally:
        stop.set()
        thread.join()
    assert served_ids(db) == ["1-1"]  # the daemon's answer, not a fallback


def test_a_request_that_fails_does_not_end_the_serving(db, server, monkeypatch):
    calls = []

    def broken(*args):
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("a bug")
        return real(*args)

    real = submit_server.answer
    monkeypatch.setattr(submit_server, "answer", broken)
    assert do_submit(["true"], db=db) == 0  # unanswered: the client submitted it
    assert do_submit(["true"], db=db) == 0  # answered
    assert len(calls) == 2 and server.answered == 1
    assert served_ids(db) == ["1-1", "2-2"]  # the first by the client's fallback


def test_another_db_of_the_same_stem_is_written_directly(db, server, tmp_path):
    other = str(tmp_path / "q.sqlite")
    assert socket_path(other) == server.path
    assert do_submit(["true"], db=other) == 0
    assert JobStore(other).db.query("SELECT id FROM job_queue") == [(1,)]
    assert JobStore(db).db.query("SELECT count(*) FROM job_queue") == [(0,)]
    assert served_ids(other) == []


def test_a_file_in_the_sockets_place_is_left_alone(db):
    with open(socket_path(db), "w") as f:
        f.write("mine")
    srv = SubmitServer(db)
    assert not srv.start()
    srv.close()
    with open(socket_path(db)) as f:
        assert f.read() == "mine"


@pytest.mark.skipif(os.getuid() != 0, reason="needs root to be another user")
def test_a_listener_of_another_user_is_never_sent_the_job(db, capsys):
    folder = os.path.dirname(db)
    modes = []  # the folders up to it, writable by others for a moment (/tmp)
    path = folder
    while path != "/":
        modes.append((path, os.stat(path).st_mode & 0o7777))
        path = os.path.dirname(path)
    os.chmod(folder, 0o1777)
    for path, mode in modes[1:]:
        os.chmod(path, mode | 0o011)
    ready_r, ready_w = os.pipe()
    got_r, got_w = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover (the child: another user's listener)
        got = b"?"
        try:
            os.setuid(65534)
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.bind(socket_path(db))
            sock.listen(1)
            sock.settimeout(10)
            os.write(ready_w, b"!")
            conn, _ = sock.accept()
            conn.settimeout(5)
            got = conn.recv(100) or b"nothing"
            conn.sendall(b"ok 1 1\n")
        finally:
            os.write(got_w, got[:20])
            os._exit(0)
    try:
        assert os.read(ready_r, 1) == b"!"
        code = do_submit(["echo", "secret"], db=db)
        err = capsys.readouterr().err
        assert code == 0 and "no worker pool serves" in err  # written directly
        assert os.read(got_r, 20) == b"nothing"  # connected, checked, never sent
        assert JobStore(db).db.query("SELECT command FROM job_queue") == [
            ('["echo", "secret"]',)
        ]
    finally:
        os.waitpid(pid, 0)
        for path, mode in modes:
            os.chmod(path, mode)
        for fd in (ready_r, ready_w, got_r, got_w):
            os.close(fd)


@pytest.mark.parametrize("daemon", [False, True])
def test_a_reader_that_left_costs_no_traceback(db, daemon, tmp_path):
    """``xqute submit ... | head -0``: the job is queued, the id has nowhere to
    go; the command (the console script's quick end included) says nothing."""
    import subprocess
    import sys

    srv = SubmitServer(db) if daemon else None
    assert srv is None or srv.start()
    read, write = os.pipe()
    os.close(read)
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "xqute", "submit", "--db", db, "--", "true"],
            stdout=write, stderr=subprocess.PIPE, text=True, timeout=60,
        )  # fmt: skip
    finally:
        os.close(write)
        if srv is not None:
            srv.close()
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr
    assert JobStore(db).db.query("SELECT count(*) FROM job_queue") == [(1,)]
