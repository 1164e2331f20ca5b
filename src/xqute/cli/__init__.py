"""The ``xqute`` command line: one module per verb group, one Typer app.

A verb's module is imported only when that verb runs (``main`` builds an app
holding just that verb; ``xqute --help`` builds the whole app), because each
costs imports: Typer here pulls in pydantic (~0.1 s), ``run`` the engine and
rich's progress bars. ``xqute submit`` and ``xqute queue`` skip Typer
altogether when they can (see ``_fast.py``): scripts call them in loops.
"""

from __future__ import annotations

import sys

TYPE_CHECKING = False  # typing is not imported at run time (xqute submit)

if TYPE_CHECKING:
    from typing import Any

    import typer

# verb -> (module, function); the module may define CONTEXT_SETTINGS. A function
# named build_* builds the command when called: the fast verbs' modules import
# Typer only then.
_COMMANDS = {
    "run": ("run", "run"),
    "submit": ("submit", "build_command"),
    "queue": ("queue", "build_command"),
    "status": ("status", "status"),
    "cancel": ("cancel", "cancel"),
    "logs": ("logs", "logs"),
    "workers": ("workers", "workers"),
    "alerts": ("alerts", "alerts"),
    "apply": ("apply", "apply"),
    "watch": ("watch", "watch"),
}
# verb group -> (module, Typer app)
_GROUPS = {
    "service": ("service", "app"),
    "schedule": ("schedule", "app"),
    "job": ("job", "app"),
    "template": ("job", "templates"),
    "workflow": ("workflow", "app"),
    "resources": ("resources", "app"),
    "quota": ("resources", "quota_app"),
    "priorityclass": ("resources", "priorityclass_app"),
    "autoscale": ("resources", "autoscale_app"),
}
# verbs tried first without Typer: (module, function); None means "ask Typer"
_FAST = {"submit": ("submit", "fast_submit"), "queue": ("queue", "fast_queue")}


def build_app(only: str | None = None) -> typer.Typer:
    """The Typer app with every verb, or with only the verb ``only``."""
    from importlib import import_module

    import typer

    from .. import __version__

    app = typer.Typer(
        name="xqute",
        help="Run shell jobs locally or on a cluster, with retries, timeouts and"
        " a queue.",
        no_args_is_help=True,
        add_completion=False,
        context_settings={"help_option_names": ["-h", "--help"]},
    )

    def _version(value: bool) -> None:
        if value:
            typer.echo(f"xqute {__version__}")
            raise typer.Exit()

    @app.callback()
    def _root(
        version: bool = typer.Option(
            False,
            "--version",
            callback=_version,
            is_eager=True,
            help="Print the version.",
        ),
    ) -> None:
        """xqute: a job management system."""

    for verb, (module_name, attr) in _COMMANDS.items():
        if only in (None, verb):
            module = import_module(f".{module_name}", __name__)
            settings = getattr(module, "CONTEXT_SETTINGS", None)
            command = getattr(module, attr)
            if attr.startswith("build_"):
                command = command()
            app.command(verb, context_settings=settings)(command)
    for verb, (module_name, attr) in _GROUPS.items():
        if only in (None, verb):
            module = import_module(f".{module_name}", __name__)
            app.add_typer(getattr(module, attr), name=verb)
    return app


def main(end_now: bool = False) -> None:
    """Run the command line in ``sys.argv``. ``end_now``: a fast verb that
    answered ends the process at once (``console``)."""
    argv = sys.argv[1:]
    verb = argv[0] if argv else None
    if verb in _FAST:
        module_name, attr = _FAST[verb]
        # (``__import__``: importlib itself costs the fast path ~0.3 ms)
        module = __import__(f"{__name__}.{module_name}", fromlist=[attr])
        fast = getattr(module, attr)
        code = fast(argv[1:])
        if code is not None:
            if end_now and verb == "submit":
                _end_now(code)
            sys.exit(code)
    if verb == "run":  # after ::: come values, even "-n": not for Typer to parse
        from .run import take_sources

        sys.argv[2:] = take_sources(argv[1:])
    known = verb in _COMMANDS or verb in _GROUPS
    build_app(verb if known else None)()


def console() -> None:
    """The ``xqute`` command (and ``python -m xqute``): ``main``, where an
    answered ``xqute submit`` ends without the interpreter's teardown."""
    main(end_now=True)


def _end_now(code: int) -> None:
    """Flush what was printed and end the process without Python's teardown
    (freeing every module and object: ~2.5 ms of CPU, an eighth of a served
    ``xqute submit``). Only where nothing is left to run: the submit path
    leaves no thread, open db connection, temporary file or atexit handler.
    A flush that fails (a closed pipe) ends the usual way instead."""
    import os

    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except OSError:
        sys.exit(code)
    os._exit(code)


def __getattr__(name: str) -> Any:
    if name == "app":  # the whole app, built on first use (tests, docs tools)
        app = globals()["app"] = build_app()
        return app
    raise AttributeError(f"module 'xqute.cli' has no attribute {name!r}")


__all__ = ["app", "build_app", "console", "main"]
