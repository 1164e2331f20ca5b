"""Runs advanced by the pool's real transactions (no processes: ``StepPool``)."""

import time

import pytest

from xqute.errors import (
    ConfigError,
    DefinitionNotFoundError,
    RunNotFoundError,
    WorkflowError,
)
from xqute.orchestration import JobSpec, JobTemplate, Parameter, Task, Workflow
from xqute.orchestration.pool_hooks import cancel_overdue
from xqute.queue import claims


def t(name, *deps, **kw):
    kw.setdefault("command", ["true"]) if not {"job", "shell"} & set(kw) else None
    return Task(name, dependencies=list(deps), **kw)


def run(orch, *tasks, params=None, **kw):
    orch.create_workflow(Workflow(name="wf", tasks=list(tasks), **kw))
    return orch.execute_workflow("wf", params).id


def types(orch, run_id):
    return [(e.type, e.task) for e in orch.watch(execution_id=run_id, follow=False)]


def test_a_chain_passes_outputs_and_queues_each_task_in_the_finish_tx(orch, pool):
    rid = run(
        orch,
        t("a"),
        t("b", "a", command=["echo", "#{a.output}"]),
        t("c", "b", shell="echo #{b.output}"),
    )
    assert [task for _, task, _ in pool.pending()] == ["a"]
    pool.run("a", output="it's $(x)\n")
    ((job, task, _),) = pool.pending()  # b queued by a's finish transaction
    assert task == "b"
    assert orch.store.get_job_status(job)["command"] == ["echo", "it's $(x)"]
    pool.run("b", output="v2")
    assert orch.store.get_job_status(pool.pending()[0][0])["command"] == "echo v2"
    pool.run("c")
    st = orch.get_workflow_status(rid)
    assert st.state == "succeeded" and st.task("a").output == "it's $(x)"
    assert types(orch, rid) == [
        ("workflow.started", None),
        ("task.ready", "a"),
        ("task.queued", "a"),
        ("task.started", "a"),
        ("task.succeeded", "a"),
        ("task.ready", "b"),
        ("task.queued", "b"),
        ("task.started", "b"),
        ("task.succeeded", "b"),
        ("task.ready", "c"),
        ("task.queued", "c"),
        ("task.started", "c"),
        ("task.succeeded", "c"),
        ("workflow.succeeded", None),
    ]


@pytest.mark.parametrize(
    ("policy", "expect"),
    [
        (
            "continue",
            {
                "a": "succeeded",
                "b": "failed",
                "c": "succeeded",
                "d": "upstream_failed",
                "e": "succeeded",
                "f": "succeeded",
            },
        ),
        (
            "stop",
            {
                "a": "succeeded",
                "b": "failed",
                "c": "succeeded",
                "d": "upstream_failed",
                "e": "skipped",
                "f": "skipped",
            },
        ),
    ],
)
def test_failure_policy(orch, pool, policy, expect):
    rid = run(
        orch,
        t("a"),
        t("b", "a"),
        t("c", "a"),
        t("d", "b", "c"),
        t("e"),
        t("f", "e"),
        on_failure=policy,
    )
    pool.run("a")
    jobs = pool.claim("b", "c")
    pool.finish(jobs["b"], rc=3)  # c still runs: it finishes either way
    pool.finish(jobs["c"])
    if policy == "continue":
        pool.run("e")
        pool.run("f")
    assert pool.states(rid) == expect
    st = orch.get_workflow_status(rid)
    assert st.state == "failed" and st.task("b").rc == 3
    assert st.task("d").reason == "dependency 'b' failed"
    assert orch.store.count_jobs()["pending"] == 0


def test_retries_wait_without_holding_a_worker(orch, pool):
    retry = {"max_retries": 2, "backoff": {"type": "linear", "interval": 30}}
    rid = run(orch, t("a", retry=retry))
    pool.finish(pool.claim("a")["a"], rc=1)
    assert len(orch.store.list_jobs(state="waiting")) == 1
    assert pool.pending() == [] and orch.get_workflow_status(rid).state == "running"
    assert claims.promote_waiting(orch.db, time.time())[0] == 0  # not yet
    assert claims.promote_waiting(orch.db, time.time() + 31)[0] == 1
    pool.finish(pool.claim("a")["a"], rc=1)
    (job2,) = orch.store.list_jobs(state="waiting")  # the 2nd retry waits 60 s
    eligible = orch.db.query(
        "SELECT eligible_at FROM job_queue WHERE id = ?", (job2["id"],)
    )[0][0]
    assert 55 < eligible - time.time() < 61
    claims.promote_waiting(orch.db, time.time() + 61)
    pool.finish(pool.claim("a")["a"], rc=0)
    st = orch.get_workflow_status(rid)
    assert st.state == "succeeded" and st.task("a").attempts == 3
    assert [e for e, _ in types(orch, rid)].count("task.retrying") == 2
    (end,) = [e for e in orch.watch(execution_id=rid) if e.type == "task.succeeded"]
    assert end.attempt == 3  # a task's end says after how many attempts


