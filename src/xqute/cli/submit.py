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

from ._fast import Spec, parse_options
from ._format import EXIT_FAILED, EXIT_USAGE

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
    **policy: str | None,
) -> int:
    """Validate, queue, print the id; the exit code (2: bad input). ``policy``:
    namespace, priority_class, queue, resource_class, storage (None: unset)."""
    from ..errors import ConfigError, StoreError
    from ..queue.store import SqliteJobScheduler

    try:
        if not cmd:
            raise ConfigError("no command given: xqute submit [OPTIONS] -- CMD ARGS...")
        if shell and len(cmd) != 1:
            raise ConfigError(
                f"--shell takes one string of shell code, got {len(cmd)} words;"
                " quote it: xqute submit --shell 'a | b'"
            )
        job_id = SqliteJobScheduler(db).submit_job(
            cmd[0] if shell else cmd,
            working_dir=cwd if cwd is not None else os.getcwd(),
            job_name=name,
            cpus=cpus,
            memory=mem,
            gpus=gpus,
            priority=priority,
            timeout=timeout,
            env=parse_env(env or []),
            **{k: v for k, v in policy.items() if v is not None},
        )
    except ConfigError as exc:
        sys.stderr.write(f"error: {exc}\n")
        return EXIT_USAGE
    except StoreError as exc:
        sys.stderr.write(f"error: {exc}\n")
        return EXIT_FAILED
    sys.stdout.write(f'{{"id": {job_id}}}\n' if json_out else f"{job_id}\n")
    return 0


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
            None, "--namespace", "-n", help="Whose quota it counts against (default)."
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
            namespace=namespace,
            priority_class=priority_class,
            queue=queue,
            resource_class=resource_class,
            storage=storage,
        )
        if code:
            raise typer.Exit(code)

    return submit
