"""rules.parse_monitoring / parse_http: the monitoring block, good and bad."""

from __future__ import annotations

import pytest

from xqute.errors import ConfigError
from xqute.monitoring.rules import parse_http, parse_monitoring


def test_the_seed_shorthands_and_a_full_block():
    config = parse_monitoring(
        {
            "http": {"listen": "127.0.0.1:9000", "dashboard": False},
            "evaluation_interval": "2s",
            "alerts": {
                "queue_threshold": 100,
                "job_timeout": "1h",
                "rules": [
                    {
                        "name": "backlog-a",
                        "when": "queue_length > 100",
                        "for": "5m",
                        "namespace": "team-a",
                        "notify": ["ops"],
                    },
                    {
                        "name": "late",
                        "when": "workflow_deadline",
                        "workflow": "pipe",
                        "reference": "scheduled_for",
                        "interval": "2h",
                    },
                    {
                        "name": "fails",
                        "when": "job_failure_rate >= 0.5",
                        "window": "10m",
                        "min_jobs": 3,
                    },
                    {"name": "down", "when": "worker_heartbeat_age > 1m"},
                    {"name": "missed", "when": "schedule_missed"},
                ],
            },
            "notifiers": {
                "ops": {"command": ["notify-send", "xqute"], "repeat_interval": "1h"},
                "hook": {"webhook": "http://127.0.0.1:9/alerts"},
            },
        }
    )
    assert config.http.port == 9000 and not config.http.dashboard
    assert config.evaluation_interval_s == 2
    rules = {r.name: r for r in config.rules}
    assert rules["queue_threshold"].kind == "queue_threshold"
    assert rules["queue_threshold"].threshold == 100
    assert rules["queue_threshold"].notify == ("ops", "hook")  # default: all
    assert rules["job_timeout"].kind == "job_timeout"
    assert rules["job_timeout"].threshold == 3600
    assert rules["backlog-a"].for_s == 300 and rules["backlog-a"].notify == ("ops",)
    assert rules["late"].kind == "workflow_deadline" and rules["late"].threshold == 7200
    assert rules["late"].reference == "scheduled_for"
    assert rules["fails"].op == ">=" and rules["fails"].min_jobs == 3
    assert rules["down"].threshold == 60 and rules["down"].kind == "worker_down"
    assert rules["missed"].window_s == 3600
    assert config.notifiers["ops"].repeat_interval_s == 3600
    assert config.notifiers["hook"].webhook.endswith("/alerts")


BAD = [
    (
        {"alerts": {"rules": [{"name": "x", "when": "queue_len > 3"}]}},
        "monitoring.alerts.rules[0].when 'queue_len > 3' is not allowed",
    ),
    (
        {"alerts": {"rules": [{"name": "x", "when": "queue_length > many"}]}},
        "monitoring.alerts.rules[0].when 'many' must be a number",
    ),
    (
        {"alerts": {"rules": [{"name": "x", "when": "workflow_deadline"}]}},
        "monitoring.alerts.rules[0].interval is required",
    ),
    (
        {
            "alerts": {
                "rules": [{"name": "x", "when": "schedule_missed", "notify": ["no"]}]
            }
        },
        "monitoring.alerts.rules[0].notify 'no' is not allowed",
    ),
    (
        {"alerts": {"rules": [{"name": "x y", "when": "schedule_missed"}]}},
        "monitoring.alerts.rules[0].name 'x y' must be a name",
    ),
    (
        {
            "alerts": {
                "rules": [
                    {"name": "a", "when": "schedule_missed"},
                    {"name": "a", "when": "schedule_missed"},
                ]
            }
        },
        "rules[1]: a rule named 'a' is defined twice",
    ),
    ({"alerts": {"job_timeout": "soon"}}, "monitoring.alerts.job_timeout 'soon'"),
    (
        {"alerts": {"rules": [{"name": "a", "when": "schedule_missed", "fro": "1m"}]}},
        "monitoring.alerts.rules[0]: key 'fro' is not allowed",
    ),
    (
        {"notifiers": {"ops": {"command": "notify-send x"}}},
        "monitoring.notifiers.ops.command 'notify-send x' must be a list",
    ),
    ({"notifiers": {"ops": {}}}, "needs exactly one of 'command' or 'webhook'"),
    ({"notifiers": {"ops": {"webhook": "ftp://x"}}}, "must be an http(s) URL"),
    ({"htpp": {}}, "monitoring: key 'htpp' is not allowed"),
    (
        {
            "alerts": {
                "rules": [{"name": "a", "when": "queue_length > 1", "severity": "loud"}]
            }
        },
        "severity 'loud' is not allowed",
    ),
]


@pytest.mark.parametrize("data,message", BAD, ids=[m for _, m in BAD])
def test_bad_blocks_name_the_place(data, message):
    with pytest.raises(ConfigError) as info:
        parse_monitoring(data)
    assert message in str(info.value)


@pytest.mark.parametrize(
    "text,host,port,loopback",
    [
        ("8765", "127.0.0.1", 8765, True),
        ("127.0.0.1:0", "127.0.0.1", 0, True),
        ("localhost:80", "localhost", 80, True),
        ("[::1]:9000", "::1", 9000, True),
        ("0.0.0.0:8765", "0.0.0.0", 8765, False),
    ],
)
def test_http_addresses(text, host, port, loopback):
    http = parse_http(text)
    assert (http.host, http.port, http.loopback) == (host, port, loopback)


@pytest.mark.parametrize("text", ["", "host:80", "1.2.3.4:99999", "1.2.3.4:x", ":"])
def test_bad_http_addresses(text):
    with pytest.raises(ConfigError, match="--http"):
        parse_http(text)
