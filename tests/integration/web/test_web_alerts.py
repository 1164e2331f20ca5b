"""Alerts in a real daemon: rules from the monitoring block fire and resolve,
a command notifier gets each transition once, and the CLI, the API, the
dashboard and /metrics all show them."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest
from web_helpers import wait_final, wait_for

pytestmark = [pytest.mark.web, pytest.mark.service]


def test_rules_fire_notify_once_and_resolve(web_daemon, store, db_path, tmp_path):
    sink = tmp_path / "notified.jsonl"
    writer = f"import sys; open({str(sink)!r}, 'a').write(sys.stdin.read() + '\\n')"
    client = web_daemon(
        workers=1,
        monitoring={
            "evaluation_interval": "0.3s",
            "alerts": {
                "job_timeout": "1s",  # seed shorthand: a job running longer than 1 s
                "rules": [{"name": "backlog", "when": "queue_length > 0", "for": "1s"}],
            },
            "notifiers": {"sink": {"command": [sys.executable, "-c", writer]}},
        },
    )
    running = store.submit_job(["sleep", "60"], job_name="long")
    waiting = store.submit_job(["sleep", "60"], job_name="queued behind")

    def notes():
        if not sink.exists():
            return []
        lines = sink.read_text().splitlines()
        return [json.loads(line) for line in lines if line]

    wait_for(lambda: len(notes()) >= 2, what="two alerts to fire")
    fired = {(n["rule"], n["key"], n["notification"]) for n in notes()}
    assert fired == {
        ("job_timeout", str(running), "firing"),
        ("backlog", "all", "firing"),
    }
    long_one = next(n for n in notes() if n["rule"] == "job_timeout")
    assert long_one["value"] > 1 and "long" in long_one["summary"]

    # the CLI, the API, /metrics and the dashboard show them
    argv = ["alerts", "--firing", "--json", "--db", str(db_path)]
    out = subprocess.run(
        [sys.executable, "-m", "xqute", *argv],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert {(a["rule"], a["state"]) for a in json.loads(out)} == {
        ("job_timeout", "firing"), ("backlog", "firing")}  # fmt: skip
    api = client.get("/api/alerts", params={"firing": "true"}).json()
    assert {a["rule"] for a in api} == {"job_timeout", "backlog"}
    metrics = client.get("/metrics").text
    assert 'xqute_alerts_firing{alert="backlog"} 1.0' in metrics
    page = client.get("/alerts").text
    assert "job_timeout" in page and "queue_length &gt; 0.0" in page

    # nothing is sent twice while they keep firing
    count = len(notes())
    time.sleep(1.0)  # three more evaluations
    assert len(notes()) == count
    # both conditions go away: one "resolved" each
    store.cancel_jobs([running, waiting])
    wait_final(store, [running, waiting])
    wait_for(lambda: len(notes()) >= 4, what="two resolutions")
    resolved = {(n["rule"], n["notification"]) for n in notes()[2:]}
    assert resolved == {("job_timeout", "resolved"), ("backlog", "resolved")}
    assert client.get("/api/alerts", params={"firing": "true"}).json() == []
    kinds = [
        e["type"] for e in client.get("/api/events", params={"type": "alert.*"}).json()
    ]
    assert kinds.count("alert.firing") == 2 and kinds.count("alert.resolved") == 2


def test_an_applied_monitoring_block_is_served_and_followed(db_path, tmp_path, store):
    """`xqute apply` a monitoring block, start the daemon with no option: it
    serves HTTP where the block says, and takes a new version of its rules
    while it runs."""
    import contextlib

    from web_helpers import Client, kill_leftovers

    from xqute.queue import SchedulerService

    block = (
        "monitoring:\n"
        "  http: {listen: '127.0.0.1:0'}\n"
        "  evaluation_interval: 0.3s\n"
        "  alerts:\n"
        "    rules:\n"
        "      - {name: RULE, when: 'queue_length > 0'}\n"
    )
    yaml_file = tmp_path / "xqute.yaml"
    yaml_file.write_text(block.replace("RULE", "first"))
    argv = [sys.executable, "-m", "xqute", "apply", "-f", str(yaml_file),
            "--db", str(db_path)]  # fmt: skip
    subprocess.run(argv, check=True, capture_output=True)
    service = SchedulerService(db_path, 1)
    try:
        info = service.start()
        url = info["http"]["url"]
        client = Client(url, (tmp_path / "queue.token").read_text().strip())
        store.submit_job(["sleep", "30"], cpus=10_000)  # never fits: stays pending
        wait_for(lambda: [a["rule"] for a in client.get("/api/alerts").json()]
                 == ["first"], what="the applied rule to fire")  # fmt: skip
        yaml_file.write_text(block.replace("RULE", "second"))
        subprocess.run(argv, check=True, capture_output=True)
        wait_for(lambda: [a["rule"] for a in client.get("/api/alerts").json()]
                 == ["second"], what="the new version's rule")  # fmt: skip
        client.close()
    finally:
        with contextlib.suppress(Exception):
            service.stop(now=True, timeout_s=15)
        kill_leftovers(str(tmp_path))
