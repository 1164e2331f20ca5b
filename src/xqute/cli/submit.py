"""``xqute submit``: queue one job; print its id.

    xqute submit --cpus 2 --mem 4G --priority 5 --timeout 1h -- python x.py 10
    xqute submit --shell 'sort big.txt | uniq -c > counts.txt'

Several words are an argv (run literally); ``--shell`` runs one string as shell
code. The job runs in the current directory unless ``--cwd`` says otherwise.
Options end at the first word of the command (``xqute submit ls -la`` works);
``--`` ends them explicitly. ``xqute submit`` usually runs through the fast path
in ``_submit.py``; this Typer command gives it its ``--help`` and usage errors.
"""

from __future__ import annotations

import typer

from ._submit import do_submit

#: options stop at the command's first word, so its own options stay its own
CONTEXT_SETTINGS = {"allow_interspersed_args": False}


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
