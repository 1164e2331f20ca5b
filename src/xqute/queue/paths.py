"""Where a queue db and the files beside it live, as plain strings.

Kept apart from ``db.py`` (which imports SQLite and the schema) because
``xqute submit`` resolves the db's path before it knows whether it will open
the db at all: when a daemon serves the db, the submit goes over the daemon's
socket and never loads SQLite (``submit_wire.py``). No pathlib either: it
imports urllib.parse, ~2 ms of a command that scripts call thousands of times.
"""

from __future__ import annotations

import os
import sys

__all__ = ["db_file", "sibling", "socket_path", "state_dir"]


def state_dir() -> str:
    """The per-user state dir: ``$XDG_STATE_HOME/xqute`` (``~/.local/state/xqute``),
    ``~/Library/Application Support/xqute`` on macOS, ``%LOCALAPPDATA%\\xqute``."""
    home = os.path.expanduser("~")
    if sys.platform == "darwin":
        return os.path.join(home, "Library", "Application Support", "xqute")
    if sys.platform == "win32":
        base = os.environ.get("LOCALAPPDATA") or os.path.join(home, "AppData", "Local")
        return os.path.join(base, "xqute")
    base = os.environ.get("XDG_STATE_HOME") or ""
    if not os.path.isabs(base):  # the XDG spec says: ignore relative values
        base = os.path.join(home, ".local", "state")
    return os.path.join(base, "xqute")


def db_file(db_path: str | os.PathLike[str] | None = None) -> str:
    """The db as an absolute str: ``db_path`` if given, else ``$XQUTE_DB``, else
    ``<state dir>/queue.db``."""
    if db_path is None or os.fspath(db_path) == "":
        db_path = os.environ.get("XQUTE_DB") or os.path.join(state_dir(), "queue.db")
    return os.path.abspath(os.path.expanduser(os.fspath(db_path)))


def sibling(db_file: str, suffix: str) -> str:
    """A file of the store next to its db: ``/x/queue.db`` -> ``/x/queue<suffix>``."""
    return os.path.splitext(db_file)[0] + suffix


def socket_path(db_file: str) -> str:
    """The socket a daemon serving ``db_file`` listens on (``submit_wire.py``)."""
    return sibling(db_file, ".sock")
