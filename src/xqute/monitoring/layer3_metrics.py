"""The metrics of the orchestration layer (workflow runs, schedules) and of the
resource policy (quotas, pending demand, preemptions, autoscalers).

Each function yields metric families for ``QueueCollector``; each does nothing
when its tables are not in the db. Gauges and the schedule counters are read
from the db at scrape time (the schedules table keeps its counts); the run and
latency histograms come from ``EventTracker``. Labels: workflow (the
definition's name), kind, state/outcome, schedule (``job/NAME``), namespace,
resource, policy: all bounded by what is defined, never an id.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from .samples import Schema
from .trackers import EventTracker

__all__ = ["policy_metrics", "run_metrics", "schedule_metrics"]

MB = 2**20


def histogram(name: str, doc: str, labels: list[str], items: Any) -> Metric:
    from prometheus_client.core import HistogramMetricFamily

    family = HistogramMetricFamily(name, doc, labels=labels)
    for values, hist in items:
        buckets, total = hist.cumulative()
        family.add_metric(list(values), buckets, total)
    return family


def run_metrics(db: Any, schema: Schema, events: EventTracker) -> Iterator[Metric]:
    if "runs" not in schema.tables:
        return
    active = GaugeMetricFamily(
        "xqute_workflow_runs",
        "Runs not ended, by workflow (or job) and state",
        labels=["workflow", "kind", "state"],
    )
    for kind, name, state, n in db.query(
        "SELECT kind, name, state, count(*) FROM runs"
        " WHERE state IN ('pending', 'running') GROUP BY 1, 2, 3"
    ):
        active.add_metric([name, kind, state], n)
    yield active
    ended = CounterMetricFamily(
        "xqute_workflow_runs_completed",
        "Runs ended since the daemon started",
        labels=["workflow", "kind", "outcome"],
    )
    for labels, n in sorted(events.runs_ended.items()):
        ended.add_metric(list(labels), n)
    yield ended
    yield histogram(
        "xqute_workflow_run_duration_seconds",
        "Created -> ended, per run",
        ["workflow", "kind", "outcome"],
        events.run_durations.items(),
    )
    yield histogram(
        "xqute_task_ready_latency_seconds",
        "A task's dependencies done -> it started (first attempts)",
        ["workflow"],
        events.ready_latency.items(),
    )


def schedule_metrics(db: Any, schema: Schema, events: EventTracker) -> Iterator[Metric]:
    if "schedules" not in schema.tables:
        return
    fires = CounterMetricFamily(
        "xqute_schedule_fires",
        "Scheduled times by what became of them",
        labels=["schedule", "outcome"],
    )
    upcoming = GaugeMetricFamily(
        "xqute_schedule_next_fire_timestamp_seconds",
        "The next fire time (unix)",
        labels=["schedule"],
    )
    for kind, name, fired, coalesced, missed, skipped, next_at, suspended in db.query(
        "SELECT kind, name, fired, coalesced, missed, skipped, next_fire_at,"
        " suspended FROM schedules WHERE deleted_at IS NULL ORDER BY kind, name"
    ):
        ref = f"{kind}/{name}"
        for outcome, n in (
            ("started", fired),
            ("coalesced", coalesced),
            ("missed", missed),
            ("skipped_overlap", skipped),
        ):
            fires.add_metric([ref, outcome], n or 0)
        if next_at is not None and not suspended:
            upcoming.add_metric([ref], next_at)
    yield fires
    yield upcoming
    yield histogram(
        "xqute_schedule_lateness_seconds",
        "Scheduled time -> fired",
        ["schedule"],
        events.lateness.items(),
    )


def policy_metrics(db: Any, schema: Schema) -> Iterator[Metric]:
    if "preemptions" not in schema.tables:
        return
    from ..queue.policy_store import load_catalog

    catalog = load_catalog(db)
    limit = GaugeMetricFamily(
        "xqute_quota_limit", "A namespace's quota", labels=["namespace", "resource"]
    )
    used = GaugeMetricFamily(
        "xqute_quota_used",
        "What its running jobs hold",
        labels=["namespace", "resource"],
    )
    held = {
        ns: (cpu or 0, (mem or 0) * MB, gpu or 0, (storage or 0) * MB, n)
        for ns, cpu, mem, gpu, storage, n in db.query(
            "SELECT namespace, sum(cpus), sum(mem_mb), sum(gpus), sum(storage_mb),"
            " count(*) FROM job_queue WHERE state = 'running' GROUP BY namespace"
        )
    }
    names = ("cpu", "memory_bytes", "gpu", "storage_bytes", "jobs")
    for ns, quota in sorted(catalog.quotas.items()):
        spec = quota.limits.to_spec()
        caps = (
            spec.get("cpu"),
            _mb(spec.get("memory")),
            spec.get("gpu"),
            _mb(spec.get("storage")),
            spec.get("jobs"),
        )
        for resource, cap, value in zip(
            names, caps, held.get(ns, (0,) * 5), strict=True
        ):
            if cap is not None:
                limit.add_metric([ns, resource], cap)
                used.add_metric([ns, resource], value)
    yield limit
    yield used
    preempted = CounterMetricFamily(
        "xqute_preemptions",
        "Jobs preempted, by namespace and what became of them",
        labels=["namespace", "outcome"],
    )
    for ns, outcome, n in db.query(
        "SELECT namespace, coalesce(outcome, 'pending'), count(*) FROM preemptions"
        " GROUP BY 1, 2"
    ):
        preempted.add_metric([ns, outcome], n)
    yield preempted
    replicas = GaugeMetricFamily(
        "xqute_autoscaler_replicas",
        "Each autoscaling policy's replicas",
        labels=["policy", "kind"],
    )
    for policy, current, desired in db.query(
        "SELECT policy, sum(current), sum(desired) FROM autoscaler GROUP BY policy"
    ):
        replicas.add_metric([policy, "current"], current)
        replicas.add_metric([policy, "desired"], desired)
    yield replicas


def _mb(value: Any) -> float | None:
    return None if value is None else float(value) * MB
