"""The definition models: what they accept, and how they say what is wrong."""

from datetime import timedelta

import pytest

from xqute.errors import DefinitionError
from xqute.orchestration import (
    ExponentialBackoff,
    JobSpec,
    JobTemplate,
    LinearBackoff,
    Parallelism,
    Parameter,
    ResourceRequirements,
    RestartPolicy,
    Task,
    Workflow,
)
from xqute.orchestration.parse import dump, parse


def test_contract_example_builds():
    tpl = JobTemplate(
        name="batch-processing",
        command=["batch", "--input", "#{params.input_path}", "--size", 3],
        resources=ResourceRequirements(cpu=4, memory="8G", gpu=0),
        parameters=[
            Parameter("input_path", required=True),
            Parameter("batch_size", default="1000"),
        ],
    )
    assert tpl.command[-1] == "3" and tpl.resources.memory == 8192
    job = JobSpec(
        name="data-processing",
        command=["process", "--input", "data.csv"],
        resources=ResourceRequirements(cpu=2, memory="4Gi"),
        restart_policy=RestartPolicy.on_failure(
            max_retries=3,
            backoff=ExponentialBackoff(initial="10s", max="5m", multiplier=2.0),
        ),
        timeout="2h",
        parallelism=Parallelism(completions=10, max_concurrent=5),
    )
    assert job.timeout == 7200 and job.restart_policy.max_attempts == 4
    assert job.restart_policy.backoff.max == 300
    wf = Workflow(
        name="data-pipeline",
        tasks=[
            Task("extract", job="data-extractor", parameters={"source": "db"}),
            Task(
                "load",
                command=["load", "#{extract.output}"],
                dependencies=["extract"],
                timeout=timedelta(minutes=5),
                retry=RestartPolicy.on_failure(3, LinearBackoff(interval="60s")),
            ),
        ],
        on_failure="continue",
        timeout="4h",
        parallelism=2,
    )
    assert wf.tasks[1].timeout == 300
    # stored as JSON and read back: the same model
    assert Workflow.model_validate(dump(wf)) == wf
    assert JobSpec.model_validate(dump(job)) == job


@pytest.mark.parametrize(
    ("data", "where", "what"),
    [
        ({"tasks": [{"name": "a"}]}, "tasks[0]", "exactly one of job=, command="),
        (
            {"tasks": [{"name": "a", "shell": "x", "bogus": 1}]},
            "tasks[0].bogus",
            "unknown key 'bogus'",
        ),
        (
            {"tasks": [{"name": "a", "shell": "x", "resources": {"cpu": 0}}]},
            "tasks[0].resources.cpu",
            "greater than or equal to 1",
        ),
        (
            {"tasks": [{"name": "a", "shell": "x", "resources": {"memory": "4X"}}]},
            "tasks[0].resources.memory",
            "'4X' is not a memory size",
        ),
        (
            {"tasks": [{"name": "a", "shell": "x", "timeout": "soon"}]},
            "tasks[0].timeout",
            "'soon' is not a duration",
        ),
        (
            {
                "tasks": [
                    {"name": "a", "shell": "x", "retry": {"backoff": {"type": "expo"}}}
                ]
            },
            "tasks[0].retry.backoff",
            "unknown type 'expo'",
        ),
        (
            {"tasks": [{"name": "run", "shell": "x"}]},
            "tasks[0]",
            "may not be called 'run'",
        ),
        ({"tasks": [{"name": "a.b", "shell": "x"}]}, "tasks[0].name", "'a.b'"),
        ({"tasks": []}, "tasks", "at least 1 item"),
        (
            {"tasks": [{"name": "a", "command": ["x", True]}]},
            "tasks[0].command[1]",
            "is a boolean",
        ),
        (
            {"tasks": [{"name": "a", "shell": "x"}], "on_failure": "halt"},
            "on_failure",
            "'halt'",
        ),
        (
            {
                "tasks": [
                    {
                        "name": "a",
                        "shell": "x",
                        "success_criteria": {"exit_codes": [0, 256]},
                    }
                ]
            },
            "tasks[0].success_criteria.exit_codes[1]",
            "less than or equal to 255",
        ),
        (
            {"tasks": [{"name": "a", "shell": "x", "timeout": -5.0}]},
            "tasks[0].timeout",
            "must be a positive duration",
        ),
        (
            {"tasks": [{"name": "a", "shell": "x", "image": "--privileged"}]},
            "tasks[0].image",
            "no leading '-'",
        ),
    ],
)
def test_bad_workflows_say_where(data, where, what):
    with pytest.raises(DefinitionError) as info:
        parse(Workflow, {"name": "wf", **data}, "workflow 'wf'")
    found = {w: m for w, m in info.value.problems}
    assert where in found, info.value.problems
    assert what in found[where], found[where]
    assert str(info.value).startswith("workflow 'wf': ")


