"""The queue verbs through the Typer app (in-process) and the submit fast path."""

import json
import os

import pytest
from typer.testing import CliRunner

from xqute.cli import app
from xqute.cli.submit import fast_submit
from xqute.queue import SqliteJobScheduler

runner = CliRunner()


@pytest.fixture
def db(tmp_path, monkeypatch):
    path = tmp_path / "q.db"
    monkeypatch.setenv("XQUTE_DB", str(path))
    monkeypatch.setenv("COLUMNS", "200")
    return path


def invoke(*args):
    return runner.invoke(app, list(args))


def test_submit_prints_the_id_and_stores_the_request(db, tmp_path):
    result = invoke(
        "submit", "--name", "n1", "--cpus", "2", "--mem", "512M", "--gpus", "1",
        "--priority", "5", "--timeout", "15m", "--cwd", str(tmp_path),
        "--env", "A=1", "--env", "B=x=y", "--", "python", "-c", "print(1)",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert result.stdout == "1\n"
    job = SqliteJobScheduler(db).get_job_status(1)
    assert job["command"] == ["python", "-c", "print(1)"]
    assert (job["name"], job["cpus"], job["mem_mb"], job["gpus"]) == ("n1", 2, 512, 1)
    assert (job["priority"], job["timeout_s"]) == (5, 900)
    assert job["working_dir"] == str(tmp_path)
    # like sbatch: the submitter's environment, --env over it (--export ALL)
    assert job["env"]["PATH"] == os.environ["PATH"] and job["export_env"] == "ALL"
    assert (job["env"]["A"], job["env"]["B"]) == ("1", "x=y")
    result = invoke("submit", "--export", "NONE", "-e", "A=1", "--", "true")
    job = SqliteJobScheduler(db).get_job_status(int(result.stdout))
    assert job["env"] == {"A": "1"} and job["export_env"] is None


def test_submit_options_stop_at_the_command(db):
    assert invoke("submit", "ls", "-la", "--cpus", "3").exit_code == 0
    job = SqliteJobScheduler(db).get_job_status(1)
    assert job["command"] == ["ls", "-la", "--cpus", "3"] and job["cpus"] == 1
    assert job["working_dir"] == os.getcwd()


def test_submit_shell_and_json(db):
    result = invoke("submit", "--shell", "--json", "echo $HOME | wc -c")
    assert json.loads(result.stdout) == {"id": 1}
    assert SqliteJobScheduler(db).get_job_status(1)["command"] == "echo $HOME | wc -c"
    result = invoke("submit", "--shell", "echo", "two")
    assert result.exit_code == 2 and "one string" in result.output


@pytest.mark.parametrize("value", ["90", "90s", "15m", "1h", "01:30:00"])
def test_durations_accepted(db, value):
    assert invoke("submit", "--timeout", value, "--", "true").exit_code == 0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--timeout", "soon"], "timeout 'soon' is not a duration"),
        (["--timeout", "0"], "positive"),
        (["--mem", "4X"], "memory '4X' is not a memory size"),
        (["--mem", "-1G"], "memory"),
        (["--env", "NOEQUALS"], "NAME=value"),
        (["--env", "1X=2"], "environment variable name"),
        (["--cpus", "0"], "cpus"),
        (["--cpus", "two"], "--cpus"),
        ([], "no command"),
    ],
)
def test_bad_submit_values_exit_2(db, args, message):
    cmd = [] if not args else ["--", "true"]
    result = invoke("submit", *args, *cmd)
    assert result.exit_code == 2
    assert message in " ".join(result.output.split())
    assert not db.exists() or SqliteJobScheduler(db).count_jobs()["pending"] == 0


def test_fast_path_matches_typer(db, capsys):
    argv = ["--name", "fast", "--mem=4G", "-p", "3", "--", "echo", "x"]
    assert fast_submit(argv) == 0
    assert capsys.readouterr().out == "1\n"
    job = SqliteJobScheduler(db).get_job_status(1)
    assert (job["name"], job["mem_mb"], job["priority"]) == ("fast", 4096, 3)
    assert fast_submit(["--mem", "lots", "true"]) == 2
    assert "memory 'lots'" in capsys.readouterr().err
    # what it cannot parse goes to Typer, for the usage message
    for argv in (["--help"], ["--cpus", "x", "true"], ["--bogus", "true"], ["-c"]):
        assert fast_submit(argv) is None


