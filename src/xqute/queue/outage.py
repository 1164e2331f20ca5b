"""The pool's db calls survive a full disk: retried with backoff, and logged.

SQLite answers "database or disk is full" when the filesystem of the db (or of
its WAL) has no space left. A daemon that exited on it would leave its running
jobs unfollowed and every later submit waiting; so while the pool runs, such a
call is retried after 1 s, 2 s, 4 s ... (at most ``MAX_DELAY_S``), each failure
logged, until space is back. Jobs in flight go on meanwhile (their ends are
recorded at the next successful cycle); other errors are raised as before.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from concurrent.futures import Executor
from typing import Any

from ..diskfull import is_disk_full
from ..errors import StoreError

__all__ = ["MAX_DELAY_S", "call_db"]

logger = logging.getLogger("xqute.queue")
MAX_DELAY_S = 30.0


async def call_db(
    executor: Executor,
    fn: Callable[..., Any],
    *args: Any,
    retry_while: Callable[[], bool],
) -> Any:
    """``fn(*args)`` on ``executor``; retried while the disk is full and
    ``retry_while()`` holds (the pool still runs)."""
    loop = asyncio.get_running_loop()
    delay_s = 0.0
    while True:
        try:
            result = await loop.run_in_executor(executor, fn, *args)
        except (StoreError, OSError) as exc:
            if not is_disk_full(exc) or not retry_while():
                raise
            delay_s = min(max(1.0, 2 * delay_s), MAX_DELAY_S)
            logger.error("disk full: %s; retrying in %.0fs", exc, delay_s)
            await asyncio.sleep(delay_s)
            continue
        if delay_s:
            logger.warning("the disk has space again: the pool goes on")
        return result