def test_parallel_items(orch, pool):
    rid = run(
        orch,
        t(
            "shard",
            command=["x", "#{item.index}"],
            parallelism={"completions": 4, "max_concurrent": 2},
        ),
        t(
            "any",
            command=["y"],
            parallelism={"completions": 3, "completion": "any_successful"},
        ),
    )
    assert sorted(task for _, task, _ in pool.pending()) == ["any"] * 3 + ["shard"] * 2
    jobs = pool.claim("shard")
    assert orch.store.get_job_status(jobs["shard[1]"])["command"] == ["x", "1"]
    pool.finish(jobs["shard"])
    assert [n for _, task, n in pool.pending() if task == "shard"] == [2]
    anyj = pool.claim("any")
    pool.finish(anyj["any[1]"], rc=0)  # any_successful: decided; others dropped
    assert orch.store.get_job_status(anyj["any"])["cancel_requested"]
    pool.finish(anyj["any"], state="cancelled")
    for _ in range(2):
        for job_id in pool.claim("shard").values():
            pool.finish(job_id)
    pool.finish(jobs["shard[1]"])
    st = orch.get_workflow_status(rid)
    assert st.state == "succeeded" and st.task("shard").succeeded_items == 4


def test_parallelism_caps_the_tasks_at_once(orch, pool):
    rid = run(orch, *(t(f"t{i}") for i in range(5)), parallelism=2)
    assert len(pool.pending()) == 2
    done = 0
    while pool.pending():
        assert len(pool.pending()) <= 2
        for job_id in pool.claim().values():
            pool.finish(job_id)
            done += 1
    assert done == 5 and orch.get_workflow_status(rid).state == "succeeded"


def test_cancel_kills_what_runs_and_drops_the_rest(orch, pool):
    rid = run(orch, t("a"), t("b"), t("c", "a"))
    job_a = pool.claim("a")["a"]
    assert orch.cancel_workflow(rid) and not orch.cancel_workflow(rid)
    assert pool.pending() == []
    assert orch.store.get_job_status(job_a)["cancel_requested"]
    assert orch.get_workflow_status(rid).state == "running"  # a is being killed
    pool.finish(job_a, rc=143, state="cancelled")
    st = orch.get_workflow_status(rid)
    assert st.state == "cancelled" and pool.states(rid) == dict.fromkeys(
        "abc", "cancelled"
    )


def test_a_run_past_its_timeout_ends_timeout(orch, pool):
    rid = run(orch, t("a"), t("b", "a"), timeout="1h")
    job_a = pool.claim("a")["a"]
    assert cancel_overdue(orch.db, time.time()) > time.time() + 3500
    cancel_overdue(orch.db, time.time() + 3601)
    pool.finish(job_a, rc=143, state="cancelled")
    st = orch.get_workflow_status(rid)
    assert st.state == "timeout" and st.reason == "the run's timeout passed"


def test_retry_reruns_only_what_did_not_succeed(orch, pool):
    rid = run(
        orch, t("a"), t("b", "a", command=["x", "#{a.output}"]), t("c", "b"), t("d")
    )
    pool.run("a", output="A")
    pool.run("d")
    pool.run("b", rc=1)
    assert orch.get_workflow_status(rid).state == "failed"
    ex = orch.retry_workflow(rid)
    assert [task for _, task, _ in pool.pending()] == ["b"]
    assert orch.store.get_job_status(pool.pending()[0][0])["command"] == ["x", "A"]
    pool.run("b")
    pool.run("c")
    st = ex.status()
    assert st.state == "succeeded" and st.attempt == 2
    assert st.task("a").attempts == 1 and st.task("b").attempts == 1
    with pytest.raises(WorkflowError, match="succeeded: nothing to retry"):
        orch.retry_workflow(rid)
    # a watch from the run's first event goes on through the retry to its end
    watched = [(e.type, e.task) for e in orch.watch(execution_id=rid, timeout="5s")]
    assert watched.count(("workflow.failed", None)) == 1
    assert watched.count(("task.ready", "b")) == 2  # ready again on the retry
    assert watched[-1] == ("workflow.succeeded", None)


@pytest.mark.parametrize(
    ("output", "why"),
    [
        (b"x" * 70, "output is 70 bytes > 64"),
        (b"a\0b", "NUL byte"),
        (b"\xff", "not UTF-8"),
    ],
)
def test_bad_outputs_fail_the_producer(orch, pool, output, why):
    rid = run(orch, t("a", output_max_bytes=64), t("b", "a", command=["#{a.output}"]))
    job = pool.claim("a")["a"]
    pool.finish(job, output=output)
    st = orch.get_workflow_status(rid)
    assert st.task("a").state == "failed" and why in st.task("a").reason
    assert st.task("b").state == "upstream_failed"


