"""The alert loop on a real queue db: samples, state kept across evaluations,
the outbox, delivery to a command and a webhook."""

from __future__ import annotations

import asyncio
import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from xqute.monitoring import alert_store
from xqute.monitoring.evaluator import AlertEvaluator
from xqute.monitoring.rules import parse_monitoring
from xqute.monitoring.samples import collect
from xqute.queue import SqliteJobScheduler


@pytest.fixture
def store(tmp_path):
    store = SqliteJobScheduler(tmp_path / "q.db")
    yield store
    store.close()


def config(tmp_path, rules, **notifiers):
    notifiers = notifiers or {
        "file": {
            "command": [
                sys.executable,
                "-c",
                f"import sys; open({str(tmp_path / 'out')!r}, 'a')"
                ".write(sys.stdin.read() + '\\n')",
            ]
        }
    }
    return parse_monitoring({"alerts": {"rules": rules}, "notifiers": notifiers})


def test_queue_threshold_fires_once_then_resolves_and_delivers(store, tmp_path):
    store.submit_jobs([{"command": ["true"]} for _ in range(3)])
    cfg = config(tmp_path, [{"name": "backlog", "when": "queue_length > 2"}])
    ev = AlertEvaluator(store.db, cfg)
    result = ev.evaluate_once(now=100)
    assert [(t.rule, t.new) for t in result.transitions] == [("backlog", "firing")]
    again = ev.evaluate_once(now=101)  # a restart would see the same: no repeat
    assert again.transitions == [] and again.notifications == []
    assert [a["state"] for a in alert_store.list_alerts(store.db)] == ["firing"]
    assert asyncio.run(ev.deliver_due()) == 1
    assert asyncio.run(ev.deliver_due()) == 0  # delivered once
    sent = [json.loads(line) for line in (tmp_path / "out").read_text().splitlines()]
    assert [(s["rule"], s["notification"], s["value"]) for s in sent] == [
        ("backlog", "firing", 3.0)
    ]
    store.cancel_jobs(all_jobs=True)
    result = ev.evaluate_once(now=102)
    assert [(t.old, t.new) for t in result.transitions] == [("firing", "resolved")]
    asyncio.run(ev.deliver_due())
    lines = (tmp_path / "out").read_text().splitlines()
    assert json.loads(lines[-1])["notification"] == "resolved"
    assert alert_store.list_alerts(store.db, firing_only=True) == []
    # each transition is also an event, with the alert as its data
    events = store.db.query("SELECT type, data FROM events ORDER BY id")
    assert [e[0] for e in events] == ["alert.firing", "alert.resolved"]
    assert json.loads(events[0][1])["rule"] == "backlog"


def test_samples_of_each_kind(store):
    ids = store.submit_jobs([{"command": ["true"]} for _ in range(6)])
    now = time.time()
    # two of them "ran": one for an hour, the other ended failed
    store.db.write(
        lambda c: c.execute(
            "UPDATE job_queue SET state='running', started_at=? WHERE id=?",
            (now - 3600, ids[0]),
        )
    )
    store.db.write(
        lambda c: c.execute(
            "UPDATE job_queue SET state='failed', started_at=?, ended_at=? WHERE id=?",
            (now - 10, now - 5, ids[1]),
        )
    )
    cfg = parse_monitoring(
        {
            "alerts": {
                "rules": [
                    {"name": "q", "when": "queue_length > 0"},
                    {"name": "t", "when": "job_runtime > 30m"},
                    {"name": "f", "when": "job_failure_rate > 0.5", "min_jobs": 1},
                    {"name": "w", "when": "worker_heartbeat_age > 60"},
                    {"name": "d", "when": "workflow_deadline", "interval": "1h"},
                    {"name": "m", "when": "schedule_missed"},
                ]
            }
        }
    )
    samples = collect(store.db, cfg.rules, now)
    assert [(s.key, s.value) for s in samples["q"]] == [("all", 4.0)]
    assert [s.key for s in samples["t"]] == [str(ids[0])]
    assert samples["t"][0].value == pytest.approx(3600, abs=5)
    assert [(s.key, s.value) for s in samples["f"]] == [("all", 1.0)]
    assert samples["w"] == []
    assert samples["d"] == [] and samples["m"] == []
    # a pool whose heartbeat stopped two minutes ago; a stopped one does not count
    store.db.write(lambda c: c.executemany(
        "INSERT INTO worker_nodes (id, host, pid, backend, max_workers, state,"
        " started_at, heartbeat_at) VALUES (?, 'h', 1, 'local', 1, ?, ?, ?)",
        [("h:1:a", "running", now - 300, now - 120), ("h:2:b", "stopped", 0, 0)],
    ))  # fmt: skip
    (down,) = collect(store.db, cfg.rules, now)["w"]
    assert down.key == "h:1:a" and down.value == pytest.approx(120)
    assert down.labels == {"pool": "local"}


