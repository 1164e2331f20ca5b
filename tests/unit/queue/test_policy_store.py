"""The resource policy in the db: definitions written through the API, read
back by submit (classes, queues, resource classes) and by a pool's dispatcher
(the window and usage with quotas). A real SQLite db, no processes."""

import pytest

from xqute.errors import ConfigError, DefinitionNotFoundError
from xqute.orchestration import resource_api as api
from xqute.queue import SqliteJobScheduler
from xqute.queue.dispatch import Dispatcher
from xqute.queue.policy import Capacity, PolicyConfig
from xqute.queue.window import ns_window, pending_namespaces


@pytest.fixture
def store(tmp_path):
    store = SqliteJobScheduler(tmp_path / "queue.db")
    yield store
    store.close()


def row(store, job_id):
    keys = ("priority", "priority_class", "namespace", "cpus", "mem_mb", "storage_mb")
    values = store.db.query(
        f"SELECT {', '.join(keys)} FROM job_queue WHERE id = ?", (job_id,)
    )[0]
    return dict(zip(keys, values, strict=True))


def test_submit_resolves_classes_queues_and_request_bundles(store):
    api.create_priority_class(
        store.db,
        {"name": "batch", "value": 0, "preemptible": True, "global_default": True},
    )
    api.create_priority_class(store.db, {"name": "high", "value": 1000})
    api.create_named_queue(
        store.db, {"name": "urgent", "priority": 100, "priority_class": "high"}
    )
    api.create_resource_class(store.db, {"name": "large", "cpu": 4, "memory": "16G"})
    plain = store.submit_job(["true"])
    assert row(store, plain) | {} == {
        "priority": 0,
        "priority_class": "batch",
        "namespace": "default",
        "cpus": 1,
        "mem_mb": 0,
        "storage_mb": 0,
    }
    queued = store.submit_job(
        ["true"],
        queue="urgent",
        resource_class="large",
        namespace="team-a",
        storage="2G",
    )
    assert row(store, queued) == {
        "priority": 100,
        "priority_class": "high",
        "namespace": "team-a",
        "cpus": 4,
        "mem_mb": 16384,
        "storage_mb": 2048,
    }
    # what the job gives itself wins over the class, queue and bundle
    own = store.submit_job(
        ["true"], priority=7, cpus=2, priority_class="high", resource_class="large"
    )
    assert (row(store, own)["priority"], row(store, own)["cpus"]) == (7, 2)
    ids = store.submit_jobs([{"command": ["true"], "priority_class": "high"}] * 2)
    assert {row(store, i)["priority"] for i in ids} == {1000}


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"priority_class": "hi"}, "priority_class 'hi' is not allowed; choose one"),
        ({"queue": "fast"}, "queue 'fast' does not exist: none is defined"),
        ({"resource_class": "xl"}, "resource_class 'xl' does not exist"),
        ({"namespace": "team a"}, "namespace 'team a' is not a valid name"),
        ({"storage": "much"}, "storage 'much' is not a memory size"),
    ],
)
def test_submit_names_what_is_unknown(store, kwargs, message):
    api.create_priority_class(store.db, {"name": "high", "value": 1000})
    with pytest.raises(ConfigError) as info:
        store.submit_job(["true"], **kwargs)
    assert message in str(info.value)
    assert store.count_jobs()["pending"] == 0


def test_policy_rules_across_definitions(store):
    api.create_resource_quota(store.db, {"name": "qa", "namespace": "a", "cpu": 2})
    with pytest.raises(ConfigError, match="namespace 'a' has quota 'qa' already"):
        api.create_resource_quota(store.db, {"name": "qb", "namespace": "a", "cpu": 1})
    api.create_resource_quota(store.db, {"name": "qa", "namespace": "a", "cpu": 4})
    assert api.list_policies(store.db).quotas["a"].limits.cpu == 4
    api.create_priority_class(store.db, {"name": "x", "global_default": True})
    with pytest.raises(ConfigError, match="'x' is the global default already"):
        api.create_priority_class(store.db, {"name": "y", "global_default": True})
    with pytest.raises(ConfigError, match="priority_class 'nope' is not allowed"):
        api.create_named_queue(store.db, {"name": "q", "priority_class": "nope"})
    api.delete_policy(store.db, "quota", "qa")
    assert api.list_policies(store.db).quotas == {}
    with pytest.raises(DefinitionNotFoundError, match="no quota 'qa'; known: none"):
        api.delete_policy(store.db, "quota", "qa")
    with pytest.raises(ConfigError, match="kind 'quotas' is not allowed"):
        api.delete_policy(store.db, "quotas", "qa")