def test_templates_jobs_and_parameters(orch, pool):
    orch.create_job_template(
        JobTemplate(
            name="greet",
            command=["echo", "#{params.who}"],
            parameters=[Parameter("who", required=True, pattern="[a-z]+")],
        )
    )
    info = orch.create_job(
        JobSpec(name="hello", template="greet", parameters={"who": "world"})
    )
    job = pool.claim("main")["main"]
    assert orch.store.get_job_status(job)["command"] == ["echo", "world"]
    assert orch.store.get_job_status(job)["env"]["XQUTE_PARAM_WHO"] == "world"
    pool.finish(job)
    assert orch.get_job_status("hello").state == "succeeded"
    assert orch.get_job_status(info.run_id).kind == "job"
    with pytest.raises(ConfigError, match=r"who='World!' does not match"):
        orch.run_job("hello", parameters={"who": "World!"})
    with pytest.raises(ConfigError, match="unknown parameter 'whom'"):
        orch.run_job("hello", parameters={"whom": "x"})
    orch.create_workflow(
        Workflow(
            name="w",
            parameters=[Parameter("day", required=True)],
            tasks=[t("a", command=["#{params.day}"])],
        )
    )
    with pytest.raises(ConfigError, match="missing required parameter 'day'"):
        orch.execute_workflow("w")


def test_hooks_run_as_tasks_around_the_run(orch, pool):
    rid = run(
        orch,
        t("a"),
        t("b", "a"),
        hooks={
            "pre_execute": [{"command": ["check"]}],
            "post_execute": [{"command": ["report"], "on_failure": "warn"}],
        },
    )
    ((job, task, _),) = pool.pending()
    assert task == ":pre_execute:0"
    assert orch.store.get_job_status(job)["command"][-1] == "check"
    pool.finish(pool.claim(task)[task], rc=1)  # a failing pre hook fails the run
    assert pool.states(rid)["a"] == "upstream_failed"
    ((job, task, _),) = pool.pending()
    env = orch.store.get_job_status(job)["env"]
    assert '"state": "failed"' in env["XQUTE_RUN_JSON"]
    pool.finish(pool.claim(task)[task], rc=5)  # warn only
    st = orch.get_workflow_status(rid)
    assert st.state == "failed" and st.task(":post_execute:0").state == "failed"


def test_suspended_jobs_hold_their_queue_jobs(orch, pool):
    orch.create_job(JobSpec(name="j", command=["true"]))
    orch.suspend_job("j")
    assert orch.store.count_jobs()["held"] == 1 and pool.pending() == []
    with pytest.raises(WorkflowError, match="suspended"):
        orch.run_job("j")
    orch.resume_job("j")
    pool.run("main")
    assert orch.get_job_status("j").state == "succeeded"
    with pytest.raises(WorkflowError, match="active runs"):
        orch.run_job("j") and orch.delete_job("j")
    orch.delete_job("j", cascade=True)


async def test_the_async_orchestrator_has_the_same_methods(tmp_path, pool):
    from xqute.orchestration import AsyncOrchestrator
    from xqute.orchestration.aorchestrator import METHODS
    from xqute.orchestration.orchestrator import Orchestrator

    assert all(hasattr(Orchestrator, m) for m in METHODS)
    aorch = AsyncOrchestrator(pool.orch.store.db_path)
    await aorch.create_workflow(Workflow(name="w", tasks=[t("a")]))
    ex = await aorch.execute_workflow("w")
    pool.run("a")
    events = [e.type async for e in aorch.watch(execution_id=ex.id)]
    assert events[-1] == "workflow.succeeded"
    assert (await aorch.get_workflow_status(ex.id)).state == "succeeded"
    # the run's handle is awaitable too: the seed's `await execution.wait()`
    status = await ex.wait(timeout="10s", embedded=False)
    assert status.state == "succeeded" and (await ex.status()).id == ex.id
    assert [e.type async for e in ex.events()] == events
    assert await ex.outputs("a") == {} and not await ex.cancel()
    with pytest.raises(RunNotFoundError):
        await aorch.execution(99)
    await aorch.aclose()


def test_a_cancelled_run_ends_every_task_cancelled(orch, pool):
    rid = run(orch, t("a"), t("b", "a"), t("c", "b"), t("d"))
    assert orch.cancel_workflow(rid)
    assert pool.states(rid) == dict.fromkeys("abcd", "cancelled")
    assert orch.get_workflow_status(rid).state == "cancelled"


