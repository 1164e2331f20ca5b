"""Cross-definition checks: every problem, each with where it is."""

import pytest

from xqute.orchestration import JobSpec, JobTemplate, Parameter, Workflow
from xqute.orchestration.validate import check_job, check_template, check_workflow

TEMPLATES = {
    "extractor": JobTemplate(
        name="extractor",
        command=["extract", "#{params.source}"],
        parameters=[
            Parameter("source", required=True, choices=["db", "api"]),
            Parameter("query", default="*"),
        ],
    ),
}
JOBS = {
    "plain": JobSpec(name="plain", command=["true"]),
    "shards": JobSpec(name="shards", command=["x"], parallelism={"completions": 4}),
}


def wf(*tasks, **kw):
    return Workflow(name="wf", tasks=list(tasks), **kw)


def t(name, deps=(), **kw):
    kw.setdefault(
        "command", ["true"]
    ) if "job" not in kw and "shell" not in kw else None
    return {"name": name, "dependencies": list(deps), **kw}


@pytest.mark.parametrize(
    ("tasks", "extra", "expected"),
    [
        ([t("a"), t("b", ["a"])], {}, []),
        (
            [t("a"), t("b", ["extrct"])],
            {},
            [("tasks[1].dependencies[0]", "unknown task 'extrct'")],
        ),
        (
            [t("extract"), t("b", ["extrct"])],
            {},
            [("tasks[1].dependencies[0]", "(did you mean 'extract'?)")],
        ),
        (
            [t("a"), t("a")],
            {},
            [("tasks[1].name", "duplicate task 'a' (also tasks[0])")],
        ),
        ([t("a", ["b"]), t("b", ["a"])], {}, [("tasks", "cycle")]),
        ([t("a", ["a"])], {}, [("tasks[0].dependencies[0]", "depends on itself")]),
        (
            [t("a", job="extractr")],
            {},
            [
                (
                    "tasks[0].job",
                    "unknown template or job 'extractr' (did you mean 'extractor'?)",
                )
            ],
        ),
        (
            [t("a", job="extractor")],
            {},
            [("tasks[0].parameters", "requires parameter 'source'")],
        ),
        (
            [t("a", job="extractor", parameters={"source": "db", "qury": "x"})],
            {},
            [("tasks[0].parameters.qury", "(did you mean 'query'?)")],
        ),
        (
            [t("a", job="extractor", parameters={"source": "ftp"})],
            {},
            [("tasks[0].parameters.source", "'ftp' is not one of 'db', 'api'")],
        ),
        (
            [t("a", job="plain", parameters={"x": "1"})],
            {},
            [("tasks[0].parameters", "takes no parameters")],
        ),
        (
            [t("a", command=["x", "#{params.dya}"])],
            {"parameters": [{"name": "day"}]},
            [("tasks[0].command[1]", "unknown parameter 'dya' (did you mean 'day'?)")],
        ),
        (
            [t("a"), t("b", command=["x", "#{a.output}"])],
            {},
            [("tasks[1].command[1]", "task 'a' is not upstream")],
        ),
        ([t("a"), t("b", ["a"]), t("c", ["b"], env={"IN": "#{a.output}"})], {}, []),
        (
            [t("a", job="shards"), t("b", ["a"], command=["#{a.output}"])],
            {},
            [("tasks[1].command[0]", "runs parallel items")],
        ),
        (
            [t("a"), t("b", ["a"], shell="echo '#{a.output}'")],
            {},
            [("tasks[1].shell", "inside quotes")],
        ),
        (
            [t("a", command=["#{a.outputs}"])],
            {},
            [("tasks[0].command[0]", "unknown reference #{a.outputs}")],
        ),
        (
            [t("a", env={"BAD-NAME": "x"})],
            {},
            [("tasks[0].env.BAD-NAME", "invalid environment variable name")],
        ),
        (
            [t("a", resources={"cpu": 64})],
            {},
            [("tasks[0].resources", "no pool serving this db can ever give that")],
        ),
    ],
)
def test_workflow_problems(tasks, extra, expected):
    problems = check_workflow(wf(*tasks, **extra), TEMPLATES, JOBS, [(8, 16384, 0)])
    assert len(problems) == len(expected), problems
    for (where, what), (pwhere, pwhat) in zip(expected, problems, strict=True):
        assert pwhere == where and what in pwhat, (pwhere, pwhat)


def test_every_problem_at_once():
    problems = check_workflow(
        wf(t("a", ["x"]), t("a", ["y"], command=["#{params.p}"])), TEMPLATES, JOBS
    )
    assert len(problems) == 4  # duplicate, two unknown deps, unknown param


def test_templates_and_jobs():
    tpl = JobTemplate(
        name="t",
        shell="run #{params.a} '#{params.b}'",
        parameters=[{"name": "a"}, {"name": "b"}, {"name": "a"}],
    )
    assert [w for w, _ in check_template(tpl)] == ["parameters[2].name", "shell"]
    job = JobSpec(name="j", template="extractr", parameters={"source": "db"})
    (problem,) = check_job(job, TEMPLATES)
    assert problem == (
        "template",
        "unknown template 'extractr' (did you mean 'extractor'?)",
    )
    assert check_job(JobSpec(name="j", template="extractor"), TEMPLATES) == [
        ("parameters", "template 'extractor' requires parameter 'source'")
    ]
