"""``xqute submit``: queue one job; print its id.

    xqute submit --cpus 2 --mem 4G --priority 5 --timeout 1h -- python x.py 10
    xqute submit --shell 'sort big.txt | uniq -c > counts.txt'

Several words are an argv (run literally); ``--shell`` runs one string as shell
code. The job runs in the current directory unless ``--cwd`` says otherwise.
Options end at the first word of the command (``xqute submit ls -la`` works);
``--`` ends them explicitly.

This command is meant to be called thousands of times from scripts, so it has a
fast path: ``cli.main()`` hands its arguments to ``fast_submit``, which parses
them without Typer (Typer here imports pydantic: ~0.1 s) and imports only the
store. Anything it does not understand (``--help``, a malformed option) falls
back to the Typer command (``build_command``, which imports Typer only when it
is called), which shares ``do_submit`` with it.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable

from ._fast import EXIT_FAILED, EXIT_USAGE, Spec, parse_options

TYPE_CHECKING = False  # typing is not imported at run time (xqute submit)
if TYPE_CHECKING:
    from ..queue.submit_wire import Answer

SPEC: Spec = {
    "--name": ("name", "str"),
    "--namespace": ("namespace", "str"),
    "-n": ("namespace", "str"),
    "--priority-class": ("priority_class", "str"),
    "--queue": ("queue", "str"),
    "-q": ("queue", "str"),
    "--resource-class": ("resource_class", "str"),
    "--storage": ("storage", "str"),
    "--cpus": ("cpus", "int"),
    "-c": ("cpus", "int"),
    "--mem": ("mem", "str"),
    "-m": ("mem", "str"),
    "--gpus": ("gpus", "int"),
    "-g": ("gpus", "int"),
    "--priority": ("priority", "int"),
    "-p": ("priority", "int"),
    "--timeout": ("timeout", "str"),
    "-t": ("timeout", "str"),
    "--cwd": ("cwd", "str"),
    "--env": ("env", "list"),
    "-e": ("env", "list"),
    "--db": ("db", "str"),
    "--shell": ("shell", "flag"),
    "--json": ("json_out", "flag"),
    "--export": ("export", "str"),
    "--file": ("file", "str"),
    "-f": ("file", "str"),
    "--array": ("array", "str"),
    "-a": ("array", "str"),
}


def do_submit(
    cmd: list[str],
    *,
    name: str | None = None,
    cpus: int | None = None,
    mem: str | None = None,
    gpus: int | None = None,
    priority: int | None = None,
    timeout: str | None = None,
    cwd: str | None = None,
    env: list[str] | None = None,
    shell: bool = False,
    db: str | None = None,
    json_out: bool = False,
    export: str | None = None,
    file: str | None = None,
    array: str | None = None,
    **policy: str | None,
) -> int:
    """Validate, queue, print the id(s); the exit code (2: bad input).
    ``policy``: namespace, priority_class, queue, resource_class, storage.

    A single job or an array goes to the daemon's socket when a daemon serves
    the db (``queue/submit_wire.py``: no SQLite in this process); else, and
    for ``--file``, it is written to the db here."""
    from ..errors import ConfigError, StoreError

    token = store = None
    try:
        _check_what(cmd, shell, file, array)
        if cwd is not None and not os.path.isdir(cwd):
            raise ConfigError(f"--cwd {cwd!r} is not a folder (it must exist)")
        # like sbatch: this shell's environment (and cwd), captured now
        environment = (parse_env(env or []), export or "ALL")
        job = {"name": name, "cpus": cpus, "mem": mem, "gpus": gpus,
               "priority": priority, "timeout": timeout, **policy}  # fmt: skip
        workdir = os.path.abspath(cwd) if cwd is not None else os.getcwd()
        if file is None:
            served = _through_daemon(db, cmd, shell, array, workdir, environment, job)
            if isinstance(served, int):  # refused by it: an exit code
                return served
            if served is not None and not isinstance(served, str):  # queued
                _print_ids(served.ids, json_out, array is None)
                if served.warning:
                    sys.stderr.write(f"warning: {served.warning}\n")
                return 0
            token = served  # sent, unanswered: the db, with the same token
        from ..queue.store import SqliteJobScheduler

        store = SqliteJobScheduler(db)
        common = {
            "working_dir": workdir,
            "cpus": cpus,
            "memory": mem,
            "gpus": gpus,
            "priority": priority,
            "timeout": timeout,
            **{k: v for k, v in policy.items() if v is not None},
        }
        if file is not None:
            ids = store.submit_jobs(_file_jobs(file, name, common, environment))
        else:
            command = cmd[0] if shell else cmd
            shared = {**common, "job_name": name, "env": environment[0],
                      "export_env": environment[1]}  # fmt: skip
            if array is not None:
                ids = store.submit_array(command, array, token=token, **shared)
            else:
                ids = store.submit_jobs([{"command": command, **shared}], token=token)
        _print_ids(ids, json_out, file is None and array is None)
        from ..queue.submit_warn import waits_warning

        warning = waits_warning(store, cpus, mem, gpus, len(ids))
        if warning:
            sys.stderr.write(f"warning: {warning}\n")
    except ConfigError as exc:
        sys.stderr.write(f"error: {exc}\n")
        return EXIT_USAGE
    except StoreError as exc:
        sys.stderr.write(f"error: {exc}\n")
        return EXIT_FAILED
    finally:
        if store is not None:  # (the console script may end without teardown)
            store.close()
    return 0


def _print_ids(ids: list[int], json_out: bool, single: bool) -> None:
    text = "".join(f"{i}\n" for i in ids)
    if json_out:
        text = f'{{"id": {ids[0]}}}\n' if single else f'{{"ids": {ids}}}\n'
    try:
        sys.stdout.write(text)
        sys.stdout.flush()
    except BrokenPipeError:  # the reader left (| head -0): the jobs are queued
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 (nothing more is said)


def _through_daemon(
    db: str | None,
    cmd: list[str],
    shell: bool,
    array: str | None,
    workdir: str,
    environment: tuple[dict[str, str], str],
    job: dict,
) -> Answer | int | str | None:
    """Submit through the daemon's socket: its answer (the ids it queued, a
    warning), an exit code (it refused: said here), the request's token (sent
    but not answered: submit to the db with it), or None (no daemon of this
    user serves this db)."""
    from ..queue.paths import db_file, socket_path

    db_path = db_file(db)
    path = socket_path(db_path)
    if not os.path.exists(path):  # no daemon (the common case of a script's
        return None  # first submit): no socket module to import
    from ..queue.exports import env_json
    from ..queue.submit_wire import Answer, new_token, request_bytes, send

    token = new_token()
    env_text = env_json(*environment)  # this process's, as the db stores it
    payload = request_bytes(
        token, db_path, cmd[0] if shell else cmd, workdir, env_text, array, job
    )
    text = send(path, payload)
    if text is None:
        return None
    answer = Answer.parse(text)
    if answer is None:  # (send gives LOST, "", for that)
        return token
    if answer.error is not None:
        sys.stderr.write(f"error: {answer.error}\n")
        return answer.exit_code
    return answer


def _check_what(
    cmd: list[str], shell: bool, file: str | None, array: str | None
) -> None:
    from ..errors import ConfigError

    if file is not None:
        if cmd or array is not None:
            raise ConfigError("--file gives the commands: no command, no --array")
        return
    if not cmd:
        raise ConfigError("no command given: xqute submit [OPTIONS] -- CMD ARGS...")
    if shell and len(cmd) != 1:
        raise ConfigError(
            f"--shell takes one string of shell code, got {len(cmd)} words;"
            " quote it: xqute submit --shell 'a | b'"
        )


def _file_jobs(
    file: str, name: str | None, common: dict, environment: tuple
) -> list[dict]:
    """The jobs of ``--file``: each non-empty line that is not a ``#`` comment
    is shell code; they share one environment, serialised once."""
    from ..errors import ConfigError
    from ..queue.exports import PreparedEnv, env_json

    try:
        data = sys.stdin.buffer.read() if file == "-" else open(file, "rb").read()  # noqa: SIM115
        text = data.decode()
    except OSError as exc:
        raise ConfigError(f"--file {file!r} cannot be read: {exc.strerror}") from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(f"--file {file!r} is not UTF-8 text: {exc.reason}") from None
    lines = [
        ln for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")
    ]
    if not lines:
        raise ConfigError(f"--file {file!r} holds no command")
    shared = PreparedEnv(env_json(*environment) or "{}")
    return [
        {"command": line, "job_name": name, "env": shared, **common} for line in lines
    ]


def parse_env(items: list[str]) -> dict[str, str]:
    """``K=V`` items (an empty value is allowed, a missing ``=`` is not)."""
    from ..errors import ConfigError

    env = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"--env {item!r} must look like NAME=value")
        env[key] = value
    return env


def fast_submit(argv: list[str]) -> int | None:
    """Parse and run ``xqute submit`` without Typer; None: let Typer handle it."""
    parsed = parse_options(argv, SPEC)
    if parsed is None:
        return None
    kwargs, cmd = parsed
    return do_submit(cmd, **kwargs)


#: options stop at the command's first word, so its own options stay its own
CONTEXT_SETTINGS = {"allow_interspersed_args": False}


def build_command() -> Callable[..., None]:
    """The Typer command (its ``--help`` and usage errors); imports Typer."""
    import typer

    def submit(
        cmd: list[str] = typer.Argument(
            None, metavar="CMD [ARGS]...", help="The command: an argv, or --shell code."
        ),
        name: str = typer.Option(None, "--name", help="A name for the job."),
        cpus: int = typer.Option(None, "--cpus", "-c", help="Cpus it needs (1)."),
        mem: str = typer.Option(None, "--mem", "-m", help="Memory it needs: 512M, 4G."),
        gpus: int = typer.Option(None, "--gpus", "-g", help="GPUs it needs (0)."),
        priority: int = typer.Option(
            None,
            "--priority",
            "-p",
            help="Higher runs first (ties: submission order); default: its priority"
            " class's value, else 0.",
        ),
        namespace: str = typer.Option(
            None,
            "--namespace",
            "-n",
            help="Its namespace: whose quota it counts against (default: default)."
            " -n is not --name.",
        ),
        priority_class: str = typer.Option(
            None, "--priority-class", help="A priority class: its priority, preemption."
        ),
        queue: str = typer.Option(
            None, "--queue", "-q", help="A named queue (its priority and class)."
        ),
        resource_class: str = typer.Option(
            None, "--resource-class", help="A named request bundle (cpus, memory ...)."
        ),
        storage: str = typer.Option(None, "--storage", help="Disk it declares: 10G."),
        timeout: str = typer.Option(
            None, "--timeout", "-t", help="Time limit: 90, 90s, 15m, 1h."
        ),
        cwd: str = typer.Option(None, "--cwd", help="Working dir (default: this one)."),
        env: list[str] = typer.Option(
            [], "--env", "-e", help="An environment variable NAME=value (repeatable)."
        ),
        shell: bool = typer.Option(
            False, "--shell", help="Run CMD (one string) as shell code."
        ),
        db: str = typer.Option(
            None, "--db", envvar="XQUTE_DB", help="The queue db (default: per-user)."
        ),
        json_out: bool = typer.Option(False, "--json", help='Print {"id": N}.'),
        export: str = typer.Option(
            None,
            "--export",
            help="The environment it gets (like sbatch): ALL (default: this"
            " shell's), NONE (the pool's), or NAME[,NAME=value...] over the pool's.",
        ),
        file: str = typer.Option(
            None,
            "--file",
            "-f",
            help="Queue each line of FILE ('-': stdin) as a"
            " shell command, in one transaction.",
        ),
        array: str = typer.Option(
            None,
            "--array",
            "-a",
            help="One job per index: 1-1000, 1,3,5-7,"
            " 0-99:10; %N: at most N at once. $XQUTE_ARRAY_INDEX holds it.",
        ),
    ) -> None:
        """Queue a job; print its id."""
        code = do_submit(
            list(cmd or []),
            name=name,
            cpus=cpus,
            mem=mem,
            gpus=gpus,
            priority=priority,
            timeout=timeout,
            cwd=cwd,
            env=env,
            shell=shell,
            db=db,
            json_out=json_out,
            export=export,
            file=file,
            array=array,
            namespace=namespace,
            priority_class=priority_class,
            queue=queue,
            resource_class=resource_class,
            storage=storage,
        )
        if code:
            raise typer.Exit(code)

    return submit
