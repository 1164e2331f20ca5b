"""``xqute run`` through the Typer app (in-process; the installed command:
tests/integration/local/test_cli_run_parallel.py)."""

import json

import pytest
from typer.testing import CliRunner

from xqute.cli import app
from xqute.cli.common import parse_opts

runner = CliRunner()


@pytest.fixture
def jobs_file(tmp_path):
    path = tmp_path / "jobs.txt"
    path.write_text("echo one\n# a comment\n\necho two >&2\nexit 3\n")
    return path


def test_run_prints_summary_and_fails_when_a_job_fails(jobs_file, workdir):
    result = runner.invoke(
        app,
        ["run", str(jobs_file), "-w", str(workdir), "-j", "2"],
        env={"COLUMNS": "200"},
    )
    assert result.exit_code == 1, result.output
    assert "failed jobs" in result.output
    assert str(workdir / "2" / "job.stderr") in result.output
    assert (workdir / "0" / "job.stdout").read_text() == "one\n"
    assert (workdir / "1" / "job.stderr").read_text() == "two\n"


def test_run_json_summary(jobs_file, workdir):
    result = runner.invoke(app, ["run", str(jobs_file), "-w", str(workdir), "--json"])
    data = json.loads(result.stdout)
    assert result.exit_code == 1
    assert (data["total"], data["succeeded"], data["failed"]) == (3, 2, 1)
    [failed] = data["failed_jobs"]
    assert failed["index"] == 2 and failed["rc"] == 3 and failed["cmd"] == "exit 3"
    assert failed["stderr"] == str(workdir / "2" / "job.stderr")


def test_run_from_stdin_all_ok(workdir):
    result = runner.invoke(
        app, ["run", "-w", str(workdir), "--json"], input="true\ntrue\n"
    )
    assert result.exit_code == 0 and json.loads(result.stdout)["succeeded"] == 2


def test_retries_and_timeout(tmp_path, workdir):
    flag = tmp_path / "flag"
    jobs = tmp_path / "jobs.txt"
    jobs.write_text(f"[ -e {flag} ] || {{ touch {flag}; exit 1; }}\nsleep 30.41\n")
    result = runner.invoke(
        app,
        [
            "run",
            str(jobs),
            "-w",
            str(workdir),
            "--json",
            "--retries",
            "1",
            "--timeout",
            "0.3s",
        ],
    )
    data = json.loads(result.stdout)
    assert data["retried"] >= 1 and data["succeeded"] == 1
    [failed] = data["failed_jobs"]
    assert failed["outcome"] == "timeout" and failed["trials"] == 2


def test_halt_on_error(tmp_path, workdir):
    jobs = tmp_path / "jobs.txt"
    jobs.write_text("sleep 0.2; exit 1\nsleep 30.42\n" + "true\n" * 5)
    result = runner.invoke(
        app,
        ["run", str(jobs), "-w", str(workdir), "--json", "-j", "2", "--halt-on-error"],
    )
    data = json.loads(result.stdout)
    assert result.exit_code == 1 and data["not_run"] >= 4
    assert {j["outcome"] for j in data["failed_jobs"]} == {"failed", "killed"}


def test_scheduler_opts_reach_the_backend(tmp_path, workdir):
    jobs = tmp_path / "jobs.txt"
    jobs.write_text("sleep 30.43\n")
    result = runner.invoke(
        app,
        [
            "run",
            str(jobs),
            "-w",
            str(workdir),
            "--json",
            "--opt",
            "timeout=0.3",
            "--opt",
            "kill_grace_s=1",
        ],
    )
    assert json.loads(result.stdout)["failed_jobs"][0]["outcome"] == "timeout"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["run", "/no/such/file"], "file '/no/such/file' does not exist"),
        (["run", "-", "-j", "0"], "forks 0 must be an integer >= 1"),
        (["run", "-", "--timeout", "soon"], "--timeout 'soon' is not a duration"),
        (
            ["run", "-", "-s", "nosuch"],
            "scheduler 'nosuch' is not allowed; choose one of",
        ),
        (["run", "-", "--opt", "novalue"], "--opt 'novalue' must look like key=value"),
        (["run", "-", "--opt", "bogus=1"], "option 'bogus' is not allowed"),
        (["run", "-", "--retries", "-1"], "--retries -1 must be >= 0"),
    ],
)
def test_bad_input_exits_2_with_a_clear_message(args, message, workdir):
    result = runner.invoke(app, [*args, "-w", str(workdir)], input="true\n")
    assert result.exit_code == 2
    assert message in " ".join(result.output.split()), result.output


def test_parse_opts():
    assert parse_opts(
        ["timeout=30", "q=1-day", "l=a=1", "l=b=2", "cwd=true", "x=[1, 2]"]
    ) == {"timeout": 30, "q": "1-day", "l": ["a=1", "b=2"], "cwd": True, "x": [1, 2]}
