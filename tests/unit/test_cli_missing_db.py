"""A ``--db`` that does not exist is bad input for every verb but the ones that
create a db (issue #9, item 12): exit 2, one line naming the path, and no
empty db (nor its folder) left behind. The verbs are read from the app itself,
so a new verb is covered the day it is added."""

from __future__ import annotations

import pytest
import typer
from typer.testing import CliRunner

from xqute.cli import build_app

#: the verbs that may create the db: they put the first jobs or definitions in
CREATORS = {("submit",), ("apply",), ("service", "start")}
#: what a verb needs besides its required arguments to reach the db at all
EXTRA = {("cancel",): ["--all"], ("watch",): ["--no-follow"]}


def _db_verbs() -> list[tuple[str, ...]]:
    """Every command of the app with a --db option (a path of words)."""
    out = []

    def walk(command: object, path: tuple[str, ...]) -> None:
        subs = getattr(command, "commands", None)
        if subs is not None:
            for name, sub in subs.items():
                walk(sub, (*path, name))
        elif any(p.name == "db" for p in command.params):  # type: ignore[attr-defined]
            required = [p for p in command.params if p.required]  # type: ignore[attr-defined]
            # required options would need values of their own: none has one yet
            if path not in CREATORS:
                assert all(p.param_type_name == "argument" for p in required), path
            out.append((path, len(required)))

    walk(typer.main.get_command(build_app()), ())
    return out


VERBS = _db_verbs()
READERS = [(path, n) for path, n in VERBS if path not in CREATORS]


def test_the_app_is_read_whole():
    """(The enumeration itself: if it broke, the test below would test nothing.)"""
    names = {" ".join(path) for path, _ in READERS}
    assert {"queue", "alerts", "watch", "schedule list", "workflow status",
            "job list", "template show", "quota list", "autoscale show",
            "service status"} <= names  # fmt: skip
    assert {path for path, _ in VERBS} >= CREATORS


@pytest.mark.parametrize(
    ("path", "n_args"), READERS, ids=[" ".join(p) for p, _ in READERS]
)
def test_a_db_that_is_not_there_is_an_error_not_a_new_db(tmp_path, path, n_args):
    db = tmp_path / "typo" / "queue.db"
    args = [*path, *["1"] * n_args, *EXTRA.get(path, []), "--db", str(db)]
    result = cli(*args)
    assert result.exit_code == 2, (result.stdout, result.stderr)
    assert result.stderr.strip() == result.stderr.strip().splitlines()[0]
    assert f"no queue db at {db}" in result.stderr, result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    assert not db.parent.exists()


def test_apply_creates_the_db_and_a_dry_run_does_not(tmp_path):
    """``apply`` puts the first definitions in, as ``submit`` the first jobs."""
    spec = tmp_path / "jobs.yaml"
    spec.write_text("definitions:\n  jobs:\n    hello: {command: [echo, hi]}\n")
    db = str(tmp_path / "new" / "queue.db")
    dry = cli("apply", "-f", str(spec), "--dry-run", "--db", db)
    assert dry.exit_code == 0 and "job hello (v1): would be created" in dry.stdout
    assert not (tmp_path / "new").exists()
    done = cli("apply", "-f", str(spec), "--db", db)
    assert done.exit_code == 0, done.output
    listed = cli("job", "list", "--db", db)
    assert listed.exit_code == 0 and "hello" in listed.stdout


def cli(*args: str):  # type: ignore[no-untyped-def]
    """The command, as ``xqute.cli.main`` builds it for its verb."""
    return CliRunner().invoke(build_app(args[0]), list(args))
