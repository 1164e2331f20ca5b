"""``xqute submit`` through the daemon's socket (queue/submit_wire.py, the
client; queue/submit_server.py, the daemon's side): the same job as a submit
straight into the db, bad requests answered, and a request whose answer never
comes queued once, neither lost nor doubled."""

from __future__ import annotations

import json
import os
import socket
import threading

import pytest

from xqute.cli.submit import do_submit
from xqute.errors import ConfigError
from xqute.queue import JobStore
from xqute.queue.paths import socket_path
from xqute.queue.submit_answer import answer, db_identity
from xqute.queue.submit_server import SubmitServer
from xqute.queue.submit_wire import new_token, request_bytes

HOSTILE = "a'b\"c $(touch x) `y` ;|& \n\t\\ é 🎉 [bold]x[/bold] {}"
# the columns a submit writes (not the id, nor when)
SAME = (
    "name, command, working_dir, env, metadata, cpus, mem_mb, gpus, priority,"
    " timeout_s, state, namespace, priority_class, storage_mb"
)


@pytest.fixture
def db(tmp_path):
    return str(tmp_path / "q.db")


@pytest.fixture
def store(db):
    s = JobStore(db)
    s.db.query("SELECT 1")  # the db exists
    yield s
    s.close()


@pytest.fixture
def server(db, store):
    srv = SubmitServer(db)
    assert srv.start()
    yield srv
    srv.close()


def rows(store: JobStore) -> list[tuple]:
    return store.db.query(f"SELECT {SAME} FROM job_queue ORDER BY id")


def tokens(store: JobStore) -> list[tuple]:
    return store.db.query("SELECT token, ids FROM submit_tokens")


def submit(db: str, capsys, *cmd: str, **options) -> tuple[int, str, str]:
    code = do_submit(list(cmd), db=db, **options)
    out, err = capsys.readouterr()
    return code, out, err


def test_a_served_submit_stores_what_a_direct_one_stores(db, store, capsys, tmp_path):
    opts = dict(name="n1", cpus=1, mem="64M", priority=3, timeout="1h",
                env=[f"V={HOSTILE}"], cwd=str(tmp_path))  # fmt: skip
    srv = SubmitServer(db)
    assert srv.start() and os.stat(srv.path).st_mode & 0o777 == 0o600
    try:
        code, out, served_err = submit(db, capsys, "printf", "%s", HOSTILE, **opts)
        assert code == 0 and "no worker pool serves" in served_err  # none here
        served = int(out)
        assert [t[1] for t in tokens(store)] == [f"{served}-{served}"]
    finally:
        srv.close()
    assert not os.path.exists(srv.path)  # removed: the next submit is direct
    code, out, err = submit(db, capsys, "printf", "%s", HOSTILE, **opts)
    assert code == 0 and int(out) == served + 1 and len(tokens(store)) == 1
    assert err == served_err  # the same warning either way
    first, second = rows(store)
    assert first == second
    assert json.loads(first[1]) == ["printf", "%s", HOSTILE]
    assert json.loads(first[3])["V"] == HOSTILE  # the submitter's env, captured
    assert json.loads(first[3])["PATH"] == os.environ["PATH"]


def test_shell_arrays_and_json_go_through_the_socket(db, store, server, capsys):
    code, out, _ = submit(db, capsys, "echo $XQUTE_ARRAY_INDEX", shell=True,
                          array="1-3%2", json_out=True)  # fmt: skip
    assert code == 0
    ids = json.loads(out)["ids"]
    assert len(ids) == 3 and tokens(store)[0][1] == f"{ids[0]}-{ids[-1]}"
    states = store.db.query("SELECT command, state FROM job_queue ORDER BY id")
    assert states == [('"echo $XQUTE_ARRAY_INDEX"', "pending")] * 2 + [
        ('"echo $XQUTE_ARRAY_INDEX"', "held")  # %2: the third waits its turn
    ]


def test_bad_input_is_answered_by_the_daemon_with_the_cli_exit_code(
    db, store, server, capsys
):
    code, out, err = submit(db, capsys, "true", priority_class="nope")
    assert (code, out) == (2, "")
    assert err.startswith("error: ") and "'nope'" in err
    code, _, err = submit(db, capsys, "true", mem="lots")
    assert code == 2 and "'lots'" in err
    code, _, err = submit(db, capsys, "true", cpus=10**20)
    assert code == 2 and "cpus 100000000000000000000 is out of range" in err
    code, _, err = submit(db, capsys, "true", name="x\udcff")
    assert code == 2 and "job_name 'x\\udcff' is not UTF-8 text" in err
    code, _, err = submit(db, capsys, "true", array="1-3000000000")
    assert code == 2 and "more than 1,000,000 jobs" in err
    assert server.answered == 5  # the daemon said so, not this process
    assert rows(store) == [] and tokens(store) == []


