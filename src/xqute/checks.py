"""The checks every entry point applies to what users give: commands,
environment variables, counts and durations.

One place, so that ``Xqute.feed``, ``Xqute(...)``, a backend's options, the
queue's ``submit_job`` and the CLI accept and refuse the same values with the
same words. Each raises ``ConfigError`` naming the bad value and what is
allowed, and returns the value normalized. No I/O, nothing heavy imported:
``xqute submit`` uses them on its fast path.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence

from .errors import ConfigError

TYPE_CHECKING = False  # typing is not imported at run time (xqute submit)
if TYPE_CHECKING:
    from typing import Any

__all__ = [
    "MAX_ID",
    "command",
    "env_vars",
    "integer",
    "path",
    "positive_int",
    "row_id",
    "seconds",
]

MAX_ID = (1 << 63) - 1  # SQLite's largest integer: the largest row id
_INF = float("inf")  # (math is not imported: xqute submit's imports are counted)


def command(cmd: Any, *, allow_empty: bool = False) -> str | tuple[str, ...]:
    """A list is an argv (passed literally: its items as strings, paths
    included); a string is a shell command line. ``allow_empty``: an empty
    command is ``()``, a job that runs nothing (xqute 2.x's clients create jobs
    first and give them their command later)."""
    if allow_empty and (cmd == "" or cmd == () or cmd == []):
        return ()
    if isinstance(cmd, str):
        if not cmd.strip():
            raise ConfigError(
                "command '' is empty; give a shell command or an argv list"
            )
        return cmd
    # (a list or tuple first: the ABC check costs more than the rest of a feed)
    if type(cmd) in (list, tuple) or (
        isinstance(cmd, Sequence) and not isinstance(cmd, bytes | bytearray)
    ):
        argv = tuple(
            a
            if type(a) is str
            else os.fspath(a)
            if isinstance(a, os.PathLike)
            else str(a)
            for a in cmd
        )
        if not argv or not argv[0]:
            raise ConfigError(
                f"command {list(cmd)!r} is empty; the first item is the program"
            )
        if "\x00" in "".join(argv):
            raise ConfigError(f"command {list(argv)!r} contains a NUL byte")
        return argv
    raise ConfigError(
        f"command {cmd!r} is a {type(cmd).__name__}; "
        "give a str (a shell command line) or a list of arguments"
    )


def env_vars(envs: Any, what: str = "envs") -> dict[str, str] | None:
    """Environment variables as ``{NAME: str(value)}`` (None for none); names
    are ASCII identifiers."""
    if not envs:
        return None
    if not isinstance(envs, Mapping):
        raise ConfigError(f"{what} {envs!r} must be a dict of NAME: value")
    out = {}
    for key, value in envs.items():
        if not isinstance(key, str) or not key.isidentifier() or not key.isascii():
            raise ConfigError(
                f"environment variable name {key!r} is invalid; "
                "use letters, digits and underscores, not starting with a digit"
            )
        out[key] = str(value)
    return out


def integer(name: str, value: Any) -> int:
    """An integer (not a bool), of any sign."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"{name} {value!r} must be an integer")
    return value


def positive_int(
    name: str, value: Any, minimum: int = 1, maximum: int | None = MAX_ID
) -> int:
    """An integer (not a bool) from ``minimum`` to ``maximum`` (by default
    SQLite's largest: what is bigger would fail deep inside a query; None: no
    bound, for a caller that clamps)."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigError(f"{name} {value!r} must be an integer >= {minimum}")
    if maximum is not None and value > maximum:
        raise ConfigError(
            f"{name} {value!r} must be an integer from {minimum} to {maximum}"
        )
    return value


def is_row_id(value: Any) -> bool:
    """Whether ``value`` could be a row's id (an int from 1 to ``MAX_ID``):
    what is not is no row's, and never reaches a query."""
    if isinstance(value, bool) or not isinstance(value, int):
        return False
    return 0 < value <= MAX_ID


def digits(text: str) -> bool:
    """ASCII digits only (``"\u00b2".isdigit()`` is true but ``int`` refuses it)."""
    return text.isascii() and text.isdigit()


def row_id(what: str, value: Any) -> int:
    """A job's or a run's id: an integer from 1 to ``MAX_ID``, or its ASCII
    digits (from a URL, the command line, a file; ``"\u00b2".isdigit()`` is
    true but ``int`` refuses it)."""
    number = value
    if isinstance(value, str):
        text = value.strip()
        number = int(text) if digits(text) else None
    if isinstance(number, bool) or not isinstance(number, int):
        number = None
    if number is None or not 1 <= number <= MAX_ID:
        raise ConfigError(f"{what} {value!r} must be a positive integer")
    return number


def as_float(value: float | int) -> float:
    """``float(value)``, inf for an int past a float's range (no
    OverflowError: the callers refuse what is not finite by name)."""
    try:
        return float(value)
    except OverflowError:
        return _INF


def seconds(name: str, value: Any, *, zero_ok: bool = False) -> float:
    """A positive number of seconds (``zero_ok``: or 0), as a float."""
    number = -1.0
    if not isinstance(value, bool) and isinstance(value, int | float):
        number = as_float(value)
    # (nan and inf are no time: a poll every nan seconds never waits)
    if not 0 <= number < _INF or (number == 0 and not zero_ok):
        what = "a number of seconds >= 0" if zero_ok else "a positive number of seconds"
        raise ConfigError(f"{name} {value!r} must be {what} (finite)")
    return number


def path(name: str, value: Any) -> Any:
    """A folder or file as users give it: a str or a path object (a cloud
    path included), not empty and without NUL; returned as given."""
    text = value if isinstance(value, str) else None
    if text is None and isinstance(value, os.PathLike):
        text = str(value)
    if text is None or not text.strip() or "\x00" in text:
        raise ConfigError(
            f"{name} {value!r} must be a path (a non-empty str or path object "
            "without NUL)"
        )
    return value
