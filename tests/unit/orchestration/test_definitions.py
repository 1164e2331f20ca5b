"""The definitions store and the event log, on real SQLite files."""

import json
import sqlite3

import pytest

from xqute.errors import DefinitionError, DefinitionNotFoundError
from xqute.orchestration import Orchestrator, Task, Workflow, events
from xqute.orchestration import definitions as defs
from xqute.queue.schema import SCHEMA_VERSION, V1_DDL, V2_DDL


@pytest.fixture
def orch(tmp_path):
    o = Orchestrator(tmp_path / "q.db")
    yield o
    o.close()


def test_versions_are_kept_and_reapplying_is_a_no_op(orch):
    wf = Workflow(name="etl", tasks=[Task("a", command=["true"])])
    first = orch.create_workflow(wf)
    assert (first.version, first.changed) == (1, True)
    again = orch.create_workflow(wf.model_dump())
    assert (again.version, again.changed, again.id) == (1, False, first.id)
    wf2 = Workflow(
        name="etl",
        tasks=[
            Task("a", command=["true"]),
            Task("b", command=["true"], dependencies=["a"]),
        ],
    )
    second = orch.create_workflow(wf2)
    assert second.version == 2 and second.id != first.id
    assert orch.get_workflow("etl") == wf2
    assert defs.get_by_id(orch.db, first.id).spec["tasks"][0]["name"] == "a"  # pinned
    assert defs.children(orch.db.conn(), second.id, "a") == ["b"]
    assert [w.name for w in orch.list_workflows()] == ["etl"]
    orch.delete_workflow("etl")
    with pytest.raises(DefinitionNotFoundError, match="no workflow 'etl'"):
        orch.get_workflow("etl")
    assert orch.list_workflows() == []
    assert orch.create_workflow(wf).version == 3  # a new life, a new version
    types = [e.type for e in orch.watch(since=0, follow=False)]
    assert types == [
        "definition.created",
        "definition.updated",
        "definition.deleted",
        "definition.updated",
    ]


def test_create_raises_every_problem(orch):
    orch.create_job_template(
        {
            "name": "extract",
            "command": ["x", "#{params.src}"],
            "parameters": [{"name": "src", "required": True}],
        }
    )
    with pytest.raises(DefinitionError) as info:
        orch.create_workflow(
            {
                "name": "w",
                "tasks": [
                    {"name": "a", "job": "extrct"},
                    {"name": "b", "job": "extract", "dependencies": ["c"]},
                ],
            }
        )
    assert [w for w, _ in info.value.problems] == [
        "tasks[1].dependencies[0]",
        "tasks[0].job",
        "tasks[1].parameters",
    ]
    assert "did you mean 'extract'" in str(info.value)
    with pytest.raises(DefinitionNotFoundError, match="did you mean 'extract'"):
        orch.get_job_template("extrac")


def test_a_job_and_a_template_may_not_share_a_name(orch):
    """``Task(job=NAME)`` names either: the template won silently before."""
    orch.create_job_template({"name": "x", "command": ["echo", "t"]})
    orch.create_job_template({"name": "x", "command": ["echo", "t2"]})  # itself
    with pytest.raises(DefinitionError, match="'x' is the name of a template too"):
        orch.create_job({"name": "x", "command": ["echo", "j"]})
    orch.create_job({"name": "y", "command": ["echo", "j"], "schedule": None})
    with pytest.raises(DefinitionError, match="'y' is the name of a job too"):
        orch.create_job_template({"name": "y", "command": ["echo", "t"]})
    orch.create_job_template({"name": "x", "command": ["true"], "namespace": "n2"})


def test_events_append_read_and_watch(orch):
    db = orch.db
    assert events.last_id(db) == 0
    db.write(
        lambda c: events.append(c, "task.ready", 1.0, run_id=3, task="a", data={"k": 1})
    )
    db.write(
        lambda c: events.append_many(
            c,
            [
                (2.0, "task.started", "default", 3, "a", 1, 9, None),
                (3.0, "schedule.fired", "team", None, None, None, None, {"s": 1}),
                (4.0, "workflow.succeeded", "default", 3, None, None, None, None),
            ],
        )
    )
    got = events.read(db, 0)
    assert [e.id for e in got] == [1, 2, 3, 4] and got[0].data == {"k": 1}
    assert [e.type for e in events.read(db, 1, types=["task.*"])] == ["task.started"]
    assert [e.id for e in events.read(db, 0, run_id=3)] == [1, 2, 4]
    # from a cursor; for a run it ends after the run's terminal event
    run = list(orch.watch(execution_id=3))
    assert [e.type for e in run] == ["task.ready", "task.started", "workflow.succeeded"]
    assert run[-1].is_terminal and not run[0].is_terminal
    assert [e.id for e in orch.watch(since=2, follow=False)] == [3, 4]
    assert list(orch.watch(follow=False)) == []  # "now"


def test_a_v2_db_is_migrated_to_the_current_schema(tmp_path):
    path = tmp_path / "old.db"
    conn = sqlite3.connect(path)
    conn.executescript(V1_DDL + V2_DDL)
    conn.execute("PRAGMA user_version = 2")
    conn.execute(
        "INSERT INTO job_queue (name, command, submitted_at, state)"
        " VALUES ('old', ?, 1.0, 'pending')",
        (json.dumps(["true"]),),
    )
    conn.commit()
    conn.close()
    orch = Orchestrator(path)
    assert orch.store.get_job_status(1)["state"] == "pending"
    row = orch.db.query("SELECT namespace, preemptions, run_id FROM job_queue")[0]
    assert tuple(row) == ("default", 0, None)
    assert orch.db.query("PRAGMA user_version")[0][0] == SCHEMA_VERSION
    assert orch.list_workflows() == []
    orch.close()
