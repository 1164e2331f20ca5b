"""Fixed-bucket histograms kept in memory by the daemon (dispatch cycle time,
transaction time; job durations seen by the metrics), exported by
``monitoring/metrics.py`` as Prometheus histograms.

Plain Python, no prometheus-client: the pool records into them whether or not
anyone scrapes, at the cost of a ``bisect`` per observation.
"""

from __future__ import annotations

import bisect
import threading
from collections.abc import Sequence

__all__ = [
    "LATENCY_BUCKETS_S",
    "POOLS",
    "RUNTIME_BUCKETS_S",
    "Histogram",
    "LabelledHistograms",
    "PoolTimings",
]

#: dispatch cycles, transactions: 0.1 ms .. 5 s
LATENCY_BUCKETS_S = (
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
    0.5, 1.0, 2.5, 5.0,
)  # fmt: skip
#: jobs' durations and waits: 0.1 s .. 1 day
RUNTIME_BUCKETS_S = (
    0.1, 0.5, 1.0, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 1800.0, 3600.0, 7200.0,
    14400.0, 43200.0, 86400.0,
)  # fmt: skip


class Histogram:
    """Counts of observations per bucket (upper bounds), their sum and count."""

    def __init__(self, bounds: Sequence[float] = LATENCY_BUCKETS_S) -> None:
        self.bounds = tuple(bounds)
        self.counts = [0] * (len(self.bounds) + 1)  # the last: +Inf
        self.sum = 0.0
        self.count = 0
        self._lock = threading.Lock()

    def observe(self, value: float) -> None:
        with self._lock:
            self.counts[bisect.bisect_left(self.bounds, value)] += 1
            self.sum += value
            self.count += 1

    @classmethod
    def merged(cls, hists: list[Histogram]) -> Histogram:
        """One histogram of the observations of several (same buckets)."""
        out = cls(hists[0].bounds if hists else LATENCY_BUCKETS_S)
        for h in hists:
            with h._lock:
                out.counts = [a + b for a, b in zip(out.counts, h.counts, strict=True)]
                out.sum += h.sum
                out.count += h.count
        return out

    def cumulative(self) -> tuple[list[tuple[str, int]], float]:
        """[(le, cumulative count)...] ending with +Inf, and the sum."""
        with self._lock:
            counts, total = list(self.counts), self.sum
        out, running = [], 0
        for bound, n in zip((*self.bounds, float("inf")), counts, strict=True):
            running += n
            out.append(("+Inf" if bound == float("inf") else repr(bound), running))
        return out, total


class LabelledHistograms:
    """One ``Histogram`` per label values (bounded labels only)."""

    def __init__(self, bounds: Sequence[float] = LATENCY_BUCKETS_S) -> None:
        self.bounds = tuple(bounds)
        self.by_labels: dict[tuple[str, ...], Histogram] = {}
        self._lock = threading.Lock()

    def observe(self, labels: tuple[str, ...], value: float) -> None:
        hist = self.by_labels.get(labels)
        if hist is None:
            with self._lock:
                hist = self.by_labels.setdefault(labels, Histogram(self.bounds))
        hist.observe(value)

    def items(self) -> list[tuple[tuple[str, ...], Histogram]]:
        with self._lock:
            return sorted(self.by_labels.items())


class PoolTimings:
    """A pool's own timings: each dispatch (window + policy + claim) and each
    cycle's write transaction."""

    def __init__(self) -> None:
        self.backend = ""
        self.dispatch = Histogram()
        self.transaction = Histogram()


#: the pools of this process, by worker id (the daemon's /metrics reads them)
POOLS: dict[str, PoolTimings] = {}