def test_queue_lists_with_filters_and_json(db):
    store = SqliteJobScheduler(db)
    store.submit_job("true", job_name="low")
    store.submit_job("true", job_name="high", priority=9, gpus=1)
    store.submit_job("true", job_name="other")
    store.cancel_job(3)
    result = invoke("queue")
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert "ID" in lines[0] and "STATE" in lines[0]
    assert [ln.split()[1] for ln in lines[1:]] == ["high", "low"]
    data = json.loads(invoke("queue", "--json", "--name", "l*").stdout)
    assert [j["name"] for j in data] == ["low"]
    data = json.loads(invoke("queue", "--json", "--state", "cancelled").stdout)
    assert [j["id"] for j in data] == [3]
    data = json.loads(invoke("queue", "--json", "--all").stdout)
    assert [j["id"] for j in data] == [3, 2, 1]
    result = invoke("queue", "--limit", "1")
    assert "more jobs not shown" in result.stdout
    result = invoke("queue", "--limit", "-3", "--all")
    assert result.exit_code == 2 and "--limit -3 must be" in result.output
    assert invoke("queue", "--state", "bogus").exit_code == 2


def test_status_cancel_and_unknown_ids(db):
    store = SqliteJobScheduler(db)
    store.submit_job(["sleep", "1"], job_name="s")
    result = invoke("status", "1")
    assert result.exit_code == 0 and "sleep 1" in result.stdout
    assert json.loads(invoke("status", "1", "--json").stdout)["state"] == "pending"
    result = invoke("status", "42")
    assert result.exit_code == 2 and "no job 42" in result.output
    assert invoke("status", "abc").exit_code == 2
    result = invoke("cancel", "1", "42")
    assert result.exit_code == 2 and "no job 42" in result.output
    assert store.get_job_status(1)["state"] == "pending"
    assert invoke("cancel", "1").stdout == "1: cancelled\n"
    assert invoke("cancel", "1").stdout == "1: already cancelled\n"
    assert invoke("cancel").exit_code == 2
    store.submit_job("true", job_name="batch_1")
    store.submit_job("true", job_name="batch_2")
    store.submit_job("true", job_name="keep")
    data = json.loads(invoke("cancel", "--name", "batch_*", "--json").stdout)
    assert data == {"2": "cancelled", "3": "cancelled"}
    assert invoke("cancel", "--all").stdout == "4: cancelled\n"


def test_logs_reads_only_the_jobs_own_files(db, tmp_path):
    store = SqliteJobScheduler(db)
    job = store.submit_job("true")
    result = invoke("logs", str(job))
    assert result.exit_code == 0 and "no output yet" in result.output
    job_dir = tmp_path / "q.jobs" / str(job)
    job_dir.mkdir(parents=True)
    (job_dir / "job.stdout").write_text("out\n")
    (job_dir / "job.stderr").write_text("err\n")
    store.db.write(
        lambda c: c.execute(
            "UPDATE job_queue SET state='completed', job_dir=? WHERE id=?",
            (str(job_dir), job),
        )
    )
    assert invoke("logs", str(job)).stdout == "out\n"
    assert invoke("logs", str(job), "--stderr").stdout == "err\n"
    assert invoke("logs", str(job), "--follow").stdout == "out\n"  # it has ended
    secret = tmp_path / "secret"
    secret.write_text("secret\n")
    (job_dir / "job.stdout").unlink()
    (job_dir / "job.stdout").symlink_to(secret)
    result = invoke("logs", str(job))
    assert result.exit_code == 1 and "secret" not in result.stdout
    assert invoke("logs", "99").exit_code == 2


