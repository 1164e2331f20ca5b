"""The workflow verbs through the Typer app (in-process; no job runs here)."""

import json

import pytest
from typer.testing import CliRunner

from xqute.cli import app
from xqute.cli._runview import dag_dot, spanning_parents

runner = CliRunner()
YAML = """\
definitions:
  workflows:
    etl:
      parameters: [{name: day, required: true}]
      tasks:
        - {name: extract, command: [echo, "#{params.day}"]}
        - {name: transform, dependencies: [extract], command: [x, "#{extract.output}"]}
        - {name: load, dependencies: [transform, extract], shell: "echo '[red]x[/]'"}
  jobs:
    hello: {command: [echo, hi]}
"""


@pytest.fixture
def db(tmp_path, monkeypatch):
    monkeypatch.setenv("XQUTE_DB", str(tmp_path / "q.db"))
    monkeypatch.setenv("COLUMNS", "200")
    (tmp_path / "etl.yaml").write_text(YAML)
    return tmp_path


def invoke(*args):
    return runner.invoke(app, list(args))


def test_apply_run_status_graph_watch(db):
    r = invoke("apply", "-f", str(db / "etl.yaml"))
    assert r.exit_code == 0 and "+ workflow etl (v1): created" in r.stdout
    assert "unchanged" in invoke("apply", "-f", str(db / "etl.yaml")).stdout
    r = invoke("workflow", "run", "etl", "-p", "day=d1", "--json")
    assert r.exit_code == 0 and json.loads(r.stdout) == {"id": 1}
    st = json.loads(invoke("workflow", "status", "1", "--json").stdout)
    assert st["state"] == "running" and st["counts"] == {"blocked": 2, "queued": 1}
    text = invoke("workflow", "status", "1").stdout
    assert "extract  queued" in text and "(also after extract)" in text
    dot = invoke("workflow", "graph", "etl", "--dot").stdout
    assert '"transform" -> "load";' in dot
    events = [
        json.loads(line)
        for line in invoke(
            "watch", "--run", "1", "--no-follow", "--json"
        ).stdout.splitlines()
    ]
    assert [e["type"] for e in events] == [
        "workflow.started",
        "task.ready",
        "task.queued",
    ]
    assert (
        json.loads(invoke("workflow", "list", "--runs", "--json").stdout)[0]["id"] == 1
    )
    r = invoke("workflow", "cancel", "1")
    assert r.exit_code == 0 and "cancelling" in r.stdout
    assert (
        json.loads(invoke("workflow", "status", "1", "--json").stdout)["state"]
        == "cancelled"
    )
    assert [j["name"] for j in json.loads(invoke("job", "list", "--json").stdout)] == [
        "hello"
    ]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("workflow", "run", "etl"), "missing required parameter 'day'"),
        (("workflow", "run", "etl", "-p", "dya"), "must look like NAME=VALUE"),
        (("workflow", "run", "elt"), "no workflow 'elt' (did you mean 'etl'?)"),
        (("workflow", "status", "99"), "no run 99"),
        (("job", "status", "nope"), "no job 'nope'"),
        (("watch", "--since", "x"), "must be an event id or 'now'"),
        (("watch", "--run", "99"), "no run 99"),
        (("watch", "--timeout", "-1"), "--timeout '-1' is not a duration"),
        (("workflow", "list", "--runs", "-n", "elt"), "no workflow 'elt' (did you"),
        (("workflow", "list", "--runs", "-l", "0"), "limit 0 must be an integer >= 1"),
        (("job", "status", "helo", "--runs"), "no job 'helo' (did you mean 'hello'?)"),
        (
            ("workflow", "run", "etl", "-p", "day=1", "-p", "day=2"),
            "--param 'day' is given twice",
        ),
    ],
)
def test_bad_input_exits_2_with_one_line(db, args, message):
    invoke("apply", "-f", str(db / "etl.yaml"))
    r = invoke(*args)
    assert r.exit_code == 2, r.output
    assert message in " ".join(r.output.split()) and "Traceback" not in r.output


@pytest.mark.parametrize(
    ("tasks", "parents"),
    [
        ([("a", [])], {"a": None}),
        ([("a", []), ("b", ["a"]), ("c", ["b", "a"])], {"a": None, "b": "a", "c": "b"}),
        ([("a", []), ("b", []), ("c", ["a", "b"])], {"a": None, "b": None, "c": "b"}),
    ],
)
def test_spanning_parents(tasks, parents):
    assert spanning_parents(tasks) == parents


def test_dot_quotes_names():
    class T:
        name, dependencies, state = 'we"ird', ["a b"], "running"

    assert '"we\\"ird" [label="we\\"ird\\nrunning"];' in dag_dot("x", [T()])


def test_logs_of_a_task_the_run_does_not_have(db):
    invoke("apply", "-f", str(db / "etl.yaml"))
    invoke("workflow", "run", "etl", "-p", "day=d1")
    r = invoke("workflow", "logs", "1", "--task", "lod")
    assert r.exit_code == 2 and "Traceback" not in r.output
    assert "run 1 has no task 'lod'; its tasks: extract, transform, load" in r.output


def test_listings_print_user_strings_as_data(db):
    (db / "m.yaml").write_text(
        "definitions:\n"
        "  templates:\n"
        "    mk: {command: [echo, '[red]t[/]']}\n"
        "  jobs:\n"
        "    mj: {command: [echo, '[red]j[/]']}\n"
        "  workflows:\n"
        "    mw: {description: '[red]w[/]', tasks: [{name: a, shell: 'true'}]}\n"
    )
    assert invoke("apply", "-f", str(db / "m.yaml")).exit_code == 0
    assert "echo '[red]t[/]'" in invoke("template", "list").stdout
    assert "echo '[red]j[/]'" in invoke("job", "list").stdout
    assert "[red]w[/]" in invoke("workflow", "list").stdout
