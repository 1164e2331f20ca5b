"""The daemon's side of ``xqute submit``'s socket (the client: ``submit_wire.py``).

The daemon listens on ``<db stem>.sock`` while it runs, and queues what
clients send through its store: the same checks, the same rows, the same
wake-up as a submit straight into the db, plus the request's token, recorded
in the same transaction (``submit_tokens.py``), so that a client that got no
answer can submit the job itself without doubling it.

- The socket is 0600 (bound under a hidden name, chmod-ed, then renamed into
  place, which also replaces a dead daemon's) and each peer's uid is checked
  (``SO_PEERCRED``): only the db's owner submits. Linux only; elsewhere the
  daemon does not listen and clients write the db themselves.
- A path over the 107 bytes a unix socket address holds: no socket either.
- Submits run on one thread of their own (``SubmitServer``), which answers
  before it wakes the pools.
- User strings are data: the command is stored as sent (an argv or one shell
  string), never evaluated here.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import socket
import struct
import threading
from typing import Any

from ..errors import ConfigError, XquteError
from .exports import PreparedEnv
from .paths import socket_path
from .store import JobStore
from .submit_warn import unfit
from .submit_wire import JOB_KEYS, PROTOCOL

__all__ = ["MAX_REQUEST_BYTES", "SubmitServer", "answer", "start_submit_server"]

logger = logging.getLogger("xqute.queue")

#: the longest request read (an environment is rarely over a few hundred KB)
MAX_REQUEST_BYTES = 64 * 1024 * 1024
#: how long a client may take to send its request
READ_TIMEOUT_S = 10.0
_MAX_PATH_BYTES = 107  # sockaddr_un.sun_path, less its terminating NUL
_JOB_ARGS = {  # request "job" key -> submit_job argument
    "name": "job_name", "cpus": "cpus", "mem": "memory", "gpus": "gpus",
    "priority": "priority", "timeout": "timeout", "namespace": "namespace",
    "priority_class": "priority_class", "queue": "queue",
    "resource_class": "resource_class", "storage": "storage",
}  # fmt: skip


def _problem(what: str, value: Any, allowed: str) -> ConfigError:
    return ConfigError(f"submit request: {what} {value!r:.200} is not {allowed}")


def _command(value: Any) -> str | list[str]:
    if isinstance(value, str) and value:
        return value
    if isinstance(value, list) and value and all(isinstance(v, str) for v in value):
        return value
    raise _problem("command", value, "a non-empty string or list of strings")


def _env(value: Any) -> PreparedEnv | None:
    if value is None:
        return None
    try:
        env = json.loads(value) if isinstance(value, str) else None
    except ValueError:
        env = None
    if not isinstance(env, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in env.items()
    ):
        raise _problem("env", value, "null or a JSON object of strings")
    return PreparedEnv(value)


def _job(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _problem("job", value, "an object")
    out = {}
    for key, item in value.items():
        kind = JOB_KEYS.get(key)
        if kind is None:
            raise _problem("job key", key, f"one of {', '.join(JOB_KEYS)}")
        if item is None:
            continue
        if type(item) is not kind:
            raise _problem(f"job {key}", item, f"a {kind.__name__}")
        out[_JOB_ARGS[key]] = item
    return out


def _parse(data: bytes) -> dict[str, Any]:
    try:
        request = json.loads(data)
    except ValueError as exc:
        raise ConfigError(f"submit request: not JSON ({exc})") from None
    version = request.get("v") if isinstance(request, dict) else None
    if version != PROTOCOL:
        raise ConfigError(
            f"submit request: protocol {version!r} is not {PROTOCOL}"
            " (a client of another xqute version?)"
        )
    cwd = request.get("cwd")
    if not isinstance(cwd, str) or not os.path.isabs(cwd):
        raise _problem("cwd", cwd, "an absolute path")
    array = request.get("array")
    if array is not None and not isinstance(array, str):
        raise _problem("array", array, "null or a string such as 1-10%2")
    return {
        "token": request.get("token"),  # checked by the store
        "command": _command(request.get("command")),
        "array": array,
        "shared": {
            "working_dir": cwd,
            "env": _env(request.get("env")),
            **_job(request.get("job", {})),
        },
    }


def answer(store: JobStore, data: bytes) -> str:
    """Queue the request ``data`` through ``store``; the answer's text
    (``submit_wire.Answer``). Bad input is answered, never raised. The pools
    are not woken: the caller does it once the client has its answer."""
    try:
        request = _parse(data)
        shared, token = request["shared"], request["token"]
        if request["array"] is not None:
            ids = store.submit_array(
                request["command"], request["array"], token=token, wake=False,
                **shared,
            )  # fmt: skip
        else:
            job = {"command": request["command"], **shared}
            ids = store.submit_jobs([job], token=token, wake=False)
    except ConfigError as exc:
        return f"error 2\n{exc}"
    except XquteError as exc:
        return f"error 1\n{exc}"
    except Exception as exc:  # a bug: the client is told, the daemon goes on
        logger.exception("submit socket: a request failed")
        return f"error 1\nthe daemon could not queue it: {type(exc).__name__}: {exc}"
    try:  # this daemon's pool serves the db: only its size can keep a job waiting
        cpus, mem, gpus = (shared.get(k) for k in ("cpus", "memory", "gpus"))
        reason = unfit(store, cpus or 1, mem, gpus or 0)
    except Exception:  # a warning is a courtesy: the jobs are queued
        logger.debug("submit socket: no warning computed", exc_info=True)
        reason = None
    what = "the job waits" if len(ids) == 1 else "the jobs wait"
    warning = (
        f"no running pool can ever run it ({reason}); {what} for a bigger one"
        if reason
        else ""
    )
    return f"ok {ids[0]} {ids[-1]}\n{warning}"


def _same_user(conn: socket.socket) -> bool:
    try:
        creds = conn.getsockopt(
            socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i")
        )
    except OSError:
        return False
    return struct.unpack("3i", creds)[1] == os.getuid()


def _read_all(conn: socket.socket) -> bytes | None:
    """The whole request (the client ends its stream), or None: too large."""
    chunks, size = [], 0
    while chunk := conn.recv(1 << 16):
        chunks.append(chunk)
        size += len(chunk)
        if size > MAX_REQUEST_BYTES:
            return None
    return b"".join(chunks)


class SubmitServer:
    """The listening socket of one db, served by a thread of its own
    (``start()``, then ``stop()``).

    A thread, not the daemon's event loop: the answer leaves as soon as the
    submit has committed (the loop would first run the pool's cycle that the
    new job wakes, a few ms), a db that is busy for a while never stalls the
    pool, and the thread has its own db connection. One client at a time, as
    the db's single writer serialises them anyway.
    """

    def __init__(self, db_path: str | os.PathLike[str]) -> None:
        self.store = JobStore(db_path)
        self.path = socket_path(self.store.db.path)
        self._sock: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self._inode: int | None = None

    def _bind(self) -> socket.socket:
        folder = os.path.dirname(self.path)
        hidden = os.path.join(folder, f".xqute-{os.getpid()}.sock")
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(hidden)
            sock.bind(hidden)
            os.chmod(hidden, 0o600)
            sock.listen(128)
            os.rename(hidden, self.path)  # replaces a dead daemon's socket
            self._inode = os.stat(self.path).st_ino
        except BaseException:
            sock.close()
            with contextlib.suppress(OSError):
                os.unlink(hidden)
            raise
        return sock

    def start(self) -> bool:
        """Listen; False where it cannot (said in the log: clients then write
        the db themselves)."""
        if not hasattr(socket, "SO_PEERCRED") or not hasattr(socket, "AF_UNIX"):
            return False
        if len(os.fsencode(self.path)) > _MAX_PATH_BYTES:
            logger.info(
                "no submit socket: %s is longer than a unix socket address"
                " (%d bytes); xqute submit writes the db itself",
                self.path, _MAX_PATH_BYTES,
            )  # fmt: skip
            return False
        try:
            self._sock = self._bind()
        except Exception as exc:  # a courtesy: the daemon serves without it
            logger.warning("no submit socket at %s: %s", self.path, exc)
            return False
        self._sock.settimeout(1.0)  # a stop is seen within a second at worst
        self._thread = threading.Thread(
            target=self._serve, name="xqute-submit", daemon=True
        )
        self._thread.start()
        logger.info("submits accepted on %s", self.path)
        return True

    def _serve(self) -> None:
        assert self._sock is not None
        try:
            while not self._stopping.is_set():
                try:
                    conn, _ = self._sock.accept()
                except TimeoutError:
                    continue
                except OSError as exc:
                    if self._stopping.is_set():
                        break
                    logger.warning("submit socket: accept failed: %s", exc)
                    self._stopping.wait(0.1)  # (EMFILE ...): not a busy loop
                    continue
                with conn:
                    if self._stopping.is_set():  # close()'s wake-up (or late)
                        break
                    self._one(conn)
        except Exception:
            logger.exception("submit socket: stopped serving")
        finally:
            self.store.close()  # this thread's connection

    def _one(self, conn: socket.socket) -> None:
        woke = False
        try:
            if not _same_user(conn):
                logger.warning("submit socket: a peer of another user, refused")
                return
            conn.settimeout(READ_TIMEOUT_S)
            data = _read_all(conn)
            if data is None:
                text = f"error 2\nthe request is over {MAX_REQUEST_BYTES} bytes"
            else:
                text = answer(self.store, data)
                woke = text.startswith("ok")
            conn.sendall(text.encode())
        except OSError:
            pass  # the client is gone or slow: it submits itself, with its token
        finally:
            if woke:  # the client has its answer: now the pool starts the job
                self.store.notify_pools()

    async def stop(self) -> None:
        """``close()`` off the event loop (it waits for the submit in hand)."""
        await asyncio.get_running_loop().run_in_executor(None, self.close)

    def close(self) -> None:
        """Stop listening, finish the submit in hand, remove the socket."""
        self._stopping.set()
        if self._thread is not None:  # wake its accept(): a connection of our own
            with contextlib.suppress(OSError), socket.socket(socket.AF_UNIX) as wake:
                wake.settimeout(1.0)
                wake.connect(self.path)
            self._thread.join()
            self._thread = None
        if self._sock is not None:
            self._sock.close()
            self._sock = None
        with contextlib.suppress(OSError):
            if os.stat(self.path).st_ino == self._inode:  # not a newer daemon's
                os.unlink(self.path)


def start_submit_server(db_path: str | os.PathLike[str]) -> SubmitServer | None:
    """The daemon's submit socket, listening; None where it cannot."""
    server = SubmitServer(db_path)
    return server if server.start() else None