def test_workers_and_service_status_without_a_daemon(db):
    SqliteJobScheduler(db).submit_job("true")
    result = invoke("workers")
    assert result.exit_code == 0 and "no worker pool" in result.stdout
    assert json.loads(invoke("workers", "--json").stdout) == []
    result = invoke("service", "status", "--json")
    info = json.loads(result.stdout)
    assert info["running"] is False and info["jobs"]["pending"] == 1
    assert "no queue daemon runs" in invoke("service", "stop").stdout
    result = invoke("service", "start", "--workers", "0")
    assert result.exit_code == 2
    result = invoke("service", "start", "--recovery", "maybe")
    assert result.exit_code == 2 and "maybe" in result.output
    for args, message in (
        (["--backend", "nope"], "nope"),
        (["--opt", "bogus=1"], "bogus"),
        (["--mem", "4X"], "4X"),
        (["--gpu-ids", "a,b"], "a,b"),
        (["--reserve-after", "soon"], "soon"),
    ):
        result = invoke("service", "start", *args)
        assert result.exit_code == 2, args
        assert message in result.output, args


def test_queue_fast_path_matches_typer(db, capsys):
    from xqute.cli.queue import fast_queue

    store = SqliteJobScheduler(db)
    store.submit_job("true", job_name="a")
    store.submit_job("true", job_name="b")
    store.cancel_job(2)
    assert fast_queue(["--json", "--state=cancelled"]) == 0
    assert [j["id"] for j in json.loads(capsys.readouterr().out)] == [2]
    assert fast_queue(["-a", "-l", "1", "--json"]) == 0
    assert [j["id"] for j in json.loads(capsys.readouterr().out)] == [2]
    assert fast_queue(["-s", "bogus"]) == 2
    assert "'bogus' is not allowed" in capsys.readouterr().err
    for argv in (["--help"], ["--limit", "x"], ["stray"], ["--json=1"]):
        assert fast_queue(argv) is None


