"""The monitoring block through ``xqute apply``: checked with the file (file,
line and key in the error), stored as a definition, followed by the daemon's
alert loop when a new version is applied."""

from __future__ import annotations

import pytest

from xqute.errors import DefinitionError
from xqute.monitoring.applied import applied_block
from xqute.monitoring.daemon import daemon_config
from xqute.monitoring.evaluator import AlertEvaluator
from xqute.orchestration.apply import apply
from xqute.queue import SqliteJobScheduler

YAML = """
version: 1
monitoring:
  http: {listen: "127.0.0.1:0"}
  alerts:
    queue_threshold: 5
    rules:
      - {name: slow, when: "job_runtime > 1h"}
"""


@pytest.fixture
def store(tmp_path):
    store = SqliteJobScheduler(tmp_path / "q.db")
    yield store
    store.close()


def test_apply_stores_the_block_and_the_daemon_reads_it(store):
    result = apply(store.db, YAML)
    assert [(c.kind, c.action, c.version) for c in result.changes] == [
        ("monitoring", "created", 1)
    ]
    assert apply(store.db, YAML).changes[0].action == "unchanged"
    version, block = applied_block(store.db)
    assert version == 1 and block["alerts"]["queue_threshold"] == 5
    config = daemon_config(None, None, store.db)
    assert config.follow_applied and config.applied_version == 1
    assert [r.name for r in config.rules] == ["queue_threshold", "slow"]
    assert config.http.port == 0
    # --http overrides the address; --config's block wins over the applied one
    assert daemon_config(None, "127.0.0.1:9", store.db).http.port == 9
    assert daemon_config({"alerts": {}}, None, store.db).rules == ()
    dry = apply(store.db, YAML.replace("queue_threshold: 5", "queue_threshold: 6"),
                dry_run=True)  # fmt: skip
    assert dry.changes[0].action == "updated"
    assert '+  "queue_threshold": 6' in dry.changes[0].diff


def test_a_bad_block_names_the_file_line_and_key(store, tmp_path):
    path = tmp_path / "x.yaml"
    path.write_text(YAML.replace('"job_runtime > 1h"', '"runtime > 1h"'))
    with pytest.raises(DefinitionError) as info:
        apply(store.db, path)
    text = str(info.value)
    assert "x.yaml:3" in text and "monitoring.alerts.rules[0].when" in text
    assert applied_block(store.db) is None


def test_the_alert_loop_follows_a_new_version(store):
    apply(store.db, YAML)
    ev = AlertEvaluator(store.db, daemon_config(None, None, store.db))
    assert sorted(ev.rules) == ["queue_threshold", "slow"]
    apply(
        store.db,
        YAML.replace(
            '      - {name: slow, when: "job_runtime > 1h"}\n',
            '      - {name: quick, when: "job_runtime > 1m"}\n',
        ),
    )
    ev.follow()
    assert sorted(ev.rules) == ["queue_threshold", "quick"]
    assert ev.config.applied_version == 2 and ev.config.follow_applied