def test_a_token_queues_its_jobs_once(store):
    token = new_token()
    first = store.submit_jobs([{"command": "true"}], token=token)
    again = store.submit_jobs([{"command": "true"}], token=token)
    assert first == again and len(rows(store)) == 1
    arr = store.submit_array("true", "1-3", token=(t2 := new_token()))
    assert store.submit_array("true", "1-3", token=t2) == arr
    assert len(rows(store)) == 4
    with pytest.raises(ConfigError, match="'x; drop' is not 16-64"):
        store.submit_jobs([{"command": "true"}], token="x; drop")


def fake_daemon(db: str, commit: bool) -> threading.Thread:
    """A daemon that reads the request, maybe queues it, and dies before it
    answers (its connection closes)."""
    path = socket_path(db)
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    listener.listen(1)

    def serve() -> None:
        conn, _ = listener.accept()
        data = b""
        while chunk := conn.recv(65536):
            data += chunk
        if commit:
            s = JobStore(db)
            assert answer(s, data, db_identity(db)).startswith("ok ")
            s.close()
        conn.close()
        listener.close()
        os.unlink(path)

    thread = threading.Thread(target=serve)
    thread.start()
    return thread


@pytest.mark.parametrize("committed", [True, False])
def test_an_unanswered_submit_is_queued_once(db, store, capsys, committed):
    thread = fake_daemon(db, committed)
    code, out, _ = submit(db, capsys, "echo", "once")
    thread.join()
    assert code == 0
    (job,) = store.db.query("SELECT id, command FROM job_queue")
    assert job == (int(out), '["echo", "once"]')
    assert len(tokens(store)) == 1  # the client's fallback carried the token


def test_no_daemon_behind_a_socket_file_means_a_direct_submit(db, store, capsys):
    dead = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    dead.bind(socket_path(db))  # bound, never listening: connect is refused
    try:
        code, out, err = submit(db, capsys, "true")
    finally:
        dead.close()
    assert code == 0 and int(out) == 1 and "no worker pool serves" in err
    assert tokens(store) == []


def test_a_path_too_long_for_a_socket_is_not_served(tmp_path):
    deep = tmp_path / ("d" * 120)
    deep.mkdir()
    srv = SubmitServer(deep / "q.db")
    assert not srv.start()
    srv.close()


@pytest.mark.skipif(os.getuid() != 0, reason="needs root to be another user")
def test_another_user_is_refused(db, store, server):
    os.chmod(server.path, 0o666)  # only the uid check stands in the way
    opened = []  # the folders above it, searchable by others for a moment
    folder = os.path.dirname(db)
    while not os.stat(folder).st_mode & 0o001:
        opened.append((folder, os.stat(folder).st_mode & 0o7777))
        os.chmod(folder, 0o711)
        folder = os.path.dirname(folder)
    try:
        pid = os.fork()
        if pid == 0:  # pragma: no cover (the child)
            code = 3
            try:
                os.setuid(65534)
                sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                code = 2
                sock.connect(server.path)
                code = 1
                sock.sendall(request_bytes(new_token(), db, "true", "/", None))
                sock.shutdown(socket.SHUT_WR)
                code = 0 if sock.recv(100) == b"" else 1
            except ConnectionError:
                code = 0 if code == 1 else code
            finally:
                os._exit(code)
        _, status = os.waitpid(pid, 0)
    finally:
        for path, mode in opened:
            os.chmod(path, mode)
    assert os.waitstatus_to_exitcode(status) == 0  # connected, then closed unanswered
    assert rows(store) == []


#: what a served ``xqute submit`` imports beyond ``import re`` (pip's console
#: script does that): no SQLite, no schema, no store (bench/queue.py times it)
SERVED_MODULES = {
    "xqute", "xqute.errors", "xqute.checks", "xqute.cli", "xqute.cli._fast",
    "xqute.cli.submit", "xqute.queue", "xqute.queue.exports",
    "xqute.queue.jsontext", "_json", "xqute.queue.paths",
    "xqute.queue.submit_wire", "_socket", "collections.abc", "__future__",
}  # fmt: skip


def test_a_served_submit_imports_no_sqlite(db, store, server):
    from cli_imports import imported_by

    imported = imported_by(["submit", "--db", db, "--", "true"], "re")
    assert imported <= SERVED_MODULES, imported - SERVED_MODULES
    assert [t[1] for t in tokens(store)] == ["1-1"]  # the daemon queued it