def test_fast_verbs_import_neither_typer_nor_the_engine(db):
    import subprocess
    import sys

    code = (
        "import sys\n"
        "sys.argv = ['xqute', 'submit', '--', 'true']\n"
        "from xqute.cli import main\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "sys.argv = ['xqute', 'queue', '--json']\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "heavy = {'typer', 'pydantic', 'asyncio', 'xqute.engine', 'simplug',\n"
        "         'cronsim', 'zoneinfo', 'xqute.orchestration', 'yaml',\n"
        "         'starlette', 'uvicorn', 'jinja2', 'prometheus_client',\n"
        "         'xqute.web', 'xqute.monitoring'}\n"
        "print(sorted(heavy & set(sys.modules)))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.splitlines()[0] == "1"
    assert out.splitlines()[-1] == "[]"


#: the stdlib ``xqute submit`` needs: ``re`` (pip's console script imports it
#: before xqute's code runs), the sqlite3 C module (the ``sqlite3`` package
#: around it imports datetime: ~2 ms), errno (the wake-up pipes)
FAST_FLOOR = "re, _sqlite3, errno, collections.abc, __future__"
#: xqute's modules on the fast paths (bench/queue.py times ``xqute submit``
#: against a bare ``python -c pass``: docs/performance.md); a module added here
#: costs every submit ~0.1-0.3 ms
FAST_MODULES = {
    "xqute", "xqute.errors", "xqute.checks", "xqute.cli", "xqute.cli._fast",
    "xqute.cli._format", "xqute.queue", "xqute.queue.states",
    "xqute.queue.schema", "xqute.queue.active_jobs", "xqute.queue.alerts_schema",
    "xqute.queue.policy_schema", "xqute.queue.db", "xqute.queue.store",
    "xqute.queue.requests", "xqute.queue.exports", "xqute.queue.jsontext",
    "_json", "xqute.queue.submit_policy", "xqute.queue.views",
    "xqute.queue.cancels", "xqute.queue.wake", "xqute.queue.paths",
    "xqute.queue.submit_tokens", "xqute.queue.submit_warn",
}  # fmt: skip
#: json itself (a submit writes its JSON with jsontext: ~1.5 ms less)
JSON = {"json", "json.decoder", "json.scanner", "json.encoder"}


@pytest.mark.parametrize(
    ("argv", "verb_modules"),
    [
        (["submit", "--", "true"], {"xqute.cli.submit"}),
        (["queue", "--json"], {"xqute.cli.queue", *JSON}),
        # the table, printed to a pipe: no rich (its Table took ~0.2 s of 100 rows)
        (["queue"], {"xqute.cli.queue", "xqute.cli.lines", "unicodedata"}),
    ],
)
def test_a_fast_verb_imports_only_what_it_needs(db, argv, verb_modules):
    """The trimmed paths of a single ``xqute submit`` and of ``xqute queue
    --json``: beyond the stdlib floor, only the modules above. Not json (for a
    submit), pathlib (urllib.parse, ipaddress: ~2 ms), the sqlite3 package
    (datetime), threading, contextlib, importlib, typing, logging, units (its
    regexes, until a size or a duration is given), nor the arrays' or the
    resource policy's modules while no array or policy is named or defined."""
    from cli_imports import imported_by

    invoke("submit", "--", "true")  # the db exists (queue reads it)
    imported = imported_by(argv, FAST_FLOOR)
    assert imported - FAST_MODULES == verb_modules
    for module in ("pathlib", "datetime", "threading", "typing", "logging",
                   "rich", "xqute.units", "xqute.queue.array_jobs",
                   "xqute.queue.policy_store"):  # fmt: skip
        assert module not in imported


def test_queue_in_a_terminal_is_colored_and_fits_it(db):
    """In a terminal (a pty here): states in color, headers bold, and a
    reason too long for the terminal's width cut to fit."""
    import subprocess
    import sys

    store = SqliteJobScheduler(db)
    job_id = store.submit_job("true", job_name="waits")
    sql = "UPDATE job_queue SET reason = ? WHERE id = ?"
    store.db.write(lambda conn: conn.execute(sql, ("why " * 40, job_id)))
    controller, terminal = os.openpty()
    env = {**os.environ, "COLUMNS": "100", "TERM": "xterm"}
    env.pop("NO_COLOR", None)
    with os.fdopen(controller, "rb") as out:
        subprocess.run([sys.executable, "-m", "xqute", "queue"], stdout=terminal,
                       env=env, check=True)  # fmt: skip
        os.close(terminal)
        text = out.read1(65536).decode()
    lines = text.splitlines()
    assert "\x1b[1mREASON\x1b[0m" in lines[0]
    assert "\x1b[33mpending\x1b[0m" in lines[1]
    row = lines[1].replace("\x1b[33m", "").replace("\x1b[0m", "")
    # the reason cut to the terminal's 100 columns (a pipe has no width)
    assert row.endswith("…") and len(row) < 100
    assert len(invoke("queue").stdout.splitlines()[1]) > 100


@pytest.mark.parametrize("name", ["[/]", "[bold]x[/bold]", "[red]"])
def test_user_strings_are_never_rich_markup(db, name):
    store = SqliteJobScheduler(db)
    job_id = store.submit_job(["echo", "[link=x]y[/link]"], job_name=name)
    store.db.write(
        lambda conn: conn.execute(
            "UPDATE job_queue SET reason = ? WHERE id = ?", ("[/]" + name, job_id)
        )
    )
    for args in (["queue"], ["queue", "--all"], ["status", str(job_id)]):
        result = invoke(*args)
        assert result.exit_code == 0, result.output
        assert name in result.output, result.output
    assert "[link=x]y[/link]" in invoke("status", str(job_id)).output


def test_a_db_that_cannot_be_one_is_bad_input(tmp_path):
    """A --db whose folder cannot be made, or a file that is not SQLite: exit
    2 and one line naming it, never a traceback (submit and service start
    included)."""
    not_db = tmp_path / "notes.txt"
    not_db.write_text("not a database\n")
    cases = [
        (["submit", "--db", "/proc/xqute-no/q.db", "--", "true"], "cannot be created"),
        (["submit", "--db", str(not_db), "--", "true"], "is not a queue db"),
        (["queue", "--db", str(not_db)], "is not a queue db"),
        (["service", "start", "--db", str(not_db)], "is not a queue db"),
    ]
    for args, message in cases:
        result = invoke(*args)
        assert result.exit_code == 2, (args, result.output)
        assert message in result.output and "Traceback" not in result.output
