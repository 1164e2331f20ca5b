"""Schedules and resources over HTTP against a real daemon: the listings
mirror the CLI's JSON, the actions need the token."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from web_helpers import wait_final, wait_for

pytestmark = [pytest.mark.web, pytest.mark.service]


def cli_json(db_path, *argv):
    out = subprocess.run(
        [sys.executable, "-m", "xqute", *argv, "--db", str(db_path), "--json"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    return json.loads(out)


def test_schedules_list_fire_suspend_resume(web_daemon, db_path):
    from xqute.orchestration import Cron, Every, JobSpec, Orchestrator

    client = web_daemon()
    orch = Orchestrator(db_path)
    orch.create_job(JobSpec(name="tick", command=["true"], schedule=Every("1s")))
    berlin = Cron("30 2 * * *", timezone="Europe/Berlin")
    orch.create_job(JobSpec(name="nightly", command=["true"], schedule=berlin))
    wait_for(
        lambda: {s["name"]: s["fired"] for s in client.get("/api/schedules").json()}
        .get("tick", 0) >= 2,
        what="tick to fire twice",
    )  # fmt: skip
    views = {s["name"]: s for s in client.get("/api/schedules").json()}
    nightly = views["nightly"]
    assert nightly["describe"] == cli_json(db_path, "schedule", "list")[0]["describe"]
    assert (
        len(nightly["upcoming"]) == 5 and "T02:30:00+" in nightly["upcoming"][0]["time"]
    )
    assert views["tick"]["last_lateness_s"] is not None
    cli = {s["name"]: s for s in cli_json(db_path, "schedule", "list")}
    assert set(cli["nightly"]) <= set(nightly)
    assert nightly["spec"] == cli["nightly"]["spec"]
    nxt = client.get("/api/schedules/nightly/next", params={"n": 3}).json()
    assert nxt == cli_json(db_path, "schedule", "next", "nightly", "-n", "3")
    # actions
    assert client.post("/api/schedules/nightly/fire").status_code == 401
    r = client.post("/api/schedules/nightly/fire", auth=True)
    run_id = r.json()["run_id"]
    wait_for(lambda: client.get(f"/api/runs/{run_id}").json()["state"] == "succeeded",
             what="the manual fire's run")  # fmt: skip
    r = client.post("/api/schedules/job/tick/suspend", auth=True)
    assert r.json() == {"schedule": "job/tick", "suspended": True, "changed": True}
    views = {s["name"]: s for s in client.get("/api/schedules").json()}
    assert views["tick"]["suspended"] and views["tick"]["upcoming"] == []
    r = client.post("/api/schedules/tick/resume", auth=True)
    assert r.json()["changed"] is True
    r = client.post("/api/schedules/nope/fire", auth=True)
    assert r.status_code == 404 and "nope" in r.json()["error"]
    r = client.get("/api/schedules/nightly/next", params={"n": 0})
    assert r.status_code == 400
    page = client.get("/schedules").text
    assert "job/nightly" in page and "Europe/Berlin" in page


def test_resources_mirror_the_cli(web_daemon, db_path, store):
    from xqute.orchestration import (
        Orchestrator,
        PriorityClass,
        ResourceLimits,
        ResourceQuota,
    )

    client = web_daemon()
    orch = Orchestrator(db_path)
    orch.create_resource_quota(
        ResourceQuota(
            name="team-quota", namespace="team-a", limits=ResourceLimits(cpu=4, jobs=3)
        )
    )
    orch.create_priority_class(PriorityClass(name="urgent", value=1000))
    wait_final(store, [store.submit_job(["true"], namespace="team-a")])
    report = client.get("/api/resources").json()
    assert report == cli_json(db_path, "resources", "show")
    assert report["namespaces"]["team-a"]["quota"]["limits"]["cpu"] == 4
    assert "urgent" in report["priority_classes"]
    page = client.get("/resources").text
    assert "team-quota" in page and "urgent" in page and "<meter" in page


def test_the_overview_shows_quotas_active_runs_and_next_fires(
    web_daemon, db_path, store, tmp_path
):
    from xqute.orchestration import (
        Cron,
        JobSpec,
        Orchestrator,
        ResourceLimits,
        ResourceQuota,
        Task,
        Workflow,
    )

    client = web_daemon(workers=2)
    orch = Orchestrator(db_path)
    orch.create_resource_quota(
        ResourceQuota(name="tq", namespace="team-a", limits=ResourceLimits(cpu=2))
    )
    berlin = Cron("30 2 * * *", timezone="Europe/Berlin")
    orch.create_job(JobSpec(name="nightly", command=["true"], schedule=berlin))
    gate = tmp_path / "go"
    orch.create_workflow(Workflow(name="gated", tasks=[
        Task("wait", shell=f"while [ ! -e {gate} ]; do sleep 0.1; done"),
        Task("after", command=["true"], dependencies=["wait"]),
    ]))  # fmt: skip
    run_id = orch.execute_workflow("gated").id
    job = store.submit_job(["sleep", "60"], namespace="team-a")
    wait_for(lambda: store.get_job_status(job)["state"] == "running", what="run")
    data = client.get("/api/overview").json()
    assert [(r["id"], r["name"], r["tasks_total"]) for r in data["runs_active"]] == [
        (run_id, "gated", 2)
    ]
    assert [f["schedule"] for f in data["next_fires"]] == ["job/nightly"]
    assert data["next_fires"][0]["next_fire_at"] > data["time"]
    assert data["quotas"] == [{"namespace": "team-a", "quota": "tq",
                               "resource": "cpu", "used": 1, "limit": 2}]  # fmt: skip
    page = client.get("/").text
    assert f'data-run="{run_id}"' in page and "job/nightly" in page
    assert 'title="team-a cpu: 1 of 2"' in page  # the quota's bar
    assert 'title="slots: ' in page  # each pool's slots in use
    store.cancel_job(job)
    gate.touch()


def test_metrics_of_runs_schedules_and_quotas(web_daemon, db_path):
    from prometheus_client.parser import text_string_to_metric_families

    from xqute.orchestration import (
        Every,
        JobSpec,
        Orchestrator,
        ResourceLimits,
        ResourceQuota,
        Task,
        Workflow,
    )

    client = web_daemon()
    orch = Orchestrator(db_path)
    orch.create_workflow(Workflow(name="chain", tasks=[
        Task("a", command=["true"]),
        Task("b", command=["true"], dependencies=["a"]),
        Task("c", command=["false"], dependencies=["b"]),
    ]))  # fmt: skip
    orch.create_job(JobSpec(name="tick", command=["true"], schedule=Every("1s")))
    orch.create_resource_quota(
        ResourceQuota(
            name="q", namespace="team-a", limits=ResourceLimits(cpu=3, memory="1G")
        )
    )
    client.get("/metrics")  # the trackers count from the first scrape's state
    run = orch.execute_workflow("chain")
    wait_for(lambda: orch.get_workflow_status(run.id).final, what="the run to end")

    def samples():
        text = client.get("/metrics").text
        return [s for f in text_string_to_metric_families(text) for s in f.samples]

    def value(name, **labels):
        return sum(
            s.value for s in samples() if s.name == name
            and all(s.labels.get(k) == v for k, v in labels.items())
        )  # fmt: skip

    wait_for(lambda: value("xqute_schedule_fires_total", schedule="job/tick",
                           outcome="started") >= 1, what="a fire")  # fmt: skip
    assert value("xqute_workflow_runs_completed_total", workflow="chain",
                 kind="workflow", outcome="failed") == 1  # fmt: skip
    assert value("xqute_workflow_run_duration_seconds_count", workflow="chain") == 1
    # b and c waited for their parent: two ready -> started latencies (a had none)
    assert value("xqute_task_ready_latency_seconds_count", workflow="chain") >= 2
    assert value("xqute_schedule_next_fire_timestamp_seconds", schedule="job/tick") > 0
    assert value("xqute_schedule_lateness_seconds_count", schedule="job/tick") >= 1
    assert value("xqute_quota_limit", namespace="team-a", resource="cpu") == 3
    assert value("xqute_quota_limit", namespace="team-a",
                 resource="memory_bytes") == 1024 * 2**20  # fmt: skip
    assert value("xqute_quota_used", namespace="team-a", resource="cpu") == 0
