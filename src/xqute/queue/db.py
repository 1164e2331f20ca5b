"""The SQLite connection: where the db lives, how it is opened, how writes retry.

- WAL mode (readers never block the writer nor each other), ``synchronous=NORMAL``
  (a commit is durable once the WAL is checkpointed; a power cut may lose the last
  few commits but never corrupts the db), a busy timeout.
- Every write is one short ``BEGIN IMMEDIATE`` transaction: it takes the write lock
  up front, so it never fails half-way on a lock upgrade. ``SQLITE_BUSY`` that
  outlasts SQLite's own busy handler is retried here with jittered backoff for up
  to ``busy_timeout_s``, so "database is locked" never reaches a user under normal
  contention; past that, ``StoreError`` says who to blame.
- One connection per thread (and per process: a forked child reconnects).
- The db file is created 0600 and the default state dir 0700: jobs' commands and
  environments are private to their user.
"""

from __future__ import annotations

import os
import time
from _thread import allocate_lock  # (threading itself costs xqute submit ~1 ms)
from collections.abc import Callable

from ..errors import ConfigError, DbBusy, StoreError
from .paths import db_file
from .paths import state_dir as _state_dir
from .schema import SCHEMA_VERSION, schema_version

try:  # the C module itself: the ``sqlite3`` package around it (the same
    # classes and functions) adds date adapters and imports datetime: ~2 ms
    # of the 30 ms of an ``xqute submit``
    import _sqlite3 as sqlite3
except ImportError:  # pragma: no cover (an interpreter without it)
    import sqlite3

try:  # threading.local is this class; threading itself is not needed here
    from _thread import _local as _ThreadLocal
except ImportError:  # pragma: no cover (an interpreter without it)
    from threading import local as _ThreadLocal

TYPE_CHECKING = False  # typing is not imported at run time (xqute submit)
if TYPE_CHECKING:
    from pathlib import Path
    from typing import Any, TypeVar

    T = TypeVar("T")

__all__ = [
    "Database",
    "db_file",
    "default_db_path",
    "default_state_dir",
    "make_private_dir",
]

_BUSY_CODES = {5, 6}  # SQLITE_BUSY, SQLITE_LOCKED (and their extended codes)
_HANDLER_TIMEOUT_S = 2.0  # SQLite's own busy handler; we retry around it
_HANDLER_TIMEOUT_MS = int(_HANDLER_TIMEOUT_S * 1000)
_SQLITE_NOTADB = 26


def default_state_dir() -> Path:
    """The per-user state dir: ``$XDG_STATE_HOME/xqute`` (``~/.local/state/xqute``),
    ``~/Library/Application Support/xqute`` on macOS, ``%LOCALAPPDATA%\\xqute``."""
    from pathlib import Path

    return Path(_state_dir())


def default_db_path(db_path: str | os.PathLike[str] | None = None) -> Path:
    """``db_path`` if given, else ``$XQUTE_DB``, else ``<state dir>/queue.db``."""
    from pathlib import Path

    return Path(db_file(db_path))


def make_private_dir(path: str | os.PathLike[str]) -> None:
    """Create ``path`` (and missing parents) user-only; an existing dir is left
    as it is (it may be shared on purpose, like /tmp)."""
    path = os.path.abspath(path)
    if os.path.isdir(path):
        return
    missing = []
    probe = path
    while not os.path.exists(probe):
        missing.append(probe)
        probe = os.path.dirname(probe)
    for directory in reversed(missing):
        try:  # noqa: SIM105 (contextlib would cost xqute submit ~0.4 ms)
            os.mkdir(directory, 0o700)
        except FileExistsError:
            pass


def _check_sqlite(conn: sqlite3.Connection, path: Path) -> None:
    """A file that is not a SQLite db is bad input, said in one line."""
    try:
        conn.execute("PRAGMA schema_version").fetchone()
    except sqlite3.DatabaseError as exc:
        if (getattr(exc, "sqlite_errorcode", 0) or 0) & 0xFF == _SQLITE_NOTADB:
            raise ConfigError(
                f"{str(path)!r} is not a queue db (not an SQLite database);"
                " give another --db (or $XQUTE_DB)"
            ) from exc
        raise


def is_busy(exc: sqlite3.Error) -> bool:
    code = getattr(exc, "sqlite_errorcode", None)
    if code is not None:
        return (code & 0xFF) in _BUSY_CODES
    text = str(exc).lower()
    return "locked" in text or "busy" in text


