"""The daemon process: ``python -m xqute.queue.daemon CONFIG_JSON [READY_FD]``.

Takes the lock and writes the pid file (``lockfile.py``), logs to
``<db stem>.log``, runs the worker pool on its main event loop until a signal
stops it, and says "ok <pid>" (or why it could not start) on READY_FD so that
``SchedulerService.start`` (the client side, ``service.py``) returns only once
the pool claims jobs. It never imports the client side.

Signals: SIGTERM/SIGINT stop claiming and wait for the jobs in flight; a second
one, or SIGUSR1, kills them first. SIGHUP is ignored (the daemon has no
terminal). Jobs are not killed when the daemon dies any other way: they run on,
and the next daemon adopts them.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import json
import logging
import logging.handlers
import os
import signal
import sys
from collections.abc import Mapping
from typing import Any

from ..errors import AlreadyRunningError, ConfigError, XquteError
from ..monitoring.daemon import daemon_config, start_monitoring
from ..monitoring.rules import MonitoringConfig
from .lockfile import DaemonLock
from .pool import WorkerPoolManager
from .store import JobStore
from .submit_server import start_submit_server

__all__ = ["main", "make_pool", "serve"]

logger = logging.getLogger("xqute.queue")


def make_pool(
    store: JobStore, workers: int, pool_opts: Mapping[str, Any]
) -> WorkerPoolManager:
    """The daemon's pool, built but not started: bad options raise here. A
    backend given as "module:Class" (how a class reaches a detached daemon) is
    imported."""
    opts = dict(pool_opts)
    backend = opts.get("backend")
    if isinstance(backend, str) and ":" in backend:  # "module:Class"
        module, _, attr = backend.partition(":")
        try:
            opts["backend"] = getattr(importlib.import_module(module), attr)
        except (ImportError, AttributeError) as exc:
            raise ConfigError(f"backend {backend!r}: cannot import it: {exc}") from exc
    return WorkerPoolManager(store, workers, **opts)


def serve(
    lock: DaemonLock,
    pool: WorkerPoolManager,
    monitoring: MonitoringConfig,
    ready_fd: int | None = None,
) -> None:
    """Run ``pool`` in this process, holding ``lock``, until it is stopped;
    ``monitoring``: the alert loop and the HTTP server to run beside it."""

    def say(text: str) -> None:
        nonlocal ready_fd
        if ready_fd is not None:
            with contextlib.suppress(OSError):
                os.write(ready_fd, (text.replace("\n", " ") + "\n").encode())
                os.close(ready_fd)
            ready_fd = None

    try:
        lock_fd = lock.acquire()
    except AlreadyRunningError as exc:
        say(f"already-running {exc}")
        raise
    handler = _log_to(lock.log_path)
    try:
        logger.info(
            "daemon %d serving %s (SIGTERM or Ctrl-C stops it)",
            os.getpid(),
            lock.db_path,
        )
        asyncio.run(_main(pool, monitoring, say))
        logger.info("daemon %d stopped", os.getpid())
    except BaseException as exc:
        logger.exception("daemon %d failed", os.getpid())
        say(f"error {exc}")
        raise
    finally:
        logging.getLogger("xqute").removeHandler(handler)
        handler.close()
        lock.release(lock_fd)


async def _main(
    pool: WorkerPoolManager, monitoring: MonitoringConfig, say: Any
) -> None:
    loop = asyncio.get_running_loop()
    stops = 0

    def on_stop(signum: int) -> None:
        nonlocal stops
        stops += 1
        now = signum == signal.SIGUSR1 or stops > 1
        logger.info(
            "%s: %s", signal.Signals(signum).name,
            "killing jobs in flight, then stopping" if now
            else "no new jobs; waiting for the jobs in flight",
        )  # fmt: skip
        pool.request_stop(now)

    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGUSR1):
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(signum, on_stop, signum)
    with contextlib.suppress(AttributeError, ValueError):
        signal.signal(signal.SIGHUP, signal.SIG_IGN)
    await pool.astart()
    try:  # the alert loop and the HTTP server, when configured
        extras = await start_monitoring(monitoring, pool.store)
    except BaseException:
        pool.request_stop(now=False)
        await pool.wait_stopped()
        raise
    # xqute submit's socket: a client that finds it never opens the db
    submits = start_submit_server(pool.store.db.path)
    if submits is not None:
        extras = [submits, *extras]
    try:
        say(f"ok {os.getpid()}")
        await pool.wait_stopped()  # a signal stops it
    finally:
        for extra in reversed(extras):
            with contextlib.suppress(Exception):
                await extra.stop()


class _PrivateLog(logging.handlers.RotatingFileHandler):
    """A rotating log whose files (the new one after a rotation too) are 0600."""

    def _open(self) -> Any:
        fd = os.open(self.baseFilename, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        return os.fdopen(fd, "a", encoding=self.encoding, errors=self.errors)


def _log_to(path: Any) -> logging.Handler:
    handler = _PrivateLog(path, maxBytes=10 * 1024 * 1024, backupCount=3)
    handler.setFormatter(
        logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    )
    root = logging.getLogger("xqute")
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    return handler


def main(argv: list[str]) -> int:
    config = json.loads(argv[0])
    ready_fd = int(argv[1]) if len(argv) > 1 else None
    store = JobStore(config.pop("db_path"))
    workers = config.pop("workers")
    try:
        monitoring = daemon_config(
            config.pop("monitoring"), config.pop("http"), store.db
        )
        serve(
            DaemonLock(store), make_pool(store, workers, config), monitoring, ready_fd
        )
    except XquteError as exc:
        print(f"xqute daemon: {exc}", file=sys.stderr)
        return 3
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