def test_samples_of_runs_and_schedules(store):
    from xqute.orchestration import Cron, JobSpec, Orchestrator, Task, Workflow

    orch = Orchestrator(store.db_path)
    orch.create_workflow(Workflow(name="pipe", tasks=[Task("a", command=["true"])]))
    run = orch.execute_workflow("pipe")  # no pool: it stays pending
    orch.create_job(
        JobSpec(name="nightly", command=["true"], schedule=Cron("0 3 * * *"))
    )
    (schedule_id,) = store.db.query("SELECT id FROM schedules")[0]
    now = time.time()
    fires = [
        (now - 500, "missed", 3, None),
        (now - 400, "coalesced", 2, None),
        (now - 300, "started", 1, 12.5),
        (now - 99999, "missed", 9, None),
    ]
    store.db.write(lambda c: c.executemany(
        "INSERT INTO schedule_fires (schedule_id, scheduled_for, outcome, count,"
        " fired_at, lateness_s) VALUES (?, ?, ?, ?, ?, ?)",
        [(schedule_id, t, o, n, t + (late or 0), late) for t, o, n, late in fires],
    ))  # fmt: skip
    cfg = parse_monitoring({"alerts": {"rules": [
        {"name": "d", "when": "workflow_deadline", "interval": "1s"},
        {"name": "other", "when": "workflow_deadline", "interval": "1s",
         "workflow": "nope"},
        {"name": "m", "when": "schedule_missed", "window": "1h"},
        {"name": "late", "when": "schedule_lateness > 10"},
    ]}})  # fmt: skip
    samples = collect(store.db, cfg.rules, now + 60)
    (deadline,) = samples["d"]
    assert deadline.key == str(run.id) and deadline.value >= 60
    assert deadline.labels == {"workflow": "pipe", "run": str(run.id)}
    assert samples["other"] == []
    # missed + coalesced in the last hour (the day-old miss is out of the window)
    assert [(s.key, s.value) for s in samples["m"]] == [("nightly", 5.0)]
    assert [(s.key, s.value) for s in samples["late"]] == [("nightly", 12.5)]


class _Hook(BaseHTTPRequestHandler):
    got: list = []

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        _Hook.got.append((self.headers["Content-Type"], json.loads(body)))
        self.send_response(204 if len(_Hook.got) > 1 else 500)
        self.end_headers()

    def log_message(self, *args):
        pass


