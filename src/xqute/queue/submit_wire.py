"""``xqute submit`` through the daemon: the client's side of its socket.

A daemon serving a db listens on ``<db stem>.sock`` (``submit_server.py``).
``xqute submit`` sends it the job and prints the ids it answers, so the command
never opens the db: opening SQLite, reading the schema, one write transaction
and the WAL bookkeeping of a last connection cost a one-shot submit more than
Python's own start-up (``bench/queue.py``: the bare-stdlib floor of a direct
submit is ~2x ``python -c pass``; through the socket ~1.7x). With no daemon
(no socket, or nobody behind it), the caller writes the db itself, as before.

The exchange, one per connection, over a user-only socket whose peer each side
checks (the same uid: a socket of another user is never sent a job)::

    client -> daemon   one JSON object (below), then end of stream
    daemon -> client   "ok FIRST LAST\\n" + an optional warning, or
                       "error CODE\\n" + the message (CODE: the exit code, 1 or 2),
                       or "other-db\\n": it serves another db of that stem
                       (``q.sqlite`` beside ``q.db``): the client writes its own

    {"v": 1, "token": "<hex>", "db": "/abs/q.db", "command": "..." | ["argv", ...],
     "array": "1-10%2" | null, "cwd": "/abs", "env": "<the stored env JSON>" | null,
     "job": {"name": ..., "cpus": 2, "mem": "4G", ...}}

The environment is captured here, in the submitter's process (``exports.py``),
and sent as the text the db stores; the daemon adds nothing of its own.

Sent but not answered (the daemon died, or stopped, after reading it): the
caller submits straight to the db with the same ``token``; whichever of the
two commits first queues the job, the other finds its token
(``submit_tokens.py``). Nothing is lost or doubled.

Only ``_socket`` (not ``socket``, whose enums cost ~3 ms) and ``jsontext``
are imported: this runs on every ``xqute submit``.
"""

from __future__ import annotations

import os
import sys

from .jsontext import dumps

try:
    import _socket
except ImportError:  # pragma: no cover (an interpreter without it)
    _socket = None  # type: ignore[assignment]

TYPE_CHECKING = False  # typing is not imported at run time (xqute submit)
if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

__all__ = [
    "JOB_KEYS",
    "LOST",
    "OTHER_DB",
    "PROTOCOL",
    "REPLY_TIMEOUT_S",
    "Answer",
    "new_token",
    "peer_uid",
    "request_bytes",
    "send",
]

PROTOCOL = 1
#: how long the client waits for the answer: past the daemon's own busy
#: timeout (60 s), so that a daemon that is alive always answers first
REPLY_TIMEOUT_S = 120.0
#: ``send``: the request left but no answer came
LOST = ""
#: the answer of a daemon that serves another db of the same stem
OTHER_DB = "other-db"
#: the most ids one answer may name (``array_jobs.MAX_TASKS``)
_MAX_IDS = 1_000_000
#: the ``job`` keys a request may carry, and the types of their values
JOB_KEYS = {
    "name": str, "cpus": int, "mem": str, "gpus": int, "priority": int,
    "timeout": str, "namespace": str, "priority_class": str, "queue": str,
    "resource_class": str, "storage": str,
}  # fmt: skip


def peer_uid(sock: object) -> int | None:
    """The uid of the process at the other end of a connected unix socket
    (``SO_PEERCRED``: struct ucred's pid, uid, gid), or None where it cannot
    be read. Both sides check it: only the db's owner talks to its daemon."""
    try:
        creds = sock.getsockopt(  # type: ignore[attr-defined]
            _socket.SOL_SOCKET, _socket.SO_PEERCRED, 12
        )
    except (OSError, AttributeError):
        return None
    return int.from_bytes(creds[4:8], sys.byteorder)


def new_token() -> str:
    """A random token (``submit_tokens.py``): 32 hex digits."""
    return os.urandom(16).hex()


def request_bytes(
    token: str,
    db: str,
    command: str | Sequence[str],
    cwd: str,
    env: str | None,
    array: str | None = None,
    job: Mapping[str, object] | None = None,
) -> bytes:
    """The request, as JSON (``jsontext``: no ``json`` import; a string that is
    not UTF-8, from a non-UTF-8 argv or environment, travels escaped)."""
    request = {
        "v": PROTOCOL, "token": token, "db": db, "command": command,
        "array": array, "cwd": cwd, "env": env,
        "job": {k: v for k, v in (job or {}).items() if v is not None},
    }  # fmt: skip
    return dumps(request).encode()


class Answer:
    """What the daemon answered: the ids and a warning, or an error and the
    exit code to end with. ``parse`` it: the constructor trusts its text."""

    __slots__ = ("error", "exit_code", "ids", "warning")

    def __init__(self, text: str) -> None:
        head, _, rest = text.partition("\n")
        word, _, args = head.partition(" ")
        self.ids: list[int] = []
        self.warning: str | None = None
        self.error: str | None = None
        self.exit_code = 0
        if word == "ok":
            first, last = map(int, args.split(" "))
            self.ids = list(range(first, last + 1))
            self.warning = rest.strip() or None
        else:
            self.exit_code = int(args)
            self.error = rest.strip() or "the daemon refused the submit"

    @staticmethod
    def parse(text: str) -> Answer | None:
        """The answer in ``text``; None: not a whole one (cut short, or not
        from a daemon of this version), nor ``other-db``."""
        head, newline, _ = text.partition("\n")
        words = head.split(" ")
        if not newline:
            return None
        if words[0] == "ok" and len(words) == 3 and all(map(_digits, words[1:])):
            first, last = int(words[1]), int(words[2])
            return Answer(text) if 1 <= first <= last < first + _MAX_IDS else None
        if words[0] == "error" and len(words) == 2 and words[1] in ("1", "2"):
            return Answer(text)
        return None


def _digits(text: str) -> bool:
    return text.isascii() and text.isdigit()


def send(path: str, payload: bytes, timeout_s: float = REPLY_TIMEOUT_S) -> str | None:
    """Send ``payload`` to the daemon at ``path``; its answer's text.

    None: no daemon of this user listens there, or it serves another db
    (nothing was queued: submit to the db).
    ``LOST``: the request was sent (maybe in part) but no whole answer came
    back: submit to the db with the request's token."""
    if _socket is None or not hasattr(_socket, "AF_UNIX"):
        return None
    sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
    try:
        sock.settimeout(timeout_s)
        try:
            sock.connect(path)  # no file, nobody listening, path too long ...
        except OSError:
            return None
        if peer_uid(sock) != os.getuid():
            return None  # another user's socket: never sent the job (or its env)
        chunks = []
        try:
            sock.sendall(payload)
            sock.shutdown(_socket.SHUT_WR)
            while chunk := sock.recv(65536):
                chunks.append(chunk)
        except OSError:
            return LOST
    finally:
        sock.close()
    text = b"".join(chunks).decode("utf-8", "replace")
    if text == f"{OTHER_DB}\n":
        return None  # it serves another db: this one is written directly
    return text if Answer.parse(text) is not None else LOST