def test_a_quota_given_another_namespace_moves_there(store):
    """A quota is known by its name: the namespace it limited is free again,
    and deleting it leaves no older quota behind."""
    api.create_resource_quota(store.db, {"name": "q", "namespace": "a", "cpu": 1})
    api.create_resource_quota(store.db, {"name": "q", "namespace": "b", "cpu": 2})
    quotas = api.list_policies(store.db).quotas
    assert {ns: q.limits.cpu for ns, q in quotas.items()} == {"b": 2}
    api.create_resource_quota(store.db, {"name": "qa", "namespace": "a", "cpu": 3})
    api.delete_policy(store.db, "quota", "q")
    quotas = api.list_policies(store.db).quotas
    assert {ns: q.name for ns, q in quotas.items()} == {"a": "qa"}


def test_a_full_namespace_does_not_fill_the_window(store):
    """300 high-priority jobs of namespace a (at its quota) ahead of 5 of b:
    the window holds b's jobs too, and the pool starts them."""
    api.create_resource_quota(store.db, {"name": "qa", "namespace": "a", "cpu": 1})
    busy = store.submit_job(["sleep", "1"], namespace="a")
    store.db.write(
        lambda c: c.execute(
            "UPDATE job_queue SET state = 'running', worker = 'w' WHERE id = ?", (busy,)
        )
    )
    store.submit_jobs(
        {"command": ["true"], "namespace": "a", "priority": 9} for _ in range(300)
    )
    b_ids = store.submit_jobs({"command": ["true"], "namespace": "b"} for _ in range(5))
    cap = Capacity(cpus=8, mem_mb=8000, max_workers=8)
    assert pending_namespaces(store.db) == ["a", "b"]
    window = ns_window(store.db, 16, cap, {})
    assert [j.id for j in window if j.namespace == "b"] == b_ids
    assert len(window) == 8 + 5  # 16 / 2 namespaces
    dispatcher = Dispatcher(16, PolicyConfig())
    decision = dispatcher.dispatch(store.db, cap, [], "w")
    assert [s.id for s in decision.start] == b_ids
    # and the jobs of a say why they wait
    first_a = window[0].id
    assert store.get_job_status(first_a)["reason"] == "quota a: cpu 1+1 > 1"


def test_the_dispatcher_rereads_the_policy_only_when_it_changed(store):
    dispatcher = Dispatcher(16, PolicyConfig())
    dispatcher.refresh(store.db)
    before = dispatcher.catalog
    dispatcher.refresh(store.db)
    assert dispatcher.catalog is before
    api.create_priority_class(store.db, {"name": "high", "value": 1000})
    dispatcher.refresh(store.db)
    assert list(dispatcher.catalog.priority_classes) == ["high"]
    api.delete_policy(store.db, "priority_class", "high")
    dispatcher.refresh(store.db)
    assert dispatcher.catalog.priority_classes == {}


def test_a_quota_counts_only_its_scopes(store):
    """A quota on plain jobs: a workflow task of the namespace neither counts
    nor waits for it."""
    api.create_resource_quota(
        store.db, {"name": "qa", "namespace": "a", "cpu": 1, "scopes": ["job"]}
    )
    busy = store.submit_job(["sleep", "1"], namespace="a")

    def setup(conn):
        conn.execute(
            "UPDATE job_queue SET state = 'running', worker = 'w' WHERE id = ?",
            (busy,),
        )
        run = conn.execute(
            "INSERT INTO runs (kind, def_id, namespace, name, created_at)"
            " VALUES ('workflow', 0, 'a', 'wf', 0)"
        ).lastrowid
        return run

    run = store.db.write(setup)
    plain = store.submit_job(["true"], namespace="a")
    task = store.submit_job(["true"], namespace="a")
    store.db.write(
        lambda c: c.execute("UPDATE job_queue SET run_id = ? WHERE id = ?", (run, task))
    )
    dispatcher = Dispatcher(16, PolicyConfig())
    cap = Capacity(cpus=8, mem_mb=8000, max_workers=8)
    decision = dispatcher.dispatch(store.db, cap, [], "w")
    assert [s.id for s in decision.start] == [task]
    assert decision.waiting[plain] == "quota a: cpu 1+1 > 1"


def test_the_autoscaler_counts_jobs_a_replica_could_start(store):
    """Jobs waiting on their namespace's quota are not demand for replicas."""
    from xqute.queue.claims import note_unfit
    from xqute.queue.pool_autoscale import eligible_pending

    cap = Capacity(cpus=4, mem_mb=8000, max_workers=4)
    ids = store.submit_jobs({"command": ["true"], "namespace": "a"} for _ in range(5))
    store.submit_job(["true"], cpus=8)  # never fits this pool
    assert eligible_pending(store.db, cap, 100) == 5
    note_unfit(store.db, {i: "quota a: cpu 1+1 > 1" for i in ids[:3]})
    assert eligible_pending(store.db, cap, 100) == 2
    assert eligible_pending(store.db, cap, 1) == 1
