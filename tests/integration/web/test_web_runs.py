"""Workflow runs over HTTP, with a real daemon running the tasks: the listings
mirror the CLI, actions need the token, errors are 4xx."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from web_helpers import wait_for

pytestmark = [pytest.mark.web, pytest.mark.service]


def define(db_path, gate):
    from xqute.orchestration import Orchestrator, Task, Workflow

    orch = Orchestrator(db_path)
    orch.create_workflow(Workflow(name="pipe", tasks=[
        Task("extract", shell="echo '<rows>' > $XQUTE_OUTPUT"),
        Task("wait", shell=f"while [ ! -e {gate} ]; do sleep 0.1; done",
             dependencies=["extract"]),
        Task("load", command=["echo", "#{extract.output}"], dependencies=["wait"]),
    ]))  # fmt: skip
    return orch


def cli_json(db_path, *argv):
    out = subprocess.run(
        [sys.executable, "-m", "xqute", *argv, "--db", str(db_path), "--json"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    return json.loads(out)


def test_runs_read_and_act(web_daemon, db_path, tmp_path):
    client = web_daemon()
    gate = tmp_path / "go"
    define(db_path, gate)
    # starting a run needs the token
    assert client.post("/api/defs/workflow/pipe/run", json={}).status_code == 401
    r = client.post("/api/defs/workflow/pipe/run", auth=True, json={})
    assert r.status_code == 201, r.text
    run_id = r.json()["run_id"]
    wait_for(
        lambda: {t["name"]: t["state"] for t in client.get(f"/api/runs/{run_id}")
                 .json()["tasks"]}.get("wait") == "running",
        what="the gate task to run",
    )  # fmt: skip
    run = client.get(f"/api/runs/{run_id}").json()
    assert run["state"] == "running" and run["name"] == "pipe"
    tasks = {t["name"]: t for t in run["tasks"]}
    assert tasks["extract"]["state"] == "succeeded"
    assert tasks["extract"]["output"] == "<rows>"
    assert tasks["load"]["dependencies"] == ["wait"]
    assert [j["task"] for j in run["jobs"]] == ["extract", "wait"]
    # the same as the CLI's JSON (besides what only the web adds)
    cli = cli_json(db_path, "workflow", "status", str(run_id))
    assert {k: v for k, v in run.items() if k not in ("jobs", "suspended")} == cli
    listed = client.get("/api/runs", params={"name": "pipe"}).json()
    assert [x["id"] for x in listed] == [run_id]
    # the page's live part asks again with the same filters, as typed
    page = client.get("/runs", params={"name": "a&state=failed#"}).text
    assert 'data-live="/runs?name=a%26state%3Dfailed%23&amp;limit=100"' in page
    assert listed == cli_json(db_path, "workflow", "list", "--runs")
    # a running run cannot be retried; cancel it, then retry it
    r = client.post(f"/api/runs/{run_id}/retry", auth=True)
    assert r.status_code == 409 and "cancel it first" in r.json()["error"]
    assert client.post(f"/api/runs/{run_id}/cancel").status_code == 401
    r = client.post(f"/api/runs/{run_id}/cancel", auth=True)
    assert r.json() == {"id": run_id, "cancelled": True}
    wait_for(lambda: client.get(f"/api/runs/{run_id}").json()["state"] == "cancelled",
             what="the run to end cancelled")  # fmt: skip
    gate.touch()
    r = client.post(f"/api/runs/{run_id}/retry", auth=True)
    assert r.json() == {"id": run_id, "attempt": 2}
    wait_for(lambda: client.get(f"/api/runs/{run_id}").json()["state"] == "succeeded",
             what="the retried run to succeed")  # fmt: skip
    tasks = {t["name"]: t for t in client.get(f"/api/runs/{run_id}").json()["tasks"]}
    assert tasks["extract"]["attempts"] == 1  # kept its output, did not run again
    assert tasks["load"]["state"] == "succeeded"


def test_suspend_and_resume_a_workflow(web_daemon, db_path, tmp_path):
    client = web_daemon()
    define(db_path, tmp_path / "go")
    r = client.post("/api/defs/workflow/pipe/suspend", auth=True)
    assert r.json() == {"kind": "workflow", "name": "pipe", "suspended": True}
    kinds = [e["type"] for e in client.get("/api/events", params={"after": 0}).json()]
    assert "workflow.suspended" in kinds
    r = client.post("/api/defs/workflow/pipe/resume", auth=True)
    assert r.json()["suspended"] is False


BAD = [
    ("get", "/api/runs/abc", 400, "run id 'abc' must be a positive integer"),
    ("get", "/api/runs/999", 404, "no run 999"),
    ("get", "/api/runs?state=done", 400, "state 'done' is not allowed"),
    ("get", "/api/runs?kind=dag", 400, "kind 'dag' is not allowed"),
    ("post", "/api/runs/999/cancel", 404, "no run 999"),
    ("post", "/api/runs/1/pause", 404, "no action 'pause'"),
    ("post", "/api/defs/workflow/nope/run", 404, "nope"),
    ("post", "/api/defs/dag/pipe/run", 400, "kind 'dag' is not allowed"),
]


def test_bad_run_requests(web_daemon):
    client = web_daemon()
    for method, path, status, message in BAD:
        r = getattr(client, method)(path, auth=True)
        assert r.status_code == status, (path, r.text)
        assert message in r.json()["error"], path
