"""SIGINT/SIGTERM handlers on the running event loop, restored afterwards.

The engine turns these signals into a clean stop (kill the jobs in flight, fire
the hooks). Whatever handler was there before (the user's own, or Python's
KeyboardInterrupt) is put back when the last run on that loop ends. Several
engines may run at once on one loop: the loop's handler is installed once and
tells every engine that is running. Where the loop cannot take signal handlers
(not the main thread, Windows), nothing is installed and the caller keeps its
own handling.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Callable
from typing import Any

__all__ = ["SignalHandlers"]

SIGNALS = (signal.SIGINT, signal.SIGTERM)

# loop -> (the handlers to call, what was installed before us)
_LOOPS: dict[asyncio.AbstractEventLoop, tuple[list[Callable[[int], None]], dict]] = {}


def _dispatch(loop: asyncio.AbstractEventLoop, signum: int) -> None:
    for handler in list(_LOOPS.get(loop, ([], {}))[0]):
        handler(signum)


class SignalHandlers:
    """One engine's registration with its loop's shared signal handlers."""

    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._handler: Callable[[int], None] | None = None

    def install(
        self, loop: asyncio.AbstractEventLoop, handler: Callable[[int], None]
    ) -> None:
        if loop not in _LOOPS:
            saved: dict[int, Any] = {}
            for signum in SIGNALS:
                try:
                    previous = signal.getsignal(signum)
                    loop.add_signal_handler(signum, _dispatch, loop, signum)
                except (NotImplementedError, RuntimeError, ValueError):
                    _restore(loop, saved)
                    return  # not the main thread, or no signals here
                saved[signum] = previous
            _LOOPS[loop] = ([], saved)
        _LOOPS[loop][0].append(handler)
        self._loop, self._handler = loop, handler

    def restore(self) -> None:
        loop, handler = self._loop, self._handler
        self._loop = self._handler = None
        if loop is None or loop not in _LOOPS:
            return
        handlers, saved = _LOOPS[loop]
        with contextlib.suppress(ValueError):
            handlers.remove(handler)
        if not handlers:
            del _LOOPS[loop]
            _restore(loop, saved)


def _restore(loop: asyncio.AbstractEventLoop, saved: dict[int, Any]) -> None:
    for signum, previous in saved.items():
        with contextlib.suppress(Exception):
            loop.remove_signal_handler(signum)
            if previous is not None:
                signal.signal(signum, previous)