class Database:
    """Thread-local connections to one db file, with retrying transactions."""

    def __init__(
        self, path: str | os.PathLike[str], busy_timeout_s: float = 60.0
    ) -> None:
        self.path = path  # as given: a str from the store
        self.busy_timeout_s = busy_timeout_s
        self._local = _ThreadLocal()
        self._all: list[sqlite3.Connection] = []
        self._lock = allocate_lock()

    # ------------------------------------------------------------------ opening
    def conn(self) -> sqlite3.Connection:
        local = self._local
        conn = getattr(local, "conn", None)
        if conn is not None and local.pid == os.getpid():
            return conn
        conn = self._retry(self._open)
        local.conn, local.pid = conn, os.getpid()
        with self._lock:
            self._all.append(conn)
        return conn

    def _open(self) -> sqlite3.Connection:
        path = self.path
        if not os.path.exists(path):
            try:
                make_private_dir(os.path.dirname(os.path.abspath(path)))
                try:
                    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                    os.close(fd)
                except FileExistsError:
                    pass
            except OSError as exc:  # a read-only folder, a file in the way ...
                raise ConfigError(
                    f"the queue db {str(path)!r} cannot be created:"
                    f" {exc.strerror or exc}; give another --db (or $XQUTE_DB)"
                ) from exc
        try:
            conn = sqlite3.connect(
                path,
                timeout=_HANDLER_TIMEOUT_S,
                isolation_level=None,  # we issue BEGIN/COMMIT ourselves
                check_same_thread=False,  # one thread uses it; close() may be another
            )
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open the queue db {path}: {exc}") from exc
        try:
            _check_sqlite(conn, path)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA temp_store=MEMORY")
            self._migrate(conn)
        except BaseException:
            conn.close()
            raise
        return conn

    def _migrate(self, conn: sqlite3.Connection) -> None:
        version = schema_version(conn)
        if version == SCHEMA_VERSION:
            return
        if version > SCHEMA_VERSION:
            raise StoreError(
                f"the queue db {self.path} has schema version {version}, newer than"
                f" this xqute understands ({SCHEMA_VERSION}); upgrade xqute"
            )
        from .schema import apply_migrations

        conn.execute("BEGIN IMMEDIATE")
        try:
            version = schema_version(conn)  # another process may have done it
            if version < SCHEMA_VERSION:
                apply_migrations(conn, version)
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    def close(self) -> None:
        with self._lock:
            conns, self._all = self._all, []
        for conn in conns:
            try:  # noqa: SIM105 (no contextlib: see make_private_dir)
                conn.close()
            except sqlite3.Error:
                pass
        self._local = _ThreadLocal()

    # ------------------------------------------------------------------ work
    def write(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``fn(conn)`` in one write transaction; retried whole when busy.
        Called inside a write transaction of this thread (a pool's dispatch in
        its cycle's transaction), ``fn`` joins it: its writes commit, or roll
        back, with the caller's."""
        conn = self.conn()
        if conn.in_transaction:
            return fn(conn)

        def attempt() -> T:
            conn = self.conn()
            conn.execute("BEGIN IMMEDIATE")
            try:
                result = fn(conn)
                conn.execute("COMMIT")
            except BaseException:
                try:  # noqa: SIM105 (no contextlib: see make_private_dir)
                    conn.execute("ROLLBACK")
                except sqlite3.Error:
                    pass
                raise
            return result

        return self._retry(attempt)

    def query(self, sql: str, params: Any = ()) -> list[sqlite3.Row | tuple[Any, ...]]:
        """One read statement, outside any explicit transaction."""
        return self._retry(lambda: self.conn().execute(sql, params).fetchall())

    def cursor(self, sql: str, params: Any = ()) -> sqlite3.Cursor:
        """One read statement whose rows the caller fetches as it needs them
        (on this thread; ``close()`` it when done: until then it holds its read
        snapshot). Its first step, which takes the snapshot, is retried when
        busy like ``query``."""
        return self._retry(lambda: self.conn().execute(sql, params))

    def try_now(self, fn: Callable[..., T], *args: Any) -> T:
        """``fn(*args)`` on this thread, where the db's being locked by another
        writer raises ``DbBusy`` at once instead of being waited out (a pool's
        cycle on its event loop, which must not block: on ``DbBusy`` it sends
        the cycle to its db thread, which waits)."""
        self._local.no_wait = True
        try:
            conn = self.conn()
            conn.execute("PRAGMA busy_timeout = 0")
            try:
                return fn(*args)
            finally:
                conn.execute(f"PRAGMA busy_timeout = {_HANDLER_TIMEOUT_MS}")
        finally:
            self._local.no_wait = False

    def _retry(self, attempt: Callable[[], T]) -> T:
        deadline = time.monotonic() + self.busy_timeout_s
        delay_s = 0.005
        while True:
            try:
                return attempt()
            except sqlite3.Error as exc:
                if not is_busy(exc):
                    raise StoreError(f"queue db {self.path}: {exc}") from exc
                if getattr(self._local, "no_wait", False):
                    raise DbBusy(f"queue db {self.path} is locked") from exc
                if time.monotonic() >= deadline:
                    raise StoreError(
                        f"queue db {self.path} stayed locked for"
                        f" {self.busy_timeout_s:g}s; another process holds its write"
                        " lock (a stuck process, or the db on a network filesystem)"
                    ) from exc
            import random  # (only when busy: not on every submit)

            time.sleep(delay_s * random.uniform(0.5, 1.5))
            delay_s = min(delay_s * 2, 0.25)
