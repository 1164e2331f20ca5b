"""Numbers beyond SQLite's 64-bit integers, and strings of non-ASCII digits
("²".isdigit() is true): every entry point answers them by name, never with
an OverflowError from inside a query or a ValueError from int()."""

import pytest
from typer.testing import CliRunner

from xqute.cli import app
from xqute.errors import ConfigError, DefinitionNotFoundError, RunNotFoundError
from xqute.orchestration import Cron, Orchestrator, Task, Workflow

HUGE = 10**30
runner = CliRunner()


@pytest.fixture
def orch(tmp_path, monkeypatch):
    monkeypatch.setenv("XQUTE_DB", str(tmp_path / "q.db"))
    monkeypatch.setenv("COLUMNS", "200")
    o = Orchestrator(tmp_path / "q.db")
    o.create_workflow(Workflow(name="w", tasks=[Task("a", command=["true"])]))
    o.execute_workflow("w")
    return o


@pytest.mark.parametrize(
    "call",
    [
        lambda o: o.get_workflow_status(HUGE),
        lambda o: o.get_job_status(str(HUGE)),
        lambda o: o.execution(HUGE),
        lambda o: o.cancel_workflow(HUGE),
        lambda o: o.retry_workflow(HUGE),
        lambda o: list(o.watch(execution_id=HUGE, follow=False)),
        lambda o: o.get_workflow_status(-1),
        lambda o: o.get_workflow_status(True),
    ],
)
def test_a_run_id_no_run_can_have_is_no_run(orch, call):
    with pytest.raises(RunNotFoundError, match="no run"):
        call(orch)


def test_a_name_of_non_ascii_digits_is_a_name(orch):
    with pytest.raises(DefinitionNotFoundError, match="no job '\u00b2'"):
        orch.get_job_status("\u00b2")


def test_a_cursor_or_a_limit_past_every_row_is_no_bound(orch):
    assert [r.id for r in orch.list_runs(limit=HUGE)] == [1]
    assert list(orch.watch(since=HUGE, follow=False)) == []
    assert len(orch.store.list_jobs(state="all", limit=HUGE)) == 1


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda o: o.list_runs(limit=0), "limit 0 must be an integer >= 1"),
        (lambda o: o.watch(since="\u00b2"), "since '\u00b2' must be an event id"),
        (lambda o: o.next_fires("w", n=1001), "n=1001 must be an integer from 1"),
        (
            lambda o: Cron("0 * * * *", max_catchup=HUGE),
            f"max_catchup {HUGE} must be an integer from 1 to 10000",
        ),
    ],
)
def test_bad_bounds_are_named(orch, call, message):
    with pytest.raises(ConfigError, match=message):
        call(orch)


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (("workflow", "status", str(HUGE)), 2, f"no run {HUGE}"),
        (("workflow", "cancel", str(HUGE)), 2, f"no run {HUGE}"),
        (("workflow", "retry", str(HUGE)), 2, f"no run {HUGE}"),
        (("workflow", "logs", str(HUGE)), 2, f"no run {HUGE}"),
        (("workflow", "graph", str(HUGE)), 2, f"no run {HUGE}"),
        (("workflow", "graph", "\u00b2"), 2, "no workflow '\u00b2'"),
        (("watch", "--since", "\u00b2"), 2, "--since '\u00b2' must be an event id"),
        (("schedule", "next", "w", "-n", "1001"), 2, "-n 1001 must be from 1 to"),
        (("service", "start", "--workers", str(HUGE)), 2, f"--workers {HUGE} must"),
    ],
)
def test_the_cli_names_the_bad_number(orch, args, code, message):
    r = runner.invoke(app, list(args))
    assert r.exit_code == code, r.output
    assert message in r.output and "Traceback" not in r.output


def test_the_cli_lists_with_a_limit_past_every_row(orch):
    for args in (
        ("queue", "--state", "all", "--limit", str(2**63 - 1)),
        ("workflow", "list", "--runs", "--limit", str(HUGE)),
        ("watch", "--since", str(HUGE), "--timeout", "0.1s"),
    ):
        r = runner.invoke(app, list(args))
        assert r.exit_code == 0, (args, r.output)