def test_plugin_hooks_are_called_from_the_event_log(orch, pool):
    from xqute import simplug
    from xqute.orchestration.hooks import EventHooks

    calls = []

    class RunWatcher:
        @simplug.impl
        def on_workflow_start(run):
            calls.append(("start", run["name"]))

        @simplug.impl
        def on_task_ready(run, task):
            calls.append(("ready", task))

        @simplug.impl
        def on_workflow_end(run):
            calls.append(("end", run["state"]))

    hooks = EventHooks(orch.db, plugins=[RunWatcher])
    assert hooks.active
    rid = run(orch, t("a"), t("b", "a"))
    pool.run("a")
    pool.run("b")
    assert orch.get_workflow_status(rid).state == "succeeded"
    hooks.dispatch()
    assert calls == [
        ("start", "wf"),
        ("ready", "a"),
        ("ready", "b"),
        ("end", "succeeded"),
    ]
    assert hooks.dispatch() == 0  # nothing new


def test_a_pending_task_job_cancelled_in_the_queue_is_settled(orch, pool):
    from xqute.orchestration.pool_hooks import settle_orphans

    rid = run(orch, t("a"), t("b", "a"), on_failure="continue")
    ((job, _, _),) = pool.pending()
    orch.store.cancel_job(job)  # the queue's own cancel: no pool saw it
    assert settle_orphans(orch.db, time.time()) == 1
    assert pool.states(rid) == {"a": "cancelled", "b": "upstream_failed"}
    assert orch.get_workflow_status(rid).state == "failed"
    assert settle_orphans(orch.db, time.time()) == 0


def test_a_workflow_declaring_no_parameters_takes_any_as_env(orch, pool):
    # the issue's execute_workflow("data-pipeline", parameters={"day": ...})
    rid = run(orch, t("a"), params={"day": "2026-12-01", "n": 3})
    job = pool.claim("a")["a"]
    env = orch.store.get_job_status(job)["env"]
    assert env["XQUTE_PARAM_DAY"] == "2026-12-01" and env["XQUTE_PARAM_N"] == "3"
    pool.finish(job)
    assert orch.get_workflow_status(rid).state == "succeeded"
    with pytest.raises(ConfigError, match=r"parameter name 'a b' is not valid"):
        orch.execute_workflow("wf", {"a b": "x"})
    orch.create_workflow(
        Workflow(name="w2", parameters=[Parameter("day")], tasks=[t("a")])
    )
    with pytest.raises(ConfigError, match=r"unknown parameter 'dya' \(declared: day\)"):
        orch.execute_workflow("w2", {"dya": "x"})


def test_a_job_with_parallel_items_runs_them(orch, pool):
    orch.create_job(
        JobSpec(
            name="items",
            command=["true"],
            parallelism={"completions": 3, "max_concurrent": 2},
        )
    )
    assert len(pool.claim()) == 2  # its items' cap, not a run-wide one
    assert orch.get_job_status("items").state == "running"


def test_bad_cursors_runs_and_timeouts_are_errors_naming_them(orch, pool):
    rid = run(orch, t("a"))
    with pytest.raises(ConfigError, match=r"since 'abc' must be an event id"):
        orch.watch(since="abc")
    with pytest.raises(ConfigError, match=r"since -1 must be an event id"):
        orch.watch(since=-1)
    with pytest.raises(RunNotFoundError, match="no run 99"):
        orch.watch(execution_id=99)  # at once, not at the first next()
    with pytest.raises(ConfigError, match=r"wait timeout '5x' is not a duration"):
        orch.execution(rid).wait(timeout="5x")
    with pytest.raises(ConfigError, match=r"parameters \['day'\] must be a mapping"):
        orch.execute_workflow("wf", ["day"])
    pool.run("a")
    assert orch.execution(rid).wait(timeout="1m", embedded=False).state == "succeeded"
    assert [e.type for e in orch.watch(execution_id=rid, timeout="1s")][-1] == (
        "workflow.succeeded"
    )


def test_listing_runs_of_a_name_never_defined_is_an_error(orch, pool):
    rid = run(orch, t("a"))
    assert [r.id for r in orch.list_workflow_runs("wf")] == [rid]
    with pytest.raises(DefinitionNotFoundError, match=r"no workflow 'wff' \(did you"):
        orch.list_workflow_runs("wff")
    with pytest.raises(ConfigError, match="run state 'done' is not allowed"):
        orch.list_workflow_runs(state="done")
    with pytest.raises(ConfigError, match="limit 0 must be"):
        orch.list_workflow_runs(limit=0)
    orch.cancel_workflow(rid)
    orch.delete_workflow("wf")  # a deleted workflow keeps its runs
    assert [r.id for r in orch.list_runs("wf", kind="workflow")] == [rid]
    with pytest.raises(DefinitionNotFoundError, match="no job 'wf'"):
        orch.list_runs("wf", kind="job")
