"""The ``xqute`` command line: one module per verb group, one Typer app."""

from __future__ import annotations

import typer

from .. import __version__
from . import run as run_cmd

app = typer.Typer(
    name="xqute",
    help="Run shell jobs locally or on a cluster, with retries, timeouts and a queue.",
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
        False, "--version", callback=_version, is_eager=True, help="Print the version."
    ),
) -> None:
    """xqute: a job management system."""


app.command("run")(run_cmd.run)


def main() -> None:
    app()


__all__ = ["app", "main"]
