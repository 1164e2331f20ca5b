"""Waking the pools of a db when the queue changes, within a millisecond.

A pool that has nothing to do sleeps up to its ``poll_interval_s`` between
cycles; a job submitted meanwhile would wait for that. So each pool listens on
a named pipe (FIFO) of its own in ``<db stem>.wake/`` next to the db, and
whoever changes the queue writes one byte to every pipe there once its
transaction has committed (``notify``): the pool's event loop wakes at once and
runs a cycle. The store does it after ``submit_job``, ``submit_jobs`` and
``cancel_jobs``; a pool does it after recording jobs that ended (for a
listener that waits on job ends, such as a workflow layer). Code that writes
the queue with its own SQL calls ``notify(db_path)`` after its commit.

Why FIFOs: measured against the alternatives (``bench/queue.py``), a write to
a FIFO costs the writer ~10 us and wakes the reader's event loop directly, in
the same process or another; polling ``PRAGMA data_version`` costs a db read per
poll and still sleeps between polls; inotify on the WAL wakes on every write,
the pool's own heartbeats included, and is Linux-only. A unix socket would do,
but its path is limited to 108 bytes (pytest's tmp paths are longer).

Liveness for free: opening a FIFO for writing without blocking fails (ENXIO)
when no process holds it open for reading, so ``notify`` tells how many pools
listen, and removes the pipes of pools that died without cleaning up. The
pipes are 0600 in a 0700 folder: only the db's owner can wake its pools.

A lost wake-up costs latency only: the pool still polls every
``poll_interval_s`` and sees any commit through ``PRAGMA data_version``.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Callable

from .paths import sibling

TYPE_CHECKING = False  # typing is not imported at run time (xqute submit)

if TYPE_CHECKING:  # not at run time: ``xqute submit`` imports this module
    import asyncio
    from pathlib import Path

__all__ = ["WakePipe", "listen", "notify", "wait_woken", "wake_dir"]


def wake_dir(db_path: str | os.PathLike[str]) -> Path:
    """The folder of a db's wake pipes: ``queue.db`` -> ``queue.wake/``."""
    from pathlib import Path

    return Path(_folder(db_path))


def _folder(db_path: str | os.PathLike[str]) -> str:
    """``wake_dir`` as a str (``notify`` is on ``xqute submit``'s path, which
    does without pathlib)."""
    return sibling(os.fspath(db_path), ".wake")


def notify(
    db_path: str | os.PathLike[str],
    exclude: str | None = None,
    *,
    count_only: bool = False,
) -> int:
    """Wake every pool listening on ``db_path``; return how many listen.

    ``exclude``: a pipe path not to write to (a pool's own). ``count_only``:
    wake none, only count them. Never raises: a wake-up is a hint, and the
    caller's change is already committed.
    """
    folder = _folder(db_path)
    try:
        entries = os.scandir(folder)
    except OSError:
        return 0
    woken = 0
    with entries:
        for entry in entries:
            if entry.name.startswith(".") or entry.path == exclude:
                continue
            try:
                fd = os.open(entry.path, os.O_WRONLY | os.O_NONBLOCK)
            except OSError as exc:
                if exc.errno == errno.ENXIO:  # nobody reads it: its pool died
                    try:  # noqa: SIM105 (contextlib is for the pool's side)
                        os.unlink(entry.path)
                    except OSError:
                        pass
                continue
            try:
                if not count_only:
                    os.write(fd, b"!")
            except BlockingIOError:
                pass  # full of wake-ups the pool has not read yet: it will wake
            except OSError:
                continue
            finally:
                os.close(fd)
            woken += 1
    return woken


class WakePipe:
    """A listener's FIFO in ``wake_dir(db_path)``: ``fileno()`` becomes readable
    when someone calls ``notify``; ``drain()`` empties it. ``open()`` creates it
    (user-only), ``close()`` removes it."""

    def __init__(self, db_path: str | os.PathLike[str]) -> None:
        self.folder = wake_dir(db_path)
        self.path = self.folder / os.urandom(6).hex()
        self._fd: int | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def open(self) -> None:
        """Create and open the pipe. It is made under a hidden name and renamed
        once open, so that ``notify`` never sees it without a reader (and
        removes it as a dead pool's)."""
        import contextlib  # (the listener's side: not on xqute submit's path)

        with contextlib.suppress(FileExistsError):
            self.folder.mkdir(mode=0o700)
        hidden = self.folder / f".{self.path.name}"
        os.mkfifo(hidden, 0o600)
        try:
            # read-write: we hold a writer ourselves, so the pipe never reports
            # EOF (which would make it readable for ever) when writers close
            self._fd = os.open(hidden, os.O_RDWR | os.O_NONBLOCK)
            os.rename(hidden, self.path)
        except OSError:
            self.close()
            with contextlib.suppress(OSError):
                os.unlink(hidden)
            raise

    def fileno(self) -> int:
        if self._fd is None:
            raise ValueError("the wake pipe is not open")
        return self._fd

    def drain(self) -> None:
        """Read every pending wake-up (many notifies wake the reader once)."""
        import contextlib

        if self._fd is None:
            return
        with contextlib.suppress(BlockingIOError, OSError):
            while os.read(self._fd, 4096):
                pass

    def close(self) -> None:
        """Stop listening: ``notify`` no longer counts or wakes this one."""
        import contextlib

        with contextlib.suppress(OSError):
            os.unlink(self.path)
        if self._loop is not None and self._fd is not None:
            with contextlib.suppress(Exception):
                self._loop.remove_reader(self._fd)
            self._loop = None
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.close(self._fd)
            self._fd = None


def listen(
    db_path: str | os.PathLike[str],
    loop: asyncio.AbstractEventLoop,
    on_wake: Callable[[], None],
) -> WakePipe | None:
    """Call ``on_wake()`` on ``loop`` whenever someone notifies ``db_path``.

    Returns the open pipe (``close()`` it to stop), or None where no FIFO can
    be made (the listener then only polls)."""
    pipe = WakePipe(db_path)
    try:
        pipe.open()
    except OSError as exc:
        import logging  # (not at the top: ``xqute submit`` imports this module)

        logging.getLogger("xqute.queue").warning(
            "no wake-up pipe (%s): new jobs wait for a poll", exc
        )
        return None

    def readable() -> None:
        pipe.drain()
        on_wake()

    loop.add_reader(pipe.fileno(), readable)
    pipe._loop = loop
    return pipe


async def wait_woken(
    loop: asyncio.AbstractEventLoop, event: asyncio.Event, timeout_s: float
) -> None:
    """Until ``event`` is set (a wake-up) or ``timeout_s`` passed, which sets it
    (the pool's next poll). A timer on ``loop``, not ``asyncio.wait_for``: that
    makes a task per wait, and a pool waits once per cycle."""
    if event.is_set():
        return
    timer = loop.call_later(timeout_s, event.set)
    try:
        await event.wait()
    finally:
        timer.cancel()
