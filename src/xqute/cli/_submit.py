"""``xqute submit`` without Typer: parse, validate, queue, print the id.

    xqute submit --cpus 2 --mem 4G --priority 5 --timeout 1h -- python x.py 10
    xqute submit --shell 'sort big.txt | uniq -c > counts.txt'

Several words are an argv (run literally); ``--shell`` runs one string as shell
code. The job runs in the current directory unless ``--cwd`` says otherwise.

This command is meant to be called thousands of times from scripts, so it has a
fast path: ``cli.main()`` hands its arguments to ``fast_submit``, which parses
them without Typer (Typer here imports pydantic: ~0.1 s) and imports only the
store. Anything it does not understand (``--help``, a malformed option) falls
back to the Typer command (``submit.py``), which shares ``do_submit`` with it.
"""

from __future__ import annotations

import os
import sys
from typing import Any

EXIT_USAGE = 2
# option -> (parameter, takes a value)
_OPTIONS = {
    "--name": ("name", True),
    "-n": ("name", True),
    "--cpus": ("cpus", True),
    "-c": ("cpus", True),
    "--mem": ("mem", True),
    "-m": ("mem", True),
    "--gpus": ("gpus", True),
    "-g": ("gpus", True),
    "--priority": ("priority", True),
    "-p": ("priority", True),
    "--timeout": ("timeout", True),
    "-t": ("timeout", True),
    "--cwd": ("cwd", True),
    "--env": ("env", True),
    "-e": ("env", True),
    "--db": ("db", True),
    "--shell": ("shell", False),
    "--json": ("json_out", False),
}
_INTS = ("cpus", "gpus", "priority")


def do_submit(
    cmd: list[str],
    *,
    name: str | None = None,
    cpus: int = 1,
    mem: str | None = None,
    gpus: int = 0,
    priority: int = 0,
    timeout: str | None = None,
    cwd: str | None = None,
    env: list[str] | None = None,
    shell: bool = False,
    db: str | None = None,
    json_out: bool = False,
) -> int:
    """Validate, queue, print the id; the exit code (2: bad input)."""
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
        )
    except ConfigError as exc:
        sys.stderr.write(f"error: {exc}\n")
        return EXIT_USAGE
    except StoreError as exc:
        sys.stderr.write(f"error: {exc}\n")
        return 1
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
    kwargs: dict[str, Any] = {"env": []}
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg == "--":
            i += 1
            break
        if not arg.startswith("-") or arg == "-":
            break  # the command starts here; the rest is its own
        opt, eq, inline = arg.partition("=")
        spec = _OPTIONS.get(opt)
        if spec is None or (eq and not spec[1]):
            return None  # --help, or something only Typer can explain
        key, takes_value = spec
        if takes_value:
            if eq:
                value = inline
            elif i + 1 < len(argv):
                i += 1
                value = argv[i]
            else:
                return None
            if key in _INTS:
                try:
                    value = int(value)
                except ValueError:
                    return None
            if key == "env":
                kwargs["env"].append(value)
            else:
                kwargs[key] = value
        else:
            kwargs[key] = True
        i += 1
    return do_submit(argv[i:], **kwargs)
