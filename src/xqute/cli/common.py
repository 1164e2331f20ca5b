"""What every CLI verb shares: error reporting, logging, option parsing."""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterable
from typing import Any, NoReturn

import typer
from rich.console import Console
from rich.logging import RichHandler

from ..errors import ConfigError
from ._fast import EXIT_FAILED, EXIT_USAGE
from ._format import table_console

__all__ = [
    "DB_OPTION",
    "EXIT_FAILED",
    "EXIT_USAGE",
    "JSON_OPTION",
    "fail",
    "fail_usage",
    "parse_opts",
    "print_error",
    "print_json",
    "setup_logging",
    "stderr",
    "stdout",
    "table_console",
]

#: the options every queue verb takes
DB_OPTION = typer.Option(
    None, "--db", envvar="XQUTE_DB", help="The queue db (default: per-user)."
)
JSON_OPTION = typer.Option(False, "--json", help="Print JSON instead of a table.")

stdout = Console(highlight=False, soft_wrap=True)
stderr = Console(stderr=True, highlight=False)


def print_error(message: object) -> None:
    """``error: MESSAGE`` on stderr, on one line (never wrapped), the message
    as text: a value in it that looks like rich markup is shown as it is."""
    from rich.text import Text

    stderr.print(
        Text.assemble(("error: ", "bold red"), str(message)),
        soft_wrap=True,
        highlight=False,
    )


def fail_usage(message: str) -> NoReturn:
    """Report bad input the way a user can act on, and exit 2."""
    print_error(message)
    raise typer.Exit(EXIT_USAGE)


def fail(exc: Exception) -> NoReturn:
    """Report an error; exit 2 for bad input (a bad value, an unknown job id),
    1 for anything else (the db or the daemon could not be used)."""
    print_error(exc)
    raise typer.Exit(EXIT_USAGE if isinstance(exc, ConfigError | LookupError) else 1)


def setup_logging(verbose: int) -> None:
    level = logging.WARNING - 10 * min(verbose, 2)
    logger = logging.getLogger("xqute")
    logger.setLevel(level)
    if not any(isinstance(h, RichHandler) for h in logger.handlers):
        handler = RichHandler(console=stderr, show_path=False, rich_tracebacks=False)
        handler.setFormatter(logging.Formatter("%(message)s"))
        logger.addHandler(handler)


def _coerce(text: str) -> Any:
    """``30`` -> 30, ``1.5`` -> 1.5, ``true``/``false`` -> bool, JSON lists/dicts."""
    lowered = text.lower()
    if lowered in ("true", "yes"):
        return True
    if lowered in ("false", "no"):
        return False
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    if text and text[0] in "[{":
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            raise ConfigError(
                f"option value {text!r} is not valid JSON: {exc}"
            ) from exc
    return text


def parse_opts(items: Iterable[str]) -> dict[str, Any]:
    """``--opt key=value`` items; a key given twice collects a list."""
    opts: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ConfigError(f"--opt {item!r} must look like key=value")
        parsed = _coerce(value)
        if key in opts:
            previous = opts[key]
            opts[key] = (
                [*previous, parsed]
                if isinstance(previous, list)
                else [previous, parsed]
            )
        else:
            opts[key] = parsed
    return opts


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")
