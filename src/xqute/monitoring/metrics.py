"""Prometheus metrics of a queue db, for the daemon's ``/metrics``.

- **Gauges are computed from the db at scrape time** by a custom collector
  (``QueueCollector``), so nothing is counted twice and a restart loses
  nothing: jobs by state, capacity and allocation per pool, workers and their
  heartbeat age, firing alerts. Each query is an index range over active jobs,
  whatever the number of finished ones (``queue/active_jobs.py``: jobs by
  state read only index entries).
- **Counters and histograms of job ends** (completions by outcome, durations,
  waits) come from ``JobTracker``, which reads the jobs that ended since its
  last look (the ``ended_at`` index) at each scrape: counted once per job,
  since the daemon started (the usual counter semantics: a restart resets).
- The pool's own timings (dispatch cycle, its write transaction) come from its
  in-memory histograms (``queue/stats.py``).
- Runs, schedules, quotas, preemptions and autoscalers: ``layer3_metrics.py``
  (from the db, and from the event log through ``EventTracker``).

Labels are bounded: state, outcome, namespace, priority class, pool (the
backend's name), alert (the rule's name). Never a job, run or worker id.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from .. import __version__
from ..queue.active_jobs import count_active
from ..queue.schema import FINAL_STATES, STATES, UNLIMITED
from ..queue.store import SqliteJobScheduler
from .layer3_metrics import histogram, policy_metrics, run_metrics, schedule_metrics
from .refreshed import Refreshed
from .samples import Schema
from .trackers import EventTracker, JobTracker

__all__ = ["QueueCollector"]

ACTIVE_STATES = tuple(s for s in STATES if s not in FINAL_STATES)
#: the longest count of the active jobs a scrape waits for (a scrape must stay
#: under 200 ms)
ACTIVE_BUDGET_S = 0.15


class QueueCollector(Collector):
    """The metrics of one queue db (and of the pools of this process)."""

    def __init__(
        self,
        store: SqliteJobScheduler,
        tracker: JobTracker | None = None,
        events: EventTracker | None = None,
    ) -> None:
        self.store = store
        self.tracker = tracker or JobTracker(store)
        self.events = events or EventTracker(store)
        # one index range (queue/active_jobs.py): ~0.1 s for a million active
        # jobs, so it is counted at each scrape up to about that; past it, in
        # the background (refreshed.py)
        self.active = Refreshed(self._active_rows, budget_s=ACTIVE_BUDGET_S)
        self._schema: Schema | None = None

    @property
    def schema(self) -> Schema:
        if self._schema is None:
            self._schema = Schema(self.store.db)
        return self._schema

    def collect(self) -> Iterator[Metric]:
        schema = self.schema
        info = GaugeMetricFamily(
            "xqute_build_info", "xqute's version", labels=["version"]
        )
        info.add_metric([__version__], 1)
        yield info
        yield from self._jobs(schema)
        self.tracker.update(schema)
        yield from self._ends()
        self.events.update(schema)
        db = self.store.db
        yield from run_metrics(db, schema, self.events)
        yield from schedule_metrics(db, schema, self.events)
        yield from policy_metrics(db, schema)
        yield from self._pools(schema)
        yield from self._alerts(schema)
        yield from self._pool_timings()

    # ------------------------------------------------------------------ parts
    def _active_rows(self) -> list[tuple[str, str, str | None, int]]:
        """(state, namespace, priority class, count) of the jobs not ended."""
        return count_active(self.store.db)

    def _jobs(self, schema: Schema) -> Iterator[Metric]:
        gauge = GaugeMetricFamily(
            "xqute_jobs",
            "Jobs not ended, by state (seed: queue_length)",
            labels=["state", "namespace", "priority_class"],
        )
        seen = set()
        for state, namespace, pclass, n in self.active.get():
            gauge.add_metric([state, namespace or "default", pclass or ""], n)
            seen.add(state)
        for state in ACTIVE_STATES:  # a state with no job reads 0, not "absent"
            if state not in seen:
                gauge.add_metric([state, "default", ""], 0)
        yield gauge
        counted = GaugeMetricFamily(
            "xqute_jobs_counted_timestamp_seconds",
            "When xqute_jobs was counted (older than now only on huge queues)",
        )
        counted.add_metric([], self.active.computed_at)
        yield counted
        cost = GaugeMetricFamily(
            "xqute_jobs_count_seconds", "What counting xqute_jobs took, last time"
        )
        cost.add_metric([], self.active.cost_s)
        yield cost

    def _ends(self) -> Iterator[Metric]:
        t = self.tracker
        done = CounterMetricFamily(
            "xqute_job_completions",
            "Jobs ended since the daemon started",
            labels=["namespace", "outcome"],
        )
        for (namespace, outcome), n in sorted(t.completions.items()):
            done.add_metric([namespace, outcome], n)
        yield done
        retries = CounterMetricFamily(
            "xqute_job_retries",
            "Extra runs of jobs (requeued after a lost worker)",
            labels=["namespace", "reason"],
        )
        for (namespace, reason), n in sorted(t.retries.items()):
            retries.add_metric([namespace, reason], n)
        yield retries
        yield histogram(
            "xqute_job_duration_seconds",
            "Run time of ended jobs (seed: job_duration)",
            ["namespace", "outcome"],
            t.durations.items(),
        )
        yield histogram(
            "xqute_job_wait_seconds",
            "Submitted -> started",
            ["namespace", "priority_class"],
            t.waits.items(),
        )

    def _pools(self, schema: Schema) -> Iterator[Metric]:
        now = time.time()
        workers = self.store.db.query(
            "SELECT id, backend, state, max_workers, cpus, mem_mb, gpu_ids,"
            " heartbeat_at FROM worker_nodes"
        )
        live = [w for w in workers if w[2] in ("running", "stopping")]
        backend_of = {w[0]: w[1] for w in workers}
        states = GaugeMetricFamily(
            "xqute_workers", "Worker pools by state", labels=["pool", "state"]
        )
        counts: dict[tuple[str, str], int] = {}
        for w in workers:
            counts[(w[1], w[2])] = counts.get((w[1], w[2]), 0) + 1
        for (pool, state), n in sorted(counts.items()):
            states.add_metric([pool, state], n)
        yield states
        age = GaugeMetricFamily(
            "xqute_worker_heartbeat_age_seconds",
            "The oldest heartbeat of a live pool",
            labels=["pool"],
        )
        oldest: dict[str, float] = {}
        for w in live:
            oldest[w[1]] = max(oldest.get(w[1], 0.0), now - w[7])
        for pool, seconds in sorted(oldest.items()):
            age.add_metric([pool], seconds)
        yield age
        capacity = GaugeMetricFamily(
            "xqute_capacity", "What live pools hand out", labels=["pool", "resource"]
        )
        totals: dict[tuple[str, str], float] = {}
        for _id, pool, _st, slots, cpus, mem_mb, gpu_ids, _beat in live:
            for resource, value in (
                ("slots", slots),
                ("cpu", cpus if cpus is not None and cpus < UNLIMITED else None),
                (
                    "memory_bytes",
                    mem_mb * 2**20
                    if mem_mb is not None and mem_mb < UNLIMITED
                    else None,
                ),
                ("gpu", len(gpu_ids.split(",")) if gpu_ids else 0),
            ):
                if value is not None:
                    totals[(pool, resource)] = totals.get((pool, resource), 0) + value
        for labels, value in sorted(totals.items()):
            capacity.add_metric(list(labels), value)
        yield capacity
        yield self._allocated(schema, backend_of)

    def _allocated(self, schema: Schema, backend_of: dict[str, str]) -> Metric:
        ns = "namespace" if schema.namespaces else "'default'"
        rows = self.store.db.query(
            f"SELECT worker, {ns}, sum(cpus), sum(mem_mb), sum(gpus), count(*)"
            " FROM job_queue WHERE state = 'running' GROUP BY 1, 2"
        )
        gauge = GaugeMetricFamily(
            "xqute_allocated",
            "Requests of running jobs (seed: resource_usage)",
            labels=["pool", "namespace", "resource"],
        )
        sums: dict[tuple[str, str, str], float] = {}
        for worker, namespace, cpus, mem_mb, gpus, n in rows:
            pool = backend_of.get(worker or "", "unknown")
            for resource, value in (
                ("cpu", cpus),
                ("memory_bytes", (mem_mb or 0) * 2**20),
                ("gpu", gpus),
                ("slots", n),
            ):
                key = (pool, namespace or "default", resource)
                sums[key] = sums.get(key, 0) + (value or 0)
        for labels, value in sorted(sums.items()):
            gauge.add_metric(list(labels), value)
        return gauge

    def _alerts(self, schema: Schema) -> Iterator[Metric]:
        gauge = GaugeMetricFamily(
            "xqute_alerts_firing", "Firing alerts per rule", labels=["alert"]
        )
        if "alerts" in schema.tables:
            for rule, n in self.store.db.query(
                "SELECT rule, count(*) FROM alerts WHERE state = 'firing' GROUP BY rule"
            ):
                gauge.add_metric([rule], n)
        yield gauge

    def _pool_timings(self) -> Iterator[Metric]:
        """The timings of this process's pools (the daemon's own)."""
        from ..queue.stats import POOLS, Histogram

        by_backend: dict[str, list[Any]] = {}
        for timings in list(POOLS.values()):
            by_backend.setdefault(timings.backend or "unknown", []).append(timings)
        yield histogram(
            "xqute_dispatch_cycle_seconds",
            "Snapshot + decide + claim",
            ["pool"],
            [
                ((name,), Histogram.merged([t.dispatch for t in ts]))
                for name, ts in sorted(by_backend.items())
            ],
        )
        every = [t.transaction for ts in by_backend.values() for t in ts]
        yield histogram(
            "xqute_db_transaction_seconds",
            "The pools' write transactions",
            ["op"],
            [(("cycle",), Histogram.merged(every))] if every else [],
        )
