"""A value read from the db that a request must not wait long for.

Counting the jobs by state reads one index entry per job counted
(``queue/active_jobs.py``: ~0.1 s for a million active jobs; the overview's
count of every state, ended ones included, ~0.06 s a million). With a normal
queue that is nothing and the value is computed at each request. With many
millions it takes seconds, and a scrape that waits that long times out. So
``Refreshed`` measures what each computation costs: when it is cheap (under
``budget_s``) every ``get`` computes afresh; when it is not, ``get`` returns
the last value at once and a background thread computes the next one, at
most once per ``duty`` x its cost (a 2 s count is redone every 20 s: the db
pays at most a tenth of one core for it). ``computed_at`` says how old the
value is; nothing is counted twice, it is always the db's own count.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Generic, TypeVar

__all__ = ["Refreshed"]

T = TypeVar("T")


class Refreshed(Generic[T]):
    def __init__(
        self, compute: Callable[[], T], budget_s: float = 0.05, duty: float = 10.0
    ) -> None:
        self.compute = compute
        self.budget_s = budget_s
        self.duty = duty
        self.value: T | None = None
        self.computed_at = 0.0
        self.cost_s = 0.0
        self._lock = threading.Lock()
        self._refreshing = False

    def _run(self) -> T:
        started = time.perf_counter()
        value = self.compute()
        with self._lock:
            self.cost_s = time.perf_counter() - started
            self.value, self.computed_at = value, time.time()
        return value

    def _background(self) -> None:
        try:
            self._run()
        finally:
            self._refreshing = False

    def get(self) -> T:
        """The value: fresh when computing it is cheap, else the last one (and
        a refresh in the background once it is old enough)."""
        if self.value is None or self.cost_s <= self.budget_s:
            return self._run()
        age = time.time() - self.computed_at
        with self._lock:
            due = not self._refreshing and age >= self.duty * self.cost_s
            if due:
                self._refreshing = True
        if due:
            threading.Thread(
                target=self._background, name="xqute-metrics-refresh", daemon=True
            ).start()
        return self.value

    def warm(self) -> None:
        """Compute the first value in the background (at the daemon's start),
        so the first scrape of a huge db does not wait for it."""
        with self._lock:
            if self._refreshing or self.value is not None:
                return
            self._refreshing = True
        threading.Thread(
            target=self._background, name="xqute-metrics-warm", daemon=True
        ).start()