@pytest.mark.parametrize(
    ("data", "expect"),
    [
        (
            {"max_attempts": 3, "backoff": "exponential"},
            RestartPolicy.on_failure(2, ExponentialBackoff()),
        ),
        ({"max_retries": 2}, RestartPolicy.on_failure(2)),
        (
            {
                "policy": "on_failure",
                "max_retries": 1,
                "backoff": {"type": "linear", "interval": "5s"},
            },
            RestartPolicy.on_failure(1, LinearBackoff(interval=5)),
        ),
        ({"max_attempts": 1}, RestartPolicy.never()),
    ],
)
def test_restart_policy_forms(data, expect):
    assert RestartPolicy.model_validate(data) == expect


def test_parameters_check_values():
    p = Parameter("mode", choices=["a", "b"])
    assert p.check("a") is None and "'c' is not one of 'a', 'b'" in p.check("c")
    q = Parameter("day", pattern=r"\d{4}-\d\d-\d\d")
    assert q.check("2026-12-01") is None and "does not match" in q.check("x; rm")
    with pytest.raises(ValueError, match="required and has a default"):
        Parameter("x", required=True, default="1")
    assert (
        Parallelism.model_validate({"completion": "any_successful"}).completion_strategy
        == "any_successful"
    )


@pytest.mark.parametrize(
    ("build", "where", "what"),
    [
        (lambda: Task(name="t", command=["x"], timeout=-5.0), "timeout", "-5.0"),
        (lambda: JobSpec(name="a b", command=["x"]), "name", "'a b'"),
        (lambda: Workflow(name="wf", tasks=[], bogus=1), "bogus", "unknown key"),
        (lambda: ResourceRequirements(cpu=0), "cpu", "greater than or equal to 1"),
    ],
)
def test_models_built_in_python_fail_as_xqute_errors(build, where, what):
    """Python code gets the same error as YAML: a DefinitionError (an
    XquteError and a ValueError) naming the field and the bad value."""
    with pytest.raises(DefinitionError) as info:
        build()
    found = dict(info.value.problems)
    assert where in found and what in found[where], info.value.problems
    assert isinstance(info.value, ValueError)


@pytest.mark.parametrize(
    "make, message",
    [
        (
            lambda: JobSpec(name="j", command=["a\x00"]),
            r"command\[0\]: 'a\\x00' contains a NUL",
        ),
        (
            lambda: JobSpec(name="j", command=["x"], env={"A": "x\x00"}),
            "env.A: 'x.x00' contains a NUL",
        ),
        (
            lambda: Task("a", shell="echo $A", parameters={"p": "\x00"}),
            r"parameters.p: '\\x00' contains a NUL",
        ),
        (
            lambda: JobSpec(name="j", command=["x"], timeout=10**400),
            "timeout: duration 1000.* must be a positive duration",
        ),
    ],
)
def test_values_no_process_can_take_are_refused_at_definition(make, message):
    # (a NUL was stored, and failed the run)
    with pytest.raises(DefinitionError, match=message):
        make()
