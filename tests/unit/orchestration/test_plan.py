"""Plans: compiling a stored workflow, rendering a task's queue job."""

import pytest

from xqute.errors import RenderError
from xqute.orchestration import JobSpec, JobTemplate, Workflow
from xqute.orchestration.parse import dump
from xqute.orchestration.plan import (
    bind_params,
    compile_job,
    compile_workflow,
    render_task,
    workflow_edges,
)

TPL = dump(
    JobTemplate(
        name="batch",
        command=["batch", "--in", "#{params.input}", "--n", "#{params.size}"],
        env={"MODE": "#{params.size}x"},
        resources={"cpu": 4, "memory": "8G"},
        parameters=[
            {"name": "input", "required": True},
            {"name": "size", "default": "1000", "pattern": r"\d+"},
        ],
    )
)
JOB = dump(
    JobSpec(
        name="nightly",
        template="batch",
        parameters={"input": "/data"},
        timeout="1h",
        restart_policy={"max_retries": 2},
    )
)
RUN = {"id": 7, "name": "wf", "refs": {"schedule.time": "2026-12-01T00:00"}}


def wf(**kw):
    return dump(
        Workflow(name="wf", parameters=[{"name": "day", "default": "d1"}], **kw)
    )


def test_a_template_task_binds_its_parameters_in_the_workflow_scope():
    spec = wf(
        tasks=[
            {"name": "a", "shell": "echo x > $XQUTE_OUTPUT"},
            {
                "name": "b",
                "job": "batch",
                "dependencies": ["a"],
                "parameters": {"input": "#{a.output} #{params.day}"},
            },
        ]
    )
    plans = dict(compile_workflow(spec, {"batch": TPL}, {}))
    b = plans["b"]
    assert (b["cpus"], b["mem_mb"], b["deps"], b["needs"]) == (4, 8192, ["a"], ["a"])
    cmd, env = render_task(b, {"day": "d1"}, {"a": "$(rm -rf ~)"}, RUN, 0)
    assert cmd == ["batch", "--in", "$(rm -rf ~) d1", "--n", "1000"]
    assert env["MODE"] == "1000x" and env["XQUTE_PARAM_INPUT"] == "$(rm -rf ~) d1"
    assert env["XQUTE_PARAM_DAY"] == "d1" and env["XQUTE_RUN_ID"] == "7"
    with pytest.raises(RenderError, match="task 'a' wrote no output"):
        render_task(b, {"day": "d1"}, {}, RUN, 0)


def test_shell_tasks_get_one_quoted_word_and_items_their_index():
    spec = wf(
        tasks=[
            {
                "name": "s",
                "shell": "run #{params.day} #{item.index} #{run.id}",
                "parallelism": {"completions": 3},
            }
        ]
    )
    ((_, plan),) = compile_workflow(spec, {}, {})
    cmd, env = render_task(plan, {"day": "it's"}, {}, RUN, 2)
    assert cmd == "run 'it'\"'\"'s' 2 7" and env["XQUTE_ITEM_INDEX"] == "2"
    assert plan["completions"] == 3


def test_a_job_run_and_its_parameters():
    ((name, plan),) = compile_job(JOB, {"batch": TPL})
    assert name == "main" and plan["timeout_s"] == 3600
    assert plan["restart"]["max_retries"] == 2 and plan["bind"] == {"input": "/data"}
    cmd, _ = render_task(plan, {}, {}, RUN, 0)
    assert cmd[:3] == ["batch", "--in", "/data"]
    bad = {**plan, "bind": {"input": "/x", "size": "ten"}}
    with pytest.raises(RenderError, match=r"size='ten' does not match \\d\+"):
        render_task(bad, {}, {}, RUN, 0)


def test_fixed_references_of_the_trigger():
    spec = wf(tasks=[{"name": "t", "command": ["x", "#{schedule.time}"]}])
    ((_, plan),) = compile_workflow(spec, {}, {})
    assert render_task(plan, {}, {}, RUN, 0)[0] == ["x", "2026-12-01T00:00"]
    with pytest.raises(RenderError, match="no value in this run"):
        render_task(plan, {}, {}, {"id": 1, "name": "wf"}, 0)


def test_hooks_become_tasks_around_the_others():
    spec = wf(
        tasks=[
            {"name": "a", "command": ["a"]},
            {"name": "b", "command": ["b"], "dependencies": ["a"]},
        ],
        hooks={
            "pre_execute": [{"command": ["check"]}, "validate_resources"],
            "post_execute": [{"command": ["report"], "on_failure": "warn"}],
        },
    )
    plans = compile_workflow(spec, {}, {})
    assert [n for n, _ in plans] == [":pre_execute:0", "a", "b", ":post_execute:0"]
    assert dict(plans)["a"]["deps"] == [":pre_execute:0"]
    assert dict(plans)[":post_execute:0"]["warn_only"] is True
    assert workflow_edges(spec) == [("a", "b"), (":pre_execute:0", "a")]


@pytest.mark.parametrize(
    ("given", "values", "problems"),
    [
        ({}, {"day": "d1", "mode": ""}, []),
        ({"day": 5}, {"day": "5", "mode": ""}, []),
        ({"mode": "fast"}, None, ["'fast' is not one of"]),
        ({"dya": "x"}, None, ["unknown parameter 'dya'"]),
        ({"day": True}, None, ["must be text"]),
    ],
)
def test_bind_params(given, values, problems):
    decls = [
        {"name": "day", "default": "d1"},
        {"name": "mode", "choices": ["", "slow"]},
    ]
    got, why = bind_params(decls, given)
    if values is not None:
        assert got == values and why == []
    for expected, found in zip(problems, why, strict=True):
        assert expected in found
    assert bind_params([{"name": "x", "required": True}], {})[1] == [
        "missing required parameter 'x'"
    ]


def test_a_task_with_an_image_runs_through_the_container_runtime():
    from xqute.orchestration.plan import in_container

    code = in_container("podman", "img:1", ["echo", "a b"], ["XQUTE_TASK"])
    assert code.startswith('exec podman run --rm -i -v "$XQUTE_JOB_METADIR:')
    assert "-e XQUTE_OUTPUT -e XQUTE_TASK img:1 echo 'a b'" in code
    assert in_container("docker", "i", "x; y", []).endswith("i sh -c 'x; y'")
