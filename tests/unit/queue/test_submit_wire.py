"""The submit socket's wire format (queue/submit_wire.py, the client's side;
queue/submit_answer.py, the daemon's): the request is JSON of the values given,
a bad request is refused by name, an answer is read strictly (a cut or foreign
one is no answer), and a request for another db of the same stem is not
queued here."""

from __future__ import annotations

import json

import pytest

from xqute.queue import JobStore
from xqute.queue.submit_answer import answer, db_identity
from xqute.queue.submit_wire import Answer, new_token, request_bytes

HOSTILE = "a'b\"c $(touch x) `y` ;|& \n\t\\ é 🎉 [bold]x[/bold] {} \udcff"
TOKEN = "0123456789abcdef"


@pytest.fixture
def store(tmp_path):
    s = JobStore(tmp_path / "q.db")
    s.db.query("SELECT 1")  # the db exists
    yield s
    s.close()


def request(db_path: str, **fields) -> bytes:
    base = {"v": 1, "token": TOKEN, "db": db_path, "cwd": "/", "command": "x"}
    return json.dumps({**base, **fields}).encode()


def test_the_request_is_json_of_the_values_given():
    token = new_token()
    data = request_bytes(token, "/q.db", ["a", HOSTILE], "/w", '{"A": "1"}',
                         "1-2", {"name": "n", "cpus": 2, "mem": None})  # fmt: skip
    assert data.isascii()  # a string that is not UTF-8 travels escaped
    assert json.loads(data) == {
        "v": 1, "token": token, "db": "/q.db", "command": ["a", HOSTILE],
        "array": "1-2", "cwd": "/w", "env": '{"A": "1"}',
        "job": {"name": "n", "cpus": 2},
    }  # fmt: skip
    assert len(token) == 32 and token != new_token()


@pytest.mark.parametrize(
    ("fields", "says"),
    [
        ({"cwd": "rel"}, "cwd 'rel' is not an absolute path"),
        ({"db": "q.db"}, "db 'q.db' is not an absolute path"),
        ({"command": [1]}, "command [1] is not a non-empty string or list of strings"),
        ({"command": ""}, "command '' is not a non-empty string"),
        ({"token": "t"}, "submit token 't' is not 16-64 lowercase hex digits"),
        ({"job": {"rm": 1}}, "job key 'rm' is not one of name, cpus"),
        ({"job": {"cpus": "2"}}, "job cpus '2' is not a int"),
        ({"job": {"cpus": True}}, "job cpus True is not a int"),
        ({"env": '{"A": 1}'}, "is not null or a JSON object of strings"),
        ({"array": 5}, "array 5 is not null or a string"),
        ({"array": "1-3%\u00b2"}, "%N needs a positive integer N"),
        ({"job": {"priority": 2**70}}, "is out of range"),
    ],
)
def test_a_bad_request_is_refused_by_name(store, fields, says):
    text = answer(store, request(store.db.path, **fields), db_identity(store.db.path))
    assert text.startswith("error 2\n") and says in text
    assert store.db.query("SELECT count(*) FROM job_queue")[0][0] == 0


@pytest.mark.parametrize(
    ("data", "says"),
    [
        (b"not json", "not JSON"),
        (b'{"v": 99}', "protocol 99 is not 1"),
        (b"[1]", "protocol None"),
    ],
)
def test_what_is_not_a_request_is_refused(store, data, says):
    text = answer(store, data, db_identity(store.db.path))
    assert text.startswith("error 2\n") and says in text


def test_a_request_for_another_db_is_not_queued_here(store, tmp_path):
    served = db_identity(store.db.path)
    for other in (tmp_path / "q.sqlite", tmp_path / "q"):  # same stem, same socket
        assert answer(store, request(str(other)), served) == "other-db\n"
    assert answer(store, request(store.db.path), served).startswith("ok 1 1\n")


@pytest.mark.parametrize(
    ("text", "ids", "warning", "error", "code"),
    [
        ("ok 3 5\n", [3, 4, 5], None, None, 0),
        ("ok 7 7\nno running pool can ever run it", [7], "no running pool can"
         " ever run it", None, 0),
        ("error 2\nbad --mem", [], None, "bad --mem", 2),
        ("error 1\n", [], None, "the daemon refused the submit", 1),
    ],
)  # fmt: skip
def test_answers_are_read(text, ids, warning, error, code):
    got = Answer.parse(text)
    assert (got.ids, got.warning, got.error, got.exit_code) == (
        ids, warning, error, code
    )  # fmt: skip


@pytest.mark.parametrize(
    "text",
    ["", "ok", "ok 3 5", "ok 3 x\n", "ok 5\n", "ok 5 3\n", "ok 0 0\n",
     "ok \u00b2 3\n", "ok 1 99999999\n", "error\n", "error x\n", "error 0\n",
     "error 3\n", "other-db\n", "hello\n"],
)  # fmt: skip
def test_a_cut_or_foreign_answer_is_none(text):
    assert Answer.parse(text) is None


def test_an_answer_may_name_as_many_ids_as_an_array_has_jobs():
    from xqute.queue import submit_wire
    from xqute.queue.array_jobs import MAX_TASKS

    assert submit_wire._MAX_IDS == MAX_TASKS  # (a literal there: no import)
