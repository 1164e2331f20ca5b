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
- A path over the 107 bytes a unix socket address holds, or a file of that
  name that is not a socket: no socket either (said in the log).
- Submits run on one thread of their own (``SubmitServer``), which answers
  before it wakes the pools; a client gets ``READ_DEADLINE_S`` to send its
  whole request, so a stuck one cannot hold the others for long.
- What is answered: ``submit_answer.py``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import stat
import threading
import time

from .paths import socket_path
from .store import JobStore
from .submit_answer import answer, db_identity
from .submit_wire import peer_uid

__all__ = [
    "MAX_REQUEST_BYTES",
    "READ_DEADLINE_S",
    "SubmitServer",
    "start_submit_server",
]

logger = logging.getLogger("xqute.queue")

#: the longest request read (an environment is rarely over a few hundred KB)
MAX_REQUEST_BYTES = 64 * 1024 * 1024
#: how long a client may take to send its whole request
READ_DEADLINE_S = 5.0
#: how long ``close()`` waits for the submit in hand (a db busy for longer: the
#: thread is left to the process's end; its client submits itself meanwhile)
STOP_WAIT_S = 10.0
_MAX_PATH_BYTES = 107  # sockaddr_un.sun_path, less its terminating NUL


def _read_all(conn: socket.socket) -> bytes | None:
    """The whole request (the client ends its stream) within READ_DEADLINE_S
    (else TimeoutError), or None: too large."""
    chunks, size = [], 0
    deadline = time.monotonic() + READ_DEADLINE_S
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("the client did not send its request in time")
        conn.settimeout(left)
        chunk = conn.recv(1 << 16)
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)
        size += len(chunk)
        if size > MAX_REQUEST_BYTES:
            return None


class SubmitServer:
    """The listening socket of one db, served by a thread of its own
    (``start()``, then ``stop()`` or ``close()``).

    A thread, not the daemon's event loop: the answer leaves as soon as the
    submit has committed (the loop would first run the pool's cycle that the
    new job wakes, a few ms), a db that is busy for a while never stalls the
    pool, and the thread has its own db connection. One client at a time, as
    the db's single writer serialises them anyway.
    """

    def __init__(self, db_path: str | os.PathLike[str]) -> None:
        self.store = JobStore(db_path)
        self.path = socket_path(self.store.db.path)
        #: requests answered (what the tests look at)
        self.answered = 0
        self._sock: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self._inode: int | None = None
        self._served: tuple[int, int] | None = None

    def _bind(self) -> socket.socket:
        folder = os.path.dirname(self.path)
        hidden = os.path.join(folder, f".xqute-{os.getpid()}.sock")
        if len(os.fsencode(hidden)) > _MAX_PATH_BYTES:
            raise OSError(f"{hidden} is longer than a unix socket address")
        try:
            if not stat.S_ISSOCK(os.lstat(self.path).st_mode):
                raise OSError(f"{self.path} exists and is not a socket: left alone")
        except FileNotFoundError:
            pass
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
            self.store.db.query("SELECT 1")  # the db exists: it has an identity
            self._served = db_identity(self.store.db.path)
            self.store.close()  # (that connection was this thread's, not the server's)
            self._sock = self._bind()
        except Exception as exc:  # a courtesy: the daemon serves without it
            logger.warning("no submit socket at %s: %s", self.path, exc)
            self.store.close()
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
        except BaseException:
            logger.exception("submit socket: stopped serving")
        finally:
            self._unlink()  # no listener left for clients to wait on
            self.store.close()  # this thread's connection

    def _one(self, conn: socket.socket) -> None:
        woke = False
        try:
            if peer_uid(conn) != os.getuid():
                logger.warning("submit socket: a peer of another user, refused")
                return
            data = _read_all(conn)
            if data is None:
                text = f"error 2\nthe request is over {MAX_REQUEST_BYTES} bytes"
            else:
                text = answer(self.store, data, self._served)
                woke = text.startswith("ok")
                self.answered += 1
            conn.settimeout(READ_DEADLINE_S)
            conn.sendall(text.encode("utf-8", "backslashreplace"))
        except OSError:
            pass  # the client is gone or slow: it submits itself, with its token
        except Exception:  # never the thread's end: the next client is served
            logger.exception("submit socket: a request failed")
        finally:
            if woke:  # the client has its answer: now the pool starts the job
                self.store.notify_pools()

    def _unlink(self) -> None:
        with contextlib.suppress(OSError):
            if os.stat(self.path).st_ino == self._inode:  # not a newer daemon's
                os.unlink(self.path)

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
            self._thread.join(STOP_WAIT_S)
            if self._thread.is_alive():
                logger.warning("submit socket: a submit outlasted the stop; left")
            self._thread = None
        if self._sock is not None:
            self._sock.close()
            self._sock = None
        self._unlink()


def start_submit_server(db_path: str | os.PathLike[str]) -> SubmitServer | None:
    """The daemon's submit socket, listening; None where it cannot."""
    server = SubmitServer(db_path)
    return server if server.start() else None
