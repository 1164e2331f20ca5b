"""The resource policy's YAML blocks through ``xqute apply``'s function."""

import pytest

from xqute.errors import DefinitionError
from xqute.orchestration.apply import apply
from xqute.queue import SqliteJobScheduler
from xqute.queue.policy_store import load_catalog

SEED = """
scheduler:
  queues:
    - {name: default, priority: 0}
    - {name: high-priority, priority: 100, priority_class: high-priority}
resources:
  classes:
    standard: {cpu: 1, memory: 4Gi}
  quotas:
    team-quota: {namespace: team-a, cpu: 32, memory: 128Gi, gpu: 4, storage: 1Ti,
                 jobs: 200, scopes: [job, workflow], cohort: shared,
                 borrowing_limit: {cpu: 8}}
  priority_classes:
    high-priority: {value: 1000, preempt_after: 2m}
    batch: {value: 0, global_default: true, preemptible: true, min_runtime: 10m}
  auto_scaling:
    enabled: true
    min_nodes: 3
    max_nodes: 10
    target_cpu_utilization: 70
    policies:
      workflow-scaling:
        target: {pool: default}
        metrics: [{queue_length: {target: 10, tolerance: 2}}]
        max_replicas: 10
        scale_up: {threshold: 80, duration: 5m, step: 2}
"""


@pytest.fixture
def db(tmp_path):
    store = SqliteJobScheduler(tmp_path / "q.db")
    yield store.db
    store.close()


def test_the_seed_blocks_apply_idempotently(db):
    first = apply(db, SEED)
    assert {(c.kind, c.name, c.action) for c in first.changes} == {
        ("queue", "default", "created"),
        ("queue", "high-priority", "created"),
        ("resource_class", "standard", "created"),
        ("quota", "team-quota", "created"),
        ("priority_class", "high-priority", "created"),
        ("priority_class", "batch", "created"),
        ("autoscaling", "default", "created"),
        ("autoscaling", "workflow-scaling", "created"),
    }
    catalog = load_catalog(db)
    assert catalog.quotas["team-a"].borrowing_limit.cpu == 8
    assert catalog.queues["high-priority"].priority_class == "high-priority"
    assert catalog.priority_classes["high-priority"].preempt_after_s == 120
    shorthand = catalog.autoscaling["default"]
    assert (shorthand.min_replicas, shorthand.max_replicas) == (3, 10)
    assert shorthand.metrics[0].target_percentage == 70
    assert {c.action for c in apply(db, SEED).changes} == {"unchanged"}
    dry = apply(db, SEED.replace("cpu: 32", "cpu: 16"), dry_run=True)
    (changed,) = [c for c in dry.changes if c.action != "unchanged"]
    assert (changed.name, changed.version) == ("team-quota", 2)
    assert '-  "cpu": 32' in changed.diff and '+  "cpu": 16' in changed.diff
    assert load_catalog(db).quotas["team-a"].limits.cpu == 32  # dry run


def test_problems_name_the_line_and_key(db):
    text = """resources:
  quotas:
    q: {namespace: x, cpus: 3}
  pools: {}
  priority_classes:
    a: {global_default: true}
    b: {global_default: true}
"""
    with pytest.raises(DefinitionError) as info:
        apply(db, text)
    message = str(info.value)
    assert "<string>:3: resources.quotas.q: quota 'q': key 'cpus' is not allowed" in (
        message
    )
    assert "<string>:4: resources.pools: unknown key 'pools'" in message
    assert "is the global default already" in message
    assert load_catalog(db).quotas == {}  # nothing stored


def test_a_workflow_task_gets_its_class_priority(tmp_path):
    from xqute.orchestration import Orchestrator, Task, Workflow

    orch = Orchestrator(tmp_path / "wf.db")
    orch.create_priority_class({"name": "high", "value": 1000})
    orch.create_priority_class({"name": "batch", "value": 5, "global_default": True})
    for name, cls in (("urgent", "high"), ("plain", None)):
        orch.create_workflow(Workflow(
            name=name, namespace="team-a", priority_class=cls,
            tasks=[Task("t", command=["true"])],
        ))  # fmt: skip
        orch.execute_workflow(name, namespace="team-a")
    rows = orch.db.query(
        "SELECT priority, priority_class, namespace FROM job_queue ORDER BY id"
    )
    assert rows == [(1000, "high", "team-a"), (5, "batch", "team-a")]
    orch.close()
