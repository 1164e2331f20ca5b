"""``apply``: YAML files to definitions, errors with file, line and key."""

import pytest

from xqute.errors import ConfigError, DefinitionError
from xqute.orchestration import Orchestrator, yaml_source
from xqute.orchestration.apply import apply

GOOD = """\
version: 1
scheduler:
  job_defaults: {timeout: 1h, retries: 2, backoff: exponential}
  workflow_defaults: {parallelism: 3, failure_policy: continue}
workflows:
  defaults: {retry: {max_attempts: 2, backoff: linear}, timeout: 5m}
  hooks: {pre_execute: [validate_resources, {command: [check]}]}
definitions:
  templates:
    extractor:
      command: [extract, "#{params.src}"]
      parameters: [{name: src, required: true}]
  workflows:
    pipe:
      tasks:
        - {name: a, job: extractor, parameters: {src: db}}
        - {name: b, dependencies: [a], command: [load, "#{a.output}"]}
"""


@pytest.fixture
def orch(tmp_path):
    o = Orchestrator(tmp_path / "q.db")
    yield o
    o.close()


def write(tmp_path, text):
    path = tmp_path / "x.yaml"
    path.write_text(text)
    return str(path)


def test_apply_is_idempotent_and_applies_the_defaults(orch, tmp_path):
    path = write(tmp_path, GOOD)
    dry = apply(orch.db, path, dry_run=True)
    assert [(c.kind, c.action) for c in dry.changes] == [
        ("template", "created"),
        ("workflow", "created"),
    ]
    assert orch.list_workflows() == []  # a dry run stores nothing
    first = apply(orch.db, path)
    assert [c.action for c in first.changes] == ["created", "created"]
    assert [c.action for c in apply(orch.db, path).changes] == ["unchanged"] * 2
    wf = orch.get_workflow("pipe")
    assert (wf.parallelism, wf.on_failure) == (3, "continue")
    assert wf.tasks[0].retry is None  # defaults go to inline tasks only
    assert wf.tasks[1].retry.max_retries == 1 and wf.tasks[1].timeout == 300
    assert wf.hooks.commands("pre_execute")[0].command == ["check"]
    tpl = orch.get_job_template("extractor")
    assert tpl.timeout == 3600 and tpl.restart_policy.max_retries == 2
    changed = apply(
        orch.db, write(tmp_path, GOOD.replace("load,", "store,")), dry_run=True
    )
    (update,) = [c for c in changed.changes if c.action == "updated"]
    assert update.version == 2 and '-    "load",' in update.diff


@pytest.mark.parametrize(
    ("edit", "problems"),
    [
        (
            ("dependencies: [a]", "dependencies: [aa]"),
            [
                ":17: definitions.workflows.pipe.tasks[1].dependencies[0]: unknown task"
                " 'aa' (did you mean 'a'?)",
                ":17: definitions.workflows.pipe.tasks[1].command[1]: #{a.output}:"
                " task 'a' is not upstream",
            ],
        ),
        (
            ("job: extractor", "job: extractr"),
            [":16: definitions.workflows.pipe.tasks[0].job: unknown template or job"],
        ),
        (
            ("  workflow_defaults", "  workflow_default"),
            [
                ":4: scheduler.workflow_default: unknown key 'workflow_default'"
                " (did you mean 'workflow_defaults'?)"
            ],
        ),
        (
            ("{src: db}", "{src: db, srcs: x}"),
            [":16: definitions.workflows.pipe.tasks[0].parameters.srcs: unknown"],
        ),
        (
            ("version: 1", "version: 1\nmonitors: {}"),
            [":2: monitors: unknown key 'monitors'"],
        ),
        (
            ("{name: b,", "{name: b, bogus: 1,"),
            [":17: definitions.workflows.pipe.tasks[1].bogus: unknown key 'bogus'"],
        ),
        # a bad default: once, at its own line (not at each definition it
        # would have been merged into, nor silently kept when none is)
        (
            ("timeout: 1h, retries: 2", "timeout: 1x, retries: -1"),
            [
                ":3: scheduler.job_defaults.timeout: duration '1x' is not a",
                ":3: scheduler.job_defaults.retries: Input should be greater",
            ],
        ),
        (
            ("failure_policy: continue", "failure_policy: halt"),
            [":4: scheduler.workflow_defaults.failure_policy: 'halt': Input"],
        ),
        (
            ("timeout: 5m}", "timeout: 5 min}"),
            [":6: workflows.defaults.timeout: duration '5 min' is not"],
        ),
        (
            ("{command: [check]}", "{command: [check], when: x}"),
            [":7: workflows.hooks.pre_execute[1].when: unknown key 'when'"],
        ),
    ],
)
def test_errors_name_the_file_line_and_key(orch, tmp_path, edit, problems):
    path = write(tmp_path, GOOD.replace(*edit))
    with pytest.raises(DefinitionError) as info:
        apply(orch.db, path)
    got = [f"{where}: {msg}" for where, msg in info.value.problems]
    assert len(got) == len(problems), got
    for expected, line in zip(problems, got, strict=True):
        assert line.startswith(path) and expected in line, line
    assert orch.list_job_templates() == []  # nothing stored


def test_every_problem_of_the_file_at_once(orch, tmp_path):
    text = GOOD.replace("[a]", "[aa]").replace("job: extractor", "job: extractr")
    with pytest.raises(DefinitionError) as info:
        apply(orch.db, write(tmp_path, text))
    assert [w.split(":")[1] for w, _ in info.value.problems] == ["16", "17", "17"]


def test_yaml_syntax_errors_name_the_line(orch, tmp_path):
    with pytest.raises(ConfigError, match=r"x.yaml:3: not valid YAML"):
        apply(orch.db, write(tmp_path, "a: 1\nb: [\nc: }\n"))
    with pytest.raises(ConfigError, match="cannot read"):
        apply(orch.db, str(tmp_path / "missing.yaml"))


_LAUGHS = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{c}: &{c} [{', '.join([f'*{p}'] * 9)}]\n"
    for p, c in zip("abcdefgh", "bcdefghi", strict=True)
)


@pytest.mark.parametrize(
    "data, message",
    [
        # nine aliases of nine: 9**9 items, a hang when walked
        # (the bound lowered to 10,000 for the test: a second less)
        (_LAUGHS.encode(), r"x.yaml: line \d+: more than 10000 keys and items"),
        (b"definitions: " + b"[" * 600 + b"]" * 600, "x.yaml: nested too deeply"),
        (b"a: &a [*a]\n", "x.yaml: nested too deeply .or an alias contains itself"),
        (b"a: &a\n  b: *a\n", "x.yaml: nested too deeply"),
        (b"definitions:\n  jobs: {\xff: 1}\n", r"x.yaml: not UTF-8 text \(byte 0xff"),
    ],
)
def test_hostile_files_are_refused_by_name(orch, tmp_path, monkeypatch, data, message):
    monkeypatch.setattr(yaml_source, "MAX_NODES", 10_000)
    path = tmp_path / "x.yaml"
    path.write_bytes(data)
    with pytest.raises(ConfigError, match=message):
        apply(orch.db, str(path))
