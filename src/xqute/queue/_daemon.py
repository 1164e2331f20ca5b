"""The daemon process: ``python -m xqute.queue._daemon CONFIG_JSON [READY_FD]``.

Takes the lock, writes the pid file, logs to ``<db stem>.log``, runs the worker
pool on its main event loop until a signal stops it, and says "ok <pid>" (or
why it could not start) on READY_FD so that ``SchedulerService.start`` returns
only once the pool claims jobs.

Signals: SIGTERM/SIGINT stop claiming and wait for the jobs in flight; a second
one, or SIGUSR1, kills them first. SIGHUP is ignored (the daemon has no
terminal). Jobs are not killed when the daemon dies any other way: they run on,
and the next daemon adopts them.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import logging.handlers
import os
import signal
import sys
from typing import TYPE_CHECKING, Any

from ..errors import XquteError

if TYPE_CHECKING:
    from .pool import WorkerPoolManager
    from .service import SchedulerService

logger = logging.getLogger("xqute.queue")


def serve(
    service: SchedulerService, pool: WorkerPoolManager, ready_fd: int | None = None
) -> None:
    """Run ``pool`` (``service``'s) in this process until it is stopped."""
    from .service import AlreadyRunningError

    def say(text: str) -> None:
        nonlocal ready_fd
        if ready_fd is not None:
            with contextlib.suppress(OSError):
                os.write(ready_fd, (text.replace("\n", " ") + "\n").encode())
                os.close(ready_fd)
            ready_fd = None

    try:
        lock_fd = service.acquire_lock()
    except AlreadyRunningError as exc:
        say(f"already-running {exc}")
        raise
    handler = _log_to(service.log_path)
    try:
        logger.info(
            "daemon %d serving %s (SIGTERM or Ctrl-C stops it)",
            os.getpid(),
            service.db_path,
        )
        asyncio.run(_main(service, pool, say))
        logger.info("daemon %d stopped", os.getpid())
    except BaseException as exc:
        logger.exception("daemon %d failed", os.getpid())
        say(f"error {exc}")
        raise
    finally:
        logging.getLogger("xqute").removeHandler(handler)
        handler.close()
        service.release_lock(lock_fd)


async def _main(service: SchedulerService, pool: WorkerPoolManager, say: Any) -> None:
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
    from ..monitoring.daemon import start_monitoring

    config = service.monitoring_config()
    try:  # the alert loop and the HTTP server, when configured
        extras = await start_monitoring(config, service.store, pool)
    except BaseException:
        pool.request_stop(now=False)
        await pool.wait_stopped()
        raise
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
    from .service import SchedulerService

    config = json.loads(argv[0])
    ready_fd = int(argv[1]) if len(argv) > 1 else None
    db_path = config.pop("db_path")
    workers = config.pop("workers")
    try:
        SchedulerService(db_path, workers, **config).run(ready_fd)
    except XquteError as exc:
        print(f"xqute daemon: {exc}", file=sys.stderr)
        return 3
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
