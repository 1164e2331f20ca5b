"""The ``servers`` option of the ssh backend, checked before any job is submitted.

Each server is ``name: {host, user, port, keyfile, ctrl_persist, ctrl_dir,
max_sessions, args}``; only ``host`` is required. Everything is checked here, at
construction, so that a typo fails the run with a message naming the server, the
key and what is allowed, instead of failing every job later with an ssh error.
The one piece of I/O is checking that a keyfile exists, which is cheap and saves
a confusing "Permission denied (publickey)" at start.

The ControlPath (the master connection's unix socket) has a hard length limit:
OpenSSH binds the socket at ``PATH.<16 random characters>`` and then renames it,
so the expanded path may be at most 90 bytes (measured: 90 works, 91 fails with
"too long for Unix domain socket" and rc 255). The socket lives in a private
directory made at start inside ``ctrl_dir``, whose name length is fixed, so the
limit on ``ctrl_dir`` is known here.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ... import checks
from ...errors import ConfigError

__all__ = [
    "CTRL_PATH_MAX",
    "SERVER_KEYS",
    "ServerConfig",
    "control_path_len",
    "parse_servers",
]

#: what each key of a server means (also the list shown for an unknown key)
SERVER_KEYS: dict[str, str] = {
    "host": "host name or address to connect to (required)",
    "user": "login user (default: ssh's default, i.e. the local user or ssh_config)",
    "port": "ssh port, 1-65535 (default: ssh's default, 22)",
    "keyfile": "private key file for key-based auth (default: ssh's defaults)",
    "ctrl_persist": "seconds an idle master connection stays open (default 60)",
    "ctrl_dir": "directory for the master connection's socket (default /tmp)",
    "max_sessions": "most ssh calls at once to this server (default 10, sshd's default"
    " MaxSessions: more would open extra connections)",
    "args": "extra ssh arguments, e.g. ['-o', 'ConnectTimeout=10']"
    " (they override the defaults ConnectTimeout=5, ServerAliveInterval=5,"
    " ServerAliveCountMax=3, LogLevel=ERROR)",
}

#: longest expanded ControlPath OpenSSH can bind (108-byte sun_path, minus the
#: ".XXXXXXXXXXXXXXXX" temporary suffix and the NUL)
CTRL_PATH_MAX = 90
#: the private directory made in ctrl_dir: "xq-" + mkdtemp's 8 random characters
CTRL_SUBDIR_LEN = 11
DEFAULT_CTRL_DIR = "/tmp"
DEFAULT_CTRL_PERSIST_S = 60
DEFAULT_MAX_SESSIONS = 10

_NAME_RE = re.compile(r"^[A-Za-z0-9_.-]+$")
_TOKEN_RE = re.compile(r"^[^\s'\"\\]+$")


@dataclass(frozen=True, slots=True)
class ServerConfig:
    """One server, validated. ``index`` names its socket (``s<index>``)."""

    name: str
    host: str
    index: int = 0
    user: str | None = None
    port: int | None = None
    keyfile: str | None = None
    ctrl_persist: int = DEFAULT_CTRL_PERSIST_S
    ctrl_dir: str = DEFAULT_CTRL_DIR
    max_sessions: int = DEFAULT_MAX_SESSIONS
    args: tuple[str, ...] = ()

    @property
    def target(self) -> str:
        """``user@host:port`` for log lines and error messages."""
        text = f"{self.user}@{self.host}" if self.user else self.host
        return f"{text}:{self.port}" if self.port else text


def control_path_len(ctrl_dir: str, index: int) -> int:
    """Length of the socket path ``<ctrl_dir>/xq-XXXXXXXX/s<index>``."""
    return len(ctrl_dir.rstrip("/")) + 1 + CTRL_SUBDIR_LEN + 1 + len(f"s{index}")


def parse_servers(servers: Any) -> dict[str, ServerConfig]:
    """Validate the ``servers`` option; raise ConfigError naming what is wrong."""
    example = "{'server1': {'host': 'server1.example.com', 'user': 'me'}}"
    if servers is None or (isinstance(servers, Mapping) and not servers):
        raise ConfigError(
            f"the ssh scheduler needs at least one server: servers={example}"
        )
    if not isinstance(servers, Mapping):
        raise ConfigError(
            f"ssh servers {servers!r} must be a dict of name -> settings,"
            f" e.g. {example}"
        )
    out: dict[str, ServerConfig] = {}
    for index, (name, settings) in enumerate(servers.items()):
        if not isinstance(name, str) or not _NAME_RE.match(name):
            raise ConfigError(
                f"ssh server name {name!r} is invalid; use letters, digits, '_', '.'"
                " and '-' (it is part of each job's id)"
            )
        out[name] = _parse_server(name, index, settings)
    return out


def _parse_server(name: str, index: int, settings: Any) -> ServerConfig:
    if not isinstance(settings, Mapping):
        raise ConfigError(
            f"ssh server {name!r}: settings {settings!r} must be a dict with at least"
            " 'host'"
        )
    for key in settings:
        if key not in SERVER_KEYS:
            raise ConfigError.choice(f"ssh server {name!r}: key", key, SERVER_KEYS)
    where = f"ssh server {name!r}"
    if "host" not in settings:
        raise ConfigError(f"{where} has no 'host'; give the host name or address")
    host = _word(settings["host"], f"{where}: host")
    user = _word(settings["user"], f"{where}: user") if "user" in settings else None
    port = settings.get("port")
    if port is not None and (
        isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535
    ):
        raise ConfigError(f"{where}: port {port!r} must be an integer from 1 to 65535")
    keyfile = settings.get("keyfile")
    if keyfile is not None:
        if not isinstance(keyfile, str | os.PathLike) or not os.fspath(keyfile):
            raise ConfigError(f"{where}: keyfile {keyfile!r} must be a path")
        keyfile = os.path.abspath(os.path.expanduser(os.fspath(keyfile)))
        if not os.path.isfile(keyfile):
            raise ConfigError(f"{where}: keyfile {keyfile!r} does not exist")
    persist = settings.get("ctrl_persist", DEFAULT_CTRL_PERSIST_S)
    if isinstance(persist, bool) or not isinstance(persist, int) or persist < 1:
        # ControlPersist=0 would mean "forever": never what a driver wants
        raise ConfigError(
            f"{where}: ctrl_persist {persist!r} must be a whole number of seconds >= 1"
        )
    ctrl_dir = _ctrl_dir(settings.get("ctrl_dir", DEFAULT_CTRL_DIR), where, index)
    sessions = settings.get("max_sessions", DEFAULT_MAX_SESSIONS)
    checks.positive_int(f"{where}: max_sessions", sessions)
    args = settings.get("args", ())
    if isinstance(args, str) or not isinstance(args, Sequence):
        raise ConfigError(
            f"{where}: args {args!r} must be a list of strings, e.g."
            " ['-o', 'ConnectTimeout=10']"
        )
    if not all(isinstance(a, str) for a in args):
        raise ConfigError(f"{where}: args {list(args)!r} must all be strings")
    return ServerConfig(
        name=name,
        host=host,
        index=index,
        user=user,
        port=port,
        keyfile=keyfile,
        ctrl_persist=persist,
        ctrl_dir=ctrl_dir,
        max_sessions=sessions,
        args=tuple(args),
    )


def _word(value: Any, what: str) -> str:
    """A host or user name: one word that ssh cannot take for an option."""
    if not isinstance(value, str) or not value:
        raise ConfigError(f"{what} {value!r} must be a non-empty string")
    if value.startswith("-") or not _TOKEN_RE.match(value) or "@" in value:
        raise ConfigError(
            f"{what} {value!r} is invalid: no spaces, quotes, backslashes or '@',"
            " and it may not start with '-'"
        )
    return value


def _ctrl_dir(value: Any, where: str, index: int) -> str:
    if not isinstance(value, str | os.PathLike) or not os.fspath(value):
        raise ConfigError(f"{where}: ctrl_dir {value!r} must be a directory path")
    path = os.path.abspath(os.path.expanduser(os.fspath(value)))
    if not _TOKEN_RE.match(path):
        # ssh parses "-o ControlPath=..." like a config line: no blanks or quotes
        raise ConfigError(
            f"{where}: ctrl_dir {path!r} may not contain spaces, quotes or backslashes"
        )
    length = control_path_len(path, index)
    if length > CTRL_PATH_MAX:
        most = CTRL_PATH_MAX - (length - len(path.rstrip("/")))
        raise ConfigError(
            f"{where}: ctrl_dir {path!r} is too long: the control socket path would be"
            f" {length} bytes, and OpenSSH allows at most {CTRL_PATH_MAX}; use a"
            f" directory of at most {most} characters (e.g. /tmp)"
        )
    return path
