"""Workflows through real daemons and processes: outputs, retries, timeouts,
an embedded pool when no daemon serves the db."""

from __future__ import annotations

import time

import psutil
import pytest

from xqute.orchestration import RestartPolicy, Task, Workflow
from xqute.orchestration.status import task_jobs

pytestmark = pytest.mark.service


def test_outputs_flow_through_a_daemon(orch, daemon):
    daemon(2)
    nasty = "it's; $(date) `x` #{extract.output}"
    put = 'printf "%s\\n" "$1" > "$XQUTE_OUTPUT"'
    orch.create_workflow(
        Workflow(
            name="etl",
            tasks=[
                Task(
                    "extract",
                    command=[
                        "sh",
                        "-c",
                        put,
                        "sh",
                        "it's; $(date) `x` ##{extract.output}",
                    ],
                ),
                Task(
                    "transform",
                    dependencies=["extract"],
                    command=["sh", "-c", put, "sh", "[#{extract.output}]"],
                ),
                Task(
                    "load", dependencies=["transform"], shell="echo #{transform.output}"
                ),
            ],
        )
    )
    ex = orch.execute_workflow("etl")
    st = ex.wait(timeout=60, embedded=False)
    assert st.state == "succeeded", st
    assert st.task("extract").output == nasty
    assert st.task("transform").output == f"[{nasty}]"
    (job,) = task_jobs(orch.db, ex.id, "load")
    with open(job["stdout"]) as fh:
        assert fh.read() == f"[{nasty}]\n"


def test_wait_runs_an_embedded_pool_without_a_daemon(orch, tmp_path):
    counter = tmp_path / "count"
    orch.create_workflow(
        Workflow(
            name="flaky",
            tasks=[
                Task(
                    "once",
                    shell=f"echo x >> {counter}; [ $(wc -l < {counter}) -ge 2 ]",
                    retry=RestartPolicy.on_failure(max_retries=2),
                ),
            ],
        )
    )
    t0 = time.monotonic()
    st = orch.execute_workflow("flaky").wait(timeout=60)
    assert st.state == "succeeded" and st.task("once").attempts == 2
    assert time.monotonic() - t0 < 30
    assert orch.store.list_workers(include_stopped=False) == []  # it stopped


def test_a_run_timeout_terms_then_kills(orch, daemon, tmp_path):
    daemon(2, backend_opts={"kill_grace_s": 1})
    pidfile = tmp_path / "pid"
    orch.create_workflow(
        Workflow(
            name="slow",
            timeout="2s",
            tasks=[
                Task("stubborn", shell=f"trap '' TERM; echo $$ > {pidfile}; sleep 60"),
                Task("never", dependencies=["stubborn"], command=["true"]),
            ],
        )
    )
    t0 = time.monotonic()
    st = orch.execute_workflow("slow").wait(timeout=30, embedded=False)
    assert st.state == "timeout" and st.reason == "the run's timeout passed"
    assert st.task("stubborn").state == "cancelled"
    assert st.task("never").state == "cancelled"
    assert time.monotonic() - t0 < 15
    assert not psutil.pid_exists(int(pidfile.read_text()))


def test_the_example_pipeline_runs_as_is(db_path, tmp_path):
    import subprocess
    import sys
    from pathlib import Path

    example = Path(__file__).resolve().parents[3] / "examples" / "pipeline.yaml"
    env = {**__import__("os").environ, "XQUTE_DB": str(db_path)}

    def xqute(*args):
        return subprocess.run(
            [sys.executable, "-m", "xqute", *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )

    assert xqute("apply", "-f", str(example)).returncode == 0
    again = xqute("apply", "-f", str(example))
    assert again.returncode == 0 and "created" not in again.stdout
    run = xqute(
        "workflow", "run", "data-pipeline", "-p", "day=2026-12-01", "--wait", "--json"
    )
    assert run.returncode == 0, run.stderr
    status = __import__("json").loads(run.stdout)
    assert status["state"] == "succeeded"
    assert [t["output"] for t in status["tasks"]][1] == "1800"
    logs = xqute("workflow", "logs", str(status["id"]), "--task", "load")
    assert "loaded total 1800 for 2026-12-01 into the warehouse" in logs.stdout
    bad = xqute("workflow", "run", "data-pipeline", "-p", "day=yesterday")
    assert bad.returncode == 2 and "does not match" in bad.stderr


@pytest.mark.container
def test_a_task_with_an_image_runs_in_a_container(orch, container_services):
    image = str(container_services["image"])
    if not container_services["engines"]:
        pytest.skip(f"no container engine: {container_services['error']}")
    orch.create_workflow(
        Workflow(
            name="boxed",
            tasks=[
                Task(
                    "inside",
                    image=image,
                    shell="echo in-$XQUTE_RUN_NAME > $XQUTE_OUTPUT",
                ),
                Task(
                    "after",
                    dependencies=["inside"],
                    command=["echo", "#{inside.output}"],
                ),
            ],
        )
    )
    st = orch.execute_workflow("boxed").wait(timeout=120)
    assert st.state == "succeeded", st
    assert st.task("inside").output == "in-boxed"


def test_plugin_hooks_are_called_by_the_embedded_pool(orch):
    """``wait()`` without a daemon: the run's hooks from its start (which came
    before the pool's first look at the events) to its end (after which the
    pool stops), again for a retry."""
    from xqute import simplug as pm

    calls = []

    class EmbeddedRunWatcher:
        name = "r10_embedded_run_watcher"

        @pm.impl
        def on_workflow_start(run):
            calls.append(("start", run["name"]))

        @pm.impl
        def on_task_ready(run, task):
            calls.append(("ready", task))

        @pm.impl
        def on_workflow_end(run):
            calls.append(("end", run["state"]))

    pm.register(EmbeddedRunWatcher)
    try:
        orch.create_workflow(
            Workflow(
                name="hooked",
                tasks=[
                    Task("a", command=["true"]),
                    Task("b", command=["false"], dependencies=["a"]),
                ],
            )
        )
        ex = orch.execute_workflow("hooked")
        assert ex.wait(timeout=60).state == "failed"
        assert calls == [
            ("start", "hooked"),
            ("ready", "a"),
            ("ready", "b"),
            ("end", "failed"),
        ]
        calls.clear()
        assert ex.retry().wait(timeout=60).state == "failed"
        assert calls == [("ready", "b"), ("end", "failed")]
    finally:
        pm.disable(EmbeddedRunWatcher.name)
