"""Submits that happen once however often they are sent (schema v10, appended
to ``MIGRATIONS`` in schema.py).

``xqute submit`` hands its job to the daemon over a socket
(``submit_wire.py``). If the answer never comes (the daemon was killed, or
stopped, after it read the request), the job may or may not be queued: the
client then submits it itself, straight into the db. To neither lose nor
double it, every such submit carries a random token, recorded with the ids in
the very transaction that inserts the jobs; a submit whose token is already
there inserts nothing and answers the ids recorded. The writer's lock
(``BEGIN IMMEDIATE``) orders the two, so exactly one of them queues the job,
whichever comes first.

Tokens older than a day are pruned when new ones are written (the index on
``at`` makes that one range delete); a client waits far less than that.
"""

from __future__ import annotations

TYPE_CHECKING = False  # typing is not imported at run time (xqute submit)
if TYPE_CHECKING:
    import sqlite3
    from collections.abc import Sequence

__all__ = ["TOKENS_DDL", "TOKEN_TTL_S", "check_token", "record", "recorded"]

# v10: the tokens of submits sent to a daemon, with the ids they queued
TOKENS_DDL = """
CREATE TABLE submit_tokens (
    token TEXT PRIMARY KEY,
    ids   TEXT NOT NULL,       -- the jobs it queued: "first-last" (consecutive)
    at    REAL NOT NULL
) WITHOUT ROWID;
CREATE INDEX submit_tokens_at ON submit_tokens (at);
"""

#: how long a token is kept
TOKEN_TTL_S = 86400.0


def check_token(token: object) -> str:
    """A token as sent: 16-64 characters of [0-9a-f] (what the client makes)."""
    from ..errors import ConfigError

    if (
        not isinstance(token, str)
        or not 16 <= len(token) <= 64
        or token.strip("0123456789abcdef")
    ):
        raise ConfigError(f"submit token {token!r} is not 16-64 lowercase hex digits")
    return token


def recorded(conn: sqlite3.Connection, token: str) -> list[int] | None:
    """The ids the submit with ``token`` queued, or None: not queued yet."""
    row = conn.execute(
        "SELECT ids FROM submit_tokens WHERE token = ?", (token,)
    ).fetchone()
    if row is None:
        return None
    first, _, last = row[0].partition("-")
    return list(range(int(first), int(last or first) + 1))


def record(
    conn: sqlite3.Connection, token: str, ids: Sequence[int], now: float
) -> None:
    """Remember that ``token`` queued ``ids`` (consecutive, not none), in the caller's
    write transaction; forget tokens older than ``TOKEN_TTL_S``."""
    conn.execute("DELETE FROM submit_tokens WHERE at < ?", (now - TOKEN_TTL_S,))
    conn.execute(
        "INSERT INTO submit_tokens (token, ids, at) VALUES (?, ?, ?)",
        (token, f"{ids[0]}-{ids[-1]}", now),
    )