def test_webhook_failure_is_retried_from_the_outbox(store, tmp_path):
    server = HTTPServer(("127.0.0.1", 0), _Hook)
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_port}/alerts"
        store.submit_job(["true"])
        cfg = config(
            tmp_path,
            [{"name": "q", "when": "queue_length > 0"}],
            hook={"webhook": url, "timeout": "5s"},
        )
        ev = AlertEvaluator(store.db, cfg)
        ev.evaluate_once(now=time.time())
        assert asyncio.run(ev.deliver_due()) == 0  # the server said 500
        (item,) = store.db.query("SELECT attempts, next_at, error FROM alert_outbox")
        assert item[0] == 1 and "500" in item[2] and item[1] > time.time()
        store.db.write(lambda c: c.execute("UPDATE alert_outbox SET next_at = 0"))
        assert asyncio.run(ev.deliver_due()) == 1
        assert [g[0] for g in _Hook.got] == ["application/json"] * 2
        assert _Hook.got[-1][1]["rule"] == "q"
        assert store.db.query("SELECT count(*) FROM alert_outbox")[0][0] == 0
    finally:
        server.shutdown()
        server.server_close()


def test_a_webhook_that_answers_garbage_is_a_failed_delivery(store, tmp_path):
    """Not HTTP (http.client raises BadStatusLine, not an OSError): retried
    like any failure, and the rows behind it are still delivered."""
    import socket

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()

    def answer():
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            with conn:
                conn.recv(65536)
                conn.sendall(b"garbage\r\n\r\n")

    threading.Thread(target=answer, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{listener.getsockname()[1]}/"
        store.submit_job(["true"])
        cfg = config(
            tmp_path,
            [{"name": "q", "when": "queue_length > 0"}],
            junk={"webhook": url, "timeout": "5s"},
            file={"command": [sys.executable, "-c", "import sys; sys.stdin.read()"]},
        )
        ev = AlertEvaluator(store.db, cfg)
        ev.evaluate_once()
        assert asyncio.run(ev.deliver_due()) == 1  # the command's, behind it
        ((attempts, error),) = store.db.query(
            "SELECT attempts, error FROM alert_outbox"
        )
        assert attempts == 1 and "BadStatusLine" in error, error
    finally:
        listener.close()


def test_a_failing_command_names_its_exit_code(store, tmp_path):
    store.submit_job(["true"])
    cfg = config(
        tmp_path,
        [{"name": "q", "when": "queue_length > 0"}],
        bad={"command": ["sh", "-c", "echo nope >&2; exit 3"]},
    )
    ev = AlertEvaluator(store.db, cfg)
    ev.evaluate_once()
    asyncio.run(ev.deliver_due())
    (error,) = store.db.query("SELECT error FROM alert_outbox")[0]
    assert error == "'sh' exited with 3: nope"


def test_transitions_reach_the_on_alert_hook(store, tmp_path):
    from xqute.hooks import HookCaller, simplug

    seen = []

    class AlertPlugin:
        name = "w13_alert_probe"

        @simplug.impl
        async def on_alert(alert):
            seen.append((alert["rule"], alert["state"], alert["notification"]))

    ev = AlertEvaluator(
        store.db,
        config(tmp_path, [{"name": "q", "when": "queue_length > 0", "notify": []}]),
        HookCaller([AlertPlugin]),
    )
    job = store.submit_job(["true"])
    asyncio.run(ev.tick())
    store.cancel_job(job)
    asyncio.run(ev.tick())
    assert seen == [("q", "firing", "firing"), ("q", "resolved", "resolved")]


def test_xqute_alerts_prints_job_names_as_text(store, tmp_path):
    """A job_timeout alert's key and summary hold the job's name: rich markup
    in it is shown as typed (it used to crash the table: '[/]' closes nothing)."""
    from typer.testing import CliRunner

    from xqute.cli import app

    name = "[/] train [bold red]x"
    job = store.submit_job(["sleep", "60"], job_name=name)
    store.db.write(lambda c: c.execute(
        "UPDATE job_queue SET state = 'running', started_at = 1000 WHERE id = ?",
        (job,),
    ))  # fmt: skip
    cfg = config(tmp_path, [{"name": "long", "when": "job_runtime > 60"}])
    AlertEvaluator(store.db, cfg).evaluate_once(now=2000)
    result = CliRunner().invoke(app, ["alerts", "--db", str(store.db_path)])
    assert result.exit_code == 0, result.output
    assert f"job {job} ({name}) has run for 16m" in result.output
