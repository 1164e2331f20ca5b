"""``xqute resources|quota|priorityclass|autoscale`` and the policy options of
``xqute submit``, through the Typer app (in-process) and the fast path."""

import json

import pytest
from typer.testing import CliRunner

from xqute.cli import app
from xqute.cli.submit import fast_submit
from xqute.orchestration import resource_api as api
from xqute.queue import SqliteJobScheduler

runner = CliRunner()


@pytest.fixture
def store(tmp_path, monkeypatch):
    path = tmp_path / "q.db"
    monkeypatch.setenv("XQUTE_DB", str(path))
    monkeypatch.setenv("COLUMNS", "200")
    store = SqliteJobScheduler(path)
    api.create_resource_quota(
        store.db,
        {
            "name": "team-quota",
            "namespace": "team-a",
            "cpu": 32,
            "jobs": 200,
            "cohort": "shared",
        },
    )
    api.create_priority_class(store.db, {"name": "high", "value": 1000})
    api.create_priority_class(
        store.db,
        {
            "name": "batch",
            "preemptible": True,
            "min_runtime": "10m",
            "global_default": True,
        },
    )
    api.configure_autoscaling(
        store.db,
        {
            "name": "ws",
            "max_replicas": 8,
            "metrics": [{"queue_length": {"target": 10, "tolerance": 2}}],
        },
    )
    yield store
    store.close()


def invoke(*args):
    return runner.invoke(app, list(args))


def test_submit_takes_namespace_class_queue_and_storage(store):
    assert (
        fast_submit(
            [
                "-n",
                "team-a",
                "--priority-class",
                "high",
                "--storage",
                "2G",
                "--",
                "true",
            ]
        )
        == 0
    )
    result = invoke("submit", "--namespace", "team-a", "--cpus", "2", "true")
    assert result.exit_code == 0, result.output
    rows = store.db.query(
        "SELECT namespace, priority, priority_class, storage_mb, cpus FROM job_queue"
    )
    assert rows == [("team-a", 1000, "high", 2048, 1), ("team-a", 0, "batch", 0, 2)]
    assert "timeout -, storage 2G" in invoke("status", "1").output
    assert "storage" not in invoke("status", "2").output
    result = invoke("submit", "--priority-class", "urgent", "true")
    assert result.exit_code == 2
    assert "priority_class 'urgent' is not allowed; choose one of: 'batch', 'high'" in (
        result.output
    )
    assert fast_submit(["--queue", "nope", "true"]) == 2


def test_resources_show(store):
    store.submit_job(["true"], namespace="team-a", cpus=4)
    result = invoke("resources", "show")
    assert result.exit_code == 0, result.output
    out = result.output
    assert "no pool is running" in out
    assert "team-quota (cohort shared)" in out and "1 (4 cpus)" in out
    assert "batch" in out and "600s" in out
    report = json.loads(invoke("resources", "show", "--json", "-n", "team-a").stdout)
    assert set(report["namespaces"]) == {"team-a"}
    assert report["namespaces"]["team-a"]["pending"]["cpu"] == 4
    assert report["namespaces"]["team-a"]["quota"]["limits"] == {"cpu": 32, "jobs": 200}


def test_quota_and_class_listings_and_deletes(store):
    quotas = json.loads(invoke("quota", "list", "--json").stdout)
    assert [(q["name"], q["namespace"]) for q in quotas] == [("team-quota", "team-a")]
    assert "cpu 32, jobs 200" in invoke("quota", "list").output
    classes = json.loads(invoke("priorityclass", "list", "--json").stdout)
    assert [c["name"] for c in classes] == ["batch", "high"]
    result = invoke("quota", "delete", "team-quota")
    assert result.exit_code == 0 and "deleted quota team-quota" in result.output
    assert json.loads(invoke("quota", "list", "--json").stdout) == []
    result = invoke("priorityclass", "delete", "hihg")
    assert result.exit_code == 2
    assert (
        result.output.strip() == "error: no priority class 'hihg'; known: batch, high"
    )


def test_autoscale_show(store):
    result = invoke("autoscale", "show")
    assert result.exit_code == 0, result.output
    assert "queue 10/replica (+-2)" in result.output and "1-8" in result.output
    assert "no pool applies them yet" in result.output
    data = json.loads(invoke("autoscale", "show", "--json").stdout)
    assert data["autoscalers"] == [] and "ws" in data["policies"]


def test_the_queue_shows_and_filters_namespaces(store, capsys):
    """``submit -n X`` (once --name's short form) puts the job in namespace X:
    the queue says so, and ``--namespace`` lists one namespace's jobs."""
    from xqute.cli.queue import fast_queue

    assert fast_submit(["-n", "myname", "--", "true"]) == 0
    capsys.readouterr()
    result = invoke("queue")
    header = result.output.splitlines()[0].split()
    assert header[:3] == ["ID", "NAME", "NAMESPACE"]
    assert "myname" in result.output.splitlines()[1]
    store.submit_job(["true"], job_name="plain")
    assert fast_queue(["--namespace", "default", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [(j["name"], j["namespace"]) for j in listed] == [("plain", "default")]
    result = invoke("queue", "--namespace", "default")
    assert "NAMESPACE" not in result.output and "plain" in result.output
