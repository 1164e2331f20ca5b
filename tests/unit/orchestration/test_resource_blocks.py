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


POLICY = """
scheduler:
  queues:
    - {name: urgent, priority: 100, priority_class: high}
resources:
  classes:
    large: {cpu: 4, memory: 16Gi, storage: 1G}
  priority_classes:
    high: {value: 1000}
    batch: {value: 5, global_default: true}
"""


def test_unknown_policy_names_are_refused_when_a_definition_is_made(tmp_path):
    """A job or workflow naming a priority class, queue or resource class that
    is neither stored nor in the file is refused, with the names allowed."""
    from xqute.orchestration import JobSpec, Orchestrator, Task, Workflow

    orch = Orchestrator(tmp_path / "wf.db")
    text = (
        POLICY
        + """
definitions:
  jobs:
    j1: {command: [echo], priority_class: hihg}
    j2: {command: [echo], queue: nope, resource_class: larg}
    j3: {command: [echo], priority_class: high, queue: urgent, resource_class: large}
  workflows:
    w1: {priority_class: nope, tasks: [{name: a, command: [echo]}]}
"""
    )
    with pytest.raises(DefinitionError) as info:
        apply(orch.db, text)
    problems = str(info.value).splitlines()[1:]
    assert problems == [
        "  <string>:14: definitions.jobs.j1.priority_class: unknown priority class"
        " 'hihg'; known: batch, high",
        "  <string>:15: definitions.jobs.j2.queue: unknown queue 'nope'; known: urgent",
        "  <string>:15: definitions.jobs.j2.resource_class: unknown resource class"
        " 'larg'; known: large",
        "  <string>:18: definitions.workflows.w1.priority_class: unknown priority"
        " class 'nope'; known: batch, high",
    ]
    apply(orch.db, POLICY)  # j3's names, stored this time
    orch.create_job(JobSpec(name="j3", command=["echo"], priority_class="high",
                            queue="urgent", resource_class="large"))  # fmt: skip
    with pytest.raises(DefinitionError, match="unknown queue 'slow'; known: urgent"):
        orch.create_workflow(
            Workflow(name="w", queue="slow", tasks=[Task("a", command=["echo"])])
        )
    orch.close()


def test_task_jobs_get_their_queue_and_resource_class(tmp_path):
    """A job's resource class is its request unless it gives resources; the
    run's queue gives the priority and class unless the definition does; a
    queue or resource class deleted since has no effect."""
    from xqute.orchestration import JobSpec, Orchestrator, Task, Workflow

    orch = Orchestrator(tmp_path / "wf.db")
    apply(orch.db, POLICY)
    orch.create_job(JobSpec(name="big", command=["true"], resource_class="large"))
    orch.create_job(JobSpec(name="own", command=["true"], resource_class="large",
                            resources={"cpu": 2}))  # fmt: skip
    orch.create_job(JobSpec(name="queued", command=["true"], queue="urgent"))
    orch.create_workflow(Workflow(
        name="wf", queue="urgent", priority=7,
        tasks=[Task("a", job="big"), Task("b", command=["true"])],
    ))  # fmt: skip
    orch.execute_workflow("wf")
    orch.delete_resource_policy("queue", "urgent")
    orch.delete_resource_policy("resource_class", "large")
    orch.run_job("big")
    orch.run_job("queued")
    rows = orch.db.query(
        "SELECT runs.name, task, cpus, mem_mb, storage_mb, priority,"
        " job_queue.priority_class FROM job_queue JOIN runs ON runs.id = run_id"
        " ORDER BY job_queue.id"
    )
    assert [(name, task if name == "wf" else "", *rest) for name, task, *rest in rows
            ] == [
        ("big", "", 4, 16384, 1024, 5, "batch"),
        ("own", "", 2, 0, 0, 5, "batch"),
        ("queued", "", 1, 0, 0, 100, "high"),
        ("wf", "a", 4, 16384, 1024, 7, "high"),  # its priority, the queue's class
        ("wf", "b", 1, 0, 0, 7, "high"),
        ("big", "", 1, 0, 0, 5, "batch"),  # deleted since: no effect
        ("queued", "", 1, 0, 0, 5, "batch"),
    ]  # fmt: skip
    orch.close()


def test_auto_scaling_enabled_false_turns_the_policies_off(db):
    on = """resources:
  auto_scaling:
    enabled: true
    min_nodes: 1
    max_nodes: 3
    policies:
      wf: {target: {pool: hpc}, max_replicas: 4}
"""
    apply(db, on)
    assert set(load_catalog(db).autoscaling) == {"default", "wf"}
    off = on.replace("enabled: true", "enabled: false")
    dry = apply(db, off, dry_run=True)
    assert [(c.name, c.action) for c in dry.changes] == [
        ("default", "deleted"),
        ("wf", "deleted"),
    ]
    assert set(load_catalog(db).autoscaling) == {"default", "wf"}  # dry run
    result = apply(db, off)
    assert [(c.name, c.action, c.version) for c in result.changes] == [
        ("default", "deleted", 1),
        ("wf", "deleted", 1),
    ]
    assert load_catalog(db).autoscaling == {}
    assert apply(db, off).changes == []  # nothing left to turn off


def test_a_template_s_class_and_a_job_s_bundle_over_the_template(tmp_path):
    """A template names a priority class (its tasks' unless their job names
    one); a job's resource class beats its template's resources (less
    specific), not the job's own."""
    from xqute.orchestration import JobSpec, JobTemplate, Orchestrator, Task, Workflow

    orch = Orchestrator(tmp_path / "wf.db")
    apply(orch.db, POLICY)
    with pytest.raises(DefinitionError, match="unknown priority class 'hgh'"):
        orch.create_job_template(JobTemplate(name="t", command=["true"],
                                         priority_class="hgh"))  # fmt: skip
    orch.create_job_template(JobTemplate(name="t", command=["true"],
                                     priority_class="high",
                                     resources={"cpu": 2}))  # fmt: skip
    orch.create_job(JobSpec(name="j", template="t", resource_class="large"))
    tasks = [Task("a", job="t"), Task("b", job="j")]
    orch.create_workflow(Workflow(name="wf", priority_class="batch", tasks=tasks))
    orch.execute_workflow("wf")
    rows = orch.db.query(
        "SELECT task, cpus, priority, job_queue.priority_class FROM job_queue"
        " ORDER BY job_queue.id"
    )
    assert rows == [
        ("main", 4, 1000, "high"),  # the run of j at its creation
        ("a", 2, 1000, "high"),
        ("b", 4, 1000, "high"),
    ]
    orch.close()
