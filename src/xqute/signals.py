"""SIGINT/SIGTERM handlers on the running event loop, restored afterwards.

The engine turns these signals into a clean stop (kill the jobs in flight, fire
the hooks). Whatever handler was there before (the user's own, or Python's
KeyboardInterrupt) is put back when the run ends. Where the loop cannot take
signal handlers (not the main thread, Windows), nothing is installed and the
caller keeps its own handling.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Callable
from typing import Any

__all__ = ["SignalHandlers"]

SIGNALS = (signal.SIGINT, signal.SIGTERM)


class SignalHandlers:
    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._saved: dict[int, Any] = {}

    def install(
        self, loop: asyncio.AbstractEventLoop, handler: Callable[[int], None]
    ) -> None:
        self._loop = loop
        for signum in SIGNALS:
            try:
                previous = signal.getsignal(signum)
                loop.add_signal_handler(signum, handler, signum)
            except (NotImplementedError, RuntimeError, ValueError):
                return
            self._saved[signum] = previous

    def restore(self) -> None:
        for signum, previous in self._saved.items():
            with contextlib.suppress(Exception):
                self._loop.remove_signal_handler(signum)  # type: ignore[union-attr]
                if previous is not None:
                    signal.signal(signum, previous)
        self._saved.clear()
