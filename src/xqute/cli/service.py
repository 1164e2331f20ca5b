"""``xqute service start | stop | status``: the queue daemon of a db.

xqute service start --workers 4              # detached; returns when ready
xqute service start --foreground             # in this terminal (Ctrl-C stops)
xqute service start --gpu-ids 0,1 --mem 32G  # capacity to hand out
xqute service stop                           # no new jobs; wait for running ones
xqute service stop --now                     # kill running jobs (-> cancelled)
xqute service status [--json]
xqute service start --http 127.0.0.1:8765    # + the HTTP API and dashboard
xqute service start --config xqute.yaml      # its monitoring: block (alerts ...)
"""

from __future__ import annotations

import time

import typer

from ..checks import positive_int
from ..errors import ConfigError, XquteError
from . import _format as fmt
from ._format import existing_store
from .common import (
    DB_OPTION,
    JSON_OPTION,
    fail,
    parse_opts,
    print_json,
    setup_logging,
    stderr,
    stdout,
)

EXIT_NOT_RUNNING = 3  # ``service status``, as LSB init scripts say it

app = typer.Typer(
    name="service",
    help="Start, stop or look at the queue daemon.",
    no_args_is_help=True,
    add_completion=False,
)


@app.command()
def start(
    workers: int = typer.Option(4, "--workers", "-w", help="Jobs run at once."),
    foreground: bool = typer.Option(
        False, "--foreground", help="Run here instead of as a detached daemon."
    ),
    cpus: int = typer.Option(None, "--cpus", help="Cpus to hand out (default: all)."),
    mem: str = typer.Option(None, "--mem", help="Memory to hand out (default: 90%)."),
    gpu_ids: str = typer.Option(
        None,
        "--gpu-ids",
        help="GPU indexes to hand out, e.g. 0,1; 'none' for no GPU (default:"
        " detected).",
    ),
    pin_cpus: bool = typer.Option(
        False, "--pin-cpus", help="Pin each job to cpus of its own (Linux)."
    ),
    backend: str = typer.Option(
        "local", "--backend", "-b", help="Where jobs run: local, slurm, ..."
    ),
    opt: list[str] = typer.Option(
        [], "--opt", "-o", help="A backend option key=value (repeatable)."
    ),
    reserve_after: str = typer.Option(
        "30s", "--reserve-after", help="A job that does not fit reserves after this."
    ),
    recovery: str = typer.Option(
        "requeue", "--recovery", help="Jobs lost with a dead daemon: requeue or fail."
    ),
    http: str = typer.Option(
        None,
        "--http",
        help="Serve the HTTP API, /metrics and the dashboard at ADDRESS:PORT"
        " (127.0.0.1:8765; a bare port listens on loopback).",
    ),
    config: str = typer.Option(
        None,
        "--config",
        "-c",
        help="An xqute.yaml: its monitoring block (http, alerts, notifiers).",
    ),
    db: str = DB_OPTION,
) -> None:
    """Start the daemon (one per db)."""
    from ..monitoring.daemon import read_config_file
    from ..queue.service import SchedulerService
    from ..units import parse_duration_s

    try:
        positive_int("--workers", workers)
        service = SchedulerService(
            db,
            workers,
            http=http,
            monitoring=read_config_file(config) if config else None,
            cpus=cpus,
            memory=mem,
            gpu_ids=gpu_ids,
            pin_cpus=pin_cpus,
            backend=backend,
            backend_opts=parse_opts(opt),
            reserve_after_s=parse_duration_s(reserve_after, "--reserve-after"),
            recovery_policy=recovery,
        )
        if foreground:
            setup_logging(1)  # the daemon says where it serves, and what it does
            service.start(foreground=True)
            return
        info = service.start()  # bad options fail here, not in the daemon
    except XquteError as exc:
        fail(exc)
    stdout.print(
        f"queue daemon started: pid {info['pid']}, db {info['db']}, log {info['log']}",
        markup=False,
    )
    if info.get("http"):
        stdout.print(f"dashboard and API: {info['http']['url']}")


@app.command()
def stop(
    now: bool = typer.Option(
        False, "--now", help="Kill the jobs in flight (recorded cancelled)."
    ),
    no_wait: bool = typer.Option(
        False, "--no-wait", help="Return at once; the daemon stops by itself."
    ),
    db: str = DB_OPTION,
) -> None:
    """Stop the daemon: no new jobs; wait for the running ones (--now: kill them)."""
    from ..queue.service import SchedulerService

    try:
        existing_store(db)
        service = SchedulerService(db)
        pid = service.status()["pid"]
        if pid is None:
            stdout.print(f"no queue daemon runs on {service.db_path}", markup=False)
            return
        if not no_wait and not now:
            stderr.print(
                f"stopping the daemon (pid {pid}): waiting for its jobs in flight"
                " (Ctrl-C stops waiting; --now kills them)"
            )
        started = time.monotonic()
        service.stop(now=now, wait=not no_wait)
    except XquteError as exc:
        fail(exc)
    except KeyboardInterrupt:
        stderr.print("stopped waiting; the daemon goes on draining")
        raise typer.Exit(130) from None
    if no_wait:
        stdout.print(f"asked the daemon (pid {pid}) to stop")
    else:
        took = time.monotonic() - started
        stdout.print(f"queue daemon (pid {pid}) stopped after {took:.1f}s")


@app.command()
def status(db: str = DB_OPTION, json_out: bool = JSON_OPTION) -> None:
    """Whether the daemon runs, its pool and the job counts."""
    from ..queue.service import SchedulerService

    try:
        existing_store(db)  # a mistyped --db is not a stopped daemon
        info = SchedulerService(db).status()
    except XquteError as exc:
        fail(exc)
    if json_out:
        print_json(info)
    else:
        _print_status(info)
    if not info["running"]:  # LSB: 3, "program is not running"
        raise typer.Exit(EXIT_NOT_RUNNING)


def _print_status(info: dict) -> None:
    if info["running"]:
        stdout.print(
            f"[green]running[/]: pid {info['pid']} since {fmt.when(info['started_at'])}"
        )
    else:
        stdout.print("[yellow]not running[/]")
    stdout.print(f"db:  {info['db']}\nlog: {info['log']}", markup=False)
    if info.get("http"):
        _print_http(info["http"])
    for w in info["workers"]:
        stdout.print(
            f"pool {w['id']}: {w['state']}, {w['running_jobs']}/{w['max_workers']}"
            f" jobs running, heartbeat {time.time() - w['heartbeat_at']:.0f}s ago"
        )
    if info["jobs"]:
        counts = ", ".join(f"{k} {v}" for k, v in info["jobs"].items() if v)
        stdout.print(f"jobs: {counts or 'none'}")


def _print_http(http: dict) -> None:
    """The URL, and the token actions need (its file is the user's own)."""
    from pathlib import Path

    from ..web.auth import read_token

    stdout.print(f"http: {http['url']}")
    try:
        token = read_token(Path(http["token_file"]))
    except ConfigError as exc:
        token = f"unreadable: {exc}"
    stdout.print(f"token: {token} (in {http['token_file']})")
