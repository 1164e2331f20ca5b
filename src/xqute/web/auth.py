"""Who may read and who may act, over HTTP.

- **The token**: a random secret in a user-only file the daemon writes at its
  first start (``<db stem>.token`` next to the db, or ``monitoring.http
  .token_file``) and reuses afterwards; ``xqute service status`` shows it. A
  token file others can read is refused, not used.
- **Reads** (GET) need nothing when the daemon listens on loopback: only this
  machine reaches it, like the db file itself. On any other address every
  request needs the token.
- **Actions** (POST: submit, cancel ...) always need it: as a bearer token
  (``Authorization: Bearer <token>``, for scripts), or as the session cookie
  the login page sets (HttpOnly, SameSite=Strict) together with the CSRF token
  of the page's forms (a form field ``csrf`` or the ``X-CSRF-Token`` header,
  for the page's script), and an ``Origin``, when the browser sends one, that
  is this server's own.
- **The Host header** must name a loopback host when listening on loopback, so
  a web page cannot reach the API through DNS rebinding.

The session cookie and the CSRF token are HMACs of the token: they change when
the token file does, and nothing is kept in memory.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import stat
from pathlib import Path

from ..errors import ConfigError

__all__ = ["SESSION_COOKIE", "Auth", "ensure_token", "read_token"]

SESSION_COOKIE = "xqute_session"
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1", "[::1]"})


def ensure_token(path: Path) -> str:
    """The token in ``path``, written (0600) with a new random one if missing."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(secrets.token_urlsafe(32) + "\n")
        try:
            os.link(tmp, path)  # never replaces a token another daemon wrote
        except FileExistsError:
            pass
        finally:
            tmp.unlink()
    token = read_token(path)
    if token is None:
        raise ConfigError(f"the token file {path} is empty or unreadable")
    return token


def read_token(path: Path) -> str | None:
    """The token in ``path`` (None if there is none); refuses a file that
    others may read."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise ConfigError(f"cannot read the token file {path}: {exc}") from exc
    with os.fdopen(fd) as fh:
        mode = os.fstat(fh.fileno()).st_mode
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise ConfigError(
                f"the token file {path} is readable by others (mode"
                f" {stat.S_IMODE(mode):04o}); run: chmod 600 {path}"
            )
        token = fh.read().strip()
    return token or None


class Auth:
    """The checks of one server (see the module docstring)."""

    def __init__(self, token: str, loopback: bool) -> None:
        self.loopback = loopback
        self._token = token.encode()
        self.session = self._derive(b"xqute-session")
        self.csrf = self._derive(b"xqute-csrf")

    def _derive(self, what: bytes) -> str:
        return hmac.new(self._token, what, hashlib.sha256).hexdigest()

    def host_ok(self, host: str | None) -> bool:
        if not self.loopback:
            return True
        if not host:
            return False
        name = host.rsplit(":", 1)[0] if not host.endswith("]") else host
        return name.lower() in LOOPBACK_HOSTS

    def bearer_ok(self, authorization: str | None) -> bool:
        if not authorization:
            return False
        scheme, _, value = authorization.partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(
            value.strip().encode(), self._token
        )

    def session_ok(self, cookie: str | None) -> bool:
        return bool(cookie) and hmac.compare_digest(str(cookie), self.session)

    def token_ok(self, candidate: str | None) -> bool:
        return bool(candidate) and hmac.compare_digest(
            str(candidate).strip().encode(), self._token
        )

    def csrf_ok(self, value: str | None) -> bool:
        return bool(value) and hmac.compare_digest(str(value), self.csrf)
